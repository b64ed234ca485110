/*
 * mesh/gossip: node-state records and liveness (docs/mesh.md). A node
 * sends its own record when it changes (its links, its channel digest)
 * and passes on a record it got only when it was news, hop by hop, so
 * each link carries each version at most once each way. Idle, it sends
 * one heartbeat per link per announce period carrying the digest of its
 * view; a neighbour that twice in a row finds a different digest sends
 * back all its records. Liveness is reachability in inm/view's graph: a
 * crashed node's neighbours lose their links, their new records cut it
 * off, and after a short grace the listener hears it is gone. Old nodes'
 * full announces (PROTOCOL.md 3.6) are understood, and answered in kind
 * while one of them is in the mesh.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

#define VIEW_NODES_MAX 4096
#define FORGET_MS (10 * 60 * 1000) /* a lost node's record is kept */
#define STATES_MAX 4096            /* records read from one packet */

static int64_t period(const struct mesh *m)
{
	return m->cfg->announce_interval_ms;
}

/* ------------------------------------------------------------------ */
/* Our own record                                                      */

struct digest_acc {
	uint64_t d;
	uint32_t n;
};

static void digest_active(struct chan_channel *ch, void *arg)
{
	struct digest_acc *acc = arg;
	size_t len;
	const char *name = chan_name(ch, &len);
	const uint8_t *h = chan_hash(ch);

	acc->d ^= inm_chan_digest(name, len, h, h ? CHAN_HASH_LEN : 0,
				  chan_created(ch));
	acc->n++;
}

static void self_build(struct mesh *m, int64_t now)
{
	struct inm_node_state st;
	struct digest_acc acc = { 0, 0 };

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", m->cfg->name);
	snprintf(st.url, sizeof(st.url), "%s", m->url);
	st.incarnation = m->incarnation;
	st.version = ++m->version;
	st.master = m->cfg->master;
	st.leaving = m->leaving;
	for (struct mesh_link *l = m->links; l; l = l->next) {
		if (l->closing || st.npeers == INM_VIEW_PEERS_MAX)
			continue;
		snprintf(st.peers[st.npeers], sizeof(st.peers[0]), "%s",
			 l->name);
		st.latency[st.npeers++] = l->latency_ms;
	}
	if (m->reg && !m->leaving)
		chan_foreach(m->reg, digest_active, &acc);
	st.nchannels = acc.n;
	st.chan_digest = acc.d;
	memcpy(st.rejoin, m->rejoin, sizeof(st.rejoin));
	inm_view_set_self(m->view, &st);
	m->self_dirty = false;
	m->chans_dirty = false;
	m->self_built_ms = now;
}

/* Sends the records in @states (an array, taken) to @l. */
static void send_states(struct mesh *m, struct mesh_link *l, cJSON *states)
{
	cJSON *d = cJSON_CreateObject();
	struct inm_packet pkt;

	if (!d || !cJSON_AddStringToObject(d, "event", "node-state")) {
		cJSON_Delete(d);
		cJSON_Delete(states);
		return;
	}
	cJSON_AddItemToObject(d, "states", states);
	mesh_packet_new(m, &pkt, l->name, INM_EVENT, d);
	pkt.ttl = 1; /* hop by hop: each node passes on only what is news */
	mesh_send_link(m, l, &pkt);
	inm_packet_fini(&pkt);
}

/* @items to every link but @except (may be NULL); @items stays ours. */
static void send_all(struct mesh *m, const cJSON *items,
		     const struct mesh_link *except)
{
	for (struct mesh_link *l = m->links; l; l = l->next) {
		cJSON *copy;

		if (l->closing || l == except)
			continue;
		copy = cJSON_Duplicate(items, true);
		if (copy)
			send_states(m, l, copy);
	}
}

/* Our record to every link but @except. */
static void send_self(struct mesh *m, const struct mesh_link *except)
{
	cJSON *arr = cJSON_CreateArray();
	cJSON *me = inm_state_json(inm_view_self(m->view));

	if (arr && me && cJSON_AddItemToArray(arr, me))
		send_all(m, arr, except);
	else
		cJSON_Delete(me);
	cJSON_Delete(arr);
}

/* Every record of a reachable node (ours included) to @l. */
static void sync_to(struct mesh *m, struct mesh_link *l, int64_t now)
{
	struct inm_view *v = m->view;
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return;
	for (size_t i = 0; i < inm_view_count(v); i++) {
		const struct inm_node_state *st = inm_view_at(v, i);
		cJSON *o;

		if (st->legacy || !inm_view_reachable(v, st->name))
			continue;
		o = inm_state_json(st);
		if (o)
			cJSON_AddItemToArray(arr, o);
	}
	l->sync_ms = now;
	send_states(m, l, arr);
}

/* ------------------------------------------------------------------ */
/* Liveness                                                            */

static void on_view(void *ud, const struct inm_node_state *st,
		    enum inm_view_event ev)
{
	struct mesh *m = ud;

	if (ev == INM_VIEW_UP) {
		wr_info("mesh: node '%s' joined our view", st->name);
	} else {
		inm_route_forget_node(m->route, st->name);
		wr_info("mesh: node '%s' gone (%s)", st->name,
			st->leaving ? "leaving" : "unreachable");
	}
	if (m->ls.node)
		m->ls.node(m->lud, st, ev);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

static void on_states(struct mesh *m, struct mesh_link *l,
		      const struct inm_packet *pkt)
{
	const cJSON *states = cJSON_GetObjectItemCaseSensitive(pkt->data,
							       "states");
	const cJSON *it;
	cJSON *news = cJSON_CreateArray();
	int64_t now = wr_now_ms();
	unsigned seen = 0;

	if (!news)
		return;
	cJSON_ArrayForEach(it, states) {
		struct inm_node_state st;

		if (++seen > STATES_MAX)
			break;
		if (inm_state_decode(it, &st) ||
		    !mesh_record_time_ok(&st, wr_wall_ms())) {
			m->ctr->inm_dropped[INM_DROP_DATA]++;
			continue;
		}
		if (inm_view_merge(m->view, &st, now) != INM_MERGE_NEWS)
			continue;
		cJSON_AddItemToArray(news, cJSON_Duplicate(it, true));
		if (m->ls.record)
			m->ls.record(m->lud, &st);
	}
	if (cJSON_GetArraySize(news)) {
		send_all(m, news, l);
		mesh_kick(m); /* the view changed: a sweep soon */
	}
	cJSON_Delete(news);
}

static void on_heartbeat(struct mesh *m, struct mesh_link *l,
			 const struct inm_packet *pkt)
{
	const cJSON *dg = cJSON_GetObjectItemCaseSensitive(pkt->data, "digest");
	uint64_t theirs;
	int64_t now = wr_now_ms();

	if (!cJSON_IsString(dg) || inm_digest_parse(dg->valuestring, &theirs)) {
		m->ctr->inm_dropped[INM_DROP_DATA]++;
		return;
	}
	if (theirs == inm_view_digest(m->view)) {
		l->hb_mismatch = 0;
		return;
	}
	/* twice in a row: not just records still on their way */
	if (++l->hb_mismatch >= 2 && now - l->sync_ms >= period(m)) {
		l->hb_mismatch = 0;
		sync_to(m, l, now);
	}
}

/*
 * A record's clock bounded by ours (a peer with the mesh token must not
 * freeze a node's record with one from the far future): the incarnation
 * (the node's start, wall ms) at most MESH_SKEW_MS ahead of us, and the
 * version at most one change per millisecond since then; a legacy
 * announce's version is its "at" (wall ms), bounded the same way.
 */
bool mesh_record_time_ok(const struct inm_node_state *st, int64_t wall_ms)
{
	int64_t limit = wall_ms + MESH_SKEW_MS;

	if (st->legacy)
		return st->version <= (uint64_t)limit;
	if (st->incarnation > limit)
		return false;
	return st->version <=
	       (uint64_t)(limit - st->incarnation) + MESH_VERSION_SLACK;
}

/* An old node's full announce (3.6): its record and its channels. */
static void on_announce(struct mesh *m, const struct inm_packet *pkt)
{
	const cJSON *d = pkt->data;
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(d, "url");
	const cJSON *peers = cJSON_GetObjectItemCaseSensitive(d, "peers");
	const cJSON *lat = cJSON_GetObjectItemCaseSensitive(d, "latency");
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(d, "channels");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(d, "at"), *it;
	const struct inm_node_state *old = inm_view_find(m->view, pkt->source);
	struct inm_node_state st;
	int64_t when = inm_json_int_ok(at) && at->valuedouble > 0
			       ? (int64_t)at->valuedouble
			       : 0;
	int64_t now = wr_now_ms();

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", pkt->source);
	if (cJSON_IsString(url))
		snprintf(st.url, sizeof(st.url), "%s", url->valuestring);
	st.legacy = true;
	st.version = when ? (uint64_t)when : (old ? old->version + 1 : 1);
	st.master = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "master"));
	cJSON_ArrayForEach(it, peers) {
		const cJSON *ms;

		if (st.npeers == INM_VIEW_PEERS_MAX)
			break;
		if (!cJSON_IsString(it) ||
		    !inm_node_name_valid(it->valuestring,
					 strlen(it->valuestring)))
			continue;
		ms = cJSON_GetObjectItemCaseSensitive(lat, it->valuestring);
		st.latency[st.npeers] = cJSON_IsNumber(ms) ? ms->valuedouble
							   : -1.0;
		snprintf(st.peers[st.npeers++], sizeof(st.peers[0]), "%s",
			 it->valuestring);
	}
	if (!mesh_record_time_ok(&st, wr_wall_ms())) {
		m->ctr->inm_dropped[INM_DROP_DATA]++;
		return;
	}
	/* a node that restarted as a new version never goes back to old */
	if (inm_view_merge(m->view, &st, now) != INM_MERGE_NEWS)
		return;
	m->legacy_until_ms = now + 3 * m->cfg->peer_timeout_ms;
	mesh_kick(m);
	/* without "at" (PROTOCOL.md 3.6 names none) the list is the whole
	 * truth: a channel opened since comes back with the next announce */
	if (cJSON_IsArray(chans) && m->ls.announced)
		m->ls.announced(m->lud, pkt->source, chans,
				when ? when : INT64_MAX);
}

void mesh_gossip_event(struct mesh *m, struct mesh_link *l,
		       const struct inm_packet *pkt)
{
	const char *ev = cJSON_GetObjectItemCaseSensitive(pkt->data, "event")
				 ->valuestring;

	if (!strcmp(ev, "node-state"))
		on_states(m, l, pkt);
	else if (!strcmp(ev, "heartbeat"))
		on_heartbeat(m, l, pkt);
	else if (!strcmp(ev, "announce"))
		on_announce(m, pkt);
	/* other events: a newer node's, ignored */
}

/* ------------------------------------------------------------------ */
/* Sending, periodically                                               */

static void heartbeats(struct mesh *m)
{
	char hex[INM_DIGEST_HEX + 1];

	inm_digest_hex(inm_view_digest(m->view), hex);
	for (struct mesh_link *l = m->links; l; l = l->next) {
		cJSON *d;
		struct inm_packet pkt;

		if (l->closing)
			continue;
		d = cJSON_CreateObject();
		if (!d || !cJSON_AddStringToObject(d, "event", "heartbeat") ||
		    !cJSON_AddStringToObject(d, "digest", hex)) {
			cJSON_Delete(d);
			return;
		}
		mesh_packet_new(m, &pkt, l->name, INM_EVENT, d);
		pkt.ttl = 1;
		mesh_send_link(m, l, &pkt);
		inm_packet_fini(&pkt);
	}
}

/* The full announce of 3.6, flooded, for old nodes that need it. */
static void legacy_announce(struct mesh *m)
{
	cJSON *d = cJSON_CreateObject(), *peers, *chans, *lat;
	struct inm_packet pkt;

	if (!d)
		return;
	cJSON_AddStringToObject(d, "event", "announce");
	cJSON_AddStringToObject(d, "name", m->cfg->name);
	cJSON_AddStringToObject(d, "url", m->url);
	peers = cJSON_AddArrayToObject(d, "peers");
	lat = cJSON_AddObjectToObject(d, "latency");
	for (struct mesh_link *l = m->links; peers && l; l = l->next) {
		cJSON_AddItemToArray(peers, cJSON_CreateString(l->name));
		if (lat && l->latency_ms >= 0)
			cJSON_AddNumberToObject(lat, l->name, l->latency_ms);
	}
	chans = cJSON_AddArrayToObject(d, "channels");
	if (chans && m->ls.active)
		m->ls.active(m->lud, chans);
	cJSON_AddBoolToObject(d, "master", m->cfg->master);
	cJSON_AddNumberToObject(d, "at", (double)wr_wall_ms());
	mesh_packet_new(m, &pkt, "*", INM_EVENT, d);
	mesh_send(m, &pkt);
	inm_packet_fini(&pkt);
}

/*
 * A link's latency became known since our record was built. Only then:
 * a record rebuilt for every change of latency would flood the mesh all
 * the time (the overview takes fresh figures from node-stats instead).
 */
bool mesh_gossip_latency_due(struct mesh *m)
{
	const struct inm_node_state *me = inm_view_self(m->view);

	for (unsigned i = 0; i < me->npeers; i++) {
		struct mesh_link *l = mesh_link_named(m, me->peers[i]);

		if (l && l->latency_ms >= 0 && me->latency[i] < 0)
			return true;
	}
	return false;
}

/* A changed channel set waits this long for more changes before the
 * record is rebuilt: half a period, at most a second. */
static int64_t coalesce_ms(const struct mesh *m)
{
	return period(m) / 2 < 1000 ? period(m) / 2 : 1000;
}

void mesh_gossip_tick(struct mesh *m, int64_t now)
{
	int64_t grace = period(m) / 2, slot;

	if (m->self_dirty ||
	    (m->chans_dirty && now - m->self_built_ms >= coalesce_ms(m)) ||
	    mesh_gossip_latency_due(m)) {
		self_build(m, now);
		send_self(m, NULL);
	}
	/*
	 * Heartbeats go out when the wall clock enters a new period, on every
	 * node alike (the node's tick is on the same grid): a node's
	 * neighbours' heartbeats then reach it together, in one wake-up
	 * rather than one each, which is most of an idle node's CPU.
	 */
	slot = wr_wall_ms() / period(m);
	if (slot != m->heartbeat_slot) {
		m->heartbeat_slot = slot;
		heartbeats(m);
		if (m->legacy_until_ms > now)
			legacy_announce(m);
	}
	inm_view_sweep(m->view, now, grace, FORGET_MS, on_view, m);
}

/* ------------------------------------------------------------------ */
/* Links and lifetime                                                  */

void mesh_gossip_link_up(struct mesh *m, struct mesh_link *l)
{
	int64_t now = wr_now_ms();

	self_build(m, now);
	/* the new peer gets everything, the others our new record */
	sync_to(m, l, now);
	send_self(m, l);
}

void mesh_gossip_link_down(struct mesh *m, struct mesh_link *l)
{
	(void)l;
	if (m->stopping) {
		m->self_dirty = true;
		return;
	}
	/* at once, not at the next tick: the others route around it */
	self_build(m, wr_now_ms());
	send_self(m, NULL);
}

void mesh_channels_changed(struct mesh *m)
{
	m->chans_dirty = true;
	mesh_kick(m);
}

void mesh_gossip_leave(struct mesh *m)
{
	m->leaving = true;
	self_build(m, wr_now_ms());
	send_self(m, NULL);
}

int mesh_gossip_init(struct mesh *m)
{
	unsigned char key[INM_TOKEN_LEN / 2];

	m->view = inm_view_create(m->cfg->name, VIEW_NODES_MAX);
	if (!m->view)
		return WR_ENOMEM;
	m->incarnation = wr_wall_ms();
	randombytes_buf(key, sizeof(key));
	wr_hex(m->rejoin, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	m->heartbeat_slot = wr_wall_ms() / period(m);
	self_build(m, wr_now_ms());
	return WR_OK;
}

void mesh_gossip_fini(struct mesh *m)
{
	inm_view_destroy(m->view);
	m->view = NULL;
	sodium_memzero(m->rejoin, sizeof(m->rejoin));
}

bool mesh_token_static(struct mesh *m, const char *tok, size_t len)
{
	size_t want = m->cfg->token ? strlen(m->cfg->token) : 0;

	/* the rejoin token our record offers the mesh (healing) */
	if (len == INM_TOKEN_LEN && m->rejoin[0] &&
	    wr_ct_equal(tok, m->rejoin, INM_TOKEN_LEN))
		return true;
	return want && len == want && wr_ct_equal(tok, m->cfg->token, want);
}
