/*
 * mesh/engine: intra-node messages over the links (PROTOCOL.md 3). Every
 * decoded packet passes dedup, teaches a return route, is forwarded and,
 * when it is for this node, processed: channel messages delivered to
 * local subscribers, commands answered (commands.c), responses fed to the
 * pending table, events to gossip.c. Routes follow the topology as the
 * view draws it: unicast packets go along a shortest path, channel
 * messages down the shortest-path tree rooted at their source toward the
 * channel's holders, each copy naming the holders it is for ("to"), so a
 * node whose view differs still routes every one of them itself. One
 * tick (mesh_tick) drives everything periodic. inm/ holds the logic; this
 * file connects it to the links the node gives it (struct mesh_ops).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* Sending                                                             */

static unsigned emit(struct mesh *m, struct inm_packet *pkt, int from_link,
		     int hop);

static struct mesh_link *link_by_id(struct mesh *m, int id)
{
	for (struct mesh_link *l = m->links; l; l = l->next)
		if (l->id == id)
			return l;
	return NULL;
}

/* The channel's holders, from the flows' reservation table; -1 when
 * nobody knows them. */
static int holders_of(struct mesh *m, const char *channel, const char **out,
		      size_t max)
{
	if (!m->ls.holders)
		return -1;
	return m->ls.holders(m->lud, channel, out, max);
}

/* Encodes @pkt once with ttl lowered by @hop and queues it on each link
 * of @out. Returns how many links it went on. */
static unsigned send_links(struct mesh *m, struct inm_packet *pkt, int hop,
			   const int *out, size_t nout)
{
	struct wr_buf *b = &m->enc;
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
		struct mesh_link *l = link_by_id(m, out[i]);

		if (l && !l->closing) {
			m->ctr->inm_out++;
			m->ctr->inm_bytes_out += msg->len;
			m->ops->send(m->ud, l, msg);
			m->ctr->inm_out_type[pkt->type]++;
			sent++;
		}
	}
	wr_msg_unref(&msg);
	return sent;
}

void mesh_send(struct mesh *m, struct inm_packet *pkt)
{
	emit(m, pkt, -1, 0);
}

void mesh_send_link(struct mesh *m, struct mesh_link *l, struct inm_packet *pkt)
{
	int id = l->id;

	if (l->up && !l->closing)
		send_links(m, pkt, 0, &id, 1);
}

/* The up link to @name, if it is not @from_link; else -1. */
static int link_to(struct mesh *m, const char *name, int from_link)
{
	int link = name ? inm_route_direct(m->route, name) : -1;

	return link == from_link ? -1 : link;
}

/* Where a channel message goes for holder @t: down the tree rooted at
 * the source when @t is below us, else along our own shortest path (a
 * view that differs from the upstream's), else the learned route. */
static int message_hop(struct mesh *m, const char *source, const char *t,
		       int from_link)
{
	const char *hop = NULL;
	int link = -1;

	switch (inm_view_tree_hop(m->view, source, t, &hop)) {
	case 1:
		link = link_to(m, hop, from_link);
		break;
	case 0:
		link = link_to(m, inm_view_next_hop(m->view, t), from_link);
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
static unsigned emit_message(struct mesh *m, struct inm_packet *pkt,
			     int from_link, int hop, const int *links,
			     size_t nlinks)
{
	const char *names[TARGETS_MAX], *self = m->cfg->name;
	const char *channel, *b64, *cn;
	int hops[TARGETS_MAX], out[MESH_MAX_LINKS];
	/* detached and kept: names[] may point into it */
	cJSON *to = cJSON_DetachItemFromObjectCaseSensitive(pkt->data, "to"),
	      *it;
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
		n = holders_of(m, channel, names, TARGETS_MAX);
		if (n < 0 || n > TARGETS_MAX) {
			inm_route_targets(m->route, pkt, from_link, links,
					  nlinks, self, NULL, NULL, out, &nout);
			sent = send_links(m, pkt, hop, out, nout);
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		hops[i] = -1;
		if (!strcmp(names[i], self) || !strcmp(names[i], pkt->source))
			continue;
		hops[i] = message_hop(m, pkt->source, names[i], from_link);
		if (hops[i] < 0) {
			m->ctr->inm_unroutable++;
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
		sent += send_links(m, pkt, hop, &link, 1);
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
static unsigned emit(struct mesh *m, struct inm_packet *pkt, int from_link,
		     int hop)
{
	int links[MESH_MAX_LINKS], out[MESH_MAX_LINKS];
	size_t n = 0, nout = 0;
	const char *dest = pkt->destination;

	for (struct mesh_link *l = m->links; l && n < MESH_MAX_LINKS;
	     l = l->next)
		if (!l->closing)
			links[n++] = l->id;
	if (!n)
		return 0;
	if (pkt->type == INM_MESSAGE && !strcmp(dest, "*"))
		return emit_message(m, pkt, from_link, hop, links, n);
	if (strcmp(dest, "*") && strcmp(dest, m->cfg->name) && pkt->ttl > hop) {
		int link = inm_route_direct(m->route, dest);

		if (link < 0)
			link = link_to(m, inm_view_next_hop(m->view, dest), -2);
		if (link >= 0 && link != from_link)
			return send_links(m, pkt, hop, &link, 1);
	}
	inm_route_targets(m->route, pkt, from_link, links, n, m->cfg->name,
			  NULL, NULL, out, &nout);
	return send_links(m, pkt, hop, out, nout);
}

/* Fills the header of a packet built here. */
void mesh_packet_new(struct mesh *m, struct inm_packet *pkt, const char *dest,
		     enum inm_type type, cJSON *data)
{
	inm_packet_init(pkt);
	snprintf(pkt->source, sizeof(pkt->source), "%s", m->cfg->name);
	snprintf(pkt->destination, sizeof(pkt->destination), "%s", dest);
	pkt->type = type;
	inm_nonce_new(pkt->nonce);
	pkt->data = data;
}

int mesh_command(struct mesh *m, const char *dest, cJSON *data,
		 mesh_reply_cb cb, void *ud)
{
	const char *expect_one[1] = { dest }, **expect = expect_one;
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(data, "command");
	struct inm_packet pkt;
	size_t nexpect = 1;
	int rc = WR_OK;

	if (!data || !cJSON_IsString(cmd)) {
		cJSON_Delete(data);
		return WR_EINVAL;
	}
	mesh_packet_new(m, &pkt, dest, INM_COMMAND, data);
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
	if (cb && nexpect)
		rc = inm_pending_add(m->pending, pkt.nonce, cmd->valuestring,
				     expect, nexpect,
				     wr_now_ms() + m->cfg->command_timeout_ms,
				     cb, ud);
	if (expect != expect_one)
		free(expect);
	if (rc) {
		inm_packet_fini(&pkt);
		return rc;
	}
	emit(m, &pkt, -1, 0);
	if (cb && nexpect)
		mesh_kick(m); /* its deadline needs ticks */
	if (cb && !nexpect) {
		/* nobody to wait for: done at once */
		struct inm_pending_event ev = { .nonce = pkt.nonce,
						.command = cmd->valuestring,
						.done = true };

		cb(ud, &ev);
	}
	inm_packet_fini(&pkt);
	return WR_OK;
}

void mesh_respond_to(struct mesh *m, const char *dest, const char *nonce,
		     cJSON *data)
{
	struct inm_packet pkt;

	if (!data)
		return;
	if (!cJSON_GetObjectItemCaseSensitive(data, "ok"))
		cJSON_AddTrueToObject(data, "ok");
	mesh_packet_new(m, &pkt, dest, INM_RESPONSE, data);
	snprintf(pkt.nonce, sizeof(pkt.nonce), "%s", nonce);
	emit(m, &pkt, -1, 0);
	inm_packet_fini(&pkt);
}

void mesh_respond(struct mesh *m, const struct inm_packet *cmd, cJSON *data)
{
	mesh_respond_to(m, cmd->source, cmd->nonce, data);
}

void mesh_respond_fail(struct mesh *m, const struct inm_packet *cmd,
		       const char *reason)
{
	cJSON *d = cJSON_CreateObject();

	if (d && cJSON_AddFalseToObject(d, "ok") &&
	    cJSON_AddStringToObject(d, "reason", reason)) {
		mesh_respond(m, cmd, d);
		return;
	}
	cJSON_Delete(d);
}

/* ------------------------------------------------------------------ */
/* Channel messages (3.5)                                              */

void mesh_publish(struct mesh *m, const char *channel, size_t clen,
		  const char *msg, size_t mlen, const struct chan_str *nonce)
{
	struct wr_buf b64;
	struct inm_packet pkt;
	char name[CHAN_NAME_MAX + 1], cn[CHAN_NONCE_MAX + 1];
	cJSON *data;

	if (!m->nup || clen > CHAN_NAME_MAX)
		return;
	memcpy(name, channel, clen);
	name[clen] = '\0';
	wr_buf_init(&b64);
	inm_base64_encode(&b64, msg, mlen);
	wr_buf_append(&b64, "", 1);
	data = cJSON_CreateObject();
	if (b64.oom || !data ||
	    !cJSON_AddStringToObject(data, "message", b64.p) ||
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
	mesh_packet_new(m, &pkt, "*", INM_MESSAGE, data);
	emit(m, &pkt, -1, 0);
	inm_packet_fini(&pkt);
}

static void deliver(struct mesh *m, const struct inm_packet *pkt)
{
	const char *channel, *b64, *cn;
	struct chan_channel *ch;
	struct chan_str nonce = { NULL, 0 };
	unsigned char *msg = NULL;
	size_t mlen = 0, blen;
	struct wr_msg *frame;
	struct chan_delivery_pos pos;
	struct wr_buf *b = &m->scratch;

	if (inm_message_fields(pkt, &channel, &b64, &cn))
		return;
	/* received, whether or not anyone here is subscribed (6.1): the
	 * payload size from the base64 length, which the codec checked */
	blen = strlen(b64);
	mesh_observe_message(m, channel, strlen(channel),
			     blen / 4 * 3 - (blen && b64[blen - 1] == '=') -
				     (blen > 1 && b64[blen - 2] == '='));
	ch = chan_find(m->reg, channel, strlen(channel));
	if (!ch)
		return;
	if (inm_base64_decode(b64, blen, &msg, &mlen))
		return;
	/* it becomes a JSON string in a client's frame */
	if (mlen > (size_t)m->cfg->max_message_bytes ||
	    !wr_utf8_valid(msg, mlen) || memchr(msg, '\0', mlen)) {
		m->ctr->inm_dropped[INM_DROP_DATA]++;
		free(msg);
		return;
	}
	if (cn) {
		nonce.p = cn;
		nonce.len = strlen(cn);
	}
	frame = chan_delivery_frame(b, channel, strlen(channel),
				    (const char *)msg, mlen, &nonce, &pos);
	free(msg);
	if (!frame)
		return;
	/* kept in the channel's history like a local send (7.5.7) */
	m->ctr->client_msgs_out += chan_publish_msg(m->reg, ch, frame, &pos,
						    NULL, wr_now_ms());
	wr_msg_unref(&frame);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

void mesh_packet_in(struct mesh *m, struct mesh_link *l, struct inm_packet *pkt)
{
	const char *self = m->cfg->name;
	int direct = inm_route_direct(m->route, pkt->source);
	bool local;

	/*
	 * A directly linked node speaks on its own link only: a copy that
	 * names it as source on another link is forged (or a stale relay of
	 * what the direct link carries too). Checked before dedup, so the
	 * true copy is not taken for a duplicate of a dropped one.
	 */
	if (direct >= 0 && direct != l->id) {
		m->ctr->inm_dropped[INM_DROP_SOURCE]++;
		return;
	}
	if (!strcmp(pkt->source, self) ||
	    inm_dedup_seen(m->dedup, pkt->source, pkt->type, pkt->nonce,
			   wr_now_ms())) {
		m->ctr->inm_duplicates++;
		return;
	}
	if (pkt->ttl == 0) {
		m->ctr->inm_dropped[INM_DROP_TTL]++;
		return;
	}
	/* only sources the view knows are learned: a made-up one must not
	 * route the real node's traffic through the link it came on */
	if (inm_view_find(m->view, pkt->source))
		inm_route_learn(m->route, pkt->source, l->id);
	local = !strcmp(pkt->destination, self) ||
		!strcmp(pkt->destination, "*");
	wr_debug("inm: %s from '%s' to '%s' via '%s'", inm_type_name(pkt->type),
		 pkt->source, pkt->destination, l->name);
	m->ctr->inm_forwarded += emit(m, pkt, l->id, 1) ? 1 : 0;
	if (!local)
		return;
	switch (pkt->type) {
	case INM_MESSAGE:
		/* from a node no record ever named: not delivered */
		if (!inm_view_find(m->view, pkt->source)) {
			m->ctr->inm_dropped[INM_DROP_SOURCE]++;
			break;
		}
		deliver(m, pkt);
		break;
	case INM_COMMAND:
		mesh_command_in(m, pkt);
		mesh_kick(m); /* a flow may have started on it */
		break;
	case INM_RESPONSE:
		if (!strcmp(pkt->destination, self))
			inm_pending_response(m->pending, pkt);
		mesh_kick(m);
		break;
	case INM_EVENT:
		mesh_gossip_event(m, l, pkt);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Links                                                               */

void mesh_link_up(struct mesh *m, struct mesh_link *l)
{
	l->id = m->next_link++;
	if (m->next_link < 0)
		m->next_link = 0;
	l->up = true;
	l->closing = false;
	l->last_rx_ms = wr_now_ms();
	l->latency_ms = -1.0;
	l->sync_ms = 0;
	l->hb_mismatch = 0;
	l->prev = NULL;
	l->next = m->links;
	if (m->links)
		m->links->prev = l;
	m->links = l;
	m->nup++;
	m->ops->ping(m->ud, l); /* a first latency at once */
	inm_route_link_up(m->route, l->name, l->id);
	/* the records first: the peer knows the mesh before our commands */
	mesh_gossip_link_up(m, l);
	if (m->ls.link_up)
		m->ls.link_up(m->lud, l);
	mesh_kick(m);
}

void mesh_link_down(struct mesh *m, struct mesh_link *l)
{
	if (!l->up)
		return;
	l->up = false;
	if (l->prev)
		l->prev->next = l->next;
	else
		m->links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	m->nup--;
	inm_route_link_down(m->route, l->id);
	mesh_gossip_link_down(m, l);
	mesh_kick(m);
}

void mesh_link_heard(struct mesh *m, struct mesh_link *l)
{
	(void)m;
	l->last_rx_ms = wr_now_ms();
}

void mesh_link_pong(struct mesh *m, struct mesh_link *l, double ms)
{
	(void)m;
	l->latency_ms = ms;
	l->last_rx_ms = wr_now_ms();
}

/* Drops links silent for peer_timeout_ms (checked every tick, so a frozen
 * peer is noticed on time whatever the ping interval); pings every link
 * when @ping. */
static void watch_links(struct mesh *m, int64_t now, bool ping)
{
	for (struct mesh_link *l = m->links, *next; l; l = next) {
		next = l->next;
		if (l->closing)
			continue;
		if (now - l->last_rx_ms > m->cfg->peer_timeout_ms) {
			wr_warn("node link '%s': silent for %lld ms, closing",
				l->name, (long long)(now - l->last_rx_ms));
			l->closing = true;
			m->ops->drop(m->ud, l, MESH_PEER_TIMEOUT_CODE,
				     "peer timeout");
			continue;
		}
		if (ping)
			m->ops->ping(m->ud, l);
	}
}

void mesh_tick(struct mesh *m, int64_t now)
{
	int64_t slot;
	bool ping;

	inm_pending_expire(m->pending, now);
	if (m->stopping)
		return;
	/* on the wall clock's grid, as the heartbeats: see gossip.c */
	slot = wr_wall_ms() / m->cfg->ping_interval_ms;
	ping = slot != m->ping_slot;
	m->ping_slot = slot;
	watch_links(m, now, ping);
	mesh_gossip_tick(m, now);
	mesh_observe_tick(m, now);
}

bool mesh_busy(struct mesh *m, int64_t next_ms)
{
	if (m->stopping || m->self_dirty || m->chans_dirty ||
	    inm_pending_count(m->pending) || inm_view_unsettled(m->view) ||
	    mesh_gossip_latency_due(m))
		return true;
	for (struct mesh_link *l = m->links; l; l = l->next)
		if (l->last_rx_ms + m->cfg->peer_timeout_ms < next_ms)
			return true;
	return false;
}

void mesh_stop(struct mesh *m)
{
	if (m->stopping)
		return;
	mesh_gossip_leave(m);
	m->stopping = true;
}

/* ------------------------------------------------------------------ */
/* Lifetime and accessors                                              */

#define DEDUP_ENTRIES 65536
#define DEDUP_WINDOW_MS 60000
#define LEARNED_ROUTES 4096
#define PENDING_MAX 4096
#define TOKENS_MAX 256
#define TOKEN_TTL_MS 60000

struct mesh *mesh_create(const struct config *cfg, const char *url,
			 struct chan_registry *reg, struct health_counters *ctr,
			 const struct mesh_ops *ops, void *ud)
{
	struct mesh *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->cfg = cfg;
	snprintf(m->url, sizeof(m->url), "%s", url);
	m->reg = reg;
	m->ctr = ctr;
	m->ops = ops;
	m->ud = ud;
	wr_buf_init(&m->enc);
	wr_buf_init(&m->scratch);
	m->dedup = inm_dedup_create(DEDUP_ENTRIES, DEDUP_WINDOW_MS);
	m->route = inm_route_create(LEARNED_ROUTES);
	m->pending = inm_pending_create(PENDING_MAX);
	m->tokens = inm_tokens_create(TOKENS_MAX, TOKEN_TTL_MS);
	if (!m->dedup || !m->route || !m->pending || !m->tokens ||
	    mesh_gossip_init(m) || mesh_observe_init(m) ||
	    mesh_commands_init(m)) {
		mesh_destroy(m);
		return NULL;
	}
	/* host-stats can be answered from the start */
	mesh_observe_tick(m, wr_now_ms());
	return m;
}

void mesh_cancel_all(struct mesh *m)
{
	/* every command still waiting times out, so its callback frees what
	 * it holds; callbacks add nothing new this late (few rounds at most) */
	m->stopping = true;
	for (int i = 0; m->pending && inm_pending_count(m->pending) && i < 8;
	     i++)
		inm_pending_expire(m->pending, INT64_MAX);
}

void mesh_destroy(struct mesh *m)
{
	if (!m)
		return;
	mesh_cancel_all(m);
	inm_pending_destroy(m->pending);
	inm_dedup_destroy(m->dedup);
	inm_route_destroy(m->route);
	inm_tokens_destroy(m->tokens);
	mesh_gossip_fini(m);
	mesh_observe_fini(m);
	wr_buf_fini(&m->enc);
	wr_buf_fini(&m->scratch);
	free(m);
}

void mesh_set_listener(struct mesh *m, const struct mesh_listener *l, void *ud)
{
	m->ls = *l;
	m->lud = ud;
}

const struct config *mesh_cfg(const struct mesh *m)
{
	return m->cfg;
}

const char *mesh_name(const struct mesh *m)
{
	return m->cfg->name;
}

const char *mesh_url(const struct mesh *m)
{
	return m->url;
}

struct inm_view *mesh_view(struct mesh *m)
{
	return m->view;
}

struct inm_tokens *mesh_tokens(struct mesh *m)
{
	return m->tokens;
}

struct health_counters *mesh_counters(struct mesh *m)
{
	return m->ctr;
}

bool mesh_stopping(const struct mesh *m)
{
	return m->stopping;
}

struct mesh_link *mesh_links(struct mesh *m)
{
	return m->links;
}

unsigned mesh_links_up(const struct mesh *m)
{
	return m->nup;
}

struct mesh_link *mesh_link_named(struct mesh *m, const char *name)
{
	for (struct mesh_link *l = m->links; l; l = l->next)
		if (!strcmp(l->name, name))
			return l;
	return NULL;
}

bool mesh_alive(struct mesh *m, const char *name)
{
	return !strcmp(name, m->cfg->name) || inm_view_alive(m->view, name);
}

int mesh_dial(struct mesh *m, const char *name, const char *url,
	      const char *token)
{
	if (m->stopping)
		return WR_EINVAL;
	return m->ops->dial(m->ud, name, url, token);
}

bool mesh_dialling(struct mesh *m, const char *name)
{
	return m->ops->dialling(m->ud, name);
}

unsigned mesh_dials(struct mesh *m)
{
	return m->ops->dials(m->ud);
}

int64_t mesh_backoff_ms(const struct mesh *m, unsigned attempt)
{
	int64_t cap = m->cfg->reconnect_min_ms;

	for (unsigned i = 0; i < attempt && cap < m->cfg->reconnect_max_ms; i++)
		cap *= 2;
	if (cap > m->cfg->reconnect_max_ms)
		cap = m->cfg->reconnect_max_ms;
	return (int64_t)randombytes_uniform((uint32_t)cap + 1);
}

/* ------------------------------------------------------------------ */
/* GET /api/node                                                       */

void mesh_api_json(struct mesh *m, cJSON *root)
{
	cJSON *peers, *nodes;

	cJSON_AddStringToObject(root, "name", m->cfg->name);
	cJSON_AddStringToObject(root, "url", m->url);
	cJSON_AddBoolToObject(root, "master", m->cfg->master);
	peers = cJSON_AddArrayToObject(root, "peers");
	for (struct mesh_link *l = m->links; peers && l; l = l->next) {
		cJSON *o = cJSON_CreateObject();

		if (!o)
			continue;
		cJSON_AddStringToObject(o, "name", l->name);
		cJSON_AddStringToObject(o, "url", l->url);
		if (l->latency_ms >= 0)
			cJSON_AddNumberToObject(o, "latency_ms", l->latency_ms);
		else
			cJSON_AddNullToObject(o, "latency_ms");
		cJSON_AddBoolToObject(o, "dialled", l->dialled);
		cJSON_AddItemToArray(peers, o);
	}
	nodes = cJSON_AddArrayToObject(root, "nodes");
	for (size_t i = 1; nodes && i < inm_view_count(m->view); i++) {
		const char *name = inm_view_at(m->view, i)->name;

		if (inm_view_alive(m->view, name))
			cJSON_AddItemToArray(nodes, cJSON_CreateString(name));
	}
}
