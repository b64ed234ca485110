/*
 * clients/cli/url: one URL argument to the two places the client goes,
 * the /connect upgrade and GET /health. Pure string work, no lws: the
 * whole rule is in cli.h above cli_url_parse().
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static bool ends_with_segment(const char *path, size_t len, const char *seg)
{
	size_t n = strlen(seg);

	return len >= n && !memcmp(path + len - n, seg, n);
}

static int parse_port(const char *p, size_t n, int *port)
{
	long v = 0;

	if (!n || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int cli_url_parse(struct cli_url *u, const char *text, char *err, size_t errlen)
{
	const char *sep, *auth, *end, *host, *colon = NULL, *path;
	size_t hlen, blen;
	bool ws;
	int n;

	memset(u, 0, sizeof(*u));
	sep = strstr(text, "://");
	if (!sep) {
		snprintf(err, errlen,
			 "'%s' is not a URL (ws://HOST:PORT/connect, "
			 "wss://..., http://HOST:PORT or https://...)",
			 text);
		return -1;
	}
	n = (int)(sep - text);
	if (n == 2 && !strncasecmp(text, "ws", 2)) {
		ws = true;
	} else if (n == 3 && !strncasecmp(text, "wss", 3)) {
		ws = u->tls = true;
	} else if (n == 4 && !strncasecmp(text, "http", 4)) {
		ws = false;
	} else if (n == 5 && !strncasecmp(text, "https", 5)) {
		ws = false;
		u->tls = true;
	} else {
		snprintf(err, errlen,
			 "'%s': unsupported scheme '%.*s' "
			 "(ws, wss, http or https)",
			 text, n, text);
		return -1;
	}

	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	path = end;
	if (memchr(auth, '@', (size_t)(end - auth))) {
		snprintf(err, errlen,
			 "'%s': user information in URLs is not supported",
			 text);
		return -1;
	}
	if (*auth == '[') {
		const char *close = memchr(auth, ']', (size_t)(end - auth));

		if (!close) {
			snprintf(err, errlen,
				 "'%s': unterminated '[' in the host", text);
			return -1;
		}
		host = auth + 1;
		hlen = (size_t)(close - host);
		if (close + 1 < end) {
			if (close[1] != ':')
				goto bad_host;
			colon = close + 1;
		}
	} else {
		host = auth;
		colon = memchr(auth, ':', (size_t)(end - auth));
		hlen = (size_t)((colon ? colon : end) - host);
	}
	if (!hlen || hlen >= sizeof(u->host))
		goto bad_host;
	memcpy(u->host, host, hlen);
	if (colon) {
		if (parse_port(colon + 1, (size_t)(end - colon - 1),
			       &u->port)) {
			snprintf(err, errlen, "'%s': bad port '%.*s'", text,
				 (int)(end - colon - 1), colon + 1);
			return -1;
		}
	} else {
		u->port = u->tls ? 443 : 80;
	}

	if (*path == '#')
		path = "";
	if (strlen(path) + sizeof("/connect") > sizeof(u->ws_path)) {
		snprintf(err, errlen, "'%s': path too long", text);
		return -1;
	}
	/* the base: the path without query, trailing '/', /connect, /health */
	blen = strcspn(path, "?#");
	while (blen && path[blen - 1] == '/')
		blen--;
	if (ends_with_segment(path, blen, "/connect"))
		blen -= strlen("/connect");
	else if (ends_with_segment(path, blen, "/health"))
		blen -= strlen("/health");
	snprintf(u->health_path, sizeof(u->health_path), "%.*s/health",
		 (int)blen, path);
	if (ws && *path && strcmp(path, "/") && *path != '?')
		snprintf(u->ws_path, sizeof(u->ws_path), "%.*s",
			 (int)strcspn(path, "#"), path);
	else
		snprintf(u->ws_path, sizeof(u->ws_path), "%.*s/connect",
			 (int)blen, path);
	return 0;

bad_host:
	snprintf(err, errlen, "'%s': bad host", text);
	return -1;
}
