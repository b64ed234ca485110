/*
 * node/lwsmem.c — lws's allocator (lws_set_allocator): the objects lws
 * makes for every connection come from slabs (common/slab.c), the rest
 * from malloc.
 *
 * An idle /connect connection is five lws allocations: the wsi ("new
 * server wsi"), its libuv poll handle ("uvh"), the ws state ("ws struct"),
 * the receive buffer ("rx_ubuf") and our per-session data ("user space");
 * while its headers are read, two more ("ah struct", "ah data": 16 KiB).
 * From the malloc heap a burst of handshakes spreads the first five over
 * the holes the header buffers leave; from slabs of their own they pack,
 * and the header buffers' slabs go back to the kernel once the burst is
 * over. Measured with `bench/run.sh` (idle-bare, 10,000 connections, 256
 * in flight): 2,172 -> 1,594 bytes of node RSS per connection.
 *
 * lws frees with lws_free(), which passes the reason "lws_free": a pointer
 * is told apart by its address (wr_slab_owns), not by its reason. lws runs
 * on the node's loop thread only, as the slabs require.
 */
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "node.h"

/* enough address space for the per-connection objects of ~1M connections;
 * reserved, not used, until connections come */
#define LWSMEM_REGION ((size_t)2 << 30)

static const char *const pooled[] = {
	"new server wsi", "uvh",       "ws struct", "rx_ubuf",
	"user space",     "ah struct", "ah data",
};

static bool is_pooled(const char *reason)
{
	size_t i;

	if (!reason)
		return false;
	for (i = 0; i < sizeof(pooled) / sizeof(pooled[0]); i++)
		if (!strcmp(reason, pooled[i]))
			return true;
	return false;
}

static void *lwsmem_realloc(void *ptr, size_t size, const char *reason)
{
	void *p;

	if (ptr && wr_slab_owns(ptr)) {
		size_t old = wr_slab_size(ptr);

		if (!size) {
			wr_slab_free(ptr);
			return NULL;
		}
		/* lws does not resize these; if it ever does, the object
		 * moves to the heap */
		p = malloc(size);
		if (!p)
			return NULL;
		memcpy(p, ptr, old < size ? old : size);
		wr_slab_free(ptr);
		return p;
	}
	if (!ptr && size && is_pooled(reason)) {
		int cls = wr_slab_class(size);

		if (cls >= 0 && (p = wr_slab_alloc(cls)))
			return p;
		/* too big (a node link's 64 KiB receive buffer), a 17th
		 * size, or the region full: the heap */
	}
	if (!size) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, size);
}

void node_lwsmem_install(void)
{
	if (wr_slab_init(LWSMEM_REGION)) {
		wr_log(WR_LOG_WARN,
		       "lws objects from the heap: no %zu MiB of "
		       "address space for slabs",
		       LWSMEM_REGION >> 20);
		return;
	}
	lws_set_allocator(lwsmem_realloc);
}
