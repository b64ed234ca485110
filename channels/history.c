/*
 * channels/history: the per-channel rings of PROTOCOL.md 7.3. An entry is
 * a reference to the shared delivery frame (and, once a recovering
 * subscriber asked, to its offset variant) on two lists: its ring's, in
 * offset order, and the node's, in age order. Entries of one ring are
 * appended in age order too, so the node's oldest entry is always the
 * oldest of its ring: the byte cap and the ttl drop from the node's list
 * head, which is the front of some ring. Event loop only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

struct chan_hist_entry {
	struct chan_hist_entry *older, *newer; /* the node's list */
	struct chan_hist_entry *prev, *next;   /* the ring's list */
	struct chan_ring *ring;
	struct wr_msg *frame;  /* the delivery frame subscribers share */
	struct wr_msg *oframe; /* its offset variant, NULL until needed */
	uint64_t off;
	int64_t at_ms;
	size_t bytes; /* counted in the node's total */
	struct chan_delivery_pos pos;
};

void chan_hist_init(struct chan_hist *h, const struct chan_hist_limits *lim)
{
	memset(h, 0, sizeof(*h));
	h->lim = *lim;
}

void chan_ring_init(struct chan_ring *r, const char *epoch)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->epoch, epoch, CHAN_EPOCH_LEN);
	r->epoch[CHAN_EPOCH_LEN] = '\0';
}

/* Unlinks @e from both lists and frees it. */
static void entry_drop(struct chan_hist *h, struct chan_hist_entry *e)
{
	struct chan_ring *r = e->ring;

	if (e->older)
		e->older->newer = e->newer;
	else
		h->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		h->newest = e->older;
	if (e->prev)
		e->prev->next = e->next;
	else
		r->first = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		r->end = e->prev;
	r->count--;
	h->entries--;
	h->bytes -= e->bytes;
	wr_msg_unref(&e->frame);
	if (e->oframe)
		wr_msg_unref(&e->oframe);
	free(e);
}

void chan_ring_fini(struct chan_hist *h, struct chan_ring *r)
{
	while (r->first)
		entry_drop(h, r->first);
}

/* The byte cap, oldest first across the node. */
static void trim_bytes(struct chan_hist *h)
{
	while (h->oldest && h->bytes > h->lim.max_bytes)
		entry_drop(h, h->oldest);
}

void chan_hist_expire(struct chan_hist *h, int64_t now_ms)
{
	while (h->oldest && now_ms - h->oldest->at_ms >= h->lim.ttl_ms)
		entry_drop(h, h->oldest);
}

void chan_hist_set_limits(struct chan_hist *h,
			  const struct chan_hist_limits *lim, int64_t now_ms)
{
	struct chan_hist_entry *e, *newer;

	h->lim = *lim;
	chan_hist_expire(h, now_ms);
	trim_bytes(h);
	/* a smaller size: each ring keeps its newest */
	for (e = h->oldest; e; e = newer) {
		newer = e->newer;
		if (e->ring->count > lim->size)
			entry_drop(h, e);
	}
}

uint64_t chan_ring_append(struct chan_hist *h, struct chan_ring *r,
			  struct wr_msg *frame,
			  const struct chan_delivery_pos *pos, int64_t now_ms)
{
	uint64_t off = ++r->last;
	struct chan_hist_entry *e;

	chan_hist_expire(h, now_ms);
	if (!h->lim.size)
		return off;
	e = calloc(1, sizeof(*e));
	if (!e) {
		/* the ring stays gapless: what it kept cannot be followed */
		chan_ring_fini(h, r);
		return off;
	}
	e->ring = r;
	e->frame = wr_msg_ref(frame);
	e->off = off;
	e->at_ms = now_ms;
	e->pos = *pos;
	e->bytes = frame->len + CHAN_HIST_ENTRY_OVERHEAD;
	e->older = h->newest;
	if (h->newest)
		h->newest->newer = e;
	else
		h->oldest = e;
	h->newest = e;
	e->prev = r->end;
	if (r->end)
		r->end->next = e;
	else
		r->first = e;
	r->end = e;
	r->count++;
	h->entries++;
	h->bytes += e->bytes;
	if (r->count > h->lim.size)
		entry_drop(h, r->first);
	trim_bytes(h);
	return off;
}

uint64_t chan_ring_first(const struct chan_ring *r)
{
	return r->first ? r->first->off : r->last + 1;
}

bool chan_ring_covers(const struct chan_ring *r, uint64_t since)
{
	if (since > r->last)
		return false;
	if (since == r->last)
		return true; /* nothing missed */
	/* kept entries are contiguous up to last: an entry that could not
	 * be allocated dropped everything older with it */
	return r->first && r->end->off == r->last && r->first->off <= since + 1;
}

static struct chan_hist_entry *entry_find(const struct chan_ring *r,
					  uint64_t off)
{
	struct chan_hist_entry *e;

	for (e = r->end; e && e->off > off; e = e->prev)
		;
	return e && e->off == off ? e : NULL;
}

/* The entry's variant, built at the first need; NULL on no memory. The
 * bytes are counted at once, the byte cap applied by the caller (a replay
 * must not lose the entries it walks). */
static struct wr_msg *entry_oframe(struct chan_hist *h,
				   struct chan_hist_entry *e)
{
	if (!e->oframe) {
		e->oframe = chan_offset_frame(e->frame, e->pos.split, e->off);
		if (!e->oframe)
			return NULL;
		e->bytes += e->oframe->len;
		h->bytes += e->oframe->len;
	}
	return e->oframe;
}

struct wr_msg *chan_ring_offset_frame(struct chan_hist *h, struct chan_ring *r,
				      uint64_t off, struct wr_msg *frame,
				      size_t split)
{
	struct chan_hist_entry *e = entry_find(r, off);
	struct wr_msg *m;

	if (!e)
		return frame ? chan_offset_frame(frame, split, off) : NULL;
	m = entry_oframe(h, e);
	if (!m)
		return NULL;
	wr_msg_ref(m);
	trim_bytes(h); /* the caller holds its reference */
	return m;
}

int chan_ring_replay(struct chan_hist *h, struct chan_ring *r, uint64_t after,
		     uint64_t upto, chan_ring_cb fn, void *arg)
{
	struct chan_hist_entry *e = r->first;
	int rc = 0;

	while (e && e->off <= after)
		e = e->next;
	for (; e && e->off <= upto && !rc; e = e->next) {
		struct wr_msg *m = entry_oframe(h, e);

		rc = m ? fn(arg, e->off, m) : WR_ENOMEM;
	}
	trim_bytes(h);
	return rc;
}

void chan_ring_newest(const struct chan_ring *r, unsigned limit,
		      chan_ring_msg_cb fn, void *arg)
{
	struct chan_hist_entry *e = r->end;

	if (!e || !limit)
		return;
	for (unsigned n = 1; n < limit && e->prev; n++)
		e = e->prev;
	for (; e; e = e->next)
		fn(arg, e->off, (const char *)e->frame->data + e->pos.msg_start,
		   e->pos.msg_end - e->pos.msg_start);
}

/* ---- the frames ---- */

/* The WebSocket header's length of a server text frame in @m. */
static size_t header_len(const struct wr_msg *m)
{
	unsigned l = m->data[1] & 0x7f;

	return l == 126 ? 4 : l == 127 ? 10 : 2;
}

struct wr_msg *chan_offset_frame(const struct wr_msg *frame, size_t split,
				 uint64_t off)
{
	char field[40];
	size_t hl = header_len(frame), plen = frame->len - hl, nh, flen;
	struct wr_msg *m;

	flen = (size_t)snprintf(field, sizeof(field), ",\"offset\":%" PRIu64,
				off);
	nh = wr_ws_header_len(plen + flen);
	m = wr_msg_create(nh + plen + flen);
	if (!m)
		return NULL;
	wr_ws_text_header(m->data, plen + flen);
	memcpy(m->data + nh, frame->data + hl, split - hl);
	memcpy(m->data + nh + split - hl, field, flen);
	memcpy(m->data + nh + split - hl + flen, frame->data + split,
	       frame->len - split);
	return m;
}

struct wr_msg *chan_delivery_frame(struct wr_buf *b, const char *channel,
				   size_t clen, const char *msg, size_t mlen,
				   const struct chan_str *nonce,
				   struct chan_delivery_pos *pos)
{
	static const char head[] =
		"{\"type\":\"message\",\"data\":{\"message\":";
	size_t msg_end, split, hl;
	struct wr_msg *m;

	wr_buf_reset(b);
	wr_buf_puts(b, head);
	wr_buf_json_str(b, msg, mlen);
	msg_end = b->len;
	wr_buf_puts(b, ",\"channel\":");
	wr_buf_json_str(b, channel, clen);
	split = b->len;
	wr_buf_puts(b, "}");
	if (nonce && nonce->p) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, nonce->p, nonce->len);
	}
	wr_buf_puts(b, "}");
	if (b->oom || b->len > UINT32_MAX - 16)
		return NULL;
	m = wr_ws_text_frame(b->p, b->len);
	if (!m)
		return NULL;
	hl = m->len - b->len;
	pos->msg_start = (uint32_t)(hl + sizeof(head) - 1);
	pos->msg_end = (uint32_t)(hl + msg_end);
	pos->split = (uint32_t)(hl + split);
	return m;
}
