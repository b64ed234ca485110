/*
 * channels/presence: who is on a channel across the mesh (PROTOCOL.md 7.4,
 * 7.5.9). Per channel, the users of this node's subscribers (a count per
 * user: tabs) and, while a subscriber here wants join/leave events, the
 * users each other holder of the channel last reported. A user is present
 * while any of them has it; join and leave are the edges of that one
 * predicate, so a user with tabs on three nodes joins once and leaves once
 * wherever the events are computed. Pure state: the registry emits the
 * frames (registry.c), the flows fetch the holders' lists (flows/presence.c).
 */
#include <stdlib.h>
#include <string.h>

#include "channels.h"

struct chan_user {
	unsigned count; /* this node's subscriptions by the user */
	size_t len;
	char name[]; /* NUL-terminated */
};

struct pres_holder {
	char *name;
	char **users; /* sorted (strcmp), distinct */
	unsigned n;
};

struct chan_pres {
	struct chan_user **users; /* sorted by name */
	unsigned nusers, cap;
	struct pres_holder *holders;
	unsigned nholders, hcap;
	uint64_t rev; /* grows when the local user set changes */
	bool polling;
	bool seeded; /* a first poll round is over: later lists are news */
};

struct chan_pres *chan_pres_create(void)
{
	return calloc(1, sizeof(struct chan_pres));
}

static void holder_clear(struct pres_holder *h)
{
	for (unsigned i = 0; i < h->n; i++)
		free(h->users[i]);
	free(h->users);
	h->users = NULL;
	h->n = 0;
}

void chan_pres_forget_remote(struct chan_pres *p)
{
	for (unsigned i = 0; i < p->nholders; i++) {
		holder_clear(&p->holders[i]);
		free(p->holders[i].name);
	}
	free(p->holders);
	p->holders = NULL;
	p->nholders = p->hcap = 0;
	p->polling = false;
	p->seeded = false;
}

void chan_pres_destroy(struct chan_pres *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->nusers; i++)
		free(p->users[i]);
	free(p->users);
	chan_pres_forget_remote(p);
	free(p);
}

/* Byte order of (@a, @alen) against (@b, @blen). */
static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/* The index of @name in the local users, or where it would go (*found). */
static unsigned local_find(const struct chan_pres *p, const char *name,
			   size_t len, bool *found)
{
	unsigned lo = 0, hi = p->nusers;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = name_cmp(p->users[mid]->name, p->users[mid]->len, name,
				 len);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static bool in_sorted(char *const *v, unsigned n, const char *name, size_t len)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = name_cmp(v[mid], strlen(v[mid]), name, len);

		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Present at a holder other than @skip (NULL: any). */
static bool remote_has(const struct chan_pres *p,
		       const struct pres_holder *skip, const char *name,
		       size_t len)
{
	for (unsigned i = 0; i < p->nholders; i++)
		if (&p->holders[i] != skip &&
		    in_sorted(p->holders[i].users, p->holders[i].n, name, len))
			return true;
	return false;
}

static bool local_has(const struct chan_pres *p, const char *name, size_t len)
{
	bool found;

	local_find(p, name, len, &found);
	return found;
}

struct chan_user *chan_pres_local_add(struct chan_pres *p, const char *name,
				      size_t len, bool *joined)
{
	bool found;
	unsigned i = local_find(p, name, len, &found);
	struct chan_user *u;

	*joined = false;
	if (found) {
		p->users[i]->count++;
		return p->users[i];
	}
	if (p->nusers == p->cap) {
		unsigned cap = p->cap ? p->cap * 2 : 4;
		struct chan_user **v = realloc(p->users, cap * sizeof(*v));

		if (!v)
			return NULL;
		p->users = v;
		p->cap = cap;
	}
	u = malloc(sizeof(*u) + len + 1);
	if (!u)
		return NULL;
	u->count = 1;
	u->len = len;
	memcpy(u->name, name, len);
	u->name[len] = '\0';
	memmove(p->users + i + 1, p->users + i,
		(p->nusers - i) * sizeof(*p->users));
	p->users[i] = u;
	p->nusers++;
	p->rev++;
	/* the mesh-wide edge: nobody else had the user */
	*joined = !remote_has(p, NULL, name, len);
	return u;
}

bool chan_pres_local_remove(struct chan_pres *p, struct chan_user *u,
			    chan_pres_emit_cb emit, void *arg)
{
	bool found, left;
	unsigned i;

	if (--u->count)
		return false;
	i = local_find(p, u->name, u->len, &found);
	if (!found || p->users[i] != u)
		return false; /* cannot happen: the entry is the member's */
	memmove(p->users + i, p->users + i + 1,
		(p->nusers - i - 1) * sizeof(*p->users));
	p->nusers--;
	p->rev++;
	left = !remote_has(p, NULL, u->name, u->len);
	if (left && emit)
		emit(arg, false, u->name, u->len);
	free(u);
	return left;
}

const char *chan_user_name(const struct chan_user *u, size_t *len)
{
	*len = u->len;
	return u->name;
}

unsigned chan_pres_local_count(const struct chan_pres *p)
{
	return p ? p->nusers : 0;
}

uint64_t chan_pres_rev(const struct chan_pres *p)
{
	return p ? p->rev : 0;
}

void chan_pres_local_each(const struct chan_pres *p, chan_pres_user_cb fn,
			  void *arg)
{
	for (unsigned i = 0; p && i < p->nusers; i++)
		fn(arg, p->users[i]->name, p->users[i]->len);
}

static struct pres_holder *holder_find(struct chan_pres *p, const char *name)
{
	for (unsigned i = 0; i < p->nholders; i++)
		if (!strcmp(p->holders[i].name, name))
			return &p->holders[i];
	return NULL;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Replaces @h's list by @users (taken: sorted and deduplicated here),
 * emitting the edges unless @quiet: a user only @h had, gone, leaves; a
 * user nobody had, new at @h, joins.
 */
static void holder_replace(struct chan_pres *p, struct pres_holder *h,
			   char **users, unsigned n, bool quiet,
			   chan_pres_emit_cb emit, void *arg)
{
	unsigned i = 0, j = 0, k = 0;
	char **old = h->users;
	unsigned nold = h->n;

	if (n)
		qsort(users, n, sizeof(*users), cmp_strp);
	for (unsigned r = 0; r < n; r++) { /* dedup */
		if (k && !strcmp(users[k - 1], users[r]))
			free(users[r]);
		else
			users[k++] = users[r];
	}
	n = k;
	/* the new list is in place before the edges are computed against
	 * the other holders; the old one is walked beside it */
	h->users = users;
	h->n = n;
	while (i < nold || j < n) {
		int c = i == nold ? 1 : j == n ? -1 : strcmp(old[i], users[j]);
		const char *who = c < 0 ? old[i] : users[j];
		size_t wl = strlen(who);

		if (c && !quiet && emit && !local_has(p, who, wl) &&
		    !remote_has(p, h, who, wl))
			emit(arg, c > 0, who, wl);
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	for (i = 0; i < nold; i++)
		free(old[i]);
	free(old);
}

int chan_pres_remote_set(struct chan_pres *p, const char *holder, char **users,
			 unsigned n, bool quiet, chan_pres_emit_cb emit,
			 void *arg)
{
	struct pres_holder *h = holder_find(p, holder);

	if (!h) {
		if (p->nholders == p->hcap) {
			unsigned cap = p->hcap ? p->hcap * 2 : 4;
			struct pres_holder *v = realloc(p->holders,
							cap * sizeof(*v));

			if (!v)
				goto fail;
			p->holders = v;
			p->hcap = cap;
		}
		h = &p->holders[p->nholders];
		memset(h, 0, sizeof(*h));
		h->name = strdup(holder);
		if (!h->name)
			goto fail;
		p->nholders++;
	}
	holder_replace(p, h, users, n, quiet, emit, arg);
	return WR_OK;
fail:
	for (unsigned i = 0; i < n; i++)
		free(users[i]);
	free(users);
	return WR_ENOMEM;
}

void chan_pres_remote_drop(struct chan_pres *p, const char *holder,
			   chan_pres_emit_cb emit, void *arg)
{
	struct pres_holder *h = holder_find(p, holder);
	unsigned idx;

	if (!h)
		return;
	holder_replace(p, h, NULL, 0, false, emit, arg);
	free(h->name);
	idx = (unsigned)(h - p->holders);
	p->holders[idx] = p->holders[--p->nholders];
}

void chan_pres_remote_each(const struct chan_pres *p, chan_pres_holder_cb fn,
			   void *arg)
{
	/* backwards: @fn may drop the holder it is given */
	for (unsigned i = p ? p->nholders : 0; i-- > 0;)
		fn(arg, p->holders[i].name);
}

bool chan_pres_known(const struct chan_pres *p, const char *holder)
{
	for (unsigned i = 0; p && i < p->nholders; i++)
		if (!strcmp(p->holders[i].name, holder))
			return true;
	return false;
}

bool chan_pres_polling(const struct chan_pres *p)
{
	return p && p->polling;
}

void chan_pres_set_polling(struct chan_pres *p, bool on)
{
	p->polling = on;
}

bool chan_pres_seeded(const struct chan_pres *p)
{
	return p && p->seeded;
}

void chan_pres_set_seeded(struct chan_pres *p)
{
	p->seeded = true;
}
