/*
 * tests/unit/test_inm_view: the mesh view — node-state records on the wire
 * (every malformed field, round trips, digests), merge ordering and the
 * table bound, two-way edges and reachability, the sweep's UP/GONE/forget
 * timing with explicit now_ms, shortest-path next hops with the name tie
 * rule, tree hops checked against a model of the tree, and the view digest.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inm.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define HEX16 "0123456789abcdef"
#define HEX64 HEX16 HEX16 HEX16 HEX16
#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16
#define X256 X64 X64 X64 X64

#define T0 1000000 /* a monotonic clock well away from 0 */
#define GRACE 500
#define FORGET 10000

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* A record for @name listing @peers (space-separated names). */
static struct inm_node_state rec(const char *name, int64_t inc, uint64_t ver,
				 const char *peers)
{
	struct inm_node_state st;
	char buf[1024];
	char *save = NULL;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", name);
	snprintf(st.url, sizeof(st.url), "ws://%s:1", name);
	st.incarnation = inc;
	st.version = ver;
	snprintf(buf, sizeof(buf), "%s", peers);
	for (char *p = strtok_r(buf, " ", &save); p;
	     p = strtok_r(NULL, " ", &save)) {
		cr_assert_lt(st.npeers, INM_VIEW_PEERS_MAX);
		snprintf(st.peers[st.npeers], INM_NAME_MAX + 1, "%s", p);
		st.latency[st.npeers++] = -1.0;
	}
	return st;
}

/*
 * A topology: node names (in name order, so index order is the tie rule's
 * order) and two-way links "x:y x:z ...".
 */
#define TOPO_MAX 8
struct topo {
	size_t n;
	const char *names[TOPO_MAX];
	const char *links;
};

static int topo_index(const struct topo *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->names[i], name))
			return (int)i;
	return -1;
}

/* adj[i][j]: i and j are linked. */
static void topo_adj(const struct topo *t, bool adj[TOPO_MAX][TOPO_MAX])
{
	char buf[512], *save = NULL;

	memset(adj, 0, sizeof(bool) * TOPO_MAX * TOPO_MAX);
	snprintf(buf, sizeof(buf), "%s", t->links);
	for (char *p = strtok_r(buf, " ", &save); p;
	     p = strtok_r(NULL, " ", &save)) {
		char *colon = strchr(p, ':');
		int a, b;

		cr_assert_not_null(colon, "bad link '%s'", p);
		*colon = '\0';
		a = topo_index(t, p);
		b = topo_index(t, colon + 1);
		cr_assert(a >= 0 && b >= 0, "link to an unknown node");
		adj[a][b] = adj[b][a] = true;
	}
}

/* @name's record in @t: its links as peers. */
static struct inm_node_state topo_rec(const struct topo *t, const char *name,
				      uint64_t ver)
{
	bool adj[TOPO_MAX][TOPO_MAX];
	char peers[512] = "";
	int i = topo_index(t, name);

	cr_assert_geq(i, 0);
	topo_adj(t, adj);
	for (size_t j = 0; j < t->n; j++)
		if (adj[i][j]) {
			strcat(peers, t->names[j]);
			strcat(peers, " ");
		}
	return rec(name, 1, ver, peers);
}

/* @self's view holding every record of @t (merged in reverse name order,
 * so that nothing depends on insertion order). */
static struct inm_view *topo_view(const struct topo *t, const char *self)
{
	struct inm_view *v = inm_view_create(self, 64);
	struct inm_node_state st;

	cr_assert_not_null(v);
	st = topo_rec(t, self, 1);
	inm_view_set_self(v, &st);
	for (size_t k = t->n; k-- > 0;) {
		if (!strcmp(t->names[k], self))
			continue;
		st = topo_rec(t, t->names[k], 1);
		cr_assert_eq(inm_view_merge(v, &st, T0), INM_MERGE_NEWS);
	}
	return v;
}

/* Merges @st, expecting @want. */
static void merge_expect(struct inm_view *v, struct inm_node_state st,
			 enum inm_merge want)
{
	enum inm_merge got = inm_view_merge(v, &st, T0);

	cr_assert_eq(got, want, "merge %s (%lld, %llu): got %d, want %d",
		     st.name, (long long)st.incarnation,
		     (unsigned long long)st.version, got, want);
}

/* What a sweep reported, in order: "+b" for UP, "-b" for GONE. */
struct evlog {
	char text[512];
};

static void on_event(void *ud, const struct inm_node_state *st,
		     enum inm_view_event ev)
{
	struct evlog *evs = ud;
	size_t len = strlen(evs->text);

	snprintf(evs->text + len, sizeof(evs->text) - len, "%s%c%s",
		 len ? " " : "", ev == INM_VIEW_UP ? '+' : '-', st->name);
}

/* Sweeps at @now and expects exactly the events @want ("" for none). */
static void sweep_expect(struct inm_view *v, int64_t now, const char *want)
{
	struct evlog evs = { "" };

	inm_view_sweep(v, now, GRACE, FORGET, on_event, &evs);
	cr_expect_str_eq(evs.text, want,
			 "sweep at T0%+lld: got '%s', want '%s'",
			 (long long)(now - T0), evs.text, want);
}

static void expect_same_state(const struct inm_node_state *a,
			      const struct inm_node_state *b)
{
	cr_expect_str_eq(a->name, b->name);
	cr_expect_str_eq(a->url, b->url);
	cr_expect_eq(a->incarnation, b->incarnation);
	cr_expect_eq(a->version, b->version);
	cr_expect_eq(a->master, b->master);
	cr_expect_eq(a->leaving, b->leaving);
	cr_expect_eq(a->nchannels, b->nchannels);
	cr_expect_eq(a->chan_digest, b->chan_digest);
	cr_expect_str_eq(a->rejoin, b->rejoin);
	cr_assert_eq(a->npeers, b->npeers);
	for (unsigned i = 0; i < a->npeers; i++) {
		cr_expect_str_eq(a->peers[i], b->peers[i]);
		cr_expect(a->latency[i] == b->latency[i],
			  "latency[%u]: %g != %g", i, a->latency[i],
			  b->latency[i]);
	}
}

/* ------------------------------------------------------------------ */
/* Digests                                                             */

Test(inm_view, digest_hex_and_parse)
{
	static const struct {
		uint64_t d;
		const char *hex;
	} ok[] = {
		{ 0, "0000000000000000" },
		{ 0x0123456789abcdefULL, "0123456789abcdef" },
		{ 0xfedcba9876543210ULL, "fedcba9876543210" },
		{ UINT64_MAX, "ffffffffffffffff" },
		{ 1, "0000000000000001" },
	};
	static const char *const bad[] = {
		"",
		"0123456789abcde",
		"0123456789abcdef0",
		"0123456789ABCDEF",
		"0123456789abcdeg",
		" 123456789abcdef",
		"0123456789abcde ",
		"0x23456789abcdef",
		"-123456789abcdef",
	};
	char hex[INM_DIGEST_HEX + 1];
	uint64_t d;

	for (size_t i = 0; i < N(ok); i++) {
		inm_digest_hex(ok[i].d, hex);
		cr_expect_str_eq(hex, ok[i].hex);
		d = 42;
		cr_expect_eq(inm_digest_parse(ok[i].hex, &d), WR_OK);
		cr_expect_eq(d, ok[i].d, "%s", ok[i].hex);
	}
	for (size_t i = 0; i < N(bad); i++) {
		d = 42;
		cr_expect_eq(inm_digest_parse(bad[i], &d), WR_EINVAL, "'%s'",
			     bad[i]);
		cr_expect_eq(d, 42, "'%s' wrote the output", bad[i]);
	}
	cr_expect_eq(inm_digest_parse(NULL, &d), WR_EINVAL);
}

Test(inm_view, chan_digest_terms)
{
	static const uint8_t h1[32] = { 1, 2, 3 }, h2[32] = { 1, 2, 4 };
	uint64_t a = inm_chan_digest("alpha", 5, NULL, 0, 100);
	uint64_t b = inm_chan_digest("beta", 4, h1, sizeof(h1), 200);
	uint64_t c = inm_chan_digest("gamma", 5, h2, sizeof(h2), 300);

	/* deterministic */
	cr_expect_eq(a, inm_chan_digest("alpha", 5, NULL, 0, 100));
	/* the name is taken by length, not up to a NUL */
	cr_expect_eq(a, inm_chan_digest("alphabet", 5, NULL, 0, 100));
	/* every input matters */
	cr_expect_neq(a, inm_chan_digest("alphb", 5, NULL, 0, 100));
	cr_expect_neq(a, inm_chan_digest("alpha", 4, NULL, 0, 100));
	cr_expect_neq(a, inm_chan_digest("alpha", 5, NULL, 0, 101));
	cr_expect_neq(a, inm_chan_digest("alpha", 5, NULL, 0, -100));
	cr_expect_neq(a, inm_chan_digest("alpha", 5, NULL, 0, 100LL << 32));
	cr_expect_neq(a, inm_chan_digest("alpha", 5, h1, sizeof(h1), 100),
		      "a password must change the term");
	cr_expect_neq(inm_chan_digest("alpha", 5, h1, sizeof(h1), 100),
		      inm_chan_digest("alpha", 5, h2, sizeof(h2), 100),
		      "another password must change the term");
	cr_expect_eq(a, inm_chan_digest("alpha", 5, h1, 0, 100),
		     "an empty hash is no hash");
	/* name and hash do not run into each other */
	cr_expect_neq(inm_chan_digest("ab", 2, (const uint8_t *)"c", 1, 0),
		      inm_chan_digest("a", 1, (const uint8_t *)"bc", 2, 0));

	/* a set's digest: XOR, so any order gives the same value */
	cr_expect_eq(a ^ b ^ c, c ^ a ^ b);
	cr_expect_eq(a ^ b ^ c, b ^ c ^ a);
	/* removing a channel is XORing its term again */
	cr_expect_eq((a ^ b ^ c) ^ b, a ^ c);
	/* a channel recreated (new created) changes the set's digest */
	cr_expect_neq(a ^ b ^ c,
		      a ^ inm_chan_digest("beta", 4, h1, sizeof(h1), 201) ^ c);
}

/* ------------------------------------------------------------------ */
/* Records on the wire                                                 */

static const char base_json[] =
	"{\"name\":\"b\",\"url\":\"ws://b:1\",\"incarnation\":1700000000000,"
	"\"version\":3,\"master\":true,\"peers\":[\"a\",\"c\"],"
	"\"latency\":{\"a\":1.5},"
	"\"channels\":{\"n\":2,\"digest\":\"" HEX16
	"\"},"
	"\"rejoin\":\"" HEX64 "\"}";

/* The base record with one field set to @val (JSON text), or removed
 * when @val is NULL; @path is "key" or "channels.key". */
static cJSON *mutate(const char *path, const char *val)
{
	cJSON *o = cJSON_Parse(base_json), *parent = o;
	const char *key = path;

	cr_assert_not_null(o);
	if (!strncmp(path, "channels.", 9)) {
		parent = cJSON_GetObjectItemCaseSensitive(o, "channels");
		key = path + 9;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
	if (val) {
		cJSON *x = cJSON_Parse(val);

		cr_assert_not_null(x, "bad test value %s", val);
		cJSON_AddItemToObject(parent, key, x);
	}
	return o;
}

struct field_row {
	const char *path;
	const char *val; /* JSON text; NULL: the key is absent */
};

Test(inm_view, decode_rejects_every_malformed_field)
{
	static const struct field_row rows[] = {
		{ "name", NULL },
		{ "name", "\"\"" },
		{ "name", "\"a b\"" },
		{ "name", "\"a/b\"" },
		{ "name", "\"*\"" },
		{ "name", "\"" X64 "x\"" }, /* 65 bytes */
		{ "name", "7" },
		{ "name", "null" },
		{ "incarnation", NULL },
		{ "incarnation", "-1" },
		{ "incarnation", "1.5" },
		{ "incarnation", "\"1000\"" },
		{ "incarnation", "true" },
		{ "incarnation", "null" },
		{ "incarnation", "9007199254740992" }, /* 2^53: not exact */
		{ "incarnation", "1e300" },
		{ "version", NULL },
		{ "version", "-1" },
		{ "version", "0.5" },
		{ "version", "\"3\"" },
		{ "version", "[3]" },
		{ "version", "9007199254740992" },
		{ "peers", NULL },
		{ "peers", "{}" },
		{ "peers", "\"a\"" },
		{ "peers", "null" },
		{ "peers", "[\"a\",\"\"]" },
		{ "peers", "[\"a\",3]" },
		{ "peers", "[\"a b\"]" },
		{ "peers", "[null]" },
		{ "peers", "[[\"a\"]]" },
		{ "peers", "[\"a\",\"" X64 "x\"]" },
		{ "channels", NULL },
		{ "channels", "[]" },
		{ "channels", "3" },
		{ "channels", "{}" },
		{ "channels.n", NULL },
		{ "channels.n", "-1" },
		{ "channels.n", "1.5" },
		{ "channels.n", "\"2\"" },
		{ "channels.n", "4294967296" },
		{ "channels.digest", NULL },
		{ "channels.digest", "\"\"" },
		{ "channels.digest", "\"0123456789abcde\"" },
		{ "channels.digest", "\"0123456789abcdef0\"" },
		{ "channels.digest", "\"0123456789ABCDEF\"" },
		{ "channels.digest", "\"0123456789abcdeg\"" },
		{ "channels.digest", "\" 123456789abcdef\"" },
		{ "channels.digest", "12" },
		{ "rejoin", "\"\"" },
		{ "rejoin", "\"" HEX64 "0\"" }, /* 65 */
		{ "rejoin",
		  "\"" HEX16 HEX16 HEX16 "0123456789abcde\"" }, /* 63 */
		{ "rejoin", "\"" HEX16 HEX16 HEX16 "0123456789ABCDEF\"" },
		{ "rejoin", "\"" HEX16 HEX16 HEX16 "0123456789abcdeg\"" },
		{ "rejoin", "5" },
		{ "rejoin", "null" },
		{ "url", "\"" X256 "\"" }, /* 256 bytes: no room */
		{ "url", "5" },
		{ "url", "null" },
		{ "latency", "[]" },
		{ "latency", "5" },
		{ "latency", "\"a\"" },
		{ "latency", "true" },
		{ "latency", "null" },
	};
	static const char *const not_objects[] = { "[]", "\"b\"", "null", "5" };
	struct inm_node_state st;
	cJSON *o = cJSON_Parse(base_json);

	cr_assert_eq(inm_state_decode(o, &st), WR_OK, "the base must decode");
	cJSON_Delete(o);
	for (size_t i = 0; i < N(rows); i++) {
		o = mutate(rows[i].path, rows[i].val);
		cr_expect_eq(inm_state_decode(o, &st), WR_EINVAL,
			     "row %zu: %s = %s accepted", i, rows[i].path,
			     rows[i].val ? rows[i].val : "(absent)");
		cJSON_Delete(o);
	}
	for (size_t i = 0; i < N(not_objects); i++) {
		o = cJSON_Parse(not_objects[i]);
		cr_expect_eq(inm_state_decode(o, &st), WR_EINVAL, "%s",
			     not_objects[i]);
		cJSON_Delete(o);
	}
	cr_expect_eq(inm_state_decode(NULL, &st), WR_EINVAL);
}

Test(inm_view, decode_accepts_unknown_keys_and_edges)
{
	static const struct field_row rows[] = {
		{ "future", "{\"x\":[1,2,{}]}" },
		{ "legacy", "true" },
		{ "channels.future", "\"x\"" },
		{ "name", "\"" X64 "\"" }, /* 64 bytes */
		{ "name", "\"A-z.0_9\"" },
		{ "url",
		  "\"" X64 X64 X64 X16 X16 X16 "xxxxxxxxxxxxxxx\"" }, /* 255 */
		{ "url", NULL },
		{ "incarnation", "0" },
		{ "incarnation", "9007199254740991" },
		{ "version", "0" },
		{ "version", "9007199254740991" },
		{ "peers", "[]" },
		{ "channels.n", "0" },
		{ "channels.n", "4294967295" },
		{ "channels.digest", "\"ffffffffffffffff\"" },
		{ "rejoin", NULL },
		{ "latency", NULL },
		{ "latency", "{}" },
		{ "latency", "{\"a\":\"fast\",\"zz\":3}" },
		{ "master", "\"yes\"" },
		{ "leaving", "1" },
	};
	struct inm_node_state st;

	for (size_t i = 0; i < N(rows); i++) {
		cJSON *o = mutate(rows[i].path, rows[i].val);

		cr_expect_eq(inm_state_decode(o, &st), WR_OK,
			     "row %zu: %s = %s refused", i, rows[i].path,
			     rows[i].val ? rows[i].val : "(absent)");
		cJSON_Delete(o);
	}
}

Test(inm_view, decode_fields)
{
	cJSON *o = cJSON_Parse(base_json);
	struct inm_node_state st;

	cr_assert_eq(inm_state_decode(o, &st), WR_OK);
	cJSON_Delete(o);
	cr_expect_str_eq(st.name, "b");
	cr_expect_str_eq(st.url, "ws://b:1");
	cr_expect_eq(st.incarnation, 1700000000000LL);
	cr_expect_eq(st.version, 3);
	cr_expect(st.master);
	cr_expect_not(st.leaving);
	cr_expect_not(st.legacy, "legacy is never read off the wire");
	cr_expect_eq(st.nchannels, 2);
	cr_expect_eq(st.chan_digest, 0x0123456789abcdefULL);
	cr_expect_str_eq(st.rejoin, HEX64);
	cr_assert_eq(st.npeers, 2);
	cr_expect_str_eq(st.peers[0], "a");
	cr_expect_str_eq(st.peers[1], "c");
	cr_expect(st.latency[0] == 1.5);
	cr_expect(st.latency[1] < 0, "no latency for c: unknown");

	/* latency that is not a non-negative number is unknown; master and
	 * leaving count only when true; absent url and rejoin are "" */
	o = cJSON_Parse(
		"{\"name\":\"b\",\"incarnation\":1,\"version\":1,"
		"\"peers\":[\"a\",\"c\",\"d\"],\"master\":1,\"leaving\":\"true\","
		"\"latency\":{\"a\":-2,\"c\":\"9\",\"d\":0},"
		"\"channels\":{\"n\":0,\"digest\":\"0000000000000000\"}}");
	cr_assert_eq(inm_state_decode(o, &st), WR_OK);
	cJSON_Delete(o);
	cr_expect_str_eq(st.url, "");
	cr_expect_str_eq(st.rejoin, "");
	cr_expect_not(st.master);
	cr_expect_not(st.leaving);
	cr_expect(st.latency[0] < 0);
	cr_expect(st.latency[1] < 0);
	cr_expect(st.latency[2] == 0);
}

Test(inm_view, decode_keeps_the_first_peers_of_a_big_hub)
{
	cJSON *o = mutate("peers", "[]"), *peers, *lat;
	struct inm_node_state st;
	char name[16];

	peers = cJSON_GetObjectItemCaseSensitive(o, "peers");
	lat = cJSON_GetObjectItemCaseSensitive(o, "latency");
	for (int i = 0; i < INM_VIEW_PEERS_MAX + 6; i++) {
		snprintf(name, sizeof(name), "p%03d", i);
		cJSON_AddItemToArray(peers, cJSON_CreateString(name));
		cJSON_AddNumberToObject(lat, name, i);
	}
	cr_assert_eq(inm_state_decode(o, &st), WR_OK);
	cr_expect_eq(st.npeers, INM_VIEW_PEERS_MAX);
	cr_expect_str_eq(st.peers[INM_VIEW_PEERS_MAX - 1], "p063");
	cr_expect(st.latency[INM_VIEW_PEERS_MAX - 1] == 63);
	/* but a bad name past the bound still fails the record */
	cJSON_AddItemToArray(peers, cJSON_CreateString("not ok"));
	cr_expect_eq(inm_state_decode(o, &st), WR_EINVAL);
	cJSON_Delete(o);
}

/* @st -> JSON -> decode, and @st -> JSON text -> parse -> decode,
 * expecting @st back both times. */
static void round_trip(const struct inm_node_state *st)
{
	cJSON *o = inm_state_json(st), *back;
	struct inm_node_state got;
	char *text;

	cr_assert_not_null(o);
	cr_assert_eq(inm_state_decode(o, &got), WR_OK);
	expect_same_state(&got, st);
	text = cJSON_PrintUnformatted(o);
	cr_assert_not_null(text);
	back = cJSON_Parse(text);
	cr_assert_not_null(back, "%s", text);
	cr_assert_eq(inm_state_decode(back, &got), WR_OK, "%s", text);
	expect_same_state(&got, st);
	/* leaving and rejoin appear only when set */
	cr_expect_eq(cJSON_HasObjectItem(back, "leaving"), st->leaving, "%s",
		     text);
	cr_expect_eq(cJSON_HasObjectItem(back, "rejoin"), st->rejoin[0] != '\0',
		     "%s", text);
	cJSON_Delete(back);
	cJSON_free(text);
	cJSON_Delete(o);
}

Test(inm_view, json_round_trips)
{
	struct inm_node_state st = rec("node-1.x_Y", 1700000000123LL, 42,
				       "a b c");

	round_trip(&st); /* plain: no latency, no rejoin */

	st.master = true;
	st.leaving = true;
	st.nchannels = 7;
	st.chan_digest = 0xfedcba9876543210ULL;
	memcpy(st.rejoin, HEX64, sizeof(HEX64));
	st.latency[0] = 1.25;
	st.latency[1] = -1;
	st.latency[2] = 0;
	snprintf(st.url, sizeof(st.url), "wss://h.example:8443/%s", X64);
	round_trip(&st);

	/* the extremes: all the peers, a full url, 15-digit integers (cJSON
	 * 1.7 prints a number with 15 significant digits when they come
	 * within a relative DBL_EPSILON, so 2^53 - 1 would come back as
	 * ...990 through text: decoded exactly, printed not quite) */
	st = rec(X64, 999999999999999LL, 999999999999999ULL, "");
	st.nchannels = UINT32_MAX;
	st.chan_digest = UINT64_MAX;
	memset(st.url, 'u', sizeof(st.url) - 1);
	for (unsigned i = 0; i < INM_VIEW_PEERS_MAX; i++) {
		snprintf(st.peers[i], INM_NAME_MAX + 1, "peer%02u", i);
		st.latency[i] = i % 3 ? 0.001 * i + 1.0 / 3 : -1;
	}
	st.npeers = INM_VIEW_PEERS_MAX;
	round_trip(&st);

	st = rec("z", 0, 0, "");
	round_trip(&st);

	/* the largest exact values survive as cJSON objects */
	st = rec("z", 9007199254740991LL, 9007199254740991ULL, "a");
	{
		cJSON *o = inm_state_json(&st);
		struct inm_node_state got;

		cr_assert_not_null(o);
		cr_assert_eq(inm_state_decode(o, &got), WR_OK);
		expect_same_state(&got, &st);
		cJSON_Delete(o);
	}
}

/* ------------------------------------------------------------------ */
/* Merging                                                             */

Test(inm_view, create_rejects_bad_arguments)
{
	cr_expect_null(inm_view_create(NULL, 8));
	cr_expect_null(inm_view_create("", 8));
	cr_expect_null(inm_view_create("a b", 8));
	cr_expect_null(inm_view_create("a", 0));
	cr_expect_null(inm_view_create("a", 65537));
	inm_view_destroy(NULL);
}

Test(inm_view, a_new_view_holds_self)
{
	struct inm_view *v = inm_view_create("me", 4);

	cr_assert_not_null(v);
	cr_expect_eq(inm_view_count(v), 1);
	cr_expect_str_eq(inm_view_at(v, 0)->name, "me");
	cr_expect_str_eq(inm_view_self(v)->name, "me");
	cr_expect_null(inm_view_at(v, 1));
	cr_expect(inm_view_reachable(v, "me"));
	cr_expect(inm_view_alive(v, "me"));
	cr_expect_eq(inm_view_reachable_count(v), 1);
	cr_expect_str_eq(inm_view_leader(v), "me");
	cr_expect_null(inm_view_next_hop(v, "me"));
	cr_expect_null(inm_view_find(v, "other"));
	cr_expect_not(inm_view_reachable(v, "other"));
	cr_expect_not(inm_view_alive(v, "other"));
	inm_view_destroy(v);
}

Test(inm_view, merge_ordering)
{
	static const struct {
		int64_t inc;
		uint64_t ver;
		enum inm_merge want;
		int64_t held_inc; /* what is held afterwards */
		uint64_t held_ver;
	} steps[] = {
		{ 1000, 5, INM_MERGE_NEWS, 1000, 5 }, /* first heard */
		{ 1000, 6, INM_MERGE_NEWS, 1000, 6 }, /* newer version */
		{ 1000, 6, INM_MERGE_OLD, 1000, 6 },  /* the same */
		{ 1000, 4, INM_MERGE_OLD, 1000, 6 },  /* older version */
		{ 999, 100, INM_MERGE_OLD, 1000, 6 }, /* older incarnation */
		{ 2000, 0, INM_MERGE_NEWS, 2000, 0 }, /* restart beats v6 */
		{ 1000, 7, INM_MERGE_OLD, 2000, 0 },  /* the old life, late */
		{ 2000, 1, INM_MERGE_NEWS, 2000, 1 },
		{ 2000, 9007199254740991ULL, INM_MERGE_NEWS, 2000,
		  9007199254740991ULL },
		{ 2001, 0, INM_MERGE_NEWS, 2001, 0 },
	};
	struct inm_view *v = inm_view_create("a", 8);

	cr_assert_not_null(v);
	for (size_t i = 0; i < N(steps); i++) {
		/* each record says which step it came from in its url */
		struct inm_node_state st = rec("b", steps[i].inc, steps[i].ver,
					       "a");
		const struct inm_node_state *held;

		snprintf(st.url, sizeof(st.url), "ws://b/%zu", i);
		cr_expect_eq(inm_view_merge(v, &st, T0), steps[i].want,
			     "step %zu", i);
		held = inm_view_find(v, "b");
		cr_assert_not_null(held);
		cr_expect_eq(held->incarnation, steps[i].held_inc, "step %zu",
			     i);
		cr_expect_eq(held->version, steps[i].held_ver, "step %zu", i);
		if (steps[i].want == INM_MERGE_NEWS)
			cr_expect_str_eq(held->url, st.url, "step %zu", i);
		else
			cr_expect_str_neq(held->url, st.url,
					  "step %zu: an ignored record was stored",
					  i);
	}
	cr_expect_eq(inm_view_count(v), 2);
	inm_view_destroy(v);
}

Test(inm_view, merge_ignores_own_name)
{
	struct inm_view *v = inm_view_create("a", 8);
	struct inm_node_state me = rec("a", 5, 5, "b"),
			      echo = rec("a", 9, 9, "");

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	/* our own record flooded back, even newer (a previous life's echo
	 * cannot be newer, but nothing from outside overrides self) */
	cr_expect_eq(inm_view_merge(v, &echo, T0), INM_MERGE_SELF);
	cr_expect_eq(inm_view_self(v)->version, 5);
	cr_expect_eq(inm_view_self(v)->npeers, 1);
	cr_expect_eq(inm_view_count(v), 1);
	/* set_self keeps our name whatever the record says */
	inm_view_set_self(v, &echo);
	cr_expect_str_eq(inm_view_self(v)->name, "a");
	cr_expect_eq(inm_view_self(v)->version, 9);
	inm_view_destroy(v);
}

Test(inm_view, merge_when_full_evicts_the_longest_lost)
{
	struct inm_view *v = inm_view_create("a", 4);
	struct inm_node_state me = rec("a", 1, 1, "b c d");

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	merge_expect(v, rec("b", 1, 1, "a"), INM_MERGE_NEWS);
	merge_expect(v, rec("c", 1, 1, "a"), INM_MERGE_NEWS);
	merge_expect(v, rec("d", 1, 1, "a"), INM_MERGE_NEWS);
	sweep_expect(v, T0, "+b +c +d");

	/* all reachable: no room, but news about a known node still lands */
	merge_expect(v, rec("e", 1, 1, "a"), INM_MERGE_FULL);
	merge_expect(v, rec("b", 1, 2, "a"), INM_MERGE_NEWS);
	cr_expect_eq(inm_view_count(v), 4);

	/* c lost first, then d */
	merge_expect(v, rec("c", 1, 2, ""), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 100, "");
	merge_expect(v, rec("d", 1, 2, ""), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 200, "");

	merge_expect(v, rec("e", 1, 1, "a"), INM_MERGE_NEWS);
	cr_expect_null(inm_view_find(v, "c"), "c was lost longest");
	cr_expect_not_null(inm_view_find(v, "d"));
	merge_expect(v, rec("f", 1, 1, "a"), INM_MERGE_NEWS);
	cr_expect_null(inm_view_find(v, "d"));
	cr_expect_eq(inm_view_count(v), 4);
	cr_expect_not_null(inm_view_find(v, "b"));

	/* e and f are unreachable (a does not list them) but not swept yet:
	 * not lost for any time, so not evicted */
	merge_expect(v, rec("g", 1, 1, "a"), INM_MERGE_FULL);
	sweep_expect(v, T0 + 300, "");
	merge_expect(v, rec("g", 1, 1, "a"), INM_MERGE_NEWS);
	cr_expect_not_null(inm_view_find(v, "g"));
	cr_expect((inm_view_find(v, "e") == NULL) +
				  (inm_view_find(v, "f") == NULL) ==
			  1,
		  "exactly one of e, f evicted");
	cr_expect_not_null(inm_view_find(v, "b"), "a reachable record evicted");
	inm_view_destroy(v);
}

/*
 * A record lost at the last sweep and reachable again since (its
 * neighbour's record listed it again) is not "unreachable": the table
 * must not evict it for a newcomer before the next sweep.
 */
Test(inm_view, merge_when_full_spares_a_record_reachable_again)
{
	struct inm_view *v = inm_view_create("a", 3);
	struct inm_node_state me = rec("a", 1, 1, "b");

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	merge_expect(v, rec("b", 1, 1, "a c"), INM_MERGE_NEWS);
	merge_expect(v, rec("c", 1, 1, "b"), INM_MERGE_NEWS);
	sweep_expect(v, T0, "+b +c");
	merge_expect(v, rec("b", 1, 2, "a"), INM_MERGE_NEWS); /* b-c down */
	sweep_expect(v, T0 + 100, "");
	merge_expect(v, rec("b", 1, 3, "a c"), INM_MERGE_NEWS); /* and up */
	/* no sweep in between: the newcomer finds no lost record */
	merge_expect(v, rec("d", 1, 1, "c"), INM_MERGE_FULL);
	cr_expect_not_null(inm_view_find(v, "c"), "reachable c was evicted");
	cr_expect(inm_view_reachable(v, "c"));
	inm_view_destroy(v);
}

Test(inm_view, a_table_of_one_holds_only_self)
{
	struct inm_view *v = inm_view_create("a", 1);

	cr_assert_not_null(v);
	merge_expect(v, rec("b", 1, 1, "a"), INM_MERGE_FULL);
	merge_expect(v, rec("a", 1, 1, "b"), INM_MERGE_SELF);
	cr_expect_eq(inm_view_count(v), 1);
	inm_view_destroy(v);
}

/* ------------------------------------------------------------------ */
/* The graph and reachability                                          */

Test(inm_view, one_way_edges_do_not_count)
{
	struct inm_view *v = inm_view_create("a", 8);
	struct inm_node_state me = rec("a", 1, 1, "b");

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	merge_expect(v, rec("b", 1, 1, "a c"), INM_MERGE_NEWS);
	merge_expect(v, rec("c", 1, 1, "b d"), INM_MERGE_NEWS);
	merge_expect(v, rec("d", 1, 1, "c"), INM_MERGE_NEWS);
	cr_expect(inm_view_reachable(v, "d"));
	cr_expect_eq(inm_view_reachable_count(v), 4);

	/* c crashed: its last record still lists b and d, but their newer
	 * records no longer list it */
	merge_expect(v, rec("b", 1, 2, "a"), INM_MERGE_NEWS);
	merge_expect(v, rec("d", 1, 2, ""), INM_MERGE_NEWS);
	cr_expect_not(inm_view_reachable(v, "c"));
	cr_expect_not(inm_view_reachable(v, "d"));
	cr_expect(inm_view_reachable(v, "b"));
	cr_expect_eq(inm_view_reachable_count(v), 2);
	cr_expect_null(inm_view_next_hop(v, "c"));

	/* a record listing us that we do not list is no link either */
	merge_expect(v, rec("e", 1, 1, "a b"), INM_MERGE_NEWS);
	cr_expect_not(inm_view_reachable(v, "e"));
	/* nor is our own record listing a node that does not list us */
	me = rec("a", 1, 2, "b e d");
	inm_view_set_self(v, &me);
	cr_expect(inm_view_reachable(v, "e"));
	cr_expect_not(inm_view_reachable(v, "d"));
	inm_view_destroy(v);
}

Test(inm_view, reachability_follows_record_updates)
{
	struct inm_view *v = inm_view_create("b", 8);
	struct inm_node_state me = rec("b", 1, 1, "c");

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	merge_expect(v, rec("c", 1, 1, "b d"), INM_MERGE_NEWS);
	merge_expect(v, rec("d", 1, 1, "c a"), INM_MERGE_NEWS);
	cr_expect_not(inm_view_reachable(v, "a"), "a not heard of yet");
	cr_expect_str_eq(inm_view_leader(v), "b");
	merge_expect(v, rec("a", 1, 1, "d"), INM_MERGE_NEWS);
	cr_expect(inm_view_reachable(v, "a"));
	cr_expect_eq(inm_view_reachable_count(v), 4);
	cr_expect_str_eq(inm_view_leader(v), "a");

	/* d's link to c goes: a and d drop out */
	merge_expect(v, rec("d", 1, 2, "a"), INM_MERGE_NEWS);
	cr_expect_not(inm_view_reachable(v, "a"));
	cr_expect_not(inm_view_reachable(v, "d"));
	cr_expect_eq(inm_view_reachable_count(v), 2);
	cr_expect_str_eq(inm_view_leader(v), "b",
			 "the leader is a reachable node");

	/* a restarts and links to us directly */
	merge_expect(v, rec("a", 2, 0, "b"), INM_MERGE_NEWS);
	cr_expect_not(inm_view_reachable(v, "a"), "we do not list a yet");
	me = rec("b", 1, 2, "c a");
	inm_view_set_self(v, &me);
	cr_expect(inm_view_reachable(v, "a"));
	cr_expect_not(inm_view_reachable(v, "d"));
	cr_expect_str_eq(inm_view_next_hop(v, "a"), "a");
	inm_view_destroy(v);
}

Test(inm_view, a_leaving_record_cuts_its_links)
{
	struct inm_view *v = inm_view_create("a", 8);
	struct inm_node_state me = rec("a", 1, 1, "b"), st;

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	merge_expect(v, rec("b", 1, 1, "a c"), INM_MERGE_NEWS);
	merge_expect(v, rec("c", 1, 1, "b"), INM_MERGE_NEWS);
	cr_expect(inm_view_reachable(v, "c"));
	st = rec("b", 1, 2, "a c"); /* still listing its links */
	st.leaving = true;
	merge_expect(v, st, INM_MERGE_NEWS);
	cr_expect_not(inm_view_reachable(v, "b"));
	cr_expect_not(inm_view_reachable(v, "c"));
	inm_view_destroy(v);
}

/* ------------------------------------------------------------------ */
/* The sweep                                                           */

/* a - b - c, all up at T0. */
static struct inm_view *line_abc(void)
{
	struct inm_view *v = inm_view_create("a", 8);
	struct inm_node_state me = rec("a", 1, 1, "b");

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	merge_expect(v, rec("b", 1, 1, "a c"), INM_MERGE_NEWS);
	merge_expect(v, rec("c", 1, 1, "b"), INM_MERGE_NEWS);
	return v;
}

Test(inm_view, sweep_reports_up_once)
{
	struct inm_view *v = line_abc();

	sweep_expect(v, T0, "+b +c");
	sweep_expect(v, T0 + 1, "");
	sweep_expect(v, T0 + FORGET * 10, "");
	/* news about an up node is no new UP */
	merge_expect(v, rec("c", 1, 2, "b"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + FORGET * 11, "");
	/* a NULL callback is allowed and still marks the node up */
	merge_expect(v, rec("d", 1, 1, "c"), INM_MERGE_NEWS);
	merge_expect(v, rec("c", 1, 3, "b d"), INM_MERGE_NEWS);
	inm_view_sweep(v, T0 + FORGET * 12, GRACE, FORGET, NULL, NULL);
	sweep_expect(v, T0 + FORGET * 12 + 1, "");
	inm_view_destroy(v);
}

Test(inm_view, sweep_gone_after_exactly_the_grace)
{
	static const int64_t graces[] = { 1, GRACE, 30000 };

	for (size_t k = 0; k < N(graces); k++) {
		struct inm_view *v = line_abc();
		int64_t g = graces[k], lost = T0 + 1000,
			forget = 10 * g + FORGET;
		struct evlog evs = { "" };
		size_t ci;

		inm_view_sweep(v, T0, g, forget, on_event, &evs);
		cr_expect_str_eq(evs.text, "+b +c");
		merge_expect(v, rec("b", 1, 2, "a"), INM_MERGE_NEWS);
		cr_expect_not(inm_view_reachable(v, "c"));
		cr_expect(inm_view_alive(v, "c"), "grace %lld", (long long)g);

		evs.text[0] = '\0';
		inm_view_sweep(v, lost, g, forget, on_event, &evs);
		inm_view_sweep(v, lost + g - 1, g, forget, on_event, &evs);
		cr_expect_str_eq(evs.text, "", "grace %lld: gone early",
				 (long long)g);
		cr_expect(inm_view_alive(v, "c"));
		for (ci = 0; strcmp(inm_view_at(v, ci)->name, "c"); ci++)
			;
		cr_expect_eq(inm_view_lost_since(v, ci), lost);

		inm_view_sweep(v, lost + g, g, forget, on_event, &evs);
		cr_expect_str_eq(evs.text, "-c", "grace %lld", (long long)g);
		cr_expect_not(inm_view_alive(v, "c"));
		cr_expect(inm_view_alive(v, "b"));
		evs.text[0] = '\0';
		inm_view_sweep(v, lost + g + 1, g, forget, on_event, &evs);
		inm_view_sweep(v, lost + 5 * g, g, forget, on_event, &evs);
		cr_expect_str_eq(evs.text, "", "GONE reported twice");
		cr_expect_not_null(inm_view_find(v, "c"),
				   "kept until forgotten");
		inm_view_destroy(v);
	}
}

Test(inm_view, sweep_gone_at_once_when_leaving)
{
	struct inm_view *v = line_abc();
	struct inm_node_state st;

	sweep_expect(v, T0, "+b +c");
	/* b leaves: gone at once; c, behind it, only after the grace */
	st = rec("b", 1, 2, "a c");
	st.leaving = true;
	merge_expect(v, st, INM_MERGE_NEWS);
	sweep_expect(v, T0 + 10, "-b");
	cr_expect_not(inm_view_alive(v, "b"));
	cr_expect(inm_view_alive(v, "c"));
	sweep_expect(v, T0 + 10 + GRACE - 1, "");
	sweep_expect(v, T0 + 10 + GRACE, "-c");

	/* b comes back as a new life */
	merge_expect(v, rec("b", 2, 0, "a c"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 2000, "+b +c");
	inm_view_destroy(v);
}

Test(inm_view, sweep_up_again_when_reachable_again)
{
	struct inm_view *v = line_abc();

	sweep_expect(v, T0, "+b +c");
	merge_expect(v, rec("b", 1, 2, "a"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 100, "");
	sweep_expect(v, T0 + 100 + GRACE, "-c");
	merge_expect(v, rec("b", 1, 3, "a c"), INM_MERGE_NEWS);
	cr_expect(inm_view_alive(v, "c"));
	sweep_expect(v, T0 + 1000, "+c");
	cr_expect_eq(inm_view_lost_since(v, 2), 0);

	/* a link flap shorter than the grace reports nothing */
	merge_expect(v, rec("b", 1, 4, "a"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 2000, "");
	merge_expect(v, rec("b", 1, 5, "a c"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 2000 + GRACE - 1, "");
	/* and the grace starts over at the next loss */
	merge_expect(v, rec("b", 1, 6, "a"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 3000, "");
	sweep_expect(v, T0 + 3000 + GRACE - 1, "");
	sweep_expect(v, T0 + 3000 + GRACE, "-c");
	inm_view_destroy(v);
}

Test(inm_view, sweep_forgets_after_the_forget_time)
{
	struct inm_view *v = line_abc();

	sweep_expect(v, T0, "+b +c");
	/* c lost; e only ever heard of, never reachable: gone as well (a
	 * command may have named it a holder meanwhile) */
	merge_expect(v, rec("b", 1, 2, "a"), INM_MERGE_NEWS);
	merge_expect(v, rec("e", 1, 1, "a"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 100, "");
	sweep_expect(v, T0 + 100 + GRACE, "-c -e");
	cr_expect_eq(inm_view_count(v), 4);
	sweep_expect(v, T0 + 100 + FORGET - 1, "");
	cr_expect_not_null(inm_view_find(v, "c"));
	cr_expect_not_null(inm_view_find(v, "e"));
	sweep_expect(v, T0 + 100 + FORGET, "");
	cr_expect_null(inm_view_find(v, "c"));
	cr_expect_null(inm_view_find(v, "e"));
	cr_expect_eq(inm_view_count(v), 2);
	cr_expect_str_eq(inm_view_at(v, 1)->name, "b");

	/* forgotten means any record of it is news again */
	merge_expect(v, rec("c", 1, 1, "b"), INM_MERGE_NEWS);
	merge_expect(v, rec("b", 1, 3, "a c"), INM_MERGE_NEWS);
	sweep_expect(v, T0 + 20000, "+c");
	inm_view_destroy(v);
}

Test(inm_view, sweep_forgets_a_leaving_node_after_the_forget_time)
{
	struct inm_view *v = line_abc();
	struct inm_node_state st = rec("c", 1, 2, "b");

	sweep_expect(v, T0, "+b +c");
	st.leaving = true;
	merge_expect(v, st, INM_MERGE_NEWS);
	sweep_expect(v, T0 + 1, "-c");
	sweep_expect(v, T0 + FORGET, "");
	cr_expect_not_null(inm_view_find(v, "c"));
	sweep_expect(v, T0 + 1 + FORGET, "");
	cr_expect_null(inm_view_find(v, "c"));
	inm_view_destroy(v);
}

/* ------------------------------------------------------------------ */
/* Shortest paths                                                      */

static const struct topo line7 = {
	7,
	{ "n0", "n1", "n2", "n3", "n4", "n5", "n6" },
	"n0:n1 n1:n2 n2:n3 n3:n4 n4:n5 n5:n6",
};
static const struct topo ring6 = {
	6,
	{ "n0", "n1", "n2", "n3", "n4", "n5" },
	"n0:n1 n1:n2 n2:n3 n3:n4 n4:n5 n5:n0",
};
static const struct topo ring7 = {
	7,
	{ "n0", "n1", "n2", "n3", "n4", "n5", "n6" },
	"n0:n1 n1:n2 n2:n3 n3:n4 n4:n5 n5:n6 n6:n0",
};
/*
 *   a --- b --- d --- f
 *    \    |   /      /
 *     `-- c -+---- e
 */
static const struct topo mesh6 = {
	6,
	{ "a", "b", "c", "d", "e", "f" },
	"a:b a:c b:c b:d c:d c:e d:f e:f",
};

struct hop_row {
	const char *self, *dest, *want; /* want NULL: no hop */
};

static void expect_hops(const struct topo *t, const struct hop_row *rows,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct inm_view *v = topo_view(t, rows[i].self);
		const char *got = inm_view_next_hop(v, rows[i].dest);

		if (rows[i].want)
			cr_expect(got && !strcmp(got, rows[i].want),
				  "%s -> %s: got %s, want %s", rows[i].self,
				  rows[i].dest, got ? got : "NULL",
				  rows[i].want);
		else
			cr_expect_null(got, "%s -> %s: got %s", rows[i].self,
				       rows[i].dest, got);
		inm_view_destroy(v);
	}
}

Test(inm_view, next_hop_on_a_line)
{
	static const struct hop_row rows[] = {
		{ "n0", "n1", "n1" }, { "n0", "n6", "n1" },
		{ "n0", "n3", "n1" }, { "n3", "n0", "n2" },
		{ "n3", "n2", "n2" }, { "n3", "n4", "n4" },
		{ "n3", "n6", "n4" }, { "n6", "n0", "n5" },
		{ "n3", "n3", NULL }, { "n3", "zz", NULL },
	};

	expect_hops(&line7, rows, N(rows));
}

Test(inm_view, next_hop_on_a_ring_breaks_ties_by_name)
{
	static const struct hop_row rows[] = {
		{ "n0", "n1", "n1" }, { "n0", "n2", "n1" },
		{ "n0", "n5", "n5" }, { "n0", "n4", "n5" },
		{ "n0", "n3", "n1" }, /* n1 or n5: n1 */
		{ "n3", "n0", "n2" }, /* n2 or n4: n2 */
		{ "n1", "n4", "n0" }, /* n0 or n2: n0 */
		{ "n5", "n2", "n0" }, /* n0 or n4: n0 */
	};

	expect_hops(&ring6, rows, N(rows));
}

Test(inm_view, next_hop_tie_is_by_name_not_by_arrival)
{
	/* m's neighbours z (heard first) and b; k opposite */
	struct inm_view *v = inm_view_create("m", 8);
	struct inm_node_state me = rec("m", 1, 1, "z b");

	cr_assert_not_null(v);
	inm_view_set_self(v, &me);
	merge_expect(v, rec("z", 1, 1, "k m"), INM_MERGE_NEWS);
	merge_expect(v, rec("k", 1, 1, "z b"), INM_MERGE_NEWS);
	merge_expect(v, rec("b", 1, 1, "m k"), INM_MERGE_NEWS);
	cr_expect_str_eq(inm_view_next_hop(v, "k"), "b");
	cr_expect_str_eq(inm_view_next_hop(v, "z"), "z");
	inm_view_destroy(v);
}

Test(inm_view, next_hop_after_a_link_loss)
{
	struct inm_view *v = topo_view(&ring6, "n0");

	cr_expect_str_eq(inm_view_next_hop(v, "n2"), "n1");
	cr_expect_str_eq(inm_view_next_hop(v, "n3"), "n1");
	/* n1 - n2 goes down; n1's record alone says so */
	merge_expect(v, rec("n1", 1, 2, "n0"), INM_MERGE_NEWS);
	cr_expect_str_eq(inm_view_next_hop(v, "n2"), "n5");
	cr_expect_str_eq(inm_view_next_hop(v, "n3"), "n5");
	cr_expect_str_eq(inm_view_next_hop(v, "n1"), "n1");
	/* n5 - n0 goes down too (our own record): n2 is unreachable */
	merge_expect(v, rec("n5", 1, 2, "n4"), INM_MERGE_NEWS);
	cr_expect_null(inm_view_next_hop(v, "n2"));
	cr_expect_null(inm_view_next_hop(v, "n5"));
	cr_expect_str_eq(inm_view_next_hop(v, "n1"), "n1");
	inm_view_destroy(v);
}

/* ------------------------------------------------------------------ */
/* Trees                                                               */

/*
 * The model: breadth first from @root over @t's links, neighbours in name
 * (= index) order; parent[root] = root, dist in hops.
 */
static void model_tree(const struct topo *t, int root, int parent[TOPO_MAX],
		       int dist[TOPO_MAX])
{
	bool adj[TOPO_MAX][TOPO_MAX];
	int queue[TOPO_MAX], head = 0, tail = 0;

	topo_adj(t, adj);
	for (size_t i = 0; i < t->n; i++)
		parent[i] = dist[i] = -1;
	parent[root] = root;
	dist[root] = 0;
	queue[tail++] = root;
	while (head < tail) {
		int u = queue[head++];

		for (size_t w = 0; w < t->n; w++)
			if (adj[u][w] && parent[w] < 0) {
				parent[w] = u;
				dist[w] = dist[u] + 1;
				queue[tail++] = (int)w;
			}
	}
}

struct tree_row {
	const struct topo *t;
	const char *source;
	const char *targets; /* space-separated */
	unsigned edges;      /* edges of the tree that reaches them */
};

/*
 * Every node, each with its own view of the same records, asks tree_hop
 * for each target; the hops it answers are the edges it forwards on. Their
 * union must be a tree rooted at the source: each edge a link, each node
 * entered once, each target reached by a shortest path, and exactly the
 * edges of the model tree that reach the targets — no more.
 */
static void expect_tree(const struct tree_row *row)
{
	const struct topo *t = row->t;
	bool adj[TOPO_MAX][TOPO_MAX], used[TOPO_MAX][TOPO_MAX] = { { false } };
	bool on_path[TOPO_MAX] = { false };
	int up[TOPO_MAX], mparent[TOPO_MAX], mdist[TOPO_MAX];
	int s = topo_index(t, row->source), targets[TOPO_MAX];
	unsigned ntargets = 0, edges = 0, ideal = 0;
	char buf[256], *save = NULL;

	cr_assert_geq(s, 0);
	topo_adj(t, adj);
	snprintf(buf, sizeof(buf), "%s", row->targets);
	for (char *p = strtok_r(buf, " ", &save); p;
	     p = strtok_r(NULL, " ", &save)) {
		targets[ntargets] = topo_index(t, p);
		cr_assert_geq(targets[ntargets], 0);
		ntargets++;
	}
	for (size_t i = 0; i < t->n; i++)
		up[i] = -1;

	for (size_t x = 0; x < t->n; x++) {
		struct inm_view *v = topo_view(t, t->names[x]);

		for (unsigned k = 0; k < ntargets; k++) {
			const char *hop = "unset";
			int r = inm_view_tree_hop(v, row->source,
						  t->names[targets[k]], &hop);
			int y;

			cr_assert(r == 0 || r == 1, "%s: tree_hop(%s, %s) = %d",
				  t->names[x], row->source,
				  t->names[targets[k]], r);
			if (r == 0) {
				cr_expect_null(hop);
				continue;
			}
			cr_assert_not_null(hop);
			y = topo_index(t, hop);
			cr_assert_geq(y, 0, "hop to unknown %s", hop);
			cr_expect(adj[x][y], "%s forwards to %s: no such link",
				  t->names[x], hop);
			cr_expect(up[y] < 0 || up[y] == (int)x,
				  "%s entered from both %s and %s", hop,
				  t->names[up[y]], t->names[x]);
			cr_expect_neq(y, s, "%s sends back to the source",
				      t->names[x]);
			up[y] = (int)x;
			if (!used[x][y]) {
				used[x][y] = true;
				edges++;
			}
		}
		inm_view_destroy(v);
	}

	model_tree(t, s, mparent, mdist);
	for (unsigned k = 0; k < ntargets; k++) {
		int cur = targets[k], hops = 0;

		/* the copy reaches it along a shortest path */
		while (cur != s && hops <= (int)t->n) {
			cr_assert_geq(up[cur], 0, "%s: no copy reaches %s",
				      row->source, t->names[targets[k]]);
			cur = up[cur];
			hops++;
		}
		cr_expect_eq(hops, mdist[targets[k]],
			     "%s -> %s: %d hops, shortest %d", row->source,
			     t->names[targets[k]], hops, mdist[targets[k]]);
		/* the model's edges toward it */
		for (cur = targets[k]; cur != s; cur = mparent[cur])
			if (!on_path[cur]) {
				on_path[cur] = true;
				ideal++;
				cr_expect_eq(up[cur], mparent[cur],
					     "%s entered from %s, the tree says %s",
					     t->names[cur],
					     up[cur] >= 0 ? t->names[up[cur]]
							  : "none",
					     t->names[mparent[cur]]);
			}
	}
	cr_expect_eq(ideal, row->edges, "the model disagrees with the table");
	cr_expect_eq(edges, row->edges,
		     "source %s, targets %s: %u edges, ideal %u", row->source,
		     row->targets, edges, row->edges);
}

Test(inm_view, tree_hops_form_the_shortest_path_tree)
{
	static const struct tree_row rows[] = {
		/* a line: the tree is the line */
		{ &line7, "n0", "n6", 6 },
		{ &line7, "n0", "n3", 3 },
		{ &line7, "n0", "n2 n4 n6", 6 },
		{ &line7, "n3", "n0 n6", 6 },
		{ &line7, "n3", "n2 n4", 2 },
		{ &line7, "n6", "n0 n1 n2 n3 n4 n5", 6 },
		{ &line7, "n4", "n4", 0 },
		/* a ring of 7: two ways round, each node on one of them */
		{ &ring7, "n0", "n3", 3 },
		{ &ring7, "n0", "n4", 3 },
		{ &ring7, "n0", "n3 n4", 6 },
		{ &ring7, "n0", "n2 n5", 4 },
		{ &ring7, "n0", "n1 n6", 2 },
		{ &ring7, "n0", "n1 n2 n3 n4 n5 n6", 6 },
		{ &ring7, "n3", "n0", 3 },
		{ &ring7, "n5", "n0 n1 n2 n3 n4 n6", 6 },
		/* a mesh: ties at every level */
		{ &mesh6, "a", "d e", 4 }, /* a-b-d (b before c), a-c-e */
		{ &mesh6, "a", "b c d e f", 5 },
		{ &mesh6, "f", "a", 3 },   /* f-d-b-a */
		{ &mesh6, "f", "a c", 4 }, /* f-d-b-a, d-c */
		{ &mesh6, "c", "f", 2 },   /* c-d-f (d before e) */
		{ &mesh6, "e", "a b", 3 },
		{ &mesh6, "e", "a b c d f", 5 },
		{ &mesh6, "d", "a e", 4 }, /* d-b-a, d-c-e */
	};

	for (size_t i = 0; i < N(rows); i++)
		expect_tree(&rows[i]);
}

Test(inm_view, tree_hop_edges)
{
	struct inm_view *v = topo_view(&line7, "n3");
	const char *hop = "unset";

	/* below us */
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n6", &hop), 1);
	cr_expect_str_eq(hop, "n4");
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n4", &hop), 1);
	cr_expect_str_eq(hop, "n4");
	/* not below us: above, us, the source, another branch */
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n1", &hop), 0);
	cr_expect_null(hop);
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n3", &hop), 0);
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n0", &hop), 0);
	cr_expect_eq(inm_view_tree_hop(v, "n5", "n6", &hop), 0);
	cr_expect_eq(inm_view_tree_hop(v, "n4", "n6", &hop), 0);
	cr_expect_eq(inm_view_tree_hop(v, "n4", "n0", &hop), 1);
	cr_expect_str_eq(hop, "n2");
	/* we are the source: our own shortest path */
	cr_expect_eq(inm_view_tree_hop(v, "n3", "n0", &hop), 1);
	cr_expect_str_eq(hop, inm_view_next_hop(v, "n0"));
	cr_expect_eq(inm_view_tree_hop(v, "n3", "n3", &hop), 0);
	/* unknown */
	hop = "unset";
	cr_expect_eq(inm_view_tree_hop(v, "zz", "n1", &hop), -1);
	cr_expect_null(hop);
	cr_expect_eq(inm_view_tree_hop(v, "n0", "zz", &hop), -1);
	/* known but unreachable (a one-way link to n6) */
	merge_expect(v, rec("x", 1, 1, "n6"), INM_MERGE_NEWS);
	cr_expect_eq(inm_view_tree_hop(v, "n0", "x", &hop), -1);
	cr_expect_eq(inm_view_tree_hop(v, "x", "n0", &hop), -1);
	inm_view_destroy(v);
}

Test(inm_view, tree_hop_follows_record_updates)
{
	/* n1 on a ring of 7: n0's tree to n3 runs n0-n1-n2-n3 */
	struct inm_view *v = topo_view(&ring7, "n1");
	const char *hop;

	cr_expect_eq(inm_view_tree_hop(v, "n0", "n3", &hop), 1);
	cr_expect_str_eq(hop, "n2");
	cr_expect_eq(inm_view_tree_hop(v, "n5", "n2", &hop), 0);
	/* n2 - n3 goes: n3 is now reached the other way round */
	merge_expect(v, rec("n2", 1, 2, "n1"), INM_MERGE_NEWS);
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n3", &hop), 0);
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n2", &hop), 1);
	cr_expect_str_eq(hop, "n2");
	cr_expect_eq(inm_view_tree_hop(v, "n5", "n2", &hop), 1,
		     "n5's tree is drawn again");
	cr_expect_str_eq(hop, "n2");
	/* and back */
	merge_expect(v, rec("n2", 1, 3, "n1 n3"), INM_MERGE_NEWS);
	cr_expect_eq(inm_view_tree_hop(v, "n0", "n3", &hop), 1);
	cr_expect_eq(inm_view_tree_hop(v, "n5", "n2", &hop), 0);
	inm_view_destroy(v);
}

/* ------------------------------------------------------------------ */
/* The view digest                                                     */

static const struct topo star = {
	5,
	{ "a", "b", "c", "d", "e" },
	"a:b a:c a:d b:c",
};

Test(inm_view, view_digest_is_independent_of_merge_order)
{
	struct inm_view *v1 = topo_view(&star, "a");
	struct inm_view *v2 = inm_view_create("a", 64);
	struct inm_node_state st = topo_rec(&star, "a", 1);

	cr_assert_not_null(v2);
	/* the same records, heard in another order, via older versions */
	merge_expect(v2, topo_rec(&star, "c", 1), INM_MERGE_NEWS);
	merge_expect(v2, rec("b", 1, 0, ""), INM_MERGE_NEWS);
	inm_view_set_self(v2, &st);
	merge_expect(v2, topo_rec(&star, "d", 1), INM_MERGE_NEWS);
	merge_expect(v2, topo_rec(&star, "b", 1), INM_MERGE_NEWS);
	merge_expect(v2, topo_rec(&star, "e", 1), INM_MERGE_NEWS);
	cr_expect_eq(inm_view_digest(v1), inm_view_digest(v2));
	cr_expect_eq(inm_view_digest(v1), inm_view_digest(v1), "stable");
	inm_view_destroy(v1);
	inm_view_destroy(v2);
}

Test(inm_view, view_digest_differs_when_any_version_differs)
{
	struct inm_view *base = topo_view(&star, "a");
	uint64_t d = inm_view_digest(base);

	for (size_t i = 0; i < star.n; i++) {
		const char *name = star.names[i];
		struct inm_view *v;
		struct inm_node_state st;

		if (!strcmp(name, "e"))
			continue; /* unreachable: see below */
		v = topo_view(&star, "a");
		st = topo_rec(&star, name, 2);
		cr_expect_eq(inm_view_digest(v), d);
		if (i == 0)
			inm_view_set_self(v, &st);
		else
			merge_expect(v, st, INM_MERGE_NEWS);
		cr_expect_neq(inm_view_digest(v), d, "%s at version 2", name);
		inm_view_destroy(v);

		/* a new incarnation at the same version */
		v = topo_view(&star, "a");
		st = topo_rec(&star, name, 1);
		st.incarnation = 2;
		if (i == 0)
			inm_view_set_self(v, &st);
		else
			merge_expect(v, st, INM_MERGE_NEWS);
		cr_expect_neq(inm_view_digest(v), d, "%s at incarnation 2",
			      name);
		inm_view_destroy(v);
	}
	inm_view_destroy(base);
}

Test(inm_view, view_digest_ignores_unreachable_and_legacy_records)
{
	struct inm_view *v = topo_view(&star, "a");
	struct inm_view *w = inm_view_create("a", 64);
	struct inm_node_state st = topo_rec(&star, "a", 1);
	uint64_t d = inm_view_digest(v);

	/* e (one-way: it lists nobody) is not in the digest */
	cr_expect_not(inm_view_reachable(v, "e"));
	merge_expect(v, rec("e", 7, 7, "a"), INM_MERGE_NEWS);
	cr_expect_eq(inm_view_digest(v), d, "an unreachable record counted");
	/* nor is a crashed node's stale record */
	merge_expect(v, rec("d", 1, 1, "a"), INM_MERGE_OLD);
	st.version = 2;
	st.npeers = 2; /* "b c": a drops d */
	inm_view_set_self(v, &st);
	d = inm_view_digest(v);
	merge_expect(v, rec("d", 1, 5, "a"), INM_MERGE_NEWS);
	cr_expect_eq(inm_view_digest(v), d, "unreachable d counted");

	/* a reachable legacy record is left out too */
	cr_assert_not_null(w);
	inm_view_set_self(w, &st);
	merge_expect(w, rec("b", 1, 2, "a c x"), INM_MERGE_NEWS);
	merge_expect(w, topo_rec(&star, "c", 1), INM_MERGE_NEWS);
	d = inm_view_digest(w);
	st = rec("x", 1, 1, "b");
	st.legacy = true;
	merge_expect(w, st, INM_MERGE_NEWS);
	cr_expect(inm_view_reachable(w, "x"));
	cr_expect_eq(inm_view_digest(w), d, "a legacy record counted");
	inm_view_destroy(v);
	inm_view_destroy(w);
}
