/*
 * channels/cmd: the /connect frame decoder and the two frames the node
 * writes back (response, delivery). A small validating JSON parser of our
 * own instead of cJSON: strings carry explicit lengths (so "\u0000" in a
 * message survives instead of truncating it), nothing is allocated unless a
 * wanted string has escapes, and the whole document is validated.
 */
#include <stdlib.h>
#include <string.h>

#include "channels.h"

#define MAX_DEPTH 32

enum jtype { J_NONE, J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

/* A parsed value as far as the decoder cares: its type and raw span. */
struct jval {
	enum jtype type;
	const char *p; /* J_STR: the bytes between the quotes */
	size_t len;
	bool escaped; /* J_STR: contains backslashes */
};

struct jp {
	const char *p, *end;
	int depth;
};

static void skip_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long hex4(const char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Validates a string starting at the opening quote. */
static int parse_string(struct jp *j, struct jval *v)
{
	const char *s = ++j->p;

	v->escaped = false;
	while (j->p < j->end) {
		unsigned char c = (unsigned char)*j->p;

		if (c == '"') {
			v->type = J_STR;
			v->p = s;
			v->len = (size_t)(j->p - s);
			j->p++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			j->p++;
			continue;
		}
		v->escaped = true;
		if (j->end - j->p < 2)
			return -1;
		switch (j->p[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			j->p += 2;
			break;
		case 'u': {
			long u;

			if (j->end - j->p < 6 || (u = hex4(j->p + 2)) < 0)
				return -1;
			j->p += 6;
			if (u >= 0xdc00 && u <= 0xdfff)
				return -1; /* lone low surrogate */
			if (u >= 0xd800 && u <= 0xdbff) {
				long lo;

				if (j->end - j->p < 6 || j->p[0] != '\\' ||
				    j->p[1] != 'u' ||
				    (lo = hex4(j->p + 2)) < 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					return -1;
				j->p += 6;
			}
			break;
		}
		default:
			return -1;
		}
	}
	return -1;
}

static int parse_number(struct jp *j)
{
	const char *p = j->p, *e = j->end;

	if (p < e && *p == '-')
		p++;
	if (p >= e)
		return -1;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	} else {
		return -1;
	}
	if (p < e && *p == '.') {
		p++;
		if (p >= e || *p < '0' || *p > '9')
			return -1;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return -1;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	j->p = p;
	return 0;
}

static int literal(struct jp *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
		return -1;
	j->p += n;
	return 0;
}

/*
 * Object member visitor: called for each key of an object with the key's
 * raw span and the value; lets the decoder pick the fields it wants while
 * the parser validates everything else.
 */
typedef void (*member_cb)(void *ctx, const struct jval *key,
			  const struct jval *val);

static int parse_value(struct jp *j, struct jval *v, member_cb cb, void *ctx);

static int parse_object(struct jp *j, member_cb cb, void *ctx)
{
	j->p++; /* '{' */
	skip_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		struct jval key, val;

		skip_ws(j);
		if (j->p >= j->end || *j->p != '"' || parse_string(j, &key))
			return -1;
		skip_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return -1;
		j->p++;
		skip_ws(j);
		if (parse_value(j, &val, NULL, NULL))
			return -1;
		if (cb)
			cb(ctx, &key, &val);
		skip_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == '}') {
			j->p++;
			return 0;
		}
		if (*j->p != ',')
			return -1;
		j->p++;
	}
}

static int parse_array(struct jp *j)
{
	j->p++; /* '[' */
	skip_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		struct jval val;

		skip_ws(j);
		if (parse_value(j, &val, NULL, NULL))
			return -1;
		skip_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ']') {
			j->p++;
			return 0;
		}
		if (*j->p != ',')
			return -1;
		j->p++;
	}
}

/* Parses one value; for an object, @cb sees its members. */
static int parse_value(struct jp *j, struct jval *v, member_cb cb, void *ctx)
{
	const char *start = j->p;
	int rc;

	memset(v, 0, sizeof(*v));
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{':
		if (++j->depth > MAX_DEPTH)
			return -1;
		rc = parse_object(j, cb, ctx);
		j->depth--;
		v->type = J_OBJ;
		break;
	case '[':
		if (++j->depth > MAX_DEPTH)
			return -1;
		rc = parse_array(j);
		j->depth--;
		v->type = J_ARR;
		break;
	case '"':
		return parse_string(j, v);
	case 't':
		rc = literal(j, "true");
		v->type = J_BOOL;
		break;
	case 'f':
		rc = literal(j, "false");
		v->type = J_BOOL;
		break;
	case 'n':
		rc = literal(j, "null");
		v->type = J_NULL;
		break;
	default:
		rc = parse_number(j);
		v->type = J_NUM;
		break;
	}
	if (!rc && v->type != J_STR) {
		v->p = start;
		v->len = (size_t)(j->p - start);
	}
	return rc;
}

static void put_utf8(char **o, unsigned long cp)
{
	unsigned char *u = (unsigned char *)*o;

	if (cp < 0x80) {
		*u++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*u++ = (unsigned char)(0xc0 | (cp >> 6));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*u++ = (unsigned char)(0xe0 | (cp >> 12));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*u++ = (unsigned char)(0xf0 | (cp >> 18));
		*u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*o = (char *)u;
}

/* Unescapes an already validated string into @out (>= v->len bytes). */
static size_t unescape(const struct jval *v, char *out)
{
	const char *p = v->p, *e = v->p + v->len;
	char *o = out;

	while (p < e) {
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		switch (*p++) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '/':
			*o++ = '/';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		default: { /* 'u', validated */
			unsigned long cp = (unsigned long)hex4(p);

			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned long lo = (unsigned long)hex4(p + 2);

				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			put_utf8(&o, cp);
		}
		}
	}
	return (size_t)(o - out);
}

/* Resolves a string value into @s, unescaping into cmd->heap when needed. */
static int take_string(struct chan_cmd *cmd, const struct jval *v,
		       struct chan_str *s)
{
	char *buf;

	if (!v->escaped) {
		s->p = v->len ? v->p : "";
		s->len = v->len;
		return 0;
	}
	/* an escape never expands: "\uXXXX" (6) -> at most 3 bytes,
	 * a surrogate pair (12) -> 4 bytes */
	buf = malloc(v->len + 1);
	if (!buf ||
	    cmd->nheap >= (int)(sizeof(cmd->heap) / sizeof(cmd->heap[0]))) {
		free(buf);
		return -1;
	}
	s->len = unescape(v, buf);
	cmd->heap_len[cmd->nheap] = s->len;
	cmd->heap[cmd->nheap++] = buf;
	buf[s->len] = '\0';
	s->p = buf;
	return 0;
}

/* Compares a string value (a key, or the command) with @name after
 * unescaping: "top\u0069c" is "topic", as JSON says. */
static bool key_is(const struct jval *k, const char *name)
{
	size_t n = strlen(name);
	char tmp[32];

	if (!k->escaped)
		return k->len == n && !memcmp(k->p, name, n);
	if (k->len > sizeof(tmp))
		return false; /* unescaping never grows, names are short */
	return unescape(k, tmp) == n && !memcmp(tmp, name, n);
}

/* The fields of interest, first occurrence wins. */
struct fields {
	struct jval command, nonce, data;
	struct jval topic, password, channel, message, token;
	struct jval recover, since, limit, epoch, offset, presence_events;
};

static void top_member(void *ctx, const struct jval *key,
		       const struct jval *val)
{
	struct fields *f = ctx;

	if (key_is(key, "command") && f->command.type == J_NONE)
		f->command = *val;
	else if (key_is(key, "nonce") && f->nonce.type == J_NONE)
		f->nonce = *val;
	else if (key_is(key, "data") && f->data.type == J_NONE)
		f->data = *val;
}

static void data_member(void *ctx, const struct jval *key,
			const struct jval *val)
{
	struct fields *f = ctx;
	struct jval *slot = NULL;

	if (key_is(key, "topic"))
		slot = &f->topic;
	else if (key_is(key, "password"))
		slot = &f->password;
	else if (key_is(key, "channel"))
		slot = &f->channel;
	else if (key_is(key, "message"))
		slot = &f->message;
	else if (key_is(key, "token"))
		slot = &f->token;
	else if (key_is(key, "recover"))
		slot = &f->recover;
	else if (key_is(key, "since"))
		slot = &f->since;
	else if (key_is(key, "limit"))
		slot = &f->limit;
	else if (key_is(key, "presence_events"))
		slot = &f->presence_events;
	if (slot && slot->type == J_NONE)
		*slot = *val;
}

static void since_member(void *ctx, const struct jval *key,
			 const struct jval *val)
{
	struct fields *f = ctx;
	struct jval *slot = NULL;

	if (key_is(key, "epoch"))
		slot = &f->epoch;
	else if (key_is(key, "offset"))
		slot = &f->offset;
	if (slot && slot->type == J_NONE)
		*slot = *val;
}

/* A JSON number that is a non-negative integer below 2^64, written
 * without fraction or exponent. */
static bool take_u64(const struct jval *v, uint64_t *out)
{
	uint64_t n = 0;

	if (v->type != J_NUM || !v->len)
		return false;
	for (size_t i = 0; i < v->len; i++) {
		unsigned d = (unsigned)(v->p[i] - '0');

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

/* subscribe's recover and since (7.3); NULL or the reason. */
static const char *decode_recovery(struct chan_cmd *cmd, struct fields *f)
{
	if (f->recover.type != J_NONE && f->recover.type != J_NULL) {
		if (f->recover.type != J_BOOL)
			return "missing field: recover";
		cmd->recover = f->recover.p[0] == 't';
	}
	if (f->since.type == J_NONE || f->since.type == J_NULL)
		return NULL;
	if (f->since.type != J_OBJ)
		return "missing field: since";
	{
		struct jp d = { .p = f->since.p,
				.end = f->since.p + f->since.len };
		struct jval sv;

		if (parse_value(&d, &sv, since_member, f))
			return "invalid json";
	}
	if (f->epoch.type != J_STR || !take_u64(&f->offset, &cmd->since_offset))
		return "missing field: since";
	if (take_string(cmd, &f->epoch, &cmd->since_epoch))
		return "invalid json";
	cmd->has_since = true;
	cmd->recover = true; /* 7.5.7: since implies recover */
	return NULL;
}

bool chan_name_valid(const char *name, size_t len)
{
	return wr_channel_name_valid(name, len);
}

const char *chan_cmd_decode(struct chan_cmd *cmd, const char *buf, size_t len,
			    size_t max_message_bytes)
{
	struct jp j = { .p = buf, .end = buf + len };
	struct fields f;
	struct jval top;

	memset(cmd, 0, sizeof(*cmd));
	memset(&f, 0, sizeof(f));
	skip_ws(&j);
	if (j.p >= j.end || *j.p != '{')
		return "invalid json";
	if (parse_value(&j, &top, top_member, &f))
		return "invalid json";
	skip_ws(&j);
	if (j.p != j.end)
		return "invalid json";

	if (f.nonce.type != J_NONE) {
		if (f.nonce.type != J_STR ||
		    take_string(cmd, &f.nonce, &cmd->nonce))
			return "missing field: nonce";
		if (cmd->nonce.len > CHAN_NONCE_MAX) {
			cmd->nonce.p = NULL;
			return "missing field: nonce";
		}
	}
	if (f.command.type != J_STR)
		return "missing field: command";
	if (key_is(&f.command, "subscribe"))
		cmd->type = CHAN_CMD_SUBSCRIBE;
	else if (key_is(&f.command, "unsubscribe"))
		cmd->type = CHAN_CMD_UNSUBSCRIBE;
	else if (key_is(&f.command, "list"))
		cmd->type = CHAN_CMD_LIST;
	else if (key_is(&f.command, "send"))
		cmd->type = CHAN_CMD_SEND;
	else if (key_is(&f.command, "auth"))
		cmd->type = CHAN_CMD_AUTH;
	else if (key_is(&f.command, "history"))
		cmd->type = CHAN_CMD_HISTORY;
	else if (key_is(&f.command, "presence"))
		cmd->type = CHAN_CMD_PRESENCE;
	else
		return "unknown command";

	if (cmd->type == CHAN_CMD_LIST)
		return NULL; /* data is optional and ignored */
	if (f.data.type != J_OBJ)
		return "missing field: data";
	/* re-walk the data object to pick its fields (validated already) */
	{
		struct jp d = { .p = f.data.p, .end = f.data.p + f.data.len };
		struct jval dv;

		if (parse_value(&d, &dv, data_member, &f))
			return "invalid json";
	}

	switch (cmd->type) {
	case CHAN_CMD_SUBSCRIBE:
	case CHAN_CMD_UNSUBSCRIBE:
		if (f.topic.type != J_STR)
			return "missing field: topic";
		if (take_string(cmd, &f.topic, &cmd->channel))
			return "invalid json";
		if (cmd->type == CHAN_CMD_SUBSCRIBE &&
		    f.password.type != J_NONE && f.password.type != J_NULL) {
			if (f.password.type != J_STR)
				return "missing field: password";
			if (take_string(cmd, &f.password, &cmd->password))
				return "invalid json";
		}
		if (cmd->type == CHAN_CMD_SUBSCRIBE) {
			const char *r = decode_recovery(cmd, &f);

			if (r)
				return r;
			if (f.presence_events.type == J_BOOL)
				cmd->presence_events = f.presence_events.p[0] ==
						       't';
			else if (f.presence_events.type != J_NONE &&
				 f.presence_events.type != J_NULL)
				return "missing field: presence_events";
		}
		break;
	case CHAN_CMD_PRESENCE:
		if (f.channel.type != J_STR)
			return "missing field: channel";
		if (take_string(cmd, &f.channel, &cmd->channel))
			return "invalid json";
		break;
	case CHAN_CMD_HISTORY:
		if (f.channel.type != J_STR)
			return "missing field: channel";
		if (f.limit.type != J_NONE && f.limit.type != J_NULL) {
			if (!take_u64(&f.limit, &cmd->limit))
				return "missing field: limit";
			cmd->has_limit = true;
		}
		if (take_string(cmd, &f.channel, &cmd->channel))
			return "invalid json";
		break;
	case CHAN_CMD_SEND:
		if (f.channel.type != J_STR)
			return "missing field: channel";
		if (f.message.type != J_STR)
			return "missing field: message";
		if (take_string(cmd, &f.channel, &cmd->channel) ||
		    take_string(cmd, &f.message, &cmd->message))
			return "invalid json";
		break;
	case CHAN_CMD_AUTH:
		if (f.token.type != J_STR)
			return "missing field: token";
		if (take_string(cmd, &f.token, &cmd->token))
			return "invalid json";
		return NULL; /* the token's form is auth/'s to judge */
	case CHAN_CMD_LIST:
		break;
	}
	if (!chan_name_valid(cmd->channel.p, cmd->channel.len))
		return "invalid channel name";
	if (cmd->type == CHAN_CMD_SEND && cmd->message.len > max_message_bytes)
		return "message too large";
	return NULL;
}

void chan_cmd_fini(struct chan_cmd *cmd)
{
	for (int i = 0; i < cmd->nheap; i++) {
		/* may hold a password: wipe before freeing */
		volatile char *p = cmd->heap[i];
		size_t n = cmd->heap_len[i];

		while (n--)
			*p++ = 0;
		free(cmd->heap[i]);
	}
	cmd->nheap = 0;
}

void chan_response_json(struct wr_buf *b, bool ok, const char *reason,
			const struct chan_str *nonce)
{
	wr_buf_puts(b, ok ? "{\"type\":\"response\",\"data\":{\"ok\":true"
			  : "{\"type\":\"response\",\"data\":{\"ok\":false");
	if (reason) {
		wr_buf_puts(b, ",\"reason\":");
		wr_buf_json_str(b, reason, strlen(reason));
	}
	wr_buf_puts(b, "}");
	if (nonce && nonce->p) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, nonce->p, nonce->len);
	}
	wr_buf_puts(b, "}");
}

void chan_delivery_json(struct wr_buf *b, const char *channel, size_t clen,
			const char *msg, size_t mlen,
			const struct chan_str *nonce)
{
	wr_buf_puts(b, "{\"type\":\"message\",\"data\":{\"message\":");
	wr_buf_json_str(b, msg, mlen);
	wr_buf_puts(b, ",\"channel\":");
	wr_buf_json_str(b, channel, clen);
	wr_buf_puts(b, "}");
	if (nonce && nonce->p) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, nonce->p, nonce->len);
	}
	wr_buf_puts(b, "}");
}
