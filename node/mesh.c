/*
 * node/mesh: intra-node messages over the links (PROTOCOL.md 3). Every
 * decoded packet passes dedup, teaches a return route, is forwarded along
 * inm/route's decision and, when it is for this node, processed: channel
 * messages delivered to local subscribers, commands answered (mesh_cmd.c),
 * responses fed to the pending table, events to gossip.c. Routes follow
 * the topology as gossip.c's view draws it: unicast packets go along a
 * shortest path, channel messages down the shortest-path tree rooted at
 * their source toward the channel's holders, each copy naming the holders
 * it is for ("to"), so a node whose view differs still routes every one
 * of them itself. One tick (wr_mesh_tick) drives everything periodic.
 * inm/ and channels/reserve hold the logic; this file connects them to
 * the links.
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
/* Sending                                                             */

static unsigned emit(struct wr_node *node, struct inm_packet *pkt,
		     int from_link, int hop);

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

/* Encodes @pkt once with ttl lowered by @hop and queues it on each link
 * of @out. Returns how many links it went on. */
static unsigned send_links(struct wr_node *node, struct inm_packet *pkt,
			   int hop, const int *out, size_t nout)
{
	struct wr_buf *b = &node->mesh.enc;
	struct wr_msg *msg;
	unsigned sent = 0;
	int ttl = pkt->ttl;

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

		if (p) {
			wr_peer_send_msg(p, msg);
			node->ctr.inm_out_type[pkt->type]++;
			sent++;
		}
	}
	wr_msg_unref(&msg);
	return sent;
}

void wr_mesh_flood(struct wr_node *node, struct inm_packet *pkt)
{
	emit(node, pkt, -1, 0);
}

void wr_mesh_send_peer(struct wr_node *node, struct wr_peer *p,
		       struct inm_packet *pkt)
{
	int link = p->link;

	if (p->up && !p->close_code)
		send_links(node, pkt, 0, &link, 1);
}

/* The up link to @name, if it is not @from_link; else -1. */
static int link_to(struct wr_node *node, const char *name, int from_link)
{
	int link = name ? inm_route_direct(node->mesh.route, name) : -1;

	return link == from_link ? -1 : link;
}

/* Where a channel message goes for holder @t: down the tree rooted at
 * the source when @t is below us, else along our own shortest path (a
 * view that differs from the upstream's), else the learned route. */
static int message_hop(struct wr_node *node, const char *source,
		       const char *t, int from_link)
{
	struct wr_mesh *m = &node->mesh;
	const char *hop = NULL;
	int link = -1;

	switch (inm_view_tree_hop(m->view, source, t, &hop)) {
	case 1:
		link = link_to(node, hop, from_link);
		break;
	case 0:
		link = link_to(node, inm_view_next_hop(m->view, t), from_link);
		break;
	default:
		link = inm_route_lookup(m->route, t);
		if (link == from_link)
			link = -1;
		break;
	}
	return link;
}

#define TARGETS_MAX 256

/*
 * A channel message toward the holders (3.3): the copy for each next hop
 * names in "to" the holders it carries the message for. Holders come
 * from the packet's "to", else (built here, or from a node that sends
 * none) from the reservation table; when the table does not know the
 * channel either, the message is flooded as before.
 */
static unsigned emit_message(struct wr_node *node, struct inm_packet *pkt,
			     int from_link, int hop, const int *links,
			     size_t nlinks)
{
	const char *names[TARGETS_MAX], *self = node->cfg->name;
	const char *channel, *b64, *cn;
	int hops[TARGETS_MAX], out[WR_MAX_LINKS];
	/* detached and kept: names[] may point into it */
	cJSON *to = cJSON_DetachItemFromObjectCaseSensitive(pkt->data, "to"), *it;
	size_t nout = 0;
	unsigned sent = 0;
	int n = 0;

	if (hop && pkt->ttl <= 1)
		goto out;
	if (cJSON_IsArray(to)) {
		cJSON_ArrayForEach(it, to)
			if (cJSON_IsString(it) && n < TARGETS_MAX &&
			    inm_node_name_valid(it->valuestring,
						strlen(it->valuestring)))
				names[n++] = it->valuestring;
	} else {
		if (inm_message_fields(pkt, &channel, &b64, &cn))
			goto out;
		n = holders_of(node, channel, names, TARGETS_MAX);
		if (n < 0 || n > TARGETS_MAX) {
			inm_route_targets(node->mesh.route, pkt, from_link, links,
					  nlinks, self, NULL, NULL, out, &nout);
			sent = send_links(node, pkt, hop, out, nout);
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		hops[i] = -1;
		if (!strcmp(names[i], self) || !strcmp(names[i], pkt->source))
			continue;
		hops[i] = message_hop(node, pkt->source, names[i], from_link);
		if (hops[i] < 0) {
			node->ctr.inm_unroutable++;
			wr_debug("inm: no route to holder '%s'", names[i]);
		}
	}
	/* one copy per next hop, naming its holders */
	for (int i = 0; i < n; i++) {
		cJSON *list;
		int link = hops[i];

		if (link < 0)
			continue;
		list = cJSON_AddArrayToObject(pkt->data, "to");
		if (!list)
			break;
		for (int j = i; j < n; j++)
			if (hops[j] == link) {
				cJSON_AddItemToArray(list,
						     cJSON_CreateString(names[j]));
				hops[j] = -1;
			}
		sent += send_links(node, pkt, hop, &link, 1);
		cJSON_DeleteItemFromObjectCaseSensitive(pkt->data, "to");
	}
out:
	cJSON_Delete(to);
	return sent;
}

/*
 * Sends @pkt (arrived on @from_link, -1 when built here) on to wherever
 * it must go, with ttl lowered by @hop (1 forwarding, 0 originating):
 * channel messages toward the holders, unicast packets along a shortest
 * path of the view (else the learned route, else a flood), "*" packets
 * to every link but the one they came on. Returns the number of links.
 */
static unsigned emit(struct wr_node *node, struct inm_packet *pkt,
		     int from_link, int hop)
{
	int links[WR_MAX_LINKS], out[WR_MAX_LINKS];
	size_t n = 0, nout = 0;
	const char *dest = pkt->destination;

	for (struct wr_peer *p = node->peers; p && n < WR_MAX_LINKS; p = p->next)
		if (p->up && !p->close_code)
			links[n++] = p->link;
	if (!n)
		return 0;
	if (pkt->type == INM_MESSAGE && !strcmp(dest, "*"))
		return emit_message(node, pkt, from_link, hop, links, n);
	if (strcmp(dest, "*") && strcmp(dest, node->cfg->name) &&
	    pkt->ttl > hop) {
		int link = inm_route_direct(node->mesh.route, dest);

		if (link < 0)
			link = link_to(node, inm_view_next_hop(node->mesh.view, dest),
				       -2);
		if (link >= 0 && link != from_link)
			return send_links(node, pkt, hop, &link, 1);
	}
	inm_route_targets(node->mesh.route, pkt, from_link, links, n,
			  node->cfg->name, NULL, NULL, out, &nout);
	return send_links(node, pkt, hop, out, nout);
}

/* Fills the header of a packet built here. */
void wr_mesh_packet_new(struct wr_node *node, struct inm_packet *pkt,
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
	wr_mesh_packet_new(node, &pkt, dest, INM_COMMAND, data);
	if (!strcmp(dest, "*")) {
		size_t nv = inm_view_count(m->view);

		nexpect = 0;
		expect = malloc((nv + 1) * sizeof(*expect));
		if (!expect) {
			inm_packet_fini(&pkt);
			return WR_ENOMEM;
		}
		/* every node reachable now: one that is not cannot answer */
		for (size_t i = 1; i < nv; i++) {
			const char *name = inm_view_at(m->view, i)->name;

			if (inm_view_reachable(m->view, name))
				expect[nexpect++] = name;
		}
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
	wr_mesh_packet_new(node, &pkt, dest, INM_RESPONSE, data);
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
	wr_mesh_packet_new(node, &pkt, "*", INM_MESSAGE, data);
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
		wr_gossip_event(node, p, pkt);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Links                                                               */

void wr_mesh_link_up(struct wr_node *node, struct wr_peer *p)
{
	struct wr_mesh *m = &node->mesh;

	p->link = m->next_link++;
	if (m->next_link < 0)
		m->next_link = 0;
	p->last_rx_ms = wr_now_ms();
	p->latency_ms = -1.0;
	p->ping_due = true; /* a first latency at once */
	lws_callback_on_writable(p->wsi);
	inm_route_link_up(m->route, p->name, p->link);
	/* the records first: the peer knows the mesh before our commands */
	wr_gossip_link_up(node, p);
	wr_flow_onboard(node, p);
}

void wr_mesh_link_down(struct wr_node *node, struct wr_peer *p)
{
	inm_route_link_down(node->mesh.route, p->link);
	wr_gossip_link_down(node, p);
}

/* Closes links silent for peer_timeout_ms (checked every tick, so a
 * frozen peer is noticed on time whatever the ping interval); pings
 * every link when @ping. */
static void watch_links(struct wr_node *node, int64_t now, bool ping)
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
		if (!ping)
			continue;
		p->ping_due = true;
		lws_callback_on_writable(p->wsi);
	}
}

void wr_mesh_tick(struct wr_node *node)
{
	struct wr_mesh *m = &node->mesh;
	int64_t now = wr_now_ms();
	bool ping;

	if (!m->pending)
		return;
	inm_pending_expire(m->pending, now);
	if (node->stopping)
		return;
	ping = now >= m->next_ping_ms;
	if (ping)
		m->next_ping_ms = now + node->cfg->ping_interval_ms;
	watch_links(node, now, ping);
	wr_gossip_tick(node, now);
	wr_flow_heal(node, now);
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
	if (!m->dedup || !m->route || !m->pending || !m->tokens || !m->resv ||
	    wr_gossip_init(node))
		return WR_ENOMEM;
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
	wr_gossip_fini(node);
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
	for (size_t i = 1; nodes && i < inm_view_count(node->mesh.view); i++) {
		const char *name = inm_view_at(node->mesh.view, i)->name;

		if (inm_view_alive(node->mesh.view, name))
			cJSON_AddItemToArray(nodes, cJSON_CreateString(name));
	}
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
