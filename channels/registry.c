/*
 * channels/registry: active channels by name (keyed SipHash table, so
 * clients cannot flood one bucket), membership as (client, channel) records
 * indexed from both sides for O(1) leave, and the per-client frame rings.
 * Invariant: a channel in the table has >= 1 member, except between
 * chan_create() and the chan_join() that follows it.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "channels.h"

struct chan_member {
	struct chan_channel *ch;
	struct chan_client *cl;
	unsigned ch_idx;        /* index in ch->members */
	unsigned cl_idx;        /* index in cl->subs */
	unsigned flags;         /* CHAN_SUB_* */
	struct chan_user *user; /* presence (7.4); NULL: anonymous */
};

/* The flags that change how a message is queued (not PRESENCE). */
#define FANOUT_FLAGS (CHAN_SUB_RECOVER | CHAN_SUB_HELD)

struct chan_channel {
	struct chan_channel *next; /* hash chain */
	uint64_t hv;
	struct chan_member **members;
	unsigned nmembers, cap;
	bool has_hash;
	uint8_t hash[CHAN_HASH_LEN];
	int64_t created_ms;
	unsigned nflagged;      /* members with CHAN_SUB_RECOVER or _HELD */
	unsigned npresence;     /* members with CHAN_SUB_PRESENCE */
	struct chan_pres *pres; /* NULL until a user or a listener came */
	int64_t linger_until;   /* lingering (no member) until then; 0: not */
	unsigned linger_idx;    /* in reg->lingering */
	struct chan_ring ring;
	size_t name_len;
	char name[]; /* NUL-terminated for convenience */
};

struct chan_registry {
	struct chan_limits lim;
	const struct chan_ops *ops;
	void *arg;
	struct chan_channel **buckets;
	unsigned nbuckets; /* power of two */
	unsigned nchannels;
	uint64_t nsubs;
	unsigned char key[crypto_shorthash_KEYBYTES];
	struct chan_hist hist;
	/* epochs: the keyed hash of a counter, random to the outside and
	 * one getrandom at start rather than one per channel */
	unsigned char ekey[crypto_shorthash_KEYBYTES];
	uint64_t epochs;
	uint64_t pres_events;
	unsigned pres_channels; /* channels with a PRESENCE member */
	/* channels with no member kept for a recovery (linger_ms) */
	struct chan_channel **lingering;
	unsigned nlinger, linger_cap;
};

/* @ch's PRESENCE members change by @d (+1 / -1). */
static void listeners_add(struct chan_registry *reg, struct chan_channel *ch,
			  int d)
{
	unsigned before = ch->npresence;

	ch->npresence = (unsigned)((int)ch->npresence + d);
	if (!before && ch->npresence)
		reg->pres_channels++;
	else if (before && !ch->npresence)
		reg->pres_channels--;
}

static uint64_t name_hash(const struct chan_registry *reg, const char *p,
			  size_t n)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(out, (const unsigned char *)p, n, reg->key);
	memcpy(&v, out, sizeof(v));
	return v;
}

struct chan_registry *chan_registry_create(const struct chan_limits *lim,
					   const struct chan_ops *ops,
					   void *arg)
{
	struct chan_registry *reg;

	if (sodium_init() < 0)
		return NULL;
	reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	reg->lim = *lim;
	reg->ops = ops;
	reg->arg = arg;
	reg->nbuckets = 64;
	reg->buckets = calloc(reg->nbuckets, sizeof(*reg->buckets));
	if (!reg->buckets) {
		free(reg);
		return NULL;
	}
	randombytes_buf(reg->key, sizeof(reg->key));
	randombytes_buf(reg->ekey, sizeof(reg->ekey));
	chan_hist_init(&reg->hist, &lim->hist);
	return reg;
}

static int leave(struct chan_registry *reg, struct chan_channel *ch,
		 struct chan_client *cl, bool linger);
static void linger_del(struct chan_registry *reg, struct chan_channel *ch);

static void channel_free(struct chan_registry *reg, struct chan_channel *ch)
{
	chan_ring_fini(&reg->hist, &ch->ring); /* 7.3: the ring goes with it */
	chan_pres_destroy(ch->pres);
	free(ch->members);
	free(ch);
}

void chan_registry_set_limits(struct chan_registry *reg,
			      const struct chan_limits *lim)
{
	reg->lim = *lim;
	chan_hist_set_limits(&reg->hist, &lim->hist, wr_now_ms());
}

struct chan_ring *chan_ring_of(struct chan_channel *ch)
{
	return &ch->ring;
}

struct chan_hist *chan_registry_hist(struct chan_registry *reg)
{
	return &reg->hist;
}

void chan_registry_destroy(struct chan_registry *reg)
{
	if (!reg)
		return;
	for (unsigned i = 0; i < reg->nbuckets; i++) {
		struct chan_channel *ch = reg->buckets[i], *next;

		for (; ch; ch = next) {
			next = ch->next;
			/* members are owned by clients, already finalised */
			channel_free(reg, ch);
		}
	}
	free(reg->lingering);
	free(reg->buckets);
	free(reg);
}

void chan_client_init(struct chan_client *cl, void *owner)
{
	memset(cl, 0, sizeof(*cl));
	cl->owner = owner;
}

static void queue_clear(struct chan_client *cl)
{
	for (unsigned i = 0; i < cl->q_len; i++)
		wr_msg_unref(&cl->q[(cl->q_head + i) & (cl->q_cap - 1)]);
	cl->q_head = cl->q_len = 0;
	cl->q_bytes = 0;
	cl->q_off = 0;
}

void chan_client_fini(struct chan_registry *reg, struct chan_client *cl)
{
	/* leave from the back: leave() swap-removes from cl->subs */
	while (cl->nsubs)
		leave(reg, cl->subs[cl->nsubs - 1]->ch, cl, true);
	free(cl->subs);
	cl->subs = NULL;
	cl->subs_cap = 0;
	queue_clear(cl);
	free(cl->q);
	cl->q = NULL;
	cl->q_cap = 0;
}

struct chan_channel *chan_find(struct chan_registry *reg, const char *name,
			       size_t len)
{
	uint64_t hv = name_hash(reg, name, len);
	struct chan_channel *ch = reg->buckets[hv & (reg->nbuckets - 1)];

	for (; ch; ch = ch->next)
		if (ch->hv == hv && ch->name_len == len &&
		    !memcmp(ch->name, name, len))
			return ch;
	return NULL;
}

static void table_grow(struct chan_registry *reg)
{
	unsigned n = reg->nbuckets * 2;
	struct chan_channel **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* keep the old table: longer chains, still correct */
	for (unsigned i = 0; i < reg->nbuckets; i++) {
		struct chan_channel *ch = reg->buckets[i], *next;

		for (; ch; ch = next) {
			next = ch->next;
			ch->next = b[ch->hv & (n - 1)];
			b[ch->hv & (n - 1)] = ch;
		}
	}
	free(reg->buckets);
	reg->buckets = b;
	reg->nbuckets = n;
}

int chan_create(struct chan_registry *reg, const char *name, size_t len,
		const uint8_t *hash, int64_t created_ms,
		struct chan_channel **out)
{
	struct chan_channel *ch;
	uint64_t hv;

	if (!chan_name_valid(name, len))
		return WR_EINVAL;
	if (chan_find(reg, name, len))
		return WR_EEXIST;
	ch = calloc(1, sizeof(*ch) + len + 1);
	if (!ch)
		return WR_ENOMEM;
	memcpy(ch->name, name, len);
	ch->name_len = len;
	ch->created_ms = created_ms;
	if (hash) {
		ch->has_hash = true;
		memcpy(ch->hash, hash, CHAN_HASH_LEN);
	}
	{
		unsigned char e[crypto_shorthash_BYTES];
		uint64_t n = ++reg->epochs;
		char hex[2 * sizeof(e) + 1];

		crypto_shorthash(e, (const unsigned char *)&n, sizeof(n),
				 reg->ekey);
		wr_hex(hex, e, sizeof(e));
		chan_ring_init(&ch->ring, hex);
	}
	hv = name_hash(reg, name, len);
	ch->hv = hv;
	if (reg->nchannels >= reg->nbuckets)
		table_grow(reg);
	ch->next = reg->buckets[hv & (reg->nbuckets - 1)];
	reg->buckets[hv & (reg->nbuckets - 1)] = ch;
	reg->nchannels++;
	*out = ch;
	return WR_OK;
}

static void table_remove(struct chan_registry *reg, struct chan_channel *ch)
{
	struct chan_channel **pp = &reg->buckets[ch->hv & (reg->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			reg->nchannels--;
			return;
		}
}

static int grow_array(void *parray, unsigned *cap, unsigned need)
{
	void **arr = *(void ***)parray;
	unsigned n;

	if (need <= *cap)
		return WR_OK;
	n = *cap ? *cap * 2 : 1; /* most clients and channels: one */
	while (n < need)
		n *= 2;
	arr = realloc(arr, n * sizeof(void *));
	if (!arr)
		return WR_ENOMEM;
	*(void ***)parray = arr;
	*cap = n;
	return WR_OK;
}

bool chan_is_member(const struct chan_channel *ch, const struct chan_client *cl)
{
	/* scan the shorter side */
	if (cl->nsubs <= ch->nmembers) {
		for (unsigned i = 0; i < cl->nsubs; i++)
			if (cl->subs[i]->ch == ch)
				return true;
	} else {
		for (unsigned i = 0; i < ch->nmembers; i++)
			if (ch->members[i]->cl == cl)
				return true;
	}
	return false;
}

int chan_join(struct chan_registry *reg, struct chan_channel *ch,
	      struct chan_client *cl)
{
	return chan_join_flags(reg, ch, cl, 0);
}

static struct chan_member *member_find(const struct chan_channel *ch,
				       const struct chan_client *cl)
{
	for (unsigned i = 0; i < cl->nsubs; i++)
		if (cl->subs[i]->ch == ch)
			return cl->subs[i];
	return NULL;
}

int chan_sub_set_flags(struct chan_registry *reg, struct chan_channel *ch,
		       struct chan_client *cl, unsigned flags)
{
	struct chan_member *m = member_find(ch, cl);

	if (!m)
		return WR_ENOENT;
	ch->nflagged -= (m->flags & FANOUT_FLAGS) != 0;
	if (m->flags & CHAN_SUB_PRESENCE)
		listeners_add(reg, ch, -1);
	m->flags = flags;
	ch->nflagged += (flags & FANOUT_FLAGS) != 0;
	if (flags & CHAN_SUB_PRESENCE) {
		if (!ch->pres && !(ch->pres = chan_pres_create()))
			return WR_ENOMEM;
		listeners_add(reg, ch, 1);
	}
	if (!ch->npresence && ch->pres) /* nobody listens: no lists kept */
		chan_pres_forget_remote(ch->pres);
	return WR_OK;
}

unsigned chan_sub_flags(const struct chan_channel *ch,
			const struct chan_client *cl)
{
	struct chan_member *m = member_find(ch, cl);

	return m ? m->flags : 0;
}

int chan_join_flags(struct chan_registry *reg, struct chan_channel *ch,
		    struct chan_client *cl, unsigned flags)
{
	return chan_join_as(reg, ch, cl, flags, NULL, 0);
}

/* ---- presence events (7.4) ---- */

struct emit_ctx {
	struct chan_registry *reg;
	struct chan_channel *ch;
	const struct chan_client *except;
};

/* {"type":"join"|"leave","data":{"channel","user"}} to every PRESENCE
 * member but ctx->except, one shared frame. */
static void emit(void *arg, bool join, const char *user, size_t len)
{
	struct emit_ctx *x = arg;
	struct chan_channel *ch = x->ch;
	struct wr_buf b;
	struct wr_msg *m;

	if (!ch->npresence)
		return;
	wr_buf_init(&b);
	wr_buf_puts(&b, join ? "{\"type\":\"join\"" : "{\"type\":\"leave\"");
	wr_buf_puts(&b, ",\"data\":{\"channel\":");
	wr_buf_json_str(&b, ch->name, ch->name_len);
	wr_buf_puts(&b, ",\"user\":");
	wr_buf_json_str(&b, user, len);
	wr_buf_puts(&b, "}}");
	m = b.oom ? NULL : wr_ws_text_frame(b.p, b.len);
	wr_buf_fini(&b);
	if (!m)
		return;
	for (unsigned i = 0; i < ch->nmembers; i++) {
		struct chan_member *mb = ch->members[i];

		if (!(mb->flags & CHAN_SUB_PRESENCE) || mb->cl == x->except)
			continue;
		if (chan_client_push(x->reg, mb->cl, m) == WR_OK)
			x->reg->pres_events++;
	}
	wr_msg_unref(&m);
}

struct chan_pres *chan_presence(struct chan_channel *ch)
{
	return ch->pres;
}

unsigned chan_presence_listeners(const struct chan_channel *ch)
{
	return ch->npresence;
}

unsigned chan_presence_channels(const struct chan_registry *reg)
{
	return reg->pres_channels;
}

uint64_t chan_presence_events(const struct chan_registry *reg)
{
	return reg->pres_events;
}

int chan_presence_remote(struct chan_registry *reg, struct chan_channel *ch,
			 const char *holder, char **users, unsigned n,
			 bool quiet)
{
	struct emit_ctx x = { reg, ch, NULL };

	if (!ch->pres)
		ch->pres = chan_pres_create();
	if (!ch->pres) {
		for (unsigned i = 0; i < n; i++)
			free(users[i]);
		free(users);
		return WR_ENOMEM;
	}
	return chan_pres_remote_set(ch->pres, holder, users, n, quiet, emit,
				    &x);
}

void chan_presence_drop(struct chan_registry *reg, struct chan_channel *ch,
			const char *holder)
{
	struct emit_ctx x = { reg, ch, NULL };

	if (ch->pres)
		chan_pres_remote_drop(ch->pres, holder, emit, &x);
}

int chan_join_as(struct chan_registry *reg, struct chan_channel *ch,
		 struct chan_client *cl, unsigned flags, const char *user,
		 size_t ulen)
{
	struct chan_member *m;
	struct chan_user *u = NULL;
	bool joined = false;

	if (chan_is_member(ch, cl))
		return WR_EEXIST;
	if (cl->nsubs >= reg->lim.max_subscriptions)
		return WR_EFULL;
	if (grow_array(&ch->members, &ch->cap, ch->nmembers + 1) ||
	    grow_array(&cl->subs, &cl->subs_cap, cl->nsubs + 1))
		return WR_ENOMEM;
	if ((user || (flags & CHAN_SUB_PRESENCE)) && !ch->pres &&
	    !(ch->pres = chan_pres_create()))
		return WR_ENOMEM;
	if (user && !(u = chan_pres_local_add(ch->pres, user, ulen, &joined)))
		return WR_ENOMEM;
	m = malloc(sizeof(*m));
	if (!m) {
		if (u)
			chan_pres_local_remove(ch->pres, u, NULL, NULL);
		return WR_ENOMEM;
	}
	if (ch->linger_until) /* someone is back: open as before */
		linger_del(reg, ch);
	m->ch = ch;
	m->cl = cl;
	m->flags = flags;
	m->user = u;
	ch->nflagged += (flags & FANOUT_FLAGS) != 0;
	if (flags & CHAN_SUB_PRESENCE)
		listeners_add(reg, ch, 1);
	m->ch_idx = ch->nmembers;
	m->cl_idx = cl->nsubs;
	ch->members[ch->nmembers++] = m;
	cl->subs[cl->nsubs++] = m;
	reg->nsubs++;
	if (joined) { /* 7.5.9: not to the joiner itself */
		struct emit_ctx x = { reg, ch, cl };

		emit(&x, true, user, ulen);
	}
	return WR_OK;
}

/* ---- lingering channels (7.3: a recovery after a dropped connection) ---- */

static void linger_del(struct chan_registry *reg, struct chan_channel *ch)
{
	struct chan_channel *last = reg->lingering[--reg->nlinger];

	reg->lingering[ch->linger_idx] = last;
	last->linger_idx = ch->linger_idx;
	ch->linger_until = 0;
}

/* Keeps the emptied @ch open until now + linger_ms; false when it
 * cannot (history off, linger 0, no memory): it closes then. */
static bool linger_add(struct chan_registry *reg, struct chan_channel *ch)
{
	if (!reg->lim.hist.size || reg->lim.hist.linger_ms <= 0)
		return false;
	if (grow_array(&reg->lingering, &reg->linger_cap, reg->nlinger + 1))
		return false;
	ch->linger_idx = reg->nlinger;
	reg->lingering[reg->nlinger++] = ch;
	ch->linger_until = wr_now_ms() + reg->lim.hist.linger_ms;
	return true;
}

static void channel_close(struct chan_registry *reg, struct chan_channel *ch)
{
	if (reg->ops && reg->ops->closed)
		reg->ops->closed(ch, reg->arg);
	table_remove(reg, ch);
	channel_free(reg, ch);
}

void chan_linger_expire(struct chan_registry *reg, int64_t now_ms)
{
	for (unsigned i = reg->nlinger; i-- > 0;) {
		struct chan_channel *ch = reg->lingering[i];

		if (i >= reg->nlinger || ch->linger_until > now_ms)
			continue;
		linger_del(reg, ch);
		channel_close(reg, ch);
	}
}

unsigned chan_lingering(const struct chan_registry *reg)
{
	return reg->nlinger;
}

int chan_leave(struct chan_registry *reg, struct chan_channel *ch,
	       struct chan_client *cl)
{
	return leave(reg, ch, cl, false);
}

/* @linger: the client's connection went away (not an unsubscribe): the
 * last one out leaves the channel lingering. */
static int leave(struct chan_registry *reg, struct chan_channel *ch,
		 struct chan_client *cl, bool linger)
{
	struct chan_member *m = NULL, *last;

	for (unsigned i = 0; i < cl->nsubs; i++)
		if (cl->subs[i]->ch == ch) {
			m = cl->subs[i];
			break;
		}
	if (!m)
		return WR_ENOENT;
	/* swap-remove from both sides, fixing the moved records' indexes */
	last = ch->members[--ch->nmembers];
	ch->members[m->ch_idx] = last;
	last->ch_idx = m->ch_idx;
	last = cl->subs[--cl->nsubs];
	cl->subs[m->cl_idx] = last;
	last->cl_idx = m->cl_idx;
	ch->nflagged -= (m->flags & FANOUT_FLAGS) != 0;
	if (m->flags & CHAN_SUB_PRESENCE)
		listeners_add(reg, ch, -1);
	if (m->user) {
		struct emit_ctx x = { reg, ch, NULL };

		chan_pres_local_remove(ch->pres, m->user, emit, &x);
	}
	if (!ch->npresence && ch->pres)
		chan_pres_forget_remote(ch->pres);
	free(m);
	reg->nsubs--;
	if (ch->nmembers == 0 && !(linger && linger_add(reg, ch)))
		channel_close(reg, ch);
	return WR_OK;
}

void chan_drop_empty(struct chan_registry *reg, struct chan_channel *ch)
{
	if (ch->nmembers)
		return;
	table_remove(reg, ch);
	channel_free(reg, ch);
}

const char *chan_name(const struct chan_channel *ch, size_t *len)
{
	if (len)
		*len = ch->name_len;
	return ch->name;
}

const uint8_t *chan_hash(const struct chan_channel *ch)
{
	return ch->has_hash ? ch->hash : NULL;
}

int64_t chan_created(const struct chan_channel *ch)
{
	return ch->created_ms;
}

struct chan_client *chan_member(const struct chan_channel *ch, unsigned i)
{
	return i < ch->nmembers ? ch->members[i]->cl : NULL;
}

unsigned chan_members(const struct chan_channel *ch)
{
	return ch->nmembers;
}

static void overflow(struct chan_registry *reg, struct chan_client *cl)
{
	cl->overflowed = true;
	if (reg->ops && reg->ops->overflow)
		reg->ops->overflow(cl, reg->arg);
	queue_clear(cl);
}

/* Pushes without waking; returns 1 when the queue was empty, 0, or <0. */
static int queue_push(struct chan_registry *reg, struct chan_client *cl,
		      struct wr_msg *frame)
{
	bool was_empty = cl->q_len == 0;

	if (cl->overflowed)
		return WR_EFULL;
	/* a queue over its bound is cut, but never for one frame alone: an
	 * empty queue takes a big response (list) whole */
	if (cl->q_len && cl->q_bytes + frame->len > reg->lim.max_queue_bytes) {
		overflow(reg, cl);
		return WR_EFULL;
	}
	if (cl->q_len == cl->q_cap) {
		/* from two: an idle client holds a small ring (it had a
		 * response or two); a busy one doubles to what it needs */
		unsigned n = cl->q_cap ? cl->q_cap * 2 : 2;
		struct wr_msg **q = malloc(n * sizeof(*q));

		if (!q) {
			overflow(reg, cl);
			return WR_ENOMEM;
		}
		for (unsigned i = 0; i < cl->q_len; i++)
			q[i] = cl->q[(cl->q_head + i) & (cl->q_cap - 1)];
		free(cl->q);
		cl->q = q;
		cl->q_cap = n;
		cl->q_head = 0;
	}
	cl->q[(cl->q_head + cl->q_len) & (cl->q_cap - 1)] = wr_msg_ref(frame);
	cl->q_len++;
	cl->q_bytes += frame->len;
	return was_empty;
}

int chan_client_push(struct chan_registry *reg, struct chan_client *cl,
		     struct wr_msg *frame)
{
	int rc = queue_push(reg, cl, frame);

	if (rc < 0)
		return rc;
	if (rc && reg->ops && reg->ops->wake)
		reg->ops->wake(cl, reg->arg);
	return WR_OK;
}

unsigned chan_publish(struct chan_registry *reg, struct chan_channel *ch,
		      struct wr_msg *frame, const struct chan_client *except)
{
	unsigned n = 0;

	/*
	 * An overflow callback may close its client but must not change
	 * membership synchronously (the node defers that to the close), so
	 * walking ch->members here is safe.
	 */
	for (unsigned i = 0; i < ch->nmembers; i++) {
		struct chan_client *cl = ch->members[i]->cl;
		int rc;

		if (cl == except)
			continue;
		rc = queue_push(reg, cl, frame);
		if (rc < 0)
			continue;
		n++;
		if (rc && reg->ops && reg->ops->wake)
			reg->ops->wake(cl, reg->arg);
	}
	return n;
}

unsigned chan_publish_msg(struct chan_registry *reg, struct chan_channel *ch,
			  struct wr_msg *frame,
			  const struct chan_delivery_pos *pos,
			  const struct chan_client *except, int64_t now_ms)
{
	uint64_t off = chan_ring_append(&reg->hist, &ch->ring, frame, pos,
					now_ms);
	struct wr_msg *ofr = NULL;
	unsigned n = 0;

	if (!ch->nflagged) /* nobody recovering: today's fan-out exactly */
		return chan_publish(reg, ch, frame, except);
	for (unsigned i = 0; i < ch->nmembers; i++) {
		struct chan_member *mb = ch->members[i];
		struct wr_msg *f = frame;
		int rc;

		if (mb->cl == except || (mb->flags & CHAN_SUB_HELD))
			continue;
		if (mb->flags & CHAN_SUB_RECOVER) {
			/* one variant per message, shared, kept in the ring */
			if (!ofr)
				ofr = chan_ring_offset_frame(&reg->hist,
							     &ch->ring, off,
							     frame, pos->split);
			if (!ofr)
				continue; /* no memory: at most once */
			f = ofr;
		}
		rc = queue_push(reg, mb->cl, f);
		if (rc < 0)
			continue;
		n++;
		if (rc && reg->ops && reg->ops->wake)
			reg->ops->wake(mb->cl, reg->arg);
	}
	if (ofr)
		wr_msg_unref(&ofr);
	return n;
}

void chan_client_consume(struct chan_client *cl, size_t n)
{
	while (n && cl->q_len) {
		struct wr_msg *m = cl->q[cl->q_head];
		size_t left = m->len - cl->q_off;

		if (n < left) {
			cl->q_off += n;
			return;
		}
		n -= left;
		cl->q_bytes -= m->len;
		cl->q_off = 0;
		wr_msg_unref(&cl->q[cl->q_head]);
		cl->q_head = (cl->q_head + 1) & (cl->q_cap - 1);
		cl->q_len--;
	}
}

void chan_registry_stats(const struct chan_registry *reg,
			 struct chan_registry_stats *st)
{
	st->channels = reg->nchannels;
	st->subscriptions = reg->nsubs;
}

void chan_foreach(struct chan_registry *reg,
		  void (*fn)(struct chan_channel *ch, void *arg), void *arg)
{
	for (unsigned i = 0; i < reg->nbuckets; i++) {
		struct chan_channel *ch = reg->buckets[i], *next;

		for (; ch; ch = next) {
			next = ch->next;
			fn(ch, arg);
		}
	}
}
