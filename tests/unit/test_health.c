/*
 * tests/unit/test_health: PROTOCOL.md 6.3 as a table (state, first reason,
 * every reason in order) with each boundary on both sides, the /health
 * JSON byte for byte, and a small Prometheus text-format checker run over
 * metrics_render's output.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct health_peer p_up_fast[] = { { "a", true, 3.0 } };
static const struct health_peer p_up_slow[] = { { "a", true, 25.0 } };
static const struct health_peer p_up_equal[] = { { "a", true, 10.0 } };
static const struct health_peer p_up_above[] = { { "a", true, 10.001 } };
static const struct health_peer p_up_unmeasured[] = { { "a", true, -1.0 } };
static const struct health_peer p_down_slow[] = { { "a", false, 50.0 } };
static const struct health_peer p_down_fast[] = { { "a", false, 1.0 } };
static const struct health_peer p_mixed[] = {
	{ "a", false, 99.0 },
	{ "b", true, 2.0 },
	{ "c", true, 10.5 },
};
static const struct health_peer p_mixed_ok[] = {
	{ "a", false, 99.0 },
	{ "b", true, -1.0 },
	{ "c", true, 9.9 },
};

#define PEERS(p) p, N(p)
#define NOPEERS NULL, 0

#define CNC "channels no clients"
#define NP "no peers"
#define HL "high latency"
#define CLNC "clients no channels"
#define DR "draining"

static const struct row {
	const char *what;
	unsigned channels, clients, configured;
	const struct health_peer *peers;
	unsigned npeers;
	int max_latency;
	enum health_state state;
	const char *reasons[HEALTH_MAX_REASONS + 1]; /* NULL-terminated */
} rows[] = {
	{ "idle", 0, 0, 0, NOPEERS, 10, HEALTH_GOOD, { NULL } },
	{ "busy", 3, 7, 0, NOPEERS, 10, HEALTH_GOOD, { NULL } },
	/* bad: channels no clients */
	{ "channel, no client", 1, 0, 0, NOPEERS, 10, HEALTH_BAD, { CNC } },
	{ "channel, one client", 1, 1, 0, NOPEERS, 10, HEALTH_GOOD, { NULL } },
	/* degraded: no peers, never when [[peers]] is empty */
	{ "no peers configured", 0, 0, 0, NOPEERS, 10, HEALTH_GOOD, { NULL } },
	{ "configured, none linked",
	  0,
	  0,
	  2,
	  NOPEERS,
	  10,
	  HEALTH_DEGRADED,
	  { NP } },
	{ "configured, only down",
	  0,
	  0,
	  1,
	  PEERS(p_down_fast),
	  10,
	  HEALTH_DEGRADED,
	  { NP } },
	{ "configured, one up",
	  0,
	  0,
	  2,
	  PEERS(p_up_fast),
	  10,
	  HEALTH_GOOD,
	  { NULL } },
	{ "not configured, inbound up",
	  0,
	  0,
	  0,
	  PEERS(p_up_fast),
	  10,
	  HEALTH_GOOD,
	  { NULL } },
	{ "not configured, down",
	  0,
	  0,
	  0,
	  PEERS(p_down_fast),
	  10,
	  HEALTH_GOOD,
	  { NULL } },
	/* degraded: high latency, strictly above, up peers only, measured only */
	{ "up and slow", 0, 0, 1, PEERS(p_up_slow), 10, HEALTH_DEGRADED, { HL } },
	{ "up and slow, unconfigured",
	  0,
	  0,
	  0,
	  PEERS(p_up_slow),
	  10,
	  HEALTH_DEGRADED,
	  { HL } },
	{ "latency equal to max",
	  0,
	  0,
	  1,
	  PEERS(p_up_equal),
	  10,
	  HEALTH_GOOD,
	  { NULL } },
	{ "latency just above",
	  0,
	  0,
	  1,
	  PEERS(p_up_above),
	  10,
	  HEALTH_DEGRADED,
	  { HL } },
	{ "unmeasured",
	  0,
	  0,
	  1,
	  PEERS(p_up_unmeasured),
	  10,
	  HEALTH_GOOD,
	  { NULL } },
	{ "unmeasured, max 0",
	  0,
	  0,
	  1,
	  PEERS(p_up_unmeasured),
	  0,
	  HEALTH_GOOD,
	  { NULL } },
	{ "down and slow, unconfigured",
	  0,
	  0,
	  0,
	  PEERS(p_down_slow),
	  10,
	  HEALTH_GOOD,
	  { NULL } },
	{ "down and slow, configured",
	  0,
	  0,
	  1,
	  PEERS(p_down_slow),
	  10,
	  HEALTH_DEGRADED,
	  { NP } },
	{ "one of several slow",
	  0,
	  0,
	  3,
	  PEERS(p_mixed),
	  10,
	  HEALTH_DEGRADED,
	  { HL } },
	{ "several, none slow",
	  0,
	  0,
	  3,
	  PEERS(p_mixed_ok),
	  10,
	  HEALTH_GOOD,
	  { NULL } },
	{ "max 0", 0, 0, 1, PEERS(p_up_fast), 0, HEALTH_DEGRADED, { HL } },
	{ "max 100", 0, 0, 1, PEERS(p_up_slow), 100, HEALTH_GOOD, { NULL } },
	{ "max 25, latency 25",
	  0,
	  0,
	  1,
	  PEERS(p_up_slow),
	  25,
	  HEALTH_GOOD,
	  { NULL } },
	{ "max 24, latency 25",
	  0,
	  0,
	  1,
	  PEERS(p_up_slow),
	  24,
	  HEALTH_DEGRADED,
	  { HL } },
	/* degraded: clients no channels, more than 3 */
	{ "3 clients", 0, 3, 0, NOPEERS, 10, HEALTH_GOOD, { NULL } },
	{ "4 clients", 0, 4, 0, NOPEERS, 10, HEALTH_DEGRADED, { CLNC } },
	{ "4 clients, a channel", 1, 4, 0, NOPEERS, 10, HEALTH_GOOD, { NULL } },
	/* precedence: the first that holds is the reason, all are listed */
	{ "cnc + no peers", 1, 0, 2, NOPEERS, 10, HEALTH_BAD, { CNC, NP } },
	{ "cnc + high latency",
	  2,
	  0,
	  1,
	  PEERS(p_up_slow),
	  10,
	  HEALTH_BAD,
	  { CNC, HL } },
	{ "no peers + clnc",
	  0,
	  5,
	  1,
	  PEERS(p_down_slow),
	  10,
	  HEALTH_DEGRADED,
	  { NP, CLNC } },
	{ "high latency + clnc",
	  0,
	  5,
	  1,
	  PEERS(p_mixed),
	  10,
	  HEALTH_DEGRADED,
	  { HL, CLNC } },
	{ "high latency + clnc, unconfigured",
	  0,
	  4,
	  0,
	  PEERS(p_up_above),
	  10,
	  HEALTH_DEGRADED,
	  { HL, CLNC } },
};

static void eval_row(const struct row *r, struct health_result *res)
{
	struct health_input in = {
		.active_channels = r->channels,
		.clients = r->clients,
		.peers_configured = r->configured,
		.peers = r->peers,
		.npeers = r->npeers,
		.max_latency_ms = r->max_latency,
	};

	memset(res, 0xa5, sizeof(*res)); /* eval must set every field */
	health_eval(&in, res);
}

Test(health, eval_table)
{
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *r = &rows[i];
		struct health_result res;
		unsigned n = 0;

		while (r->reasons[n])
			n++;
		eval_row(r, &res);
		cr_expect_eq(res.state, r->state, "row %zu (%s): state %s", i,
			     r->what, health_state_name(res.state));
		cr_expect_str_eq(res.reason, n ? r->reasons[0] : "healthy",
				 "row %zu (%s)", i, r->what);
		cr_expect_eq(res.nreasons, n, "row %zu (%s): %u reasons", i,
			     r->what, res.nreasons);
		for (unsigned k = 0; k < n && k < res.nreasons; k++)
			cr_expect_str_eq(res.reasons[k], r->reasons[k],
					 "row %zu (%s) #%u", i, r->what, k);
	}
}

/* draining (SIGUSR2) is bad and first, whatever else holds: load
 * balancers move away at once */
Test(health, draining)
{
	static const struct {
		struct health_input in;
		const char *reasons[HEALTH_MAX_REASONS + 1];
	} dr[] = {
		{ { .draining = true }, { DR } },
		{ { .active_channels = 3, .clients = 7, .draining = true },
		  { DR } },
		{ { .active_channels = 1,
		    .peers_configured = 2,
		    .peers = p_up_slow,
		    .npeers = 1,
		    .max_latency_ms = 10,
		    .draining = true },
		  { DR, CNC, HL } },
		{ { .clients = 5, .peers_configured = 1, .draining = true },
		  { DR, NP, CLNC } },
	};

	for (size_t i = 0; i < sizeof(dr) / sizeof(dr[0]); i++) {
		struct health_result res;
		unsigned n = 0;

		memset(&res, 0xa5, sizeof(res));
		health_eval(&dr[i].in, &res);
		while (dr[i].reasons[n])
			n++;
		cr_expect_eq(res.state, HEALTH_BAD, "case %zu", i);
		cr_expect_str_eq(res.reason, DR, "case %zu", i);
		cr_expect_eq(res.nreasons, n, "case %zu: %u reasons", i,
			     res.nreasons);
		for (unsigned k = 0; k < n && k < res.nreasons; k++)
			cr_expect_str_eq(res.reasons[k], dr[i].reasons[k],
					 "case %zu reason %u", i, k);
	}
}

Test(health, state_names_and_status)
{
	static const struct {
		enum health_state s;
		const char *name;
		int status;
	} t[] = {
		{ HEALTH_GOOD, "good", 200 },
		{ HEALTH_DEGRADED, "degraded", 200 },
		{ HEALTH_BAD, "bad", 503 },
	};

	for (size_t i = 0; i < N(t); i++) {
		cr_expect_str_eq(health_state_name(t[i].s), t[i].name);
		cr_expect_eq(health_http_status(t[i].s), t[i].status, "%s",
			     t[i].name);
	}
}

static void json_is(const struct health_result *r, const char *node,
		    const char *exp)
{
	struct wr_buf b;

	wr_buf_init(&b);
	health_json(&b, r, node);
	cr_assert_not_null(b.p);
	cr_expect_str_eq(b.p, exp);
	cr_expect_eq(b.len, strlen(exp));
	wr_buf_fini(&b);
}

Test(health, json_exact)
{
	struct health_result res;

	eval_row(&rows[0], &res);
	json_is(&res, "node-1",
		"{\"healthy\":\"good\",\"reason\":\"healthy\",\"reasons\":[],"
		"\"node\":\"node-1\"}");

	eval_row(&rows[5], &res); /* no peers */
	json_is(&res, "n",
		"{\"healthy\":\"degraded\",\"reason\":\"no peers\","
		"\"reasons\":[\"no peers\"],\"node\":\"n\"}");

	for (size_t i = 0; i < N(rows); i++)
		if (!strcmp(rows[i].what, "cnc + high latency"))
			eval_row(&rows[i], &res);
	json_is(&res, "we\"ird\\\n\xc3\xa9",
		"{\"healthy\":\"bad\",\"reason\":\"channels no clients\","
		"\"reasons\":[\"channels no clients\",\"high latency\"],"
		"\"node\":\"we\\\"ird\\\\\\n\xc3\xa9\"}");
}

/* ---- /metrics ---- */

struct family {
	char name[128];
	char type[16];
	bool help;
	unsigned samples;
};

struct expo {
	struct family fam[64];
	unsigned nfam;
};

static struct family *family_get(struct expo *e, const char *name, size_t len)
{
	for (unsigned i = 0; i < e->nfam; i++)
		if (strlen(e->fam[i].name) == len &&
		    !memcmp(e->fam[i].name, name, len))
			return &e->fam[i];
	return NULL;
}

static bool name_char(char c, bool first)
{
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}

/* Parses "{k="v",...}" at @p; returns the byte after '}' or NULL. */
static const char *parse_labels(const char *p)
{
	if (*p != '{')
		return p;
	p++;
	while (*p != '}') {
		if (!name_char(*p, true))
			return NULL;
		while (name_char(*p, false))
			p++;
		if (*p++ != '=' || *p++ != '"')
			return NULL;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				return NULL;
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n')
					return NULL;
			}
			p++;
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return NULL;
	}
	return p + 1;
}

/*
 * Checks the exposition: every line is HELP, TYPE or a sample; HELP then
 * TYPE precede a family's samples, which follow them contiguously; counter
 * names end in _total and gauges' do not; every value is a number.
 */
static void check_exposition(const char *text, struct expo *e)
{
	const char *line = text;
	struct family *cur = NULL;
	unsigned lineno = 0;

	memset(e, 0, sizeof(*e));
	cr_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n',
		  "ends with a newline");
	while (*line) {
		const char *nl = strchr(line, '\n');
		char buf[1024];
		size_t len = (size_t)(nl - line);

		lineno++;
		cr_assert_not_null(nl);
		cr_assert_lt(len, sizeof(buf), "line %u too long", lineno);
		memcpy(buf, line, len);
		buf[len] = '\0';
		cr_assert_gt(len, 0, "line %u empty", lineno);

		if (!strncmp(buf, "# HELP ", 7)) {
			const char *n = buf + 7, *sp = strchr(n, ' ');

			cr_assert_not_null(sp, "line %u: HELP without text",
					   lineno);
			cr_assert_gt(strlen(sp + 1), 0, "line %u: empty HELP",
				     lineno);
			cr_assert_null(family_get(e, n, (size_t)(sp - n)),
				       "line %u: %.*s described twice", lineno,
				       (int)(sp - n), n);
			cr_assert_lt(e->nfam, N(e->fam));
			cur = &e->fam[e->nfam++];
			snprintf(cur->name, sizeof(cur->name), "%.*s",
				 (int)(sp - n), n);
			cur->help = true;
		} else if (!strncmp(buf, "# TYPE ", 7)) {
			const char *n = buf + 7, *sp = strchr(n, ' ');

			cr_assert_not_null(sp, "line %u", lineno);
			cr_assert(cur && strlen(cur->name) == (size_t)(sp - n) &&
					  !memcmp(cur->name, n,
						  (size_t)(sp - n)),
				  "line %u: TYPE not right after its HELP",
				  lineno);
			cr_assert_eq(cur->type[0], '\0', "line %u: TYPE twice",
				     lineno);
			cr_assert(!strcmp(sp + 1, "counter") ||
					  !strcmp(sp + 1, "gauge"),
				  "line %u: type %s", lineno, sp + 1);
			snprintf(cur->type, sizeof(cur->type), "%s", sp + 1);
		} else {
			const char *p = buf, *v;
			char *end;
			size_t nlen;

			cr_assert_neq(buf[0], '#', "line %u: unknown comment",
				      lineno);
			cr_assert(name_char(*p, true), "line %u: bad name",
				  lineno);
			while (name_char(*p, false))
				p++;
			nlen = (size_t)(p - buf);
			cr_assert(cur && strlen(cur->name) == nlen &&
					  !memcmp(cur->name, buf, nlen),
				  "line %u: sample %.*s outside its family",
				  lineno, (int)nlen, buf);
			cr_assert(cur->type[0], "line %u: sample before TYPE",
				  lineno);
			v = parse_labels(p);
			cr_assert_not_null(v, "line %u: bad labels: %s", lineno,
					   buf);
			cr_assert_eq(*v, ' ',
				     "line %u: no space before the value",
				     lineno);
			v++;
			cr_assert_gt(strlen(v), 0, "line %u: no value", lineno);
			strtod(v, &end);
			cr_assert_eq(*end, '\0', "line %u: value \"%s\"",
				     lineno, v);
			cur->samples++;
		}
		line = nl + 1;
	}
	for (unsigned i = 0; i < e->nfam; i++) {
		struct family *f = &e->fam[i];
		size_t n = strlen(f->name);
		bool total = n > 6 && !strcmp(f->name + n - 6, "_total");

		cr_expect(f->help && f->type[0], "%s: HELP and TYPE", f->name);
		cr_expect_gt(f->samples, 0, "%s: no sample", f->name);
		cr_expect_eq(!strncmp(f->name, "wsrelay_", 8), true,
			     "%s: prefix", f->name);
		if (!strcmp(f->type, "counter"))
			cr_expect(total, "counter %s must end in _total",
				  f->name);
		else
			cr_expect_not(total, "gauge %s must not end in _total",
				      f->name);
	}
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void render(struct wr_buf *b, const char *node)
{
	struct health_counters c = {
		.connections_total = 101,
		.connections_rejected = 102,
		.client_msgs_in = 103,
		.client_msgs_out = 104,
		.client_bytes_in = 105,
		.client_bytes_out = 106,
		.client_errors = 107,
		.slow_consumer_disconnects = 108,
		.dropped_slow_consumer = 109,
		.protocol_closes = 110,
		.pw_ok = 111,
		.pw_failed = 112,
		.pw_cached = 113,
		.pw_rate_limited = 18446744073709551615ULL,
		.auth_ok = 121,
		.auth_invalid = 122,
		.auth_expired = 123,
		.auth_closes_unauthorized = 124,
		.auth_closes_expired = 125,
		.permission_denied = 126,
	};
	struct health_gauges g = {
		.clients = 201,
		.channels_active = 202,
		.channels_reserved = 203,
		.subscriptions = 204,
		.peers_up = 205,
		.peers_configured = 206,
		.pw_jobs_pending = 207,
		.uptime_seconds = 12.5,
	};

	wr_buf_init(b);
	metrics_render(b, &c, &g, node);
	cr_assert_not_null(b->p);
	cr_assert_not(b->oom);
}

Test(health, metrics_format)
{
	struct wr_buf b;
	static struct expo e;

	render(&b, "node-1");
	check_exposition(b.p, &e);
	cr_expect_geq(e.nfam, 15);
	wr_buf_fini(&b);
}

Test(health, metrics_values)
{
	static const char *const lines[] = {
		"wsrelay_build_info{version=\"" WR_VERSION
		"\",node=\"node-1\"} 1",
		"wsrelay_uptime_seconds 12.500",
		"wsrelay_clients 201",
		"wsrelay_channels_active 202",
		"wsrelay_channels_reserved 203",
		"wsrelay_subscriptions 204",
		"wsrelay_peers_up 205",
		"wsrelay_peers_configured 206",
		"wsrelay_password_jobs_pending 207",
		"wsrelay_connections_total 101",
		"wsrelay_auth_total{result=\"ok\"} 121",
		"wsrelay_auth_total{result=\"invalid\"} 122",
		"wsrelay_auth_total{result=\"expired\"} 123",
		"wsrelay_auth_closes_total{reason=\"unauthorized\"} 124",
		"wsrelay_auth_closes_total{reason=\"token_expired\"} 125",
		"wsrelay_permission_denied_total 126",
		"wsrelay_connections_rejected_total 102",
		"wsrelay_client_messages_in_total 103",
		"wsrelay_client_messages_out_total 104",
		"wsrelay_client_bytes_in_total 105",
		"wsrelay_client_bytes_out_total 106",
		"wsrelay_client_errors_total 107",
		"wsrelay_slow_consumer_disconnects_total 108",
		"wsrelay_messages_dropped_total{reason=\"slow_consumer\"} 109",
		"wsrelay_client_protocol_closes_total 110",
		"wsrelay_password_verifications_total{result=\"ok\"} 111",
		"wsrelay_password_verifications_total{result=\"failed\"} 112",
		"wsrelay_password_verifications_total{result=\"cached\"} 113",
		"wsrelay_password_verifications_total{result=\"rate_limited\"} 18446744073709551615",
	};
	struct wr_buf b;

	render(&b, "node-1");
	for (size_t i = 0; i < N(lines); i++)
		cr_expect(has_line(b.p, lines[i]),
			  "missing line: %s\n--- output:\n%s", lines[i], b.p);
	wr_buf_fini(&b);
}

Test(health, metrics_label_escaping)
{
	static const struct {
		const char *node;
		const char *label;
	} t[] = {
		{ "plain", "plain" },
		{ "q\"uote", "q\\\"uote" },
		{ "back\\slash", "back\\\\slash" },
		{ "new\nline", "new\\nline" },
		{ "all\"\\\n\"", "all\\\"\\\\\\n\\\"" },
		{ "caf\xc3\xa9 x", "caf\xc3\xa9 x" },
		{ "", "" },
	};

	for (size_t i = 0; i < N(t); i++) {
		struct wr_buf b;
		static struct expo e;
		char line[256];

		render(&b, t[i].node);
		snprintf(line, sizeof(line),
			 "wsrelay_build_info{version=\"" WR_VERSION
			 "\",node=\"%s\"} 1",
			 t[i].label);
		cr_expect(has_line(b.p, line), "row %zu: missing %s", i, line);
		check_exposition(b.p, &e);
		wr_buf_fini(&b);
	}
}

/* Rendering appends to what the buffer holds; zero values are printed. */
Test(health, metrics_appends)
{
	struct wr_buf b;
	size_t once;

	render(&b, "n");
	once = b.len;
	wr_buf_reset(&b);
	cr_expect_eq(b.len, 0);
	{
		struct health_counters c = { 0 };
		struct health_gauges g = { 0 };

		wr_buf_puts(&b, "# HELP x\n");
		metrics_render(&b, &c, &g, "n");
		cr_expect(!strncmp(b.p, "# HELP x\n# HELP wsrelay_", 24),
			  "appended after prefix");
		cr_expect(has_line(b.p, "wsrelay_connections_total 0"));
		cr_expect(has_line(b.p, "wsrelay_uptime_seconds 0.000"));
		cr_expect_lt(b.len, once + 9, "zero values print shorter");
	}
	wr_buf_fini(&b);
}
