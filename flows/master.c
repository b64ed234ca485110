/*
 * flows/master: the master node (PROTOCOL.md 5.4), on when node.master.
 *
 * Reconciliation: every reconcile_interval_ms it asks every node
 * list-channels (what each holds) and list-reserved-channels (what each
 * believes), builds the truth from the first answers in a reservation
 * table of its own — so conflicts are settled by the same race rule as
 * everywhere — and sends each node the reserve-channel / unreserve-channel
 * that bring its view in step. A node that did not answer is neither
 * repaired nor taken as holding nothing.
 *
 * History: every stats_interval_ms (15 s) it asks every node node-stats and host-stats and
 * keeps one hour of samples per node (240), for GET /api/overview, which
 * also carries the latest raw stats, the links with their latency and the
 * channels with holders and subscribers.
 */
#include <string.h>

#include "internal.h"

#define SAMPLES 240 /* one hour at 15 s */
#define MASTER_NODES_MAX 256
#define FORGET_MS (3600 * 1000) /* a node silent for an hour is dropped */

struct sample {
	int64_t t;                    /* wall ms */
	double packets_15s, kbps_15s; /* network over the last 15 s */
	double clients, load1, mem_used, mem_total;
};

struct mnode {
	char name[INM_NAME_MAX + 1];
	struct sample ring[SAMPLES];
	unsigned head, len;
	cJSON *node_stats, *host_stats; /* latest answers (owned) */
	int64_t heard_ms;
	int64_t stats_wall;    /* when its latest node-stats came */
	struct sample pending; /* filled by the two answers */
	int64_t pending_round;
};

struct flow_master {
	int64_t next_reconcile_ms, next_sample_ms;
	int64_t round; /* stats round number */
	/* a reconciliation in flight */
	bool busy;
	unsigned waiting;
	cJSON *holds; /* {node: [list-channels entries]} */
	cJSON *views; /* {node: [list-reserved entries]} */
	uint64_t repairs;
	struct mnode *nodes;
	unsigned nnodes;
};

/* ------------------------------------------------------------------ */
/* Reconciliation: the decisions are flows/reconcile.c's               */

static void send_fix(const struct flow_repair *r, void *arg)
{
	struct flows *f = arg;
	cJSON *d = r->reserve ? flow_chan_reserve_data(r->channel, r->hash,
						       r->created, r->holder)
			      : cJSON_CreateObject();

	if (!d)
		return;
	if (!r->reserve) {
		cJSON_AddStringToObject(d, "command", "unreserve-channel");
		cJSON_AddStringToObject(d, "channel", r->channel);
		cJSON_AddStringToObject(d, "holder", r->holder);
	}
	f->master->repairs++;
	wr_info("master: %s '%s' (holder '%s') on '%s'",
		r->reserve ? "reserve-channel" : "unreserve-channel",
		r->channel, r->holder, r->dest);
	mesh_command(f->mesh, r->dest, d, NULL, NULL);
}

static void reconcile(struct flows *f)
{
	struct flow_master *ms = f->master;

	if (flow_reconcile(ms->holds, ms->views, send_fix, f))
		wr_warn("master: out of memory, reconciliation skipped");
	cJSON_Delete(ms->holds);
	cJSON_Delete(ms->views);
	ms->holds = ms->views = NULL;
	ms->busy = false;
}

/* One node's answer, kept in @into (holds or views). */
static void on_list(struct flows *f, const struct inm_pending_event *ev,
		    cJSON *into)
{
	struct flow_master *ms = f->master;
	const cJSON *d = ev->response ? ev->response->data : NULL;
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(d, "channels");

	if (ms && into && cJSON_IsArray(chans) &&
	    !cJSON_GetObjectItemCaseSensitive(into, ev->response->source))
		cJSON_AddItemToObject(into, ev->response->source,
				      cJSON_Duplicate(chans, 1));
	if (ms && ev->done && --ms->waiting == 0)
		reconcile(f);
}

static void on_holds(void *ud, const struct inm_pending_event *ev)
{
	struct flows *f = ud;

	on_list(f, ev, f->master ? f->master->holds : NULL);
}

static void on_views(void *ud, const struct inm_pending_event *ev)
{
	struct flows *f = ud;

	on_list(f, ev, f->master ? f->master->views : NULL);
}

/* Our own two answers go in directly, as any node's would. */
static void add_self(struct flows *f)
{
	struct flow_master *ms = f->master;
	cJSON *a = cJSON_CreateArray(), *b = cJSON_CreateArray();

	if (a) {
		flow_chan_list_json(f, a, false);
		cJSON_AddItemToObject(ms->holds, mesh_name(f->mesh), a);
	}
	if (b) {
		flow_chan_list_json(f, b, true);
		cJSON_AddItemToObject(ms->views, mesh_name(f->mesh), b);
	}
}

static void start_round(struct flows *f)
{
	struct flow_master *ms = f->master;
	cJSON *c1 = cJSON_CreateObject(), *c2 = cJSON_CreateObject();

	ms->holds = cJSON_CreateObject();
	ms->views = cJSON_CreateObject();
	if (!c1 || !c2 || !ms->holds || !ms->views) {
		cJSON_Delete(c1);
		cJSON_Delete(c2);
		cJSON_Delete(ms->holds);
		cJSON_Delete(ms->views);
		ms->holds = ms->views = NULL;
		return;
	}
	add_self(f);
	cJSON_AddStringToObject(c1, "command", "list-channels");
	cJSON_AddStringToObject(c2, "command", "list-reserved-channels");
	ms->busy = true;
	ms->waiting = 2;
	if (mesh_command(f->mesh, "*", c1, on_holds, f))
		ms->waiting--;
	if (mesh_command(f->mesh, "*", c2, on_views, f))
		ms->waiting--;
	if (ms->busy && !ms->waiting)
		reconcile(f);
}

/* ------------------------------------------------------------------ */
/* History                                                             */

static struct mnode *mnode_find(struct flow_master *ms, const char *name);

static struct mnode *mnode_get(struct flow_master *ms, const char *name)
{
	struct mnode *n = mnode_find(ms, name);

	if (n)
		return n;
	if (ms->nnodes == MASTER_NODES_MAX)
		return NULL;
	n = &ms->nodes[ms->nnodes++];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	return n;
}

static double num_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, a), b);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void record(struct mnode *n, int64_t round)
{
	struct sample *s = &n->pending;

	if (n->pending_round != round)
		return;
	n->ring[n->head] = *s;
	n->head = (n->head + 1) % SAMPLES;
	if (n->len < SAMPLES)
		n->len++;
	n->pending_round = 0;
}

/* One node's node-stats (@host false) or host-stats answer. */
static void take_stats(struct flows *f, const char *name, cJSON *d, bool host)
{
	struct flow_master *ms = f->master;
	struct mnode *n = mnode_get(ms, name);
	const cJSON *net;

	if (!n) {
		cJSON_Delete(d);
		return;
	}
	n->heard_ms = wr_now_ms();
	if (n->pending_round != ms->round) {
		memset(&n->pending, 0, sizeof(n->pending));
		n->pending.t = wr_wall_ms();
		n->pending_round = ms->round;
	}
	if (host) {
		cJSON_DeleteItemFromObjectCaseSensitive(d, "ok");
		cJSON_Delete(n->host_stats);
		n->host_stats = d;
		n->pending.load1 = num_at(d, "cpu", "1m");
		n->pending.mem_used = num_at(d, "mem", "used");
		n->pending.mem_total = num_at(d, "mem", "total");
		return;
	}
	cJSON_Delete(n->node_stats);
	n->node_stats = d;
	n->stats_wall = wr_wall_ms();
	net = cJSON_GetObjectItemCaseSensitive(d, "network");
	n->pending.packets_15s = num_at(net, "packets", "15s");
	n->pending.kbps_15s = num_at(net, "bandwidth", "15s");
	n->pending.clients = num_at(d, "relay", "clients");
	record(n, ms->round); /* node-stats closes the sample */
}

static void on_stats(struct flows *f, const struct inm_pending_event *ev,
		     bool host)
{
	const cJSON *d = ev->response ? ev->response->data : NULL;

	if (!f->master ||
	    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")))
		return;
	take_stats(f, ev->response->source, cJSON_Duplicate(d, 1), host);
}

static void on_host_stats(void *ud, const struct inm_pending_event *ev)
{
	on_stats(ud, ev, true);
}

static void on_node_stats(void *ud, const struct inm_pending_event *ev)
{
	on_stats(ud, ev, false);
}

static void ask(struct flows *f, const char *cmd, mesh_reply_cb cb)
{
	cJSON *d = cJSON_CreateObject();

	if (d && cJSON_AddStringToObject(d, "command", cmd))
		mesh_command(f->mesh, "*", d, cb, f);
	else
		cJSON_Delete(d);
}

static void sample_round(struct flows *f)
{
	struct flow_master *ms = f->master;
	cJSON *h = mesh_host_stats(f->mesh);
	int64_t now = wr_now_ms();

	ms->round++;
	/* host first: node-stats closes each node's sample */
	if (h)
		take_stats(f, mesh_name(f->mesh), h, true);
	take_stats(f, mesh_name(f->mesh), mesh_node_stats(f->mesh), false);
	ask(f, "host-stats", on_host_stats);
	ask(f, "node-stats", on_node_stats);
	for (unsigned i = 0; i < ms->nnodes;) {
		struct mnode *n = &ms->nodes[i];

		if (now - n->heard_ms > FORGET_MS) {
			cJSON_Delete(n->node_stats);
			cJSON_Delete(n->host_stats);
			*n = ms->nodes[--ms->nnodes];
		} else {
			i++;
		}
	}
}

/* ------------------------------------------------------------------ */

int flow_master_init(struct flows *f)
{
	struct flow_master *ms;

	if (!f->cfg->master)
		return WR_OK;
	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return WR_ENOMEM;
	ms->nodes = calloc(MASTER_NODES_MAX, sizeof(*ms->nodes));
	if (!ms->nodes) {
		free(ms);
		return WR_ENOMEM;
	}
	ms->next_reconcile_ms = wr_now_ms() + f->cfg->reconcile_interval_ms;
	f->master = ms;
	return WR_OK;
}

void flow_master_fini(struct flows *f)
{
	struct flow_master *ms = f->master;

	if (!ms)
		return;
	for (unsigned i = 0; i < ms->nnodes; i++) {
		cJSON_Delete(ms->nodes[i].node_stats);
		cJSON_Delete(ms->nodes[i].host_stats);
	}
	cJSON_Delete(ms->holds);
	cJSON_Delete(ms->views);
	free(ms->nodes);
	free(ms);
	f->master = NULL;
}

void flow_master_tick(struct flows *f, int64_t now)
{
	struct flow_master *ms = f->master;

	if (!ms || mesh_stopping(f->mesh))
		return;
	if (now >= ms->next_reconcile_ms && !ms->busy) {
		ms->next_reconcile_ms = now + f->cfg->reconcile_interval_ms;
		start_round(f);
	}
	if (now >= ms->next_sample_ms) {
		ms->next_sample_ms = now + f->cfg->stats_interval_ms;
		sample_round(f);
	}
}

/* ------------------------------------------------------------------ */
/* GET /api/overview                                                   */

static cJSON *history_json(const struct mnode *n)
{
	cJSON *arr = cJSON_CreateArray();

	for (unsigned k = 0; arr && k < n->len; k++) {
		const struct sample *s =
			&n->ring[(n->head + SAMPLES - n->len + k) % SAMPLES];
		cJSON *o = cJSON_CreateObject();

		if (!o)
			break;
		cJSON_AddNumberToObject(o, "t", (double)s->t);
		cJSON_AddNumberToObject(o, "packets", s->packets_15s);
		cJSON_AddNumberToObject(o, "kbps", s->kbps_15s);
		cJSON_AddNumberToObject(o, "clients", s->clients);
		cJSON_AddNumberToObject(o, "load1", s->load1);
		cJSON_AddNumberToObject(o, "mem_used", s->mem_used);
		cJSON_AddNumberToObject(o, "mem_total", s->mem_total);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* Adds link a-b once (names in order), with a latency when measured. */
static void add_link(cJSON *links, const char *a, const char *b, double ms)
{
	const char *x = strcmp(a, b) < 0 ? a : b, *y = x == a ? b : a;
	cJSON *l;

	cJSON_ArrayForEach(l, links) {
		const cJSON *la = cJSON_GetObjectItemCaseSensitive(l, "a");
		const cJSON *lb = cJSON_GetObjectItemCaseSensitive(l, "b");

		if (!strcmp(la->valuestring, x) &&
		    !strcmp(lb->valuestring, y)) {
			if (ms >= 0 &&
			    cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
				    l, "latency_ms")))
				cJSON_ReplaceItemInObject(l, "latency_ms",
							  cJSON_CreateNumber(ms));
			return;
		}
	}
	l = cJSON_CreateObject();
	if (!l)
		return;
	cJSON_AddStringToObject(l, "a", x);
	cJSON_AddStringToObject(l, "b", y);
	if (ms >= 0)
		cJSON_AddNumberToObject(l, "latency_ms", ms);
	else
		cJSON_AddNullToObject(l, "latency_ms");
	cJSON_AddItemToArray(links, l);
}

static struct mnode *mnode_find(struct flow_master *ms, const char *name)
{
	for (unsigned i = 0; i < ms->nnodes; i++)
		if (!strcmp(ms->nodes[i].name, name))
			return &ms->nodes[i];
	return NULL;
}

/* Stats younger than 3 sampling periods describe the node as it is. */
static bool fresh(const struct flows *f, const struct mnode *m)
{
	return m && m->node_stats &&
	       wr_now_ms() - m->heard_ms <=
		       3 * (int64_t)f->cfg->stats_interval_ms;
}

/* @up: the node is part of the mesh now (a node gone stays listed, down,
 * for as long as its history is kept). */
static cJSON *node_json(struct flows *f, const char *name, const char *url,
			bool master, bool up)
{
	struct flow_master *ms = f->master;
	cJSON *o = cJSON_CreateObject();
	struct mnode *m = mnode_find(ms, name);

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "url", url);
	cJSON_AddBoolToObject(o, "master", master);
	cJSON_AddBoolToObject(o, "up", up);
	if (m && m->node_stats)
		cJSON_AddNumberToObject(o, "stats_at", (double)m->stats_wall);
	else
		cJSON_AddNullToObject(o, "stats_at");
	cJSON_AddItemToObject(o, "stats",
			      m && m->node_stats
				      ? cJSON_Duplicate(m->node_stats, 1)
				      : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "host",
			      m && m->host_stats
				      ? cJSON_Duplicate(m->host_stats, 1)
				      : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "history",
			      m ? history_json(m) : cJSON_CreateArray());
	return o;
}

static void add_channel(const struct chan_resv_entry *e, void *arg)
{
	cJSON *arr = arg, *o = cJSON_CreateObject(), *hs;
	size_t len;
	const char *name = chan_resv_name(e, &len);

	if (!o)
		return;
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddBoolToObject(o, "protected", chan_resv_hash(e) != NULL);
	cJSON_AddNumberToObject(o, "created", (double)chan_resv_created(e));
	hs = cJSON_AddArrayToObject(o, "holders");
	for (unsigned i = 0; hs && i < chan_resv_nholders(e); i++)
		cJSON_AddItemToArray(hs,
				     cJSON_CreateString(chan_resv_holder(e,
									 i)));
	cJSON_AddObjectToObject(o, "subscribers");
	cJSON_AddItemToArray(arr, o);
}

/* Subscribers per node from the latest node-stats of each node that is
 * up and answered lately. */
static void fill_subscribers(struct flows *f, cJSON *chans)
{
	struct flow_master *ms = f->master;
	cJSON *c;

	cJSON_ArrayForEach(c, chans) {
		cJSON *subs = cJSON_GetObjectItemCaseSensitive(c,
							       "subscribers");
		const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")
					   ->valuestring;
		double total = 0;

		for (unsigned i = 0; i < ms->nnodes; i++) {
			const char *who = ms->nodes[i].name;
			const cJSON *cc, *v;

			if (!fresh(f, &ms->nodes[i]) ||
			    (strcmp(who, mesh_name(f->mesh)) &&
			     !mesh_alive(f->mesh, who)))
				continue;
			cc = cJSON_GetObjectItemCaseSensitive(
				cJSON_GetObjectItemCaseSensitive(
					ms->nodes[i].node_stats, "relay"),
				"channel_connections");
			v = cJSON_GetObjectItemCaseSensitive(cc, name);

			if (cJSON_IsNumber(v)) {
				cJSON_AddNumberToObject(subs, ms->nodes[i].name,
							v->valuedouble);
				total += v->valuedouble;
			}
		}
		cJSON_AddNumberToObject(c, "total_subscribers", total);
	}
}

/* @k's round trip to its j-th peer: from its latest node-stats (fresh
 * every stats_interval_ms), else the one its record carried. */
static double latency_of(struct flow_master *ms, const struct inm_node_state *k,
			 unsigned j)
{
	struct mnode *n = mnode_find(ms, k->name);
	const cJSON *v = NULL;

	if (n && n->node_stats)
		v = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(n->node_stats,
							 "links"),
			k->peers[j]);
	return cJSON_IsNumber(v) ? v->valuedouble : k->latency[j];
}

int flow_master_api_json(struct flows *f, struct wr_buf *b)
{
	struct flow_master *ms = f->master;
	cJSON *root, *nodes, *links, *chans, *o;
	char *txt;

	if (!ms)
		return WR_ENOENT;
	root = cJSON_CreateObject();
	if (!root)
		return WR_ENOMEM;
	cJSON_AddStringToObject(root, "master", mesh_name(f->mesh));
	cJSON_AddNumberToObject(root, "generated_at", (double)wr_wall_ms());
	cJSON_AddNumberToObject(root, "sample_interval_ms",
				f->cfg->stats_interval_ms);
	cJSON_AddNumberToObject(root, "repairs", (double)ms->repairs);
	nodes = cJSON_AddArrayToObject(root, "nodes");
	links = cJSON_AddArrayToObject(root, "links");
	/* ourselves and our links, with the latency we measure */
	o = node_json(f, mesh_name(f->mesh), mesh_url(f->mesh), true, true);
	if (o)
		cJSON_AddItemToArray(nodes, o);
	for (struct mesh_link *l = mesh_links(f->mesh); l; l = l->next)
		add_link(links, mesh_name(f->mesh), l->name, l->latency_ms);
	/* every node we know, and the links its announce names */
	for (size_t i = 1; i < inm_view_count(mesh_view(f->mesh)); i++) {
		const struct inm_node_state *k = inm_view_at(mesh_view(f->mesh),
							     i);

		if (!mesh_alive(f->mesh, k->name))
			continue;
		o = node_json(f, k->name, k->url, k->master, true);
		if (o)
			cJSON_AddItemToArray(nodes, o);
		for (unsigned j = 0; j < k->npeers; j++)
			add_link(links, k->name, k->peers[j],
				 latency_of(ms, k, j));
	}
	/* gone nodes, while their history lasts */
	for (unsigned i = 0; i < ms->nnodes; i++) {
		const char *who = ms->nodes[i].name;

		if (strcmp(who, mesh_name(f->mesh)) &&
		    !mesh_alive(f->mesh, who) &&
		    (o = node_json(f, who, "", false, false)))
			cJSON_AddItemToArray(nodes, o);
	}
	chans = cJSON_AddArrayToObject(root, "channels");
	chan_resv_foreach(f->resv, add_channel, chans);
	fill_subscribers(f, chans);
	txt = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!txt)
		return WR_ENOMEM;
	wr_buf_puts(b, txt);
	free(txt);
	return WR_OK;
}
