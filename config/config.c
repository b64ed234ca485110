/*
 * config/config: maps the TOML tree (config/toml.h) onto struct config.
 * The schema is a table of key specs, so every key is typed, ranged and
 * reported the same way; unknown keys and tables are errors, never ignored.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "toml.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_FILE ((size_t)1 << 20)
#define MAX_NAME 64
#define DAY_MS 86400000
#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define NAME_CHARS ALNUM "._-"
#define HOST_CHARS ALNUM ".-_"

/* The repo's web/ (the demo chat), or with WSRELAY_INSTALL_LAYOUT the
 * installed DATADIR/wsrelay/web, set by CMake; empty: none. */
#ifndef CONFIG_WEB_ROOT
#define CONFIG_WEB_ROOT ""
#endif

enum kind {
	K_INT,    /* int */
	K_I64,    /* int64_t */
	K_BOOL,   /* bool */
	K_STR,    /* char *, non-empty */
	K_NAME,   /* char *, a node name */
	K_URL,    /* char *, ws:// or wss:// */
	K_LISTEN, /* "host:port": fills listen, listen_host, listen_port */
	K_LEVEL,  /* enum wr_log_level */
	K_FORMAT, /* enum wr_log_format */
	K_DIR,    /* char *, an existing directory made absolute; "" = NULL */
	K_FILE,   /* char *, a path taken from the config file's directory */
	K_STRS,   /* struct config_strs, non-empty array of non-empty strings */
	K_ORIGINS, /* K_STRS of "http(s)://host[:port]" */
};

struct key_spec {
	const char *key;
	enum kind kind;
	size_t off;       /* into struct config or struct config_peer */
	int64_t min, max; /* K_INT, K_I64 */
};

#define CFG(f) offsetof(struct config, f)
#define PEER(f) offsetof(struct config_peer, f)

static const struct key_spec node_keys[] = {
	{ "name", K_NAME, CFG(name), 0, 0 },
	{ "listen", K_LISTEN, CFG(listen), 0, 0 },
	{ "url", K_URL, CFG(url), 0, 0 },
	{ "token", K_STR, CFG(token), 0, 0 },
	{ "master", K_BOOL, CFG(master), 0, 0 },
	{ "max_peers", K_INT, CFG(max_peers), 0, 1024 },
	{ "drain_ms", K_INT, CFG(drain_ms), 0, 3600000 },
};

static const struct key_spec tls_keys[] = {
	{ "cert", K_STR, CFG(tls_cert), 0, 0 },
	{ "key", K_STR, CFG(tls_key), 0, 0 },
	{ "ca", K_STR, CFG(tls_ca), 0, 0 },
	{ "insecure", K_BOOL, CFG(tls_insecure), 0, 0 },
};

static const struct key_spec limits_keys[] = {
	{ "max_message_bytes", K_I64, CFG(max_message_bytes), 1, 16 << 20 },
	{ "max_queue_bytes", K_I64, CFG(max_queue_bytes), 1, 1 << 30 },
	{ "max_subscriptions", K_INT, CFG(max_subscriptions), 1, 1000000 },
	{ "max_clients", K_INT, CFG(max_clients), 1, 10000000 },
	{ "max_clients_per_ip", K_INT, CFG(max_clients_per_ip), 1, 10000000 },
	{ "messages_per_second", K_INT, CFG(messages_per_second), 1,
	  100000000 },
	{ "messages_burst", K_INT, CFG(messages_burst), 1, 100000000 },
	{ "max_list", K_INT, CFG(max_list), 1, 10000000 },
	{ "max_pending_per_ip", K_INT, CFG(max_pending_per_ip), 1, 1000000 },
	{ "password_failures_per_ip", K_INT, CFG(password_failures_per_ip), 1,
	  1000000 },
	{ "client_ping_interval_ms", K_INT, CFG(client_ping_interval_ms), 1000,
	  3600000 },
};

static const struct key_spec health_keys[] = {
	{ "max_latency_ms", K_INT, CFG(max_latency_ms), 0, 600000 },
};

static const struct key_spec mesh_keys[] = {
	{ "announce_interval_ms", K_INT, CFG(announce_interval_ms), 1, DAY_MS },
	{ "ping_interval_ms", K_INT, CFG(ping_interval_ms), 1, DAY_MS },
	{ "peer_timeout_ms", K_INT, CFG(peer_timeout_ms), 1, DAY_MS },
	{ "command_timeout_ms", K_INT, CFG(command_timeout_ms), 1, DAY_MS },
	{ "reconnect_min_ms", K_INT, CFG(reconnect_min_ms), 1, DAY_MS },
	{ "reconnect_max_ms", K_INT, CFG(reconnect_max_ms), 1, DAY_MS },
	{ "reconcile_interval_ms", K_INT, CFG(reconcile_interval_ms), 1,
	  DAY_MS },
	{ "stats_interval_ms", K_INT, CFG(stats_interval_ms), 1, DAY_MS },
};

static const struct key_spec web_keys[] = {
	{ "root", K_DIR, CFG(web_root), 0, 0 },
	{ "allowed_origins", K_ORIGINS, CFG(allowed_origins), 0, 0 },
	{ "admin_token_file", K_FILE, CFG(admin_token_file), 0, 0 },
};

static const struct key_spec auth_keys[] = {
	{ "hs256_secret_file", K_FILE, CFG(auth_hs256_secret_file), 0, 0 },
	{ "ed25519_public_keys", K_STRS, CFG(auth_ed25519), 0, 0 },
	{ "required", K_BOOL, CFG(auth_required), 0, 0 },
	{ "issuer", K_STR, CFG(auth_issuer), 0, 0 },
	{ "audience", K_STR, CFG(auth_audience), 0, 0 },
	{ "timeout_ms", K_INT, CFG(auth_timeout_ms), 100, 3600000 },
};

static const struct key_spec history_keys[] = {
	{ "size", K_INT, CFG(history_size), 0, 1000000 },
	{ "ttl_ms", K_I64, CFG(history_ttl_ms), 1, 30LL * DAY_MS },
	{ "max_bytes", K_I64, CFG(history_max_bytes), 0, 1LL << 40 },
	{ "linger_ms", K_I64, CFG(history_linger_ms), 0, DAY_MS },
};

static const struct key_spec log_keys[] = {
	{ "level", K_LEVEL, CFG(log_level), 0, 0 },
	{ "format", K_FORMAT, CFG(log_format), 0, 0 },
};

/* All three are required: checked after the table is read. */
static const struct key_spec peer_keys[] = {
	{ "name", K_NAME, PEER(name), 0, 0 },
	{ "url", K_URL, PEER(url), 0, 0 },
	{ "token", K_STR, PEER(token), 0, 0 },
};

struct table_spec {
	const char *name;
	const struct key_spec *keys;
	size_t nkeys;
};

#define TABLE(n)                                   \
	{                                          \
#n, n##_keys, ARRAY_SIZE(n##_keys) \
	}
static const struct table_spec tables[] = {
	TABLE(node), TABLE(tls), TABLE(limits), TABLE(health),  TABLE(mesh),
	TABLE(log),  TABLE(web), TABLE(auth),   TABLE(history),
};

struct loader {
	struct config *c;
	const struct toml *root;
	const char *path;
	char *err;
	size_t errlen;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "PATH:LINE: key 'KEY': WHAT"; LINE is left out when unknown (0). */
static int bad(struct loader *ld, int line, const char *key, const char *fmt,
	       ...) __attribute__((format(printf, 4, 5)));

static int line_of(const struct loader *ld, const char *table, const char *key);

#define ADMIN_TOKEN_MIN 16
#define ADMIN_TOKEN_MAX 4096

/* [web] admin_token_file: read here (at start, or on a reload's worker
 * thread: never on the loop); one trailing newline stripped. */
static int load_admin_token(struct loader *ld, struct config *c)
{
	int line = line_of(ld, "web", "admin_token_file");
	char buf[ADMIN_TOKEN_MAX + 2];
	size_t n = 0;
	ssize_t r;
	int fd = open(c->admin_token_file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return bad(ld, line, "web.admin_token_file",
			   "cannot read %s: %s", c->admin_token_file,
			   strerror(errno));
	while (n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	if (n > ADMIN_TOKEN_MAX)
		return bad(ld, line, "web.admin_token_file",
			   "%s holds more than %d bytes", c->admin_token_file,
			   ADMIN_TOKEN_MAX);
	if (n < ADMIN_TOKEN_MIN)
		return bad(ld, line, "web.admin_token_file",
			   "%s holds %zu bytes: at least %d are needed",
			   c->admin_token_file, n, ADMIN_TOKEN_MIN);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f)
			return bad(ld, line, "web.admin_token_file",
				   "%s: a token of printable characters without "
				   "spaces is needed",
				   c->admin_token_file);
	c->admin_token = malloc(n + 1);
	if (!c->admin_token)
		return WR_ENOMEM;
	memcpy(c->admin_token, buf, n);
	c->admin_token[n] = '\0';
	c->admin_token_len = n;
	return WR_OK;
}

static int bad(struct loader *ld, int line, const char *key, const char *fmt,
	       ...)
{
	char what[256], at[32] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(at, sizeof(at), ":%d", line);
	if (key)
		set_err(ld->err, ld->errlen, "%s%s: key '%s': %s", ld->path, at,
			key, what);
	else
		set_err(ld->err, ld->errlen, "%s%s: %s", ld->path, at, what);
	return WR_EINVAL;
}

static int oom(struct loader *ld)
{
	set_err(ld->err, ld->errlen, "%s: out of memory", ld->path);
	return WR_ENOMEM;
}

/* A value quoted in a message: printable ASCII only, cut at 40 bytes,
 * so a hostile file cannot put escapes or newlines into the log. */
static const char *shown(const char *s, char *buf, size_t size)
{
	size_t i, n = strlen(s), max = size - 4;

	for (i = 0; i < n && i < max; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n > max) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > MAX_NAME)
		return false;
	return strspn(s, NAME_CHARS) == n;
}

static const char *url_problem(const char *s)
{
	size_t skip;

	if (!strncmp(s, "ws://", 5))
		skip = 5;
	else if (!strncmp(s, "wss://", 6))
		skip = 6;
	else
		return "expected a ws:// or wss:// URL";
	if (!s[skip])
		return "missing host after the URL scheme";
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return "URL contains a space or control character";
	return NULL;
}

/*
 * "host:port" or "[ipv6]:port". Returns NULL and gives the caller a
 * malloc'd host without brackets in *@host, or returns why it is invalid.
 * Sets *@host NULL with a NULL return only when out of memory.
 */
static const char *parse_listen(const char *s, char **host, int *port)
{
	struct in6_addr a6;
	struct in_addr a4;
	char buf[64];
	const char *h, *p;
	size_t hlen;
	long v = 0;

	*host = NULL;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb)
			return "missing ']' after the IPv6 address";
		h = s + 1;
		hlen = (size_t)(rb - h);
		if (!hlen || hlen >= sizeof(buf))
			return "invalid IPv6 address";
		memcpy(buf, h, hlen);
		buf[hlen] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return "invalid IPv6 address";
		if (rb[1] != ':')
			return "expected ':' and a port after ']'";
		p = rb + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon)
			return "expected \"host:port\", e.g. \"127.0.0.1:8080\"";
		h = s;
		hlen = (size_t)(colon - s);
		if (memchr(h, ':', hlen))
			return "IPv6 addresses need brackets, e.g. \"[::1]:8080\"";
		if (!hlen)
			return "missing host before ':'";
		if (hlen > 253 || strspn(h, HOST_CHARS) < hlen)
			return "invalid host name";
		/* all digits and dots: it has to be a real IPv4 address */
		if (strspn(h, "0123456789.") >= hlen) {
			if (hlen >= sizeof(buf))
				return "invalid IPv4 address";
			memcpy(buf, h, hlen);
			buf[hlen] = '\0';
			if (inet_pton(AF_INET, buf, &a4) != 1)
				return "invalid IPv4 address";
		}
		p = colon + 1;
	}
	if (!*p)
		return "missing port after ':'";
	for (const char *d = p; *d; d++) {
		if (*d < '0' || *d > '9')
			return "invalid port";
		if (v <= 65535)
			v = v * 10 + (*d - '0');
	}
	if (v > 65535)
		return "port out of range (0..65535)";
	*host = malloc(hlen + 1);
	if (*host) {
		memcpy(*host, h, hlen);
		(*host)[hlen] = '\0';
	}
	*port = (int)v;
	return NULL;
}

/* Replaces the string at @dst by a copy of @s. */
static int set_str(struct loader *ld, char **dst, const char *s)
{
	char *d = strdup(s);

	if (!d)
		return oom(ld);
	free(*dst);
	*dst = d;
	return WR_OK;
}

/*
 * A directory: "" turns the feature off (NULL); a relative path is taken
 * from the config file's directory (the working directory for a config
 * without a path); the result is its realpath, checked to be a directory
 * now rather than at the first request.
 */
static int apply_dir(struct loader *ld, char **dst, const char *fk,
		     const struct toml *v)
{
	const char *s = v->v.str, *slash;
	char joined[PATH_MAX], real[PATH_MAX], show[160];
	struct stat st;
	int n;

	if (!*s) {
		free(*dst);
		*dst = NULL;
		return WR_OK;
	}
	slash = strrchr(ld->path, '/');
	if (s[0] == '/' || !slash || !ld->c->path)
		n = snprintf(joined, sizeof(joined), "%s", s);
	else
		n = snprintf(joined, sizeof(joined), "%.*s/%s",
			     (int)(slash - ld->path), ld->path, s);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return bad(ld, v->line, fk, "path too long");
	if (!realpath(joined, real))
		return bad(ld, v->line, fk, "cannot use '%s': %s",
			   shown(joined, show, sizeof(show)), strerror(errno));
	if (stat(real, &st) || !S_ISDIR(st.st_mode))
		return bad(ld, v->line, fk, "'%s' is not a directory",
			   shown(real, show, sizeof(show)));
	return set_str(ld, dst, real);
}

/* A file named relative to the config file's directory (the working
 * directory for a config without a path); checked by whoever reads it. */
static int apply_file(struct loader *ld, char **dst, const char *fk,
		      const struct toml *v)
{
	const char *s = v->v.str, *slash = strrchr(ld->path, '/');
	char joined[PATH_MAX];
	int n;

	if (s[0] == '/' || !slash || !ld->c->path)
		n = snprintf(joined, sizeof(joined), "%s", s);
	else
		n = snprintf(joined, sizeof(joined), "%.*s/%s",
			     (int)(slash - ld->path), ld->path, s);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return bad(ld, v->line, fk, "path too long");
	return set_str(ld, dst, joined);
}

void config_strs_fini(struct config_strs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->lines);
	memset(l, 0, sizeof(*l));
}

/* An origin as browsers send it: scheme "http" or "https", a host, an
 * optional port, nothing after (RFC 6454 serialisation). */
static const char *origin_problem(const char *s)
{
	const char *h = !strncmp(s, "https://", 8)  ? s + 8
			: !strncmp(s, "http://", 7) ? s + 7
						    : NULL;

	if (!h)
		return "must start with http:// or https://";
	if (!*h || *h == ':')
		return "has no host";
	for (; *h; h++)
		if (*h == '/' || *h == '?' || *h == '#' || *h <= ' ' ||
		    (*h >= 'A' && *h <= 'Z'))
			return "must be scheme://host[:port] in lower case, with "
			       "no path";
	return NULL;
}

/* A list of strings (K_STRS, K_ORIGINS) with the line of each. */
static int apply_strlist(struct loader *ld, struct config_strs *l,
			 const struct key_spec *ks, const char *fk,
			 const struct toml *v)
{
	char show[48];
	const char *why;

	if (!v->n)
		return bad(ld, v->line, fk, "must not be empty");
	for (size_t i = 0; i < v->n; i++) {
		if (v->items[i]->type != TOML_STRING)
			return bad(ld, v->items[i]->line, fk,
				   "expected strings, got %s",
				   toml_type_name(v->items[i]));
		if (!v->items[i]->v.str[0])
			return bad(ld, v->items[i]->line, fk,
				   "must not hold an empty string");
		why = ks->kind == K_ORIGINS ? origin_problem(v->items[i]->v.str)
					    : NULL;
		if (why)
			return bad(ld, v->items[i]->line, fk, "'%s' %s",
				   shown(v->items[i]->v.str, show,
					 sizeof(show)),
				   why);
	}
	config_strs_fini(l);
	l->v = calloc(v->n, sizeof(char *));
	l->lines = calloc(v->n, sizeof(int));
	if (!l->v || !l->lines)
		return oom(ld);
	for (size_t i = 0; i < v->n; i++) {
		l->v[i] = strdup(v->items[i]->v.str);
		if (!l->v[i])
			return oom(ld);
		l->lines[i] = v->items[i]->line;
		l->n++;
	}
	return WR_OK;
}

static int apply_string(struct loader *ld, void *base,
			const struct key_spec *ks, const char *fk,
			const struct toml *v)
{
	struct config *c = ld->c;
	const char *s = v->v.str, *why;
	char *field = (char *)base + ks->off;
	char show[48], *host;
	int port;

	if (ks->kind == K_DIR)
		return apply_dir(ld, (char **)field, fk, v);
	if (!*s)
		return bad(ld, v->line, fk, "must not be empty");
	if (ks->kind == K_FILE)
		return apply_file(ld, (char **)field, fk, v);
	switch (ks->kind) {
	case K_NAME:
		if (!name_valid(s))
			return bad(ld, v->line, fk,
				   "invalid name '%s': use 1 to %d characters from A-Z a-z 0-9 . _ -",
				   shown(s, show, sizeof(show)), MAX_NAME);
		break;
	case K_URL:
		why = url_problem(s);
		if (why)
			return bad(ld, v->line, fk, "%s", why);
		break;
	case K_LEVEL:
		if (wr_log_level_parse(s, (enum wr_log_level *)field))
			return bad(ld, v->line, fk,
				   "unknown log level '%s' (expected debug, info, warn or error)",
				   shown(s, show, sizeof(show)));
		return WR_OK;
	case K_FORMAT:
		if (wr_log_format_parse(s, (enum wr_log_format *)field))
			return bad(ld, v->line, fk,
				   "unknown log format '%s' (expected text or json)",
				   shown(s, show, sizeof(show)));
		return WR_OK;
	case K_LISTEN:
		why = parse_listen(s, &host, &port);
		if (why)
			return bad(ld, v->line, fk, "%s", why);
		if (!host)
			return oom(ld);
		free(c->listen_host);
		c->listen_host = host;
		c->listen_port = port;
		break;
	default:
		break;
	}
	return set_str(ld, (char **)field, s);
}

static int apply(struct loader *ld, void *base, const struct key_spec *ks,
		 const char *fk, const struct toml *v)
{
	enum toml_type want;
	char *field = (char *)base + ks->off;

	switch (ks->kind) {
	case K_INT:
	case K_I64:
		want = TOML_INT;
		break;
	case K_BOOL:
		want = TOML_BOOL;
		break;
	case K_STRS:
	case K_ORIGINS:
		want = TOML_ARRAY;
		break;
	default:
		want = TOML_STRING;
		break;
	}
	if (v->type != want)
		return bad(ld, v->line, fk, "expected %s, got %s",
			   toml_type_name(&(struct toml){ .type = want }),
			   toml_type_name(v));
	switch (ks->kind) {
	case K_INT:
	case K_I64:
		if (v->v.i < ks->min || v->v.i > ks->max)
			return bad(ld, v->line, fk,
				   "%lld is out of range (%lld..%lld)",
				   (long long)v->v.i, (long long)ks->min,
				   (long long)ks->max);
		if (ks->kind == K_INT)
			*(int *)field = (int)v->v.i;
		else
			*(int64_t *)field = v->v.i;
		return WR_OK;
	case K_BOOL:
		*(bool *)field = v->v.b;
		return WR_OK;
	case K_STRS:
	case K_ORIGINS:
		return apply_strlist(ld, (struct config_strs *)field, ks, fk,
				     v);
	default:
		return apply_string(ld, base, ks, fk, v);
	}
}

/* Every member of @t must be one of @keys; @tname prefixes their names. */
static int load_table(struct loader *ld, void *base,
		      const struct key_spec *keys, size_t nkeys,
		      const char *tname, const struct toml *t)
{
	char fk[128];
	size_t i, k;
	int rc;

	for (i = 0; i < t->n; i++) {
		const struct toml *m = t->items[i];

		snprintf(fk, sizeof(fk), "%s.%.64s", tname, m->key);
		for (k = 0; k < nkeys; k++)
			if (!strcmp(m->key, keys[k].key))
				break;
		if (k == nkeys)
			return bad(ld, m->line, fk, "unknown key");
		rc = apply(ld, base, &keys[k], fk, m);
		if (rc)
			return rc;
	}
	return WR_OK;
}

static int load_peer(struct loader *ld, size_t idx, const struct toml *t)
{
	struct config *c = ld->c;
	struct config_peer *peers, *p;
	char tname[32], fk[48];
	int rc;

	peers = realloc(c->peers, (c->npeers + 1) * sizeof(*peers));
	if (!peers)
		return oom(ld);
	c->peers = peers;
	p = &peers[c->npeers++];
	memset(p, 0, sizeof(*p));
	snprintf(tname, sizeof(tname), "peers[%zu]", idx);
	rc = load_table(ld, p, peer_keys, ARRAY_SIZE(peer_keys), tname, t);
	if (rc)
		return rc;
	for (size_t k = 0; k < ARRAY_SIZE(peer_keys); k++) {
		if (*(char **)((char *)p + peer_keys[k].off))
			continue;
		snprintf(fk, sizeof(fk), "%s.%s", tname, peer_keys[k].key);
		return bad(ld, t->line, fk,
			   "missing: every [[peers]] needs name, url and token");
	}
	for (size_t j = 0; j + 1 < c->npeers; j++) {
		if (strcmp(peers[j].name, p->name))
			continue;
		snprintf(fk, sizeof(fk), "%s.name", tname);
		return bad(ld, toml_get(t, "name")->line, fk,
			   "duplicate peer name '%s' (also peers[%zu])",
			   p->name, j);
	}
	return WR_OK;
}

static int load_peers(struct loader *ld, const struct toml *arr)
{
	int rc;

	if (arr->type == TOML_TABLE)
		return bad(ld, arr->line, NULL,
			   "[peers] must be an array of tables: write [[peers]]");
	if (arr->type != TOML_ARRAY || !arr->aot)
		return bad(ld, arr->line, "peers",
			   "expected an array of tables [[peers]], got %s",
			   toml_type_name(arr));
	for (size_t i = 0; i < arr->n; i++) {
		rc = load_peer(ld, i, arr->items[i]);
		if (rc)
			return rc;
	}
	return WR_OK;
}

static int unknown_root(struct loader *ld, const struct toml *m)
{
	char name[72];

	/* names are bare keys, safe to print; only their length is capped */
	snprintf(name, sizeof(name), "%.64s", m->key);
	if (m->type == TOML_TABLE)
		return bad(ld, m->line, NULL, "unknown table [%s]", name);
	if (m->type == TOML_ARRAY && m->aot)
		return bad(ld, m->line, NULL, "unknown table [[%s]]", name);
	return bad(ld, m->line, name, "unknown key");
}

static int load_root(struct loader *ld)
{
	const struct toml *root = ld->root;
	const struct table_spec *ts;
	size_t i, k;
	int rc;

	for (i = 0; i < root->n; i++) {
		const struct toml *m = root->items[i];

		if (!strcmp(m->key, "peers")) {
			rc = load_peers(ld, m);
			if (rc)
				return rc;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(tables); k++)
			if (!strcmp(m->key, tables[k].name))
				break;
		if (k == ARRAY_SIZE(tables))
			return unknown_root(ld, m);
		ts = &tables[k];
		if (m->type == TOML_ARRAY && m->aot)
			return bad(ld, m->line, NULL,
				   "[[%s]] must be a table: write [%s]",
				   ts->name, ts->name);
		if (m->type != TOML_TABLE)
			return bad(ld, m->line, ts->name,
				   "expected a table [%s], got %s", ts->name,
				   toml_type_name(m));
		rc = load_table(ld, ld->c, ts->keys, ts->nkeys, ts->name, m);
		if (rc)
			return rc;
	}
	return WR_OK;
}

/* The line of [@table] @key in the file, or 0 when it is not there. */
static int line_of(const struct loader *ld, const char *table, const char *key)
{
	const struct toml *v;

	v = toml_get(toml_get(ld->root, table), key);
	return v ? v->line : 0;
}

/* Rules across keys: blame the key the file set, it is the one to fix. */
static int check_relations(struct loader *ld)
{
	struct config *c = ld->c;
	const struct toml *peers;
	int l;

	/* a link to a node of our own name is refused (4409): say so now */
	peers = toml_get(ld->root, "peers");
	for (size_t i = 0; peers && i < peers->n; i++) {
		const struct toml *name;
		char fk[48];

		name = toml_get(peers->items[i], "name");
		if (name && !strcmp(name->v.str, c->name)) {
			snprintf(fk, sizeof(fk), "peers[%zu].name", i);
			return bad(ld, name->line, fk,
				   "'%s' is this node's own name", c->name);
		}
	}
	/* the static token lets a node into the mesh, where it can speak for
	 * every channel: a guessable one gives the mesh away */
	if (c->token && strlen(c->token) < CONFIG_TOKEN_MIN)
		return bad(ld, line_of(ld, "node", "token"), "node.token",
			   "too short: at least %d characters (e.g. `openssl "
			   "rand -hex 16`)",
			   CONFIG_TOKEN_MIN);
	if (!c->tls_cert != !c->tls_key) {
		if (c->tls_cert)
			return bad(ld, line_of(ld, "tls", "cert"), "tls.cert",
				   "tls.key must be set too");
		return bad(ld, line_of(ld, "tls", "key"), "tls.key",
			   "tls.cert must be set too");
	}
	if (c->reconnect_min_ms > c->reconnect_max_ms) {
		l = line_of(ld, "mesh", "reconnect_min_ms");
		if (l)
			return bad(ld, l, "mesh.reconnect_min_ms",
				   "must be <= mesh.reconnect_max_ms (%d)",
				   c->reconnect_max_ms);
		return bad(ld, line_of(ld, "mesh", "reconnect_max_ms"),
			   "mesh.reconnect_max_ms",
			   "must be >= mesh.reconnect_min_ms (%d)",
			   c->reconnect_min_ms);
	}
	if (c->admin_token_file) {
		int rc = load_admin_token(ld, c);

		if (rc)
			return rc;
	}
	c->auth_hs256_line = line_of(ld, "auth", "hs256_secret_file");
	if (c->auth_required && !c->auth_hs256_secret_file &&
	    !c->auth_ed25519.n)
		return bad(ld, line_of(ld, "auth", "required"), "auth.required",
			   "needs auth.hs256_secret_file or auth.ed25519_public_keys");
	if (c->max_queue_bytes < c->max_message_bytes) {
		l = line_of(ld, "limits", "max_queue_bytes");
		if (l)
			return bad(ld, l, "limits.max_queue_bytes",
				   "must be >= limits.max_message_bytes (%lld)",
				   (long long)c->max_message_bytes);
		return bad(ld, line_of(ld, "limits", "max_message_bytes"),
			   "limits.max_message_bytes",
			   "must be <= limits.max_queue_bytes (%lld)",
			   (long long)c->max_queue_bytes);
	}
	return WR_OK;
}

/* The host name as a valid node name: other characters become '-'. */
static int default_name(char **out)
{
	char host[256] = "";
	size_t n;

	if (gethostname(host, sizeof(host) - 1) || !host[0])
		snprintf(host, sizeof(host), "wsrelay");
	host[MAX_NAME] = '\0';
	n = strlen(host);
	for (size_t i = 0; i < n; i++)
		if (!strchr(NAME_CHARS, host[i]))
			host[i] = '-';
	*out = strdup(host);
	return *out ? WR_OK : WR_ENOMEM;
}

int config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_port = 8080;
	c->master = false;
	c->max_peers = 8;
	c->tls_insecure = false;
	c->max_message_bytes = 65536;
	c->max_queue_bytes = 1048576;
	c->max_subscriptions = 1024;
	c->max_clients = 100000;
	c->client_ping_interval_ms = 30000;
	c->max_latency_ms = 10;
	c->announce_interval_ms = 5000;
	c->ping_interval_ms = 5000;
	c->peer_timeout_ms = 15000;
	c->command_timeout_ms = 5000;
	c->reconnect_min_ms = 500;
	c->reconnect_max_ms = 30000;
	c->reconcile_interval_ms = 15000;
	c->stats_interval_ms = 15000;
	c->drain_ms = 10000;
	c->auth_timeout_ms = 5000;
	c->max_clients_per_ip = 1000;
	c->messages_per_second = 1000;
	c->messages_burst = 2000;
	c->max_list = 10000;
	c->max_pending_per_ip = 64;
	c->password_failures_per_ip = 5;
	c->history_ttl_ms = 300000;
	c->history_max_bytes = 64LL << 20;
	c->history_linger_ms = 30000;
	c->log_level = WR_LOG_INFO;
	c->log_format = WR_LOG_TEXT;
	c->listen = strdup("127.0.0.1:8080");
	c->listen_host = strdup("127.0.0.1");
	/* not checked: a binary run away from its source tree serves none */
	c->web_root = CONFIG_WEB_ROOT[0] ? strdup(CONFIG_WEB_ROOT) : NULL;
	if (default_name(&c->name) || !c->listen || !c->listen_host ||
	    (CONFIG_WEB_ROOT[0] && !c->web_root)) {
		config_fini(c);
		return WR_ENOMEM;
	}
	return WR_OK;
}

int config_parse(struct config *c, const char *path, const char *text,
		 size_t len, char *err, size_t errlen)
{
	struct loader ld = { .c = c,
			     .path = path ? path : "<config>",
			     .err = err,
			     .errlen = errlen };
	struct toml *root = NULL;
	struct toml_err te;
	int rc;

	set_err(err, errlen, "%s", "");
	if (path) {
		rc = set_str(&ld, &c->path, path);
		if (rc)
			goto out;
	}
	rc = toml_parse(text, len, &root, &te);
	if (rc) {
		bad(&ld, te.line, te.key[0] ? te.key : NULL, "%s", te.msg);
		goto out;
	}
	ld.root = root;
	rc = load_root(&ld);
	if (rc)
		goto out;
	rc = check_relations(&ld);
out:
	toml_destroy(root);
	return rc;
}

/* The whole file, at most MAX_FILE bytes. Returns 0 or an errno value,
 * EFBIG when the file is bigger. */
static int read_file(const char *path, char **text, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL, *nb;
	ssize_t r;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	for (;;) {
		if (n == cap) {
			/* one byte past the limit tells "1 MiB" from "more" */
			if (cap > MAX_FILE) {
				rc = EFBIG;
				goto out;
			}
			cap = cap ? cap * 2 : 16384;
			if (cap > MAX_FILE + 1)
				cap = MAX_FILE + 1;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = ENOMEM;
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*text = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc, e;

	rc = config_defaults(c);
	if (rc) {
		set_err(err, errlen, "%s: out of memory", path);
		return rc;
	}
	e = read_file(path, &text, &len);
	if (e == EFBIG) {
		set_err(err, errlen, "%s: file too large (limit %zu MiB)", path,
			MAX_FILE >> 20);
		return WR_EINVAL;
	}
	if (e) {
		set_err(err, errlen, "%s: cannot read: %s", path, strerror(e));
		if (e == ENOMEM)
			return WR_ENOMEM;
		return e == ENOENT ? WR_ENOENT : WR_EIO;
	}
	rc = config_parse(c, path, text, len, err, errlen);
	free(text);
	return rc;
}

void config_fini(struct config *c)
{
	free(c->path);
	free(c->name);
	free(c->listen);
	free(c->listen_host);
	free(c->url);
	free(c->token);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ca);
	for (size_t i = 0; i < c->npeers; i++) {
		free(c->peers[i].name);
		free(c->peers[i].url);
		free(c->peers[i].token);
	}
	free(c->peers);
	free(c->web_root);
	free(c->auth_hs256_secret_file);
	free(c->admin_token_file);
	if (c->admin_token) {
		volatile char *z = c->admin_token;

		for (size_t i = 0; i < c->admin_token_len; i++)
			z[i] = 0;
		free(c->admin_token);
	}
	config_strs_fini(&c->auth_ed25519);
	config_strs_fini(&c->allowed_origins);
	free(c->auth_issuer);
	free(c->auth_audience);
	memset(c, 0, sizeof(*c));
}
