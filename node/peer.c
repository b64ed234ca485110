/*
 * node/peer: the accepted side of a /node link. The upgrade was allowed
 * only with a known token (http.c); the first frame must be the handshake
 * within 5 s, then every frame is an INM packet, decoded and counted by
 * inm/. Packets are not yet routed or acted on (the mesh issue does that);
 * a command this node does not know is answered "unknown command", as
 * PROTOCOL.md 3.4 asks of any node.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "inm.h"
#include "node.h"

#define HANDSHAKE_SECS 5
#define BAD_WINDOW_MS 60000
#define BAD_MAX 100

struct wr_peer_out {
	struct wr_peer_out *next;
	struct wr_msg *frame;
};

bool wr_peer_token_ok(struct wr_node *node, struct lws *wsi)
{
	char tok[256];
	int n = lws_hdr_custom_length(wsi, "authentication:", 15);
	size_t want;

	if (!node->cfg->token || n <= 0 || n >= (int)sizeof(tok))
		return false;
	if (lws_hdr_custom_copy(wsi, tok, sizeof(tok), "authentication:", 15) < 0)
		return false;
	want = strlen(node->cfg->token);
	return (size_t)n == want && wr_ct_equal(tok, node->cfg->token, want);
}

int wr_peer_open(struct wr_node *node, struct lws *wsi, struct wr_pss *pss)
{
	struct wr_peer *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	p->node = node;
	p->wsi = wsi;
	p->next = node->peers;
	if (node->peers)
		node->peers->prev = p;
	node->peers = p;
	pss->peer = p;
	/* the handshake (or, dialling, its answer) must come within 5 s */
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HANDSHAKE_SECS);
	return 0;
}

void wr_peer_close(struct wr_node *node, struct wr_pss *pss)
{
	struct wr_peer *p = pss->peer;

	if (!p)
		return;
	pss->peer = NULL;
	if (p->up) {
		node->npeers_up--;
		wr_info("node link '%s' down", p->name);
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		node->peers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	while (p->out_head) {
		struct wr_peer_out *o = p->out_head;

		p->out_head = o->next;
		wr_msg_unref(&o->frame);
		free(o);
	}
	wr_rx_fini(&p->rx);
	free(p);
}

static void close_later(struct wr_peer *p, int code, const char *reason)
{
	wr_close_later(p->wsi, &p->close_code, &p->close_reason, code, reason);
}

void wr_peers_close_all(struct wr_node *node)
{
	for (struct wr_peer *p = node->peers; p; p = p->next)
		close_later(p, LWS_CLOSE_STATUS_GOINGAWAY, "going away");
}

/* Queues @json (one text message) for the link. Payload only: lws frames
 * it at write time, and masks it in place on an outbound link. */
static void send_json(struct wr_peer *p, const char *json, size_t len)
{
	struct wr_peer_out *o = malloc(sizeof(*o));

	if (!o)
		return;
	o->frame = wr_msg_create(len);
	if (!o->frame) {
		free(o);
		return;
	}
	memcpy(o->frame->data, json, len);
	o->next = NULL;
	if (p->out_tail)
		p->out_tail->next = o;
	else
		p->out_head = o;
	p->out_tail = o;
	p->node->ctr.inm_out++;
	lws_callback_on_writable(p->wsi);
}

static struct wr_peer *peer_named(struct wr_node *node, const char *name)
{
	for (struct wr_peer *p = node->peers; p; p = p->next)
		if (p->up && !strcmp(p->name, name))
			return p;
	return NULL;
}

/* {"command":"handshake","data":{"name":..,"url":..}} */
static void handshake(struct wr_node *node, struct wr_peer *p, const char *buf,
		      size_t len)
{
	cJSON *root = cJSON_ParseWithLength(buf, len), *data, *name, *url;
	struct wr_buf *b = &node->scratch;
	const char *self = node->cfg->name;

	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	name = cJSON_GetObjectItemCaseSensitive(data, "name");
	url = cJSON_GetObjectItemCaseSensitive(data, "url");
	if (!cJSON_IsObject(root) ||
	    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "command")) ||
	    strcmp(cJSON_GetObjectItemCaseSensitive(root, "command")->valuestring,
		   "handshake") ||
	    !cJSON_IsString(name) ||
	    !inm_node_name_valid(name->valuestring, strlen(name->valuestring)) ||
	    (url && !cJSON_IsNull(url) &&
	     (!cJSON_IsString(url) || strlen(url->valuestring) >= sizeof(p->url)))) {
		close_later(p, LWS_CLOSE_STATUS_PROTOCOL_ERR, "invalid handshake");
		goto out;
	}
	/* two processes with one name must never both be linked */
	if (!strcmp(name->valuestring, self) || peer_named(node, name->valuestring)) {
		wr_warn("node link refused: duplicate node '%s'", name->valuestring);
		close_later(p, 4409, "duplicate node");
		goto out;
	}
	lws_set_timeout(p->wsi, NO_PENDING_TIMEOUT, 0);
	lws_snprintf(p->name, sizeof(p->name), "%s", name->valuestring);
	if (cJSON_IsString(url))
		lws_snprintf(p->url, sizeof(p->url), "%s", url->valuestring);
	p->up = true;
	node->npeers_up++;
	wr_info("node link '%s' up (accepted)", p->name);

	wr_buf_reset(b);
	wr_buf_puts(b, "{\"type\":\"response\",\"data\":{\"ok\":true,\"name\":");
	wr_buf_json_str(b, self, strlen(self));
	wr_buf_puts(b, ",\"url\":");
	wr_buf_json_str(b, node->cfg->url ? node->cfg->url : "",
			node->cfg->url ? strlen(node->cfg->url) : 0);
	wr_buf_puts(b, "}}");
	if (!b->oom)
		send_json(p, b->p, b->len);
out:
	cJSON_Delete(root);
}

int wr_peer_send_handshake(struct wr_node *node, struct wr_peer *p)
{
	struct wr_buf *b = &node->scratch;
	const char *url = node->cfg->url ? node->cfg->url : "";

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
static void handshake_reply(struct wr_node *node, struct wr_peer *p,
			    const char *buf, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(buf, len), *data, *ok, *name, *url;
	const char *want = wr_link_peer_name(p->dial);

	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	ok = cJSON_GetObjectItemCaseSensitive(data, "ok");
	name = cJSON_GetObjectItemCaseSensitive(data, "name");
	url = cJSON_GetObjectItemCaseSensitive(data, "url");
	if (!cJSON_IsTrue(ok) || !cJSON_IsString(name)) {
		wr_warn("peer '%s': handshake refused", want);
		close_later(p, LWS_CLOSE_STATUS_PROTOCOL_ERR, "handshake refused");
		goto out;
	}
	if (strcmp(name->valuestring, want) || peer_named(node, want)) {
		/* a misconfigured url, or already linked the other way */
		wr_warn("peer '%s': answered as '%.64s' or already linked",
			want, name->valuestring);
		close_later(p, 4409, "duplicate node");
		goto out;
	}
	lws_set_timeout(p->wsi, NO_PENDING_TIMEOUT, 0);
	lws_snprintf(p->name, sizeof(p->name), "%s", want);
	if (cJSON_IsString(url))
		lws_snprintf(p->url, sizeof(p->url), "%s", url->valuestring);
	p->up = true;
	node->npeers_up++;
	wr_link_handshaken(p->dial);
	wr_info("node link '%s' up (dialled)", p->name);
out:
	cJSON_Delete(root);
}

/* A malformed packet is dropped and counted; a flood of them ends the link. */
static void malformed(struct wr_node *node, struct wr_peer *p, enum inm_drop why)
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
			p->name, BAD_MAX);
		close_later(p, LWS_CLOSE_STATUS_PROTOCOL_ERR, "malformed packets");
	}
}

static void answer_unknown(struct wr_node *node, struct wr_peer *p,
			   const struct inm_packet *cmd)
{
	struct inm_packet resp;
	struct wr_buf *b = &node->scratch;

	inm_packet_init(&resp);
	lws_snprintf(resp.source, sizeof(resp.source), "%s", node->cfg->name);
	lws_snprintf(resp.destination, sizeof(resp.destination), "%s", cmd->source);
	resp.type = INM_RESPONSE;
	memcpy(resp.nonce, cmd->nonce, sizeof(resp.nonce));
	resp.data = cJSON_CreateObject();
	if (resp.data && cJSON_AddFalseToObject(resp.data, "ok") &&
	    cJSON_AddStringToObject(resp.data, "reason", "unknown command")) {
		wr_buf_reset(b);
		if (!inm_packet_encode(&resp, b) && !b->oom)
			send_json(p, b->p, b->len);
	}
	inm_packet_fini(&resp);
}

static void packet(struct wr_node *node, struct wr_peer *p, const char *buf,
		   size_t len)
{
	struct inm_packet pkt;
	enum inm_drop why;

	inm_packet_init(&pkt);
	why = inm_packet_decode(&pkt, buf, len);
	if (why != INM_DROP_NONE) {
		malformed(node, p, why);
		goto out;
	}
	node->ctr.inm_in++;
	if (strcmp(pkt.destination, node->cfg->name) && strcmp(pkt.destination, "*"))
		goto out; /* forwarding arrives with the mesh */
	if (pkt.type == INM_COMMAND)
		answer_unknown(node, p, &pkt);
out:
	inm_packet_fini(&pkt);
}

int wr_peer_receive(struct wr_node *node, struct wr_peer *p, const void *in,
		    size_t len)
{
	/* a channel message is base64 of up to max_message_bytes, plus fields */
	size_t limit = 2 * (size_t)node->cfg->max_message_bytes + 65536;
	const char *msg;
	size_t mlen;

	if (p->close_code)
		return 0;
	switch (wr_rx_add(&p->rx, p->wsi, in, len, limit, &msg, &mlen)) {
	case WR_RX_MORE:
		return 0;
	case WR_RX_BINARY:
		lws_close_reason(p->wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				 (unsigned char *)"binary", 6);
		return -1;
	case WR_RX_TOO_LARGE:
		lws_close_reason(p->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"too large", 9);
		return -1;
	case WR_RX_NOMEM:
		return -1;
	case WR_RX_DONE:
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
	wr_rx_handled(&p->rx);
	return 0;
}

int wr_peer_writeable(struct wr_node *node, struct wr_peer *p)
{
	struct wr_peer_out *o = p->out_head;

	if (!o) {
		if (!p->close_code)
			return 0;
		if (p->dial) {
			/* client side: lws masks the close it sends */
			lws_close_reason(p->wsi, (enum lws_close_status)p->close_code,
					 (unsigned char *)p->close_reason,
					 strlen(p->close_reason));
			return -1;
		}
		return wr_ws_close_raw(node, p->wsi, p->close_code, p->close_reason);
	}
	p->out_head = o->next;
	if (!p->out_head)
		p->out_tail = NULL;
	/* from a copy: lws writes the header before it and, client side,
	 * masks the payload in place */
	if (o->frame->len > WR_WRITE_COALESCE) {
		wr_msg_unref(&o->frame);
		free(o);
		return -1;
	}
	memcpy(node->wbuf + LWS_PRE, o->frame->data, o->frame->len);
	if (lws_write(p->wsi, node->wbuf + LWS_PRE, o->frame->len,
		      LWS_WRITE_TEXT) < 0) {
		wr_msg_unref(&o->frame);
		free(o);
		return -1;
	}
	wr_msg_unref(&o->frame);
	free(o);
	if (p->out_head || p->close_code)
		lws_callback_on_writable(p->wsi);
	return 0;
}
