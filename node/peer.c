/*
 * node/peer: one /node link, accepted or dialled (link.c). An accepted
 * upgrade needs a known token (http.c): node.token, or a live one-time
 * token, spent at the handshake for the name it was issued to (else 4403).
 * The first frame must be the handshake within 5 s; one link per pair of
 * nodes (4409, with the tie rule of 3.1); then every frame is an INM
 * packet, decoded and counted by inm/ and handed to the mesh (mesh.c).
 * Links are pinged every ping_interval_ms: the round trip is the peer's
 * latency.
 */
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "inm.h"
#include "node.h"

#define HANDSHAKE_SECS 5
#define BAD_WINDOW_MS 60000
#define BAD_MAX 100
#define FORBIDDEN 4403
#define DUPLICATE 4409

struct node_peer_out {
	struct node_peer_out *next;
	struct wr_msg *frame;
};

/* The Authentication header into @tok; its length or -1. */
static int auth_header(struct lws *wsi, char *tok, size_t size)
{
	int n = lws_hdr_custom_length(wsi, "authentication:", 15);

	if (n <= 0 || n >= (int)size ||
	    lws_hdr_custom_copy(wsi, tok, (int)size, "authentication:", 15) < 0)
		return -1;
	return n;
}

/* node.token, or the rejoin token our record offers (healing) */
static bool is_static_token(struct node *node, const char *tok, int n)
{
	return mesh_token_static(node->mesh, tok, (size_t)n);
}

bool node_peer_token_ok(struct node *node, struct lws *wsi)
{
	char tok[256];
	int n = auth_header(wsi, tok, sizeof(tok));
	bool ok;

	if (n < 0)
		return false;
	ok = is_static_token(node, tok, n) ||
	     inm_token_known(mesh_tokens(node->mesh), tok, (size_t)n,
			     wr_now_ms());
	sodium_memzero(tok, sizeof(tok));
	return ok;
}

static void link_down(struct node *node, struct node_peer *p)
{
	if (!p->up)
		return;
	p->up = false;
	node->npeers_up--;
	mesh_link_down(node->mesh, &p->ml);
	{
		struct wr_log_field f[] = { WR_LF_STR("peer", p->ml.name) };

		wr_log_fields(WR_LOG_INFO, f, 1, "node link '%s' down",
			      p->ml.name);
	}
	node_links_peer_down(node, p->ml.name);
}

int node_peer_open(struct node *node, struct lws *wsi, struct node_pss *pss)
{
	struct node_peer *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	p->node = node;
	p->wsi = wsi;
	p->ml.latency_ms = -1.0;
	if (!lws_get_opaque_user_data(wsi)) {
		/* accepted: remember a one-time token, spent at the handshake */
		char tok[256];
		int n = auth_header(wsi, tok, sizeof(tok));

		if (n == INM_TOKEN_LEN && !is_static_token(node, tok, n)) {
			memcpy(p->token, tok, INM_TOKEN_LEN);
			p->one_time = true;
		}
		sodium_memzero(tok, sizeof(tok));
	}
	lws_dll2_add_head(&p->list, &node->peers);
	pss->peer = p;
	/* the handshake (or, dialling, its answer) must come within 5 s */
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HANDSHAKE_SECS);
	return 0;
}

void node_peer_close(struct node *node, struct node_pss *pss)
{
	struct node_peer *p = pss->peer;

	if (!p)
		return;
	pss->peer = NULL;
	node_client_reader_gone(node, p->wsi);
	link_down(node, p);
	if (p->one_time) /* never handshaken: the token dies with the link */
		inm_token_use(mesh_tokens(node->mesh), p->token, INM_TOKEN_LEN,
			      NULL, wr_now_ms());
	lws_dll2_remove(&p->list);
	while (p->out_head) {
		struct node_peer_out *o = p->out_head;

		p->out_head = o->next;
		wr_msg_unref(&o->frame);
		free(o);
	}
	node_rx_fini(&p->rx);
	free(p);
}

static void close_later(struct node_peer *p, int code, const char *reason)
{
	node_client_close_slots(p->wsi, &p->close_code, &p->close_reason, code,
				reason);
}

void node_peer_close_later(struct node_peer *p, int code, const char *reason)
{
	link_down(p->node, p);
	close_later(p, code, reason);
}

void node_peer_close_all(struct node *node)
{
	for (struct node_peer *p = node_peers_first(node); p;
	     p = node_peer_next(p))
		close_later(p, LWS_CLOSE_STATUS_GOINGAWAY, "going away");
}

/*
 * Queues one text message for the link; node_peers_flush() writes it after
 * this loop pass. Not lws_callback_on_writable(): on the uv loop each call
 * restarts the link's poll watcher (epoll DEL + ADD) and drops the POLLOUT
 * event epoll already returned for this pass, so while a publisher's burst
 * was read (256 bytes a pass) its packets sat queued until the burst ended.
 */
void node_peer_send_msg(struct node_peer *p, struct wr_msg *m)
{
	struct node_peer_out *o = malloc(sizeof(*o));

	if (!o)
		return;
	o->frame = wr_msg_ref(m);
	o->next = NULL;
	if (p->out_tail)
		p->out_tail->next = o;
	else
		p->out_head = o;
	p->out_tail = o;
	p->flush_due = true;
}

static void send_json(struct node_peer *p, const char *json, size_t len)
{
	struct wr_msg *m = wr_msg_create(len);

	if (!m)
		return;
	memcpy(m->data, json, len);
	node_peer_send_msg(p, m);
	wr_msg_unref(&m);
}

struct node_peer *node_peer_named(struct node *node, const char *name)
{
	for (struct node_peer *p = node_peers_first(node); p;
	     p = node_peer_next(p))
		if (p->up && !strcmp(p->ml.name, name))
			return p;
	return NULL;
}

/*
 * One link per pair of nodes (3.1). @np just handshook with @name; returns
 * whether it may come up. Two links the same way round are a duplicate
 * (two processes with one name, or a redial racing its old link): the new
 * one goes. One each way (both nodes dialled at once): the link dialled by
 * the node whose name sorts lower survives, on both sides alike.
 */
static bool tie_break(struct node *node, struct node_peer *np, const char *name)
{
	struct node_peer *old = node_peer_named(node, name);
	bool self_lower, keep_new;

	if (!old)
		return true;
	if ((old->dial != NULL) == (np->dial != NULL))
		return false;
	self_lower = strcmp(node->cfg->name, name) < 0;
	/* np survives when it was dialled by the lower name */
	keep_new = (np->dial != NULL) == self_lower;
	if (keep_new) {
		wr_info("node link '%s': both of us dialled; keeping %s link",
			name, np->dial ? "our" : "their");
		node_peer_close_later(old, DUPLICATE, "duplicate node");
	}
	return keep_new;
}

static void link_up(struct node *node, struct node_peer *p, const char *name,
		    const cJSON *url)
{
	lws_set_timeout(p->wsi, NO_PENDING_TIMEOUT, 0);
	lws_snprintf(p->ml.name, sizeof(p->ml.name), "%s", name);
	if (cJSON_IsString(url))
		lws_snprintf(p->ml.url, sizeof(p->ml.url), "%s",
			     url->valuestring);
	p->ml.dialled = p->dial != NULL;
	p->up = true;
	node->npeers_up++;
	{
		char a[64];
		struct wr_log_field f[] = {
			WR_LF_STR("peer", p->ml.name),
			WR_LF_STR("addr", node_wsi_addr(p->wsi, a, sizeof(a))),
		};

		wr_log_fields(WR_LOG_INFO, f, 2, "node link '%s' up (%s)",
			      p->ml.name, p->dial ? "dialled" : "accepted");
	}
	mesh_link_up(node->mesh, &p->ml);
}

/* {"command":"handshake","data":{"name":..,"url":..}} */
static void handshake(struct node *node, struct node_peer *p, const char *buf,
		      size_t len)
{
	cJSON *root = cJSON_ParseWithLength(buf, len), *data, *name, *url, *cmd;
	struct wr_buf *b = &node->scratch;
	const char *self = node->cfg->name;
	bool one_time = p->one_time;

	p->one_time = false; /* spent below, whatever happens */
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	name = cJSON_GetObjectItemCaseSensitive(data, "name");
	url = cJSON_GetObjectItemCaseSensitive(data, "url");
	cmd = cJSON_GetObjectItemCaseSensitive(root, "command");
	if (!cJSON_IsObject(root) || !cJSON_IsString(cmd) ||
	    strcmp(cmd->valuestring, "handshake") || !cJSON_IsString(name) ||
	    !inm_node_name_valid(name->valuestring,
				 strlen(name->valuestring)) ||
	    (url && !cJSON_IsNull(url) &&
	     (!cJSON_IsString(url) ||
	      strlen(url->valuestring) >= sizeof(p->ml.url)))) {
		if (one_time)
			inm_token_use(mesh_tokens(node->mesh), p->token,
				      INM_TOKEN_LEN, NULL, wr_now_ms());
		close_later(p, LWS_CLOSE_STATUS_PROTOCOL_ERR,
			    "invalid handshake");
		goto out;
	}
	/* a one-time token is bound to the name it was issued for */
	if (one_time &&
	    inm_token_use(mesh_tokens(node->mesh), p->token, INM_TOKEN_LEN,
			  name->valuestring, wr_now_ms()) != INM_TOKEN_OK) {
		wr_warn("node link refused: token not issued to '%s'",
			name->valuestring);
		close_later(p, FORBIDDEN, "forbidden");
		goto out;
	}
	/* two processes with one name must never both be linked */
	if (!strcmp(name->valuestring, self) ||
	    !tie_break(node, p, name->valuestring)) {
		wr_warn("node link refused: duplicate node '%s'",
			name->valuestring);
		close_later(p, DUPLICATE, "duplicate node");
		goto out;
	}
	wr_buf_reset(b);
	wr_buf_puts(b,
		    "{\"type\":\"response\",\"data\":{\"ok\":true,\"name\":");
	wr_buf_json_str(b, self, strlen(self));
	wr_buf_puts(b, ",\"url\":");
	wr_buf_json_str(b, node->url, strlen(node->url));
	wr_buf_puts(b, "}}");
	if (b->oom)
		goto out;
	/* the reply first: onboarding's commands follow it on the link */
	send_json(p, b->p, b->len);
	link_up(node, p, name->valuestring, url);
out:
	sodium_memzero(p->token, sizeof(p->token));
	cJSON_Delete(root);
}

int node_peer_send_handshake(struct node *node, struct node_peer *p)
{
	struct wr_buf *b = &node->scratch;
	const char *url = node->url;

	wr_buf_reset(b);
	wr_buf_puts(b, "{\"command\":\"handshake\",\"data\":{\"name\":");
	wr_buf_json_str(b, node->cfg->name, strlen(node->cfg->name));
	wr_buf_puts(b, ",\"url\":");
	wr_buf_json_str(b, url, strlen(url));
	wr_buf_puts(b, "}}");
	if (b->oom)
		return -1;
	send_json(p, b->p, b->len);
	return 0;
}

/* Outbound: the accepting node's answer to our handshake. */
static void handshake_reply(struct node *node, struct node_peer *p,
			    const char *buf, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(buf, len), *data, *ok, *name, *url;
	const char *want = node_link_peer_name(p->dial);

	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	ok = cJSON_GetObjectItemCaseSensitive(data, "ok");
	name = cJSON_GetObjectItemCaseSensitive(data, "name");
	url = cJSON_GetObjectItemCaseSensitive(data, "url");
	if (!cJSON_IsTrue(ok) || !cJSON_IsString(name)) {
		wr_warn("peer '%s': handshake refused", want);
		close_later(p, LWS_CLOSE_STATUS_PROTOCOL_ERR,
			    "handshake refused");
		goto out;
	}
	if (strcmp(name->valuestring, want) || !tie_break(node, p, want)) {
		/* a misconfigured url, or already linked the other way */
		wr_warn("peer '%s': answered as '%.64s' or already linked",
			want, name->valuestring);
		close_later(p, DUPLICATE, "duplicate node");
		goto out;
	}
	node_link_handshaken(p->dial);
	link_up(node, p, want, url);
out:
	cJSON_Delete(root);
}

/* A malformed packet is dropped and counted; a flood of them ends the link. */
static void malformed(struct node *node, struct node_peer *p, enum inm_drop why)
{
	int64_t now = wr_now_ms();

	node->ctr.inm_dropped[why]++;
	if (now - p->bad_window_ms > BAD_WINDOW_MS) {
		p->bad_window_ms = now;
		p->bad_count = 0;
	}
	if (++p->bad_count > BAD_MAX) {
		node->ctr.inm_link_closes_malformed++;
		wr_warn("node link '%s': over %d malformed packets a minute, closing",
			p->ml.name, BAD_MAX);
		node_peer_close_later(p, LWS_CLOSE_STATUS_PROTOCOL_ERR,
				      "malformed packets");
	}
}

static void packet(struct node *node, struct node_peer *p, const char *buf,
		   size_t len)
{
	struct inm_packet pkt;
	enum inm_drop why;

	inm_packet_init(&pkt);
	node->ctr.inm_bytes_in += len;
	why = inm_packet_decode(&pkt, buf, len);
	if (why != INM_DROP_NONE)
		malformed(node, p, why);
	else {
		node->ctr.inm_in++;
		mesh_packet_in(node->mesh, &p->ml, &pkt);
	}
	inm_packet_fini(&pkt);
}

int node_peer_receive(struct node *node, struct node_peer *p, const void *in,
		      size_t len)
{
	/* a channel message is base64 of up to max_message_bytes, plus fields */
	size_t limit = 2 * (size_t)node->cfg->max_message_bytes + 65536;
	const char *msg;
	size_t mlen;

	if (p->close_code)
		return 0;
	if (p->up)
		mesh_link_heard(node->mesh, &p->ml);
	node_client_reader(node, p->wsi, &p->read_pass);
	switch (node_rx_add(&p->rx, p->wsi, in, len, limit, &msg, &mlen)) {
	case NODE_RX_MORE:
		return 0;
	case NODE_RX_BINARY:
		lws_close_reason(p->wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				 (unsigned char *)"binary", 6);
		return -1;
	case NODE_RX_TOO_LARGE:
		lws_close_reason(p->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"too large", 9);
		return -1;
	case NODE_RX_NOMEM:
		return -1;
	case NODE_RX_DONE:
		break;
	}
	if (!p->up) {
		if (p->dial)
			handshake_reply(node, p, msg, mlen);
		else
			handshake(node, p, msg, mlen);
	} else {
		packet(node, p, msg, mlen);
	}
	node_rx_handled(&p->rx);
	return 0;
}

void node_peer_pong(struct node *node, struct node_peer *p, const void *in,
		    size_t len)
{
	int64_t sent;

	if (!p->up)
		return;
	mesh_link_heard(node->mesh, &p->ml);
	if (len != sizeof(sent) || !p->ping_sent_us)
		return;
	memcpy(&sent, in, sizeof(sent));
	if (sent != p->ping_sent_us)
		return; /* not our last ping */
	mesh_link_pong(node->mesh, &p->ml,
		       (double)(wr_now_us() - sent) / 1000.0);
	p->ping_sent_us = 0;
}

/* A ping whose payload is its send time: the pong gives the round trip. */
static int write_ping(struct node *node, struct node_peer *p)
{
	int64_t now = wr_now_us();

	p->ping_due = false;
	p->ping_sent_us = now;
	memcpy(node->wbuf + LWS_PRE, &now, sizeof(now));
	if (lws_write(p->wsi, node->wbuf + LWS_PRE, sizeof(now),
		      LWS_WRITE_PING) < 0)
		return -1;
	if (p->out_head || p->close_code)
		lws_callback_on_writable(p->wsi);
	return 0;
}

/* A fresh masking key: 4 unused bytes of the link's pool of CSPRNG output,
 * refilled when spent (one getrandom per 64 packets, not one per packet). */
static void mask_key(struct node_peer *p, unsigned char key[4])
{
	if (p->mask_left < 4) {
		randombytes_buf(p->mask_pool, NODE_MASK_POOL);
		p->mask_left = NODE_MASK_POOL;
	}
	memcpy(key, p->mask_pool + NODE_MASK_POOL - p->mask_left, 4);
	p->mask_left -= 4;
}

/*
 * Appends one text frame of @m to @dst: unmasked on an accepted link,
 * masked with a fresh key on a dialled one (RFC 6455 5.3: clients mask).
 * Returns the bytes written; @dst has room for header + payload.
 */
static size_t frame(struct node_peer *p, unsigned char *dst,
		    const struct wr_msg *m, bool masked)
{
	size_t n = m->len, h = wr_ws_text_header(dst, n), i = 0;
	unsigned char key[4];
	uint64_t k8, w;
	uint32_t k4;

	if (!masked) {
		memcpy(dst + h, m->data, n);
		return h + n;
	}
	dst[1] |= 0x80;
	mask_key(p, key);
	memcpy(dst + h, key, 4);
	h += 4;
	/* eight bytes at a time: the key repeats every 4, so twice over */
	memcpy(&k4, key, 4);
	k8 = (uint64_t)k4 << 32 | k4;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, m->data + i, 8);
		w ^= k8;
		memcpy(dst + h + i, &w, 8);
	}
	for (; i < n; i++)
		dst[h + i] = m->data[i] ^ key[i & 3];
	return h + n;
}

#define FRAME_HDR_MAX 14

static void out_pop(struct node_peer *p)
{
	struct node_peer_out *o = p->out_head;

	p->out_head = o->next;
	if (!p->out_head)
		p->out_tail = NULL;
	wr_msg_unref(&o->frame);
	free(o);
}

/*
 * Writes queued packets, framed by us so that many leave in one write of
 * up to NODE_WRITE_COALESCE bytes (lws would make one write per frame); a
 * larger packet gets a buffer of its own. lws keeps what the socket does
 * not take and calls WRITEABLE again once it is out.
 */
static int write_queued(struct node *node, struct node_peer *p)
{
	unsigned char *buf = node->wbuf + LWS_PRE, *big = NULL;
	bool masked = p->dial != NULL;
	size_t n = 0;
	int w;

	if (p->out_head->frame->len + FRAME_HDR_MAX > NODE_WRITE_COALESCE) {
		big = malloc(LWS_PRE + p->out_head->frame->len + FRAME_HDR_MAX);
		if (!big)
			return -1;
		buf = big + LWS_PRE;
		n = frame(p, buf, p->out_head->frame, masked);
		out_pop(p);
	}
	while (!big && p->out_head &&
	       n + p->out_head->frame->len + FRAME_HDR_MAX <=
		       NODE_WRITE_COALESCE) {
		n += frame(p, buf + n, p->out_head->frame, masked);
		out_pop(p);
	}
	w = lws_write(p->wsi, buf, n, LWS_WRITE_RAW);
	free(big);
	if (w < 0)
		return -1;
	if (p->out_head || p->close_code || p->ping_due)
		lws_callback_on_writable(p->wsi);
	return 0;
}

bool node_peers_flush_due(struct node *node)
{
	for (struct node_peer *p = node_peers_first(node); p;
	     p = node_peer_next(p))
		if (p->flush_due)
			return true;
	return false;
}

void node_peers_flush(struct node *node)
{
	for (struct node_peer *p = node_peers_first(node); p;
	     p = node_peer_next(p)) {
		if (!p->flush_due)
			continue;
		p->flush_due = false;
		if (!p->out_head)
			continue;
		/* lws holds part of an earlier write, a ping or a close goes
		 * first: only a WRITEABLE may write now */
		if (p->close_code || p->ping_due ||
		    lws_partial_buffered(p->wsi)) {
			lws_callback_on_writable(p->wsi);
			continue;
		}
		if (write_queued(node, p) < 0)
			node_peer_close_later(p,
					      LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
					      "write failed");
	}
}

int node_peer_writeable(struct node *node, struct node_peer *p)
{
	if (p->ping_due && p->up && !p->close_code)
		return write_ping(node, p);
	if (p->out_head)
		return write_queued(node, p);
	if (!p->close_code)
		return 0;
	if (p->dial) {
		/* client side: lws masks the close it sends */
		lws_close_reason(p->wsi, (enum lws_close_status)p->close_code,
				 (unsigned char *)p->close_reason,
				 strlen(p->close_reason));
		return -1;
	}
	return node_client_close_raw(node, p->wsi, p->close_code,
				     p->close_reason);
}

/* ---- what the mesh engine reaches the links through ---- */

static struct node_peer *peer_of(struct mesh_link *l)
{
	return lws_container_of(l, struct node_peer, ml);
}

static void ops_send(void *ud, struct mesh_link *l, struct wr_msg *m)
{
	(void)ud;
	node_peer_send_msg(peer_of(l), m);
}

static void ops_ping(void *ud, struct mesh_link *l)
{
	struct node_peer *p = peer_of(l);

	(void)ud;
	p->ping_due = true;
	lws_callback_on_writable(p->wsi);
}

static void ops_drop(void *ud, struct mesh_link *l, int code,
		     const char *reason)
{
	struct node_peer *p = peer_of(l);

	(void)ud;
	node_peer_close_later(p, code, reason);
	/* it will not drain: do not wait for it */
	lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static int ops_dial(void *ud, const char *name, const char *url,
		    const char *token)
{
	return node_link_dial_once(ud, name, url, token);
}

static bool ops_dialling(void *ud, const char *name)
{
	return node_link_dialling(ud, name);
}

static unsigned ops_dials(void *ud)
{
	return ((struct node *)ud)->once.count;
}

static void ops_health(void *ud, struct health_result *r)
{
	node_http_health(ud, r);
}

static void ops_kick(void *ud)
{
	node_tick_soon(ud);
}

static unsigned ops_clients(void *ud)
{
	return ((struct node *)ud)->clients.count;
}

const struct mesh_ops node_peer_mesh_ops = {
	.send = ops_send,
	.ping = ops_ping,
	.drop = ops_drop,
	.dial = ops_dial,
	.dialling = ops_dialling,
	.dials = ops_dials,
	.kick = ops_kick,
	.health = ops_health,
	.clients = ops_clients,
};
