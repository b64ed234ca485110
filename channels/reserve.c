/*
 * channels/reserve: reserved channels, found by name through a hash index
 * (open addressing, linear probing: O(1) insert, lookup and removal,
 * whatever order names arrive in), listed in name byte order through a
 * sorted view rebuilt only when the set changed (so listings are
 * deterministic and every node prints the same view); each entry has its
 * holders sorted by name. Invariants: every entry has
 * 1..max_holders holders; e->best indexes the holder with the smallest
 * (created, name), which is the reservation's rank in a race.
 */
#include <stdlib.h>
#include <string.h>

#include "reserve.h"

struct holder {
	int64_t created;
	char name[CHAN_RESV_HOLDER_MAX + 1];
};

struct chan_resv_entry {
	struct holder *holders; /* sorted by name */
	unsigned nholders, cap;
	unsigned best; /* index of the ranking holder */
	bool has_hash;
	uint8_t hash[CHAN_HASH_LEN];
	unsigned idx; /* in t->e */
	size_t name_len;
	char name[]; /* NUL-terminated for convenience */
};

struct chan_resv_table {
	struct chan_resv_entry **e; /* in no order; e[i]->idx == i */
	unsigned n, cap;
	unsigned max_channels, max_holders;
	struct chan_resv_entry **slot; /* the hash index, nslots a power of 2 */
	unsigned nslots;
	/* the name-ordered view: a cache, rebuilt when the set changed */
	struct chan_resv_entry **sorted;
	unsigned sorted_cap;
	bool dirty;
};

const char *chan_resv_result_str(enum chan_resv_result r)
{
	switch (r) {
	case CHAN_RESV_NEW:
		return "new";
	case CHAN_RESV_ADDED:
		return "holder added";
	case CHAN_RESV_PRESENT:
		return "holder present";
	case CHAN_RESV_ALREADY_RESERVED:
		return "channel already reserved";
	case CHAN_RESV_REPLACED:
		return "replaced";
	case CHAN_RESV_REMOVED:
		return "holder removed";
	case CHAN_RESV_DROPPED:
		return "dropped";
	case CHAN_RESV_NOT_HOLDER:
		return "not a holder";
	case CHAN_RESV_STILL_OPEN:
		return "channel still open";
	}
	return "?";
}

bool chan_resv_wins(int64_t created_a, const char *holder_a, int64_t created_b,
		    const char *holder_b)
{
	if (created_a != created_b)
		return created_a < created_b;
	/* strcmp compares as unsigned char: byte order, as 4.4 asks */
	return strcmp(holder_a, holder_b) < 0;
}

struct chan_resv_table *chan_resv_table_create(unsigned max_channels,
					       unsigned max_holders)
{
	struct chan_resv_table *t;

	if (!max_channels)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->max_channels = max_channels;
	t->max_holders = max_holders ? max_holders : CHAN_RESV_HOLDERS_DEFAULT;
	return t;
}

static void entry_free(struct chan_resv_entry *e)
{
	if (!e)
		return;
	free(e->holders);
	free(e);
}

void chan_resv_table_destroy(struct chan_resv_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n; i++)
		entry_free(t->e[i]);
	free(t->e);
	free(t->slot);
	free(t->sorted);
	free(t);
}

/* Holder names arrive NUL-terminated from the node: 1..64 bytes. */
static bool holder_valid(const char *holder)
{
	size_t n;

	if (!holder)
		return false;
	n = strnlen(holder, CHAN_RESV_HOLDER_MAX + 1);
	return n >= 1 && n <= CHAN_RESV_HOLDER_MAX;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static size_t name_hash(const char *name, size_t len)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211u;
	return (size_t)(h ^ (h >> 29));
}

/* The index slot of @name: where it is, or the empty one where it goes. */
static unsigned slot_of(const struct chan_resv_table *t, const char *name,
			size_t len)
{
	unsigned mask = t->nslots - 1,
		 i = (unsigned)name_hash(name, len) & mask;

	while (t->slot[i] &&
	       name_cmp(t->slot[i]->name, t->slot[i]->name_len, name, len))
		i = (i + 1) & mask;
	return i;
}

/* True and *pos = its index in t->e when @name is reserved. */
static bool entry_search(const struct chan_resv_table *t, const char *name,
			 size_t len, unsigned *pos)
{
	unsigned s;

	if (!t->nslots)
		return false;
	s = slot_of(t, name, len);
	if (!t->slot[s])
		return false;
	*pos = t->slot[s]->idx;
	return true;
}

/* Twice the slots (or the first 64): the index stays under half full. */
static int index_grow(struct chan_resv_table *t)
{
	unsigned n = t->nslots ? t->nslots * 2 : 64;
	struct chan_resv_entry **old = t->slot;
	unsigned oldn = t->nslots;

	t->slot = calloc(n, sizeof(*t->slot));
	if (!t->slot) {
		t->slot = old;
		return WR_ENOMEM;
	}
	t->nslots = n;
	for (unsigned i = 0; i < oldn; i++)
		if (old[i])
			t->slot[slot_of(t, old[i]->name, old[i]->name_len)] =
				old[i];
	free(old);
	return WR_OK;
}

/* Takes @e out of the index, shifting back the run after it (linear
 * probing needs no tombstones then). */
static void index_remove(struct chan_resv_table *t,
			 const struct chan_resv_entry *e)
{
	unsigned mask = t->nslots - 1, i = slot_of(t, e->name, e->name_len);
	unsigned j = i;

	t->slot[i] = NULL;
	for (;;) {
		unsigned home;

		j = (j + 1) & mask;
		if (!t->slot[j])
			return;
		home = (unsigned)name_hash(t->slot[j]->name,
					   t->slot[j]->name_len) &
		       mask;
		/* move slot[j] to i unless its home lies cyclically in (i, j] */
		if (i <= j ? (home <= i || home > j)
			   : (home <= i && home > j)) {
			t->slot[i] = t->slot[j];
			t->slot[j] = NULL;
			i = j;
		}
	}
}

static bool holder_search(const struct chan_resv_entry *e, const char *holder,
			  unsigned *pos)
{
	unsigned lo = 0, hi = e->nholders;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = strcmp(e->holders[mid].name, holder);

		if (!c) {
			*pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return false;
}

static void best_update(struct chan_resv_entry *e)
{
	unsigned b = 0;

	for (unsigned i = 1; i < e->nholders; i++)
		if (chan_resv_wins(e->holders[i].created, e->holders[i].name,
				   e->holders[b].created, e->holders[b].name))
			b = i;
	e->best = b;
}

static int grow(void **arr, unsigned *cap, unsigned need, size_t elem)
{
	unsigned n;
	void *p;

	if (need <= *cap)
		return WR_OK;
	/* from one: most channels have one holder, and an idle node with
	 * many channels pays this per channel (issue 10, memory) */
	n = *cap ? *cap * 2 : 1;
	while (n < need)
		n *= 2;
	p = realloc(*arr, (size_t)n * elem);
	if (!p)
		return WR_ENOMEM;
	*arr = p;
	*cap = n;
	return WR_OK;
}

static void holder_set(struct holder *h, const char *name, int64_t created)
{
	size_t n = strnlen(name, CHAN_RESV_HOLDER_MAX);

	memcpy(h->name, name, n);
	h->name[n] = '\0';
	h->created = created;
}

static bool same_hash(const struct chan_resv_entry *e, const uint8_t *hash)
{
	if (!hash || !e->has_hash)
		return !hash && !e->has_hash;
	return !memcmp(e->hash, hash, CHAN_HASH_LEN);
}

/*
 * True when (@created, @holder, @hash) beats the stored reservation. The
 * exact tie — one node claiming one instant with two hashes — is not in
 * 4.4; the hash bytes break it (no password first) so nodes still agree.
 */
static bool incoming_wins(const struct chan_resv_entry *e, const uint8_t *hash,
			  int64_t created, const char *holder)
{
	const struct holder *b = &e->holders[e->best];

	if (created != b->created || strcmp(holder, b->name))
		return chan_resv_wins(created, holder, b->created, b->name);
	if (!hash)
		return true; /* the stored one has a hash: differs */
	if (!e->has_hash)
		return false;
	return memcmp(hash, e->hash, CHAN_HASH_LEN) < 0;
}

static int entry_add(struct chan_resv_table *t, unsigned pos, const char *name,
		     size_t len, const uint8_t *hash, int64_t created,
		     const char *holder)
{
	struct chan_resv_entry *e;
	int rc;

	(void)pos;
	if (t->n >= t->max_channels)
		return WR_EFULL;
	rc = grow((void **)&t->e, &t->cap, t->n + 1, sizeof(*t->e));
	if (rc)
		return rc;
	if ((t->n + 1) * 2 > t->nslots && index_grow(t))
		return WR_ENOMEM;
	e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return WR_ENOMEM;
	rc = grow((void **)&e->holders, &e->cap, 1, sizeof(*e->holders));
	if (rc) {
		entry_free(e);
		return rc;
	}
	memcpy(e->name, name, len);
	e->name_len = len;
	if (hash) {
		e->has_hash = true;
		memcpy(e->hash, hash, CHAN_HASH_LEN);
	}
	holder_set(&e->holders[0], holder, created);
	e->nholders = 1;
	e->best = 0;
	e->idx = t->n;
	t->e[t->n++] = e;
	t->slot[slot_of(t, name, len)] = e;
	t->dirty = true;
	return WR_OK;
}

static int holder_join(const struct chan_resv_table *t,
		       struct chan_resv_entry *e, int64_t created,
		       const char *holder, enum chan_resv_result *res)
{
	unsigned pos;
	int rc;

	if (holder_search(e, holder, &pos)) {
		/* keep the smaller: the rank must not depend on arrival order */
		if (created < e->holders[pos].created) {
			e->holders[pos].created = created;
			best_update(e);
		}
		*res = CHAN_RESV_PRESENT;
		return WR_OK;
	}
	if (e->nholders >= t->max_holders)
		return WR_EFULL;
	rc = grow((void **)&e->holders, &e->cap, e->nholders + 1,
		  sizeof(*e->holders));
	if (rc)
		return rc;
	memmove(&e->holders[pos + 1], &e->holders[pos],
		(e->nholders - pos) * sizeof(*e->holders));
	holder_set(&e->holders[pos], holder, created);
	e->nholders++;
	best_update(e);
	*res = CHAN_RESV_ADDED;
	return WR_OK;
}

static int replace(struct chan_resv_entry *e, const uint8_t *hash,
		   int64_t created, const char *holder, chan_resv_lost_cb lost,
		   void *arg)
{
	struct holder *old = e->holders, *fresh;
	unsigned nold = e->nholders;
	char name[CHAN_NAME_MAX + 1];
	size_t len = e->name_len;

	/* the only allocation comes first: on failure nothing changed */
	fresh = malloc(4 * sizeof(*fresh));
	if (!fresh)
		return WR_ENOMEM;
	holder_set(&fresh[0], holder, created);
	e->holders = fresh;
	e->nholders = 1;
	e->cap = 4;
	e->best = 0;
	e->has_hash = hash != NULL;
	if (hash)
		memcpy(e->hash, hash, CHAN_HASH_LEN);
	else
		memset(e->hash, 0, CHAN_HASH_LEN);
	/* a private name and the detached old holders: @lost may modify the
	 * table, even free @e, without pulling anything from under this loop */
	memcpy(name, e->name, len);
	name[len] = '\0';
	if (lost)
		for (unsigned i = 0; i < nold; i++)
			lost(name, len, old[i].name, arg);
	free(old);
	return WR_OK;
}

int chan_resv_reserve(struct chan_resv_table *t, const char *name, size_t len,
		      const uint8_t *hash, int64_t created, const char *holder,
		      chan_resv_lost_cb lost, void *arg,
		      enum chan_resv_result *res)
{
	enum chan_resv_result r;
	struct chan_resv_entry *e;
	unsigned pos;
	int rc;

	if (!chan_name_valid(name, len) || !holder_valid(holder))
		return WR_EINVAL;
	if (!entry_search(t, name, len, &pos)) {
		rc = entry_add(t, pos, name, len, hash, created, holder);
		r = CHAN_RESV_NEW;
		goto out;
	}
	e = t->e[pos];
	if (same_hash(e, hash)) {
		rc = holder_join(t, e, created, holder, &r);
		goto out;
	}
	if (!incoming_wins(e, hash, created, holder)) {
		rc = WR_OK;
		r = CHAN_RESV_ALREADY_RESERVED;
		goto out;
	}
	rc = replace(e, hash, created, holder, lost, arg);
	r = CHAN_RESV_REPLACED;
out:
	if (!rc && res)
		*res = r;
	return rc;
}

static void entry_remove(struct chan_resv_table *t, unsigned pos)
{
	struct chan_resv_entry *e = t->e[pos];

	index_remove(t, e);
	/* the last entry takes its place */
	t->e[pos] = t->e[--t->n];
	t->e[pos]->idx = pos;
	entry_free(e);
	t->dirty = true;
}

/* Removes @holder from entry @pos. Returns REMOVED, DROPPED or NOT_HOLDER. */
static enum chan_resv_result holder_remove(struct chan_resv_table *t,
					   unsigned pos, const char *holder)
{
	struct chan_resv_entry *e = t->e[pos];
	unsigned h;

	if (!holder_search(e, holder, &h))
		return CHAN_RESV_NOT_HOLDER;
	if (e->nholders == 1) {
		entry_remove(t, pos);
		return CHAN_RESV_DROPPED;
	}
	memmove(&e->holders[h], &e->holders[h + 1],
		(e->nholders - h - 1) * sizeof(*e->holders));
	e->nholders--;
	best_update(e);
	return CHAN_RESV_REMOVED;
}

int chan_resv_unreserve(struct chan_resv_table *t, const char *name, size_t len,
			const char *holder, bool active_here,
			enum chan_resv_result *res)
{
	enum chan_resv_result r = CHAN_RESV_NOT_HOLDER;
	unsigned pos;

	if (!chan_name_valid(name, len) || !holder_valid(holder))
		return WR_EINVAL;
	if (entry_search(t, name, len, &pos))
		r = holder_remove(t, pos, holder);
	if (active_here)
		r = CHAN_RESV_STILL_OPEN;
	if (res)
		*res = r;
	return WR_OK;
}

unsigned chan_resv_holder_gone(struct chan_resv_table *t, const char *holder)
{
	unsigned changed = 0;

	if (!holder_valid(holder))
		return 0;
	/* downwards: a dropped entry is replaced by the last one, already
	 * visited */
	for (unsigned i = t->n; i-- > 0;)
		if (holder_remove(t, i, holder) != CHAN_RESV_NOT_HOLDER)
			changed++;
	return changed;
}

const struct chan_resv_entry *chan_resv_find(const struct chan_resv_table *t,
					     const char *name, size_t len)
{
	unsigned pos;

	if (!name || !entry_search(t, name, len, &pos))
		return NULL;
	return t->e[pos];
}

unsigned chan_resv_count(const struct chan_resv_table *t)
{
	return t->n;
}

static int entry_order(const void *a, const void *b)
{
	const struct chan_resv_entry *x =
		*(const struct chan_resv_entry *const *)a;
	const struct chan_resv_entry *y =
		*(const struct chan_resv_entry *const *)b;

	return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

void chan_resv_foreach(const struct chan_resv_table *ct,
		       void (*fn)(const struct chan_resv_entry *e, void *arg),
		       void *arg)
{
	/* the sorted view is a cache: rebuilding it changes no entry */
	struct chan_resv_table *t = (struct chan_resv_table *)ct;

	if (t->dirty) {
		if (grow((void **)&t->sorted, &t->sorted_cap, t->n,
			 sizeof(*t->sorted))) {
			/* no memory for the order: every entry, unordered */
			for (unsigned i = 0; i < t->n; i++)
				fn(t->e[i], arg);
			return;
		}
		if (t->n) {
			memcpy(t->sorted, t->e, t->n * sizeof(*t->sorted));
			qsort(t->sorted, t->n, sizeof(*t->sorted), entry_order);
		}
		t->dirty = false;
	}
	for (unsigned i = 0; i < t->n; i++)
		fn(t->sorted[i], arg);
}

const char *chan_resv_name(const struct chan_resv_entry *e, size_t *len)
{
	if (len)
		*len = e->name_len;
	return e->name;
}

const uint8_t *chan_resv_hash(const struct chan_resv_entry *e)
{
	return e->has_hash ? e->hash : NULL;
}

int64_t chan_resv_created(const struct chan_resv_entry *e)
{
	return e->holders[e->best].created;
}

const char *chan_resv_owner(const struct chan_resv_entry *e)
{
	return e->holders[e->best].name;
}

unsigned chan_resv_nholders(const struct chan_resv_entry *e)
{
	return e->nholders;
}

int64_t chan_resv_holder_created(const struct chan_resv_entry *e, unsigned i)
{
	return e->holders[i].created;
}

const char *chan_resv_holder(const struct chan_resv_entry *e, unsigned i)
{
	return i < e->nholders ? e->holders[i].name : NULL;
}

bool chan_resv_has_holder(const struct chan_resv_entry *e, const char *holder)
{
	unsigned pos;

	return holder && holder_search(e, holder, &pos);
}
