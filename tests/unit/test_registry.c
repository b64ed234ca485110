/*
 * tests/unit/test_registry: the channel registry driven through a fake
 * chan_ops that records every callback. Membership is checked against a
 * shadow matrix after random joins and leaves; fan-out against the frame
 * reference counts (1 + one per queue holding the frame).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A node-side client: the registry's view plus what the callbacks saw. */
struct tcl {
	struct chan_client cl;
	unsigned wakes;
	unsigned overflows;
	unsigned overflow_qlen; /* cl->q_len when overflow fired */
};

#define MAX_CLOSED 64
struct rec {
	unsigned wakes, overflows, closed;
	char closed_names[MAX_CLOSED][CHAN_NAME_MAX + 1];
	unsigned closed_members; /* sum of chan_members() seen by closed */
};

static void on_wake(struct chan_client *cl, void *arg)
{
	struct rec *r = arg;
	struct tcl *t = cl->owner;

	r->wakes++;
	t->wakes++;
}

static void on_overflow(struct chan_client *cl, void *arg)
{
	struct rec *r = arg;
	struct tcl *t = cl->owner;

	r->overflows++;
	t->overflows++;
	t->overflow_qlen = cl->q_len;
}

static void on_closed(struct chan_channel *ch, void *arg)
{
	struct rec *r = arg;
	size_t len;
	const char *name = chan_name(ch, &len);

	if (r->closed < MAX_CLOSED)
		snprintf(r->closed_names[r->closed], sizeof(r->closed_names[0]),
			 "%.*s", (int)len, name);
	r->closed++;
	r->closed_members += chan_members(ch);
}

static const struct chan_ops ops = { on_wake, on_overflow, on_closed };

static struct chan_registry *mkreg(struct rec *r, size_t qbytes,
				   unsigned maxsubs)
{
	struct chan_limits lim = { .max_queue_bytes = qbytes,
				   .max_subscriptions = maxsubs };
	struct chan_registry *reg;

	memset(r, 0, sizeof(*r));
	reg = chan_registry_create(&lim, &ops, r);
	cr_assert_not_null(reg);
	return reg;
}

static void tcl_init(struct tcl *t)
{
	memset(t, 0, sizeof(*t));
	chan_client_init(&t->cl, t);
}

static struct chan_channel *mkchan(struct chan_registry *reg, const char *name)
{
	struct chan_channel *ch = NULL;

	cr_assert_eq(chan_create(reg, name, strlen(name), NULL, 1, &ch), WR_OK,
		     "create %s", name);
	cr_assert_not_null(ch);
	return ch;
}

static struct chan_channel *find(struct chan_registry *reg, const char *name)
{
	return chan_find(reg, name, strlen(name));
}

static struct wr_msg *mkmsg(size_t len, unsigned char fill)
{
	struct wr_msg *m = wr_msg_create(len);

	cr_assert_not_null(m);
	memset(m->data, fill, len);
	return m;
}

/* ---- create / find ---- */

Test(registry, create_find)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	uint8_t hash[CHAN_HASH_LEN];
	struct chan_channel *a = NULL, *b = NULL, *dup = (void *)&r;
	size_t len = 0;

	for (unsigned i = 0; i < CHAN_HASH_LEN; i++)
		hash[i] = (uint8_t)(i * 7 + 1);
	cr_assert_eq(chan_create(reg, "alpha", 5, hash, 1234, &a), WR_OK);
	cr_assert_eq(chan_create(reg, "alphabet", 8, NULL, 5, &b), WR_OK);
	cr_expect_neq(a, b);
	cr_expect_eq(find(reg, "alpha"), a);
	cr_expect_eq(find(reg, "alphabet"), b);
	cr_expect_null(find(reg, "alph"));
	cr_expect_null(find(reg, "Alpha"));
	cr_expect_null(find(reg, "beta"));
	cr_expect_null(chan_find(reg, "alpha", 4));

	cr_expect_str_eq(chan_name(a, &len), "alpha");
	cr_expect_eq(len, 5);
	cr_expect_str_eq(chan_name(b, NULL), "alphabet");
	cr_assert_not_null(chan_hash(a));
	cr_expect(!memcmp(chan_hash(a), hash, CHAN_HASH_LEN));
	hash[0] ^= 1; /* the registry copied it */
	cr_expect(memcmp(chan_hash(a), hash, CHAN_HASH_LEN));
	cr_expect_null(chan_hash(b));
	cr_expect_eq(chan_members(a), 0);

	cr_expect_eq(chan_create(reg, "alpha", 5, NULL, 1, &dup), WR_EEXIST);
	cr_expect_eq(dup, (void *)&r, "out untouched on failure");
	cr_expect_eq(find(reg, "alpha"), a);

	static const struct {
		const char *s;
		size_t len;
	} bad[] = { { "", 0 },     { "a\0b", 3 }, { "a\n", 2 },
		    { "\x7f", 1 }, { "\xc3", 1 }, { "\xed\xa0\x80", 3 } };
	for (size_t i = 0; i < N(bad); i++)
		cr_expect_eq(chan_create(reg, bad[i].s, bad[i].len, NULL, 1,
					 &dup),
			     WR_EINVAL, "row %zu", i);
	char big[130];

	memset(big, 'n', sizeof(big));
	cr_expect_eq(chan_create(reg, big, 129, NULL, 1, &dup), WR_EINVAL);
	cr_expect_eq(chan_create(reg, big, 128, NULL, 1, &dup), WR_OK);
	cr_expect_eq(chan_find(reg, big, 128), dup);

	struct chan_registry_stats st;

	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, 3);
	cr_expect_eq(st.subscriptions, 0);
	/* channels never joined are freed by destroy */
	chan_registry_destroy(reg);
	chan_registry_destroy(NULL);
	cr_expect_eq(r.closed, 0);
}

/* ---- join / leave ---- */

Test(registry, join_leave)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	struct tcl a, b;
	struct chan_channel *ch = mkchan(reg, "room");
	struct chan_registry_stats st;

	tcl_init(&a);
	tcl_init(&b);
	cr_expect_not(chan_is_member(ch, &a.cl));
	cr_assert_eq(chan_join(reg, ch, &a.cl), WR_OK);
	cr_expect(chan_is_member(ch, &a.cl));
	cr_expect_not(chan_is_member(ch, &b.cl));
	cr_expect_eq(chan_members(ch), 1);
	cr_expect_eq(a.cl.nsubs, 1);

	cr_expect_eq(chan_join(reg, ch, &a.cl), WR_EEXIST);
	cr_expect_eq(chan_members(ch), 1);
	cr_expect_eq(a.cl.nsubs, 1);

	/* leaving a channel one is not in changes nothing */
	cr_expect_eq(chan_leave(reg, ch, &b.cl), WR_ENOENT);
	cr_expect_eq(chan_members(ch), 1);
	cr_expect_eq(r.closed, 0);
	cr_expect_eq(find(reg, "room"), ch);

	cr_assert_eq(chan_join(reg, ch, &b.cl), WR_OK);
	cr_expect_eq(chan_members(ch), 2);
	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, 1);
	cr_expect_eq(st.subscriptions, 2);

	cr_expect_eq(chan_leave(reg, ch, &a.cl), WR_OK);
	cr_expect_not(chan_is_member(ch, &a.cl));
	cr_expect(chan_is_member(ch, &b.cl));
	cr_expect_eq(chan_members(ch), 1);
	cr_expect_eq(a.cl.nsubs, 0);
	cr_expect_eq(r.closed, 0, "not the last member");
	cr_expect_eq(chan_leave(reg, ch, &a.cl), WR_ENOENT);

	/* the last member leaves: closed once, then gone */
	cr_expect_eq(chan_leave(reg, ch, &b.cl), WR_OK);
	cr_expect_eq(r.closed, 1);
	cr_expect_str_eq(r.closed_names[0], "room");
	cr_expect_eq(r.closed_members, 0, "closed sees an empty channel");
	cr_expect_null(find(reg, "room"));
	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, 0);
	cr_expect_eq(st.subscriptions, 0);

	/* the name can be opened again */
	ch = mkchan(reg, "room");
	cr_expect_eq(chan_join(reg, ch, &b.cl), WR_OK);
	chan_client_fini(reg, &a.cl);
	chan_client_fini(reg, &b.cl);
	cr_expect_eq(r.closed, 2);
	cr_expect_eq(r.wakes, 0);
	cr_expect_eq(r.overflows, 0);
	chan_registry_destroy(reg);
}

Test(registry, closed_once_per_channel)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	struct tcl c[3];
	struct chan_channel *ch = mkchan(reg, "c");

	for (int i = 0; i < 3; i++) {
		tcl_init(&c[i]);
		cr_assert_eq(chan_join(reg, ch, &c[i].cl), WR_OK);
	}
	cr_expect_eq(chan_leave(reg, ch, &c[1].cl), WR_OK);
	cr_expect_eq(r.closed, 0);
	cr_expect_eq(chan_leave(reg, ch, &c[0].cl), WR_OK);
	cr_expect_eq(r.closed, 0);
	cr_expect_eq(find(reg, "c"), ch);
	cr_expect_eq(chan_leave(reg, ch, &c[2].cl), WR_OK);
	cr_expect_eq(r.closed, 1);
	cr_expect_null(find(reg, "c"));
	for (int i = 0; i < 3; i++)
		chan_client_fini(reg, &c[i].cl);
	cr_expect_eq(r.closed, 1, "fini of clients in nothing closes nothing");
	chan_registry_destroy(reg);
}

Test(registry, max_subscriptions)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 3);
	struct tcl a, b;
	struct chan_channel *ch[5];
	char name[8];

	tcl_init(&a);
	tcl_init(&b);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		ch[i] = mkchan(reg, name);
	}
	for (int i = 0; i < 3; i++)
		cr_assert_eq(chan_join(reg, ch[i], &a.cl), WR_OK, "join %d", i);
	cr_expect_eq(chan_join(reg, ch[3], &a.cl), WR_EFULL);
	cr_expect_not(chan_is_member(ch[3], &a.cl));
	cr_expect_eq(chan_members(ch[3]), 0);
	cr_expect_eq(a.cl.nsubs, 3);
	/* already a member beats full */
	cr_expect_eq(chan_join(reg, ch[0], &a.cl), WR_EEXIST);
	/* the limit is per client */
	cr_expect_eq(chan_join(reg, ch[3], &b.cl), WR_OK);
	/* leaving makes room */
	cr_expect_eq(chan_leave(reg, ch[1], &a.cl), WR_OK);
	cr_expect_eq(r.closed, 1);
	cr_expect_eq(chan_join(reg, ch[4], &a.cl), WR_OK);
	cr_expect_eq(chan_join(reg, ch[3], &a.cl), WR_EFULL);

	struct chan_registry_stats st;

	chan_registry_stats(reg, &st);
	cr_expect_eq(st.subscriptions, 4);
	chan_client_fini(reg, &a.cl);
	chan_client_fini(reg, &b.cl);
	chan_registry_stats(reg, &st);
	cr_expect_eq(st.subscriptions, 0);
	cr_expect_eq(st.channels, 0);
	cr_expect_eq(r.closed, 5,
		     "c1 when a left it, then c0 c2 c3 c4 on fini");
	chan_registry_destroy(reg);
}

Test(registry, client_fini_leaves_everything)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 64);
	struct tcl a, b;
	struct chan_channel *ch[6];
	char name[8];
	struct wr_msg *m = mkmsg(10, 'x');

	tcl_init(&a);
	tcl_init(&b);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ch[i] = mkchan(reg, name);
		cr_assert_eq(chan_join(reg, ch[i], &a.cl), WR_OK);
		if (i % 2 == 0)
			cr_assert_eq(chan_join(reg, ch[i], &b.cl), WR_OK);
	}
	cr_assert_eq(chan_client_push(reg, &a.cl, m), WR_OK);
	cr_assert_eq(chan_client_push(reg, &a.cl, m), WR_OK);
	cr_expect_eq(m->refs, 3);

	chan_client_fini(reg, &a.cl);
	cr_expect_eq(a.cl.nsubs, 0);
	cr_expect_eq(a.cl.q_len, 0);
	cr_expect_eq(a.cl.q_bytes, 0);
	cr_expect_eq(m->refs, 1, "queued frames released");
	cr_expect_eq(r.closed, 3, "the odd channels had only a");
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		if (i % 2) {
			cr_expect_null(find(reg, name), "%s", name);
		} else {
			cr_expect_eq(find(reg, name), ch[i], "%s", name);
			cr_expect_eq(chan_members(ch[i]), 1);
			cr_expect(chan_is_member(ch[i], &b.cl));
		}
	}
	/* fini twice is harmless; the client can be reused after init */
	chan_client_fini(reg, &a.cl);
	chan_client_fini(reg, &b.cl);
	cr_expect_eq(r.closed, 6);
	struct chan_registry_stats st;

	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, 0);
	cr_expect_eq(st.subscriptions, 0);
	wr_msg_unref(&m);
	chan_registry_destroy(reg);
}

/* ---- swap-remove bookkeeping under random joins and leaves ---- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64*: deterministic across runs */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

#define NCL 50
#define NCH 20

struct shadow {
	struct chan_registry *reg;
	struct rec r;
	struct tcl cl[NCL];
	struct chan_channel *ch[NCH]; /* NULL when closed */
	bool in[NCL][NCH];
	unsigned closed_expected;
};

static void shadow_verify(struct shadow *s, unsigned step)
{
	uint64_t subs = 0;
	unsigned nch = 0;
	struct chan_registry_stats st;

	for (int j = 0; j < NCH; j++) {
		char name[8];
		unsigned members = 0;

		snprintf(name, sizeof(name), "s%d", j);
		cr_assert_eq(find(s->reg, name), s->ch[j], "step %u: find %s",
			     step, name);
		if (!s->ch[j])
			continue;
		nch++;
		for (int i = 0; i < NCL; i++) {
			cr_assert_eq(chan_is_member(s->ch[j], &s->cl[i].cl),
				     s->in[i][j],
				     "step %u: client %d channel %d", step, i,
				     j);
			members += s->in[i][j];
		}
		cr_assert_eq(chan_members(s->ch[j]), members, "step %u: ch %d",
			     step, j);
	}
	for (int i = 0; i < NCL; i++) {
		unsigned n = 0;

		for (int j = 0; j < NCH; j++)
			n += s->in[i][j];
		cr_assert_eq(s->cl[i].cl.nsubs, n, "step %u: client %d nsubs",
			     step, i);
		subs += n;
	}
	chan_registry_stats(s->reg, &st);
	cr_assert_eq(st.channels, nch, "step %u", step);
	cr_assert_eq(st.subscriptions, subs, "step %u", step);
	cr_assert_eq(s->r.closed, s->closed_expected, "step %u", step);
}

static void shadow_join(struct shadow *s, int i, int j)
{
	char name[8];
	int rc;

	snprintf(name, sizeof(name), "s%d", j);
	if (!s->ch[j]) {
		cr_assert_eq(chan_create(s->reg, name, strlen(name), NULL, 1,
					 &s->ch[j]),
			     WR_OK);
	}
	rc = chan_join(s->reg, s->ch[j], &s->cl[i].cl);
	cr_assert_eq(rc, s->in[i][j] ? WR_EEXIST : WR_OK, "join %d %d", i, j);
	s->in[i][j] = true;
}

static void shadow_leave(struct shadow *s, int i, int j)
{
	bool last;
	int rc;

	if (!s->ch[j])
		return;
	last = s->in[i][j] && chan_members(s->ch[j]) == 1;
	rc = chan_leave(s->reg, s->ch[j], &s->cl[i].cl);
	cr_assert_eq(rc, s->in[i][j] ? WR_OK : WR_ENOENT, "leave %d %d", i, j);
	s->in[i][j] = false;
	if (last) {
		s->ch[j] = NULL;
		s->closed_expected++;
	}
}

Test(registry, swap_remove_shadow_matrix)
{
	static struct shadow s; /* large: keep it off the stack */

	memset(&s, 0, sizeof(s));
	rng_state = 0x9e3779b97f4a7c15ULL;
	s.reg = mkreg(&s.r, 1 << 20, NCH);
	for (int i = 0; i < NCL; i++)
		tcl_init(&s.cl[i]);

	/* dense start: every client in ~60% of the channels */
	for (int i = 0; i < NCL; i++)
		for (int j = 0; j < NCH; j++)
			if (rnd() % 10 < 6)
				shadow_join(&s, i, j);
	shadow_verify(&s, 0);

	/* random leaves and joins, biased to leaves so channels empty */
	for (unsigned step = 1; step <= 6000; step++) {
		int i = (int)(rnd() % NCL), j = (int)(rnd() % NCH);

		if (rnd() % 100 < (step < 3000 ? 70u : 35u))
			shadow_leave(&s, i, j);
		else
			shadow_join(&s, i, j);
		if (step % 100 == 0)
			shadow_verify(&s, step);
	}
	shadow_verify(&s, 6001);

	/* every client leaves every channel in a random order */
	for (int k = 0; k < NCL * NCH * 2; k++)
		shadow_leave(&s, (int)(rnd() % NCL), (int)(rnd() % NCH));
	shadow_verify(&s, 6002);
	for (int i = 0; i < NCL; i++) {
		for (int j = 0; j < NCH; j++)
			s.in[i][j] = false;
		/* fini must close exactly the channels it empties */
		for (int j = 0; j < NCH; j++)
			if (s.ch[j] && chan_members(s.ch[j]) == 1 &&
			    chan_is_member(s.ch[j], &s.cl[i].cl)) {
				s.ch[j] = NULL;
				s.closed_expected++;
			}
		chan_client_fini(s.reg, &s.cl[i].cl);
		shadow_verify(&s, 7000 + (unsigned)i);
	}
	chan_registry_destroy(s.reg);
}

/* ---- fan-out ---- */

Test(registry, publish_refcounts_and_wake)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	struct tcl c[4], outsider;
	struct chan_channel *ch = mkchan(reg, "pub");
	struct wr_msg *f1 = wr_ws_text_frame("hello", 5);
	struct wr_msg *f2 = wr_ws_text_frame("world!", 6);
	struct wr_msg *f3 = wr_ws_text_frame("again", 5);

	cr_assert(f1 && f2 && f3);
	tcl_init(&outsider);
	for (int i = 0; i < 4; i++) {
		tcl_init(&c[i]);
		cr_assert_eq(chan_join(reg, ch, &c[i].cl), WR_OK);
	}

	/* the sender (c[0]) does not get its own message */
	cr_expect_eq(chan_publish(reg, ch, f1, &c[0].cl), 3);
	cr_expect_eq(f1->refs, 1 + 3);
	cr_expect_eq(c[0].cl.q_len, 0);
	cr_expect_eq(c[0].wakes, 0);
	for (int i = 1; i < 4; i++) {
		cr_expect_eq(c[i].cl.q_len, 1, "client %d", i);
		cr_expect_eq(chan_client_peek(&c[i].cl, 0), f1, "client %d", i);
		cr_expect_null(chan_client_peek(&c[i].cl, 1));
		cr_expect_eq(c[i].cl.q_bytes, f1->len);
		cr_expect_eq(c[i].wakes, 1, "client %d: empty -> non-empty", i);
	}

	/* non-empty queues are not woken again */
	cr_expect_eq(chan_publish(reg, ch, f2, &c[0].cl), 3);
	cr_expect_eq(f2->refs, 4);
	for (int i = 1; i < 4; i++) {
		cr_expect_eq(c[i].cl.q_len, 2);
		cr_expect_eq(chan_client_peek(&c[i].cl, 0), f1, "order kept");
		cr_expect_eq(chan_client_peek(&c[i].cl, 1), f2, "order kept");
		cr_expect_eq(c[i].cl.q_bytes, f1->len + f2->len);
		cr_expect_eq(c[i].wakes, 1);
	}

	/* c[1] drains its queue: the next frame wakes it again, only it */
	chan_client_consume(&c[1].cl, f1->len + f2->len);
	cr_expect_eq(c[1].cl.q_len, 0);
	cr_expect_eq(f1->refs, 3);
	cr_expect_eq(f2->refs, 3);
	/* no sender: everyone, and a non-member as except changes nothing */
	cr_expect_eq(chan_publish(reg, ch, f3, &outsider.cl), 4);
	cr_expect_eq(f3->refs, 5);
	cr_expect_eq(c[0].wakes, 1);
	cr_expect_eq(c[1].wakes, 2);
	cr_expect_eq(c[2].wakes, 1);
	cr_expect_eq(c[3].wakes, 1);
	cr_expect_eq(outsider.cl.q_len, 0);
	cr_expect_eq(chan_publish(reg, ch, f3, NULL), 4);
	cr_expect_eq(f3->refs, 9);
	cr_expect_eq(r.wakes, 5);
	cr_expect_eq(r.overflows, 0);

	for (int i = 0; i < 4; i++)
		chan_client_fini(reg, &c[i].cl);
	chan_client_fini(reg, &outsider.cl);
	cr_expect_eq(f1->refs, 1);
	cr_expect_eq(f2->refs, 1);
	cr_expect_eq(f3->refs, 1);
	wr_msg_unref(&f1);
	wr_msg_unref(&f2);
	wr_msg_unref(&f3);
	cr_expect_null(f1);
	chan_registry_destroy(reg);
}

Test(registry, client_push)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	struct tcl a;
	struct wr_msg *m = mkmsg(7, 'r');

	tcl_init(&a);
	/* a client in no channel still has a queue (responses) */
	cr_expect_eq(chan_client_push(reg, &a.cl, m), WR_OK);
	cr_expect_eq(m->refs, 2, "push takes its own reference");
	cr_expect_eq(a.wakes, 1);
	cr_expect_eq(chan_client_push(reg, &a.cl, m), WR_OK);
	cr_expect_eq(m->refs, 3);
	cr_expect_eq(a.wakes, 1);
	cr_expect_eq(a.cl.q_bytes, 14);
	chan_client_consume(&a.cl, 14);
	cr_expect_eq(m->refs, 1);
	cr_expect_eq(chan_client_push(reg, &a.cl, m), WR_OK);
	cr_expect_eq(a.wakes, 2);
	chan_client_fini(reg, &a.cl);
	cr_expect_eq(m->refs, 1);
	wr_msg_unref(&m);
	chan_registry_destroy(reg);
}

Test(registry, overflow_cuts_off_one_client)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 100, 16);
	struct tcl fast, slow, sender;
	struct chan_channel *ch = mkchan(reg, "busy");
	struct wr_msg *f[5];

	for (int i = 0; i < 5; i++)
		f[i] = mkmsg(40, (unsigned char)('a' + i));
	tcl_init(&fast);
	tcl_init(&slow);
	tcl_init(&sender);
	cr_assert_eq(chan_join(reg, ch, &sender.cl), WR_OK);
	cr_assert_eq(chan_join(reg, ch, &fast.cl), WR_OK);
	cr_assert_eq(chan_join(reg, ch, &slow.cl), WR_OK);

	/* 40 + 40 = 80 <= 100: both hold them */
	cr_expect_eq(chan_publish(reg, ch, f[0], &sender.cl), 2);
	chan_client_consume(&fast.cl, 40);
	cr_expect_eq(chan_publish(reg, ch, f[1], &sender.cl), 2);
	chan_client_consume(&fast.cl, 40);
	cr_expect_eq(slow.cl.q_bytes, 80);
	cr_expect_eq(f[0]->refs, 2);
	cr_expect_eq(f[1]->refs, 2);

	/* 120 > 100: slow is cut off, its two frames dropped */
	cr_expect_eq(chan_publish(reg, ch, f[2], &sender.cl), 1);
	cr_expect_eq(slow.overflows, 1);
	cr_expect_eq(slow.overflow_qlen, 2, "q_len tells the frames dropped");
	cr_expect(slow.cl.overflowed);
	cr_expect_eq(slow.cl.q_len, 0);
	cr_expect_eq(slow.cl.q_bytes, 0);
	cr_expect_null(chan_client_peek(&slow.cl, 0));
	cr_expect_eq(f[0]->refs, 1);
	cr_expect_eq(f[1]->refs, 1);
	cr_expect_eq(f[2]->refs, 2, "ours + fast's");
	/* fast is unaffected */
	cr_expect_eq(fast.overflows, 0);
	cr_expect_not(fast.cl.overflowed);
	cr_expect_eq(fast.cl.q_len, 1);
	cr_expect_eq(chan_client_peek(&fast.cl, 0), f[2]);
	/* membership is not changed by the cut-off */
	cr_expect(chan_is_member(ch, &slow.cl));
	cr_expect_eq(chan_members(ch), 3);

	/* slow receives nothing more, and is not told twice */
	cr_expect_eq(chan_publish(reg, ch, f[3], &sender.cl), 1);
	cr_expect_eq(chan_client_push(reg, &slow.cl, f[4]), WR_EFULL);
	cr_expect_eq(slow.overflows, 1);
	cr_expect_eq(slow.cl.q_len, 0);
	cr_expect_eq(f[3]->refs, 2);
	cr_expect_eq(f[4]->refs, 1);
	cr_expect_eq(slow.wakes, 1, "woken for f[0] only");
	cr_expect_eq(fast.cl.q_len, 2);
	cr_expect_eq(r.overflows, 1);
	/* a client that keeps up keeps getting frames */
	chan_client_consume(&fast.cl, 40);
	cr_expect_eq(chan_client_push(reg, &fast.cl, f[4]), WR_OK);
	cr_expect_eq(fast.cl.q_len, 2);
	cr_expect_eq(fast.cl.q_bytes, 80);
	cr_expect_eq(chan_client_peek(&fast.cl, 0), f[3]);
	cr_expect_eq(chan_client_peek(&fast.cl, 1), f[4]);
	cr_expect_eq(fast.overflows, 0);

	chan_client_fini(reg, &fast.cl);
	chan_client_fini(reg, &slow.cl);
	chan_client_fini(reg, &sender.cl);
	for (int i = 0; i < 5; i++) {
		cr_expect_eq(f[i]->refs, 1, "frame %d", i);
		wr_msg_unref(&f[i]);
	}
	chan_registry_destroy(reg);
}

Test(registry, overflow_boundary)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 100, 16);
	struct tcl a;
	struct wr_msg *half = mkmsg(50, 'h'), *one = mkmsg(1, '1');

	tcl_init(&a);
	/* exactly max_queue_bytes fits */
	cr_expect_eq(chan_client_push(reg, &a.cl, half), WR_OK);
	cr_expect_eq(chan_client_push(reg, &a.cl, half), WR_OK);
	cr_expect_eq(a.cl.q_bytes, 100);
	cr_expect_eq(a.overflows, 0);
	/* a partially written front frame still counts whole */
	chan_client_consume(&a.cl, 10);
	cr_expect_eq(chan_client_push(reg, &a.cl, one), WR_EFULL);
	cr_expect_eq(a.overflows, 1);
	cr_expect_eq(a.overflow_qlen, 2);
	cr_expect_eq(a.cl.q_len, 0);
	cr_expect_eq(a.cl.q_off, 0);
	cr_expect_eq(half->refs, 1);
	cr_expect_eq(one->refs, 1);
	chan_client_fini(reg, &a.cl);
	wr_msg_unref(&half);
	wr_msg_unref(&one);
	chan_registry_destroy(reg);
}

/* ---- the ring ---- */

Test(registry, consume_partial_and_multi)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	struct tcl a;
	struct wr_msg *m10 = mkmsg(10, 'a'), *m20 = mkmsg(20, 'b'),
		      *m30 = mkmsg(30, 'c');
	static const struct {
		size_t n;
		unsigned q_len;
		size_t q_off, q_bytes;
		unsigned r10, r20, r30;
	} steps[] = {
		{ 0, 3, 0, 60, 2, 2, 2 }, /* nothing */
		{ 5, 3, 5, 60, 2, 2, 2 }, /* into the first */
		{ 4, 3, 9, 60, 2, 2, 2 },
		{ 1, 2, 0, 50, 1, 2, 2 },  /* exactly finishes it */
		{ 25, 1, 5, 30, 1, 1, 2 }, /* the second and 5 of the third */
		{ 24, 1, 29, 30, 1, 1, 2 },
		{ 1000, 0, 0, 0, 1, 1, 1 }, /* more than queued */
		{ 7, 0, 0, 0, 1, 1, 1 },    /* empty queue: no-op */
	};

	tcl_init(&a);
	cr_assert_eq(chan_client_push(reg, &a.cl, m10), WR_OK);
	cr_assert_eq(chan_client_push(reg, &a.cl, m20), WR_OK);
	cr_assert_eq(chan_client_push(reg, &a.cl, m30), WR_OK);
	for (size_t i = 0; i < N(steps); i++) {
		chan_client_consume(&a.cl, steps[i].n);
		cr_expect_eq(a.cl.q_len, steps[i].q_len, "step %zu: q_len %u",
			     i, a.cl.q_len);
		cr_expect_eq(a.cl.q_off, steps[i].q_off, "step %zu: q_off %zu",
			     i, a.cl.q_off);
		cr_expect_eq(a.cl.q_bytes, steps[i].q_bytes,
			     "step %zu: q_bytes %zu", i, a.cl.q_bytes);
		cr_expect_eq(m10->refs, steps[i].r10, "step %zu", i);
		cr_expect_eq(m20->refs, steps[i].r20, "step %zu", i);
		cr_expect_eq(m30->refs, steps[i].r30, "step %zu", i);
	}
	/* one call across three whole frames */
	cr_assert_eq(chan_client_push(reg, &a.cl, m10), WR_OK);
	cr_assert_eq(chan_client_push(reg, &a.cl, m20), WR_OK);
	cr_assert_eq(chan_client_push(reg, &a.cl, m30), WR_OK);
	cr_assert_eq(chan_client_push(reg, &a.cl, m10), WR_OK);
	chan_client_consume(&a.cl, 10 + 20 + 30 + 3);
	cr_expect_eq(a.cl.q_len, 1);
	cr_expect_eq(a.cl.q_off, 3);
	cr_expect_eq(chan_client_peek(&a.cl, 0), m10);
	cr_expect_eq(m10->refs, 2);
	cr_expect_eq(m20->refs, 1);
	cr_expect_eq(m30->refs, 1);
	chan_client_fini(reg, &a.cl);
	cr_expect_eq(m10->refs, 1);
	wr_msg_unref(&m10);
	wr_msg_unref(&m20);
	wr_msg_unref(&m30);
	chan_registry_destroy(reg);
}

/* The ring wraps and grows while frames are in it: order is kept. */
Test(registry, ring_wrap_and_grow)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	struct tcl a;
	struct wr_msg *m[300];
	unsigned head = 0, tail = 0;

	tcl_init(&a);
	for (int i = 0; i < 300; i++) {
		m[i] = mkmsg(4, (unsigned char)i);
	}
	rng_state = 12345;
	while (tail < 300) {
		/* push 0..6, pop 0..4: the head walks around the ring */
		unsigned push = rnd() % 7, pop = rnd() % 5;

		for (unsigned k = 0; k < push && tail < 300; k++)
			cr_assert_eq(chan_client_push(reg, &a.cl, m[tail++]),
				     WR_OK);
		for (unsigned k = 0; k < pop && head < tail; k++) {
			cr_assert_eq(chan_client_peek(&a.cl, 0), m[head],
				     "front %u", head);
			chan_client_consume(&a.cl, 4);
			cr_assert_eq(m[head]->refs, 1);
			head++;
		}
		cr_assert_eq(a.cl.q_len, tail - head);
		cr_assert_eq(a.cl.q_bytes, 4 * (size_t)(tail - head));
		for (unsigned k = head; k < tail; k++)
			cr_assert_eq(chan_client_peek(&a.cl, k - head), m[k],
				     "slot %u", k);
	}
	cr_expect_geq(a.wakes, 1);
	chan_client_fini(reg, &a.cl);
	for (int i = 0; i < 300; i++) {
		cr_expect_eq(m[i]->refs, 1);
		wr_msg_unref(&m[i]);
	}
	chan_registry_destroy(reg);
}

/* ---- iteration, growth, stats ---- */

struct seen {
	unsigned calls;
	unsigned char hits[400];
};

static void count_channel(struct chan_channel *ch, void *arg)
{
	struct seen *s = arg;
	size_t len;
	const char *name = chan_name(ch, &len);
	int k = atoi(name + 1);

	s->calls++;
	cr_assert(k >= 0 && k < 400);
	s->hits[k]++;
}

Test(registry, foreach_each_once)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 400);
	struct tcl a;
	struct seen s;
	char name[16];

	tcl_init(&a);
	memset(&s, 0, sizeof(s));
	chan_foreach(reg, count_channel, &s);
	cr_expect_eq(s.calls, 0);

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		cr_assert_eq(chan_join(reg, mkchan(reg, name), &a.cl), WR_OK);
	}
	/* remove some: they must not be visited */
	for (int i = 0; i < 300; i += 3) {
		snprintf(name, sizeof(name), "e%d", i);
		cr_assert_eq(chan_leave(reg, find(reg, name), &a.cl), WR_OK);
	}
	chan_foreach(reg, count_channel, &s);
	cr_expect_eq(s.calls, 200);
	for (int i = 0; i < 300; i++)
		cr_expect_eq(s.hits[i], i % 3 ? 1 : 0, "channel e%d", i);
	chan_client_fini(reg, &a.cl);
	chan_registry_destroy(reg);
}

Test(registry, growth_10000_channels)
{
	enum { NCHAN = 10000 };
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, NCHAN);
	struct tcl a;
	struct chan_channel **ch = calloc(NCHAN, sizeof(*ch));
	struct chan_registry_stats st;
	char name[32];

	cr_assert_not_null(ch);
	tcl_init(&a);
	for (int i = 0; i < NCHAN; i++) {
		snprintf(name, sizeof(name), "grow-%d", i);
		ch[i] = mkchan(reg, name);
		cr_assert_eq(chan_join(reg, ch[i], &a.cl), WR_OK);
		/* every earlier channel is still found across each resize */
		if ((i & (i + 1)) == 0)
			for (int k = 0; k <= i; k++) {
				snprintf(name, sizeof(name), "grow-%d", k);
				cr_assert_eq(find(reg, name), ch[k],
					     "after %d: %d", i, k);
			}
	}
	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, NCHAN);
	cr_expect_eq(st.subscriptions, NCHAN);
	for (int i = 0; i < NCHAN; i++) {
		size_t len;

		snprintf(name, sizeof(name), "grow-%d", i);
		cr_assert_eq(find(reg, name), ch[i], "%s", name);
		cr_assert_str_eq(chan_name(ch[i], &len), name);
		cr_assert_eq(len, strlen(name));
	}
	cr_expect_null(find(reg, "grow-10000"));
	cr_expect_null(find(reg, "grow-"));

	/* leave every other one */
	for (int i = 0; i < NCHAN; i += 2)
		cr_assert_eq(chan_leave(reg, ch[i], &a.cl), WR_OK);
	cr_expect_eq(r.closed, NCHAN / 2);
	for (int i = 0; i < NCHAN; i++) {
		snprintf(name, sizeof(name), "grow-%d", i);
		cr_assert_eq(find(reg, name), i % 2 ? ch[i] : NULL, "%s", name);
	}
	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, NCHAN / 2);
	cr_expect_eq(st.subscriptions, NCHAN / 2);
	cr_expect_eq(a.cl.nsubs, NCHAN / 2);
	chan_client_fini(reg, &a.cl);
	cr_expect_eq(r.closed, NCHAN);
	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, 0);
	cr_expect_eq(st.subscriptions, 0);
	free(ch);
	chan_registry_destroy(reg);
}

Test(registry, stats)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 16);
	struct tcl c[3];
	struct chan_channel *x = mkchan(reg, "x"), *y = mkchan(reg, "y");
	struct chan_registry_stats st;
	static const struct {
		int op;     /* 1 join, -1 leave */
		int cl, ch; /* ch: 0 = x, 1 = y */
		unsigned channels;
		uint64_t subs;
	} t[] = {
		{ 1, 0, 0, 2, 1 },  { 1, 1, 0, 2, 2 },
		{ 1, 2, 0, 2, 3 },  { 1, 0, 1, 2, 4 },
		{ -1, 1, 0, 2, 3 }, { -1, 0, 1, 1, 2 }, /* y empties */
		{ -1, 0, 0, 1, 1 }, { -1, 2, 0, 0, 0 }, /* x empties */
	};

	for (int i = 0; i < 3; i++)
		tcl_init(&c[i]);
	chan_registry_stats(reg, &st);
	cr_expect_eq(st.channels, 2, "created, not yet joined");
	cr_expect_eq(st.subscriptions, 0);
	for (size_t i = 0; i < N(t); i++) {
		struct chan_channel *ch = t[i].ch ? y : x;

		if (t[i].op > 0)
			cr_assert_eq(chan_join(reg, ch, &c[t[i].cl].cl), WR_OK,
				     "row %zu", i);
		else
			cr_assert_eq(chan_leave(reg, ch, &c[t[i].cl].cl), WR_OK,
				     "row %zu", i);
		chan_registry_stats(reg, &st);
		cr_expect_eq(st.channels, t[i].channels, "row %zu: %u", i,
			     st.channels);
		cr_expect_eq(st.subscriptions, t[i].subs, "row %zu", i);
	}
	for (int i = 0; i < 3; i++)
		chan_client_fini(reg, &c[i].cl);
	chan_registry_destroy(reg);
}

/* What the mesh uses: members by index (evicting a channel), created,
 * and dropping a channel whose first join failed, without ops->closed. */
Test(registry, members_created_and_drop_empty)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 1 << 20, 8);
	struct tcl a, b;
	struct chan_channel *ch = NULL;

	tcl_init(&a);
	tcl_init(&b);
	cr_assert_eq(chan_create(reg, "ev", 2, NULL, 1234, &ch), WR_OK);
	cr_expect_eq(chan_created(ch), 1234);
	cr_assert_eq(chan_join(reg, ch, &a.cl), WR_OK);
	cr_assert_eq(chan_join(reg, ch, &b.cl), WR_OK);
	cr_expect_eq(chan_members(ch), 2);
	cr_expect(chan_member(ch, 0) == &a.cl || chan_member(ch, 0) == &b.cl);
	cr_expect_neq(chan_member(ch, 0), chan_member(ch, 1));
	cr_expect_null(chan_member(ch, 2));
	chan_drop_empty(reg, ch); /* has members: a no-op */
	cr_expect_eq(find(reg, "ev"), ch);
	/* evict the way the mesh does: always member 0 until none is left */
	while (chan_members(ch) > 1)
		cr_assert_eq(chan_leave(reg, ch, chan_member(ch, 0)), WR_OK);
	cr_assert_eq(chan_leave(reg, ch, chan_member(ch, 0)), WR_OK);
	cr_expect_null(find(reg, "ev"));
	cr_expect_eq(r.closed, 1);

	cr_assert_eq(chan_create(reg, "never", 5, NULL, 1, &ch), WR_OK);
	chan_drop_empty(reg, ch);
	cr_expect_null(find(reg, "never"));
	cr_expect_eq(r.closed, 1); /* never open: no closed callback */
	chan_client_fini(reg, &a.cl);
	chan_client_fini(reg, &b.cl);
	chan_registry_destroy(reg);
}

/* A client is never cut for one frame: an empty queue takes a response
 * bigger than max_queue_bytes whole; the next frame over the bound then
 * cuts it as usual. */
Test(registry, one_big_frame_is_never_a_slow_consumer)
{
	struct rec r;
	struct chan_registry *reg = mkreg(&r, 100, 16);
	struct tcl a;
	struct wr_msg *big = mkmsg(500, 'b'), *small = mkmsg(10, 's');

	tcl_init(&a);
	cr_expect_eq(chan_client_push(reg, &a.cl, big), WR_OK);
	cr_expect_eq(r.overflows, 0);
	cr_expect_eq(a.cl.q_len, 1);
	cr_expect_eq(chan_client_push(reg, &a.cl, small), WR_EFULL);
	cr_expect_eq(r.overflows, 1, "a queue over its bound is cut");
	chan_client_fini(reg, &a.cl);
	wr_msg_unref(&big);
	wr_msg_unref(&small);
	chan_registry_destroy(reg);
}
