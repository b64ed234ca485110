/*
 * node/http: the plain HTTP side of the one port — GET /health, GET
 * /metrics, GET /api/node, files (node/static.c) for every other GET or
 * HEAD — and the admission check every
 * WebSocket upgrade passes before lws completes it (unknown path 404,
 * /connect over max_clients or while stopping 503, /node without a known
 * token 403). Bodies are small and written at once; lws buffers the rest.
 */
#include <string.h>
#include <strings.h>

#include <sys/socket.h>

#include <openssl/crypto.h>

#include "node.h"

/* The headers of a response whose body (@len bytes) is not sent: HEAD. */
static int send_head(struct lws *wsi, unsigned status, const char *ctype,
		     size_t len)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;

	if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8,
					 &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int send_body(struct lws *wsi, unsigned status, const char *ctype,
		     const char *body, size_t len)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;
	unsigned char *out;
	int rc = -1;

	if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8,
					 &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	out = malloc(LWS_PRE + len + 1);
	if (!out)
		return -1;
	memcpy(out + LWS_PRE, body, len);
	/* in HTTP/2 frames when it is HTTP/2 (TLS): /api/overview is big */
	if (!node_http_body(wsi, out, len))
		rc = lws_http_transaction_completed(wsi) ? -1 : 0;
	free(out);
	return rc;
}

/*
 * A big JSON answer (/api/node, /api/overview) as a shared buffer streamed
 * to each asker (httpout.c): 200 slow readers hold one copy, not 200.
 * One that took NODE_API_SLOW_MS or more to build (thousands of channels)
 * is reused for up to NODE_API_REUSE_MS, so askers in a loop cannot keep
 * the event loop building it; a cheap one is built fresh each time.
 */
#define NODE_API_SLOW_MS 2
#define NODE_API_REUSE_MS 1000

/* 0 with the body in @b; 1 when it answered @wsi itself; -1 */
typedef int (*api_build_fn)(struct node *node, struct lws *wsi,
			    struct wr_buf *b);

static int serve_api(struct node *node, struct lws *wsi,
		     struct node_api_cache *c, api_build_fn build)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;
	struct node_pss *pss = lws_wsi_user(wsi);
	int64_t now = wr_now_ms();
	struct wr_msg *m = c->body;

	if (!pss)
		return -1;
	if (!m || now - c->built_ms >= NODE_API_REUSE_MS) {
		struct wr_buf *b = &node->scratch;
		int rc;

		wr_buf_reset(b);
		rc = build(node, wsi, b);
		if (rc > 0) /* an answer of its own (404) */
			return 0;
		if (rc || b->oom || !(m = wr_msg_create(b->len)))
			return -1;
		memcpy(m->data, b->p, b->len);
		if (c->body)
			wr_msg_unref(&c->body);
		c->body = NULL;
		if (wr_now_ms() - now >= NODE_API_SLOW_MS) {
			c->body = wr_msg_ref(m);
			c->built_ms = wr_now_ms();
		}
	} else {
		wr_msg_ref(m);
	}
	if (lws_add_http_common_headers(wsi, 200, "application/json", m->len,
					&p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8,
					 &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end)) {
		wr_msg_unref(&m);
		return -1;
	}
	return node_http_out_start(wsi, &pss->http, m, -1, m->len);
}

static int build_node_view(struct node *node, struct lws *wsi, struct wr_buf *b)
{
	(void)wsi;
	cJSON *root = cJSON_CreateObject(), *chans;
	char *txt;

	if (!root)
		return -1;
	mesh_api_json(node->mesh, root);
	chans = cJSON_AddArrayToObject(root, "channels");
	if (chans)
		flow_chan_view_json(node->flows, chans);
	txt = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!txt)
		return -1;
	wr_buf_puts(b, txt);
	free(txt);
	wr_buf_puts(b, "\n");
	return 0;
}

static int send_body(struct lws *wsi, unsigned status, const char *ctype,
		     const char *body, size_t len);

/* Not the master: 404, answered here. */
static int build_overview(struct node *node, struct lws *wsi, struct wr_buf *b)
{
	int rc = flow_master_api_json(node->flows, b);

	if (rc == WR_ENOENT) {
		static const char msg[] =
			"{\"error\":\"not the master: ask the node with [node] master = true\"}\n";
		return send_body(wsi, 404, "application/json", msg,
				 sizeof(msg) - 1)
			       ? -1
			       : 1;
	}
	wr_buf_puts(b, "\n");
	return rc;
}

#define HEALTH_PEERS_MAX 64

/* Linked peers with their latency, for /health and /metrics. */
static unsigned peers_of(struct node *node, struct health_peer *out)
{
	unsigned n = 0;

	for (struct node_peer *p = node_peers_first(node);
	     p && n < HEALTH_PEERS_MAX; p = node_peer_next(p))
		if (p->up)
			out[n++] = (struct health_peer){ p->ml.name, true,
							 p->ml.latency_ms };
	return n;
}

/* @peers: room for HEALTH_PEERS_MAX, referenced by @g */
static void gauges(struct node *node, struct health_gauges *g,
		   struct health_peer *peers)
{
	struct chan_registry_stats st;
	unsigned reserved = 0;

	chan_registry_stats(node->reg, &st);
	memset(g, 0, sizeof(*g));
	g->peers = peers;
	g->npeers = peers_of(node, peers);
	g->nodes_known = 0;
	for (size_t i = 1;
	     node->mesh && i < inm_view_count(mesh_view(node->mesh)); i++)
		g->nodes_known +=
			mesh_alive(node->mesh,
				   inm_view_at(mesh_view(node->mesh), i)->name);
	/* entries this node does not hold: open elsewhere only */
	if (node->flows) {
		unsigned total = chan_resv_count(flows_resv(node->flows));

		reserved = total > st.channels ? total - st.channels : 0;
	}
	g->channels_reserved = reserved;
	g->clients = node->clients.count;
	g->channels_active = st.channels;
	g->subscriptions = st.subscriptions;
	g->peers_configured = (unsigned)node->cfg->npeers;
	g->peers_up = node->npeers_up;
	g->pw_jobs_pending = node->pw_pending;
	{
		struct chan_hist *h = chan_registry_hist(node->reg);

		chan_hist_expire(h, wr_now_ms());
		g->history_entries = h->entries;
		g->history_bytes = h->bytes;
	}
	g->uptime_seconds = (double)(wr_now_ms() - node->started_ms) / 1000.0;
	node->ctr.presence_events = chan_presence_events(node->reg);
	if (node->flows)
		flow_presence_counts(node->flows, &node->ctr.presence_queries,
				     &node->ctr.presence_partial,
				     &node->ctr.presence_polls);
}

void node_http_health(struct node *node, struct health_result *r)
{
	struct chan_registry_stats st;
	struct health_input in = { 0 };
	struct health_peer peers[HEALTH_PEERS_MAX];

	in.peers = peers;
	in.npeers = peers_of(node, peers);
	chan_registry_stats(node->reg, &st);
	in.active_channels = st.channels;
	in.clients = node->clients.count;
	in.peers_configured = (unsigned)node->cfg->npeers;
	in.max_latency_ms = node->cfg->max_latency_ms;
	in.draining = node->draining;
	health_eval(&in, r);
}

/* The node's own paths: never looked up as files. */
static bool is_endpoint(const char *uri)
{
	static const char *const paths[] = { "/health",   "/metrics",
					     "/api/node", "/api/overview",
					     "/connect",  "/node" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (!strcmp(uri, paths[i]))
			return true;
	return false;
}

/*
 * Request headers above NODE_HEADERS_MAX bytes (the values lws parsed,
 * summed) are refused 431 (issue 10: a 4,000-byte Cookie is served). lws
 * reads up to its own buffer (server.c: twice this); a request beyond that
 * is closed by lws while parsing, before any callback could answer.
 */
static bool headers_too_large(struct node *node, struct lws *wsi)
{
	size_t total = 0;

	for (int i = 0; i < (int)WSI_TOKEN_COUNT; i++) {
		int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)i);

		if (n > 0)
			total += (size_t)n;
	}
	if (total <= NODE_HEADERS_MAX)
		return false;
	node->ctr.refused_headers++;
	return true;
}

/* The paths [web] admin_token_file guards: what a node tells about
 * itself and the mesh. /health stays open (load balancers). */
static bool is_admin(const char *uri)
{
	return !strncmp(uri, "/api/", 5) || !strcmp(uri, "/metrics");
}

/* An "Authorization: Bearer TOKEN" with the admin token (constant time
 * over the token's length). */
static bool admin_ok(struct node *node, struct lws *wsi)
{
	char h[8 + 4096 + 2];
	const char *tok = node->cfg->admin_token;
	size_t tl = node->cfg->admin_token_len;
	int n;

	if (!tok)
		return true;
	n = lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n < 7 || strncasecmp(h, "Bearer ", 7))
		return false;
	return (size_t)(n - 7) == tl && !CRYPTO_memcmp(h + 7, tok, tl);
}

int node_http_request(struct node *node, struct lws *wsi, const char *uri)
{
	static const char not_allowed[] = "method not allowed\n";
	struct wr_buf *b = &node->scratch;

	if (headers_too_large(node, wsi))
		return node_http_refuse(wsi, 431, NULL);
	if (is_admin(uri) && !admin_ok(node, wsi)) {
		node->ctr.refused_admin++;
		return node_http_refuse(
			wsi, 401, "WWW-Authenticate: Bearer realm=\"wsrelay\"");
	}
	if (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) {
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) &&
		    !is_endpoint(uri))
			return node_static_request(node, wsi, uri, true);
		/* HEAD /health: a load balancer's check, the status alone */
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) &&
		    !strcmp(uri, "/health")) {
			struct health_result r;

			node_http_health(node, &r);
			wr_buf_reset(b);
			health_json(b, &r, node->cfg->name);
			wr_buf_puts(b, "\n");
			if (b->oom)
				return -1;
			return send_head(wsi,
					 (unsigned)health_http_status(r.state),
					 "application/json", b->len);
		}
		return send_body(wsi, 405, "text/plain", not_allowed,
				 sizeof(not_allowed) - 1);
	}
	if (!is_endpoint(uri))
		return node_static_request(node, wsi, uri, false);
	wr_buf_reset(b);
	if (!strcmp(uri, "/health")) {
		struct health_result r;

		node_http_health(node, &r);
		health_json(b, &r, node->cfg->name);
		wr_buf_puts(b, "\n");
		if (b->oom)
			return -1;
		return send_body(wsi, (unsigned)health_http_status(r.state),
				 "application/json", b->p, b->len);
	}
	if (!strcmp(uri, "/api/overview")) {
		return serve_api(node, wsi, &node->api_overview,
				 build_overview);
	}
	if (!strcmp(uri, "/api/node"))
		return serve_api(node, wsi, &node->api_node, build_node_view);
	if (!strcmp(uri, "/metrics")) {
		struct health_gauges g;
		struct health_peer peers[HEALTH_PEERS_MAX];

		gauges(node, &g, peers);
		metrics_render(b, &node->ctr, &g, node->cfg->name);
		if (b->oom)
			return -1;
		return send_body(wsi, 200, "text/plain; version=0.0.4", b->p,
				 b->len);
	}
	{
		static const char msg[] = "not found\n";

		return send_body(wsi, 404, "text/plain", msg, sizeof(msg) - 1);
	}
}

static const char *reason_phrase(unsigned status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	}
	return "Error";
}

/*
 * Refuses an upgrade with a complete HTTP/1.1 response that standard
 * WebSocket clients report as @status (PROTOCOL.md 7.2). lws's own
 * lws_return_http_status() takes the version from a request field that is
 * not parsed yet when an upgrade is refused, so it answers "HTTP/1.0",
 * which Python's websockets cannot parse: over HTTP/1 the response is
 * written here, whole, with Content-Length and "Connection: close"
 * (@extra: one more header line without CRLF, or NULL). HTTP/2 carries
 * the status in its own frame: lws's answer is right there.
 */
int node_http_refuse(struct lws *wsi, unsigned status, const char *extra)
{
	unsigned char buf[LWS_PRE + 512];
	char *start = (char *)buf + LWS_PRE;
	const char *phrase = reason_phrase(status);
	int n;

	if (lws_get_network_wsi(wsi) != wsi) { /* an HTTP/2 stream */
		lws_return_http_status(wsi, status, NULL);
		return 1;
	}
	n = lws_snprintf(start, sizeof(buf) - LWS_PRE,
			 "HTTP/1.1 %u %s\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "%s%s"
			 "Connection: close\r\n"
			 "\r\n"
			 "%u %s\n",
			 status, phrase, strlen(phrase) + 5, extra ? extra : "",
			 extra ? "\r\n" : "", status, phrase);
	lws_write(wsi, (unsigned char *)start, (size_t)n, LWS_WRITE_HTTP);
	return 1; /* lws: we answered, do not upgrade; it closes */
}

static int refuse(struct lws *wsi, unsigned status)
{
	return node_http_refuse(wsi, status, NULL);
}

int node_wsi_peer_addr(struct lws *wsi, struct wr_addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = (int)lws_get_socket_fd(wsi);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len))
		return WR_EINVAL;
	return wr_addr_from_sockaddr(&ss, len, out);
}

/* [web] allowed_origins (7.2): an Origin header, when present, must be
 * listed (browsers send it; other clients need not). */
static bool origin_allowed(struct node *node, struct lws *wsi)
{
	const struct config_strs *l = &node->cfg->allowed_origins;
	char origin[256];
	int n;

	if (!l->n || lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
		return true;
	n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	if (n <= 0)
		return false; /* longer than any origin we could list */
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(origin, l->v[i]))
			return true;
	return false;
}

/* One refused /connect upgrade, logged with the address and counted. */
static int refuse_client(struct lws *wsi, unsigned status, uint64_t *counter,
			 const char *why)
{
	char a[64];
	struct wr_log_field f[] = {
		WR_LF_STR("addr", node_wsi_addr(wsi, a, sizeof(a))),
		WR_LF_NUM("status", status),
	};

	(*counter)++;
	wr_log_fields(WR_LOG_INFO, f, 2, "client refused: %s", why);
	return refuse(wsi, status);
}

int node_http_confirm_upgrade(struct node *node, struct lws *wsi)
{
	char uri[256], ver[8];

	if (headers_too_large(node, wsi))
		return refuse(wsi, 431);
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0)
		return refuse(wsi, 400);
	/* RFC 6455 4.4: only version 13; say which (lws takes 8 too) */
	if (lws_hdr_copy(wsi, ver, sizeof(ver), WSI_TOKEN_VERSION) <= 0 ||
	    strcmp(ver, "13")) {
		node->ctr.refused_version++;
		return node_http_refuse(wsi, 426, "Sec-WebSocket-Version: 13");
	}
	if (!strcmp(uri, "/connect")) {
		struct wr_addr addr;

		if (node->stopping || node->draining)
			return refuse(wsi, 503);
		if (!origin_allowed(node, wsi))
			return refuse_client(wsi, 403,
					     &node->ctr.refused_origin,
					     "Origin not in [web] allowed_origins");
		if (!node_wsi_peer_addr(wsi, &addr) &&
		    wr_addrtab_count(node->per_ip, &addr) >=
			    (unsigned)node->cfg->max_clients_per_ip)
			return refuse_client(wsi, 429,
					     &node->ctr.refused_per_ip,
					     "max_clients_per_ip reached");
		if (node->clients.count >= (unsigned)node->max_clients) {
			node->ctr.connections_rejected++;
			char a[64];
			struct wr_log_field f[] = {
				WR_LF_STR("addr",
					  node_wsi_addr(wsi, a, sizeof(a))),
				WR_LF_NUM("status", 503),
			};

			wr_log_fields(WR_LOG_WARN, f, 2,
				      "client refused: max_clients (%d) reached",
				      node->max_clients);
			return refuse(wsi, 503);
		}
		return 0;
	}
	if (!strcmp(uri, "/node")) {
		struct wr_addr addr;
		bool known = !node_wsi_peer_addr(wsi, &addr);
		int64_t now = wr_now_ms();

		if (node->stopping)
			return refuse(wsi, 503);
		/* guarded like a login: 10 wrong tokens in 10 s from one
		 * address, then 429 for 60 s, the right token included */
		if (known && wr_addrfail_blocked(node->node_fails, &addr, now))
			return refuse_client(wsi, 429,
					     &node->ctr.node_auth_blocked,
					     "/node: too many wrong tokens");
		if (!node_peer_token_ok(node, wsi)) {
			if (known)
				wr_addrfail_note(node->node_fails, &addr, now);
			return refuse_client(wsi, 403,
					     &node->ctr.node_auth_failures,
					     "/node: unknown token");
		}
		return 0;
	}
	return refuse(wsi, 404);
}
