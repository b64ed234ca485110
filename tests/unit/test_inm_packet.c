/*
 * tests/unit/test_inm_packet: the INM packet codec — every field wrong in
 * every way (tables: input and the exact drop reason), the data shape of
 * each type, ttl edges, encode -> decode round trips, nonces and base64.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "inm.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NONCE "0123456789abcdef0123456789abcdef"
#define HDR \
	"\"source\":\"node-1\",\"destination\":\"*\",\"nonce\":\"" NONCE "\""
#define MSGDATA "{\"channel\":\"c1\",\"message\":\"aGk=\"}"

static enum inm_drop decode_str(struct inm_packet *pkt, const char *s)
{
	return inm_packet_decode(pkt, s, strlen(s));
}

struct row {
	const char *in;
	enum inm_drop want;
};

static void run_rows(const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct inm_packet pkt;
		enum inm_drop got = decode_str(&pkt, rows[i].in);

		cr_expect_eq(got, rows[i].want,
			     "row %zu: %s\n  got %s, want %s", i, rows[i].in,
			     inm_drop_name(got), inm_drop_name(rows[i].want));
		if (got != INM_DROP_NONE)
			cr_expect_null(pkt.data,
				       "row %zu: data kept on failure", i);
		inm_packet_fini(&pkt);
	}
}

Test(inm_packet, decodes_a_message)
{
	struct inm_packet pkt;
	const char *in =
		"{" HDR
		",\"type\":\"message\",\"data\":"
		"{\"channel\":\"c1\",\"message\":\"aGk=\",\"client_nonce\":\"abc\"}}";
	const char *ch, *m, *cn;

	cr_assert_eq(decode_str(&pkt, in), INM_DROP_NONE);
	cr_expect_str_eq(pkt.source, "node-1");
	cr_expect_str_eq(pkt.destination, "*");
	cr_expect_eq(pkt.type, INM_MESSAGE);
	cr_expect_str_eq(pkt.nonce, NONCE);
	cr_expect_eq(pkt.ttl, INM_TTL_DEFAULT);
	cr_assert_eq(inm_message_fields(&pkt, &ch, &m, &cn), WR_OK);
	cr_expect_str_eq(ch, "c1");
	cr_expect_str_eq(m, "aGk=");
	cr_expect_str_eq(cn, "abc");
	inm_packet_fini(&pkt);
	cr_expect_null(pkt.data);
	inm_packet_fini(&pkt); /* twice is harmless */
}

Test(inm_packet, decodes_each_type)
{
	static const struct row rows[] = {
		{ "{" HDR
		  ",\"type\":\"command\",\"data\":{\"command\":\"list-nodes\"}}",
		  INM_DROP_NONE },
		{ "{" HDR
		  ",\"type\":\"response\",\"data\":{\"ok\":false,\"reason\":\"x\"}}",
		  INM_DROP_NONE },
		{ "{" HDR ",\"type\":\"response\",\"data\":{\"ok\":true}}",
		  INM_DROP_NONE },
		{ "{" HDR
		  ",\"type\":\"event\",\"data\":{\"event\":\"announce\",\"peers\":[]}}",
		  INM_DROP_NONE },
		{ "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA "}",
		  INM_DROP_NONE },
		/* whitespace around and inside, unknown keys ignored, any order */
		{ " \n{\"data\":" MSGDATA ",\"x\":[1,{}]," HDR
		  ",\"type\":\"message\"}\r\n\t",
		  INM_DROP_NONE },
		/* a named destination, names at the length limit */
		{ "{\"source\":\""
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "\","
		  "\"destination\":\""
		  "A.b_c-9"
		  "\",\"nonce\":\"" NONCE
		  "\",\"type\":\"event\",\"data\":{\"event\":\"e\"}}",
		  INM_DROP_NONE },
		/* empty message payload, null and max-length client nonce */
		{ "{" HDR
		  ",\"type\":\"message\",\"data\":{\"channel\":\"c\",\"message\":\"\"}}",
		  INM_DROP_NONE },
		{ "{" HDR
		  ",\"type\":\"message\",\"data\":{\"channel\":\"c\",\"message\":\"\",\"client_nonce\":null}}",
		  INM_DROP_NONE },
	};
	run_rows(rows, N(rows));
}

Test(inm_packet, rejects_bad_json)
{
	static const struct row rows[] = {
		{ "", INM_DROP_JSON },
		{ "   ", INM_DROP_JSON },
		{ "{", INM_DROP_JSON },
		{ "nul", INM_DROP_JSON },
		{ "null", INM_DROP_JSON },
		{ "[]", INM_DROP_JSON },
		{ "\"x\"", INM_DROP_JSON },
		{ "42", INM_DROP_JSON },
		{ "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA "} x",
		  INM_DROP_JSON },
		{ "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA "}{}",
		  INM_DROP_JSON },
		{ "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA ",}",
		  INM_DROP_JSON },
		/* a key given twice is ambiguous across implementations */
		{ "{" HDR
		  ",\"source\":\"node-2\",\"type\":\"message\",\"data\":" MSGDATA
		  "}",
		  INM_DROP_JSON },
		{ "{" HDR
		  ",\"type\":\"message\",\"type\":\"message\",\"data\":" MSGDATA
		  "}",
		  INM_DROP_JSON },
		/* an escaped NUL would silently truncate the string */
		{ "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA
		  ",\"x\":\"a\\u0000b\"}",
		  INM_DROP_JSON },
	};
	run_rows(rows, N(rows));
}

Test(inm_packet, rejects_raw_nul_but_not_escaped_backslash)
{
	struct inm_packet pkt;
	char in[] = "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA
		    ",\"x\":\"a b\"}";
	const char *ok = "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA
			 ",\"x\":\"\\\\u0000\"}";

	*strchr(in, ' ') = '\0';
	cr_expect_eq(inm_packet_decode(&pkt, in, sizeof(in) - 1),
		     INM_DROP_JSON);
	inm_packet_fini(&pkt);
	cr_expect_eq(decode_str(&pkt, ok), INM_DROP_NONE);
	inm_packet_fini(&pkt);
	cr_expect_eq(inm_packet_decode(&pkt, NULL, 0), INM_DROP_JSON);
	inm_packet_fini(&pkt);
}

#define REST_D                                                           \
	",\"destination\":\"*\",\"type\":\"message\",\"nonce\":\"" NONCE \
	"\",\"data\":" MSGDATA "}"
#define REST_S                                                     \
	"\"source\":\"n\",\"type\":\"message\",\"nonce\":\"" NONCE \
	"\",\"data\":" MSGDATA "}"

Test(inm_packet, rejects_bad_source)
{
	static const struct row rows[] = {
		{ "{\"x\":1" REST_D, INM_DROP_SOURCE }, /* missing */
		{ "{\"source\":null" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":1" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":true" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":[\"a\"]" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":{}" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"\"" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"*\"" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"a b\"" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"a/b\"" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"a:b\"" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"n\\u00e9\"" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"n\\n\"" REST_D, INM_DROP_SOURCE },
		{ "{\"source\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" REST_D,
		  INM_DROP_SOURCE },
	};
	run_rows(rows, N(rows));
}

Test(inm_packet, rejects_bad_destination)
{
	static const struct row rows[] = {
		{ "{" REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":null," REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":7," REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":[\"*\"]," REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":\"\"," REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":\"**\"," REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":\"*a\"," REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":\"n 1\"," REST_S, INM_DROP_DESTINATION },
		{ "{\"destination\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"," REST_S,
		  INM_DROP_DESTINATION },
	};
	run_rows(rows, N(rows));
}

#define PRE_T                                                        \
	"{\"source\":\"n\",\"destination\":\"*\",\"nonce\":\"" NONCE \
	"\",\"data\":" MSGDATA

Test(inm_packet, rejects_bad_type)
{
	static const struct row rows[] = {
		{ PRE_T "}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":null}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":0}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":\"\"}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":\"Message\"}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":\"messages\"}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":\"messag\"}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":\"handshake\"}", INM_DROP_TYPE },
		{ PRE_T ",\"type\":[\"message\"]}", INM_DROP_TYPE },
	};
	run_rows(rows, N(rows));
}

#define PRE_N \
	"{\"source\":\"n\",\"destination\":\"*\",\"type\":\"message\",\"data\":" MSGDATA

Test(inm_packet, rejects_bad_nonce)
{
	static const struct row rows[] = {
		{ PRE_N "}", INM_DROP_NONCE },
		{ PRE_N ",\"nonce\":null}", INM_DROP_NONCE },
		{ PRE_N ",\"nonce\":12345678901234567890123456789012}",
		  INM_DROP_NONCE },
		{ PRE_N ",\"nonce\":\"\"}", INM_DROP_NONCE },
		{ PRE_N ",\"nonce\":\"0123456789abcdef0123456789abcde\"}",
		  INM_DROP_NONCE }, /* 31 */
		{ PRE_N ",\"nonce\":\"0123456789abcdef0123456789abcdef0\"}",
		  INM_DROP_NONCE }, /* 33 */
		{ PRE_N ",\"nonce\":\"0123456789ABCDEF0123456789abcdef\"}",
		  INM_DROP_NONCE }, /* case */
		{ PRE_N ",\"nonce\":\"0123456789abcdeg0123456789abcdef\"}",
		  INM_DROP_NONCE }, /* non-hex */
		{ PRE_N ",\"nonce\":\"0123456789abcde 0123456789abcdef\"}",
		  INM_DROP_NONCE },
		{ PRE_N
		  ",\"nonce\":\"0123456789abcdef0123456789abcde\\u0066\"}",
		  INM_DROP_NONE }, /* "f" escaped is still "f" */
	};
	run_rows(rows, N(rows));
}

#define PRE_TTL "{" HDR ",\"type\":\"message\",\"data\":" MSGDATA

Test(inm_packet, ttl_edges)
{
	static const struct {
		const char *ttl;
		int want; /* -1: rejected */
	} rows[] = {
		{ NULL, 16 },    { "0", 0 },           { "1", 1 },
		{ "255", 255 },  { "16.0", 16 },       { "1e1", 10 },
		{ "-0", 0 },     { "256", -1 },        { "-1", -1 },
		{ "1.5", -1 },   { "0.1", -1 },        { "254.9999", -1 },
		{ "1e300", -1 }, { "-1e300", -1 },     { "\"16\"", -1 },
		{ "null", -1 },  { "true", -1 },       { "[16]", -1 },
		{ "{}", -1 },    { "4294967312", -1 },
	};
	char in[512];

	for (size_t i = 0; i < N(rows); i++) {
		struct inm_packet pkt;
		enum inm_drop got;

		if (rows[i].ttl)
			snprintf(in, sizeof(in), PRE_TTL ",\"ttl\":%s}",
				 rows[i].ttl);
		else
			snprintf(in, sizeof(in), PRE_TTL "}");
		got = decode_str(&pkt, in);
		if (rows[i].want < 0) {
			cr_expect_eq(got, INM_DROP_TTL, "ttl %s: got %s",
				     rows[i].ttl, inm_drop_name(got));
		} else {
			cr_expect_eq(got, INM_DROP_NONE, "ttl %s: got %s",
				     rows[i].ttl ? rows[i].ttl : "absent",
				     inm_drop_name(got));
			cr_expect_eq(pkt.ttl, rows[i].want, "ttl %s",
				     rows[i].ttl);
		}
		inm_packet_fini(&pkt);
	}
}

#define PRE_D(type) "{" HDR ",\"type\":\"" type "\""

Test(inm_packet, rejects_bad_data)
{
	static const struct row rows[] = {
		/* any type: missing or not an object */
		{ PRE_D("message") "}", INM_DROP_DATA },
		{ PRE_D("command") ",\"data\":null}", INM_DROP_DATA },
		{ PRE_D("response") ",\"data\":[]}", INM_DROP_DATA },
		{ PRE_D("event") ",\"data\":\"announce\"}", INM_DROP_DATA },
		{ PRE_D("event") ",\"data\":1}", INM_DROP_DATA },
		/* message */
		{ PRE_D("message") ",\"data\":{}}", INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"message\":\"aGk=\"}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\"}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":1,\"message\":\"aGk=\"}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"\",\"message\":\"aGk=\"}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":null}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":[]}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"aGk\"}}",
		  INM_DROP_DATA }, /* unpadded */
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"aGk=x\"}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"a Gk=\"}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"aGl=\"}}",
		  INM_DROP_DATA }, /* padding bits */
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"aG-_\"}}",
		  INM_DROP_DATA }, /* URL alphabet */
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"====\"}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"aGk=\",\"client_nonce\":5}}",
		  INM_DROP_DATA },
		{ PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"aGk=\",\"channel\":\"d\"}}",
		  INM_DROP_DATA },
		/* command / response / event */
		{ PRE_D("command") ",\"data\":{}}", INM_DROP_DATA },
		{ PRE_D("command") ",\"data\":{\"command\":\"\"}}",
		  INM_DROP_DATA },
		{ PRE_D("command") ",\"data\":{\"command\":3}}",
		  INM_DROP_DATA },
		{ PRE_D("command") ",\"data\":{\"command\":\"a\",\"command\":\"b\"}}",
		  INM_DROP_DATA },
		{ PRE_D("response") ",\"data\":{}}", INM_DROP_DATA },
		{ PRE_D("response") ",\"data\":{\"ok\":1}}", INM_DROP_DATA },
		{ PRE_D("response") ",\"data\":{\"ok\":\"true\"}}",
		  INM_DROP_DATA },
		{ PRE_D("response") ",\"data\":{\"ok\":null}}", INM_DROP_DATA },
		{ PRE_D("event") ",\"data\":{}}", INM_DROP_DATA },
		{ PRE_D("event") ",\"data\":{\"event\":false}}",
		  INM_DROP_DATA },
		{ PRE_D("event") ",\"data\":{\"event\":\"\"}}", INM_DROP_DATA },
		/* the data of another type does not do */
		{ PRE_D("command") ",\"data\":{\"event\":\"announce\"}}",
		  INM_DROP_DATA },
		{ PRE_D("event") ",\"data\":" MSGDATA "}", INM_DROP_DATA },
	};
	run_rows(rows, N(rows));
}

Test(inm_packet, data_string_limits)
{
	char ch[INM_CHANNEL_MAX + 2], cn[INM_CLIENT_NONCE_MAX + 2], in[1024];
	struct inm_packet pkt;

	memset(ch, 'c', sizeof(ch) - 1);
	ch[sizeof(ch) - 1] = '\0';
	memset(cn, 'n', sizeof(cn) - 1);
	cn[sizeof(cn) - 1] = '\0';

	snprintf(in, sizeof(in),
		 PRE_D("message") ",\"data\":{\"channel\":\"%.*s\",\"message\":\"\"}}",
		 INM_CHANNEL_MAX, ch);
	cr_expect_eq(decode_str(&pkt, in), INM_DROP_NONE);
	inm_packet_fini(&pkt);
	snprintf(in, sizeof(in),
		 PRE_D("message") ",\"data\":{\"channel\":\"%s\",\"message\":\"\"}}",
		 ch);
	cr_expect_eq(decode_str(&pkt, in), INM_DROP_DATA);
	inm_packet_fini(&pkt);

	snprintf(in, sizeof(in),
		 PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"\",\"client_nonce\":\"%.*s\"}}",
		 INM_CLIENT_NONCE_MAX, cn);
	cr_expect_eq(decode_str(&pkt, in), INM_DROP_NONE);
	inm_packet_fini(&pkt);
	snprintf(in, sizeof(in),
		 PRE_D("message") ",\"data\":{\"channel\":\"c\",\"message\":\"\",\"client_nonce\":\"%s\"}}",
		 cn);
	cr_expect_eq(decode_str(&pkt, in), INM_DROP_DATA);
	inm_packet_fini(&pkt);
}

/* The first bad field in source, destination, type, nonce, ttl, data order wins. */
Test(inm_packet, reason_order)
{
	static const struct row rows[] = {
		{ "{\"source\":1,\"destination\":1,\"type\":1,\"nonce\":1,\"ttl\":-1,\"data\":1}",
		  INM_DROP_SOURCE },
		{ "{\"source\":\"n\",\"destination\":1,\"type\":1,\"nonce\":1,\"ttl\":-1,\"data\":1}",
		  INM_DROP_DESTINATION },
		{ "{\"source\":\"n\",\"destination\":\"*\",\"type\":1,\"nonce\":1,\"ttl\":-1,\"data\":1}",
		  INM_DROP_TYPE },
		{ "{\"source\":\"n\",\"destination\":\"*\",\"type\":\"event\",\"nonce\":1,\"ttl\":-1,\"data\":1}",
		  INM_DROP_NONCE },
		{ "{" HDR ",\"type\":\"event\",\"ttl\":-1,\"data\":1}",
		  INM_DROP_TTL },
		{ "{" HDR ",\"type\":\"event\",\"ttl\":1,\"data\":1}",
		  INM_DROP_DATA },
	};
	run_rows(rows, N(rows));
}

Test(inm_packet, drop_and_type_names)
{
	cr_expect_str_eq(inm_drop_name(INM_DROP_NONE), "none");
	cr_expect_str_eq(inm_drop_name(INM_DROP_JSON), "json");
	cr_expect_str_eq(inm_drop_name(INM_DROP_TTL), "ttl");
	cr_expect_str_eq(inm_drop_name(INM_DROP_NOMEM), "nomem");
	cr_expect_str_eq(inm_drop_name((enum inm_drop)99), "?");
	for (int d = 0; d < INM_DROP_COUNT; d++)
		cr_expect_neq(strcmp(inm_drop_name((enum inm_drop)d), "?"), 0);
	cr_expect_str_eq(inm_type_name(INM_MESSAGE), "message");
	cr_expect_str_eq(inm_type_name(INM_COMMAND), "command");
	cr_expect_str_eq(inm_type_name(INM_RESPONSE), "response");
	cr_expect_str_eq(inm_type_name(INM_EVENT), "event");
	cr_expect_str_eq(inm_type_name((enum inm_type)7), "?");
}

Test(inm_packet, encode_exact_shape)
{
	struct inm_packet pkt;
	struct wr_buf b;

	inm_packet_init(&pkt);
	strcpy(pkt.source, "node-1");
	strcpy(pkt.destination, "*");
	strcpy(pkt.nonce, NONCE);
	pkt.type = INM_COMMAND;
	pkt.ttl = 3;
	pkt.data = cJSON_CreateObject();
	cJSON_AddStringToObject(pkt.data, "command", "list-nodes");
	wr_buf_init(&b);
	cr_assert_eq(inm_packet_encode(&pkt, &b), WR_OK);
	cr_expect_str_eq(b.p,
			 "{\"source\":\"node-1\",\"destination\":\"*\",\"type\":\"command\","
			 "\"nonce\":\"" NONCE
			 "\",\"ttl\":3,\"data\":{\"command\":\"list-nodes\"}}");
	inm_packet_fini(&pkt);

	/* no data: {} */
	wr_buf_reset(&b);
	cr_assert_eq(inm_packet_encode(&pkt, &b), WR_OK);
	cr_expect(strstr(b.p, ",\"ttl\":3,\"data\":{}}") != NULL, "%s", b.p);
	wr_buf_fini(&b);
}

static void round_trip(const char *in)
{
	struct inm_packet a, c;
	struct wr_buf b1, b2;

	wr_buf_init(&b1);
	wr_buf_init(&b2);
	cr_assert_eq(decode_str(&a, in), INM_DROP_NONE, "%s", in);
	cr_assert_eq(inm_packet_encode(&a, &b1), WR_OK);
	cr_assert_eq(inm_packet_decode(&c, b1.p, b1.len), INM_DROP_NONE, "%s",
		     b1.p);
	cr_expect_str_eq(a.source, c.source);
	cr_expect_str_eq(a.destination, c.destination);
	cr_expect_eq(a.type, c.type);
	cr_expect_str_eq(a.nonce, c.nonce);
	cr_expect_eq(a.ttl, c.ttl);
	cr_expect(cJSON_Compare(a.data, c.data, 1), "data differs: %s", b1.p);
	cr_assert_eq(inm_packet_encode(&c, &b2), WR_OK);
	cr_expect_str_eq(b1.p, b2.p);
	inm_packet_fini(&a);
	inm_packet_fini(&c);
	wr_buf_fini(&b1);
	wr_buf_fini(&b2);
}

Test(inm_packet, round_trips)
{
	round_trip("{" HDR
		   ",\"type\":\"message\",\"ttl\":0,\"data\":{\"channel\":\"\\\"ch\\\\\\u00e9\\n\","
		   "\"message\":\"AAECAwQ=\",\"client_nonce\":\"n\"}}");
	round_trip(
		"{" HDR
		",\"type\":\"command\",\"data\":{\"command\":\"reserve-channel\","
		"\"channel\":\"c\",\"password\":null,\"created\":1700000000000}}");
	round_trip("{\"source\":\"a\",\"destination\":\"b\",\"nonce\":\"" NONCE
		   "\",\"type\":\"response\","
		   "\"ttl\":255,\"data\":{\"ok\":true,\"nodes\":[\"x\",\"y\"],\"latency\":1.25}}");
	round_trip(
		"{" HDR
		",\"type\":\"event\",\"data\":{\"event\":\"announce\",\"peers\":[],"
		"\"channels\":[{\"name\":\"c\",\"password\":null,\"created\":1}],\"master\":false}}");
}

Test(inm_packet, node_names)
{
	cr_expect(inm_node_name_valid("a", 1));
	cr_expect(inm_node_name_valid("Node_1.eu-west", 14));
	cr_expect_not(inm_node_name_valid("", 0));
	cr_expect_not(inm_node_name_valid("*", 1));
	cr_expect_not(inm_node_name_valid("a+b", 3));
	cr_expect_not(inm_node_name_valid("a\0b", 3));
	cr_expect(inm_node_name_valid(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		64));
	cr_expect_not(inm_node_name_valid(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		65));
}

Test(inm_packet, nonces_are_fresh_lowercase_hex)
{
	char a[INM_NONCE_LEN + 1], b[INM_NONCE_LEN + 1];

	inm_nonce_new(a);
	inm_nonce_new(b);
	cr_expect_eq(strlen(a), INM_NONCE_LEN);
	cr_expect_eq(strspn(a, "0123456789abcdef"), INM_NONCE_LEN);
	cr_expect_str_neq(a, b);
}

Test(inm_packet, base64)
{
	static const struct {
		const char *bin, *b64;
	} rows[] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	static const char *const bad[] = { "Zg",   "Zg=",  "Zg===",
					   "Z===", "Zh==", "Zm9v\n",
					   "Zm9-", "Zm9_", "=Zm9" };
	struct wr_buf b;
	unsigned char *out;
	size_t n;

	wr_buf_init(&b);
	for (size_t i = 0; i < N(rows); i++) {
		wr_buf_reset(&b);
		cr_assert_eq(inm_base64_encode(&b, rows[i].bin,
					       strlen(rows[i].bin)),
			     WR_OK);
		cr_expect_eq(b.len, strlen(rows[i].b64));
		cr_expect_str_eq(b.p ? b.p : "", rows[i].b64);
		cr_expect(inm_base64_valid(rows[i].b64, strlen(rows[i].b64)));
		cr_assert_eq(inm_base64_decode(rows[i].b64, strlen(rows[i].b64),
					       &out, &n),
			     WR_OK);
		cr_expect_eq(n, strlen(rows[i].bin));
		cr_expect_str_eq((char *)out, rows[i].bin);
		free(out);
	}
	for (size_t i = 0; i < N(bad); i++) {
		cr_expect_not(inm_base64_valid(bad[i], strlen(bad[i])), "%s",
			      bad[i]);
		cr_expect_eq(inm_base64_decode(bad[i], strlen(bad[i]), &out,
					       &n),
			     WR_EINVAL, "%s", bad[i]);
		cr_expect_null(out);
	}
	/* binary bytes, and a payload too big for the stack buffer */
	{
		unsigned char big[4000];

		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (unsigned char)(i * 7);
		wr_buf_reset(&b);
		cr_assert_eq(inm_base64_encode(&b, big, sizeof(big)), WR_OK);
		cr_expect(inm_base64_valid(b.p, b.len));
		cr_assert_eq(inm_base64_decode(b.p, b.len, &out, &n), WR_OK);
		cr_expect_eq(n, sizeof(big));
		cr_expect(!memcmp(out, big, n));
		free(out);
	}
	wr_buf_fini(&b);
}

/* The codec against libsodium's (the one it replaced): the same text for
 * every length of binary input, and the same verdict on every one-byte
 * change of a valid encoding (padding bits, '=' anywhere, any ASCII byte);
 * bytes over 0x7f are never base64. */
Test(inm_packet, base64_matches_libsodium)
{
	unsigned char in[80], back[80], ref_bin[80];
	char ref[128];
	struct wr_buf b;
	unsigned char *out;
	size_t n, rn;
	const char *end;

	cr_assert_geq(sodium_init(), 0);
	wr_buf_init(&b);
	for (size_t len = 0; len <= sizeof(in); len++) {
		randombytes_buf(in, len);
		wr_buf_reset(&b);
		cr_assert_eq(inm_base64_encode(&b, in, len), WR_OK);
		sodium_bin2base64(ref, sizeof(ref), in, len,
				  sodium_base64_VARIANT_ORIGINAL);
		cr_assert_eq(b.len, strlen(ref), "len %zu", len);
		cr_assert(!memcmp(b.p, ref, b.len), "len %zu: %s vs %s", len,
			  b.p, ref);
		cr_assert_eq(inm_base64_decode(b.p, b.len, &out, &n), WR_OK);
		cr_assert_eq(n, len);
		cr_assert(!memcmp(out, in, len));
		free(out);
		for (size_t i = 0; i < b.len && len <= 12; i++) {
			for (int c = 0; c < 256; c++) {
				char m[32];
				bool want;

				memcpy(m, b.p, b.len);
				m[i] = (char)c;
				if (c >= 0x80) {
					/* libsodium 1.0.18 takes some of these
					 * for alphabet letters ("\x80w==" was
					 * accepted): not base64, refused */
					cr_assert_not(inm_base64_valid(m,
								       b.len));
					continue;
				}
				/* sodium stops early at a bad byte: demand it
				 * consumed everything, as the old code did */
				want = sodium_base642bin(
					       ref_bin, sizeof(ref_bin), m,
					       b.len, NULL, &rn, &end,
					       sodium_base64_VARIANT_ORIGINAL) ==
					       0 &&
				       end == m + b.len;
				cr_assert_eq(inm_base64_valid(m, b.len), want,
					     "%.*s", (int)b.len, m);
				if (!want)
					continue;
				cr_assert_eq(inm_base64_decode(m, b.len, &out,
							       &n),
					     WR_OK);
				cr_assert_eq(n, rn);
				memcpy(back, out, n);
				cr_assert(!memcmp(back, ref_bin, n));
				free(out);
			}
		}
	}
	wr_buf_fini(&b);
}

/* Both decoders on @in: the same verdict, and on success the same packet,
 * compared encoded (cJSON_Compare cannot tell duplicate keys apart). */
static void same_decode(const char *in, size_t len)
{
	struct inm_packet a, g;
	enum inm_drop ra = inm_packet_decode(&a, in, len);
	enum inm_drop rg = inm_packet_decode_generic(&g, in, len);
	struct wr_buf ea, eg;

	cr_assert_eq(ra, rg, "%s vs %s: %.*s", inm_drop_name(ra),
		     inm_drop_name(rg), (int)len, in);
	if (ra == INM_DROP_NONE) {
		wr_buf_init(&ea);
		wr_buf_init(&eg);
		cr_assert_eq(inm_packet_encode(&a, &ea), WR_OK);
		cr_assert_eq(inm_packet_encode(&g, &eg), WR_OK);
		cr_assert_str_eq(ea.p, eg.p, "%.*s", (int)len, in);
		wr_buf_fini(&ea);
		wr_buf_fini(&eg);
	} else {
		cr_assert_null(a.data);
	}
	inm_packet_fini(&a);
	inm_packet_fini(&g);
}

/* The fast decoder (the encoder's shape) against the generic one on every
 * single-byte change, deletion and insertion of packets in that shape. */
Test(inm_packet, fast_decoder_matches_generic)
{
	static const char *const seeds[] = {
		"{" HDR
		",\"type\":\"message\",\"ttl\":16,\"data\":{\"channel\":\"c1\","
		"\"message\":\"aGk=\",\"client_nonce\":\"7\"}}",
		"{\"source\":\"a\",\"destination\":\"b\",\"type\":\"message\",\"nonce\":\"" NONCE
		"\",\"ttl\":0,\"data\":{\"message\":\"\",\"channel\":\"x\"}}",
		"{\"source\":\"n-1\",\"destination\":\"*\",\"type\":\"command\",\"nonce\":\"" NONCE
		"\",\"ttl\":255,\"data\":{\"command\":\"list-nodes\"},\"x\":\"y\"}",
		"{\"source\":\"a\",\"destination\":\"*\",\"type\":\"event\",\"nonce\":\"" NONCE
		"\",\"data\":{}}",
	};
	static const char subs[] = "{}[]:,\"\\ 0159-.eEaz*_\t\x01\x7f\xc3";
	char m[512];

	for (size_t i = 0; i < N(seeds); i++) {
		const char *sd = seeds[i];
		size_t n = strlen(sd);

		same_decode(sd, n);
		for (size_t at = 0; at <= n; at++) {
			/* deletion */
			if (at < n) {
				memcpy(m, sd, at);
				memcpy(m + at, sd + at + 1, n - at - 1);
				same_decode(m, n - 1);
			}
			for (size_t c = 0; c < sizeof(subs) - 1; c++) {
				/* substitution */
				if (at < n) {
					memcpy(m, sd, n);
					m[at] = subs[c];
					same_decode(m, n);
				}
				/* insertion */
				memcpy(m, sd, at);
				m[at] = subs[c];
				memcpy(m + at + 1, sd + at, n - at);
				same_decode(m, n + 1);
			}
		}
	}
}

Test(inm_packet, message_fields_need_a_message)
{
	struct inm_packet pkt;
	const char *a, *b, *c;

	cr_assert_eq(decode_str(&pkt,
				PRE_D("event") ",\"data\":{\"event\":\"x\"}}"),
		     INM_DROP_NONE);
	cr_expect_eq(inm_message_fields(&pkt, &a, &b, &c), WR_EINVAL);
	inm_packet_fini(&pkt);
	cr_assert_eq(decode_str(&pkt,
				PRE_D("message") ",\"data\":" MSGDATA "}"),
		     INM_DROP_NONE);
	cr_assert_eq(inm_message_fields(&pkt, &a, &b, &c), WR_OK);
	cr_expect_null(c);
	inm_packet_fini(&pkt);
}
