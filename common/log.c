/*
 * common: the logger. One line per event on stderr: UTC timestamp with
 * milliseconds, level, message — as text, or as one JSON object a line
 * ({"time","level","node","msg"}) for log shippers. Callers never pass
 * secrets (passwords, tokens); the logger cannot tell, so that is the
 * callers' invariant.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "wr.h"

static enum wr_log_level cur_level = WR_LOG_INFO;
static enum wr_log_format cur_format = WR_LOG_TEXT;
static char node_name[128];
static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char *const format_names[] = { "text", "json" };

void wr_log_set_format(enum wr_log_format fmt)
{
	cur_format = fmt;
}

int wr_log_format_parse(const char *name, enum wr_log_format *out)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(name, format_names[i])) {
			*out = (enum wr_log_format)i;
			return 0;
		}
	return -1;
}

/* Set once at start, before any other thread logs. */
void wr_log_set_node(const char *name)
{
	snprintf(node_name, sizeof(node_name), "%s", name ? name : "");
}

/* Length of the well-formed UTF-8 sequence at u (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0. u[0] >= 0x80. */
static size_t utf8_seq(const unsigned char *u, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t k, i;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		k = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		k = 3;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		k = 4;
	else
		return 0;
	if (u[0] == 0xe0)
		lo = 0xa0;
	else if (u[0] == 0xed)
		hi = 0x9f;
	else if (u[0] == 0xf0)
		lo = 0x90;
	else if (u[0] == 0xf4)
		hi = 0x8f;
	if (n < k || u[1] < lo || u[1] > hi)
		return 0;
	for (i = 2; i < k; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return 0;
	return k;
}

/* Appends s[0..n) escaped as the inside of a JSON string at out + *len,
 * never past out + lim: it stops before the first piece that would not
 * fit, so a cut line still parses. */
static void json_esc(char *out, size_t *len, size_t lim, const char *s,
		     size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t o = *len, i = 0, k, el;
	const char *src;
	char e[6];

	while (i < n) {
		unsigned char c = u[i];

		k = 1;
		el = 1;
		src = s + i;
		if (c >= 0x80) {
			k = utf8_seq(u + i, n - i);
			el = k;
			if (!k) {
				src = "\\ufffd";
				k = 1;
				el = 6;
			}
		} else if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			src = e;
			el = 2;
		} else if (c < 0x20 || c == 0x7f) {
			e[0] = '\\';
			src = e;
			el = 2;
			if (c == '\n')
				e[1] = 'n';
			else if (c == '\r')
				e[1] = 'r';
			else if (c == '\t')
				e[1] = 't';
			else {
				memcpy(e + 1, "u00", 3);
				e[4] = hex[c >> 4];
				e[5] = hex[c & 15];
				el = 6;
			}
		}
		if (o + el > lim)
			break;
		memcpy(out + o, src, el);
		o += el;
		i += k;
	}
	*len = o;
}

static void put(char *out, size_t *len, size_t lim, const char *s)
{
	size_t n = strlen(s);

	if (*len + n > lim)
		n = lim - *len;
	memcpy(out + *len, s, n);
	*len += n;
}

/* A field's key is an identifier from our code: checked, not escaped. */
static bool key_ok(const char *k)
{
	if (!k || !*k)
		return false;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
		      *k == '_'))
			return false;
	return true;
}

size_t wr_log_json_line(char *out, size_t cap, const char *time,
			enum wr_log_level lvl, const char *node,
			const char *msg, size_t n)
{
	return wr_log_json_line_f(out, cap, time, lvl, node, msg, n, NULL, 0);
}

size_t wr_log_json_line_f(char *out, size_t cap, const char *time,
			  enum wr_log_level lvl, const char *node,
			  const char *msg, size_t n,
			  const struct wr_log_field *f, size_t nf)
{
	size_t len = 0, lim = cap - 3; /* room for the closing "}\n */
	char num[24];

	put(out, &len, lim, "{\"time\":\"");
	json_esc(out, &len, lim, time, strlen(time));
	put(out, &len, lim, "\",\"level\":\"");
	put(out, &len, lim, level_names[lvl]);
	put(out, &len, lim, "\"");
	if (node && *node) {
		put(out, &len, lim, ",\"node\":\"");
		json_esc(out, &len, lim, node, strlen(node));
		put(out, &len, lim, "\"");
	}
	/* the fields before the message: a long message is what gets cut */
	for (size_t i = 0; i < nf; i++) {
		size_t at = len;

		if (!key_ok(f[i].key))
			continue;
		put(out, &len, lim, ",\"");
		put(out, &len, lim, f[i].key);
		put(out, &len, lim, "\":");
		if (f[i].str) {
			put(out, &len, lim, "\"");
			json_esc(out, &len, lim, f[i].str,
				 strnlen(f[i].str, WR_LOG_FIELD_MAX));
			put(out, &len, lim, "\"");
		} else {
			snprintf(num, sizeof(num), "%lld", f[i].num);
			put(out, &len, lim, num);
		}
		/* a field that does not fit whole, with room for "msg", goes */
		if (len + 16 > lim)
			len = at;
	}
	put(out, &len, lim, ",\"msg\":\"");
	json_esc(out, &len, lim, msg, n);
	memcpy(out + len, "\"}\n", 3);
	return len + 3;
}

void wr_log_set_level(enum wr_log_level lvl)
{
	cur_level = lvl;
}
enum wr_log_level wr_log_get_level(void)
{
	return cur_level;
}

int wr_log_level_parse(const char *name, enum wr_log_level *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, level_names[i])) {
			*out = (enum wr_log_level)i;
			return 0;
		}
	return -1;
}

static void vlog(enum wr_log_level lvl, bool force,
		 const struct wr_log_field *f, size_t nf, const char *fmt,
		 va_list ap);

void wr_vlog(enum wr_log_level lvl, const char *fmt, va_list ap)
{
	vlog(lvl, false, NULL, 0, fmt, ap);
}

void wr_log_force(enum wr_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, true, NULL, 0, fmt, ap);
	va_end(ap);
}

void wr_log_fields(enum wr_log_level lvl, const struct wr_log_field *f,
		   size_t nf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, false, f, nf, fmt, ap);
	va_end(ap);
}

/* A value printable bare in a text line: printable ASCII, no quote,
 * backslash or '=', not empty. */
static bool plain(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] >= 0x7f || v[i] == '"' ||
		    v[i] == '\\' || v[i] == '=')
			return false;
	return n > 0;
}

/* Text lines: " key=value" after the message, a value with a space or a
 * quote in double quotes (JSON-escaped), cut at the line's end. */
static size_t text_fields(char *line, size_t n, size_t lim,
			  const struct wr_log_field *f, size_t nf)
{
	for (size_t i = 0; i < nf && n < lim; i++) {
		const char *v = f[i].str;
		size_t vn, at = n;
		int k;

		if (!key_ok(f[i].key))
			continue;
		if (!v) {
			k = snprintf(line + n, lim - n, " %s=%lld", f[i].key,
				     f[i].num);
			n = k > 0 && (size_t)k < lim - n ? n + (size_t)k : at;
			continue;
		}
		vn = strnlen(v, WR_LOG_FIELD_MAX);
		k = snprintf(line + n, lim - n, " %s=", f[i].key);
		if (k <= 0 || (size_t)k >= lim - n)
			return at;
		n += (size_t)k;
		if (plain(v, vn)) {
			if (vn > lim - n)
				return at;
			memcpy(line + n, v, vn);
			n += vn;
			continue;
		}
		put(line, &n, lim, "\"");
		json_esc(line, &n, lim, v, vn);
		put(line, &n, lim, "\"");
	}
	return n;
}

/* One line of @msg (@n bytes, no trailing newline), text or json. Stack
 * buffers only: no allocation per line; one write per line keeps lines
 * whole when several threads log. */
static void emit(enum wr_log_level lvl, const struct timeval *tv,
		 const struct wr_log_field *f, size_t nf, const char *msg,
		 size_t n)
{
	char line[4096];
	struct tm tm;
	size_t len;

	gmtime_r(&tv->tv_sec, &tm);
	len = strftime(line, 64, "%Y-%m-%dT%H:%M:%S", &tm);
	if (cur_format == WR_LOG_JSON) {
		char ts[64];

		memcpy(ts, line, len);
		snprintf(ts + len, sizeof(ts) - len, ".%03dZ",
			 (int)(tv->tv_usec / 1000));
		len = wr_log_json_line_f(line, sizeof(line), ts, lvl, node_name,
					 msg, n, f, nf);
		fwrite(line, 1, len, stderr);
		return;
	}
	len += (size_t)snprintf(line + len, sizeof(line) - len, ".%03dZ %-5s ",
				(int)(tv->tv_usec / 1000), level_names[lvl]);
	if (n > 1023)
		n = 1023; /* the text line's old bound */
	memcpy(line + len, msg, n);
	len = text_fields(line, len + n, sizeof(line) - 1, f, nf);
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

/*
 * Repeated lines are held back (issue 10: a node at its descriptor limit
 * wrote the same accept error 23 MB a second): the same message at most
 * WR_LOG_REPEAT_MAX times a second; the next other line (or the first of
 * the next second) says how many were dropped.
 */
#define WR_LOG_REPEAT_MAX 5
static pthread_mutex_t repeat_lock = PTHREAD_MUTEX_INITIALIZER;
static char repeat_msg[256];
static size_t repeat_len;
static time_t repeat_sec;
static unsigned repeat_count, repeat_dropped;

/* True when @msg is to be written; *dropped: lines held back before it */
static bool repeat_gate(const char *msg, size_t n, time_t sec,
			unsigned *dropped)
{
	size_t cmp = n < sizeof(repeat_msg) ? n : sizeof(repeat_msg);
	bool same, out = true;

	*dropped = 0;
	pthread_mutex_lock(&repeat_lock);
	same = n == repeat_len && !memcmp(msg, repeat_msg, cmp);
	if (same && sec == repeat_sec) {
		if (++repeat_count > WR_LOG_REPEAT_MAX) {
			repeat_dropped++;
			out = false;
		}
	} else {
		*dropped = repeat_dropped;
		memcpy(repeat_msg, msg, cmp);
		repeat_len = n;
		repeat_sec = sec;
		repeat_count = 1;
		repeat_dropped = 0;
	}
	pthread_mutex_unlock(&repeat_lock);
	return out;
}

static void vlog(enum wr_log_level lvl, bool force,
		 const struct wr_log_field *f, size_t nf, const char *fmt,
		 va_list ap)
{
	char msg[1024], note[96];
	struct timeval tv;
	unsigned dropped;
	size_t n = 0;
	int k;

	if (lvl < cur_level && !force)
		return;
	gettimeofday(&tv, NULL);
	k = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (k > 0)
		n = (size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg) - 1;
	/* strip trailing newlines (lws's messages carry one) */
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		n--;
	if (!repeat_gate(msg, n, tv.tv_sec, &dropped))
		return;
	if (dropped) {
		k = snprintf(note, sizeof(note),
			     "(the previous message was repeated %u more "
			     "times)",
			     dropped);
		emit(lvl, &tv, NULL, 0, note, (size_t)k);
	}
	emit(lvl, &tv, f, nf, msg, n);
}

void wr_log(enum wr_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wr_vlog(lvl, fmt, ap);
	va_end(ap);
}
