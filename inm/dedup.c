/*
 * inm/dedup: the "seen packets" set that stops floods from looping (3.3).
 * Fixed memory: a FIFO ring of (hash, time) in arrival order, which is
 * also expiry order, and an open-addressing index over it (linear probing,
 * backward-shift deletion, load <= 1/2). Hashes are SipHash under a key
 * drawn at create, so peers cannot aim collisions at us.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "inm.h"

struct entry {
	uint64_t hash;
	int64_t at_ms;
};

struct inm_dedup {
	struct entry *ring; /* capacity entries; oldest at head */
	size_t capacity, head, count;
	uint32_t *index; /* ring position + 1; 0 = empty slot */
	size_t mask;     /* index size - 1 (a power of two) */
	int64_t window_ms;
	unsigned char key[crypto_shorthash_KEYBYTES];
	struct inm_dedup_stats st;
};

struct inm_dedup *inm_dedup_create(size_t capacity, int64_t window_ms)
{
	struct inm_dedup *d = NULL;
	size_t slots = 2;

	if (capacity == 0 || capacity > (1u << 30) || window_ms <= 0)
		return NULL;
	if (sodium_init() < 0)
		return NULL;
	while (slots < capacity * 2)
		slots *= 2;
	d = calloc(1, sizeof(*d));
	if (!d)
		goto fail;
	d->ring = calloc(capacity, sizeof(*d->ring));
	d->index = calloc(slots, sizeof(*d->index));
	if (!d->ring || !d->index)
		goto fail;
	d->capacity = capacity;
	d->mask = slots - 1;
	d->window_ms = window_ms;
	crypto_shorthash_keygen(d->key);
	return d;
fail:
	inm_dedup_destroy(d);
	return NULL;
}

void inm_dedup_destroy(struct inm_dedup *d)
{
	if (!d)
		return;
	free(d->ring);
	free(d->index);
	sodium_memzero(d->key, sizeof(d->key));
	free(d);
}

static uint64_t key_hash(const struct inm_dedup *d, const char *source,
			 enum inm_type type, const char *nonce)
{
	unsigned char buf[INM_NAME_MAX + 1 + 1 + INM_NONCE_LEN], out[8];
	size_t sl = strnlen(source, INM_NAME_MAX),
	       nl = strnlen(nonce, INM_NONCE_LEN);
	uint64_t h;

	/* source is at most 64 bytes and never holds a NUL, so the NUL
	 * separator keeps ("ab", "c") and ("a", "bc") apart */
	memcpy(buf, source, sl);
	buf[sl] = '\0';
	buf[sl + 1] = (unsigned char)type;
	memcpy(buf + sl + 2, nonce, nl);
	crypto_shorthash(out, buf, sl + 2 + nl, d->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

/* The slot holding @h (*found), else the empty slot where @h would go. */
static size_t find_slot(const struct inm_dedup *d, uint64_t h, bool *found)
{
	size_t i = (size_t)h & d->mask;

	while (d->index[i]) {
		if (d->ring[d->index[i] - 1].hash == h) {
			*found = true;
			return i;
		}
		i = (i + 1) & d->mask;
	}
	*found = false;
	return i;
}

/*
 * Removes the index slot @i and shifts later members of its probe run
 * back, so lookups never stop at a hole inside a run (no tombstones).
 */
static void index_delete(struct inm_dedup *d, size_t i)
{
	size_t j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & d->mask;
		if (!d->index[j])
			break;
		home = (size_t)d->ring[d->index[j] - 1].hash & d->mask;
		/* j's entry may move to i only if i lies cyclically in [home, j) */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			d->index[i] = d->index[j];
			i = j;
		}
	}
	d->index[i] = 0;
}

/* Drops the oldest entry from the ring and the index. */
static void pop_oldest(struct inm_dedup *d)
{
	const struct entry *e = &d->ring[d->head];
	size_t i = (size_t)e->hash & d->mask;

	/* the oldest entry is certainly indexed: find its slot by position */
	while (d->index[i] != d->head + 1)
		i = (i + 1) & d->mask;
	index_delete(d, i);
	d->head = (d->head + 1) % d->capacity;
	d->count--;
}

bool inm_dedup_seen(struct inm_dedup *d, const char *source, enum inm_type type,
		    const char *nonce, int64_t now_ms)
{
	uint64_t h = key_hash(d, source, type, nonce);
	size_t slot, pos;
	bool found;

	d->st.checks++;
	/* "remembered for at least window_ms": an entry recorded at t still
	 * counts at t + window_ms and is gone just after */
	while (d->count && now_ms - d->ring[d->head].at_ms > d->window_ms) {
		pop_oldest(d);
		d->st.expired++;
	}
	slot = find_slot(d, h, &found);
	if (found) {
		d->st.duplicates++;
		return true;
	}
	if (d->count == d->capacity) {
		pop_oldest(d);
		d->st.evicted++;
		/* the deletion may have moved entries: probe again */
		slot = find_slot(d, h, &found);
	}
	pos = (d->head + d->count) % d->capacity;
	d->ring[pos].hash = h;
	d->ring[pos].at_ms = now_ms;
	d->index[slot] = (uint32_t)pos + 1;
	d->count++;
	return false;
}

void inm_dedup_stats(const struct inm_dedup *d, struct inm_dedup_stats *st)
{
	*st = d->st;
	st->size = d->count;
	st->capacity = d->capacity;
}
