/*
 * node/gossip: node-state records and liveness (docs/mesh.md). A node
 * sends its own record when it changes (its links, its channel digest)
 * and passes on a record it got only when it was news, hop by hop, so
 * each link carries each version at most once each way. Idle, it sends
 * one heartbeat per link per announce period carrying the digest of its
 * view; a neighbour that twice in a row finds a different digest sends
 * back all its records. Liveness is reachability in inm/view's graph: a
 * crashed node's neighbours lose their links, their new records cut it
 * off, and after a short grace it leaves every holder set. A record whose
 * channel digest disagrees with the reservation table makes us pull that
 * node's list-channels. Old nodes' full announces (PROTOCOL.md 3.6) are
 * understood, and answered in kind while one of them is in the mesh.
 */
#include <string.h>

#include <sodium.h>

#include "flows.h"
#include "node.h"

#define VIEW_NODES_MAX 4096
#define FORGET_MS (10 * 60 * 1000)     /* a lost node's record is kept */
#define STATES_MAX 4096                /* records read from one packet */
#define LATENCY_REFRESH_PERIODS 10

static int64_t period(const struct wr_node *node)
{
	return node->cfg->announce_interval_ms;
}

bool wr_mesh_alive(struct wr_node *node, const char *name)
{
	return !strcmp(name, node->cfg->name) ||
	       inm_view_alive(node->mesh.view, name);
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

static void self_build(struct wr_node *node, int64_t now)
{
	struct wr_mesh *m = &node->mesh;
	struct inm_node_state st;
	struct digest_acc acc = { 0, 0 };

	memset(&st, 0, sizeof(st));
	lws_snprintf(st.name, sizeof(st.name), "%s", node->cfg->name);
	lws_snprintf(st.url, sizeof(st.url), "%s", node->url);
	st.incarnation = m->incarnation;
	st.version = ++m->version;
	st.master = node->cfg->master;
	st.leaving = m->leaving;
	for (struct wr_peer *p = node->peers; p; p = p->next) {
		if (!p->up || p->close_code || st.npeers == INM_VIEW_PEERS_MAX)
			continue;
		lws_snprintf(st.peers[st.npeers], sizeof(st.peers[0]), "%s",
			     p->name);
		st.latency[st.npeers++] = p->latency_ms;
	}
	if (node->reg && !m->leaving)
		chan_foreach(node->reg, digest_active, &acc);
	st.nchannels = acc.n;
	st.chan_digest = acc.d;
	memcpy(st.rejoin, m->rejoin, sizeof(st.rejoin));
	inm_view_set_self(m->view, &st);
	m->self_dirty = false;
	m->chans_dirty = false;
	m->self_built_ms = now;
}

/* Sends the records in @states (an array, taken) to @p. */
static void send_states(struct wr_node *node, struct wr_peer *p, cJSON *states)
{
	cJSON *d = cJSON_CreateObject();
	struct inm_packet pkt;

	if (!d || !cJSON_AddStringToObject(d, "event", "node-state")) {
		cJSON_Delete(d);
		cJSON_Delete(states);
		return;
	}
	cJSON_AddItemToObject(d, "states", states);
	wr_mesh_packet_new(node, &pkt, p->name, INM_EVENT, d);
	pkt.ttl = 1; /* hop by hop: each node passes on only what is news */
	wr_mesh_send_peer(node, p, &pkt);
	inm_packet_fini(&pkt);
}

/* @items to every up link but @except (may be NULL); @items stays ours. */
static void send_all(struct wr_node *node, const cJSON *items,
		     const struct wr_peer *except)
{
	for (struct wr_peer *p = node->peers; p; p = p->next) {
		cJSON *copy;

		if (!p->up || p->close_code || p == except)
			continue;
		copy = cJSON_Duplicate(items, true);
		if (copy)
			send_states(node, p, copy);
	}
}

static void flood_self(struct wr_node *node)
{
	cJSON *arr = cJSON_CreateArray();
	cJSON *me = inm_state_json(inm_view_self(node->mesh.view));

	if (arr && me && cJSON_AddItemToArray(arr, me)) {
		send_all(node, arr, NULL);
	} else {
		cJSON_Delete(me);
	}
	cJSON_Delete(arr);
}

/* Every record of a reachable node (ours included) to @p. */
static void sync_to(struct wr_node *node, struct wr_peer *p, int64_t now)
{
	struct inm_view *v = node->mesh.view;
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
	p->sync_ms = now;
	send_states(node, p, arr);
}

/* ------------------------------------------------------------------ */
/* Channel digests against the reservation table                      */

static struct wr_check *check_find(struct wr_check *v, unsigned n,
				   const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	return NULL;
}

static void check_remove(struct wr_check *v, unsigned *n, struct wr_check *c)
{
	*c = v[--*n];
}

/* Checks @name's channels against its record at @due (or sooner). */
static void schedule_check(struct wr_node *node, const char *name, int64_t due)
{
	struct wr_mesh *m = &node->mesh;
	struct wr_check *c = check_find(m->checks, m->nchecks, name);

	if (c) {
		if (due < c->due_ms)
			c->due_ms = due;
		return;
	}
	if (m->nchecks == WR_CHECKS_MAX)
		return; /* the next record change schedules it again */
	c = &m->checks[m->nchecks++];
	memset(c, 0, sizeof(*c));
	lws_snprintf(c->name, sizeof(c->name), "%s", name);
	c->due_ms = due;
}

struct held_digest {
	const char *holder;
	struct digest_acc acc;
};

static void digest_held(const struct chan_resv_entry *e, void *arg)
{
	struct held_digest *h = arg;
	unsigned n = chan_resv_nholders(e);

	for (unsigned i = 0; i < n; i++) {
		size_t len;
		const char *name;
		const uint8_t *hash;

		if (strcmp(chan_resv_holder(e, i), h->holder))
			continue;
		name = chan_resv_name(e, &len);
		hash = chan_resv_hash(e);
		h->acc.d ^= inm_chan_digest(name, len, hash,
					    hash ? CHAN_HASH_LEN : 0,
					    chan_resv_holder_created(e, i));
		h->acc.n++;
		return;
	}
}

static void on_pulled(struct wr_node *node, const struct inm_pending_event *ev,
		      void *arg)
{
	char *name = arg;
	struct wr_mesh *m = &node->mesh;
	const cJSON *d = ev->response ? ev->response->data : NULL;
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(d, "channels");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(d, "at");
	struct wr_check *c;

	if (!ev->done)
		return;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")) &&
	    cJSON_IsArray(chans))
		wr_chan_announced(node, name, chans,
				  cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0);
	c = check_find(m->checks, m->nchecks, name);
	if (c && c->pulling) {
		if (ev->response) {
			check_remove(m->checks, &m->nchecks, c);
		} else { /* timed out: once more, a period later */
			c->pulling = false;
			c->due_ms = wr_now_ms() + period(node);
		}
	}
	free(name);
}

static void run_check(struct wr_node *node, struct wr_check *c)
{
	struct wr_mesh *m = &node->mesh;
	const struct inm_node_state *st = inm_view_find(m->view, c->name);
	struct held_digest h = { c->name, { 0, 0 } };
	cJSON *cmd;
	char *arg;

	if (!st || st->legacy || !inm_view_reachable(m->view, c->name)) {
		check_remove(m->checks, &m->nchecks, c);
		return;
	}
	chan_resv_foreach(m->resv, digest_held, &h);
	if (h.acc.n == st->nchannels && h.acc.d == st->chan_digest) {
		check_remove(m->checks, &m->nchecks, c);
		return;
	}
	wr_info("mesh: channels of '%s' differ from its record (%u here, %u "
		"there): asking it", c->name, h.acc.n, st->nchannels);
	cmd = cJSON_CreateObject();
	arg = strdup(c->name);
	if (!cmd || !arg ||
	    !cJSON_AddStringToObject(cmd, "command", "list-channels") ||
	    !cJSON_AddTrueToObject(cmd, "stamp")) {
		cJSON_Delete(cmd);
		free(arg);
		return;
	}
	c->pulling = true;
	if (wr_mesh_command(node, c->name, cmd, on_pulled, arg)) {
		free(arg);
		c->pulling = false;
		c->due_ms = wr_now_ms() + period(node);
	}
}

static void run_checks(struct wr_node *node, int64_t now)
{
	struct wr_mesh *m = &node->mesh;

	for (unsigned i = 0; i < m->nchecks;) {
		struct wr_check *c = &m->checks[i];
		unsigned before = m->nchecks;

		if (c->pulling || c->due_ms > now) {
			i++;
			continue;
		}
		run_check(node, c);
		if (m->nchecks == before)
			i++;
	}
}

void wr_gossip_holder_named(struct wr_node *node, const char *holder)
{
	struct wr_mesh *m = &node->mesh;

	if (wr_mesh_alive(node, holder) ||
	    check_find(m->suspects, m->nsuspects, holder) ||
	    m->nsuspects == WR_CHECKS_MAX)
		return;
	lws_snprintf(m->suspects[m->nsuspects].name, sizeof(m->suspects[0].name),
		     "%s", holder);
	m->suspects[m->nsuspects++].due_ms =
		wr_now_ms() + node->cfg->peer_timeout_ms + period(node);
}

/* A holder named before the mesh knew it, still unknown: not a node. */
static void run_suspects(struct wr_node *node, int64_t now)
{
	struct wr_mesh *m = &node->mesh;

	for (unsigned i = 0; i < m->nsuspects;) {
		struct wr_check *c = &m->suspects[i];

		if (c->due_ms > now) {
			i++;
			continue;
		}
		if (!wr_mesh_alive(node, c->name)) {
			unsigned n = chan_resv_holder_gone(m->resv, c->name);

			if (n)
				wr_info("mesh: holder '%s' never joined the "
					"view: %u channel(s) updated", c->name, n);
		}
		check_remove(m->suspects, &m->nsuspects, c);
	}
}

/* ------------------------------------------------------------------ */
/* Liveness                                                            */

static void on_view(void *ud, const struct inm_node_state *st,
		    enum inm_view_event ev)
{
	struct wr_node *node = ud;
	struct wr_mesh *m = &node->mesh;
	unsigned n;

	switch (ev) {
	case INM_VIEW_UP:
		wr_info("mesh: node '%s' joined our view", st->name);
		schedule_check(node, st->name, 0);
		break;
	case INM_VIEW_GONE:
		n = chan_resv_holder_gone(m->resv, st->name);
		inm_route_forget_node(m->route, st->name);
		wr_info("mesh: node '%s' gone (%s), %u channel(s) updated",
			st->name, st->leaving ? "leaving" : "unreachable", n);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

static void on_states(struct wr_node *node, struct wr_peer *p,
		      const struct inm_packet *pkt)
{
	struct wr_mesh *m = &node->mesh;
	const cJSON *states = cJSON_GetObjectItemCaseSensitive(pkt->data, "states");
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
		if (inm_state_decode(it, &st)) {
			node->ctr.inm_dropped[INM_DROP_DATA]++;
			continue;
		}
		if (inm_view_merge(m->view, &st, now) != INM_MERGE_NEWS)
			continue;
		cJSON_AddItemToArray(news, cJSON_Duplicate(it, true));
		/* whatever the last record said, check the table against
		 * this one once the reservation commands that travel with a
		 * change had time to land (a record missed while we were cut
		 * off may have been the one that changed) */
		schedule_check(node, st.name, now + period(node));
	}
	if (cJSON_GetArraySize(news))
		send_all(node, news, p);
	cJSON_Delete(news);
}

static void on_heartbeat(struct wr_node *node, struct wr_peer *p,
			 const struct inm_packet *pkt)
{
	const cJSON *dg = cJSON_GetObjectItemCaseSensitive(pkt->data, "digest");
	uint64_t theirs;
	int64_t now = wr_now_ms();

	if (!cJSON_IsString(dg) || inm_digest_parse(dg->valuestring, &theirs)) {
		node->ctr.inm_dropped[INM_DROP_DATA]++;
		return;
	}
	if (theirs == inm_view_digest(node->mesh.view)) {
		p->hb_mismatch = 0;
		return;
	}
	/* twice in a row: not just records still on their way */
	if (++p->hb_mismatch >= 2 && now - p->sync_ms >= period(node)) {
		p->hb_mismatch = 0;
		sync_to(node, p, now);
	}
}

/* An old node's full announce (3.6): its record and its channels. */
static void on_announce(struct wr_node *node, const struct inm_packet *pkt)
{
	struct wr_mesh *m = &node->mesh;
	const cJSON *d = pkt->data;
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(d, "url");
	const cJSON *peers = cJSON_GetObjectItemCaseSensitive(d, "peers");
	const cJSON *lat = cJSON_GetObjectItemCaseSensitive(d, "latency");
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(d, "channels");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(d, "at"), *it;
	const struct inm_node_state *old = inm_view_find(m->view, pkt->source);
	struct inm_node_state st;
	int64_t when = cJSON_IsNumber(at) && at->valuedouble > 0
		       ? (int64_t)at->valuedouble : 0;
	int64_t now = wr_now_ms();

	memset(&st, 0, sizeof(st));
	lws_snprintf(st.name, sizeof(st.name), "%s", pkt->source);
	if (cJSON_IsString(url))
		lws_snprintf(st.url, sizeof(st.url), "%s", url->valuestring);
	st.legacy = true;
	st.version = when ? (uint64_t)when : (old ? old->version + 1 : 1);
	st.master = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "master"));
	cJSON_ArrayForEach(it, peers) {
		const cJSON *ms;

		if (st.npeers == INM_VIEW_PEERS_MAX)
			break;
		if (!cJSON_IsString(it) ||
		    !inm_node_name_valid(it->valuestring, strlen(it->valuestring)))
			continue;
		ms = cJSON_GetObjectItemCaseSensitive(lat, it->valuestring);
		st.latency[st.npeers] = cJSON_IsNumber(ms) ? ms->valuedouble : -1.0;
		lws_snprintf(st.peers[st.npeers++], sizeof(st.peers[0]), "%s",
			     it->valuestring);
	}
	/* a node that restarted as a new version never goes back to old */
	if (inm_view_merge(m->view, &st, now) != INM_MERGE_NEWS)
		return;
	m->legacy_until_ms = now + 3 * node->cfg->peer_timeout_ms;
	/* without "at" (PROTOCOL.md 3.6 names none) the list is the whole
	 * truth: a channel opened since comes back with the next announce */
	if (cJSON_IsArray(chans))
		wr_chan_announced(node, pkt->source, chans,
				  when ? when : INT64_MAX);
}

void wr_gossip_event(struct wr_node *node, struct wr_peer *p,
		     const struct inm_packet *pkt)
{
	const char *ev = cJSON_GetObjectItemCaseSensitive(pkt->data, "event")
				 ->valuestring;

	if (!strcmp(ev, "node-state"))
		on_states(node, p, pkt);
	else if (!strcmp(ev, "heartbeat"))
		on_heartbeat(node, p, pkt);
	else if (!strcmp(ev, "announce"))
		on_announce(node, pkt);
	/* other events: a newer node's, ignored */
}

/* ------------------------------------------------------------------ */
/* Sending, periodically                                               */

static void heartbeats(struct wr_node *node)
{
	char hex[INM_DIGEST_HEX + 1];

	inm_digest_hex(inm_view_digest(node->mesh.view), hex);
	for (struct wr_peer *p = node->peers; p; p = p->next) {
		cJSON *d;
		struct inm_packet pkt;

		if (!p->up || p->close_code)
			continue;
		d = cJSON_CreateObject();
		if (!d || !cJSON_AddStringToObject(d, "event", "heartbeat") ||
		    !cJSON_AddStringToObject(d, "digest", hex)) {
			cJSON_Delete(d);
			return;
		}
		wr_mesh_packet_new(node, &pkt, p->name, INM_EVENT, d);
		pkt.ttl = 1;
		wr_mesh_send_peer(node, p, &pkt);
		inm_packet_fini(&pkt);
	}
}

/* The full announce of 3.6, flooded, for old nodes that need it. */
static void legacy_announce(struct wr_node *node)
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
	wr_mesh_packet_new(node, &pkt, "*", INM_EVENT, d);
	wr_mesh_flood(node, &pkt);
	inm_packet_fini(&pkt);
}

/* A link's latency became known, or moved a lot since we last said. */
static bool latency_due(struct wr_node *node, int64_t now)
{
	const struct inm_node_state *me = inm_view_self(node->mesh.view);
	bool refresh = now - node->mesh.latency_built_ms >=
		       LATENCY_REFRESH_PERIODS * period(node);

	for (unsigned i = 0; i < me->npeers; i++) {
		struct wr_peer *p = wr_peer_named(node, me->peers[i]);
		double was = me->latency[i], is;

		if (!p || p->latency_ms < 0)
			continue;
		is = p->latency_ms;
		if (was < 0)
			return true;
		if (refresh && (is > 2 * was || is < was / 2) &&
		    (is - was > 5 || was - is > 5))
			return true;
	}
	return false;
}

void wr_gossip_tick(struct wr_node *node, int64_t now)
{
	struct wr_mesh *m = &node->mesh;
	int64_t grace = period(node) / 2;

	if (m->self_dirty ||
	    (m->chans_dirty && now - m->self_built_ms >= period(node) / 2) ||
	    latency_due(node, now)) {
		if (!m->self_dirty && !m->chans_dirty)
			m->latency_built_ms = now;
		self_build(node, now);
		flood_self(node);
	}
	if (now >= m->next_heartbeat_ms) {
		m->next_heartbeat_ms = now + period(node);
		heartbeats(node);
		if (m->legacy_until_ms > now)
			legacy_announce(node);
	}
	inm_view_sweep(m->view, now, grace, FORGET_MS, on_view, node);
	run_checks(node, now);
	run_suspects(node, now);
}

/* ------------------------------------------------------------------ */
/* Links and lifetime                                                  */

void wr_gossip_link_up(struct wr_node *node, struct wr_peer *p)
{
	int64_t now = wr_now_ms();

	self_build(node, now);
	/* the new peer gets everything, the others our new record */
	sync_to(node, p, now);
	for (struct wr_peer *q = node->peers; q; q = q->next) {
		cJSON *arr, *me;

		if (q == p || !q->up || q->close_code)
			continue;
		arr = cJSON_CreateArray();
		me = inm_state_json(inm_view_self(node->mesh.view));
		if (arr && me && cJSON_AddItemToArray(arr, me)) {
			send_states(node, q, arr);
		} else {
			cJSON_Delete(me);
			cJSON_Delete(arr);
		}
	}
}

void wr_gossip_link_down(struct wr_node *node, struct wr_peer *p)
{
	(void)p;
	node->mesh.self_dirty = true;
}

void wr_gossip_channels_changed(struct wr_node *node)
{
	node->mesh.chans_dirty = true;
}

void wr_gossip_leave(struct wr_node *node)
{
	if (!node->mesh.view)
		return;
	self_build(node, wr_now_ms());
	flood_self(node);
}

int wr_gossip_init(struct wr_node *node)
{
	struct wr_mesh *m = &node->mesh;
	unsigned char key[INM_TOKEN_LEN / 2];

	m->view = inm_view_create(node->cfg->name, VIEW_NODES_MAX);
	if (!m->view)
		return WR_ENOMEM;
	m->incarnation = wr_wall_ms();
	randombytes_buf(key, sizeof(key));
	wr_hex(m->rejoin, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	m->next_heartbeat_ms = wr_now_ms() + period(node);
	m->latency_built_ms = wr_now_ms();
	self_build(node, wr_now_ms());
	return WR_OK;
}

void wr_gossip_fini(struct wr_node *node)
{
	inm_view_destroy(node->mesh.view);
	node->mesh.view = NULL;
	sodium_memzero(node->mesh.rejoin, sizeof(node->mesh.rejoin));
}
