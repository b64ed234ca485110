/*
 * tests/unit/test_common: UTF-8 validation (every class of malformed
 * sequence), JSON string escaping (against a reference escaper too), the
 * server frame headers at each length boundary, hex, constant-time compare,
 * message refcounts, the buffer, error strings and the log line formats
 * (text, and json with its escaping).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s) s, sizeof(s) - 1

/* ---- UTF-8 ---- */

Test(common, utf8_valid)
{
	static const struct {
		const char *what;
		const char *s;
		size_t n;
		bool ok;
	} t[] = {
		{ "empty", LIT(""), true },
		{ "ascii", LIT("hello, world"), true },
		{ "NUL and DEL are ASCII", LIT("a\0b\x7f"), true },
		{ "U+0080", LIT("\xc2\x80"), true },
		{ "e acute", LIT("\xc3\xa9"), true },
		{ "U+07FF", LIT("\xdf\xbf"), true },
		{ "U+0800", LIT("\xe0\xa0\x80"), true },
		{ "euro", LIT("\xe2\x82\xac"), true },
		{ "U+D7FF", LIT("\xed\x9f\xbf"), true },
		{ "U+E000", LIT("\xee\x80\x80"), true },
		{ "U+FFFE", LIT("\xef\xbf\xbe"), true },
		{ "U+FFFF", LIT("\xef\xbf\xbf"), true },
		{ "U+10000", LIT("\xf0\x90\x80\x80"), true },
		{ "emoji", LIT("\xf0\x9f\x98\x80"), true },
		{ "U+10FFFF", LIT("\xf4\x8f\xbf\xbf"), true },
		{ "mixed",
		  LIT("a\xc3\xa9"
		      "b\xe2\x82\xac"
		      "c\xf0\x9f\x98\x80"
		      "d"),
		  true },
		/* overlong */
		{ "overlong 2-byte NUL", LIT("\xc0\x80"), false },
		{ "overlong 2-byte /", LIT("\xc0\xaf"), false },
		{ "overlong 2-byte max", LIT("\xc1\xbf"), false },
		{ "overlong 3-byte NUL", LIT("\xe0\x80\x80"), false },
		{ "overlong 3-byte /", LIT("\xe0\x80\xaf"), false },
		{ "overlong 3-byte max", LIT("\xe0\x9f\xbf"), false },
		{ "overlong 4-byte NUL", LIT("\xf0\x80\x80\x80"), false },
		{ "overlong 4-byte max", LIT("\xf0\x8f\xbf\xbf"), false },
		/* surrogates */
		{ "U+D800", LIT("\xed\xa0\x80"), false },
		{ "U+DBFF", LIT("\xed\xaf\xbf"), false },
		{ "U+DC00", LIT("\xed\xb0\x80"), false },
		{ "U+DFFF", LIT("\xed\xbf\xbf"), false },
		{ "CESU-8 pair", LIT("\xed\xa0\xbd\xed\xb8\x80"), false },
		/* above U+10FFFF */
		{ "U+110000", LIT("\xf4\x90\x80\x80"), false },
		{ "F5 lead", LIT("\xf5\x80\x80\x80"), false },
		{ "F7 lead", LIT("\xf7\xbf\xbf\xbf"), false },
		{ "5-byte", LIT("\xf8\x88\x80\x80\x80"), false },
		{ "6-byte", LIT("\xfc\x84\x80\x80\x80\x80"), false },
		{ "FE", LIT("\xfe"), false },
		{ "FF", LIT("\xff"), false },
		/* truncated */
		{ "2-byte cut", LIT("\xc3"), false },
		{ "3-byte cut after 1", LIT("\xe2"), false },
		{ "3-byte cut after 2", LIT("\xe2\x82"), false },
		{ "4-byte cut after 3", LIT("\xf0\x9f\x98"), false },
		{ "cut at the end", LIT("abc\xc3"), false },
		{ "cut before ASCII",
		  LIT("\xe2\x82"
		      "a"),
		  false },
		{ "lead then ASCII",
		  LIT("\xc3"
		      "A"),
		  false },
		{ "bad third byte", LIT("\xf0\x9f\x41\x80"), false },
		{ "bad last byte", LIT("\xf0\x9f\x98\xc0"), false },
		/* continuation without a lead */
		{ "lone 80", LIT("\x80"), false },
		{ "lone BF", LIT("\xbf"), false },
		{ "continuation in ASCII",
		  LIT("a\x80"
		      "b"),
		  false },
		{ "one continuation too many", LIT("\xc3\xa9\xa9"), false },
	};

	for (size_t i = 0; i < N(t); i++)
		cr_expect_eq(wr_utf8_valid(t[i].s, t[i].n), t[i].ok,
			     "row %zu: %s", i, t[i].what);
	/* the length bounds the check, not a NUL */
	cr_expect_not(wr_utf8_valid("\xc3\xa9", 1));
	cr_expect(wr_utf8_valid("a\xff", 1));
}

/* Every code point U+0000..U+10FFFF encodes to something valid, except surrogates. */
Test(common, utf8_all_code_points)
{
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		unsigned char b[4];
		size_t n;

		if (cp < 0x80) {
			b[0] = (unsigned char)cp;
			n = 1;
		} else if (cp < 0x800) {
			b[0] = (unsigned char)(0xc0 | (cp >> 6));
			b[1] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			b[0] = (unsigned char)(0xe0 | (cp >> 12));
			b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			b[2] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			b[0] = (unsigned char)(0xf0 | (cp >> 18));
			b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
			b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			b[3] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		bool exp = !(cp >= 0xd800 && cp <= 0xdfff);

		if (wr_utf8_valid(b, n) != exp)
			cr_assert_fail("U+%04X: got %d", (unsigned)cp, !exp);
		/* and any prefix of a multi-byte sequence is not */
		for (size_t k = 1; k < n; k++)
			if (wr_utf8_valid(b, k))
				cr_assert_fail("U+%04X cut to %zu bytes accepted",
					       (unsigned)cp, k);
	}
}

/* ---- JSON strings ---- */

static void json_str_is(const char *s, size_t n, const char *exp, size_t elen,
			size_t row)
{
	struct wr_buf b;

	wr_buf_init(&b);
	wr_buf_json_str(&b, s, n);
	cr_assert_not_null(b.p, "row %zu", row);
	cr_expect_eq(b.len, elen, "row %zu: len %zu, expected %zu: %s", row,
		     b.len, elen, b.p);
	cr_expect(b.len == elen && !memcmp(b.p, exp, elen), "row %zu: got %s",
		  row, b.p);
	cr_expect_eq(b.p[b.len], '\0', "row %zu: NUL-terminated", row);
	wr_buf_fini(&b);
}

Test(common, json_str)
{
	static const struct {
		const char *s;
		size_t n;
		const char *exp;
		size_t elen;
	} t[] = {
		{ LIT(""), LIT("\"\"") },
		{ LIT("abc"), LIT("\"abc\"") },
		{ LIT(" "), LIT("\" \"") },
		{ LIT("\""), LIT("\"\\\"\"") },
		{ LIT("\\"), LIT("\"\\\\\"") },
		{ LIT("/"), LIT("\"/\"") },
		{ LIT("\n"), LIT("\"\\n\"") },
		{ LIT("\r"), LIT("\"\\r\"") },
		{ LIT("\t"), LIT("\"\\t\"") },
		{ LIT("\b"), LIT("\"\\b\"") },
		{ LIT("\f"), LIT("\"\\f\"") },
		{ LIT("\0"), LIT("\"\\u0000\"") },
		{ LIT("\x01"), LIT("\"\\u0001\"") },
		{ LIT("\x0b"), LIT("\"\\u000b\"") },
		{ LIT("\x1b"), LIT("\"\\u001b\"") },
		{ LIT("\x1f"), LIT("\"\\u001f\"") },
		{ LIT("\x7f"), LIT("\"\\u007f\"") },
		{ LIT("~"), LIT("\"~\"") },
		{ LIT("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\x80"),
		  LIT("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\x80\"") },
		{ LIT("a\"b\\c\nd\0e\x7f"
		      "f"),
		  LIT("\"a\\\"b\\\\c\\nd\\u0000e\\u007ff\"") },
		{ LIT("\"\"\n\n"), LIT("\"\\\"\\\"\\n\\n\"") },
		{ LIT("end\\"), LIT("\"end\\\\\"") },
	};

	for (size_t i = 0; i < N(t); i++)
		json_str_is(t[i].s, t[i].n, t[i].exp, t[i].elen, i);
}

/* A straightforward escaper to compare long, mixed inputs against. */
static size_t ref_escape(const unsigned char *s, size_t n, char *out)
{
	char *o = out;

	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '"':
			o += sprintf(o, "\\\"");
			break;
		case '\\':
			o += sprintf(o, "\\\\");
			break;
		case '\n':
			o += sprintf(o, "\\n");
			break;
		case '\r':
			o += sprintf(o, "\\r");
			break;
		case '\t':
			o += sprintf(o, "\\t");
			break;
		case '\b':
			o += sprintf(o, "\\b");
			break;
		case '\f':
			o += sprintf(o, "\\f");
			break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f)
				o += sprintf(o, "\\u%04x", s[i]);
			else
				*o++ = (char)s[i];
		}
	}
	*o++ = '"';
	return (size_t)(o - out);
}

Test(common, json_str_long_mixed)
{
	enum { LEN = 5000 };
	static unsigned char in[LEN];
	static char exp[LEN * 6 + 3];
	uint32_t x = 2463534242u;

	for (size_t round = 0; round < 3; round++) {
		size_t elen;
		struct wr_buf b;

		for (size_t i = 0; i < LEN; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			/* round 0: mostly plain, 1: half escapes, 2: all escapes */
			if (round == 2 || x % (round ? 2 : 50) == 0)
				in[i] = (unsigned char)((x >> 8) % 0x20);
			else
				in[i] = (unsigned char)(0x20 + (x >> 8) % 0x60);
		}
		elen = ref_escape(in, LEN, exp);
		wr_buf_init(&b);
		wr_buf_puts(&b, "pre");
		wr_buf_json_str(&b, (const char *)in, LEN);
		cr_assert_eq(b.len, 3 + elen, "round %zu", round);
		cr_expect(!memcmp(b.p, "pre", 3));
		cr_expect(!memcmp(b.p + 3, exp, elen), "round %zu differs",
			  round);
		wr_buf_fini(&b);
	}
}

/* The 8-byte-step scan against the byte rule: each special byte (and a
 * few that are not: 0x20, 0x7e, 0x80, 0xff) at every position of every
 * length up to 40, over plain text, so each lands in each lane of a step. */
Test(common, json_plain_run)
{
	static const unsigned char probe[] = { 0x00, 0x01, 0x1f, '"',  '\\',
					       0x7f, 0x20, 0x7e, 0x80, 0xff };
	unsigned char s[40];

	for (size_t n = 0; n <= sizeof(s); n++) {
		for (size_t at = 0; at < n; at++) {
			for (size_t k = 0; k < sizeof(probe); k++) {
				unsigned char c = probe[k];
				bool special = c < 0x20 || c == '"' ||
					       c == '\\' || c == 0x7f;
				char exp[sizeof(s) * 6 + 3];
				size_t elen;
				struct wr_buf b;

				memset(s, 'a', n);
				s[at] = c;
				cr_assert_eq(wr_json_plain_run((const char *)s,
							       n),
					     special ? at : n,
					     "n %zu at %zu byte %02x", n, at,
					     c);
				elen = ref_escape(s, n, exp);
				wr_buf_init(&b);
				wr_buf_json_str(&b, (const char *)s, n);
				cr_assert_eq(b.len, elen);
				cr_assert(!memcmp(b.p, exp, elen));
				wr_buf_fini(&b);
			}
		}
		memset(s, 'a', n);
		cr_assert_eq(wr_json_plain_run((const char *)s, n), n);
	}
}

/* ---- WebSocket frames ---- */

Test(common, ws_header_len)
{
	static const struct {
		size_t n, h;
	} t[] = { { 0, 2 },   { 1, 2 },     { 125, 2 },    { 126, 4 },
		  { 127, 4 }, { 65535, 4 }, { 65536, 10 }, { 1u << 20, 10 } };

	for (size_t i = 0; i < N(t); i++)
		cr_expect_eq(wr_ws_header_len(t[i].n), t[i].h, "len %zu",
			     t[i].n);
}

Test(common, ws_text_frame)
{
	static const struct {
		size_t n;
		size_t hlen;
		unsigned char hdr[10];
	} t[] = {
		{ 0, 2, { 0x81, 0 } },
		{ 1, 2, { 0x81, 1 } },
		{ 125, 2, { 0x81, 125 } },
		{ 126, 4, { 0x81, 126, 0x00, 126 } },
		{ 127, 4, { 0x81, 126, 0x00, 127 } },
		{ 256, 4, { 0x81, 126, 0x01, 0x00 } },
		{ 65535, 4, { 0x81, 126, 0xff, 0xff } },
		{ 65536, 10, { 0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 } },
		{ 70000, 10, { 0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70 } },
	};
	unsigned char *payload = malloc(70000);

	cr_assert_not_null(payload);
	for (size_t i = 0; i < 70000; i++)
		payload[i] = (unsigned char)(i * 31 + 7);
	for (size_t i = 0; i < N(t); i++) {
		struct wr_msg *m = wr_ws_text_frame(payload, t[i].n);

		cr_assert_not_null(m);
		cr_expect_eq(m->refs, 1);
		cr_expect_eq(m->len, t[i].hlen + t[i].n, "len %zu: total %zu",
			     t[i].n, m->len);
		cr_expect(!memcmp(m->data, t[i].hdr, t[i].hlen),
			  "len %zu: header %02x %02x %02x %02x", t[i].n,
			  m->data[0], m->data[1], m->data[2], m->data[3]);
		cr_expect(!memcmp(m->data + t[i].hlen, payload, t[i].n),
			  "len %zu: payload", t[i].n);
		wr_msg_unref(&m);
	}
	free(payload);
}

/* ---- hex, compare ---- */

Test(common, hex)
{
	static const unsigned char in[] = { 0x00, 0x01, 0x7f, 0x80,
					    0xab, 0xff, 0x10 };
	char out[2 * sizeof(in) + 1];
	char one[3];

	memset(out, 'X', sizeof(out));
	wr_hex(out, in, sizeof(in));
	cr_expect_str_eq(out, "00017f80abff10");
	memset(one, 'X', sizeof(one));
	wr_hex(one, in, 0);
	cr_expect_str_eq(one, "");
	for (unsigned v = 0; v < 256; v++) {
		unsigned char c = (unsigned char)v;
		char exp[3];

		snprintf(exp, sizeof(exp), "%02x", v);
		wr_hex(one, &c, 1);
		cr_expect_str_eq(one, exp);
	}
}

Test(common, ct_equal)
{
	unsigned char a[64], b[64];

	for (int i = 0; i < 64; i++)
		a[i] = b[i] = (unsigned char)(i * 5);
	cr_expect(wr_ct_equal(a, b, 64));
	cr_expect(wr_ct_equal(a, b, 0));
	cr_expect(wr_ct_equal("x", "y", 0));
	/* any single bit anywhere */
	for (int i = 0; i < 64; i++)
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (unsigned char)(1u << bit);
			if (wr_ct_equal(a, b, 64))
				cr_assert_fail("byte %d bit %d not seen", i,
					       bit);
			/* only the first @n bytes are compared */
			cr_expect_eq(wr_ct_equal(a, b, (size_t)i), true);
			b[i] ^= (unsigned char)(1u << bit);
		}
	cr_expect(wr_ct_equal(a, b, 64));
}

/* ---- messages ---- */

Test(common, msg_refcount)
{
	struct wr_msg *m = wr_msg_create(16), *alias, *none = NULL;

	cr_assert_not_null(m);
	cr_expect_eq(m->refs, 1);
	cr_expect_eq(m->len, 16);
	memset(m->data, 'z', 16); /* the bytes are ours to write (ASan) */

	alias = wr_msg_ref(m);
	cr_expect_eq(alias, m);
	cr_expect_eq(m->refs, 2);
	wr_msg_ref(m);
	cr_expect_eq(m->refs, 3);

	wr_msg_unref(&alias);
	cr_expect_null(alias, "caller's pointer NULLed");
	cr_expect_eq(m->refs, 2);
	alias = m;
	wr_msg_unref(&alias);
	cr_expect_eq(m->refs, 1);
	wr_msg_unref(&none); /* no-op */
	cr_expect_null(none);
	wr_msg_unref(&m); /* frees: ASan would flag a leak otherwise */
	cr_expect_null(m);

	m = wr_msg_create(0);
	cr_assert_not_null(m);
	cr_expect_eq(m->len, 0);
	wr_msg_unref(&m);
}

/* ---- the buffer ---- */

Test(common, buf_basics)
{
	struct wr_buf b;
	size_t cap;

	wr_buf_init(&b);
	cr_expect_null(b.p);
	cr_expect_eq(b.len, 0);
	cr_expect_not(b.oom);

	wr_buf_append(&b, "ab\0c", 4);
	cr_expect_eq(b.len, 4);
	cr_expect(!memcmp(b.p, "ab\0c", 5), "bytes kept, NUL after");
	wr_buf_puts(&b, "de");
	wr_buf_printf(&b, "|%d|%s|%05.1f", -42, "x", 2.5);
	cr_expect_eq(b.len, 4 + 2 + strlen("|-42|x|002.5"));
	cr_expect_str_eq(b.p + 4, "de|-42|x|002.5");

	cap = b.cap;
	wr_buf_reset(&b);
	cr_expect_eq(b.len, 0);
	cr_expect_eq(b.cap, cap, "reset keeps capacity");
	wr_buf_puts(&b, "");
	cr_expect_eq(b.len, 0);

	/* growth across many appends and one big printf */
	for (int i = 0; i < 1000; i++)
		wr_buf_printf(&b, "%04d", i);
	cr_expect_eq(b.len, 4000);
	cr_expect(!strncmp(b.p + 3996, "0999", 4));
	cr_expect_eq(b.p[b.len], '\0');
	wr_buf_printf(&b, "%5000s", "y");
	cr_expect_eq(b.len, 9000);
	cr_expect_eq(b.p[8999], 'y');
	cr_expect_eq(b.p[4000], ' ');
	cr_expect_geq(b.cap, b.len + 1);

	/* oom is sticky until reset */
	b.oom = true;
	cr_expect_eq(wr_buf_reserve(&b, 1), WR_ENOMEM);
	wr_buf_puts(&b, "lost");
	cr_expect_eq(b.len, 9000);
	wr_buf_reset(&b);
	cr_expect_not(b.oom);
	cr_expect_eq(wr_buf_reserve(&b, 1), WR_OK);

	wr_buf_fini(&b);
	cr_expect_null(b.p);
	cr_expect_eq(b.len, 0);
	cr_expect_eq(b.cap, 0);
}

/* ---- errors, logging, time ---- */

Test(common, strerror)
{
	static const int codes[] = { WR_OK,     WR_ENOMEM, WR_EINVAL,
				     WR_ENOENT, WR_EFULL,  WR_EPERM,
				     WR_EAGAIN, WR_EEXIST, WR_EIO };

	cr_expect_str_eq(wr_strerror(WR_OK), "ok");
	for (size_t i = 0; i < N(codes); i++) {
		const char *s = wr_strerror(codes[i]);

		cr_assert_not_null(s);
		cr_expect_str_neq(s, "unknown error", "code %d", codes[i]);
		for (size_t k = 0; k < i; k++)
			cr_expect_str_neq(s, wr_strerror(codes[k]), "%d vs %d",
					  codes[i], codes[k]);
	}
	cr_expect_str_eq(wr_strerror(-100), "unknown error");
	cr_expect_str_eq(wr_strerror(1), "unknown error");
}

Test(common, log_level_parse)
{
	static const struct {
		const char *s;
		int rc;
		enum wr_log_level lvl;
	} t[] = {
		{ "debug", 0, WR_LOG_DEBUG },
		{ "info", 0, WR_LOG_INFO },
		{ "warn", 0, WR_LOG_WARN },
		{ "error", 0, WR_LOG_ERROR },
		{ "INFO", -1, 0 },
		{ "", -1, 0 },
		{ "warning", -1, 0 },
		{ "err", -1, 0 },
	};

	for (size_t i = 0; i < N(t); i++) {
		enum wr_log_level lvl = (enum wr_log_level)99;

		cr_expect_eq(wr_log_level_parse(t[i].s, &lvl), t[i].rc, "%s",
			     t[i].s);
		if (!t[i].rc)
			cr_expect_eq(lvl, t[i].lvl, "%s", t[i].s);
		else
			cr_expect_eq(lvl, (enum wr_log_level)99,
				     "%s: out untouched", t[i].s);
	}
}

Test(common, log_line_format, .init = cr_redirect_stderr)
{
	char line[256];
	FILE *f;
	int n = 0;

	wr_log_set_level(WR_LOG_WARN);
	cr_expect_eq(wr_log_get_level(), WR_LOG_WARN);
	wr_info("hidden %d", 1);
	wr_warn("shown %d\n", 2); /* the trailing newline is not doubled */
	wr_error("also %s", "shown");
	fflush(stderr);

	f = cr_get_redirected_stderr();
	while (fgets(line, sizeof(line), f)) {
		int Y, M, D, h, m, s, ms;
		char lvl[8], msg[64];

		n++;
		cr_assert_eq(sscanf(line,
				    "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %7s %63[^\n]",
				    &Y, &M, &D, &h, &m, &s, &ms, lvl, msg),
			     9, "line %d: %s", n, line);
		cr_expect_eq(line[strlen(line) - 1], '\n');
		cr_expect_eq(line[23], 'Z', "line %d: %s", n, line);
		if (n == 1) {
			cr_expect_str_eq(lvl, "warn");
			cr_expect_str_eq(msg, "shown 2");
			cr_expect(!strncmp(line + 24, " warn  shown 2\n", 15),
				  "%s", line);
		} else {
			cr_expect_str_eq(lvl, "error");
			cr_expect_str_eq(msg, "also shown");
		}
	}
	cr_expect_eq(n, 2, "info filtered out, one line each");
	wr_log_set_level(WR_LOG_INFO);
}

Test(common, log_format_parse)
{
	enum wr_log_format f = (enum wr_log_format)99;

	cr_expect_eq(wr_log_format_parse("text", &f), 0);
	cr_expect_eq(f, WR_LOG_TEXT);
	cr_expect_eq(wr_log_format_parse("json", &f), 0);
	cr_expect_eq(f, WR_LOG_JSON);
	f = (enum wr_log_format)99;
	cr_expect_eq(wr_log_format_parse("JSON", &f), -1);
	cr_expect_eq(wr_log_format_parse("", &f), -1);
	cr_expect_eq(wr_log_format_parse("logfmt", &f), -1);
	cr_expect_eq(f, (enum wr_log_format)99, "out untouched");
}

#define TIME "2026-12-04T21:56:39.676Z"
#define HEAD \
	"{\"time\":\"" TIME "\",\"level\":\"info\",\"node\":\"n1\",\"msg\":\""

Test(common, log_json_line)
{
	static const struct {
		const char *what;
		const char *msg;
		size_t n;
		const char *want; /* between "msg":" and "}\n */
	} t[] = {
		{ "plain", LIT("client 127.0.0.1:5 subscribed to 'a'"),
		  "client 127.0.0.1:5 subscribed to 'a'" },
		{ "empty", LIT(""), "" },
		{ "quotes", LIT("say \"hi\""), "say \\\"hi\\\"" },
		{ "backslashes", LIT("a\\b\\\\"), "a\\\\b\\\\\\\\" },
		{ "newline, tab, cr", LIT("a\nb\tc\rd"), "a\\nb\\tc\\rd" },
		{ "other controls", LIT("\x01\x1f\x7f|\x1b[0m"),
		  "\\u0001\\u001f\\u007f|\\u001b[0m" },
		{ "NUL", LIT("a\0b"), "a\\u0000b" },
		{ "UTF-8 passes through",
		  LIT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "slash and </script> untouched", LIT("a/b</x>"), "a/b</x>" },
		{ "stray continuation byte", LIT("a\x80z"), "a\\ufffdz" },
		{ "overlong", LIT("\xc0\xaf"), "\\ufffd\\ufffd" },
		{ "surrogate", LIT("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd" },
		{ "past U+10FFFF", LIT("\xf4\x90\x80\x80"),
		  "\\ufffd\\ufffd\\ufffd\\ufffd" },
		{ "cut sequence at the end", LIT("ok\xe2\x82"),
		  "ok\\ufffd\\ufffd" },
	};
	char line[512], want[512];

	for (size_t i = 0; i < N(t); i++) {
		size_t n = wr_log_json_line(line, sizeof(line), TIME,
					    WR_LOG_INFO, "n1", t[i].msg,
					    t[i].n);

		snprintf(want, sizeof(want), HEAD "%s\"}\n", t[i].want);
		cr_expect_eq(n, strlen(want), "%s: length %zu", t[i].what, n);
		line[n < sizeof(line) ? n : sizeof(line) - 1] = '\0';
		cr_expect_str_eq(line, want, "%s", t[i].what);
	}
}

Test(common, log_json_line_fields_and_cuts)
{
	char line[256], big[600];
	size_t n;

	/* no node yet: the field is left out; each level by name */
	n = wr_log_json_line(line, sizeof(line), TIME, WR_LOG_ERROR, "",
			     LIT("x"));
	line[n] = '\0';
	cr_expect_str_eq(line, "{\"time\":\"" TIME
			       "\",\"level\":\"error\",\"msg\":\"x\"}\n");
	n = wr_log_json_line(line, sizeof(line), TIME, WR_LOG_DEBUG, NULL,
			     LIT("x"));
	line[n] = '\0';
	cr_expect(strstr(line, "\"level\":\"debug\""), "%s", line);
	n = wr_log_json_line(line, sizeof(line), TIME, WR_LOG_WARN, "a\"b",
			     LIT("x"));
	line[n] = '\0';
	cr_expect(strstr(line, "\"node\":\"a\\\"b\""), "%s", line);

	/* a message too long is cut at an escape boundary, never mid-way:
	 * the line still ends "}\n and stays inside the buffer */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = i % 3 ? '"' : "\xc3\xa9"[i % 2];
	for (size_t cap = 80; cap <= sizeof(line); cap++) {
		n = wr_log_json_line(line, cap, TIME, WR_LOG_INFO, "n1", big,
				     sizeof(big));
		cr_assert_leq(n, cap);
		cr_expect(!memcmp(line + n - 3, "\"}\n", 3), "cap %zu", cap);
		/* the byte before the closing quote is no lone backslash */
		size_t bs = 0;
		for (size_t j = n - 4; line[j] == '\\'; j--)
			bs++;
		cr_expect_eq(bs % 2, 0, "cap %zu: dangling escape", cap);
	}
}

Test(common, log_json_output, .init = cr_redirect_stderr)
{
	char line[512];
	FILE *f;
	int n = 0;

	wr_log_set_node("node-a");
	wr_log_set_format(WR_LOG_JSON);
	wr_info("hello \"%s\"\n", "world"); /* trailing newline stripped */
	wr_debug("hidden");
	wr_log_force(WR_LOG_DEBUG, "forced");
	wr_log_set_format(WR_LOG_TEXT);
	wr_log_set_node(NULL);
	fflush(stderr);

	f = cr_get_redirected_stderr();
	while (fgets(line, sizeof(line), f)) {
		int Y, M, D, h, m, s, ms, tail = 0;

		n++;
		cr_assert_eq(sscanf(line,
				    "{\"time\":\"%4d-%2d-%2dT%2d:%2d:%2d.%3dZ\",%n",
				    &Y, &M, &D, &h, &m, &s, &ms, &tail),
			     7, "line %d: %s", n, line);
		cr_assert_eq(tail, 35, "line %d: %s", n, line);
		if (n == 1)
			cr_expect_str_eq(line + tail,
					 "\"level\":\"info\",\"node\":\"node-a\","
					 "\"msg\":\"hello \\\"world\\\"\"}\n");
		else
			cr_expect_str_eq(line + tail,
					 "\"level\":\"debug\",\"node\":\"node-a\","
					 "\"msg\":\"forced\"}\n");
	}
	cr_expect_eq(n, 2);
}

Test(common, log_json_line_with_fields)
{
	char line[512], big[400];
	struct wr_log_field f[] = {
		WR_LF_STR("addr", "10.0.0.7"),   WR_LF_NUM("code", 1008),
		WR_LF_STR("Bad-Key", "dropped"), /* not an identifier */
		WR_LF_STR("channel", "a\"b"),    WR_LF_NUM("neg", -5),
	};
	size_t n;

	n = wr_log_json_line_f(line, sizeof(line), TIME, WR_LOG_INFO, "n1",
			       LIT("closing"), f, 5);
	line[n] = '\0';
	cr_expect_str_eq(line, "{\"time\":\"" TIME
			       "\",\"level\":\"info\","
			       "\"node\":\"n1\",\"addr\":\"10.0.0.7\","
			       "\"code\":1008,\"channel\":\"a\\\"b\","
			       "\"neg\":-5,\"msg\":\"closing\"}\n");

	/* a value is cut at WR_LOG_FIELD_MAX bytes; a field that does not
	 * fit whole is left out, the message stays */
	memset(big, 'v', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	f[0] = WR_LF_STR("addr", big);
	n = wr_log_json_line_f(line, sizeof(line), TIME, WR_LOG_INFO, "n1",
			       LIT("m"), f, 1);
	line[n] = '\0';
	cr_expect(strstr(line, "\"addr\":\""), "%s", line);
	cr_expect_eq(strspn(strstr(line, "\"addr\":\"") + 8, "v"),
		     WR_LOG_FIELD_MAX, "%s", line);
	n = wr_log_json_line_f(line, 200, TIME, WR_LOG_INFO, "n1", LIT("m"), f,
			       1);
	line[n] = '\0';
	cr_expect_null(strstr(line, "addr"), "%s", line);
	cr_expect(strstr(line, "\"msg\":\"m\"}\n"), "%s", line);
}

Test(common, log_text_fields, .init = cr_redirect_stderr)
{
	char line[512];
	struct wr_log_field f[] = {
		WR_LF_STR("addr", "127.0.0.1"),
		WR_LF_NUM("code", 1012),
		WR_LF_STR("channel", "two words"),
		WR_LF_STR("empty", ""),
	};
	FILE *fp;

	wr_log_set_format(WR_LOG_TEXT);
	wr_log_fields(WR_LOG_WARN, f, 4, "drain %d", 7);
	fflush(stderr);
	fp = cr_get_redirected_stderr();
	cr_assert(fgets(line, sizeof(line), fp));
	cr_expect(strstr(line,
			 " warn  drain 7 addr=127.0.0.1 code=1012 "
			 "channel=\"two words\" empty=\"\"\n"),
		  "%s", line);
}

Test(common, clocks)
{
	int64_t ms = wr_now_ms(), us = wr_now_us(), wall = wr_wall_ms();
	int64_t prev = ms;

	cr_expect_gt(ms, 0);
	cr_expect_geq(us / 1000, ms);
	cr_expect_lt(us / 1000 - ms, 1000, "same clock");
	cr_expect_gt(wall, INT64_C(1577836800000), "after 2020-01-01");
	for (int i = 0; i < 10000; i++) {
		int64_t now = wr_now_ms();

		cr_assert_geq(now, prev, "monotonic");
		prev = now;
	}
}

/* ---- per-address counters and the send bucket (common/addr.c) ---- */

#include <arpa/inet.h>
#include <netinet/in.h>

static struct wr_addr addr_of(const char *text)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct wr_addr out;

	if (inet_pton(AF_INET, text, &a4.sin_addr) == 1)
		cr_assert_eq(wr_addr_from_sockaddr(&a4, sizeof(a4), &out),
			     WR_OK);
	else {
		cr_assert_eq(inet_pton(AF_INET6, text, &a6.sin6_addr), 1, "%s",
			     text);
		cr_assert_eq(wr_addr_from_sockaddr(&a6, sizeof(a6), &out),
			     WR_OK);
	}
	return out;
}

static bool same_addr(const char *a, const char *b)
{
	struct wr_addr x = addr_of(a), y = addr_of(b);

	return !memcmp(&x, &y, sizeof(x));
}

Test(common, addr_keys)
{
	struct sockaddr_un_like {
		unsigned short family;
	} other = { 1 /* AF_UNIX */ };
	struct wr_addr out;

	cr_expect(same_addr("10.0.0.1", "::ffff:10.0.0.1"));
	cr_expect_not(same_addr("10.0.0.1", "10.0.0.2"));
	/* IPv6: one /64 is one subscriber line */
	cr_expect(same_addr("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"));
	cr_expect_not(same_addr("2001:db8:1:2::1", "2001:db8:1:3::1"));
	cr_expect_not(same_addr("::1", "10.0.0.1"));
	cr_expect_eq(wr_addr_from_sockaddr(&other, sizeof(other), &out),
		     WR_EINVAL);
	cr_expect_eq(wr_addr_from_sockaddr(&other, 1, &out), WR_EINVAL);
}

Test(common, addrtab_counts)
{
	struct wr_addrtab *t = wr_addrtab_create();
	struct wr_addr a = addr_of("192.0.2.1"), b = addr_of("2001:db8::1");

	cr_assert_not_null(t);
	cr_expect_eq(wr_addrtab_count(t, &a), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(wr_addrtab_inc(t, &a), WR_OK);
	cr_assert_eq(wr_addrtab_inc(t, &b), WR_OK);
	cr_expect_eq(wr_addrtab_count(t, &a), 3);
	cr_expect_eq(wr_addrtab_count(t, &b), 1);
	cr_expect_eq(wr_addrtab_size(t), 2);
	wr_addrtab_dec(t, &b);
	wr_addrtab_dec(t, &b); /* below zero: nothing */
	cr_expect_eq(wr_addrtab_count(t, &b), 0);
	cr_expect_eq(wr_addrtab_size(t), 1, "a zero count is not kept");
	/* many addresses: the table grows, every count stays right */
	for (unsigned i = 0; i < 5000; i++) {
		struct wr_addr x = a;

		x.b[12] = (unsigned char)(i >> 8);
		x.b[13] = (unsigned char)i;
		cr_assert_eq(wr_addrtab_inc(t, &x), WR_OK);
	}
	cr_expect_eq(wr_addrtab_count(t, &a), 3);
	for (unsigned i = 0; i < 5000; i++) {
		struct wr_addr x = a;

		x.b[12] = (unsigned char)(i >> 8);
		x.b[13] = (unsigned char)i;
		/* 192.0.x.y never hits a's 192.0.2.1 below i = 5000? it does
		 * not: a's bytes 12-13 are 192, 0 (i = 49152) */
		cr_assert_eq(wr_addrtab_count(t, &x), 1u, "address %u", i);
		wr_addrtab_dec(t, &x);
	}
	cr_expect_eq(wr_addrtab_size(t), 1);
	wr_addrtab_destroy(t);
	wr_addrtab_destroy(NULL);
}

Test(common, bucket)
{
	struct wr_bucket b;

	wr_bucket_init(&b, 3, 1000);
	for (int i = 0; i < 3; i++)
		cr_expect(wr_bucket_take(&b, 2, 3, 1000), "token %d", i);
	cr_expect_not(wr_bucket_take(&b, 2, 3, 1000));
	cr_expect_not(wr_bucket_take(&b, 2, 3, 1499), "half a token");
	cr_expect(wr_bucket_take(&b, 2, 3, 1500), "2 a second");
	cr_expect_not(wr_bucket_take(&b, 2, 3, 1500));
	/* a long pause fills it to the burst, no more */
	for (int i = 0; i < 3; i++)
		cr_expect(wr_bucket_take(&b, 2, 3, 100000), "token %d", i);
	cr_expect_not(wr_bucket_take(&b, 2, 3, 100000));
	/* a clock that goes back takes nothing and gives nothing */
	cr_expect_not(wr_bucket_take(&b, 2, 3, 5));
	/* a smaller burst (a reload) caps what is there */
	wr_bucket_init(&b, 100, 0);
	cr_expect(wr_bucket_take(&b, 1, 2, 0));
	cr_expect(wr_bucket_take(&b, 1, 2, 0));
	cr_expect_not(wr_bucket_take(&b, 1, 2, 0));
}

Test(common, addrfail_window_and_ban)
{
	struct wr_addrfail *t = wr_addrfail_create(3, 1000, 5000);
	struct wr_addrfail *w = wr_addrfail_create(2, 1000, 0);
	struct wr_addr a = addr_of("192.0.2.7"), b = addr_of("192.0.2.8");

	cr_assert(t && w);
	for (int i = 0; i < 2; i++)
		wr_addrfail_note(t, &a, 100);
	cr_expect_not(wr_addrfail_blocked(t, &a, 100));
	wr_addrfail_note(t, &a, 200);
	cr_expect(wr_addrfail_blocked(t, &a, 200), "max reached");
	cr_expect_not(wr_addrfail_blocked(t, &b, 200), "per address");
	cr_expect(wr_addrfail_blocked(t, &a, 5199), "held off 5 s");
	cr_expect_not(wr_addrfail_blocked(t, &a, 5200));
	cr_expect_eq(wr_addrfail_size(t), 0, "nothing pending: forgotten");
	/* no ban: only to the window's end; an old window starts over */
	wr_addrfail_note(w, &a, 0);
	wr_addrfail_note(w, &a, 10);
	cr_expect(wr_addrfail_blocked(w, &a, 999));
	cr_expect_not(wr_addrfail_blocked(w, &a, 1000));
	wr_addrfail_note(w, &a, 1500);
	cr_expect_not(wr_addrfail_blocked(w, &a, 1500));
	wr_addrfail_destroy(t);
	wr_addrfail_destroy(w);
	wr_addrfail_destroy(NULL);
}

/* The same line a thousand times in a second: five written, then one note
 * of how many were held back, before the next other line. */
Test(common, log_repeats_held_back, .init = cr_redirect_stderr)
{
	char line[512];
	FILE *fp;
	int n = 0, same = 0, notes = 0, other = 0;

	wr_log_set_format(WR_LOG_TEXT);
	wr_log_set_level(WR_LOG_INFO);
	for (int i = 0; i < 1000; i++)
		wr_warn("accept: errno %d", 24);
	wr_info("something else");
	fflush(stderr);
	fp = cr_get_redirected_stderr();
	while (fgets(line, sizeof(line), fp)) {
		n++;
		if (strstr(line, "accept: errno 24"))
			same++;
		else if (strstr(line, "(the previous message was repeated"))
			notes++;
		else if (strstr(line, "something else"))
			other++;
	}
	/* a second boundary may fall inside the loop: then up to 10 */
	cr_expect(same >= 5 && same <= 10, "%d lines written", same);
	cr_expect(notes >= 1 && notes <= 2, "%d notes", notes);
	cr_expect_eq(other, 1);
	cr_expect_eq(n, same + notes + other);
}
