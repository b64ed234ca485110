/*
 * config/toml: a one-pass recursive-descent parser for the TOML subset in
 * toml.h. The input is bounded by its length, never by a NUL; every error
 * stops the parse, frees what was built and says which line and key.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml.h"

/* Bounds that keep a hostile file cheap: members are found by a linear
 * scan, so a table with a million keys would cost a trillion compares. */
#define TOML_MAX_ITEMS 4096
#define TOML_MAX_INPUT ((size_t)64 << 20)

struct parser {
	const char *p, *end;
	int line;
	struct toml *root;
	struct toml *cur; /* the table that receives "key = value" */
	char path[88];    /* cur for messages: "", "node", "peers[2]" */
	struct toml_err *err;
};

static int fail(struct parser *ps, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parser *ps, const char *key, const char *fmt, ...)
{
	va_list ap;

	ps->err->line = ps->line;
	snprintf(ps->err->key, sizeof(ps->err->key), "%s", key ? key : "");
	va_start(ap, fmt);
	vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
	va_end(ap);
	return WR_EINVAL;
}

static int fail_oom(struct parser *ps)
{
	fail(ps, NULL, "out of memory");
	return WR_ENOMEM;
}

static bool is_bare(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* TOML forbids raw control characters except tab in strings and comments. */
static bool is_ctrl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool at(const struct parser *ps, char c)
{
	return ps->p < ps->end && *ps->p == c;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

/* Stops at the line end ('\n' or '\r'), which the caller then checks. */
static int skip_comment(struct parser *ps)
{
	for (ps->p++; ps->p < ps->end; ps->p++) {
		unsigned char c = (unsigned char)*ps->p;

		if (c == '\n' || c == '\r')
			break;
		if (is_ctrl(c))
			return fail(ps, NULL, "control character in comment");
	}
	return WR_OK;
}

/* Consumes "\n" or "\r\n"; the caller knows one of them (or EOF) is next. */
static int eat_newline(struct parser *ps)
{
	if (at(ps, '\r')) {
		if (ps->end - ps->p < 2 || ps->p[1] != '\n')
			return fail(ps, NULL,
				    "carriage return not followed by a newline");
		ps->p++;
	}
	if (at(ps, '\n')) {
		ps->p++;
		ps->line++;
	}
	return WR_OK;
}

/* After a header or a value: only blanks and a comment may end the line. */
static int end_line(struct parser *ps, const char *key, const char *what)
{
	int rc;

	skip_ws(ps);
	if (at(ps, '#')) {
		rc = skip_comment(ps);
		if (rc)
			return rc;
	}
	if (ps->p == ps->end)
		return WR_OK;
	if (*ps->p != '\n' && *ps->p != '\r')
		return fail(ps, key, "unexpected text after %s", what);
	return eat_newline(ps);
}

/* Inside arrays: blanks, newlines and comments, in any number. */
static int skip_blank(struct parser *ps)
{
	int rc;

	for (;;) {
		skip_ws(ps);
		if (ps->p == ps->end)
			return WR_OK;
		if (*ps->p == '#') {
			rc = skip_comment(ps);
			if (rc)
				return rc;
			continue;
		}
		if (*ps->p != '\n' && *ps->p != '\r')
			return WR_OK;
		rc = eat_newline(ps);
		if (rc)
			return rc;
	}
}

/*
 * NUL bytes and bad UTF-8 are checked once up front, line by line, so the
 * error has a line and the parser proper may treat bytes >= 0x80 as text.
 */
static int check_text(struct parser *ps)
{
	const char *s = ps->p, *e = ps->end;
	int rc = WR_OK;

	while (s < e) {
		const char *nl = memchr(s, '\n', (size_t)(e - s));
		const char *le = nl ? nl : e;

		if (memchr(s, '\0', (size_t)(le - s))) {
			rc = fail(ps, NULL, "NUL byte in the file");
			break;
		}
		if (!wr_utf8_valid(s, (size_t)(le - s))) {
			rc = fail(ps, NULL, "invalid UTF-8");
			break;
		}
		if (!nl)
			break;
		s = nl + 1;
		ps->line++;
	}
	ps->line = 1;
	return rc;
}

static struct toml *node_new(enum toml_type type, int line)
{
	struct toml *t = calloc(1, sizeof(*t));

	if (t) {
		t->type = type;
		t->line = line;
	}
	return t;
}

/* Takes ownership of @child only on success. */
static int node_push(struct parser *ps, struct toml *parent, struct toml *child,
		     const char *key)
{
	struct toml **items;
	size_t cap;

	if (parent->n >= TOML_MAX_ITEMS)
		return fail(ps, key, "too many entries (limit %d)",
			    TOML_MAX_ITEMS);
	if (parent->n == parent->cap) {
		cap = parent->cap ? parent->cap * 2 : 8;
		items = realloc(parent->items, cap * sizeof(*items));
		if (!items)
			return fail_oom(ps);
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->n++] = child;
	return WR_OK;
}

static struct toml *find(const struct toml *t, const char *key, size_t klen)
{
	for (size_t i = 0; i < t->n; i++) {
		struct toml *m = t->items[i];

		if (m->key && strlen(m->key) == klen &&
		    !memcmp(m->key, key, klen))
			return m;
	}
	return NULL;
}

/* Reads [A-Za-z0-9_-]+ at the cursor; *@len = 0 when there is none. */
static const char *bare_key(struct parser *ps, size_t *len)
{
	const char *s = ps->p;

	while (ps->p < ps->end && is_bare((unsigned char)*ps->p))
		ps->p++;
	*len = (size_t)(ps->p - s);
	return s;
}

static void put_utf8(struct wr_buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	wr_buf_append(b, u, n);
}

/* \uXXXX or \UXXXXXXXX, the cursor just past the 'u' or 'U'. */
static int unicode_escape(struct parser *ps, const char *key, int ndig,
			  struct wr_buf *b)
{
	uint32_t cp = 0;

	for (int i = 0; i < ndig; i++, ps->p++) {
		unsigned char c = ps->p < ps->end ? (unsigned char)*ps->p : 0;
		uint32_t d;

		if (is_digit(c))
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return fail(ps, key,
				    "invalid escape: \\%c needs %d hex digits",
				    ndig == 4 ? 'u' : 'U', ndig);
		cp = cp << 4 | d;
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return fail(ps, key,
			    "invalid escape: U+%04X is not a Unicode scalar value",
			    (unsigned)cp);
	/* values are handed out as C strings: a NUL would silently cut them */
	if (cp == 0)
		return fail(ps, key,
			    "invalid escape: \\u0000 (NUL) is not allowed");
	put_utf8(b, cp);
	return WR_OK;
}

static int escape(struct parser *ps, const char *key, struct wr_buf *b)
{
	unsigned char c;
	char out;

	ps->p++; /* the backslash */
	if (ps->p == ps->end)
		return fail(ps, key, "unterminated string");
	c = (unsigned char)*ps->p++;
	switch (c) {
	case '"':
		out = '"';
		break;
	case '\\':
		out = '\\';
		break;
	case 'b':
		out = '\b';
		break;
	case 'f':
		out = '\f';
		break;
	case 'n':
		out = '\n';
		break;
	case 'r':
		out = '\r';
		break;
	case 't':
		out = '\t';
		break;
	case 'u':
		return unicode_escape(ps, key, 4, b);
	case 'U':
		return unicode_escape(ps, key, 8, b);
	default:
		if (c > 0x20 && c < 0x7f)
			return fail(ps, key, "invalid escape sequence '\\%c'",
				    c);
		return fail(ps, key, "invalid escape sequence");
	}
	wr_buf_append(b, &out, 1);
	return WR_OK;
}

/* A raw '\r' ends the string only as part of "\r\n". */
static bool at_line_end(const struct parser *ps)
{
	return ps->p == ps->end || *ps->p == '\n' ||
	       (*ps->p == '\r' && ps->end - ps->p >= 2 && ps->p[1] == '\n');
}

static int basic_string(struct parser *ps, const char *key, char **out)
{
	struct wr_buf b;
	const char *run;
	int rc = WR_OK;

	if (ps->end - ps->p >= 3 && ps->p[1] == '"' && ps->p[2] == '"')
		return fail(ps, key, "unsupported multi-line string");
	wr_buf_init(&b);
	ps->p++;
	for (;;) {
		/* copy plain runs in one go: the common case by far */
		run = ps->p;
		while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' &&
		       !is_ctrl((unsigned char)*ps->p))
			ps->p++;
		wr_buf_append(&b, run, (size_t)(ps->p - run));
		if (at_line_end(ps)) {
			rc = fail(ps, key, "unterminated string");
			goto out;
		}
		if (*ps->p == '"')
			break;
		if (*ps->p == '\\') {
			rc = escape(ps, key, &b);
			if (rc)
				goto out;
			continue;
		}
		rc = fail(ps, key,
			  "control character in string (use an escape)");
		goto out;
	}
	ps->p++;
	/* an empty string never allocated */
	wr_buf_append(&b, "", 0);
	if (b.oom) {
		rc = fail_oom(ps);
		goto out;
	}
	*out = b.p;
	b.p = NULL;
out:
	wr_buf_fini(&b);
	return rc;
}

static int literal_string(struct parser *ps, const char *key, char **out)
{
	const char *s;
	size_t n;

	if (ps->end - ps->p >= 3 && ps->p[1] == '\'' && ps->p[2] == '\'')
		return fail(ps, key, "unsupported multi-line literal string");
	s = ++ps->p;
	while (ps->p < ps->end && *ps->p != '\'') {
		if (at_line_end(ps))
			break;
		if (is_ctrl((unsigned char)*ps->p))
			return fail(ps, key, "control character in string");
		ps->p++;
	}
	if (ps->p == ps->end || *ps->p != '\'')
		return fail(ps, key, "unterminated string");
	n = (size_t)(ps->p - s);
	ps->p++;
	*out = malloc(n + 1);
	if (!*out)
		return fail_oom(ps);
	memcpy(*out, s, n);
	(*out)[n] = '\0';
	return WR_OK;
}

/* Bare values run to a blank, a comment, the line end or array syntax. */
static bool ends_token(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '#' ||
	       c == ',' || c == ']';
}

static bool tok_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && !memcmp(s, word, n);
}

/* Decimal only; '_' must sit between two digits; no leading zeros. */
static int integer(struct parser *ps, const char *key, const char *s, size_t n,
		   int64_t *out)
{
	bool neg = false;
	uint64_t acc = 0, limit;

	if (*s == '+' || *s == '-') {
		neg = *s == '-';
		s++;
		n--;
	}
	if (n > 1 && s[0] == '0' && (is_digit(s[1]) || s[1] == '_'))
		return fail(ps, key,
			    "leading zeros are not allowed in integers");
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] == '_') {
			if (i == 0 || !is_digit(s[i - 1]) || i + 1 == n ||
			    !is_digit(s[i + 1]))
				return fail(
					ps, key,
					"'_' in an integer must be between digits");
			continue;
		}
		if (!is_digit(s[i]))
			return fail(ps, key, "invalid integer");
		d = (unsigned)(s[i] - '0');
		if (acc > (limit - d) / 10)
			return fail(ps, key, "integer out of range (64-bit)");
		acc = acc * 10 + d;
	}
	if (!neg)
		*out = (int64_t)acc;
	else if (acc == (uint64_t)INT64_MAX + 1)
		*out = INT64_MIN;
	else
		*out = -(int64_t)acc;
	return WR_OK;
}

/* true, false, integers, and the unsupported look-alikes named as such. */
static int token(struct parser *ps, const char *key, struct toml *v)
{
	const char *s = ps->p, *d;
	size_t n, dn;

	while (ps->p < ps->end && !ends_token(*ps->p))
		ps->p++;
	n = (size_t)(ps->p - s);
	if (n == 0)
		return fail(ps, key, "missing value");
	if (tok_is(s, n, "true") || tok_is(s, n, "false")) {
		v->type = TOML_BOOL;
		v->v.b = *s == 't';
		return WR_OK;
	}
	d = s;
	dn = n;
	if (*d == '+' || *d == '-') {
		d++;
		dn--;
	}
	if (tok_is(d, dn, "inf") || tok_is(d, dn, "nan"))
		return fail(ps, key, "unsupported float value");
	if (dn == 0 || !is_digit((unsigned char)*d))
		return fail(ps, key, "invalid value (strings must be quoted)");
	/* "1979-05-27", "07:32:00" and their combinations */
	if (memchr(s, ':', n) ||
	    (n >= 5 && d == s && is_digit((unsigned char)s[1]) &&
	     is_digit((unsigned char)s[2]) && is_digit((unsigned char)s[3]) &&
	     s[4] == '-'))
		return fail(ps, key, "unsupported date/time value");
	if (dn > 1 && d[0] == '0' &&
	    (d[1] == 'x' || d[1] == 'o' || d[1] == 'b'))
		return fail(ps, key,
			    "unsupported hexadecimal, octal or binary integer");
	if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n))
		return fail(ps, key, "unsupported float value");
	v->type = TOML_INT;
	return integer(ps, key, s, n, &v->v.i);
}

static int value(struct parser *ps, const char *key, bool in_array,
		 struct toml **out);

static int array(struct parser *ps, const char *key, struct toml *arr)
{
	int open_line = ps->line;
	struct toml *v;
	int rc;

	arr->type = TOML_ARRAY;
	ps->p++;
	for (;;) {
		rc = skip_blank(ps);
		if (rc)
			return rc;
		if (ps->p == ps->end)
			goto unterminated;
		if (*ps->p == ']')
			break;
		rc = value(ps, key, true, &v);
		if (rc)
			return rc;
		rc = node_push(ps, arr, v, key);
		if (rc) {
			toml_destroy(v);
			return rc;
		}
		rc = skip_blank(ps);
		if (rc)
			return rc;
		if (ps->p == ps->end)
			goto unterminated;
		if (*ps->p == ']')
			break;
		if (*ps->p != ',')
			return fail(ps, key,
				    "expected ',' or ']' in the array opened on line %d",
				    open_line);
		ps->p++;
	}
	ps->p++;
	return WR_OK;
unterminated:
	/* at EOF the current line says nothing: point at the '[' instead */
	ps->line = open_line;
	return fail(ps, key, "unterminated array (opened on line %d)",
		    open_line);
}

/* Parses the value at the cursor into a new node given to *@out. */
static int value(struct parser *ps, const char *key, bool in_array,
		 struct toml **out)
{
	struct toml *v;
	int rc;

	*out = NULL;
	if (ps->p == ps->end || *ps->p == '\r' || *ps->p == '\n' ||
	    *ps->p == '#')
		return fail(ps, key, "missing value");
	if (*ps->p == '{')
		return fail(ps, key, "unsupported inline table");
	if (*ps->p == '[' && in_array)
		return fail(ps, key, "unsupported nested array");
	v = node_new(TOML_STRING, ps->line);
	if (!v)
		return fail_oom(ps);
	switch (*ps->p) {
	case '"':
		rc = basic_string(ps, key, &v->v.str);
		break;
	case '\'':
		rc = literal_string(ps, key, &v->v.str);
		break;
	case '[':
		rc = array(ps, key, v);
		break;
	default:
		rc = token(ps, key, v);
		break;
	}
	if (rc) {
		toml_destroy(v);
		return rc;
	}
	*out = v;
	return WR_OK;
}

static char *dup_key(const char *s, size_t n)
{
	char *k = malloc(n + 1);

	if (k) {
		memcpy(k, s, n);
		k[n] = '\0';
	}
	return k;
}

/* "[name]" or "[[name]]": switches the current table. */
static int header(struct parser *ps)
{
	struct toml *t = NULL, *arr = NULL, *prev;
	const char *name, *open, *close;
	bool aot = false;
	size_t len;
	int nshow, rc;

	ps->p++;
	if (at(ps, '[')) {
		aot = true;
		ps->p++;
	}
	open = aot ? "[[" : "[";
	close = aot ? "]]" : "]";
	skip_ws(ps);
	if (at(ps, '"') || at(ps, '\''))
		return fail(ps, NULL, "unsupported quoted table name");
	name = bare_key(ps, &len);
	if (!len)
		return fail(ps, NULL, "expected a table name after '%s'", open);
	nshow = len > 64 ? 64 : (int)len; /* messages stay one short line */
	skip_ws(ps);
	if (at(ps, '.'))
		return fail(ps, NULL, "unsupported dotted table name");
	if (!at(ps, ']') || (aot && (ps->end - ps->p < 2 || ps->p[1] != ']')))
		return fail(ps, NULL, "expected '%s' after the table name",
			    close);
	ps->p += aot ? 2 : 1;

	prev = find(ps->root, name, len);
	if (prev && !(aot && prev->type == TOML_ARRAY && prev->aot)) {
		if (prev->type == TOML_TABLE && !aot)
			return fail(ps, NULL,
				    "duplicate table [%.*s] (first defined on line %d)",
				    nshow, name, prev->line);
		return fail(ps, NULL,
			    "%s%.*s%s conflicts with '%.*s' defined on line %d",
			    open, nshow, name, close, nshow, name, prev->line);
	}
	t = node_new(TOML_TABLE, ps->line);
	if (!t)
		return fail_oom(ps);
	if (aot) {
		arr = prev;
		if (!arr) {
			arr = node_new(TOML_ARRAY, ps->line);
			if (!arr || !(arr->key = dup_key(name, len))) {
				rc = fail_oom(ps);
				goto err;
			}
			arr->aot = true;
			rc = node_push(ps, ps->root, arr, NULL);
			if (rc)
				goto err;
			prev = arr; /* now owned by the root */
		}
		rc = node_push(ps, arr, t, NULL);
		if (rc)
			goto err;
		snprintf(ps->path, sizeof(ps->path), "%.*s[%zu]", nshow, name,
			 arr->n - 1);
	} else {
		t->key = dup_key(name, len);
		if (!t->key) {
			rc = fail_oom(ps);
			goto err;
		}
		rc = node_push(ps, ps->root, t, NULL);
		if (rc)
			goto err;
		snprintf(ps->path, sizeof(ps->path), "%.*s", nshow, name);
	}
	ps->cur = t;
	return end_line(ps, NULL, "the table header");
err:
	toml_destroy(t);
	if (arr != prev)
		toml_destroy(arr);
	return rc;
}

/* "key = value" into the current table. */
static int keyval(struct parser *ps)
{
	char fk[sizeof(ps->err->key)];
	struct toml *v, *prev;
	const char *key;
	size_t len;
	int rc;

	if (at(ps, '"') || at(ps, '\''))
		return fail(ps, NULL, "unsupported quoted key");
	key = bare_key(ps, &len);
	if (!len)
		return fail(ps, NULL, "expected a key or a [table] header");
	/* the full dotted name, for messages only: truncation is harmless */
	snprintf(fk, sizeof(fk), "%s%s%.*s", ps->path, ps->path[0] ? "." : "",
		 len > 64 ? 64 : (int)len, key);
	skip_ws(ps);
	if (at(ps, '.'))
		return fail(ps, fk, "unsupported dotted key");
	if (!at(ps, '='))
		return fail(ps, fk, "missing '=' after the key");
	ps->p++;
	skip_ws(ps);
	prev = find(ps->cur, key, len);
	if (prev)
		return fail(ps, fk, "duplicate key (first defined on line %d)",
			    prev->line);
	rc = value(ps, fk, false, &v);
	if (rc)
		return rc;
	v->key = dup_key(key, len);
	if (!v->key) {
		toml_destroy(v);
		return fail_oom(ps);
	}
	rc = node_push(ps, ps->cur, v, fk);
	if (rc) {
		toml_destroy(v);
		return rc;
	}
	return end_line(ps, fk, "the value");
}

int toml_parse(const char *text, size_t len, struct toml **root,
	       struct toml_err *err)
{
	struct parser ps = { .line = 1, .err = err };
	int rc;

	/* NULL + 0 is undefined behaviour, so an empty input gets a real "" */
	if (!text) {
		text = "";
		len = 0;
	}
	ps.p = text;
	ps.end = text + len;
	memset(err, 0, sizeof(*err));
	*root = NULL;
	if (len > TOML_MAX_INPUT) {
		rc = fail(&ps, NULL, "input too large (limit %zu MiB)",
			  TOML_MAX_INPUT >> 20);
		goto out;
	}
	rc = check_text(&ps);
	if (rc)
		goto out;
	ps.root = ps.cur = node_new(TOML_TABLE, 1);
	if (!ps.root) {
		rc = fail_oom(&ps);
		goto out;
	}
	/* editors on some systems start files with a byte order mark */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		ps.p += 3;
	while (ps.p < ps.end) {
		skip_ws(&ps);
		if (ps.p == ps.end)
			break;
		switch (*ps.p) {
		case '\r':
		case '\n':
			rc = eat_newline(&ps);
			break;
		case '#':
			rc = end_line(&ps, NULL, "the comment");
			break;
		case '[':
			rc = header(&ps);
			break;
		default:
			rc = keyval(&ps);
			break;
		}
		if (rc)
			goto out;
	}
	*root = ps.root;
	ps.root = NULL;
out:
	toml_destroy(ps.root);
	return rc;
}

void toml_destroy(struct toml *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		toml_destroy(t->items[i]);
	free(t->items);
	if (t->type == TOML_STRING)
		free(t->v.str);
	free(t->key);
	free(t);
}

const struct toml *toml_get(const struct toml *t, const char *key)
{
	if (!t || t->type != TOML_TABLE)
		return NULL;
	return find(t, key, strlen(key));
}

const char *toml_type_name(const struct toml *t)
{
	switch (t->type) {
	case TOML_STRING:
		return "a string";
	case TOML_INT:
		return "an integer";
	case TOML_BOOL:
		return "a boolean";
	case TOML_ARRAY:
		return t->aot ? "an array of tables" : "an array";
	case TOML_TABLE:
		return "a table";
	}
	return "a value";
}
