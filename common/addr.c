/*
 * common/addr: per-address counters and a token bucket, for the limits of
 * PROTOCOL.md 7.2. An address is a client's IPv4 address or its IPv6 /64
 * (one subscriber line holds a whole /64), kept as 16 bytes: IPv4 (and
 * IPv4-mapped IPv6) as ::ffff:a.b.c.d. The table holds only addresses with
 * a non-zero count, so it is bounded by what it counts (open connections).
 */
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "wr.h"

struct wr_addr_entry {
	struct wr_addr a;
	unsigned count;
	struct wr_addr_entry *next;
};

struct wr_addrtab {
	struct wr_addr_entry **slot;
	size_t nslots, n;
};

int wr_addr_from_sockaddr(const void *sa, size_t len, struct wr_addr *out)
{
	const struct sockaddr *s = sa;

	memset(out, 0, sizeof(*out));
	if (s->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = sa;

		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12, &in->sin_addr, 4);
		return WR_OK;
	}
	if (s->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = sa;
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
		};

		memcpy(out->b, &in6->sin6_addr, 16);
		if (memcmp(out->b, mapped, 12)) /* a /64, not one address */
			memset(out->b + 8, 0, 8);
		return WR_OK;
	}
	return WR_EINVAL;
}

static size_t hash(const struct wr_addr *a, size_t nslots)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ a->b[i]) * 1099511628211u;
	return (size_t)(h % nslots);
}

struct wr_addrtab *wr_addrtab_create(void)
{
	struct wr_addrtab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->nslots = 64;
	t->slot = calloc(t->nslots, sizeof(*t->slot));
	if (!t->slot) {
		free(t);
		return NULL;
	}
	return t;
}

void wr_addrtab_destroy(struct wr_addrtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nslots; i++)
		while (t->slot[i]) {
			struct wr_addr_entry *e = t->slot[i];

			t->slot[i] = e->next;
			free(e);
		}
	free(t->slot);
	free(t);
}

static struct wr_addr_entry **find(struct wr_addrtab *t,
				   const struct wr_addr *a)
{
	struct wr_addr_entry **pp = &t->slot[hash(a, t->nslots)];

	while (*pp && memcmp(&(*pp)->a, a, sizeof(*a)))
		pp = &(*pp)->next;
	return pp;
}

unsigned wr_addrtab_count(struct wr_addrtab *t, const struct wr_addr *a)
{
	struct wr_addr_entry *e = *find(t, a);

	return e ? e->count : 0;
}

/* Doubles the slots when the entries outnumber them (chains stay short). */
static void grow(struct wr_addrtab *t)
{
	size_t n = t->nslots * 2;
	struct wr_addr_entry **s = calloc(n, sizeof(*s));

	if (!s)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nslots; i++)
		while (t->slot[i]) {
			struct wr_addr_entry *e = t->slot[i];
			size_t h = hash(&e->a, n);

			t->slot[i] = e->next;
			e->next = s[h];
			s[h] = e;
		}
	free(t->slot);
	t->slot = s;
	t->nslots = n;
}

int wr_addrtab_inc(struct wr_addrtab *t, const struct wr_addr *a)
{
	struct wr_addr_entry **pp = find(t, a);

	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (!*pp)
			return WR_ENOMEM;
		(*pp)->a = *a;
		if (++t->n > t->nslots)
			grow(t);
		pp = find(t, a);
	}
	(*pp)->count++;
	return WR_OK;
}

void wr_addrtab_dec(struct wr_addrtab *t, const struct wr_addr *a)
{
	struct wr_addr_entry **pp = find(t, a), *e = *pp;

	if (!e)
		return;
	if (--e->count)
		return;
	*pp = e->next;
	free(e);
	t->n--;
}

size_t wr_addrtab_size(const struct wr_addrtab *t)
{
	return t->n;
}

void wr_bucket_init(struct wr_bucket *b, int64_t burst, int64_t now_ms)
{
	b->milli = burst * 1000;
	b->last_ms = now_ms;
}

bool wr_bucket_take(struct wr_bucket *b, int64_t per_second, int64_t burst,
		    int64_t now_ms)
{
	int64_t cap = burst * 1000;

	if (now_ms > b->last_ms) {
		/* per_second tokens a second = per_second milli-tokens a ms */
		int64_t dt = now_ms - b->last_ms;

		b->milli = dt > cap / (per_second ? per_second : 1)
				   ? cap
				   : b->milli + dt * per_second;
		if (b->milli > cap)
			b->milli = cap;
		b->last_ms = now_ms;
	}
	if (b->milli > cap) /* the burst shrank (a reload) */
		b->milli = cap;
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

/*
 * Failures per address: at most @max in a window of @window_ms, then the
 * address is held off until @ban_ms after the last one (ban_ms 0: only to
 * the window's end). Entries go once nothing is pending for them; at most
 * WR_ADDRFAIL_MAX are kept (beyond, new addresses are not tracked: a flood
 * of addresses must not grow memory).
 */
struct wr_addrfail_entry {
	struct wr_addr a;
	unsigned fails;
	int64_t window_ms; /* the window's start */
	int64_t until_ms;  /* held off until then (0: not) */
	struct wr_addrfail_entry *next;
};

struct wr_addrfail {
	struct wr_addrfail_entry *slot[1024];
	size_t n;
	unsigned max;
	int64_t window_ms, ban_ms;
};

struct wr_addrfail *wr_addrfail_create(unsigned max, int64_t window_ms,
				       int64_t ban_ms)
{
	struct wr_addrfail *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = max;
	t->window_ms = window_ms;
	t->ban_ms = ban_ms;
	return t;
}

void wr_addrfail_destroy(struct wr_addrfail *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < 1024; i++)
		while (t->slot[i]) {
			struct wr_addrfail_entry *e = t->slot[i];

			t->slot[i] = e->next;
			free(e);
		}
	free(t);
}

/* Whether @e still matters at @now: a window open or a ban running. */
static bool pending(const struct wr_addrfail *t,
		    const struct wr_addrfail_entry *e, int64_t now)
{
	return now < e->until_ms || now - e->window_ms < t->window_ms;
}

/* The entry of @a, dropping the stale ones of its chain on the way. */
static struct wr_addrfail_entry **fail_find(struct wr_addrfail *t,
					    const struct wr_addr *a,
					    int64_t now)
{
	struct wr_addrfail_entry **pp = &t->slot[hash(a, 1024)];

	while (*pp) {
		struct wr_addrfail_entry *e = *pp;

		if (!pending(t, e, now)) {
			*pp = e->next;
			free(e);
			t->n--;
			continue;
		}
		if (!memcmp(&e->a, a, sizeof(*a)))
			return pp;
		pp = &e->next;
	}
	return pp;
}

bool wr_addrfail_blocked(struct wr_addrfail *t, const struct wr_addr *a,
			 int64_t now_ms)
{
	struct wr_addrfail_entry *e = *fail_find(t, a, now_ms);

	if (!e)
		return false;
	if (now_ms < e->until_ms)
		return true;
	return e->fails >= t->max && now_ms - e->window_ms < t->window_ms;
}

void wr_addrfail_note(struct wr_addrfail *t, const struct wr_addr *a,
		      int64_t now_ms)
{
	struct wr_addrfail_entry **pp = fail_find(t, a, now_ms), *e = *pp;

	if (!e) {
		if (t->n >= WR_ADDRFAIL_MAX)
			return;
		e = calloc(1, sizeof(*e));
		if (!e)
			return;
		e->a = *a;
		e->window_ms = now_ms;
		*pp = e;
		t->n++;
	}
	if (now_ms - e->window_ms >= t->window_ms) {
		e->window_ms = now_ms;
		e->fails = 0;
	}
	if (++e->fails >= t->max && t->ban_ms)
		e->until_ms = now_ms + t->ban_ms;
}

size_t wr_addrfail_size(const struct wr_addrfail *t)
{
	return t->n;
}
