/*
 * tests/unit/test_presence: presence state of PROTOCOL.md 7.4 / 7.5.9
 * without sockets - the local users of a channel (tabs counted), the
 * holders' lists and the edges of "present on some node": one join per
 * user whatever its tabs and nodes, a leave only when the last one goes,
 * a baseline without events, a dropped holder, and the registry's frames
 * (not to the joiner, none for anonymous members, only to listeners).
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

/* The events seen, "+alice" / "-bob", in order. */
struct seen {
	char ev[32][40];
	unsigned n;
};

static void record(void *arg, bool join, const char *user, size_t len)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 32);
	snprintf(s->ev[s->n++], sizeof(s->ev[0]), "%c%.*s", join ? '+' : '-',
		 (int)len, user);
}

/* A malloc'd list of the given names, for chan_pres_remote_set. */
static char **list(unsigned n, ...)
{
	char **v = calloc(n ? n : 1, sizeof(*v));
	va_list ap;

	va_start(ap, n);
	for (unsigned i = 0; i < n; i++)
		v[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
	return v;
}

static struct chan_user *add(struct chan_pres *p, const char *name,
			     bool want_joined)
{
	bool joined;
	struct chan_user *u = chan_pres_local_add(p, name, strlen(name),
						  &joined);

	cr_assert_not_null(u);
	cr_expect_eq(joined, want_joined, "%s", name);
	return u;
}

Test(presence, local_tabs_count_once)
{
	struct chan_pres *p = chan_pres_create();
	struct seen s = { 0 };
	struct chan_user *a1 = add(p, "alice", true);
	struct chan_user *a2 = add(p, "alice", false);
	struct chan_user *b = add(p, "bob", true);

	cr_expect_eq(chan_pres_local_count(p), 2);
	cr_expect(!chan_pres_local_remove(p, a1, record, &s), "a tab left");
	cr_expect_eq(s.n, 0);
	cr_expect(chan_pres_local_remove(p, a2, record, &s));
	cr_assert_eq(s.n, 1);
	cr_expect_str_eq(s.ev[0], "-alice");
	cr_expect(chan_pres_local_remove(p, b, record, &s));
	cr_expect_eq(chan_pres_local_count(p), 0);
	chan_pres_destroy(p);
}

static void collect(void *arg, const char *user, size_t len)
{
	struct seen *s = arg;

	snprintf(s->ev[s->n++], sizeof(s->ev[0]), "%.*s", (int)len, user);
}

Test(presence, local_users_sorted_and_rev_grows)
{
	struct chan_pres *p = chan_pres_create();
	struct seen s = { 0 };
	uint64_t r0 = chan_pres_rev(p);

	add(p, "carol", true);
	add(p, "alice", true);
	add(p, "bob", true);
	add(p, "alice", false);
	cr_expect_eq(chan_pres_rev(p), r0 + 3, "a new tab is no change");
	chan_pres_local_each(p, collect, &s);
	cr_assert_eq(s.n, 3);
	cr_expect_str_eq(s.ev[0], "alice");
	cr_expect_str_eq(s.ev[1], "bob");
	cr_expect_str_eq(s.ev[2], "carol");
	chan_pres_destroy(p);
}

Test(presence, holders_edges_across_nodes)
{
	struct chan_pres *p = chan_pres_create();
	struct seen s = { 0 };
	struct chan_user *a;

	/* baseline: quiet */
	cr_assert_eq(chan_pres_remote_set(p, "b", list(2, "bob", "zed"), 2,
					  true, record, &s),
		     WR_OK);
	cr_expect_eq(s.n, 0);
	/* bob is at b already: a local bob is no join */
	add(p, "bob", false);
	/* c reports alice twice (dedup) and bob: only alice joins */
	chan_pres_remote_set(p, "c", list(3, "bob", "alice", "alice"), 3, false,
			     record, &s);
	cr_assert_eq(s.n, 1);
	cr_expect_str_eq(s.ev[0], "+alice");
	/* alice arrives here too: no join (c has her) */
	a = add(p, "alice", false);
	/* c loses alice and bob: alice is here, bob here and at b: nothing */
	chan_pres_remote_set(p, "c", list(0), 0, false, record, &s);
	cr_expect_eq(s.n, 1);
	/* zed leaves b: the only one who had him */
	chan_pres_remote_set(p, "b", list(1, "bob"), 1, false, record, &s);
	cr_assert_eq(s.n, 2);
	cr_expect_str_eq(s.ev[1], "-zed");
	/* the local alice goes: nobody else has her */
	chan_pres_local_remove(p, a, record, &s);
	cr_assert_eq(s.n, 3);
	cr_expect_str_eq(s.ev[2], "-alice");
	chan_pres_destroy(p);
}

Test(presence, dropped_holder_users_leave_unless_elsewhere)
{
	struct chan_pres *p = chan_pres_create();
	struct seen s = { 0 };

	chan_pres_remote_set(p, "b", list(2, "ann", "bo"), 2, true, record, &s);
	chan_pres_remote_set(p, "c", list(1, "bo"), 1, true, record, &s);
	cr_expect(chan_pres_known(p, "b"));
	chan_pres_remote_drop(p, "b", record, &s);
	cr_expect(!chan_pres_known(p, "b"));
	cr_assert_eq(s.n, 1);
	cr_expect_str_eq(s.ev[0], "-ann");
	chan_pres_remote_drop(p, "nobody", record, &s);
	chan_pres_remote_drop(p, "c", record, &s);
	cr_assert_eq(s.n, 2);
	cr_expect_str_eq(s.ev[1], "-bo");
	/* forgetting (no listener) is silent and resets the baseline */
	chan_pres_remote_set(p, "d", list(1, "x"), 1, false, record, &s);
	chan_pres_set_seeded(p);
	chan_pres_forget_remote(p);
	cr_expect_eq(s.n, 3);
	cr_expect(!chan_pres_seeded(p));
	cr_expect(!chan_pres_known(p, "d"));
	chan_pres_destroy(p);
}

/* ---- the registry's frames ---- */

static void no_wake(struct chan_client *cl, void *arg)
{
	(void)cl;
	(void)arg;
}

static const struct chan_ops ops = { .wake = no_wake };

static const char *text(const struct chan_client *cl, unsigned i)
{
	static char buf[256];
	struct wr_msg *m = chan_client_peek(cl, i);
	size_t hl;

	cr_assert_not_null(m, "frame %u", i);
	hl = (m->data[1] & 0x7f) == 126 ? 4 : 2;
	snprintf(buf, sizeof(buf), "%.*s", (int)(m->len - hl),
		 (const char *)m->data + hl);
	return buf;
}

Test(presence, registry_frames_to_listeners_only)
{
	struct chan_limits lim = { 1 << 20, 16, { 0, 1000, 1 << 20, 0 } };
	struct chan_registry *reg = chan_registry_create(&lim, &ops, NULL);
	struct chan_client lis, plain, alice, alice2, anon;
	struct chan_channel *ch;

	cr_assert_not_null(reg);
	chan_client_init(&lis, NULL);
	chan_client_init(&plain, NULL);
	chan_client_init(&alice, NULL);
	chan_client_init(&alice2, NULL);
	chan_client_init(&anon, NULL);
	cr_assert_eq(chan_create(reg, "r", 1, NULL, 0, &ch), WR_OK);
	cr_assert_eq(chan_join_as(reg, ch, &lis, CHAN_SUB_PRESENCE, "lee", 3),
		     WR_OK);
	cr_expect_eq(lis.q_len, 0, "no own join");
	cr_expect_eq(chan_presence_channels(reg), 1);
	chan_join_as(reg, ch, &plain, 0, "pat", 3);
	chan_join_as(reg, ch, &alice, CHAN_SUB_PRESENCE, "alice", 5);
	chan_join_as(reg, ch, &alice2, 0, "alice", 5);
	chan_join_as(reg, ch, &anon, 0, NULL, 0);
	cr_assert_eq(lis.q_len, 2);
	cr_expect_str_eq(text(&lis, 0),
			 "{\"type\":\"join\",\"data\":{\"channel\":\"r\","
			 "\"user\":\"pat\"}}");
	cr_expect_str_eq(text(&lis, 1),
			 "{\"type\":\"join\",\"data\":{\"channel\":\"r\","
			 "\"user\":\"alice\"}}");
	cr_expect_eq(plain.q_len, 0, "not a listener");
	cr_expect_eq(alice.q_len, 0, "not its own join");
	/* a holder reports bob: listeners hear it */
	chan_presence_remote(reg, ch, "b", list(1, "bob"), 1, false);
	cr_assert_eq(lis.q_len, 3);
	cr_expect_eq(alice.q_len, 1);
	/* anonymous and second tabs leave silently; the last alice does not */
	chan_leave(reg, ch, &anon);
	chan_leave(reg, ch, &alice2);
	cr_expect_eq(lis.q_len, 3);
	chan_leave(reg, ch, &alice);
	cr_assert_eq(lis.q_len, 4);
	cr_expect_str_eq(text(&lis, 3),
			 "{\"type\":\"leave\",\"data\":{\"channel\":\"r\","
			 "\"user\":\"alice\"}}");
	cr_expect_eq(chan_presence_events(reg), 5);
	/* the last listener goes: the lists are forgotten */
	chan_leave(reg, ch, &lis);
	cr_expect_eq(chan_presence_channels(reg), 0);
	cr_expect(!chan_pres_known(chan_presence(ch), "b"));
	chan_client_fini(reg, &plain);
	chan_client_fini(reg, &lis);
	chan_client_fini(reg, &alice);
	chan_client_fini(reg, &alice2);
	chan_client_fini(reg, &anon);
	chan_registry_destroy(reg);
}
