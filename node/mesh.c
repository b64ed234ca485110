/*
 * node/mesh: intra-node messages over the links (PROTOCOL.md 3). Every
 * decoded packet passes dedup, teaches a return route, is forwarded along
 * inm/route's decision and, when it is for this node, processed: channel
 * messages delivered to local subscribers, commands answered (mesh_cmd.c),
 * responses fed to the pending table, announce events merged into the view
 * of the mesh. One tick (wr_mesh_tick) drives everything periodic: command
 * timeouts, link pings and silence, announces, forgetting gone nodes, and
 * the remote connection flow. inm/ and channels/reserve hold the logic;
 * this file connects them to the links.
 */
#include <string.h>

#include "flows.h"
#include "node.h"

#define DEDUP_ENTRIES 65536
#define DEDUP_WINDOW_MS 60000
#define LEARNED_ROUTES 4096
#define PENDING_MAX 4096
#define TOKENS_MAX 256
#define TOKEN_TTL_MS 60000
#define RESV_CHANNELS_MAX (1u << 20)
#define TICK_MS 50
#define PEER_TIMEOUT_CODE 4408

/* ------------------------------------------------------------------ */
/* Known nodes                                                         */

struct wr_known *wr_mesh_known(struct wr_node *node, const char *name)
{
	struct wr_mesh *m = &node->mesh;

	for (unsigned i = 0; i < m->nknown; i++)
		if (!strcmp(m->known[i].name, name))
			return &m->known[i];
	return NULL;
}

/* Records that @name was heard from now; adds it when new. */
static struct wr_known *known_touch(struct wr_node *node, const char *name)
{
	struct wr_mesh *m = &node->mesh;
	struct wr_known *k = wr_mesh_known(node, name);

	if (!k) {
		if (m->nknown == m->known_cap) {
			unsigned cap = m->known_cap ? 2 * m->known_cap : 16;
			struct wr_known *n = realloc(m->known, cap * sizeof(*n));

			if (!n)
				return NULL;
			m->known = n;
			m->known_cap = cap;
		}
		k = &m->known[m->nknown++];
		memset(k, 0, sizeof(*k));
		lws_snprintf(k->name, sizeof(k->name), "%s", name);
		wr_info("mesh: node '%s' joined our view", name);
	}
	k->heard_ms = wr_now_ms();
	return k;
}

static void known_remove(struct wr_node *node, unsigned i)
{
	struct wr_mesh *m = &node->mesh;

	free(m->known[i].peers);
	free(m->known[i].latency);
	m->known[i] = m->known[--m->nknown];
}

/* A node not heard from for peer_timeout_ms and not linked is gone (3.6):
 * it leaves every holder set and route. */
static void sweep_gone(struct wr_node *node, int64_t now)
{
	struct wr_mesh *m = &node->mesh;

	for (unsigned i = 0; i < m->nknown;) {
		struct wr_known *k = &m->known[i];
		unsigned n;

		if (wr_peer_named(node, k->name) ||
		    now - k->heard_ms <= node->cfg->peer_timeout_ms) {
			i++;
			continue;
		}
		n = chan_resv_holder_gone(m->resv, k->name);
		inm_route_forget_node(m->route, k->name);
		wr_info("mesh: node '%s' gone (silent %lld ms), %u channel(s) updated",
			k->name, (long long)(now - k->heard_ms), n);
		known_remove(node, i);
	}
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */

static struct wr_peer *peer_by_link(struct wr_node *node, int link)
{
	for (struct wr_peer *p = node->peers; p; p = p->next)
		if (p->up && p->link == link)
			return p;
	return NULL;
}

/* inm_holders_cb over the reservation table */
static int holders_of(void *ud, const char *channel, const char **out,
		      size_t max)
{
	struct wr_node *node = ud;
	const struct chan_resv_entry *e =
		chan_resv_find(node->mesh.resv, channel, strlen(channel));
	unsigned n;

	if (!e)
		return -1;
	n = chan_resv_nholders(e);
	for (unsigned i = 0; i < n && i < max; i++)
		out[i] = chan_resv_holder(e, i);
	return (int)n;
}

/*
 * Sends @pkt (arrived on @from_link, -1 when built here) on to wherever
 * inm/route says, with ttl lowered by @hop (1 forwarding, 0 originating).
 * Returns the number of links it went on.
 */
static unsigned emit(struct wr_node *node, struct inm_packet *pkt,
		     int from_link, int hop)
{
	int links[WR_MAX_LINKS], out[WR_MAX_LINKS];
	size_t n = 0, nout = 0;
	struct wr_buf *b = &node->mesh.enc;
	struct wr_msg *msg;
	int ttl = pkt->ttl;

	for (struct wr_peer *p = node->peers; p && n < WR_MAX_LINKS; p = p->next)
		if (p->up && !p->close_code)
			links[n++] = p->link;
	if (!n)
		return 0;
	inm_route_targets(node->mesh.route, pkt, from_link, links, n,
			  node->cfg->name, holders_of, node, out, &nout);
	if (!nout)
		return 0;
	pkt->ttl = ttl - hop;
	wr_buf_reset(b);
	inm_packet_encode(pkt, b);
	pkt->ttl = ttl;
	if (b->oom || !(msg = wr_msg_create(b->len)))
		return 0;
	memcpy(msg->data, b->p, b->len);
	for (size_t i = 0; i < nout; i++) {
		struct wr_peer *p = peer_by_link(node, out[i]);

		if (p)
			wr_peer_send_msg(p, msg);
	}
	wr_msg_unref(&msg);
	return (unsigned)nout;
}

/* Fills the header of a packet built here. */
static void packet_new(struct wr_node *node, struct inm_packet *pkt,
		       const char *dest, enum inm_type type, cJSON *data)
{
	inm_packet_init(pkt);
	lws_snprintf(pkt->source, sizeof(pkt->source), "%s", node->cfg->name);
	lws_snprintf(pkt->destination, sizeof(pkt->destination), "%s", dest);
	pkt->type = type;
	inm_nonce_new(pkt->nonce);
	pkt->data = data;
}

struct cmd_ctx {
	struct wr_node *node;
	wr_reply_cb cb;
	void *arg;
};

static void on_pending(void *ud, const struct inm_pending_event *ev)
{
	struct cmd_ctx *c = ud;

	if (c->cb)
		c->cb(c->node, ev, c->arg);
	if (ev->done)
		free(c);
}

int wr_mesh_command(struct wr_node *node, const char *dest, cJSON *data,
		    wr_reply_cb cb, void *arg)
{
	struct wr_mesh *m = &node->mesh;
	const char *expect_one[1] = { dest }, **expect = expect_one;
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(data, "command");
	struct inm_packet pkt;
	size_t nexpect = 1;
	int rc = WR_OK;

	if (!data || !cJSON_IsString(cmd)) {
		cJSON_Delete(data);
		return WR_EINVAL;
	}
	packet_new(node, &pkt, dest, INM_COMMAND, data);
	if (!strcmp(dest, "*")) {
		nexpect = 0;
		expect = malloc((m->nknown + 1) * sizeof(*expect));
		if (!expect) {
			inm_packet_fini(&pkt);
			return WR_ENOMEM;
		}
		for (unsigned i = 0; i < m->nknown; i++)
			expect[nexpect++] = m->known[i].name;
	}
	if (cb && nexpect) {
		struct cmd_ctx *c = malloc(sizeof(*c));

		if (!c)
			rc = WR_ENOMEM;
		else {
			*c = (struct cmd_ctx){ node, cb, arg };
			rc = inm_pending_add(m->pending, pkt.nonce,
					     cmd->valuestring, expect, nexpect,
					     wr_now_ms() + node->cfg->command_timeout_ms,
					     on_pending, c);
			if (rc)
				free(c);
		}
	}
	if (expect != expect_one)
		free(expect);
	if (rc) {
		inm_packet_fini(&pkt);
		return rc;
	}
	emit(node, &pkt, -1, 0);
	if (cb && !nexpect) {
		/* nobody to wait for: done at once */
		struct inm_pending_event ev = { .nonce = pkt.nonce,
						.command = cmd->valuestring,
						.done = true };

		cb(node, &ev, arg);
	}
	inm_packet_fini(&pkt);
	return WR_OK;
}

void wr_mesh_respond(struct wr_node *node, const char *dest,
		     const char *nonce, cJSON *data)
{
	struct inm_packet pkt;

	if (!data)
		return;
	if (!cJSON_GetObjectItemCaseSensitive(data, "ok"))
		cJSON_AddTrueToObject(data, "ok");
	packet_new(node, &pkt, dest, INM_RESPONSE, data);
	lws_snprintf(pkt.nonce, sizeof(pkt.nonce), "%s", nonce);
	emit(node, &pkt, -1, 0);
	inm_packet_fini(&pkt);
}

void wr_mesh_respond_fail(struct wr_node *node, const struct inm_packet *cmd,
			  const char *reason)
{
	cJSON *d = cJSON_CreateObject();

	if (d && cJSON_AddFalseToObject(d, "ok") &&
	    cJSON_AddStringToObject(d, "reason", reason)) {
		wr_mesh_respond(node, cmd->source, cmd->nonce, d);
		return;
	}
	cJSON_Delete(d);
}

/* ------------------------------------------------------------------ */
/* Channel messages (3.5)                                              */

void wr_mesh_publish(struct wr_node *node, const char *channel, size_t clen,
		     const char *msg, size_t mlen, const struct chan_str *nonce)
{
	struct wr_buf b64;
	struct inm_packet pkt;
	char name[CHAN_NAME_MAX + 1], cn[CHAN_NONCE_MAX + 1];
	cJSON *data;

	if (!node->npeers_up || clen > CHAN_NAME_MAX)
		return;
	memcpy(name, channel, clen);
	name[clen] = '\0';
	wr_buf_init(&b64);
	inm_base64_encode(&b64, msg, mlen);
	wr_buf_append(&b64, "", 1);
	data = cJSON_CreateObject();
	if (b64.oom || !data || !cJSON_AddStringToObject(data, "message", b64.p) ||
	    !cJSON_AddStringToObject(data, "channel", name)) {
		cJSON_Delete(data);
		wr_buf_fini(&b64);
		return;
	}
	wr_buf_fini(&b64);
	if (nonce->p && nonce->len <= CHAN_NONCE_MAX) {
		memcpy(cn, nonce->p, nonce->len);
		cn[nonce->len] = '\0';
		cJSON_AddStringToObject(data, "client_nonce", cn);
	}
	packet_new(node, &pkt, "*", INM_MESSAGE, data);
	emit(node, &pkt, -1, 0);
	inm_packet_fini(&pkt);
}

static void deliver(struct wr_node *node, const struct inm_packet *pkt)
{
	const char *channel, *b64, *cn;
	struct chan_channel *ch;
	struct chan_str nonce = { NULL, 0 };
	unsigned char *msg = NULL;
	size_t mlen = 0, blen;
	struct wr_msg *frame;
	struct wr_buf *b = &node->scratch;

	if (inm_message_fields(pkt, &channel, &b64, &cn))
		return;
	/* received, whether or not anyone here is subscribed (6.1): the
	 * payload size from the base64 length, which the codec checked */
	blen = strlen(b64);
	wr_observe_message(node, channel, strlen(channel),
			   blen / 4 * 3 - (blen && b64[blen - 1] == '=') -
			   (blen > 1 && b64[blen - 2] == '='));
	ch = chan_find(node->reg, channel, strlen(channel));
	if (!ch)
		return;
	if (inm_base64_decode(b64, blen, &msg, &mlen))
		return;
	/* it becomes a JSON string in a client's frame */
	if (mlen > (size_t)node->cfg->max_message_bytes ||
	    !wr_utf8_valid(msg, mlen) || memchr(msg, '\0', mlen)) {
		node->ctr.inm_dropped[INM_DROP_DATA]++;
		free(msg);
		return;
	}
	if (cn) {
		nonce.p = cn;
		nonce.len = strlen(cn);
	}
	wr_buf_reset(b);
	chan_delivery_json(b, channel, strlen(channel), (const char *)msg, mlen,
			   &nonce);
	free(msg);
	frame = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	if (!frame)
		return;
	node->ctr.client_msgs_out += chan_publish(node->reg, ch, frame, NULL);
	wr_msg_unref(&frame);
}

/* ------------------------------------------------------------------ */
/* Announce events (3.6)                                               */

static void announce(struct wr_node *node)
{
	cJSON *d = cJSON_CreateObject(), *peers, *chans, *lat;
	struct inm_packet pkt;

	if (!d)
		return;
	cJSON_AddStringToObject(d, "event", "announce");
	cJSON_AddStringToObject(d, "name", node->cfg->name);
	cJSON_AddStringToObject(d, "url", node->url);
	peers = cJSON_AddArrayToObject(d, "peers");
	lat = cJSON_AddObjectToObject(d, "latency");
	for (struct wr_peer *p = node->peers; peers && p; p = p->next) {
		if (!p->up)
			continue;
		cJSON_AddItemToArray(peers, cJSON_CreateString(p->name));
		if (lat && p->latency_ms >= 0)
			cJSON_AddNumberToObject(lat, p->name, p->latency_ms);
	}
	chans = cJSON_AddArrayToObject(d, "channels");
	if (chans)
		wr_chan_list_json(node, chans, false);
	cJSON_AddBoolToObject(d, "master", node->cfg->master);
	cJSON_AddNumberToObject(d, "at", (double)wr_wall_ms());
	packet_new(node, &pkt, "*", INM_EVENT, d);
	emit(node, &pkt, -1, 0);
	inm_packet_fini(&pkt);
}

static void on_announce(struct wr_node *node, const struct inm_packet *pkt)
{
	const cJSON *d = pkt->data;
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(d, "url");
	const cJSON *peers = cJSON_GetObjectItemCaseSensitive(d, "peers");
	const cJSON *lat = cJSON_GetObjectItemCaseSensitive(d, "latency");
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(d, "channels");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(d, "at"), *it;
	struct wr_known *k = known_touch(node, pkt->source);
	int64_t when = cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0;
	unsigned n = 0;

	if (!k)
		return;
	if (when && when <= k->announce_at)
		return; /* an older announce that took a longer path */
	k->announce_at = when;
	if (cJSON_IsString(url))
		lws_snprintf(k->url, sizeof(k->url), "%s", url->valuestring);
	k->master = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "master"));
	if (cJSON_IsArray(peers)) {
		if (!k->peers)
			k->peers = calloc(WR_PEER_NAMES_MAX, sizeof(*k->peers));
		if (!k->latency)
			k->latency = calloc(WR_PEER_NAMES_MAX, sizeof(*k->latency));
		cJSON_ArrayForEach(it, peers) {
			const cJSON *ms;

			if (!k->peers || !k->latency || n >= WR_PEER_NAMES_MAX)
				break;
			if (!cJSON_IsString(it) ||
			    !inm_node_name_valid(it->valuestring, strlen(it->valuestring)))
				continue;
			ms = cJSON_GetObjectItemCaseSensitive(lat, it->valuestring);
			k->latency[n] = cJSON_IsNumber(ms) ? ms->valuedouble : -1.0;
			lws_snprintf(k->peers[n++], sizeof(k->peers[0]), "%s",
				     it->valuestring);
		}
		k->npeers = n;
	}
	if (cJSON_IsArray(chans))
		wr_chan_announced(node, pkt->source, chans, when);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

void wr_mesh_packet(struct wr_node *node, struct wr_peer *p,
		    struct inm_packet *pkt)
{
	struct wr_mesh *m = &node->mesh;
	const char *self = node->cfg->name;
	bool local;

	if (!strcmp(pkt->source, self) ||
	    inm_dedup_seen(m->dedup, pkt->source, pkt->type, pkt->nonce,
			   wr_now_ms())) {
		node->ctr.inm_duplicates++;
		return;
	}
	if (pkt->ttl == 0) {
		node->ctr.inm_dropped[INM_DROP_TTL]++;
		return;
	}
	inm_route_learn(m->route, pkt->source, p->link);
	known_touch(node, pkt->source);
	local = !strcmp(pkt->destination, self) || !strcmp(pkt->destination, "*");
	wr_debug("inm: %s from '%s' to '%s' via '%s'", inm_type_name(pkt->type),
		 pkt->source, pkt->destination, p->name);
	node->ctr.inm_forwarded += emit(node, pkt, p->link, 1) ? 1 : 0;
	if (!local)
		return;
	switch (pkt->type) {
	case INM_MESSAGE:
		deliver(node, pkt);
		break;
	case INM_COMMAND:
		wr_mesh_command_in(node, pkt);
		break;
	case INM_RESPONSE:
		if (!strcmp(pkt->destination, self))
			inm_pending_response(m->pending, pkt);
		break;
	case INM_EVENT:
		if (!strcmp(cJSON_GetObjectItemCaseSensitive(pkt->data, "event")
			    ->valuestring, "announce"))
			on_announce(node, pkt);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Links                                                               */

void wr_mesh_link_up(struct wr_node *node, struct wr_peer *p)
{
	struct wr_mesh *m = &node->mesh;
	struct wr_known *k;

	p->link = m->next_link++;
	if (m->next_link < 0)
		m->next_link = 0;
	p->last_rx_ms = wr_now_ms();
	p->latency_ms = -1.0;
	p->ping_due = true; /* a first latency at once */
	lws_callback_on_writable(p->wsi);
	inm_route_link_up(m->route, p->name, p->link);
	k = known_touch(node, p->name);
	if (k && p->url[0])
		lws_snprintf(k->url, sizeof(k->url), "%s", p->url);
	wr_flow_onboard(node, p);
}

void wr_mesh_link_down(struct wr_node *node, struct wr_peer *p)
{
	inm_route_link_down(node->mesh.route, p->link);
}

/* Pings every link; closes one silent for peer_timeout_ms. */
static void ping_links(struct wr_node *node, int64_t now)
{
	for (struct wr_peer *p = node->peers; p; p = p->next) {
		if (!p->up || p->close_code)
			continue;
		if (now - p->last_rx_ms > node->cfg->peer_timeout_ms) {
			wr_warn("node link '%s': silent for %lld ms, closing",
				p->name, (long long)(now - p->last_rx_ms));
			wr_peer_close_later(p, PEER_TIMEOUT_CODE, "peer timeout");
			/* it will not drain: do not wait for it */
			lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
			continue;
		}
		p->ping_due = true;
		lws_callback_on_writable(p->wsi);
	}
}

void wr_mesh_tick(struct wr_node *node)
{
	struct wr_mesh *m = &node->mesh;
	int64_t now = wr_now_ms();

	if (!m->pending)
		return;
	inm_pending_expire(m->pending, now);
	if (node->stopping)
		return;
	if (now >= m->next_ping_ms) {
		m->next_ping_ms = now + node->cfg->ping_interval_ms;
		ping_links(node, now);
	}
	if (now >= m->next_announce_ms) {
		m->next_announce_ms = now + node->cfg->announce_interval_ms;
		if (node->npeers_up)
			announce(node);
	}
	sweep_gone(node, now);
	wr_links_watch(node);
	wr_flow_remote(node);
	wr_observe_tick(node, now);
	wr_master_tick(node, now);
}

static void on_tick(uv_timer_t *t)
{
	struct wr_node *node = t->data;

	/* run inside an lws callback (EVENT_WAIT_CANCELLED), where the
	 * timeouts and timers it arms are picked up by lws's loop */
	if (node->ctx)
		lws_cancel_service(node->ctx);
}

int wr_mesh_init(struct wr_node *node)
{
	struct wr_mesh *m = &node->mesh;

	m->dedup = inm_dedup_create(DEDUP_ENTRIES, DEDUP_WINDOW_MS);
	m->route = inm_route_create(LEARNED_ROUTES);
	m->pending = inm_pending_create(PENDING_MAX);
	m->tokens = inm_tokens_create(TOKENS_MAX, TOKEN_TTL_MS);
	m->resv = chan_resv_table_create(RESV_CHANNELS_MAX, 0);
	wr_buf_init(&m->enc);
	if (!m->dedup || !m->route || !m->pending || !m->tokens || !m->resv)
		return WR_ENOMEM;
	m->next_announce_ms = wr_now_ms() + node->cfg->announce_interval_ms;
	uv_timer_init(&node->loop, &m->tick);
	m->tick.data = node;
	uv_timer_start(&m->tick, on_tick, TICK_MS, TICK_MS);
	return WR_OK;
}

void wr_mesh_fini(struct wr_node *node)
{
	struct wr_mesh *m = &node->mesh;

	/* every command still waiting times out, so its callback frees what
	 * it holds; callbacks add nothing new this late (few rounds at most) */
	for (int i = 0; m->pending && inm_pending_count(m->pending) && i < 8; i++)
		inm_pending_expire(m->pending, INT64_MAX);
	inm_pending_destroy(m->pending);
	m->pending = NULL;
	inm_dedup_destroy(m->dedup);
	inm_route_destroy(m->route);
	inm_tokens_destroy(m->tokens);
	chan_resv_table_destroy(m->resv);
	for (unsigned i = 0; i < m->nknown; i++) {
		free(m->known[i].peers);
		free(m->known[i].latency);
	}
	free(m->known);
	wr_buf_fini(&m->enc);
}

/* ------------------------------------------------------------------ */
/* GET /api/node                                                       */

void wr_mesh_api_json(struct wr_node *node, struct wr_buf *b)
{
	cJSON *root = cJSON_CreateObject(), *peers, *nodes, *chans;
	char *txt;

	if (!root) {
		b->oom = true;
		return;
	}
	cJSON_AddStringToObject(root, "name", node->cfg->name);
	cJSON_AddStringToObject(root, "url", node->url);
	cJSON_AddBoolToObject(root, "master", node->cfg->master);
	peers = cJSON_AddArrayToObject(root, "peers");
	for (struct wr_peer *p = node->peers; peers && p; p = p->next) {
		cJSON *o;

		if (!p->up || !(o = cJSON_CreateObject()))
			continue;
		cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddStringToObject(o, "url", p->url);
		if (p->latency_ms >= 0)
			cJSON_AddNumberToObject(o, "latency_ms", p->latency_ms);
		else
			cJSON_AddNullToObject(o, "latency_ms");
		cJSON_AddBoolToObject(o, "dialled", p->dial != NULL);
		cJSON_AddItemToArray(peers, o);
	}
	nodes = cJSON_AddArrayToObject(root, "nodes");
	for (unsigned i = 0; nodes && i < node->mesh.nknown; i++)
		cJSON_AddItemToArray(nodes,
				     cJSON_CreateString(node->mesh.known[i].name));
	chans = cJSON_AddArrayToObject(root, "channels");
	if (chans)
		wr_chan_view_json(node, chans);
	txt = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!txt) {
		b->oom = true;
		return;
	}
	wr_buf_puts(b, txt);
	free(txt);
}
