/*
 * node/static: GET and HEAD for files — the [web] root at / (default: the
 * repo's web/, the demo chat) and the client library embedded at build
 * time at /lib/wsrelay.js and /lib/wsrelay.d.ts. A file is served only
 * when its realpath lies under the root's realpath; it is streamed from
 * disk in 16 KiB chunks as the socket drains (httpout.c: a slow reader
 * gets the whole file, an unread one costs no memory). No directory
 * listings, no dotfiles, no special files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"

/* HTTP/2's default SETTINGS_MAX_FRAME_SIZE, the most every peer takes */
#define H2_FRAME ((size_t)16384)

/* generated/jslib.c, written by CMakeLists.txt from clients/js/ */
extern const unsigned char node_static_lib_js[], node_static_lib_d_ts[];
extern const size_t node_static_lib_js_len, node_static_lib_d_ts_len;

/* Also declared in http.c, its only caller. Answers a GET (or HEAD) of
 * @uri (lws's decoded path, no query) with a file or 404; lws's 0 / -1. */
int node_static_request(struct node *node, struct lws *wsi, const char *uri,
			bool head);

static const struct {
	const char *ext, *type;
} types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "json", "application/json" },
	{ "map", "application/json" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "ico", "image/x-icon" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "woff2", "font/woff2" },
};

static const char *type_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot && !strchr(dot, '/'))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcasecmp(dot + 1, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}

/*
 * The body at @buf + LWS_PRE, all queued now: lws keeps what the socket
 * does not take and drains it as the socket allows. Over HTTP/1 that is
 * one write. Over HTTP/2 (TLS with ALPN) lws refuses a DATA frame over
 * the default 16 KiB frame size, so the body goes as a train of frames;
 * and as nothing here waits for WINDOW_UPDATE, a body bigger than the
 * peer's flow-control window is refused (browsers open windows of
 * megabytes; the default is 64 KiB). Returns 0 or -1 (hang up).
 */
int node_http_body(struct lws *wsi, unsigned char *buf, size_t len)
{
	lws_fileofs_t credit = lws_get_peer_write_allowance(wsi);
	size_t off = 0, n;

	if (credit < 0)
		return lws_write(wsi, buf + LWS_PRE, len,
				 LWS_WRITE_HTTP_FINAL) == (int)len
			       ? 0
			       : -1;
	if ((uintmax_t)credit < len) {
		wr_warn("static: HTTP/2 peer window %lld is under the %zu bytes to send",
			(long long)credit, len);
		return -1;
	}
	while (off < len) {
		n = len - off < H2_FRAME ? len - off : H2_FRAME;
		/* lws_write wants LWS_PRE bytes it may use before the data:
		 * the previous frame's tail, already copied out by lws */
		if (lws_write(wsi, buf + LWS_PRE + off, n,
			      off + n == len ? LWS_WRITE_HTTP_FINAL
					     : LWS_WRITE_HTTP) != (int)n)
			return -1;
		off += n;
	}
	return 0;
}

/*
 * Status, headers and, unless @head, the @len bytes at @buf + LWS_PRE
 * (@buf has LWS_PRE bytes of headroom for lws). @cors: the library may be
 * imported by pages of another origin.
 */
static int respond(struct lws *wsi, unsigned status, const char *ctype,
		   unsigned char *buf, size_t len, bool head, bool cors)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;

	if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-cache", 8,
					 &p, end) ||
	    lws_add_http_header_by_name(wsi,
					(const unsigned char
						 *)"x-content-type-options:",
					(const unsigned char *)"nosniff", 7, &p,
					end) ||
	    (cors && lws_add_http_header_by_token(
			     wsi, WSI_TOKEN_HTTP_ACCESS_CONTROL_ALLOW_ORIGIN,
			     (const unsigned char *)"*", 1, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (!head && len && node_http_body(wsi, buf, len))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int not_found(struct lws *wsi, bool head)
{
	static const char msg[] = "not found\n";
	unsigned char buf[LWS_PRE + sizeof(msg)];

	memcpy(buf + LWS_PRE, msg, sizeof(msg) - 1);
	return respond(wsi, 404, "text/plain; charset=utf-8", buf,
		       sizeof(msg) - 1, head, false);
}

/* The embedded library: NULL when @uri is not one of its files. */
static const unsigned char *lib_file(const char *uri, size_t *len,
				     const char **ctype)
{
	if (!strcmp(uri, "/lib/wsrelay.js")) {
		*len = node_static_lib_js_len;
		*ctype = "text/javascript; charset=utf-8";
		return node_static_lib_js;
	}
	if (!strcmp(uri, "/lib/wsrelay.d.ts")) {
		*len = node_static_lib_d_ts_len;
		*ctype = "text/plain; charset=utf-8";
		return node_static_lib_d_ts;
	}
	return NULL;
}

static int serve_lib(struct lws *wsi, const unsigned char *data, size_t len,
		     const char *ctype, bool head)
{
	unsigned char *buf = malloc(LWS_PRE + len + 1);
	int rc;

	if (!buf)
		return -1;
	memcpy(buf + LWS_PRE, data, len);
	rc = respond(wsi, 200, ctype, buf, len, head, true);
	free(buf);
	return rc;
}

/*
 * @uri as a path relative to the root, in @out ("/" ends as
 * "/index.html"). lws has already decoded %xx once and folded "/./" and
 * "/../" into the path; a '%' left is a literal one (decoding again would
 * make "%252e" a dot). What remains is refused outright: a control
 * character, a backslash, or any segment that starts with '.' (".", "..",
 * dotfiles). Returns false when refused.
 */
static bool clean_path(const char *uri, char *out, size_t size)
{
	size_t n = strlen(uri);

	if (uri[0] != '/' || n + sizeof("index.html") > size)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)uri[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			return false;
		if (c == '.' && uri[i - 1] == '/')
			return false;
	}
	memcpy(out, uri, n + 1);
	if (out[n - 1] == '/')
		memcpy(out + n, "index.html", sizeof("index.html"));
	return true;
}

/* Opens the regular file @path: its descriptor (*pfd, the caller's) and
 * size. Returns 0, or 404 to answer instead. */
static unsigned open_file(const char *path, int *pfd, size_t *plen)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0)
		return 404;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return 404;
	}
	*pfd = fd;
	*plen = (size_t)st.st_size;
	return 0;
}

/* Status 200, the headers for @len bytes of @ctype, and the file @fd
 * streamed from disk as the socket drains (httpout.c); @head: the headers
 * alone. */
static int serve_file(struct lws *wsi, int fd, size_t len, const char *ctype,
		      bool head)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;
	struct node_pss *pss = lws_wsi_user(wsi);

	if (lws_add_http_common_headers(wsi, 200, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-cache", 8,
					 &p, end) ||
	    lws_add_http_header_by_name(wsi,
					(const unsigned char
						 *)"x-content-type-options:",
					(const unsigned char *)"nosniff", 7, &p,
					end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end) || !pss) {
		close(fd);
		return -1;
	}
	if (head) {
		close(fd);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	return node_http_out_start(wsi, &pss->http, NULL, fd, len);
}

int node_static_request(struct node *node, struct lws *wsi, const char *uri,
			bool head)
{
	char rel[PATH_MAX], root[PATH_MAX], joined[PATH_MAX], full[PATH_MAX];
	const unsigned char *lib;
	const char *ctype;
	size_t len, rlen;
	unsigned status;
	int rc, fd;

	/* lws decoded "%00" into the path: @uri ends early, at the NUL */
	if ((size_t)lws_hdr_total_length(wsi, head ? WSI_TOKEN_HEAD_URI
						   : WSI_TOKEN_GET_URI) !=
	    strlen(uri))
		return not_found(wsi, head);
	/* the network overview's page has a short name too */
	if (!strcmp(uri, "/overview"))
		uri = "/overview.html";
	lib = lib_file(uri, &len, &ctype);
	if (lib)
		return serve_lib(wsi, lib, len, ctype, head);
	if (!node->cfg->web_root || !clean_path(uri, rel, sizeof(rel)) ||
	    !realpath(node->cfg->web_root, root))
		return not_found(wsi, head);
	rc = snprintf(joined, sizeof(joined), "%s%s", root, rel);
	if (rc < 0 || (size_t)rc >= sizeof(joined) || !realpath(joined, full))
		return not_found(wsi, head);
	/* symlinks resolved: the file must still be inside the root */
	rlen = strlen(root);
	if (strncmp(full, root, rlen) || (full[rlen] != '/' && rlen > 1))
		return not_found(wsi, head);
	status = open_file(full, &fd, &len);
	if (status)
		return not_found(wsi, head);
	/* the name asked for gives the type, as a link's target may not */
	return serve_file(wsi, fd, len, type_of(rel), head);
}
