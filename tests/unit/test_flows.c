/*
 * tests/unit/test_flows: the flows (flows/) over a real mesh engine whose
 * links are fakes. Every packet the engine queues on a fake link is decoded
 * and kept, every dial and drop recorded; the fake peers' packets go in
 * through the codec and mesh_packet_in(). Covered: the merge of a holder's
 * whole list (an old node's announce, a stamped list-channels answer), the
 * remote connection's decisions, the backoff, the reservation commands and
 * the race rule, the mesh's acknowledgement of an opened channel, healing.
 *
 * Time: mesh_tick() and flows_tick() take now, but some code reads
 * wr_now_ms() itself (command deadlines, the suspect deadline, the remote
 * flow's next round, a link's last frame). So "now" here is wr_now_ms(),
 * and a test moves past a deadline only with a now computed from a
 * wr_now_ms() read after the deadline was set: nothing waits for real
 * time, and real time passing (a slow sanitizer run) changes no verdict.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "flows.h"
/* the flows' own state: the remote flow's backoff is not visible otherwise */
#include "../../flows/internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define REJOIN                             \
	"abcdef0123456789abcdef0123456789" \
	"abcdef0123456789abcdef0123456789"
#define LINKS_MAX 4
#define DIALS_MAX 16

/* ------------------------------------------------------------------ */
/* The fake node: links, dials, clients                                */

struct flink {
	struct mesh_link ml;     /* first: the ops get it back by a cast */
	struct inm_packet *sent; /* every packet queued on it, decoded */
	unsigned nsent, cap;
	unsigned drops;
};

struct dial {
	char name[INM_NAME_MAX + 1];
	char url[256];
	char token[128];
};

struct world {
	struct config cfg;
	struct health_counters ctr;
	struct chan_registry *reg;
	struct mesh *m;
	struct flows *f;
	struct flink links[LINKS_MAX];
	unsigned nlinks;
	struct dial dials[DIALS_MAX];
	unsigned ndials;
	int dial_rc;                       /* what ops.dial answers */
	const char *dialling;              /* "n1,n2": ops.dialling says yes */
	unsigned busy;                     /* what ops.dials says */
	const struct chan_client *waiting; /* flows_ops.waiting says yes */
	unsigned closed;                   /* chan_ops.closed calls */
};

static bool in_csv(const char *csv, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = csv; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !memcmp(p, name, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void op_send(void *ud, struct mesh_link *l, struct wr_msg *m)
{
	struct flink *fl = (struct flink *)l;
	enum inm_drop rc;

	(void)ud;
	if (fl->nsent == fl->cap) {
		fl->cap = fl->cap ? 2 * fl->cap : 64;
		fl->sent = realloc(fl->sent, fl->cap * sizeof(*fl->sent));
		cr_assert_not_null(fl->sent);
	}
	inm_packet_init(&fl->sent[fl->nsent]);
	rc = inm_packet_decode(&fl->sent[fl->nsent], (const char *)m->data,
			       m->len);
	cr_assert_eq(rc, INM_DROP_NONE, "sent on '%s' (%s): %.*s", l->name,
		     inm_drop_name(rc), (int)m->len, (const char *)m->data);
	fl->nsent++;
}

static void op_ping(void *ud, struct mesh_link *l)
{
	(void)ud;
	(void)l;
}

static void op_drop(void *ud, struct mesh_link *l, int code, const char *why)
{
	(void)ud;
	(void)code;
	(void)why;
	((struct flink *)l)->drops++;
}

static int op_dial(void *ud, const char *name, const char *url,
		   const char *token)
{
	struct world *w = ud;
	struct dial *d;

	cr_assert_lt(w->ndials, DIALS_MAX);
	d = &w->dials[w->ndials++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->url, sizeof(d->url), "%s", url);
	snprintf(d->token, sizeof(d->token), "%s", token);
	return w->dial_rc;
}

static bool op_dialling(void *ud, const char *name)
{
	return in_csv(((struct world *)ud)->dialling, name);
}

static unsigned op_dials(void *ud)
{
	return ((struct world *)ud)->busy;
}

static void op_health(void *ud, struct health_result *r)
{
	(void)ud;
	memset(r, 0, sizeof(*r));
}

static unsigned op_clients(void *ud)
{
	(void)ud;
	return 0;
}

static const struct mesh_ops mesh_fake = {
	.send = op_send,
	.ping = op_ping,
	.drop = op_drop,
	.dial = op_dial,
	.dialling = op_dialling,
	.dials = op_dials,
	.health = op_health,
	.clients = op_clients,
};

static bool fo_waiting(void *ud, const struct chan_client *cc)
{
	return ((struct world *)ud)->waiting == cc;
}

static const struct flows_ops flows_fake = { .waiting = fo_waiting };

static void co_wake(struct chan_client *cl, void *arg)
{
	(void)cl;
	(void)arg;
}

static void co_overflow(struct chan_client *cl, void *arg)
{
	(void)cl;
	(void)arg;
}

/* as the node does: a channel that lost its last subscriber is released */
static void co_closed(struct chan_channel *ch, void *arg)
{
	struct world *w = arg;

	w->closed++;
	if (w->f)
		flow_chan_closed(w->f, ch);
}

static const struct chan_ops chan_fake = { co_wake, co_overflow, co_closed };

static void world_open(struct world *w, const char *name)
{
	struct chan_limits lim = { .max_queue_bytes = 1 << 20,
				   .max_subscriptions = 64 };

	memset(w, 0, sizeof(*w));
	wr_log_set_level(WR_LOG_ERROR);
	cr_assert_eq(config_defaults(&w->cfg), WR_OK);
	free(w->cfg.name);
	w->cfg.name = strdup(name);
	cr_assert_not_null(w->cfg.name);
	w->reg = chan_registry_create(&lim, &chan_fake, w);
	cr_assert_not_null(w->reg);
	w->m = mesh_create(&w->cfg, "ws://self/node", w->reg, &w->ctr,
			   &mesh_fake, w);
	cr_assert_not_null(w->m);
	w->f = flows_create(w->m, w->reg, &flows_fake, w);
	cr_assert_not_null(w->f);
}

/* Clients must have been finalised (they may still send unreserves). */
static void world_close(struct world *w)
{
	mesh_cancel_all(w->m);
	flows_destroy(w->f);
	w->f = NULL;
	mesh_destroy(w->m);
	chan_registry_destroy(w->reg);
	config_fini(&w->cfg);
	for (unsigned i = 0; i < w->nlinks; i++) {
		for (unsigned k = 0; k < w->links[i].nsent; k++)
			inm_packet_fini(&w->links[i].sent[k]);
		free(w->links[i].sent);
	}
}

static struct flink *link_up(struct world *w, const char *name, const char *url)
{
	struct flink *l;

	cr_assert_lt(w->nlinks, LINKS_MAX);
	l = &w->links[w->nlinks++];
	snprintf(l->ml.name, sizeof(l->ml.name), "%s", name);
	snprintf(l->ml.url, sizeof(l->ml.url), "%s", url);
	mesh_link_up(w->m, &l->ml);
	return l;
}

/* ------------------------------------------------------------------ */
/* Packets in and out                                                  */

/* JSON from a format, with ' for " to keep the tables readable. */
static cJSON *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cJSON *J(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	cJSON *j;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (char *q = buf; (q = strchr(q, '\'')); q++)
		*q = '"';
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "bad JSON in the test: %s", buf);
	return j;
}

/* Sends the packet @src built (@data taken; @nonce NULL: a new one) to us
 * over @l, through the codec as the node does with a frame. */
static void feed(struct world *w, struct flink *l, const char *src,
		 enum inm_type type, const char *nonce, cJSON *data)
{
	struct inm_packet in, out;
	struct wr_buf b;
	enum inm_drop rc;

	inm_packet_init(&in);
	snprintf(in.source, sizeof(in.source), "%s", src);
	snprintf(in.destination, sizeof(in.destination), "%s",
		 type == INM_EVENT ? "*" : w->cfg.name);
	in.type = type;
	if (nonce)
		snprintf(in.nonce, sizeof(in.nonce), "%s", nonce);
	else
		inm_nonce_new(in.nonce);
	in.data = data;
	wr_buf_init(&b);
	cr_assert_eq(inm_packet_encode(&in, &b), WR_OK);
	inm_packet_init(&out);
	rc = inm_packet_decode(&out, b.p, b.len);
	cr_assert_eq(rc, INM_DROP_NONE, "%s: %.*s", inm_drop_name(rc),
		     (int)b.len, b.p);
	mesh_packet_in(w->m, &l->ml, &out);
	inm_packet_fini(&out);
	inm_packet_fini(&in);
	wr_buf_fini(&b);
}

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The @k-th command @cmd sent on @l at or after index @from, or NULL. */
static const struct inm_packet *sent_cmd(const struct flink *l, const char *cmd,
					 unsigned from, unsigned k)
{
	for (unsigned i = from; i < l->nsent; i++) {
		const struct inm_packet *p = &l->sent[i];
		const char *c = str_of(p->data, "command");

		if (p->type == INM_COMMAND && c && !strcmp(c, cmd) && !k--)
			return p;
	}
	return NULL;
}

static unsigned count_cmd(const struct flink *l, const char *cmd, unsigned from)
{
	unsigned n = 0;

	while (sent_cmd(l, cmd, from, n))
		n++;
	return n;
}

/* A command from @src over @l; returns the answer we sent back (its data). */
static const cJSON *ask(struct world *w, struct flink *l, const char *src,
			cJSON *cmd)
{
	char nonce[INM_NONCE_LEN + 1];
	unsigned from = l->nsent;

	inm_nonce_new(nonce);
	feed(w, l, src, INM_COMMAND, nonce, cmd);
	for (unsigned i = from; i < l->nsent; i++)
		if (l->sent[i].type == INM_RESPONSE &&
		    !strcmp(l->sent[i].nonce, nonce)) {
			cr_assert_str_eq(l->sent[i].destination, src);
			return l->sent[i].data;
		}
	cr_assert_fail("no answer on '%s'", l->ml.name);
	return NULL;
}

/* "ok", or the reason of a refusal */
static const char *verdict(const cJSON *answer)
{
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(answer, "ok")))
		return "ok";
	return str_of(answer, "reason") ? str_of(answer, "reason") : "?";
}

/* @src answers the command @cmd (which we sent) with @data (taken). */
static void answer(struct world *w, struct flink *l, const char *src,
		   const struct inm_packet *cmd, cJSON *data)
{
	cr_assert_not_null(cmd);
	feed(w, l, src, INM_RESPONSE, cmd->nonce, data);
}

/* One node-state record, sent by the peer on @l. @peers: "n1,n2". */
static void record(struct world *w, struct flink *l, const char *name,
		   uint64_t version, const char *peers, const char *url,
		   const char *rejoin, uint32_t nchannels)
{
	struct inm_node_state st;
	cJSON *d = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *o;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", name);
	snprintf(st.url, sizeof(st.url), "%s", url ? url : "");
	st.incarnation = 1;
	st.version = version;
	st.nchannels = nchannels;
	if (rejoin)
		snprintf(st.rejoin, sizeof(st.rejoin), "%s", rejoin);
	for (const char *p = peers; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		snprintf(st.peers[st.npeers], sizeof(st.peers[0]), "%.*s",
			 (int)len, p);
		st.latency[st.npeers++] = -1.0;
		p = end ? end + 1 : NULL;
	}
	o = inm_state_json(&st);
	cr_assert(d && arr && o);
	cJSON_AddItemToArray(arr, o);
	cJSON_AddStringToObject(d, "event", "node-state");
	cJSON_AddItemToObject(d, "states", arr);
	feed(w, l, l->ml.name, INM_EVENT, NULL, d);
}

/* ------------------------------------------------------------------ */
/* Channels                                                            */

/* The reservation table as "name=holder,holder;..." in name order. */
struct dumper {
	char *out;
	size_t n, off;
};

static void dump_one(const struct chan_resv_entry *e, void *arg)
{
	struct dumper *d = arg;
	size_t len;
	const char *name = chan_resv_name(e, &len);

	d->off += (size_t)snprintf(d->out + d->off, d->n - d->off,
				   "%s%.*s=", d->off ? ";" : "", (int)len,
				   name);
	for (unsigned i = 0; i < chan_resv_nholders(e); i++)
		d->off += (size_t)snprintf(d->out + d->off, d->n - d->off,
					   "%s%s", i ? "," : "",
					   chan_resv_holder(e, i));
}

static const char *dump(struct world *w)
{
	static char buf[1024];
	struct dumper d = { buf, sizeof(buf), 0 };

	buf[0] = '\0';
	chan_resv_foreach(flows_resv(w->f), dump_one, &d);
	return buf;
}

struct opened {
	unsigned calls;
	bool all;
};

static void on_opened(void *ud, bool all)
{
	struct opened *o = ud;

	o->calls++;
	o->all = all;
}

/* A local client opens @name (@hash: 64 hex or NULL) as the node does:
 * create, join, then tell the mesh. Returns flow_chan_opened's verdict. */
static bool open_local(struct world *w, const char *name, const char *hash,
		       int64_t created, struct chan_client *cl,
		       struct opened *o)
{
	uint8_t h[CHAN_HASH_LEN];
	struct chan_channel *ch;

	if (hash)
		cr_assert_eq(wr_unhex(h, hash, sizeof(h)), WR_OK);
	cr_assert_eq(chan_create(w->reg, name, strlen(name), hash ? h : NULL,
				 created, &ch),
		     WR_OK);
	cr_assert_eq(chan_join(w->reg, ch, cl), WR_OK);
	return flow_chan_opened(w->f, ch, o ? on_opened : NULL, o);
}

/* @src reserves channels [[name, created, holder], ...] (open, no hash). */
static void seed(struct world *w, struct flink *l, const char *src,
		 const char *held)
{
	cJSON *arr = J("%s", held), *it;

	cJSON_ArrayForEach(it, arr) {
		const char *holder = cJSON_GetArrayItem(it, 2)->valuestring;
		const cJSON *a;

		/* a holder must be a node a knows (linked, or alive in its
		 * view): the others are linked for the test */
		if (strcmp(holder, src) && !mesh_link_named(w->m, holder)) {
			char url[64];

			snprintf(url, sizeof(url), "ws://%s/node", holder);
			link_up(w, holder, url);
		}
		a = ask(w, l, src,
			J("{'command':'reserve-channel','channel':'%s',"
			  "'password':null,'created':%.0f,'holder':'%s'}",
			  cJSON_GetArrayItem(it, 0)->valuestring,
			  cJSON_GetArrayItem(it, 1)->valuedouble,
			  cJSON_GetArrayItem(it, 2)->valuestring));

		cr_assert_str_eq(verdict(a), "ok");
	}
	cJSON_Delete(arr);
}

/* ------------------------------------------------------------------ */
/* 1. A holder's whole list: flow_chan_announced                       */

/* The list-channels sent on @l with "stamp": true (sync.c's pull). */
static const struct inm_packet *stamped(const struct flink *l, unsigned *n)
{
	const struct inm_packet *p, *last = NULL;

	*n = 0;
	for (unsigned k = 0; (p = sent_cmd(l, "list-channels", 0, k)); k++)
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p->data,
								  "stamp"))) {
			last = p;
			(*n)++;
		}
	return last;
}

/*
 * b holds what "held" reserves (before the list), then lists "chans" at
 * "at" (0: no "at"). Expected tables after the list came as an old node's
 * announce, and as the answer to our stamped list-channels.
 */
static const struct {
	const char *what;
	const char *held;
	const char *chans;
	int64_t at;
	const char *announce;
	const char *list;
} lists[] = {
	{ "listed channels are added", "[]",
	  "[{'name':'x','password':null,'created':100},"
	  "{'name':'y','password':'" H1 "','created':200}]",
	  1000, "x=b;y=b", "x=b;y=b" },
	{ "opened before at and not listed: removed; opened after: kept",
	  "[['old1',1000,'b'],['old2',1000,'b'],['new1',5000,'b'],"
	  "['shared',1000,'b'],['shared',1000,'c']]",
	  "[{'name':'old2','password':null,'created':1000}]", 3000,
	  "new1=b;old2=b;shared=c", "new1=b;old2=b;shared=c" },
	{ "opened exactly at at: kept", "[['x',3000,'b']]", "[]", 3000, "x=b",
	  "x=b" },
	{ "an empty list at at: everything older goes",
	  "[['x',100,'b'],['y',200,'b']]", "[]", 1000, "", "" },
	{ "other holders' channels are untouched", "[['x',100,'c']]", "[]",
	  1000, "x=c", "x=c" },
	/* an announce without at (3.6 names none) is the whole truth; a
	 * list-channels answer without at (an old node ignoring "stamp")
	 * removes nothing */
	{ "no at: announce replaces the set, an unstamped answer only adds",
	  "[['old1',1000,'b'],['new1',5000,'b'],"
	  "['shared',1000,'b'],['shared',1000,'c']]",
	  "[{'name':'x','password':null,'created':1000}]", 0, "shared=c;x=b",
	  "new1=b;old1=b;shared=b,c;x=b" },
	{ "malformed entries are skipped", "[]",
	  "['x',5,null,{'name':5,'created':1},"
	  "{'name':'','password':null,'created':1},"
	  "{'name':'bad-pw','password':'zz','created':1},"
	  "{'name':'bad-created','password':null,'created':'1'},"
	  "{'name':'bad-holders','password':null,'created':1,"
	  "'holders':'b'},"
	  "{'name':'no-created','password':null},"
	  /* no int64_t holds it: it used to become INT64_MIN on x86 and
	   * win every race (the cast is undefined behaviour) */
	  "{'name':'huge-created','password':null,'created':1e300},"
	  "{'name':'good','password':null,'created':1}]",
	  1000, "good=b", "good=b" },
};

Test(flows, announce_merge)
{
	for (size_t i = 0; i < N(lists); i++) {
		struct world w;
		struct flink *b;
		cJSON *d;

		world_open(&w, "a");
		b = link_up(&w, "b", "ws://b/node");
		seed(&w, b, "b", lists[i].held);
		d = J("{'event':'announce','name':'b','url':'ws://b/node',"
		      "'peers':['a'],'master':false,'channels':%s}",
		      lists[i].chans);
		if (lists[i].at)
			cJSON_AddNumberToObject(d, "at", (double)lists[i].at);
		feed(&w, b, "b", INM_EVENT, NULL, d);
		cr_expect_str_eq(dump(&w), lists[i].announce, "%s: got %s",
				 lists[i].what, dump(&w));
		world_close(&w);
	}
}

Test(flows, stamped_list_merge)
{
	for (size_t i = 0; i < N(lists); i++) {
		struct world w;
		struct flink *b;
		const struct inm_packet *pull;
		int64_t now;
		unsigned n;
		cJSON *d;

		world_open(&w, "a");
		b = link_up(&w, "b", "ws://b/node");
		/* a record whose channel count differs from the table: the
		 * check pulls b's list as soon as b is reachable */
		record(&w, b, "b", 1, "a", "ws://b/node", NULL, 99);
		seed(&w, b, "b", lists[i].held);
		now = wr_now_ms();
		mesh_tick(w.m, now);
		flows_tick(w.f, now);
		/* onboarding asked list-channels too, unstamped */
		cr_assert_eq(count_cmd(b, "list-channels", 0), 2);
		pull = stamped(b, &n);
		cr_assert_eq(n, 1, "%s: stamped list-channels", lists[i].what);
		d = J("{'ok':true,'channels':%s}", lists[i].chans);
		if (lists[i].at)
			cJSON_AddNumberToObject(d, "at", (double)lists[i].at);
		answer(&w, b, "b", pull, d);
		cr_expect_str_eq(dump(&w), lists[i].list, "%s: got %s",
				 lists[i].what, dump(&w));
		/* answered: b's check is done until its next record */
		flows_tick(w.f, wr_now_ms());
		stamped(b, &n);
		cr_expect_eq(n, 1, "%s: pulled again", lists[i].what);
		world_close(&w);
	}
}

/* ------------------------------------------------------------------ */
/* 2. The remote connection (5.3)                                      */

/* a is linked to b; b's list-nodes answer names "nodes". */
static const struct {
	const char *what;
	int max_peers;
	unsigned busy;        /* ops.dials() */
	const char *dialling; /* ops.dialling() */
	const char *nodes;
	bool lists;        /* list-nodes sent at all */
	const char *asked; /* get-node-connection, in order */
} remotes[] = {
	{ "every candidate", 8, 0, "", "['a','b','c','d','e']", true, "c,d,e" },
	{ "not one being dialled", 8, 0, "d", "['c','d','e']", true, "c,e" },
	{ "up to the room left", 3, 0, "", "['c','d','e']", true, "c,d" },
	{ "room counts the dials on their way", 4, 1, "", "['c','d','e']", true,
	  "c,d" },
	{ "one place left", 3, 1, "", "['c','d','e']", true, "c" },
	{ "no room: no list-nodes", 3, 2, "", "['c']", false, "" },
	{ "bad names skipped", 8, 0, "", "[5,'','bad name','*',null,'c']", true,
	  "c" },
	{ "a name once", 8, 0, "", "['c','c','d']", true, "c,d" },
	{ "at most FLOW_ASKING_MAX at once", 32, 0, "",
	  "['n1','n2','n3','n4','n5','n6','n7','n8','n9','n10']", true,
	  "n1,n2,n3,n4,n5,n6,n7,n8" },
	{ "nodes missing", 8, 0, "", "null", true, "" },
};

/* The "node" of every get-node-connection sent on @l, "n1,n2". */
static const char *asked(const struct flink *l)
{
	static char buf[256];
	const struct inm_packet *p;
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned k = 0; (p = sent_cmd(l, "get-node-connection", 0, k));
	     k++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
					k ? "," : "", str_of(p->data, "node"));
	return buf;
}

Test(flows, remote_asks_candidates)
{
	for (size_t i = 0; i < N(remotes); i++) {
		struct world w;
		struct flink *b;

		world_open(&w, "a");
		w.cfg.max_peers = remotes[i].max_peers;
		w.busy = remotes[i].busy;
		w.dialling = remotes[i].dialling;
		b = link_up(&w, "b", "ws://b/node");
		flows_tick(w.f, wr_now_ms());
		cr_expect_eq(count_cmd(b, "list-nodes", 0),
			     remotes[i].lists ? 1 : 0, "%s", remotes[i].what);
		if (remotes[i].lists)
			answer(&w, b, "b", sent_cmd(b, "list-nodes", 0, 0),
			       J("{'ok':true,'nodes':%s}", remotes[i].nodes));
		cr_expect_str_eq(asked(b), remotes[i].asked, "%s: got %s",
				 remotes[i].what, asked(b));
		for (unsigned k = 0; sent_cmd(b, "get-node-connection", 0, k);
		     k++)
			cr_expect_str_eq(sent_cmd(b, "get-node-connection", 0,
						  k)
						 ->destination,
					 "b");
		cr_expect_eq(w.ndials, 0);
		world_close(&w);
	}
}

/* get-node-connection for c was sent to b; then "reply" (NULL: none). */
static const struct {
	const char *what;
	const char *reply;
	int dial_rc;
	bool c_linked; /* c linked meanwhile */
	bool dials;
	bool backoff;
} connections[] = {
	{ "host and token: one dial",
	  "{'ok':true,'host':'ws://c:9/node',"
	  "'token':'t0k3n'}",
	  WR_OK, false, true, false },
	{ "refused: no dial, backoff",
	  "{'ok':false,'reason':"
	  "'target not connected'}",
	  WR_OK, false, false, true },
	{ "no token: no dial, backoff", "{'ok':true,'host':'ws://c:9/node'}",
	  WR_OK, false, false, true },
	{ "empty host: no dial, backoff",
	  "{'ok':true,'host':'',"
	  "'token':'t0k3n'}",
	  WR_OK, false, false, true },
	{ "timeout: no dial, backoff", NULL, WR_OK, false, false, true },
	{ "the dial fails at once: backoff",
	  "{'ok':true,'host':"
	  "'ws://c:9/node','token':'t0k3n'}",
	  WR_EIO, false, true, true },
	{ "linked meanwhile: no dial, no backoff",
	  "{'ok':true,'host':"
	  "'ws://c:9/node','token':'t0k3n'}",
	  WR_OK, true, false, false },
};

Test(flows, remote_answer_decides_dial)
{
	for (size_t i = 0; i < N(connections); i++) {
		struct world w;
		struct flink *b;
		const struct inm_packet *ask_c;
		const char *reply = connections[i].reply;
		unsigned attempt;
		int64_t before, cap;

		world_open(&w, "a");
		w.dial_rc = connections[i].dial_rc;
		b = link_up(&w, "b", "ws://b/node");
		flows_tick(w.f, wr_now_ms());
		answer(&w, b, "b", sent_cmd(b, "list-nodes", 0, 0),
		       J("{'ok':true,'nodes':['c']}"));
		ask_c = sent_cmd(b, "get-node-connection", 0, 0);
		cr_assert_not_null(ask_c, "%s", connections[i].what);
		cr_assert_str_eq(ask_c->destination, "b");
		cr_assert_eq(w.f->nasking, 1);
		attempt = w.f->remote_attempt;
		if (connections[i].c_linked)
			link_up(&w, "c", "ws://c:9/node");
		before = wr_now_ms();
		if (reply)
			answer(&w, b, "b", ask_c, J("%s", reply));
		else
			/* the deadline was set before this read */
			mesh_tick(w.m, wr_now_ms() + w.cfg.command_timeout_ms);
		cr_expect_eq(w.ndials, connections[i].dials ? 1 : 0, "%s",
			     connections[i].what);
		if (connections[i].dials) {
			cr_expect_str_eq(w.dials[0].name, "c");
			cr_expect_str_eq(w.dials[0].url, "ws://c:9/node");
			cr_expect_str_eq(w.dials[0].token, "t0k3n");
		}
		cr_expect_eq(w.f->remote_attempt,
			     attempt + connections[i].backoff, "%s",
			     connections[i].what);
		if (connections[i].backoff) {
			/* later(): now + mesh_backoff_ms(attempt) */
			cap = (int64_t)w.cfg.reconnect_min_ms << attempt;
			if (cap > w.cfg.reconnect_max_ms)
				cap = w.cfg.reconnect_max_ms;
			cr_expect_geq(w.f->remote_next_ms, before);
			cr_expect_leq(w.f->remote_next_ms, wr_now_ms() + cap);
		}
		cr_expect_eq(w.f->nasking, 0);
		cr_expect_eq(w.f->remote_inflight, 0);
		world_close(&w);
	}
}

/* ------------------------------------------------------------------ */
/* 3. The backoff of 3.1                                               */

static const struct {
	int min, max;
	unsigned attempt;
	int64_t cap;
} backoffs[] = {
	{ 500, 30000, 0, 500 },
	{ 500, 30000, 1, 1000 },
	{ 500, 30000, 2, 2000 },
	{ 500, 30000, 5, 16000 },
	{ 500, 30000, 6, 30000 },
	{ 500, 30000, 7, 30000 },
	{ 500, 30000, 64, 30000 },
	{ 500, 30000, 4000000000u, 30000 },
	{ 1, 1, 0, 1 },
	{ 1, 1, 100, 1 },
	{ 7, 1000, 3, 56 },
	{ 1, 86400000, 40, 86400000 },
	{ 1000, 1000, 9, 1000 },
};

Test(flows, backoff_within_cap)
{
	struct world w;

	world_open(&w, "a");
	for (size_t i = 0; i < N(backoffs); i++) {
		int64_t lo = INT64_MAX, hi = -1;

		w.cfg.reconnect_min_ms = backoffs[i].min;
		w.cfg.reconnect_max_ms = backoffs[i].max;
		for (int k = 0; k < 2000; k++) {
			int64_t ms = mesh_backoff_ms(w.m, backoffs[i].attempt);

			cr_assert(ms >= 0 && ms <= backoffs[i].cap,
				  "min %d max %d attempt %u: %lld > %lld",
				  backoffs[i].min, backoffs[i].max,
				  backoffs[i].attempt, (long long)ms,
				  (long long)backoffs[i].cap);
			lo = ms < lo ? ms : lo;
			hi = ms > hi ? ms : hi;
		}
		/* full jitter: 2000 uniform samples cover both halves (each
		 * miss has odds of 2^-2000 or less) */
		if (backoffs[i].cap >= 2) {
			cr_expect_leq(lo, backoffs[i].cap / 2, "row %zu", i);
			cr_expect_geq(hi, backoffs[i].cap / 2, "row %zu", i);
		}
	}
	world_close(&w);
}

/* ------------------------------------------------------------------ */
/* 4. reserve-channel and unreserve-channel                            */

/*
 * a has "mine" open locally (H1, created 2000); b holds "theirs" (open,
 * created 500). Each row: one command from b, the answer, the table.
 */
static const struct {
	const char *cmd;
	const char *verdict;
	const char *table;
} commands[] = {
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'created':100}",
	  "ok", "mine=a;theirs=b;x=b" },
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'created':100,'holder':'c'}",
	  "ok", "mine=a;theirs=b;x=c" },
	{ "{'command':'reserve-channel','channel':'x','password':'" H2
	  "','holder':null}",
	  "ok", "mine=a;theirs=b;x=b" },
	{ "{'command':'reserve-channel','password':null}",
	  "missing field: channel", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'','password':null}",
	  "missing field: channel", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':7,'password':null}",
	  "missing field: channel", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'x','password':'zz'}",
	  "missing field: password", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'created':'soon'}",
	  "missing field: created", "mine=a;theirs=b" },
	/* beyond int64_t: it used to be cast (undefined behaviour; INT64_MIN
	 * on x86, so it won the race for "mine" and evicted a's subscribers) */
	{ "{'command':'reserve-channel','channel':'mine','password':'" H2
	  "','created':1e300}",
	  "missing field: created", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'created':-1e19}",
	  "missing field: created", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'holder':'no such'}",
	  "missing field: holder", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'holder':3}",
	  "missing field: holder", "mine=a;theirs=b" },
	/* a peer with the mesh token cannot make holders up (they would
	 * never be swept) nor claim a time far ahead of our clock */
	{ "{'command':'reserve-channel','channel':'mine','password':'" H2
	  "','created':1,'holder':'zed'}",
	  "invalid reservation", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'created':9e15}",
	  "invalid reservation", "mine=a;theirs=b" },
	/* only a says what a holds */
	{ "{'command':'reserve-channel','channel':'x','password':null,"
	  "'created':1,'holder':'a'}",
	  "ok", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'mine','password':'" H1
	  "','created':3000}",
	  "ok", "mine=a,b;theirs=b" },
	{ "{'command':'reserve-channel','channel':'mine','password':'" H2
	  "','created':3000}",
	  "channel already reserved", "mine=a;theirs=b" },
	{ "{'command':'reserve-channel','channel':'theirs','password':"
	  "null,'created':900,'holder':'c'}",
	  "ok", "mine=a;theirs=b,c" },
	{ "{'command':'unreserve-channel'}", "missing field: channel",
	  "mine=a;theirs=b" },
	{ "{'command':'unreserve-channel','channel':'theirs',"
	  "'holder':'-bad-name-\\u00e9'}",
	  "missing field: holder", "mine=a;theirs=b" },
	{ "{'command':'unreserve-channel','channel':'theirs'}", "ok",
	  "mine=a" },
	{ "{'command':'unreserve-channel','channel':'theirs',"
	  "'holder':'c'}",
	  "ok", "mine=a;theirs=b" },
	{ "{'command':'unreserve-channel','channel':'nothing'}", "ok",
	  "mine=a;theirs=b" },
	{ "{'command':'unreserve-channel','channel':'mine'}",
	  "channel still open", "mine=a;theirs=b" },
	{ "{'command':'unreserve-channel','channel':'mine',"
	  "'holder':'a'}",
	  "channel still open", "mine=a;theirs=b" },
};

Test(flows, reservation_command_answers)
{
	for (size_t i = 0; i < N(commands); i++) {
		struct world w;
		struct chan_client cl;
		struct flink *b;
		const char *got;

		world_open(&w, "a");
		b = link_up(&w, "b", "ws://b/node");
		link_up(&w, "c", "ws://c/node"); /* a holder a knows */
		chan_client_init(&cl, NULL);
		open_local(&w, "mine", H1, 2000, &cl, NULL);
		seed(&w, b, "b", "[['theirs',500,'b']]");
		cr_assert_str_eq(dump(&w), "mine=a;theirs=b");
		got = verdict(ask(&w, b, "b", J("%s", commands[i].cmd)));
		cr_expect_str_eq(got, commands[i].verdict, "%s: got %s",
				 commands[i].cmd, got);
		cr_expect_str_eq(dump(&w), commands[i].table, "%s: got %s",
				 commands[i].cmd, dump(&w));
		chan_client_fini(w.reg, &cl);
		world_close(&w);
	}
}

Test(flows, unknown_holder_dropped_after_deadline)
{
	struct world w;
	struct flink *b;
	int64_t t0, due;

	world_open(&w, "a");
	b = link_up(&w, "b", "ws://b/node");
	/* c is reachable through b; "ghost" is nowhere */
	record(&w, b, "b", 1, "a,c", "ws://b/node", NULL, 0);
	record(&w, b, "c", 1, "b", "ws://c/node", NULL, 0);
	t0 = wr_now_ms();
	seed(&w, b, "b", "[['x',100,'ghost'],['y',100,'c']]");
	due = t0 + w.cfg.peer_timeout_ms + w.cfg.announce_interval_ms;
	flows_tick(w.f, due - 1); /* the deadline is at least this late */
	cr_expect_str_eq(dump(&w), "x=ghost;y=c");
	/* the deadline was set before this read */
	flows_tick(w.f, wr_now_ms() + w.cfg.peer_timeout_ms +
				w.cfg.announce_interval_ms);
	cr_expect_str_eq(dump(&w), "y=c");
	world_close(&w);
}

static bool holds_text(const struct wr_msg *frame, const char *s)
{
	return memmem(frame->data, frame->len, s, strlen(s)) != NULL;
}

Test(flows, race_evicts_local_subscribers)
{
	struct world w;
	struct chan_client waiting, plain;
	struct flink *b;
	const struct chan_resv_entry *e;
	struct wr_msg *frame;
	uint8_t h2[CHAN_HASH_LEN];
	unsigned from;

	world_open(&w, "a");
	b = link_up(&w, "b", "ws://b/node");
	chan_client_init(&waiting, NULL);
	chan_client_init(&plain, NULL);
	open_local(&w, "mine", H1, 2000, &waiting, NULL);
	cr_assert_eq(chan_join(w.reg, chan_find(w.reg, "mine", 4), &plain),
		     WR_OK);
	w.waiting = &waiting; /* its subscribe is not answered yet */
	from = b->nsent;
	/* b opened it first with another password: b wins (4.4) */
	cr_expect_str_eq(verdict(ask(&w, b, "b",
				     J("{'command':'reserve-channel','channel':'mine',"
				       "'password':'" H2 "','created':1000}"))),
			 "ok");
	cr_expect_null(chan_find(w.reg, "mine", 4));
	cr_expect_eq(w.closed, 1);
	/* a lost race is no close: nobody is told to unreserve */
	cr_expect_eq(count_cmd(b, "unreserve-channel", from), 0);
	cr_expect_eq(waiting.q_len, 0);
	cr_assert_eq(plain.q_len, 1);
	frame = chan_client_peek(&plain, 0);
	cr_expect(holds_text(frame, "\"type\":\"unsubscribed\""));
	cr_expect(holds_text(frame, "\"channel\":\"mine\""));
	cr_expect(holds_text(frame, "\"reason\":\"channel reservation lost\""));
	cr_expect_str_eq(dump(&w), "mine=b");
	e = chan_resv_find(flows_resv(w.f), "mine", 4);
	cr_assert_not_null(e);
	cr_assert_eq(wr_unhex(h2, H2, sizeof(h2)), WR_OK);
	cr_expect_not_null(chan_resv_hash(e));
	cr_expect_eq(memcmp(chan_resv_hash(e), h2, sizeof(h2)), 0);
	chan_client_fini(w.reg, &waiting);
	chan_client_fini(w.reg, &plain);
	world_close(&w);
}

/* ------------------------------------------------------------------ */
/* 5. flow_chan_opened: the mesh's acknowledgement                     */

static const struct {
	const char *what;
	bool links;         /* b and c linked */
	bool records;       /* and known reachable */
	const char *ok;     /* who answers ok */
	const char *refuse; /* who answers "channel already reserved" */
	bool timeout;       /* then the deadline passes */
	bool told;          /* flow_chan_opened's verdict */
	unsigned calls;
	bool all;
} openings[] = {
	{ "no link: nobody told, no callback", false, false, "", "", true,
	  false, 0, false },
	{ "nobody known: done at once", true, false, "", "", false, true, 1,
	  true },
	{ "every node answers", true, true, "b,c", "", false, true, 1, true },
	{ "a refusal is an answer", true, true, "b", "c", false, true, 1,
	  true },
	{ "one answer, then the timeout", true, true, "b", "", true, true, 1,
	  false },
	{ "no answer, then the timeout", true, true, "", "", true, true, 1,
	  false },
	{ "no answer yet: no callback", true, true, "", "", false, true, 0,
	  false },
};

Test(flows, opened_acknowledged)
{
	for (size_t i = 0; i < N(openings); i++) {
		struct world w;
		struct chan_client cl;
		struct opened o = { 0, false };
		struct flink *l[2] = { NULL, NULL };
		bool told;

		world_open(&w, "a");
		chan_client_init(&cl, NULL);
		if (openings[i].links) {
			l[0] = link_up(&w, "b", "ws://b/node");
			l[1] = link_up(&w, "c", "ws://c/node");
		}
		if (openings[i].records) {
			record(&w, l[0], "b", 1, "a", "ws://b/node", NULL, 0);
			record(&w, l[1], "c", 1, "a", "ws://c/node", NULL, 0);
		}
		told = open_local(&w, "room", H1, 1234, &cl, &o);
		cr_expect_eq(told, openings[i].told, "%s", openings[i].what);
		cr_expect_str_eq(dump(&w), "room=a");
		for (int k = 0; k < 2 && l[k]; k++) {
			const struct inm_packet *p;

			cr_assert_eq(count_cmd(l[k], "reserve-channel", 0), 1,
				     "%s", openings[i].what);
			p = sent_cmd(l[k], "reserve-channel", 0, 0);
			cr_expect_str_eq(p->destination, "*");
			cr_expect_str_eq(str_of(p->data, "channel"), "room");
			cr_expect_str_eq(str_of(p->data, "holder"), "a");
			cr_expect_str_eq(str_of(p->data, "password"), H1);
			cr_expect_eq(cJSON_GetObjectItemCaseSensitive(p->data,
								      "created")
					     ->valuedouble,
				     1234);
			if (in_csv(openings[i].ok, l[k]->ml.name))
				answer(&w, l[k], l[k]->ml.name, p,
				       J("{'ok':true}"));
			if (in_csv(openings[i].refuse, l[k]->ml.name))
				answer(&w, l[k], l[k]->ml.name, p,
				       J("{'ok':false,'reason':"
					 "'channel already reserved'}"));
		}
		if (openings[i].timeout)
			/* a far-future now: every deadline is past (the
			 * silent fake links are dropped too, unseen here) */
			mesh_tick(w.m, wr_now_ms() + 24 * 3600 * 1000);
		cr_expect_eq(o.calls, openings[i].calls, "%s",
			     openings[i].what);
		cr_expect_eq(o.all, openings[i].all, "%s", openings[i].what);
		chan_client_fini(w.reg, &cl);
		world_close(&w);
		/* world_close times out whatever still waits: once at most */
		cr_expect_leq(o.calls, 1, "%s", openings[i].what);
	}
}

/* ------------------------------------------------------------------ */
/* 6. Healing                                                          */

/*
 * self linked to b; b linked to c, then b loses c: c is lost (in the view,
 * unreachable). @self decides whether we are the smallest reachable name.
 */
static const struct {
	const char *what;
	const char *self;
	const char *url;    /* c's */
	const char *rejoin; /* c's */
	int64_t after;      /* ms after c was found lost */
	const char *token;  /* the dial's token; NULL: no dial */
} heals[] = {
	{ "the leader dials with c's rejoin token", "a", "ws://c/node", REJOIN,
	  2501, REJOIN },
	{ "no rejoin token: node.token", "a", "ws://c/node", NULL, 2501,
	  "static-token" },
	{ "not the leader: b dials", "m", "ws://c/node", REJOIN, 2501, NULL },
	{ "no url: not dialable", "a", "", REJOIN, 2501, NULL },
	{ "within the grace: not yet", "a", "ws://c/node", REJOIN, 2000, NULL },
	{ "lost too long ago", "a", "ws://c/node", REJOIN, 10 * 60 * 1000 + 1,
	  NULL },
};

Test(flows, heal_dials_lost_node)
{
	for (size_t i = 0; i < N(heals); i++) {
		struct world w;
		struct flink *b;
		const char *self = heals[i].self;
		char peers[64];
		int64_t lost;

		world_open(&w, self);
		w.cfg.token = strdup("static-token");
		b = link_up(&w, "b", "ws://b/node");
		snprintf(peers, sizeof(peers), "%s,c", self);
		record(&w, b, "b", 1, peers, "ws://b/node", NULL, 0);
		record(&w, b, "c", 1, "b", heals[i].url, heals[i].rejoin, 0);
		mesh_tick(w.m, wr_now_ms());
		cr_assert(inm_view_reachable(mesh_view(w.m), "c"));
		record(&w, b, "b", 2, self, "ws://b/node", NULL, 0);
		lost = wr_now_ms();
		mesh_tick(w.m, lost); /* the sweep notes since when */
		cr_assert_not(inm_view_reachable(mesh_view(w.m), "c"));
		flows_tick(w.f, lost + heals[i].after);
		cr_expect_eq(w.ndials, heals[i].token ? 1 : 0, "%s",
			     heals[i].what);
		cr_expect_eq(w.ctr.heal_dials, w.ndials);
		if (heals[i].token && w.ndials) {
			cr_expect_str_eq(w.dials[0].name, "c");
			cr_expect_str_eq(w.dials[0].url, heals[i].url);
			cr_expect_str_eq(w.dials[0].token, heals[i].token);
		}
		world_close(&w);
	}
}

/*
 * A round visits each record once. The view here holds c before b (the
 * order records came in), so the round starts at c: it used to visit that
 * first slot again at its end and dial c twice (flows/heal.c's loop ran n
 * times over the n - 1 records that are not self).
 */
Test(flows, heal_dials_once_per_round)
{
	struct world w;
	struct flink *b;
	int64_t lost;

	world_open(&w, "a");
	b = link_up(&w, "b", "ws://b/node");
	record(&w, b, "c", 1, "b", "ws://c/node", REJOIN, 0);
	record(&w, b, "b", 1, "a,c", "ws://b/node", NULL, 0);
	cr_assert_str_eq(inm_view_at(mesh_view(w.m), 1)->name, "c");
	mesh_tick(w.m, wr_now_ms());
	record(&w, b, "b", 2, "a", "ws://b/node", NULL, 0);
	lost = wr_now_ms();
	mesh_tick(w.m, lost);
	flows_tick(w.f, lost + w.cfg.announce_interval_ms);
	cr_expect_eq(w.ndials, 1);
	cr_expect_eq(w.ctr.heal_dials, 1);
	cr_expect_str_eq(w.dials[0].name, "c");
	world_close(&w);
}

/* A record's clock is bounded by ours: one announce with "at": 9e15 (or a
 * record from the far future) must not freeze a node's later records. */
Test(flows, record_times_bounded)
{
	struct inm_node_state st;
	int64_t now = wr_wall_ms();

	memset(&st, 0, sizeof(st));
	st.legacy = true;
	st.version = (uint64_t)now;
	cr_expect(mesh_record_time_ok(&st, now));
	st.version = (uint64_t)(now + MESH_SKEW_MS + 1);
	cr_expect_not(mesh_record_time_ok(&st, now));
	st.version = UINT64_C(9000000000000000);
	cr_expect_not(mesh_record_time_ok(&st, now));

	st.legacy = false;
	st.incarnation = now - 1000;
	st.version = 5;
	cr_expect(mesh_record_time_ok(&st, now));
	st.version = 1000 + MESH_SKEW_MS + MESH_VERSION_SLACK;
	cr_expect(mesh_record_time_ok(&st, now));
	st.version = UINT64_C(9000000000000000);
	cr_expect_not(mesh_record_time_ok(&st, now));
	st.incarnation = now + MESH_SKEW_MS + 1;
	st.version = 1;
	cr_expect_not(mesh_record_time_ok(&st, now));
}
