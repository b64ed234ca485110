/*
 * common/slab.c — fixed-size objects by the thousand, outside the malloc
 * heap.
 *
 * Why: an idle WebSocket connection is a handful of objects lws allocates
 * at accept and upgrade (the wsi, its libuv poll handle, the ws state, the
 * receive buffer, our per-session data), and while its headers are read a
 * 16 KiB header buffer besides. With glibc's heap the two kinds interleave:
 * a burst of 256 handshakes leaves the long-lived objects spread over the
 * holes the header buffers leave, about 250 bytes per connection of free
 * but resident memory, plus malloc's own 8 to 16 bytes per object (issue
 * 10: memory per idle connection). Here each size has its own 64 KiB slabs
 * and objects carry no header. Slabs that empty stay until the owner's
 * periodic wr_slab_trim() gives them back to the kernel: releasing at once
 * made a burst of handshakes fault its header buffers in again and again.
 *
 * Layout: one region of address space reserved at init (MAP_NORESERVE: no
 * memory until touched), cut into SLAB_BYTES slabs handed out in order; the
 * bookkeeping of each slab lives in a side table, so a slab's pages hold
 * objects only and a pointer's slab is (p - base) >> SLAB_SHIFT.
 *
 * One thread: the caller serialises (the node calls it from its loop only).
 * Under AddressSanitizer free objects are poisoned, so a use after free of
 * a slab object is reported like one of the heap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "wr.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SLAB_SHIFT 16
#define SLAB_BYTES ((size_t)1 << SLAB_SHIFT)
#define MAX_CLASSES 16
#define NONE (-1)

struct slab {
	void *free;      /* freed objects, each holding the next */
	uint32_t carved; /* objects cut from the never-used tail so far */
	uint32_t live;   /* objects handed out and not freed */
	int32_t prev;    /* in its class's list of slabs with room */
	int32_t next;    /* ... or in the list of released slabs */
	int8_t cls;      /* NONE: not in use */
};

struct slab_class {
	uint32_t size;     /* bytes per object, a multiple of 16 */
	uint32_t per_slab; /* objects per slab */
	int32_t room;      /* slabs with a free object (list head) */
	uint32_t nempty;   /* slabs in use that hold no object */
	uint64_t live;     /* objects handed out */
	uint32_t slabs;    /* slabs in use */
};

static struct {
	char *base;
	uint32_t nslabs;  /* the region's */
	uint32_t bumped;  /* slabs ever taken from the region */
	int32_t released; /* slabs given back, for reuse (a stack) */
	uint32_t nreleased;
	struct slab *meta;
	struct slab_class cls[MAX_CLASSES];
	unsigned ncls;
} S;

int wr_slab_init(size_t region_bytes)
{
	size_t n = region_bytes >> SLAB_SHIFT;
	void *base, *meta;

	if (S.base)
		return WR_OK;
	if (!n || n > INT32_MAX)
		return WR_EINVAL;
	base = mmap(NULL, n << SLAB_SHIFT, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return WR_ENOMEM;
	/* zeroed pages on demand: only the slabs used ever cost memory */
	meta = mmap(NULL, n * sizeof(struct slab), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (meta == MAP_FAILED) {
		munmap(base, n << SLAB_SHIFT);
		return WR_ENOMEM;
	}
	S.base = base;
	S.meta = meta;
	S.nslabs = (uint32_t)n;
	S.released = NONE;
	return WR_OK;
}

int wr_slab_class(size_t size)
{
	size_t sz = (size + 15) & ~(size_t)15;
	unsigned i;

	if (!S.base || !size || sz > SLAB_BYTES / 4)
		return WR_EINVAL;
	for (i = 0; i < S.ncls; i++)
		if (S.cls[i].size == sz)
			return (int)i;
	if (S.ncls == MAX_CLASSES)
		return WR_EFULL;
	S.cls[S.ncls] = (struct slab_class){
		.size = (uint32_t)sz,
		.per_slab = (uint32_t)(SLAB_BYTES / sz),
		.room = NONE,
	};
	return (int)S.ncls++;
}

static char *slab_mem(int32_t idx)
{
	return S.base + ((size_t)idx << SLAB_SHIFT);
}

static void room_link(struct slab_class *c, int32_t idx)
{
	struct slab *m = &S.meta[idx];

	m->prev = NONE;
	m->next = c->room;
	if (c->room != NONE)
		S.meta[c->room].prev = idx;
	c->room = idx;
}

static void room_unlink(struct slab_class *c, int32_t idx)
{
	struct slab *m = &S.meta[idx];

	if (m->prev != NONE)
		S.meta[m->prev].next = m->next;
	else
		c->room = m->next;
	if (m->next != NONE)
		S.meta[m->next].prev = m->prev;
}

/* A slab for class @ci: a released one first (its pages are the kernel's
 * again, zero when touched), else the next never-used one. */
static int32_t slab_take(int ci)
{
	struct slab_class *c = &S.cls[ci];
	int32_t idx;

	if (S.released != NONE) {
		idx = S.released;
		S.released = S.meta[idx].next;
		S.nreleased--;
	} else if (S.bumped < S.nslabs) {
		idx = (int32_t)S.bumped++;
	} else {
		return NONE;
	}
	S.meta[idx] =
		(struct slab){ .cls = (int8_t)ci, .prev = NONE, .next = NONE };
	POISON(slab_mem(idx), SLAB_BYTES);
	c->slabs++;
	c->nempty++;
	room_link(c, idx);
	return idx;
}

void *wr_slab_alloc(int ci)
{
	struct slab_class *c;
	struct slab *m;
	int32_t idx;
	char *p;

	if (ci < 0 || (unsigned)ci >= S.ncls)
		return NULL;
	c = &S.cls[ci];
	idx = c->room;
	if (idx == NONE && (idx = slab_take(ci)) == NONE)
		return NULL;
	m = &S.meta[idx];
	if (m->free) {
		p = m->free;
		UNPOISON(p, c->size);
		memcpy(&m->free, p, sizeof(void *));
	} else {
		p = slab_mem(idx) + (size_t)m->carved++ * c->size;
		UNPOISON(p, c->size);
	}
	if (!m->live++)
		c->nempty--;
	c->live++;
	if (m->live == c->per_slab)
		room_unlink(c, idx);
	return p;
}

bool wr_slab_owns(const void *p)
{
	const char *q = p;

	return S.base && q >= S.base &&
	       q < S.base + ((size_t)S.nslabs << SLAB_SHIFT);
}

static struct slab *slab_of(const void *p, int32_t *idx)
{
	*idx = (int32_t)(((const char *)p - S.base) >> SLAB_SHIFT);
	return &S.meta[*idx];
}

size_t wr_slab_size(const void *p)
{
	int32_t idx;
	struct slab *m;

	if (!wr_slab_owns(p))
		return 0;
	m = slab_of(p, &idx);
	return m->cls == NONE ? 0 : S.cls[m->cls].size;
}

void wr_slab_free(void *p)
{
	struct slab_class *c;
	struct slab *m;
	int32_t idx;

	if (!p)
		return;
	m = slab_of(p, &idx);
	c = &S.cls[m->cls];
	memcpy(p, &m->free, sizeof(void *));
	m->free = p;
	POISON(p, c->size);
	c->live--;
	/* a full slab is in no list (wr_slab_alloc unlinked it) */
	if (m->live == c->per_slab)
		room_link(c, idx);
	if (!--m->live)
		c->nempty++;
}

static void slab_release(struct slab_class *c, int32_t idx)
{
	struct slab *m = &S.meta[idx];

	c->nempty--;
	c->slabs--;
	room_unlink(c, idx);
	UNPOISON(slab_mem(idx), SLAB_BYTES);
	madvise(slab_mem(idx), SLAB_BYTES, MADV_DONTNEED);
	m->cls = NONE;
	m->next = S.released;
	S.released = idx;
	S.nreleased++;
}

size_t wr_slab_trim(unsigned keep)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < S.ncls; i++) {
		struct slab_class *c = &S.cls[i];
		int32_t idx = c->room, next;

		for (; idx != NONE && c->nempty > keep; idx = next) {
			next = S.meta[idx].next;
			if (!S.meta[idx].live) {
				slab_release(c, idx);
				n++;
			}
		}
	}
	return n;
}

void wr_slab_stats(struct wr_slab_stats *st)
{
	unsigned i;

	memset(st, 0, sizeof(*st));
	st->released = S.nreleased;
	for (i = 0; i < S.ncls; i++) {
		st->slabs += S.cls[i].slabs;
		st->objects += S.cls[i].live;
		st->bytes += S.cls[i].live * S.cls[i].size;
	}
}
