/*
 * inm/packet: the INM packet codec (PROTOCOL.md 3.2, 3.5), node names,
 * nonces and the base64 of channel payloads. Decoding checks every field
 * a node acts on, so code past inm_packet_decode never re-validates; the
 * data object is detached from the parse tree and owned by the packet.
 * Packets in the encoder's own shape skip the cJSON tree (decode_fast),
 * with the generic decoder's verdicts and fields (tests and fuzzer hold
 * them to it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "inm.h"

static const char *const type_names[INM_TYPE_COUNT] = {
	[INM_MESSAGE] = "message",
	[INM_COMMAND] = "command",
	[INM_RESPONSE] = "response",
	[INM_EVENT] = "event",
};

static const char *const drop_names[INM_DROP_COUNT] = {
	[INM_DROP_NONE] = "none",     [INM_DROP_JSON] = "json",
	[INM_DROP_SOURCE] = "source", [INM_DROP_DESTINATION] = "destination",
	[INM_DROP_TYPE] = "type",     [INM_DROP_NONCE] = "nonce",
	[INM_DROP_TTL] = "ttl",       [INM_DROP_DATA] = "data",
	[INM_DROP_NOMEM] = "nomem",
};

const char *inm_type_name(enum inm_type t)
{
	if ((unsigned)t >= INM_TYPE_COUNT)
		return "?";
	return type_names[t];
}

const char *inm_drop_name(enum inm_drop d)
{
	if ((unsigned)d >= INM_DROP_COUNT)
		return "?";
	return drop_names[d];
}

bool inm_node_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > INM_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

static bool nonce_valid(const char *s, size_t len)
{
	if (len != INM_NONCE_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * The bytes come from a per-thread pool of CSPRNG output refilled 512
 * bytes at a time: randombytes_buf is one getrandom syscall per call, and
 * a publishing node makes a nonce for every channel message. Thread-local
 * so no two threads ever hand out the same bytes; the process never forks.
 */
#define NONCE_POOL 512

void inm_nonce_new(char out[INM_NONCE_LEN + 1])
{
	static _Thread_local unsigned char pool[NONCE_POOL];
	static _Thread_local size_t left;
	const size_t n = INM_NONCE_LEN / 2;

	if (left < n) {
		/* idempotent; randombytes_buf works without it but may then
		 * open /dev/urandom lazily on each process's first call */
		if (sodium_init() < 0)
			abort();
		randombytes_buf(pool, sizeof(pool));
		left = sizeof(pool);
	}
	wr_hex(out, pool + sizeof(pool) - left, n);
	left -= n;
}

void inm_packet_init(struct inm_packet *pkt)
{
	memset(pkt, 0, sizeof(*pkt));
	pkt->type = INM_MESSAGE;
	pkt->ttl = INM_TTL_DEFAULT;
}

void inm_packet_fini(struct inm_packet *pkt)
{
	cJSON_Delete(pkt->data);
	pkt->data = NULL;
}

/*
 * cJSON stores strings NUL-terminated, so "\u0000" would silently cut a
 * name or payload short ("node-1\u0000x" read as "node-1"). Refuse the
 * escape, and raw NUL bytes, outright. Every backslash escapes exactly the
 * next character, so skipping pairs cannot misread "\\u0000" (a literal
 * backslash followed by text) as the escape.
 */
static bool has_nul(const char *buf, size_t len)
{
	if (memchr(buf, '\0', len))
		return true;
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\\')
			continue;
		if (buf[i + 1] == 'u' && i + 5 < len &&
		    !memcmp(buf + i + 2, "0000", 4))
			return true;
		i++;
	}
	return false;
}

/*
 * Looks up each of @names[0..n) in @obj into @out, refusing a key present
 * twice: cJSON keeps duplicates and returns the first, while another
 * implementation may take the last, and the two must not disagree on
 * what a packet says. Other keys are ignored without a quadratic scan.
 */
static bool get_fields(const cJSON *obj, const char *const *names, size_t n,
		       cJSON **out)
{
	const cJSON *it;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	cJSON_ArrayForEach(it, obj) {
		if (!it->string)
			return false;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(it->string, names[i]))
				continue;
			if (out[i])
				return false;
			out[i] = (cJSON *)it;
			break;
		}
	}
	return true;
}

/* A string field: present, a string, length in [min, max]. */
static bool str_ok(const cJSON *v, size_t min, size_t max)
{
	size_t n;

	if (!cJSON_IsString(v) || !v->valuestring)
		return false;
	n = strlen(v->valuestring);
	return n >= min && n <= max;
}

static bool data_ok(enum inm_type type, const cJSON *data)
{
	static const char *const msg_keys[] = { "channel", "message",
						"client_nonce" };
	static const char *const one_key[INM_TYPE_COUNT] = {
		[INM_COMMAND] = "command",
		[INM_RESPONSE] = "ok",
		[INM_EVENT] = "event",
	};
	cJSON *f[3];

	if (type == INM_MESSAGE) {
		if (!get_fields(data, msg_keys, 3, f))
			return false;
		if (!str_ok(f[0], 1, INM_CHANNEL_MAX) ||
		    !str_ok(f[1], 0, SIZE_MAX))
			return false;
		if (!inm_base64_valid(f[1]->valuestring,
				      strlen(f[1]->valuestring)))
			return false;
		/* null is tolerated as "absent": some peers write it so */
		return !f[2] || cJSON_IsNull(f[2]) ||
		       str_ok(f[2], 0, INM_CLIENT_NONCE_MAX);
	}
	if (!get_fields(data, &one_key[type], 1, f))
		return false;
	if (type == INM_RESPONSE)
		return cJSON_IsBool(f[0]);
	return str_ok(f[0], 1, SIZE_MAX);
}

enum top_key { K_SOURCE, K_DEST, K_TYPE, K_NONCE, K_TTL, K_DATA, K_COUNT };

static const char *const top_keys[K_COUNT] = {
	"source", "destination", "type", "nonce", "ttl", "data",
};

/* A field's text, not NUL-terminated; p NULL: absent, or not a string. */
struct field {
	const char *p;
	size_t n;
};

/* Source, destination, type and nonce into @pkt, checked in the order the
 * drop reasons rank; both decoders below share it. */
static enum inm_drop header_ok(struct inm_packet *pkt, const struct field *f)
{
	const struct field *s = &f[K_SOURCE], *d = &f[K_DEST], *t = &f[K_TYPE];
	const struct field *n = &f[K_NONCE];
	int i;

	if (!s->p || !s->n || s->n > INM_NAME_MAX ||
	    !inm_node_name_valid(s->p, s->n))
		return INM_DROP_SOURCE;
	memcpy(pkt->source, s->p, s->n);
	pkt->source[s->n] = '\0';

	if (!d->p || !d->n || d->n > INM_NAME_MAX ||
	    (!(d->n == 1 && d->p[0] == '*') &&
	     !inm_node_name_valid(d->p, d->n)))
		return INM_DROP_DESTINATION;
	memcpy(pkt->destination, d->p, d->n);
	pkt->destination[d->n] = '\0';

	if (!t->p)
		return INM_DROP_TYPE;
	for (i = 0; i < INM_TYPE_COUNT; i++)
		if (strlen(type_names[i]) == t->n &&
		    !memcmp(type_names[i], t->p, t->n))
			break;
	if (i == INM_TYPE_COUNT)
		return INM_DROP_TYPE;
	pkt->type = (enum inm_type)i;

	if (!n->p || n->n != INM_NONCE_LEN || !nonce_valid(n->p, n->n))
		return INM_DROP_NONCE;
	memcpy(pkt->nonce, n->p, INM_NONCE_LEN);
	pkt->nonce[INM_NONCE_LEN] = '\0';
	return INM_DROP_NONE;
}

/* The general decoder: any JSON cJSON reads. */
enum inm_drop inm_packet_decode_generic(struct inm_packet *pkt, const char *buf,
					size_t len)
{
	cJSON *root = NULL, *f[K_COUNT];
	struct field txt[K_COUNT];
	const char *end = NULL;
	enum inm_drop rc = INM_DROP_JSON;
	double ttl;

	inm_packet_init(pkt);
	if (!buf || has_nul(buf, len))
		goto out;
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (!root)
		goto out;
	/* cJSON stops after the first value: trailing bytes are garbage */
	while (end < buf + len &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end != buf + len || !cJSON_IsObject(root) ||
	    !get_fields(root, top_keys, K_COUNT, f))
		goto out;

	for (int k = 0; k < K_COUNT; k++) {
		bool str = cJSON_IsString(f[k]) && f[k]->valuestring;

		txt[k].p = str ? f[k]->valuestring : NULL;
		txt[k].n = str ? strlen(f[k]->valuestring) : 0;
	}
	rc = header_ok(pkt, txt);
	if (rc != INM_DROP_NONE)
		goto out;

	/*
	 * JSON has one number type: 16, 16.0 and 1.6e1 are the same value
	 * and all accepted; 16.5, -1, 256, "16" and true are not. The range
	 * check comes first so the cast below is always defined.
	 */
	rc = INM_DROP_TTL;
	if (f[K_TTL]) {
		if (!cJSON_IsNumber(f[K_TTL]))
			goto out;
		ttl = f[K_TTL]->valuedouble;
		if (!(ttl >= 0 && ttl <= INM_TTL_MAX) ||
		    (double)(int)ttl != ttl)
			goto out;
		pkt->ttl = (int)ttl;
	}

	rc = INM_DROP_DATA;
	if (!cJSON_IsObject(f[K_DATA]) || !data_ok(pkt->type, f[K_DATA]))
		goto out;
	pkt->data = cJSON_DetachItemViaPointer(root, f[K_DATA]);
	rc = INM_DROP_NONE;
out:
	cJSON_Delete(root);
	return rc;
}

/*
 * The fast decoder reads only the shape inm_packet_encode() writes for a
 * channel message: no whitespace, strings without escapes or control
 * bytes, ttl a plain integer, data an object of such strings. Whatever it
 * accepts, cJSON reads to the same values (so the verdict and the fields
 * are the generic decoder's); anything else it hands to the generic one.
 * It spares the cJSON tree of the whole packet, about half of a packet's
 * decoding, on the path every channel message takes.
 */

/* A string at *@pp in the subset; advances past it. */
static bool fast_str(const char **pp, const char *e, struct field *v)
{
	const char *p = *pp, *q;

	if (p >= e || *p != '"')
		return false;
	p++;
	/* no escapes: decode_fast checked the packet has no backslash */
	q = memchr(p, '"', (size_t)(e - p));
	if (!q)
		return false;
	v->p = p;
	v->n = (size_t)(q - p);
	*pp = q + 1;
	return true;
}

/* "key":"value" members of an object at *@pp, each handed to @fn while it
 * returns true; advances past the object. */
static bool fast_members(const char **pp, const char *e,
			 bool (*fn)(void *, const struct field *,
				    const struct field *),
			 void *arg)
{
	const char *p = *pp;
	struct field k, v;

	if (p >= e || *p++ != '{')
		return false;
	if (p < e && *p == '}') {
		*pp = p + 1;
		return true;
	}
	for (;;) {
		if (!fast_str(&p, e, &k) || p >= e || *p++ != ':' ||
		    !fast_str(&p, e, &v) || !fn(arg, &k, &v) || p >= e)
			return false;
		if (*p == '}')
			break;
		if (*p++ != ',')
			return false;
	}
	*pp = p + 1;
	return true;
}

/* Adds one string member to the object @arg, as cJSON's parser would. */
static bool fast_add(void *arg, const struct field *k, const struct field *v)
{
	char kb[64], vb[512], *kp = kb, *vp = vb;
	cJSON *item = NULL;
	bool ok = false;

	/* cJSON takes NUL-terminated text */
	if (k->n >= sizeof(kb))
		kp = malloc(k->n + 1);
	if (v->n >= sizeof(vb))
		vp = malloc(v->n + 1);
	if (!kp || !vp)
		goto out;
	memcpy(kp, k->p, k->n);
	kp[k->n] = '\0';
	memcpy(vp, v->p, v->n);
	vp[v->n] = '\0';
	item = cJSON_CreateString(vp);
	ok = item && cJSON_AddItemToObject(arg, kp, item);
	if (!ok)
		cJSON_Delete(item);
out:
	if (kp != kb)
		free(kp);
	if (vp != vb)
		free(vp);
	return ok;
}

/* No backslash and no byte below 0x20 anywhere in @p[0..n): no escapes
 * in any string, no control byte (cJSON would take some for whitespace). */
static bool fast_plain(const char *p, size_t n)
{
	uint64_t w, hit = 0;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		hit |= wr_swar_below(w, 0x20) | wr_swar_eq(w, '\\');
	}
	for (; i < n; i++)
		hit |= (unsigned char)p[i] < 0x20 || p[i] == '\\';
	return !hit;
}

/* True with the verdict in *@rc when it read @buf; false: not its shape. */
static bool decode_fast(struct inm_packet *pkt, const char *buf, size_t len,
			enum inm_drop *rc)
{
	const char *p = buf, *e = buf + len;
	struct field txt[K_COUNT] = { { NULL, 0 } }, key, v;
	bool have[K_COUNT] = { false };
	int k, ttl = -1;
	cJSON *obj = NULL;

	if (!buf || p >= e || *p++ != '{' || !fast_plain(buf, len))
		return false;
	for (;;) {
		if (!fast_str(&p, e, &key) || p >= e || *p++ != ':')
			goto generic;
		for (k = 0; k < K_COUNT; k++)
			if (strlen(top_keys[k]) == key.n &&
			    !memcmp(top_keys[k], key.p, key.n))
				break;
		if (k < K_COUNT && have[k])
			goto generic; /* the generic decoder refuses it */
		if (k == K_TTL) {
			/* 0, or 1-3 digits without a leading zero */
			if (p < e && *p == '0') {
				ttl = 0;
				p++;
			} else {
				const char *d = p;

				for (ttl = 0; p < e && p - d < 3 && *p >= '0' &&
					      *p <= '9';
				     p++)
					ttl = ttl * 10 + (*p - '0');
				if (p == d)
					goto generic;
			}
		} else if (k == K_DATA) {
			/* built as it is read: packets in this shape are
			 * almost always good, so it is rarely thrown away */
			obj = cJSON_CreateObject();
			if (!obj || !fast_members(&p, e, fast_add, obj))
				goto generic; /* out of memory too */
		} else if (!fast_str(&p, e, &v)) {
			goto generic;
		} else if (k < K_COUNT) {
			txt[k] = v;
		}
		if (k < K_COUNT)
			have[k] = true;
		if (p >= e)
			goto generic;
		if (*p == '}')
			break;
		if (*p++ != ',')
			goto generic;
	}
	if (++p != e)
		goto generic; /* trailing bytes, even whitespace */

	inm_packet_init(pkt);
	*rc = header_ok(pkt, txt);
	if (*rc == INM_DROP_NONE && have[K_TTL]) {
		if (ttl > INM_TTL_MAX)
			*rc = INM_DROP_TTL;
		else
			pkt->ttl = ttl;
	}
	if (*rc == INM_DROP_NONE && (!obj || !data_ok(pkt->type, obj)))
		*rc = INM_DROP_DATA;
	if (*rc == INM_DROP_NONE)
		pkt->data = obj;
	else
		cJSON_Delete(obj);
	return true;
generic:
	cJSON_Delete(obj);
	return false;
}

enum inm_drop inm_packet_decode(struct inm_packet *pkt, const char *buf,
				size_t len)
{
	enum inm_drop rc;

	if (decode_fast(pkt, buf, len, &rc))
		return rc;
	return inm_packet_decode_generic(pkt, buf, len);
}

/*
 * Appends @data as JSON. An object whose members are all strings (every
 * channel message: channel, message, client_nonce) is written here, in
 * one pass; anything else by cJSON, which prints to a heap string first.
 */
static void data_json(struct wr_buf *b, const cJSON *data)
{
	const cJSON *it;
	char *txt;

	if (!data) {
		wr_buf_puts(b, "{}");
		return;
	}
	if (!cJSON_IsObject(data))
		goto generic;
	cJSON_ArrayForEach(it, data)
		if (!cJSON_IsString(it) || !it->valuestring || !it->string)
			goto generic;
	wr_buf_append(b, "{", 1);
	cJSON_ArrayForEach(it, data) {
		if (it != data->child)
			wr_buf_append(b, ",", 1);
		wr_buf_json_str(b, it->string, strlen(it->string));
		wr_buf_append(b, ":", 1);
		wr_buf_json_str(b, it->valuestring, strlen(it->valuestring));
	}
	wr_buf_append(b, "}", 1);
	return;
generic:
	txt = cJSON_PrintUnformatted(data);
	if (!txt) {
		b->oom = true;
		return;
	}
	wr_buf_puts(b, txt);
	cJSON_free(txt);
}

int inm_packet_encode(const struct inm_packet *pkt, struct wr_buf *b)
{
	/* no printf around the data: it measured, then copied it, twice */
	wr_buf_puts(b, "{\"source\":");
	wr_buf_json_str(b, pkt->source, strlen(pkt->source));
	wr_buf_puts(b, ",\"destination\":");
	wr_buf_json_str(b, pkt->destination, strlen(pkt->destination));
	wr_buf_puts(b, ",\"type\":\"");
	wr_buf_puts(b, inm_type_name(pkt->type));
	wr_buf_puts(b, "\",\"nonce\":");
	wr_buf_json_str(b, pkt->nonce, strlen(pkt->nonce));
	wr_buf_printf(b, ",\"ttl\":%d,\"data\":", pkt->ttl);
	data_json(b, pkt->data);
	wr_buf_append(b, "}", 1);
	return b->oom ? WR_ENOMEM : WR_OK;
}

int inm_message_fields(const struct inm_packet *pkt, const char **channel,
		       const char **message_b64, const char **client_nonce)
{
	const cJSON *c, *m, *n;

	if (pkt->type != INM_MESSAGE || !pkt->data)
		return WR_EINVAL;
	c = cJSON_GetObjectItemCaseSensitive(pkt->data, "channel");
	m = cJSON_GetObjectItemCaseSensitive(pkt->data, "message");
	n = cJSON_GetObjectItemCaseSensitive(pkt->data, "client_nonce");
	if (!cJSON_IsString(c) || !cJSON_IsString(m))
		return WR_EINVAL;
	*channel = c->valuestring;
	*message_b64 = m->valuestring;
	*client_nonce = cJSON_IsString(n) ? n->valuestring : NULL;
	return WR_OK;
}

/*
 * base64, standard alphabet, padded. Channel payloads are public, so no
 * constant time: libsodium's constant-time codec cost ~7k instructions per
 * 64-byte message decoded (three decodes per delivered message: the codec
 * checks it on each arrival, deliver() decodes it), a table does it in ~1k.
 */
static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of each byte; 255 for any byte outside the alphabet,
 * '=' included (padding is checked where it may stand). */
static const unsigned char b64_value[256] = {
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 62,  255, 255, 255, 63,  52,  53,  54,  55,  56,  57,  58,  59,
	60,  61,  255, 255, 255, 255, 255, 255, 255, 0,   1,   2,   3,   4,
	5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  15,  16,  17,  18,
	19,  20,  21,  22,  23,  24,  25,  255, 255, 255, 255, 255, 255, 26,
	27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,
	41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51,  255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255,
};

int inm_base64_encode(struct wr_buf *b, const void *p, size_t n)
{
	const unsigned char *in = p;
	size_t need, i;
	char *o;

	/* 4 output bytes per 3 input bytes; refuse sizes that would overflow */
	if (n > (SIZE_MAX - 8) / 4 * 3)
		return WR_ENOMEM;
	need = (n + 2) / 3 * 4 + 1;
	if (wr_buf_reserve(b, need))
		return WR_ENOMEM;
	o = b->p + b->len;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
			     in[i + 2];

		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 |
			     (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	b->len += need - 1; /* need counts the NUL, which stays in place */
	return WR_OK;
}

/*
 * Canonical padded base64 only: whole quartets, '=' only as the last one
 * or two bytes, and zero padding bits ("Zh==" is refused, as "Zg==" is
 * the only spelling of "f"), so one payload has one encoding. Writes the
 * bytes to @out (room for len / 4 * 3) unless @out is NULL (checking only).
 */
static int b64_decode_into(const char *s, size_t len, unsigned char *out,
			   size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, o = 0, pad = 0, full;
	uint32_t a, b, c, d;

	if (len % 4)
		return WR_EINVAL;
	if (len && p[len - 1] == '=')
		pad = p[len - 2] == '=' ? 2 : 1;
	full = pad ? len - 4 : len;
	for (i = 0; i < full; i += 4) {
		a = b64_value[p[i]];
		b = b64_value[p[i + 1]];
		c = b64_value[p[i + 2]];
		d = b64_value[p[i + 3]];
		if ((a | b | c | d) > 63)
			return WR_EINVAL;
		if (out) {
			uint32_t v = a << 18 | b << 12 | c << 6 | d;

			out[o] = (unsigned char)(v >> 16);
			out[o + 1] = (unsigned char)(v >> 8);
			out[o + 2] = (unsigned char)v;
		}
		o += 3;
	}
	if (pad) {
		a = b64_value[p[i]];
		b = b64_value[p[i + 1]];
		c = pad == 1 ? b64_value[p[i + 2]] : 0;
		if ((a | b | c) > 63 || (pad == 2 ? b & 15 : c & 3))
			return WR_EINVAL;
		if (out) {
			out[o] = (unsigned char)(a << 2 | b >> 4);
			if (pad == 1)
				out[o + 1] = (unsigned char)(b << 4 | c >> 2);
		}
		o += 3 - pad;
	}
	*outlen = o;
	return WR_OK;
}

int inm_base64_decode(const char *s, size_t len, unsigned char **out,
		      size_t *outlen)
{
	unsigned char *p;
	int rc;

	*out = NULL;
	*outlen = 0;
	p = malloc(len / 4 * 3 + 1);
	if (!p)
		return WR_ENOMEM;
	rc = b64_decode_into(s, len, p, outlen);
	if (rc) {
		free(p);
		return rc;
	}
	p[*outlen] = '\0';
	*out = p;
	return WR_OK;
}

bool inm_base64_valid(const char *s, size_t len)
{
	size_t n;

	return b64_decode_into(s, len, NULL, &n) == WR_OK;
}
