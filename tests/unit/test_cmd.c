/*
 * tests/unit/test_cmd: the /connect frame decoder (every reason string of
 * PROTOCOL.md section 2 and the nonce rules), the response and delivery
 * frames it pairs with, and chan_name_valid. Bad inputs are tables: each
 * row names the input and the exact reason, and whether the nonce survives.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s)                   \
	{                        \
		s, sizeof(s) - 1 \
	}
#define BYTES(s) s, sizeof(s) - 1
#define MAXMSG 65536

/* Asserts @s holds exactly the @n bytes of @exp. */
static void str_is(const struct chan_str *s, const char *exp, size_t n,
		   const char *what)
{
	cr_assert_not_null(s->p, "%s: absent, expected %zu bytes", what, n);
	cr_assert_eq(s->len, n, "%s: len %zu, expected %zu", what, s->len, n);
	cr_assert(!memcmp(s->p, exp, n), "%s: bytes differ: got \"%.*s\"", what,
		  (int)s->len, s->p);
}
#define STR_IS(s, lit, what) str_is(&(s), lit, sizeof(lit) - 1, what)

static const char *decode(struct chan_cmd *cmd, const char *s)
{
	return chan_cmd_decode(cmd, s, strlen(s), MAXMSG);
}

/* One bad input: the exact reason, and the nonce expected in cmd (or NULL). */
struct bad {
	const char *in;
	const char *reason;
	const char *nonce;
};

static void check_bad(const struct bad *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct chan_cmd cmd;
		const char *r = decode(&cmd, t[i].in);

		cr_expect(r && !strcmp(r, t[i].reason),
			  "row %zu <%s>: got \"%s\", expected \"%s\"", i,
			  t[i].in, r ? r : "(ok)", t[i].reason);
		if (t[i].nonce) {
			cr_expect(cmd.nonce.p &&
					  cmd.nonce.len == strlen(t[i].nonce) &&
					  !memcmp(cmd.nonce.p, t[i].nonce,
						  cmd.nonce.len),
				  "row %zu <%s>: nonce not kept for \"%s\"", i,
				  t[i].in, t[i].reason);
		} else {
			cr_expect_null(cmd.nonce.p,
				       "row %zu <%s>: nonce set for \"%s\"", i,
				       t[i].in, t[i].reason);
		}
		chan_cmd_fini(&cmd);
	}
}

/* ---- invalid json: never a nonce ---- */

#define NL "{\"nonce\":\"n1\",\"command\":\"list\"" /* a valid prefix */

Test(cmd, invalid_json)
{
	static const struct bad t[] = {
		/* not JSON / empty */
		{ "", "invalid json", NULL },
		{ "   \t\r\n", "invalid json", NULL },
		{ "not json", "invalid json", NULL },
		{ "nonce", "invalid json", NULL },
		/* JSON whitespace is space, tab, CR and LF only */
		{ "\f{\"command\":\"list\"}", "invalid json", NULL },
		{ "{\"command\":\"list\"}\v", "invalid json", NULL },
		{ "{\"command\":\"list\"}\xc2\xa0", "invalid json", NULL },
		/* JSON that is not an object */
		{ "[]", "invalid json", NULL },
		{ "[" NL "}]", "invalid json", NULL },
		{ "\"list\"", "invalid json", NULL },
		{ "42", "invalid json", NULL },
		{ "-1.5e3", "invalid json", NULL },
		{ "true", "invalid json", NULL },
		{ "false", "invalid json", NULL },
		{ "null", "invalid json", NULL },
		/* truncated */
		{ "{", "invalid json", NULL },
		{ NL, "invalid json", NULL },
		{ NL ",", "invalid json", NULL },
		{ NL ",\"data\":{\"topic\":\"a\"", "invalid json", NULL },
		{ "{\"nonce\":\"n1\",\"command\":\"li", "invalid json", NULL },
		{ "{\"nonce\":\"n1\",\"command\":", "invalid json", NULL },
		{ "{\"nonce\":\"n1\",\"command\"", "invalid json", NULL },
		{ "{\"nonce\":\"n1\",", "invalid json", NULL },
		{ "{\"nonce\":\"n1\"", "invalid json", NULL },
		/* trailing garbage */
		{ NL "} x", "invalid json", NULL },
		{ NL "}}", "invalid json", NULL },
		{ NL "}{}", "invalid json", NULL },
		{ NL "},", "invalid json", NULL },
		{ NL "}\"", "invalid json", NULL },
		/* lone and broken surrogates */
		{ NL ",\"x\":\"\\ud800\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\ud800x\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\ud800\\u0041\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\udbff\\udbff\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\udc00\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\ude00\\ud83d\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\ud83d\\n\"}", "invalid json", NULL },
		{ "{\"nonce\":\"\\ud800\",\"command\":\"list\"}",
		  "invalid json", NULL },
		/* bad escapes */
		{ NL ",\"x\":\"\\x41\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\u12G4\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\u123\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\U0041\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\'\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\a\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\0\"}", "invalid json", NULL },
		{ NL ",\"x\":\"\\ \"}", "invalid json", NULL },
		/* raw control characters inside a string */
		{ "{\"nonce\":\"n1\",\"command\":\"li"
		  "\x01"
		  "st\"}",
		  "invalid json", NULL },
		{ "{\"nonce\":\"n1\",\"command\":\"li\nst\"}", "invalid json",
		  NULL },
		{ "{\"nonce\":\"n1\",\"command\":\"li\tst\"}", "invalid json",
		  NULL },
		{ "{\"nonce\":\"n1\",\"command\":\"li"
		  "\x1f"
		  "st\"}",
		  "invalid json", NULL },
		{ "{\"nonce\":\"n1\x0d\",\"command\":\"list\"}", "invalid json",
		  NULL },
		/* structure */
		{ "{\"nonce\":\"n1\",}", "invalid json", NULL },
		{ "{,\"command\":\"list\"}", "invalid json", NULL },
		{ "{\"nonce\" \"n1\",\"command\":\"list\"}", "invalid json",
		  NULL },
		{ "{\"nonce\":\"n1\" \"command\":\"list\"}", "invalid json",
		  NULL },
		{ "{\"nonce\":\"n1\";\"command\":\"list\"}", "invalid json",
		  NULL },
		{ "{nonce:\"n1\",\"command\":\"list\"}", "invalid json", NULL },
		{ "{'nonce':'n1','command':'list'}", "invalid json", NULL },
		{ "{\"nonce\":\"n1\",\"command\":\"list\",1:2}", "invalid json",
		  NULL },
		{ NL ",\"x\":[1,]}", "invalid json", NULL },
		{ NL ",\"x\":[1 2]}", "invalid json", NULL },
		{ NL ",\"x\":[}", "invalid json", NULL },
		{ NL ",\"x\":{\"a\"}}", "invalid json", NULL },
		{ NL ",\"x\":{\"a\":}}", "invalid json", NULL },
		{ NL ",\"x\":}", "invalid json", NULL },
		{ NL ",\"x\"}", "invalid json", NULL },
		/* numbers */
		{ NL ",\"x\":01}", "invalid json", NULL },
		{ NL ",\"x\":1.}", "invalid json", NULL },
		{ NL ",\"x\":-}", "invalid json", NULL },
		{ NL ",\"x\":--1}", "invalid json", NULL },
		{ NL ",\"x\":1e}", "invalid json", NULL },
		{ NL ",\"x\":1e+}", "invalid json", NULL },
		{ NL ",\"x\":.5}", "invalid json", NULL },
		{ NL ",\"x\":+1}", "invalid json", NULL },
		{ NL ",\"x\":0x10}", "invalid json", NULL },
		{ NL ",\"x\":NaN}", "invalid json", NULL },
		{ NL ",\"x\":Infinity}", "invalid json", NULL },
		/* literals */
		{ NL ",\"x\":tru}", "invalid json", NULL },
		{ NL ",\"x\":True}", "invalid json", NULL },
		{ NL ",\"x\":fals}", "invalid json", NULL },
		{ NL ",\"x\":nul}", "invalid json", NULL },
		{ NL ",\"x\":nulll}", "invalid json", NULL },
		{ NL ",\"x\":undefined}", "invalid json", NULL },
		/* unterminated strings */
		{ NL ",\"x\":\"abc}", "invalid json", NULL },
		{ NL ",\"x\":\"abc\\", "invalid json", NULL },
		{ NL ",\"x\":\"abc\\\"}", "invalid json", NULL },
		/* an error after a valid data object still loses the nonce */
		{ "{\"nonce\":\"n1\",\"command\":\"subscribe\",\"data\":{\"topic\":\"a\"},}",
		  "invalid json", NULL },
	};

	check_bad(t, N(t));
}

/* A NUL byte is not whitespace: a frame with a trailing NUL is garbage. */
Test(cmd, invalid_json_embedded_nul)
{
	static const char a[] = "{\"command\":\"list\"}\0";
	static const char b[] = "{\"command\":\"li\0st\"}";
	static const char c[] = "\0{\"command\":\"list\"}";
	struct chan_cmd cmd;
	const char *r;

	r = chan_cmd_decode(&cmd, a, sizeof(a) - 1, MAXMSG);
	cr_expect_str_eq(r ? r : "(ok)", "invalid json");
	chan_cmd_fini(&cmd);
	r = chan_cmd_decode(&cmd, b, sizeof(b) - 1, MAXMSG);
	cr_expect_str_eq(r ? r : "(ok)", "invalid json");
	chan_cmd_fini(&cmd);
	r = chan_cmd_decode(&cmd, c, sizeof(c) - 1, MAXMSG);
	cr_expect_str_eq(r ? r : "(ok)", "invalid json");
	chan_cmd_fini(&cmd);
	/* the same bytes without the NUL decode */
	r = chan_cmd_decode(&cmd, a, sizeof(a) - 2, MAXMSG);
	cr_expect_null(r, "got \"%s\"", r);
	chan_cmd_fini(&cmd);
}

/* {"nonce":"n1","command":"list","x": <k arrays> } : depth 1 + k. */
static char *nested(int k, char open, char close)
{
	const char *pre = "{\"nonce\":\"n1\",\"command\":\"list\",\"x\":";
	size_t n = strlen(pre) + 6 * (size_t)k + 16;
	char *s = malloc(n), *o;

	cr_assert_not_null(s);
	o = s + sprintf(s, "%s", pre);
	for (int i = 0; i < k; i++) {
		*o++ = open;
		if (open == '{') {
			/* {"a":{"a":...}} */
			o += sprintf(o, "\"a\":");
		}
	}
	if (open == '{')
		o += sprintf(o, "1");
	for (int i = 0; i < k; i++)
		*o++ = close;
	*o++ = '}';
	*o = '\0';
	return s;
}

Test(cmd, nesting_depth)
{
	static const struct {
		int k;
		char open, close;
		bool ok;
	} t[] = {
		{ 31, '[', ']', true },  /* depth 32 */
		{ 32, '[', ']', false }, /* depth 33 */
		{ 31, '{', '}', true },      { 32, '{', '}', false },
		{ 100000, '[', ']', false }, /* no stack exhaustion */
		{ 100000, '{', '}', false },
	};

	for (size_t i = 0; i < N(t); i++) {
		char *s = nested(t[i].k, t[i].open, t[i].close);
		struct chan_cmd cmd;
		const char *r = decode(&cmd, s);

		if (t[i].ok) {
			cr_expect_null(r, "row %zu: depth %d: got \"%s\"", i,
				       t[i].k + 1, r);
			cr_expect(cmd.nonce.p != NULL, "row %zu: nonce lost",
				  i);
		} else {
			cr_expect(r && !strcmp(r, "invalid json"),
				  "row %zu: depth %d: got \"%s\"", i,
				  t[i].k + 1, r ? r : "(ok)");
			cr_expect_null(cmd.nonce.p, "row %zu: nonce set", i);
		}
		chan_cmd_fini(&cmd);
		free(s);
	}
}

/* ---- the nonce ---- */

Test(cmd, nonce_not_a_string)
{
	static const struct bad t[] = {
		{ "{\"nonce\":1,\"command\":\"list\"}", "missing field: nonce",
		  NULL },
		{ "{\"nonce\":null,\"command\":\"list\"}",
		  "missing field: nonce", NULL },
		{ "{\"nonce\":{},\"command\":\"list\"}", "missing field: nonce",
		  NULL },
		{ "{\"nonce\":[\"n1\"],\"command\":\"list\"}",
		  "missing field: nonce", NULL },
		{ "{\"nonce\":true,\"command\":\"list\"}",
		  "missing field: nonce", NULL },
		{ "{\"nonce\":false,\"command\":\"list\"}",
		  "missing field: nonce", NULL },
		/* checked before the command */
		{ "{\"nonce\":1}", "missing field: nonce", NULL },
		{ "{\"nonce\":1,\"command\":\"bogus\"}", "missing field: nonce",
		  NULL },
		{ "{\"command\":\"subscribe\",\"nonce\":1}",
		  "missing field: nonce", NULL },
		/* first occurrence wins */
		{ "{\"nonce\":1,\"nonce\":\"n1\",\"command\":\"list\"}",
		  "missing field: nonce", NULL },
	};

	check_bad(t, N(t));
}

static char *frame_with_nonce(const char *nonce_json)
{
	const char *fmt = "{\"nonce\":\"%s\",\"command\":\"list\"}";
	size_t n = strlen(fmt) + strlen(nonce_json) + 1;
	char *s = malloc(n);

	cr_assert_not_null(s);
	snprintf(s, n, fmt, nonce_json);
	return s;
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

Test(cmd, nonce_length)
{
	static const struct {
		size_t plain;       /* 'a' bytes */
		const char *suffix; /* JSON text appended inside the string */
		size_t decoded;     /* length after unescaping */
		bool ok;
	} t[] = {
		{ 0, "", 0, true },
		{ 1, "", 1, true },
		{ 128, "", 128, true },
		{ 129, "", 129, false },
		{ 1000, "", 1000, false },
		/* measured after unescaping: 132 raw bytes, 128 decoded */
		{ 126, "\\u00e9", 128, true },
		{ 127, "\\u00e9", 129, false },
		{ 127, "\\n", 128, true },
		{ 128, "\\n", 129, false },
	};

	for (size_t i = 0; i < N(t); i++) {
		char *a = repeat('a', t[i].plain);
		size_t njlen = t[i].plain + strlen(t[i].suffix) + 1;
		char *nj = malloc(njlen);
		char *s;
		struct chan_cmd cmd;
		const char *r;

		cr_assert_not_null(nj);
		snprintf(nj, njlen, "%s%s", a, t[i].suffix);
		s = frame_with_nonce(nj);
		r = decode(&cmd, s);
		if (t[i].ok) {
			cr_expect_null(r, "row %zu: got \"%s\"", i, r);
			cr_expect_not_null(cmd.nonce.p, "row %zu: nonce absent",
					   i);
			cr_expect_eq(cmd.nonce.len, t[i].decoded,
				     "row %zu: len %zu", i, cmd.nonce.len);
		} else {
			cr_expect(r && !strcmp(r, "missing field: nonce"),
				  "row %zu: got \"%s\"", i, r ? r : "(ok)");
			cr_expect_null(cmd.nonce.p, "row %zu: nonce kept", i);
		}
		chan_cmd_fini(&cmd);
		free(s);
		free(nj);
		free(a);
	}
}

Test(cmd, nonce_absent_and_empty)
{
	struct chan_cmd cmd;
	const char *r;

	r = decode(&cmd, "{\"command\":\"list\"}");
	cr_assert_null(r);
	cr_expect_null(cmd.nonce.p);
	chan_cmd_fini(&cmd);

	/* "" is a nonce: echoed as "" */
	r = decode(&cmd, "{\"command\":\"list\",\"nonce\":\"\"}");
	cr_assert_null(r);
	cr_expect_not_null(cmd.nonce.p);
	cr_expect_eq(cmd.nonce.len, 0);
	chan_cmd_fini(&cmd);
}

/* ---- errors after the nonce check keep the nonce ---- */

Test(cmd, missing_command)
{
	static const struct bad t[] = {
		{ "{\"nonce\":\"n1\"}", "missing field: command", "n1" },
		{ "{}", "missing field: command", NULL },
		{ "{\"nonce\":\"n1\",\"data\":{\"command\":\"list\"}}",
		  "missing field: command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":1}", "missing field: command",
		  "n1" },
		{ "{\"nonce\":\"n1\",\"command\":null}",
		  "missing field: command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":{}}", "missing field: command",
		  "n1" },
		{ "{\"nonce\":\"n1\",\"command\":[\"list\"]}",
		  "missing field: command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":true}",
		  "missing field: command", "n1" },
		{ "{\"nonce\":\"n1\",\"Command\":\"list\"}",
		  "missing field: command", "n1" },
		{ "{\"nonce\":\"n1\",\"command \":\"list\"}",
		  "missing field: command", "n1" },
		/* first occurrence wins, even when the second would do */
		{ "{\"nonce\":\"n1\",\"command\":1,\"command\":\"list\"}",
		  "missing field: command", "n1" },
		/* the nonce may come after the command */
		{ "{\"command\":null,\"nonce\":\"n1\"}",
		  "missing field: command", "n1" },
	};

	check_bad(t, N(t));
}

Test(cmd, unknown_command)
{
	static const struct bad t[] = {
		{ "{\"nonce\":\"n1\",\"command\":\"\"}", "unknown command",
		  "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"bogus\"}", "unknown command",
		  "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"SUBSCRIBE\"}",
		  "unknown command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"Subscribe\"}",
		  "unknown command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"subscribe \"}",
		  "unknown command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\" list\"}", "unknown command",
		  "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"lis\"}", "unknown command",
		  "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"sendx\"}", "unknown command",
		  "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"list\\u0000\"}",
		  "unknown command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"handshake\"}",
		  "unknown command", "n1" },
		{ "{\"nonce\":\"n1\",\"command\":\"list-nodes\"}",
		  "unknown command", "n1" },
		{ "{\"command\":\"bogus\"}", "unknown command", NULL },
		/* first occurrence wins */
		{ "{\"nonce\":\"n1\",\"command\":\"bogus\",\"command\":\"list\"}",
		  "unknown command", "n1" },
		/* the nonce kept is the decoded one */
		{ "{\"nonce\":\"n\\u00e9\\\"x\",\"command\":\"nope\"}",
		  "unknown command", "n\xc3\xa9\"x" },
	};

	check_bad(t, N(t));
}

/*
 * A JSON string's escapes are part of its syntax, not its value:
 * "sub\u0073cribe" is the string "subscribe" (RFC 8259 section 7/8.3), so
 * a conforming decoder must treat it as the subscribe command. Fails while
 * cmd.c compares the command value's raw bytes (key_is(&f.command, ...)).
 */
Test(cmd, escaped_command_value)
{
	static const struct {
		const char *in;
		enum chan_cmd_type type;
	} t[] = {
		{ "{\"command\":\"sub\\u0073cribe\",\"data\":{\"topic\":\"a\"}}",
		  CHAN_CMD_SUBSCRIBE },
		{ "{\"command\":\"\\u006cist\"}", CHAN_CMD_LIST },
		{ "{\"command\":\"se\\u006ed\",\"data\":{\"channel\":\"a\",\"message\":\"m\"}}",
		  CHAN_CMD_SEND },
	};

	for (size_t i = 0; i < N(t); i++) {
		struct chan_cmd cmd;
		const char *r = decode(&cmd, t[i].in);

		cr_expect_null(r, "row %zu <%s>: got \"%s\"", i, t[i].in, r);
		if (!r)
			cr_expect_eq(cmd.type, t[i].type, "row %zu: type %d", i,
				     cmd.type);
		chan_cmd_fini(&cmd);
	}
}

Test(cmd, missing_data)
{
	static const char *const cmds[] = { "subscribe", "unsubscribe",
					    "send" };
	static const char *const datas[] = {
		"",
		",\"data\":\"x\"",
		",\"data\":1",
		",\"data\":null",
		",\"data\":[]",
		",\"data\":[{\"topic\":\"a\"}]",
		",\"data\":true",
		/* fields at the wrong level */
		",\"topic\":\"a\",\"channel\":\"a\",\"message\":\"m\"",
		/* first occurrence wins */
		",\"data\":1,\"data\":{\"topic\":\"a\",\"channel\":\"a\",\"message\":\"m\"}",
		",\"Data\":{\"topic\":\"a\",\"channel\":\"a\",\"message\":\"m\"}",
	};

	for (size_t c = 0; c < N(cmds); c++)
		for (size_t d = 0; d < N(datas); d++) {
			char s[256];
			struct bad row = { s, "missing field: data", "n1" };

			snprintf(s, sizeof(s),
				 "{\"nonce\":\"n1\",\"command\":\"%s\"%s}",
				 cmds[c], datas[d]);
			check_bad(&row, 1);
		}
}

Test(cmd, list_data_optional)
{
	static const char *const t[] = {
		"{\"command\":\"list\"}",
		"{\"command\":\"list\",\"data\":{}}",
		"{\"command\":\"list\",\"data\":{\"topic\":1}}",
		"{\"data\":{},\"command\":\"list\",\"nonce\":\"n1\"}",
	};

	for (size_t i = 0; i < N(t); i++) {
		struct chan_cmd cmd;
		const char *r = decode(&cmd, t[i]);

		cr_expect_null(r, "row %zu <%s>: got \"%s\"", i, t[i], r);
		cr_expect_eq(cmd.type, CHAN_CMD_LIST, "row %zu", i);
		cr_expect_null(cmd.channel.p, "row %zu", i);
		cr_expect_null(cmd.password.p, "row %zu", i);
		cr_expect_null(cmd.message.p, "row %zu", i);
		chan_cmd_fini(&cmd);
	}
}

#define SUB(data) \
	"{\"nonce\":\"n1\",\"command\":\"subscribe\",\"data\":" data "}"
#define UNSUB(data) \
	"{\"nonce\":\"n1\",\"command\":\"unsubscribe\",\"data\":" data "}"
#define SEND(data) "{\"nonce\":\"n1\",\"command\":\"send\",\"data\":" data "}"

Test(cmd, missing_topic)
{
	static const struct bad t[] = {
		{ SUB("{}"), "missing field: topic", "n1" },
		{ SUB("{\"topic\":1}"), "missing field: topic", "n1" },
		{ SUB("{\"topic\":null}"), "missing field: topic", "n1" },
		{ SUB("{\"topic\":{}}"), "missing field: topic", "n1" },
		{ SUB("{\"topic\":[\"a\"]}"), "missing field: topic", "n1" },
		{ SUB("{\"topic\":true}"), "missing field: topic", "n1" },
		{ SUB("{\"channel\":\"a\"}"), "missing field: topic", "n1" },
		{ SUB("{\"Topic\":\"a\"}"), "missing field: topic", "n1" },
		{ SUB("{\"password\":\"p\"}"), "missing field: topic", "n1" },
		{ SUB("{\"x\":{\"topic\":\"a\"}}"), "missing field: topic",
		  "n1" },
		{ SUB("{\"topic\":1,\"topic\":\"a\"}"), "missing field: topic",
		  "n1" },
		/* topic is checked before password */
		{ SUB("{\"topic\":1,\"password\":1}"), "missing field: topic",
		  "n1" },
		{ UNSUB("{}"), "missing field: topic", "n1" },
		{ UNSUB("{\"topic\":1}"), "missing field: topic", "n1" },
		{ UNSUB("{\"topic\":null}"), "missing field: topic", "n1" },
		{ UNSUB("{\"channel\":\"a\"}"), "missing field: topic", "n1" },
	};

	check_bad(t, N(t));
}

Test(cmd, missing_password)
{
	static const struct bad t[] = {
		{ SUB("{\"topic\":\"a\",\"password\":1}"),
		  "missing field: password", "n1" },
		{ SUB("{\"topic\":\"a\",\"password\":true}"),
		  "missing field: password", "n1" },
		{ SUB("{\"topic\":\"a\",\"password\":false}"),
		  "missing field: password", "n1" },
		{ SUB("{\"topic\":\"a\",\"password\":{}}"),
		  "missing field: password", "n1" },
		{ SUB("{\"topic\":\"a\",\"password\":[\"p\"]}"),
		  "missing field: password", "n1" },
		{ SUB("{\"password\":0,\"topic\":\"a\"}"),
		  "missing field: password", "n1" },
		/* first occurrence wins */
		{ SUB("{\"topic\":\"a\",\"password\":1,\"password\":\"p\"}"),
		  "missing field: password", "n1" },
	};

	check_bad(t, N(t));
}

Test(cmd, missing_channel_and_message)
{
	static const struct bad t[] = {
		{ SEND("{}"), "missing field: channel", "n1" },
		{ SEND("{\"message\":\"m\"}"), "missing field: channel", "n1" },
		{ SEND("{\"channel\":1,\"message\":\"m\"}"),
		  "missing field: channel", "n1" },
		{ SEND("{\"channel\":null,\"message\":\"m\"}"),
		  "missing field: channel", "n1" },
		{ SEND("{\"channel\":[],\"message\":\"m\"}"),
		  "missing field: channel", "n1" },
		{ SEND("{\"topic\":\"a\",\"message\":\"m\"}"),
		  "missing field: channel", "n1" },
		{ SEND("{\"channel\":1,\"channel\":\"a\",\"message\":\"m\"}"),
		  "missing field: channel", "n1" },
		/* channel is checked before message */
		{ SEND("{\"channel\":1,\"message\":1}"),
		  "missing field: channel", "n1" },
		{ SEND("{\"channel\":\"a\"}"), "missing field: message", "n1" },
		{ SEND("{\"channel\":\"a\",\"message\":1}"),
		  "missing field: message", "n1" },
		{ SEND("{\"channel\":\"a\",\"message\":null}"),
		  "missing field: message", "n1" },
		{ SEND("{\"channel\":\"a\",\"message\":{}}"),
		  "missing field: message", "n1" },
		{ SEND("{\"channel\":\"a\",\"message\":[\"m\"]}"),
		  "missing field: message", "n1" },
		{ SEND("{\"channel\":\"a\",\"message\":true}"),
		  "missing field: message", "n1" },
		{ SEND("{\"channel\":\"a\",\"msg\":\"m\"}"),
		  "missing field: message", "n1" },
		{ SEND("{\"channel\":\"a\",\"message\":1,\"message\":\"m\"}"),
		  "missing field: message", "n1" },
	};

	check_bad(t, N(t));
}

Test(cmd, invalid_channel_name)
{
	static const struct bad t[] = {
		{ SUB("{\"topic\":\"\"}"), "invalid channel name", "n1" },
		{ SUB("{\"topic\":\"\",\"password\":\"p\"}"),
		  "invalid channel name", "n1" },
		{ UNSUB("{\"topic\":\"\"}"), "invalid channel name", "n1" },
		{ SEND("{\"channel\":\"\",\"message\":\"m\"}"),
		  "invalid channel name", "n1" },
		{ SUB("{\"topic\":\"\\u0001\"}"), "invalid channel name",
		  "n1" },
		{ SUB("{\"topic\":\"a\\u001f\"}"), "invalid channel name",
		  "n1" },
		{ SUB("{\"topic\":\"a\\u007f\"}"), "invalid channel name",
		  "n1" },
		{ SUB("{\"topic\":\"a\x7f\"}"), "invalid channel name",
		  "n1" }, /* raw DEL is legal JSON */
		{ SUB("{\"topic\":\"a\\nb\"}"), "invalid channel name", "n1" },
		{ SUB("{\"topic\":\"a\\tb\"}"), "invalid channel name", "n1" },
		{ SUB("{\"topic\":\"a\\rb\"}"), "invalid channel name", "n1" },
		{ SUB("{\"topic\":\"a\\u0000b\"}"), "invalid channel name",
		  "n1" },
		{ UNSUB("{\"topic\":\"a\\u0000b\"}"), "invalid channel name",
		  "n1" },
		{ SEND("{\"channel\":\"a\\u0000b\",\"message\":\"m\"}"),
		  "invalid channel name", "n1" },
		{ SEND("{\"channel\":\"\\u001b[0m\",\"message\":\"m\"}"),
		  "invalid channel name", "n1" },
	};

	check_bad(t, N(t));
}

static char *frame_fmt(const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
	char *s = malloc(n);

	cr_assert_not_null(s);
	snprintf(s, n, fmt, a, b);
	return s;
}

Test(cmd, channel_name_length)
{
	static const struct {
		const char *unit;  /* JSON text of one unit */
		size_t unit_bytes; /* its decoded bytes */
		size_t count;
		const char *prefix;
		bool ok;
	} t[] = {
		{ "a", 1, 1, "", true },
		{ "a", 1, 128, "", true },
		{ "a", 1, 129, "", false },
		{ "a", 1, 4096, "", false },
		{ "\xc3\xa9", 2, 64, "", true },         /* 128 bytes of é */
		{ "\xc3\xa9", 2, 64, "a", false },       /* 129 */
		{ "\xf0\x9f\x98\x80", 4, 32, "", true }, /* 128 bytes of 😀 */
		{ "\\u00e9", 2, 64, "", true },          /* escaped: 384 raw */
		{ "\\u00e9", 2, 64, "a", false },
		{ "\\ud83d\\ude00", 4, 32, "", true },
		{ "\\ud83d\\ude00", 4, 33, "", false },
	};
	static const char *const fmts[] = {
		"{\"nonce\":\"n1\",\"command\":\"subscribe\",\"data\":{\"topic\":\"%s%s\"}}",
		"{\"nonce\":\"n1\",\"command\":\"unsubscribe\",\"data\":{\"topic\":\"%s%s\"}}",
		"{\"nonce\":\"n1\",\"command\":\"send\",\"data\":{\"channel\":\"%s%s\",\"message\":\"m\"}}",
	};

	for (size_t f = 0; f < N(fmts); f++)
		for (size_t i = 0; i < N(t); i++) {
			size_t ul = strlen(t[i].unit);
			char *name = malloc(ul * t[i].count + 1), *s;
			struct chan_cmd cmd;
			const char *r;

			cr_assert_not_null(name);
			for (size_t k = 0; k < t[i].count; k++)
				memcpy(name + k * ul, t[i].unit, ul);
			name[ul * t[i].count] = '\0';
			s = frame_fmt(fmts[f], t[i].prefix, name);
			r = decode(&cmd, s);
			if (t[i].ok) {
				cr_expect_null(r, "fmt %zu row %zu: got \"%s\"",
					       f, i, r);
				cr_expect_eq(cmd.channel.len,
					     strlen(t[i].prefix) +
						     t[i].unit_bytes *
							     t[i].count,
					     "fmt %zu row %zu: len %zu", f, i,
					     cmd.channel.len);
			} else {
				cr_expect(r && !strcmp(r,
						       "invalid channel name"),
					  "fmt %zu row %zu: got \"%s\"", f, i,
					  r ? r : "(ok)");
				STR_IS(cmd.nonce, "n1", "nonce");
			}
			chan_cmd_fini(&cmd);
			free(s);
			free(name);
		}
}

static const char *decode_max(struct chan_cmd *cmd, const char *s, size_t max)
{
	return chan_cmd_decode(cmd, s, strlen(s), max);
}

Test(cmd, message_too_large)
{
	static const struct {
		const char *unit;
		size_t unit_bytes, count, max;
		bool ok;
	} t[] = {
		{ "a", 1, 16, 16, true },
		{ "a", 1, 17, 16, false },
		{ "a", 1, 0, 0, true },
		{ "a", 1, 1, 0, false },
		/* measured after unescaping */
		{ "\\n", 1, 16, 16, true }, /* 32 raw bytes */
		{ "\\n", 1, 17, 16, false },
		{ "\\u00e9", 2, 8, 16, true }, /* 48 raw bytes */
		{ "\\u00e9", 2, 9, 16, false },
		{ "\\ud83d\\ude00", 4, 4, 16, true }, /* 48 raw bytes */
		{ "\\ud83d\\ude00", 4, 5, 16, false },
		{ "\\u0000", 1, 16, 16, true },
		{ "\\u0000", 1, 17, 16, false },
		{ "\xe2\x82\xac", 3, 5, 16,
		  true }, /* raw multi-byte: bytes, not characters */
		{ "\xe2\x82\xac", 3, 6, 16, false },
		/* the default limit */
		{ "x", 1, 65536, 65536, true },
		{ "x", 1, 65537, 65536, false },
	};

	for (size_t i = 0; i < N(t); i++) {
		size_t ul = strlen(t[i].unit);
		char *m = malloc(ul * t[i].count + 1), *s;
		struct chan_cmd cmd;
		const char *r;

		cr_assert_not_null(m);
		for (size_t k = 0; k < t[i].count; k++)
			memcpy(m + k * ul, t[i].unit, ul);
		m[ul * t[i].count] = '\0';
		s = frame_fmt(
			"{\"nonce\":\"n1\",\"command\":\"send\","
			"\"data\":{\"channel\":\"c\",\"message\":\"%s%s\"}}",
			m, "");
		r = decode_max(&cmd, s, t[i].max);
		if (t[i].ok) {
			cr_expect_null(r, "row %zu: got \"%s\"", i, r);
			cr_expect_eq(cmd.message.len,
				     t[i].unit_bytes * t[i].count,
				     "row %zu: len %zu", i, cmd.message.len);
		} else {
			cr_expect(r && !strcmp(r, "message too large"),
				  "row %zu: got \"%s\"", i, r ? r : "(ok)");
			STR_IS(cmd.nonce, "n1", "nonce");
		}
		chan_cmd_fini(&cmd);
		free(s);
		free(m);
	}
}

/* ---- successful decodes ---- */

static bool inside(const char *p, const char *buf, size_t len)
{
	return p >= buf && p < buf + len;
}

Test(cmd, subscribe_fields)
{
	const char *s =
		"{\"command\":\"subscribe\",\"data\":{\"topic\":\"channel1\","
		"\"password\":\"wordpass\"},\"nonce\":\"abc123\"}";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	cr_expect_eq(cmd.type, CHAN_CMD_SUBSCRIBE);
	STR_IS(cmd.channel, "channel1", "topic");
	STR_IS(cmd.password, "wordpass", "password");
	STR_IS(cmd.nonce, "abc123", "nonce");
	cr_expect_null(cmd.message.p);
	/* unescaped strings point into the frame */
	cr_expect(inside(cmd.channel.p, s, strlen(s)));
	cr_expect(inside(cmd.password.p, s, strlen(s)));
	cr_expect(inside(cmd.nonce.p, s, strlen(s)));
	cr_expect_eq(cmd.nheap, 0);
	chan_cmd_fini(&cmd);
}

Test(cmd, subscribe_no_password)
{
	static const char *const t[] = {
		SUB("{\"topic\":\"c\"}"),
		SUB("{\"topic\":\"c\",\"password\":null}"),
		/* first occurrence wins: null, then a string */
		SUB("{\"topic\":\"c\",\"password\":null,\"password\":\"p\"}"),
	};

	for (size_t i = 0; i < N(t); i++) {
		struct chan_cmd cmd;
		const char *r = decode(&cmd, t[i]);

		cr_expect_null(r, "row %zu: got \"%s\"", i, r);
		cr_expect_eq(cmd.type, CHAN_CMD_SUBSCRIBE, "row %zu", i);
		cr_expect_null(cmd.password.p, "row %zu: password set", i);
		STR_IS(cmd.channel, "c", "topic");
		STR_IS(cmd.nonce, "n1", "nonce");
		chan_cmd_fini(&cmd);
	}
}

/* "" is a password given (PROTOCOL.md: present and a string): it must
 * match a channel created with "", and is refused on an open channel */
Test(cmd, subscribe_empty_password_is_given)
{
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd,
			      SUB("{\"topic\":\"c\",\"password\":\"\"}")));
	cr_expect_not_null(cmd.password.p);
	cr_expect_eq(cmd.password.len, 0);
	chan_cmd_fini(&cmd);
}

Test(cmd, unsubscribe_fields)
{
	const char *s =
		"{\"command\":\"unsubscribe\",\"data\":{\"topic\":\"chan nel\"}}";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	cr_expect_eq(cmd.type, CHAN_CMD_UNSUBSCRIBE);
	STR_IS(cmd.channel, "chan nel", "topic");
	cr_expect_null(cmd.nonce.p);
	cr_expect_null(cmd.password.p);
	cr_expect_null(cmd.message.p);
	chan_cmd_fini(&cmd);

	/* data fields that do not belong to unsubscribe are ignored */
	cr_assert_null(decode(
		&cmd, UNSUB("{\"topic\":\"t\",\"password\":1,\"message\":2}")));
	cr_expect_eq(cmd.type, CHAN_CMD_UNSUBSCRIBE);
	STR_IS(cmd.channel, "t", "topic");
	cr_expect_null(cmd.password.p);
	chan_cmd_fini(&cmd);
}

Test(cmd, send_fields)
{
	const char *s =
		"{\"command\":\"send\",\"nonce\":\"n-7\",\"data\":"
		"{\"message\":\"Hello\",\"channel\":\"channel1\"}}";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	cr_expect_eq(cmd.type, CHAN_CMD_SEND);
	STR_IS(cmd.channel, "channel1", "channel");
	STR_IS(cmd.message, "Hello", "message");
	STR_IS(cmd.nonce, "n-7", "nonce");
	cr_expect_null(cmd.password.p);
	cr_expect(inside(cmd.message.p, s, strlen(s)));
	chan_cmd_fini(&cmd);

	/* an empty message is a message */
	cr_assert_null(decode(&cmd,
			      SEND("{\"channel\":\"c\",\"message\":\"\"}")));
	cr_expect_not_null(cmd.message.p);
	cr_expect_eq(cmd.message.len, 0);
	chan_cmd_fini(&cmd);
}

Test(cmd, whitespace_and_order)
{
	const char *s =
		" \r\n\t{ \"data\" :\t{ \"channel\" : \"c\" ,\n\"message\" : \"m\" } ,"
		" \"nonce\" : \"n\" , \"command\" : \"send\" } \n\t\r ";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	cr_expect_eq(cmd.type, CHAN_CMD_SEND);
	STR_IS(cmd.channel, "c", "channel");
	STR_IS(cmd.message, "m", "message");
	STR_IS(cmd.nonce, "n", "nonce");
	chan_cmd_fini(&cmd);
}

Test(cmd, escapes_decoded)
{
	/* every escape, a 2-byte, a 3-byte and a 4-byte character, and NUL */
	const char *s =
		"{\"command\":\"send\",\"data\":{\"channel\":\"c\",\"message\":"
		"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u00E9\\u20ac\\ud83d\\ude00"
		"\\uD83D\\uDE00\\u0000end\\u0041\"}}";
	static const char exp[] =
		"\"\\/\b\f\n\r\t\xc3\xa9\xc3\xa9\xe2\x82\xac"
		"\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
		"\0"
		"endA";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	STR_IS(cmd.message, exp, "message");
	cr_expect_eq(cmd.message.p[cmd.message.len], '\0',
		     "heap copy NUL-terminated");
	cr_expect_not(inside(cmd.message.p, s, strlen(s)), "escaped: a copy");
	cr_expect_eq(cmd.nheap, 1);
	chan_cmd_fini(&cmd);
	cr_expect_eq(cmd.nheap, 0);
}

/* \u escapes at each UTF-8 length boundary, and surrogate pairs at theirs. */
Test(cmd, unicode_escape_boundaries)
{
	static const struct {
		const char *esc;
		const char *utf8;
		size_t n;
	} t[] = {
		{ "\\u0001", BYTES("\x01") },
		{ "\\u007f", BYTES("\x7f") },
		{ "\\u0080", BYTES("\xc2\x80") },
		{ "\\u07ff", BYTES("\xdf\xbf") },
		{ "\\u0800", BYTES("\xe0\xa0\x80") },
		{ "\\ud7ff", BYTES("\xed\x9f\xbf") },
		{ "\\ue000", BYTES("\xee\x80\x80") },
		{ "\\uFFFF", BYTES("\xef\xbf\xbf") },
		{ "\\ud800\\udc00", BYTES("\xf0\x90\x80\x80") }, /* U+10000 */
		{ "\\ud83d\\ude00", BYTES("\xf0\x9f\x98\x80") },
		{ "\\udbff\\udfff", BYTES("\xf4\x8f\xbf\xbf") }, /* U+10FFFF */
	};

	for (size_t i = 0; i < N(t); i++) {
		struct chan_cmd cmd;
		char *s = frame_fmt(
			"{\"command\":\"send\",\"data\":{\"channel\":\"c\","
			"\"message\":\"%s%s\"}}",
			t[i].esc, "");
		const char *r = decode(&cmd, s);

		cr_expect_null(r, "row %zu: got \"%s\"", i, r);
		cr_expect_eq(cmd.message.len, t[i].n, "row %zu: len %zu", i,
			     cmd.message.len);
		cr_expect(cmd.message.p && cmd.message.len == t[i].n &&
				  !memcmp(cmd.message.p, t[i].utf8, t[i].n),
			  "row %zu: bytes", i);
		chan_cmd_fini(&cmd);
		free(s);
	}
}

Test(cmd, escapes_in_every_field)
{
	const char *s =
		"{\"nonce\":\"n\\u00e9\\\"\",\"command\":\"subscribe\",\"data\":"
		"{\"topic\":\"caf\\u00e9\\/x\",\"password\":\"p\\u0000w\\\\\"}}";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	STR_IS(cmd.nonce, "n\xc3\xa9\"", "nonce");
	STR_IS(cmd.channel, "caf\xc3\xa9/x", "topic");
	STR_IS(cmd.password, "p\0w\\", "password");
	chan_cmd_fini(&cmd);

	s = "{\"nonce\":\"\\t\",\"command\":\"send\",\"data\":"
	    "{\"channel\":\"\\u00e9\",\"message\":\"\\ud83d\\ude00\"}}";
	cr_assert_null(decode(&cmd, s));
	STR_IS(cmd.nonce, "\t", "nonce");
	STR_IS(cmd.channel, "\xc3\xa9", "channel");
	STR_IS(cmd.message, "\xf0\x9f\x98\x80", "message");
	cr_expect_eq(cmd.nheap, 3);
	chan_cmd_fini(&cmd);
}

Test(cmd, utf8_passthrough)
{
	const char *s =
		"{\"command\":\"send\",\"data\":{\"channel\":\"caf\xc3\xa9-\xf0\x9f\x98\x80\","
		"\"message\":\"\xe2\x82\xac \xc2\x80\"}}";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	STR_IS(cmd.channel, "caf\xc3\xa9-\xf0\x9f\x98\x80", "channel");
	STR_IS(cmd.message, "\xe2\x82\xac \xc2\x80", "message");
	chan_cmd_fini(&cmd);
}

Test(cmd, duplicate_keys_first_wins)
{
	const char *s =
		"{\"command\":\"send\",\"command\":\"list\","
		"\"nonce\":\"first\",\"nonce\":\"second\","
		"\"data\":{\"channel\":\"c1\",\"channel\":\"c2\","
		"\"message\":\"m1\",\"message\":\"m2\"},"
		"\"data\":{\"channel\":\"c3\",\"message\":\"m3\"}}";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	cr_expect_eq(cmd.type, CHAN_CMD_SEND);
	STR_IS(cmd.nonce, "first", "nonce");
	STR_IS(cmd.channel, "c1", "channel");
	STR_IS(cmd.message, "m1", "message");
	chan_cmd_fini(&cmd);

	s = SUB("{\"topic\":\"t1\",\"password\":\"p1\",\"topic\":\"t2\",\"password\":\"p2\"}");
	cr_assert_null(decode(&cmd, s));
	STR_IS(cmd.channel, "t1", "topic");
	STR_IS(cmd.password, "p1", "password");
	chan_cmd_fini(&cmd);
}

Test(cmd, unknown_fields_ignored)
{
	const char *s =
		"{\"extra\":{\"nested\":[1,-2.5e+3,0,{\"a\":null,\"b\":[true,false]}],"
		"\"command\":\"x\",\"nonce\":1},"
		"\"command\":\"subscribe\",\"z\":\"\\u00e9\\ud83d\\ude00\","
		"\"data\":{\"foo\":\"bar\",\"topic\":\"t\",\"deep\":{\"topic\":\"no\"},"
		"\"n\":[[[]]],\"e\":{}},\"nonce\":\"n\",\"ttl\":16,\"list\":[]}";
	struct chan_cmd cmd;

	cr_assert_null(decode(&cmd, s));
	cr_expect_eq(cmd.type, CHAN_CMD_SUBSCRIBE);
	STR_IS(cmd.channel, "t", "topic");
	STR_IS(cmd.nonce, "n", "nonce");
	cr_expect_null(cmd.password.p);
	chan_cmd_fini(&cmd);
}

Test(cmd, numbers_accepted)
{
	const char *s = NL
		",\"x\":[0,-0,1,-1,10,1.5,-0.25,1e5,1E5,1e+5,1e-5,"
		"2.5E-3,123456789012345678901234567890]}";
	struct chan_cmd cmd;

	cr_expect_null(decode(&cmd, s));
	STR_IS(cmd.nonce, "n1", "nonce");
	chan_cmd_fini(&cmd);
}

Test(cmd, fini_twice_and_after_error)
{
	struct chan_cmd cmd;

	/* an error after strings were copied: fini frees them */
	cr_assert_str_eq(
		decode(&cmd,
		       SEND("{\"channel\":\"a\\u0000b\",\"message\":\"\\n\"}")),
		"invalid channel name");
	chan_cmd_fini(&cmd);
	chan_cmd_fini(&cmd);
	cr_expect_eq(cmd.nheap, 0);
}

/* ---- chan_name_valid ---- */

Test(cmd, name_valid)
{
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} t[] = {
		{ "a", 1, true },
		{ "channel1", 8, true },
		{ "with space", 10, true },
		{ "caf\xc3\xa9", 5, true },
		{ "\xf0\x9f\x98\x80", 4, true },
		{ "\xc2\x80", 2, true }, /* U+0080: not in the forbidden set */
		{ "~", 1, true },
		{ "", 0, false },
		{ "a\0b", 3, false },
		{ "\x01", 1, false },
		{ "a\x1f", 2, false },
		{ "a\x7f", 2, false },
		{ "a\n", 2, false },
		{ "\t", 1, false },
		{ "\xc3", 1, false },         /* truncated */
		{ "\xc0\xaf", 2, false },     /* overlong */
		{ "\xed\xa0\x80", 3, false }, /* surrogate */
		{ "\xff", 1, false },
		{ "\x80", 1, false },
	};

	for (size_t i = 0; i < N(t); i++)
		cr_expect_eq(chan_name_valid(t[i].s, t[i].len), t[i].ok,
			     "row %zu", i);

	char buf[200];

	memset(buf, 'x', sizeof(buf));
	cr_expect(chan_name_valid(buf, 128));
	cr_expect_not(chan_name_valid(buf, 129));
	cr_expect_not(chan_name_valid(buf, 200));
	/* a multi-byte character straddling byte 128 */
	memcpy(buf + 127, "\xc3\xa9", 2);
	cr_expect_not(chan_name_valid(buf, 129));
	cr_expect_not(chan_name_valid(buf, 128), "cut in the middle of é");
}

/* ---- frames written back ---- */

static void response_is(bool ok, const char *reason,
			const struct chan_str *nonce, const char *exp)
{
	struct wr_buf b;

	wr_buf_init(&b);
	chan_response_json(&b, ok, reason, nonce);
	cr_assert_not_null(b.p);
	cr_expect_eq(b.len, strlen(exp), "len %zu: %s", b.len, b.p);
	cr_expect_str_eq(b.p, exp);
	cr_expect_not(b.oom);
	wr_buf_fini(&b);
}

Test(cmd, response_json)
{
	struct chan_str nonce = { "abc123", 6 };
	struct chan_str none = { NULL, 0 };
	struct chan_str empty = { "", 0 };
	struct chan_str esc = LIT("a\"b\\c\n\x01\x7f\xc3\xa9");
	struct chan_str nul = LIT("a\0b");

	response_is(true, NULL, NULL,
		    "{\"type\":\"response\",\"data\":{\"ok\":true}}");
	response_is(true, NULL, &none,
		    "{\"type\":\"response\",\"data\":{\"ok\":true}}");
	response_is(
		true, NULL, &nonce,
		"{\"type\":\"response\",\"data\":{\"ok\":true},\"nonce\":\"abc123\"}");
	response_is(false, "invalid password", &nonce,
		    "{\"type\":\"response\",\"data\":{\"ok\":false,"
		    "\"reason\":\"invalid password\"},\"nonce\":\"abc123\"}");
	response_is(false, "invalid json", NULL,
		    "{\"type\":\"response\",\"data\":{\"ok\":false,"
		    "\"reason\":\"invalid json\"}}");
	response_is(
		true, NULL, &empty,
		"{\"type\":\"response\",\"data\":{\"ok\":true},\"nonce\":\"\"}");
	response_is(false, "missing field: \"x\"\n", &esc,
		    "{\"type\":\"response\",\"data\":{\"ok\":false,"
		    "\"reason\":\"missing field: \\\"x\\\"\\n\"},"
		    "\"nonce\":\"a\\\"b\\\\c\\n\\u0001\\u007f\xc3\xa9\"}");
	response_is(
		true, NULL, &nul,
		"{\"type\":\"response\",\"data\":{\"ok\":true},\"nonce\":\"a\\u0000b\"}");
}

Test(cmd, response_json_appends)
{
	struct wr_buf b;

	wr_buf_init(&b);
	wr_buf_puts(&b, "X");
	chan_response_json(&b, true, NULL, NULL);
	cr_expect_str_eq(b.p,
			 "X{\"type\":\"response\",\"data\":{\"ok\":true}}");
	wr_buf_fini(&b);
}

static void delivery_is(const char *ch, size_t clen, const char *msg,
			size_t mlen, const struct chan_str *nonce,
			const char *exp, size_t elen)
{
	struct wr_buf b;

	wr_buf_init(&b);
	chan_delivery_json(&b, ch, clen, msg, mlen, nonce);
	cr_assert_not_null(b.p);
	cr_expect_eq(b.len, elen, "len %zu: %s", b.len, b.p);
	cr_expect(b.len == elen && !memcmp(b.p, exp, elen), "got %s", b.p);
	wr_buf_fini(&b);
}
#define DELIVERY_IS(ch, cl, m, ml, n, lit) \
	delivery_is(ch, cl, m, ml, n, lit, sizeof(lit) - 1)

Test(cmd, delivery_json)
{
	struct chan_str nonce = { "abc123", 6 };
	struct chan_str none = { NULL, 0 };
	struct chan_str qn = LIT("q\"");
	static const char chan_esc[] = "caf\xc3\xa9 \"x\"";
	static const char msg_esc[] =
		"he said \"hi\"\\\n\r\t\b\f\x01\x1f\x7f\0z\xf0\x9f\x98\x80";

	DELIVERY_IS("channel1", 8, "Hello", 5, &nonce,
		    "{\"type\":\"message\",\"data\":{\"message\":\"Hello\","
		    "\"channel\":\"channel1\"},\"nonce\":\"abc123\"}");
	DELIVERY_IS("channel1", 8, "Hello", 5, NULL,
		    "{\"type\":\"message\",\"data\":{\"message\":\"Hello\","
		    "\"channel\":\"channel1\"}}");
	DELIVERY_IS("channel1", 8, "Hello", 5, &none,
		    "{\"type\":\"message\",\"data\":{\"message\":\"Hello\","
		    "\"channel\":\"channel1\"}}");
	DELIVERY_IS(
		"c", 1, "", 0, NULL,
		"{\"type\":\"message\",\"data\":{\"message\":\"\",\"channel\":\"c\"}}");
	/* explicit lengths: the NUL and what follows are part of the message */
	DELIVERY_IS(chan_esc, sizeof(chan_esc) - 1, msg_esc,
		    sizeof(msg_esc) - 1, &qn,
		    "{\"type\":\"message\",\"data\":{\"message\":"
		    "\"he said \\\"hi\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\\u0000z"
		    "\xf0\x9f\x98\x80\",\"channel\":\"caf\xc3\xa9 \\\"x\\\"\"},"
		    "\"nonce\":\"q\\\"\"}");
	/* only @clen bytes of the channel are used */
	DELIVERY_IS(
		"abcdef", 3, "m", 1, NULL,
		"{\"type\":\"message\",\"data\":{\"message\":\"m\",\"channel\":\"abc\"}}");
}

/* What a decoder reads back from a delivery is what was sent. */
Test(cmd, delivery_roundtrip)
{
	const char *in =
		"{\"command\":\"send\",\"nonce\":\"n\\u0000\\\"\",\"data\":"
		"{\"channel\":\"c\\u00e9\",\"message\":\"a\\u0000\\\\b\\n\\u007f\"}}";
	struct chan_cmd cmd, back;
	struct wr_buf b;
	char *frame;

	cr_assert_null(decode(&cmd, in));
	wr_buf_init(&b);
	chan_delivery_json(&b, cmd.channel.p, cmd.channel.len, cmd.message.p,
			   cmd.message.len, &cmd.nonce);
	/* re-read it as a send of the same fields */
	frame = frame_fmt("{\"command\":\"send\",\"data\":%s%s",
			  b.p + strlen("{\"type\":\"message\",\"data\":"), "");
	cr_assert_null(decode(&back, frame), "frame %s", frame);
	cr_expect_eq(back.channel.len, cmd.channel.len);
	cr_expect(!memcmp(back.channel.p, cmd.channel.p, cmd.channel.len));
	cr_expect_eq(back.message.len, cmd.message.len);
	cr_expect(!memcmp(back.message.p, cmd.message.p, cmd.message.len));
	cr_expect_eq(back.nonce.len, cmd.nonce.len);
	cr_expect(back.nonce.p &&
		  !memcmp(back.nonce.p, cmd.nonce.p, cmd.nonce.len));
	chan_cmd_fini(&back);
	chan_cmd_fini(&cmd);
	free(frame);
	wr_buf_fini(&b);
}

/* 7.1: "auth" takes data.token, a string, kept as it was sent; its form is
 * judged by auth/, not the decoder. */
Test(cmd, auth_command)
{
	static const struct {
		const char *in, *reason, *token;
	} t[] = {
		{ "{\"command\":\"auth\",\"data\":{\"token\":\"a.b.c\"},\"nonce\":\"n\"}",
		  NULL, "a.b.c" },
		{ "{\"command\":\"auth\",\"data\":{\"token\":\"\"}}", NULL,
		  "" },
		{ "{\"command\":\"auth\",\"data\":{\"token\":\"a\\u002eb\"}}",
		  NULL, "a.b" },
		{ "{\"command\":\"auth\"}", "missing field: data", NULL },
		{ "{\"command\":\"auth\",\"data\":{}}", "missing field: token",
		  NULL },
		{ "{\"command\":\"auth\",\"data\":{\"token\":1}}",
		  "missing field: token", NULL },
		{ "{\"command\":\"auth\",\"data\":{\"token\":null}}",
		  "missing field: token", NULL },
		{ "{\"command\":\"Auth\",\"data\":{\"token\":\"x\"}}",
		  "unknown command", NULL },
	};

	for (size_t i = 0; i < N(t); i++) {
		struct chan_cmd cmd;
		const char *r = decode(&cmd, t[i].in);

		if (t[i].reason) {
			cr_expect(r && !strcmp(r, t[i].reason),
				  "row %zu: want %s, got %s", i, t[i].reason,
				  r ? r : "ok");
		} else {
			cr_expect_null(r, "row %zu: got %s", i, r);
			cr_expect_eq(cmd.type, CHAN_CMD_AUTH);
			cr_expect_eq(cmd.token.len, strlen(t[i].token));
			cr_expect(!memcmp(cmd.token.p, t[i].token,
					  cmd.token.len));
		}
		chan_cmd_fini(&cmd);
	}
}

Test(cmd, recover_since_and_history)
{
	struct chan_cmd cmd;
	const char *r;

	r = decode(&cmd,
		   "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
		   "\"recover\":true}}");
	cr_assert_null(r, "%s", r);
	cr_expect(cmd.recover);
	cr_expect_not(cmd.has_since);
	chan_cmd_fini(&cmd);
	r = decode(&cmd,
		   "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
		   "\"recover\":false,\"since\":{\"offset\":"
		   "18446744073709551615,\"epoch\":\"e\\u0031\"}}}");
	cr_assert_null(r, "%s", r);
	cr_expect(cmd.recover, "since implies recover");
	cr_expect(cmd.has_since);
	cr_expect_eq(cmd.since_offset, UINT64_MAX);
	STR_IS(cmd.since_epoch, "e1", "epoch");
	chan_cmd_fini(&cmd);
	r = decode(&cmd,
		   "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
		   "\"recover\":null,\"since\":null}}");
	cr_assert_null(r, "%s", r);
	cr_expect_not(cmd.recover);
	chan_cmd_fini(&cmd);
	r = decode(&cmd,
		   "{\"command\":\"history\",\"data\":{\"channel\":\"c\","
		   "\"limit\":7},\"nonce\":\"h\"}");
	cr_assert_null(r, "%s", r);
	cr_expect_eq(cmd.type, CHAN_CMD_HISTORY);
	cr_expect(cmd.has_limit);
	cr_expect_eq(cmd.limit, 7);
	STR_IS(cmd.channel, "c", "channel");
	chan_cmd_fini(&cmd);
	r = decode(&cmd,
		   "{\"command\":\"history\",\"data\":{\"channel\":\"c\"}}");
	cr_assert_null(r, "%s", r);
	cr_expect_not(cmd.has_limit);
	chan_cmd_fini(&cmd);
	{
		static const struct bad t[] = {
			{ "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
			  "\"recover\":1},\"nonce\":\"n\"}",
			  "missing field: recover", "n" },
			{ "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
			  "\"since\":[]}}",
			  "missing field: since", NULL },
			{ "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
			  "\"since\":{\"epoch\":\"e\",\"offset\":1.0}}}",
			  "missing field: since", NULL },
			{ "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
			  "\"since\":{\"epoch\":\"e\",\"offset\":"
			  "18446744073709551616}}}",
			  "missing field: since", NULL },
			{ "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
			  "\"since\":{\"offset\":3}}}",
			  "missing field: since", NULL },
			{ "{\"command\":\"history\",\"data\":{}}",
			  "missing field: channel", NULL },
			{ "{\"command\":\"history\",\"data\":{\"channel\":\"c\","
			  "\"limit\":-2}}",
			  "missing field: limit", NULL },
			{ "{\"command\":\"history\",\"data\":{\"channel\":\"\"}}",
			  "invalid channel name", NULL },
			{ "{\"command\":\"history\"}", "missing field: data",
			  NULL },
		};

		check_bad(t, N(t));
	}
}

Test(cmd, presence_and_presence_events)
{
	struct chan_cmd cmd;
	const char *r;

	r = decode(&cmd,
		   "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
		   "\"presence_events\":true}}");
	cr_assert_null(r, "%s", r);
	cr_expect(cmd.presence_events);
	chan_cmd_fini(&cmd);
	r = decode(&cmd,
		   "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
		   "\"presence_events\":null}}");
	cr_assert_null(r, "%s", r);
	cr_expect_not(cmd.presence_events);
	chan_cmd_fini(&cmd);
	r = decode(&cmd,
		   "{\"command\":\"presence\",\"data\":{\"channel\":"
		   "\"c\\u0031\"},\"nonce\":\"p\"}");
	cr_assert_null(r, "%s", r);
	cr_expect_eq(cmd.type, CHAN_CMD_PRESENCE);
	STR_IS(cmd.channel, "c1", "channel");
	chan_cmd_fini(&cmd);
	{
		static const struct bad t[] = {
			{ "{\"command\":\"subscribe\",\"data\":{\"topic\":\"c\","
			  "\"presence_events\":\"yes\"},\"nonce\":\"n\"}",
			  "missing field: presence_events", "n" },
			{ "{\"command\":\"presence\",\"data\":{}}",
			  "missing field: channel", NULL },
			{ "{\"command\":\"presence\",\"data\":{\"channel\":1}}",
			  "missing field: channel", NULL },
			{ "{\"command\":\"presence\",\"data\":{\"channel\":\"\"}}",
			  "invalid channel name", NULL },
			{ "{\"command\":\"presence\"}", "missing field: data",
			  NULL },
		};

		check_bad(t, N(t));
	}
}
