/*
 * node/rx: message reassembly for every WebSocket session (clients and
 * node links). lws hands us a message in chunks of at most rx_buffer_size;
 * we collect them in a per-session buffer bounded by the caller's limit,
 * refuse binary frames, and skip the copy when a message fits one chunk.
 */
#include <string.h>

#include "node.h"

/* A buffer above this is dropped once its message is handled: an idle
 * session does not keep a big message's memory. */
#define RX_KEEP_MAX 16384
/* Nor one below this: a command a little over lws's chunk (a subscribe
 * with a password) must not leave its buffer behind on an idle client;
 * allocating it again is cheap next to parsing it. */
#define RX_KEEP_MIN 4096
#define RX_FIRST 256

enum node_rx_result node_rx_add(struct node_rx *rx, struct lws *wsi,
				const void *in, size_t len, size_t limit,
				const char **msg, size_t *mlen)
{
	size_t need;

	if (!rx->active) {
		if (lws_frame_is_binary(wsi))
			return NODE_RX_BINARY;
		rx->active = true;
		rx->len = 0;
	}
	need = rx->len + len + lws_remaining_packet_payload(wsi);
	if (need > limit)
		return NODE_RX_TOO_LARGE;
	if (rx->len == 0 && lws_is_final_fragment(wsi)) {
		/* the whole message in one chunk: no copy */
		rx->active = false;
		*msg = in;
		*mlen = len;
		return NODE_RX_DONE;
	}
	if (need > rx->cap) {
		/* what the message needs (lws tells the rest of the frame) */
		size_t cap = rx->cap ? rx->cap : RX_FIRST;
		char *p;

		while (cap < need)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		p = realloc(rx->buf, cap);
		if (!p)
			return NODE_RX_NOMEM;
		rx->buf = p;
		rx->cap = cap;
	}
	memcpy(rx->buf + rx->len, in, len);
	rx->len += len;
	if (!lws_is_final_fragment(wsi))
		return NODE_RX_MORE;
	rx->active = false;
	*msg = rx->buf;
	*mlen = rx->len;
	return NODE_RX_DONE;
}

void node_rx_handled(struct node_rx *rx)
{
	if (rx->cap > RX_KEEP_MAX || rx->cap < RX_KEEP_MIN) {
		free(rx->buf);
		rx->buf = NULL;
		rx->cap = 0;
	}
}

void node_rx_fini(struct node_rx *rx)
{
	free(rx->buf);
	memset(rx, 0, sizeof(*rx));
}
