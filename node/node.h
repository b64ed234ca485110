/*
 * node: the process — the lws context and its one protocol handler that
 * serves /connect, /node, /health and /metrics on one port. This header is
 * internal to node/: the state every node/ file shares. All of it lives on
 * the event loop thread and hangs off lws_context_user().
 */
#ifndef NODE_NODE_H
#define NODE_NODE_H

#include <uv.h>
#include <libwebsockets.h>

#include "auth.h"
#include "channels.h"
#include "config.h"
#include "flows.h"
#include "health.h"
#include "inm.h"
#include "mesh.h"
#include "reserve.h"
#include "wr.h"

/* Request headers above this (summed values) are answered 431 (http.c). */
#define NODE_HEADERS_MAX 8192

/* Coalesced writes: up to this many bytes of queued frames per WRITEABLE. */
#define NODE_WRITE_COALESCE (64 * 1024)

/* rx.c — one WebSocket message reassembled from lws's chunks */
struct node_rx {
	char *buf;
	size_t len, cap;
	bool active; /* inside a message */
};
enum node_rx_result {
	NODE_RX_MORE,      /* wait for the next chunk */
	NODE_RX_DONE,      /* *msg, *mlen: the whole message */
	NODE_RX_BINARY,    /* a binary frame: close 1003 */
	NODE_RX_TOO_LARGE, /* over @limit: close 1009 */
	NODE_RX_NOMEM,
};
/* Adds the chunk @in; on NODE_RX_DONE *msg is @in itself (one-chunk
 * message) or rx->buf, valid until the next call. */
enum node_rx_result node_rx_add(struct node_rx *rx, struct lws *wsi,
				const void *in, size_t len, size_t limit,
				const char **msg, size_t *mlen);
/* After a NODE_RX_DONE message is handled: drops a big buffer. */
void node_rx_handled(struct node_rx *rx);
void node_rx_fini(struct node_rx *rx);

struct node_client;
struct node_peer;
struct node_dial;

/* The node's one-shot dials (link.c): remote connection and healing. */
struct node_dials_once {
	struct node_dial *head;
	unsigned count;
};

struct node_reload;

/* A big /api answer kept for reuse (http.c). */
struct node_api_cache {
	struct wr_msg *body;
	int64_t built_ms;
};

struct node {
	struct config *cfg; /* the caller's; a reload updates it in place */
	struct lws_context *ctx;
	struct lws_vhost *vh;
	int port; /* the port actually bound */
	bool tls;

	struct chan_registry *reg;
	/* [auth] keys (auth/), owned; a reload builds a new object and frees
	 * this one: no login points into it */
	struct auth_keys *auth;
	struct chan_pw_worker *pw;
	struct chan_pw_cache *pwcache;
	uint64_t pw_pending;
	/* clients paused for a PBKDF2 job: watched for hang-ups, which a
	 * paused socket does not report (client.c) */
	struct node_client **pw_waiting;
	unsigned npw_waiting;

	lws_dll2_owner_t clients; /* every /connect session (node_client.list) */
	struct wr_addrtab *per_ip;    /* open /connect sessions per address */
	struct node_pending *pending; /* sockets before their headers */
	/* failures per address: wrong passwords (5 per 10 s, like a
	 * connection's), wrong /node tokens (10 per 10 s, then 429 60 s) */
	struct wr_addrfail *pw_fails, *node_fails;
	/* password jobs queued or running, per address (client.c) */
	struct wr_addrtab *pw_jobs;
#define NODE_PW_QUEUE_MAX 256    /* jobs in the worker's queue, in all */
#define NODE_PW_QUEUE_PER_ADDR 8 /* from one address */
	struct node_resv_wait *resv_waits; /* reservations subscribes wait on */
	struct node_pres_ask *pres_asks;   /* presence commands in flight */
	struct node_api_cache api_node, api_overview; /* http.c */
	/* fds.c: the descriptor limit */
	int fd_limit, spare_fd, listen_fd;
	int max_clients; /* [limits] max_clients, held under fd_limit */
	/* WebSocket connections not yet destroyed by lws: a client leaves
	 * node->clients at CLOSED, but its close frame may still be on its
	 * way out until WSI_DESTROY; shutdown waits for this to reach 0 */
	unsigned live_ws;

	lws_dll2_owner_t peers;      /* every /node session (node_peer.list) */
	struct node_dial *dials;     /* one per [[peers]] entry (a list) */
	struct node_dials_once once; /* one-shot dials (link.c) */
	unsigned npeers_up;          /* handshaken */

	struct health_counters ctr;
	int64_t started_ms;
	struct mesh *mesh;               /* the mesh engine (mesh/) */
	struct flows *flows;             /* channel state, flows (flows/) */
	lws_sorted_usec_list_t tick_sul; /* the mesh and flows tick */
	bool ticking;
	bool tick_soon; /* re-armed to the fast grid already */
	char url[256];  /* advertised /node url, "" if none */

	struct wr_buf scratch; /* JSON building, reused */
	unsigned char *wbuf;   /* LWS_PRE + NODE_WRITE_COALESCE */

	/* clients whose queue went non-empty during this loop pass: written
	 * once, coalesced, by the uv check hook that runs after the pass */
	lws_dll2_owner_t flush; /* node_client.flush_list */
	/* clients and links that sent us data this pass: while one of them
	 * has more bytes waiting, the flush waits a pass (bounded) so that a
	 * burst of sends leaves as one coalesced write per subscriber and
	 * per link */
#define NODE_MAX_READERS 16
#define NODE_MAX_DEFER_PASSES 32
	struct lws *readers[NODE_MAX_READERS]; /* clients and node links */
	unsigned nreaders;
	unsigned deferred;
	uint64_t pass;
	uv_loop_t loop;         /* ours; lws runs on it (foreign loop) */
	void *foreign_loops[1]; /* &loop, for lws's creation info */
	bool loop_open, sigpoll_open;
	uv_check_t flush_check;
	uv_timer_t keepalive; /* one sweep per client_ping_interval_ms */
	int sigfd;            /* signalfd of SIGTERM, SIGINT and SIGUSR2 */
	uv_poll_t sigpoll;

	bool stopping;
	int64_t stop_deadline_ms;
	uv_timer_t stop_timer; /* the stop's and the drain's ticks */

	/* lame-duck drain (SIGUSR2): new clients refused, the ones there
	 * closed with 1012 spread over cfg->drain_ms, then the stop */
	bool draining;
	int64_t drain_start_ms;
	unsigned drain_total;  /* clients when it began */
	unsigned drain_closed; /* asked to close so far */

	/* SIGHUP (reload.c): the file is read and checked off the loop */
	struct node_reload *reload; /* in flight */
	bool reload_again;          /* another SIGHUP came meanwhile */
	void *server_ssl_ctx;       /* the listener's SSL_CTX (TLS nodes) */
};

struct node_client {
	struct chan_client cc; /* registry view: queue, subscriptions */
	struct node *node;
	struct lws *wsi;
	lws_dll2_t list; /* node->clients */

	/* wrong passwords of this connection: allocated at the first one
	 * (an idle connection costs the pointer, issue 10 memory) */
	struct chan_pw_rate *rate;
	struct chan_pw_job *job; /* in flight; rx is paused meanwhile */
	/* a subscribe answered once the mesh acknowledged the channel's
	 * reservation; rx is paused meanwhile (client.c) */
	struct node_sub_wait *wait;
	/* a recovering subscribe (7.3) waiting for its PBKDF2 job */
	struct node_recover *pw_rec;

	struct node_rx rx;
	struct wr_bucket sends; /* [limits] messages_per_second (7.2) */
	struct wr_addr addr;    /* counted in node->per_ip while addr_set */
	bool addr_set;
	bool peer_closing; /* the client sent a close frame */
	int close_code;    /* non-zero: close on next WRITEABLE */
	const char *close_reason;
	/* the login (7.1), allocated by a successful auth only: an anonymous
	 * client costs this pointer, which fills what was padding. Its
	 * deadlines (auth timeout, exp + 30 s) use the wsi's own lws timer */
	struct auth_grant *grant;

	lws_dll2_t flush_list; /* node->flush, while queued */
	uint64_t read_pass;    /* last loop pass it was a reader in */
	int64_t last_rx_ms;    /* any frame or pong from the client */
	int64_t ping_sent_ms;  /* 0: no ping outstanding */
};

/*
 * One /node link, accepted or dialled (link.c). It authenticates,
 * handshakes, frames and decodes; what it carries belongs to the mesh
 * engine, which sees it as the embedded struct mesh_link.
 */
struct node_peer {
	struct node *node;
	struct lws *wsi;
	lws_dll2_t list;        /* node->peers */
	struct node_dial *dial; /* outbound: the [[peers]] entry; else NULL */
	struct mesh_link ml;    /* name and url set at the handshake */
	bool up;                /* handshaken, in the mesh */
	struct node_rx rx;
	struct node_peer_out *out_head, *out_tail; /* frames to write */
	int64_t bad_window_ms; /* malformed packets: window start */
	unsigned bad_count;
	int close_code;
	const char *close_reason;
	uint64_t read_pass;   /* last loop pass it was a reader in */
	int64_t ping_sent_us; /* 0: no ping outstanding */
	bool ping_due;
	bool flush_due; /* packets queued this pass: node_peers_flush */
	/* masking keys for a dialled link, drawn NODE_MASK_POOL bytes at a time
	 * (randombytes_buf is one getrandom syscall per call) */
#define NODE_MASK_POOL 256
	unsigned char mask_pool[NODE_MASK_POOL];
	unsigned mask_left; /* bytes of mask_pool not handed out */
	bool one_time;      /* accepted with a one-time token */
	char token[INM_TOKEN_LEN + 1];
};

/* Walking node->clients and node->peers (lws_dll2 lists). */
static inline struct node_client *node_client_of(struct lws_dll2 *d)
{
	return d ? lws_container_of(d, struct node_client, list) : NULL;
}
static inline struct node_client *node_clients_first(struct node *node)
{
	return node_client_of(lws_dll2_get_head(&node->clients));
}
static inline struct node_client *node_client_next(struct node_client *cl)
{
	return node_client_of(cl->list.next);
}
static inline struct node_peer *node_peer_of(struct lws_dll2 *d)
{
	return d ? lws_container_of(d, struct node_peer, list) : NULL;
}
static inline struct node_peer *node_peers_first(struct node *node)
{
	return node_peer_of(lws_dll2_get_head(&node->peers));
}
static inline struct node_peer *node_peer_next(struct node_peer *p)
{
	return node_peer_of(p->list.next);
}

/* per-session data lws allocates for every connection of our protocol */
/* A response body being streamed (httpout.c), in an HTTP session's pss. */
struct node_http_out {
	struct wr_msg *body; /* a shared buffer, or NULL for a file */
	int fd;
	bool file, active;
	size_t off, len;
};

struct node_pss {
	struct node_client *client; /* &storage while a /connect session */
	struct node_peer *peer;
	bool counted; /* in node->live_ws until WSI_DESTROY */
	/* the client itself lives in lws's per-session allocation: one
	 * allocation per connection less (issue 10, memory per idle
	 * connection); lws frees it after LWS_CALLBACK_CLOSED */
	union {
		struct node_client storage;
		struct node_http_out http; /* a plain HTTP session's */
	};
};

/* server.c: runs the node until it stops; @cfg is updated in place by
 * reloads (still the caller's to free); takes @keys (auth_keys_destroy),
 * NULL or not */
int node_run(struct config *cfg, struct auth_keys *keys);

/* auth.c — the [auth] keys of @cfg (auth_keys_load() with the lines the
 * config recorded); same contract as auth_keys_load(); any thread */
int node_auth_keys(const struct config *cfg, struct auth_keys **out, char *err,
		   size_t errlen);

/* reload.c — SIGHUP: reads the config file again on a worker thread, then
 * applies what may change without a restart (config_reload_merge) */
void node_reload_request(struct node *node);
/* The listener's TLS context, from LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_
 * VERIFY_CERTS: a reload puts a renewed certificate into it. */
void node_reload_tls_ctx(struct node *node, void *ssl_ctx);

/* lwsmem.c — lws's allocator: per-connection objects from slabs; once,
 * before the first lws context */
void node_lwsmem_install(void);

/* client.c — /connect sessions */
int node_client_open(struct node *node, struct lws *wsi, struct node_pss *pss);
/* From the tick: paused clients (PBKDF2) that hung up are closed. */
void node_client_pw_watch(struct node *node);
void node_client_close(struct node *node, struct node_pss *pss);
int node_client_receive(struct node *node, struct node_client *cl,
			const void *in, size_t len);
int node_client_writeable(struct node *node, struct node_client *cl);
/* LWS_CALLBACK_TIMER on a /connect session: its auth deadline or its
 * token's exp + 30 s came (7.1, 7.5.1) */
void node_client_timer(struct node *node, struct node_client *cl);
void node_client_pw_done(struct node *node);
/* Pings clients silent for an interval, drops those that did not answer
 * the previous ping. */
void node_client_keepalive(struct node *node);
/* @wsi got input this pass: while it has more waiting, the flush waits. */
void node_client_reader(struct node *node, struct lws *wsi,
			uint64_t *read_pass);
/* @wsi is going away: it is no reader any more. */
void node_client_reader_gone(struct node *node, struct lws *wsi);
/* Writes the links with packets queued, then every client on the flush
 * list (the uv check hook), unless a reader has more input (bounded). */
void node_client_flush(struct node *node);
int node_client_close_raw(struct node *node, struct lws *wsi, int code,
			  const char *reason);
/* Marks a session (its close slots) to close with @code on its next
 * WRITEABLE, cut off after 2 s if it never drains; the first call wins. */
void node_client_close_slots(struct lws *wsi, int *code_slot,
			     const char **reason_slot, int code,
			     const char *reason);
/* Asks @cl to close with @code on its next WRITEABLE (cut off after 2 s). */
void node_client_close_later(struct node_client *cl, int code,
			     const char *reason);
/* Drain: asks up to @n clients not already closing to close with 1012
 * ("service restart": reconnect elsewhere now); returns how many. */
unsigned node_client_drain(struct node *node, unsigned n);
extern const struct chan_ops node_client_chan_ops;

/* peer.c — /node sessions */
int node_peer_open(struct node *node, struct lws *wsi, struct node_pss *pss);
void node_peer_close(struct node *node, struct node_pss *pss);
int node_peer_receive(struct node *node, struct node_peer *p, const void *in,
		      size_t len);
int node_peer_writeable(struct node *node, struct node_peer *p);
/* Accepts an upgrade to /node: the Authentication header carries a
 * token this node knows. */
bool node_peer_token_ok(struct node *node, struct lws *wsi);

/* The up link to @name, or NULL. */
struct node_peer *node_peer_named(struct node *node, const char *name);
/* Queues one text message on the link (a reference to @m is taken). */
void node_peer_send_msg(struct node_peer *p, struct wr_msg *m);
void node_peer_close_later(struct node_peer *p, int code, const char *reason);
/* LWS_CALLBACK_(CLIENT_)RECEIVE_PONG on a link */
void node_peer_pong(struct node *node, struct node_peer *p, const void *in,
		    size_t len);
/* Shutdown: every link closes with 1001. */
void node_peer_close_all(struct node *node);
/* Writes the links that got packets since the last flush; called by
 * node_client_flush() from the uv check hook. */
void node_peers_flush(struct node *node);
/* True when a link has packets waiting for node_peers_flush(). */
bool node_peers_flush_due(struct node *node);
/* Outbound only: sends our handshake (the first frame). */
int node_peer_send_handshake(struct node *node, struct node_peer *p);

/* link.c — outbound links to [[peers]] */
int node_links_start(struct node *node);
void node_links_stop(struct node *node);
void node_links_fini(struct node *node);
/* A reload: dials entries new in @next, closes the links of the ones gone,
 * takes changed urls and tokens for the next dial. */
int node_links_reload(struct node *node, const struct config *next);
/* A link to @name went down: a [[peers]] dial waiting on it dials soon. */
void node_links_peer_down(struct node *node, const char *name);
int node_link_headers(struct lws *wsi, unsigned char **p, unsigned char *end);
int node_link_established(struct node *node, struct lws *wsi,
			  struct node_pss *pss);
void node_link_lost(struct node *node, struct lws *wsi, const char *why);
/* TLS refused the dialled peer's certificate: @why is OpenSSL's reason. */
void node_link_cert_refused(struct lws *wsi, const char *why);
void node_link_handshaken(struct node_dial *d);
const char *node_link_peer_name(const struct node_dial *d);
/* One dial to @url with a one-time @token, for the remote connection
 * flow: no redial, the flow retries. WR_EEXIST when one is in flight. */
int node_link_dial_once(struct node *node, const char *name, const char *url,
			const char *token);
/* LWS_CALLBACK_WSI_DESTROY: ends an attempt lws freed unreported. */
void node_link_destroyed(struct node *node, struct lws *wsi);
/* Drops dials neither up nor failed after 5 s (from the mesh tick). */
void node_links_watch(struct node *node);
/* True while any dial is in flight (its 5 s watch needs ticks). */
bool node_links_dialling_any(struct node *node);
/* True while a dial to @name is in flight (connecting or handshaking). */
bool node_link_dialling(struct node *node, const char *name);

/* server.c: the mesh engine is busy: tick on the fast grid (from an lws
 * callback: a sul armed elsewhere is not picked up on our loop) */
void node_tick_soon(struct node *node);
/* server.c: the peer address of @wsi for log fields ("?" when unknown) */
const char *node_wsi_addr(struct lws *wsi, char *buf, size_t len);
/* server.c: (re)starts the keepalive sweep at client_ping_interval_ms */
void node_keepalive_rearm(struct node *node);
/* the mesh engine's ops (peer.c) and the flows' (client.c) */
extern const struct mesh_ops node_peer_mesh_ops;
extern const struct flows_ops node_client_flows_ops;

/* static.c — files under [web] root and the embedded client library */
int node_static_request(struct node *node, struct lws *wsi, const char *uri,
			bool head);
/* Writes a response body (@buf has LWS_PRE bytes of headroom before it),
 * as one write over HTTP/1, as 16 KiB frames over HTTP/2. 0 or -1. */
int node_http_body(struct lws *wsi, unsigned char *buf, size_t len);

/* fds.c — the descriptor limit (issue 10) */
/* Raises the soft limit, clamps max_clients, keeps a spare descriptor. */
void node_fds_init(struct node *node);
/* max_clients again (a reload). */
void node_fds_clamp(struct node *node);
/* Finds the listening socket (after the context made it). */
void node_fds_listener(struct node *node);
/* FILTER_NETWORK_CONNECTION: -1 closes a socket inside the reserve. */
int node_fds_filter(struct node *node, int fd);
/* lws logged EMFILE on accept: drain the listener's queue. */
void node_fds_emfile(void);
void node_fds_fini(struct node *node);

/* httpout.c — a body sent chunk by chunk on HTTP_WRITEABLE: @body (a
 * reference, taken) or the file @fd (taken), @len bytes, after the
 * headers were written. lws's 0 / -1. */
int node_http_out_start(struct lws *wsi, struct node_http_out *o,
			struct wr_msg *body, int fd, size_t len);
int node_http_out_write(struct node *node, struct lws *wsi,
			struct node_http_out *o);
/* Drops what is left (the connection went). */
void node_http_out_fini(struct node_http_out *o);

/* http.c — GET /health, /metrics, upgrades' admission, 404 */
/* The node's /health verdict (6.3). */
void node_http_health(struct node *node, struct health_result *r);
int node_http_request(struct node *node, struct lws *wsi, const char *uri);
int node_http_confirm_upgrade(struct node *node, struct lws *wsi);
/* pending.c — sockets that have not finished their headers, per address
 * (at most [limits] max_pending_per_ip from one; the rest closed at
 * accept) */
struct node_pending;
struct node_pending *node_pending_create(void);
void node_pending_destroy(struct node_pending *p);
/* FILTER_NETWORK_CONNECTION: -1 to close the accepted @fd (its address
 * has max_pending_per_ip sockets before their headers). */
int node_pending_filter(struct node *node, int fd);
/* SERVER_NEW_CLIENT_INSTANTIATED: counts @wsi. */
int node_pending_open(struct node *node, struct lws *wsi);
/* Its headers are done, or it goes: uncounted (no-op when not counted). */
void node_pending_done(struct node *node, struct lws *wsi);
/* http.c: the peer's address of @wsi (per-address limits); WR_OK. */
int node_wsi_peer_addr(struct lws *wsi, struct wr_addr *out);
/* Refuses an upgrade with a whole HTTP/1.1 @status response (@extra: one
 * more header line, no CRLF, or NULL); returns 1 for the lws callback. */
int node_http_refuse(struct lws *wsi, unsigned status, const char *extra);

#endif
