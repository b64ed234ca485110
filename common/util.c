/*
 * common: time, refcounted messages, the growable buffer, UTF-8, hex and
 * WebSocket frame headers. All plain C, no allocation hidden behind a
 * global: the hot path (frame building) costs one allocation per message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wr.h"

int64_t wr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wr_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t wr_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct wr_msg *wr_msg_create(size_t len)
{
	struct wr_msg *m = malloc(sizeof(*m) + len);

	if (!m)
		return NULL;
	m->refs = 1;
	m->len = len;
	return m;
}

void wr_msg_unref(struct wr_msg **pmsg)
{
	struct wr_msg *m = *pmsg;

	if (!m)
		return;
	*pmsg = NULL;
	if (--m->refs == 0)
		free(m);
}

void wr_buf_init(struct wr_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void wr_buf_fini(struct wr_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void wr_buf_reset(struct wr_buf *b)
{
	b->len = 0;
	b->oom = false;
}

int wr_buf_reserve(struct wr_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->oom)
		return WR_ENOMEM;
	need = b->len + extra + 1; /* room for a NUL */
	if (need <= b->cap)
		return WR_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return WR_ENOMEM;
	}
	b->p = p;
	b->cap = cap;
	return WR_OK;
}

void wr_buf_append(struct wr_buf *b, const void *p, size_t n)
{
	if (wr_buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void wr_buf_puts(struct wr_buf *b, const char *s)
{
	wr_buf_append(b, s, strlen(s));
}

void wr_buf_printf(struct wr_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || wr_buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static uint64_t json_special(uint64_t w)
{
	return wr_swar_below(w, 0x20) | wr_swar_eq(w, '"') |
	       wr_swar_eq(w, '\\') | wr_swar_eq(w, 0x7f);
}

size_t wr_json_plain_run(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	uint64_t w;

	/* 8 bytes a step: channel payloads are mostly plain text or base64 */
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, u + i, 8);
		if (json_special(w))
			break;
	}
	/* the last partial step: the 8 bytes that end the string, again */
	if (i < n && i + 8 > n && n >= 8) {
		memcpy(&w, u + n - 8, 8);
		if (!json_special(w))
			return n;
	}
	for (; i < n; i++)
		if (u[i] < 0x20 || u[i] == '"' || u[i] == '\\' || u[i] == 0x7f)
			break;
	return i;
}

void wr_buf_json_str(struct wr_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i, run = 0, k;
	char *o;

	/* worst case every byte becomes \u00XX */
	if (wr_buf_reserve(b, n * 6 + 2))
		return;
	o = b->p + b->len;
	*o++ = '"';
	for (i = 0; i < n; i++) {
		unsigned char c;

		k = wr_json_plain_run(s + i, n - i);
		run += k;
		i += k;
		if (i == n)
			break;
		c = u[i];
		memcpy(o, s + i - run, run);
		o += run;
		run = 0;
		*o++ = '\\';
		switch (c) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '\n':
			*o++ = 'n';
			break;
		case '\r':
			*o++ = 'r';
			break;
		case '\t':
			*o++ = 't';
			break;
		case '\b':
			*o++ = 'b';
			break;
		case '\f':
			*o++ = 'f';
			break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	memcpy(o, s + i - run, run);
	o += run;
	*o++ = '"';
	b->len = (size_t)(o - b->p);
	b->p[b->len] = '\0';
}

bool wr_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p, *e = s + n;

	while (s < e) {
		unsigned char c = *s;
		uint32_t cp;
		int k;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (e - s <= k)
			return false;
		for (int i = 1; i <= k; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += k + 1;
	}
	return true;
}

void wr_hex(char *out, const void *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[u[i] >> 4];
		out[2 * i + 1] = hex[u[i] & 15];
	}
	out[2 * n] = '\0';
}

int wr_unhex(void *out, const char *s, size_t n)
{
	unsigned char *u = out;

	if (!s || strlen(s) != 2 * n)
		return WR_EINVAL;
	for (size_t i = 0; i < 2 * n; i++) {
		int c = s[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return WR_EINVAL;
		if (i & 1)
			u[i / 2] = (unsigned char)(u[i / 2] << 4 | v);
		else
			u[i / 2] = (unsigned char)v;
	}
	return WR_OK;
}

bool wr_channel_name_valid(const char *name, size_t len)
{
	if (len < 1 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return wr_utf8_valid(name, len);
}

bool wr_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

size_t wr_ws_header_len(size_t payload_len)
{
	if (payload_len < 126)
		return 2;
	if (payload_len <= 0xffff)
		return 4;
	return 10;
}

size_t wr_ws_text_header(unsigned char *d, size_t n)
{
	size_t h = wr_ws_header_len(n);

	d[0] = 0x81; /* FIN | text */
	if (h == 2) {
		d[1] = (unsigned char)n;
	} else if (h == 4) {
		d[1] = 126;
		d[2] = (unsigned char)(n >> 8);
		d[3] = (unsigned char)n;
	} else {
		d[1] = 127;
		for (int i = 0; i < 8; i++)
			d[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	}
	return h;
}

struct wr_msg *wr_ws_text_frame(const void *p, size_t n)
{
	size_t h = wr_ws_header_len(n);
	struct wr_msg *m = wr_msg_create(h + n);

	if (!m)
		return NULL;
	wr_ws_text_header(m->data, n);
	memcpy(m->data + h, p, n);
	return m;
}
