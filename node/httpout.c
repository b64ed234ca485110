/*
 * node/httpout: a response body sent as the socket drains — one chunk per
 * LWS_CALLBACK_HTTP_WRITEABLE, from a shared refcounted buffer (a cached
 * /api answer: many slow readers hold one copy) or from a file on disk
 * (a static file is never in memory whole). A reader that does not read
 * costs its socket buffers and nothing here; HTTP/2's flow-control window
 * is waited for, not overrun.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "node.h"

/* HTTP/2's default SETTINGS_MAX_FRAME_SIZE; a fair share for HTTP/1 */
#define CHUNK ((size_t)16384)
/* A reader that takes nothing for this long is dropped; one that reads,
 * however slowly, is not (each chunk sent restarts it). */
#define STALL_S 30

int node_http_out_start(struct lws *wsi, struct node_http_out *o,
			struct wr_msg *body, int fd, size_t len)
{
	memset(o, 0, sizeof(*o));
	o->body = body;
	o->fd = fd;
	o->file = !body;
	o->len = len;
	o->active = true;
	if (!len) { /* nothing to stream: the headers were all */
		node_http_out_fini(o);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, STALL_S);
	lws_callback_on_writable(wsi);
	return 0;
}

void node_http_out_fini(struct node_http_out *o)
{
	if (!o->active)
		return;
	if (o->body)
		wr_msg_unref(&o->body);
	if (o->file)
		close(o->fd);
	memset(o, 0, sizeof(*o));
}

int node_http_out_write(struct node *node, struct lws *wsi,
			struct node_http_out *o)
{
	unsigned char *buf = node->wbuf + LWS_PRE;
	lws_fileofs_t credit = lws_get_peer_write_allowance(wsi);
	size_t n = o->len - o->off < CHUNK ? o->len - o->off : CHUNK;
	bool last;

	if (!o->active)
		return 0;
	if (credit == 0) { /* HTTP/2: the peer's window is shut for now */
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (credit > 0 && (uintmax_t)credit < n)
		n = (size_t)credit;
	if (o->file) {
		ssize_t r;

		do
			r = pread(o->fd, buf, n, (off_t)o->off);
		while (r < 0 && errno == EINTR);
		if (r <= 0) { /* the file shrank or failed: cut it short */
			node_http_out_fini(o);
			return -1;
		}
		n = (size_t)r;
	} else {
		memcpy(buf, o->body->data + o->off, n);
	}
	last = o->off + n == o->len;
	if (lws_write(wsi, buf, n,
		      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n) {
		node_http_out_fini(o);
		return -1;
	}
	o->off += n;
	if (!last) {
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, STALL_S);
		lws_callback_on_writable(wsi);
		return 0;
	}
	node_http_out_fini(o);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}
