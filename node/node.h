/*
 * node: the process — the lws context and its one protocol handler that
 * serves /connect, /node, /health and /metrics on one port. This header is
 * internal to node/: the state every node/ file shares. All of it lives on
 * the event loop thread and hangs off lws_context_user().
 */
#ifndef WR_NODE_H
#define WR_NODE_H

#include <uv.h>
#include <libwebsockets.h>

#include "channels.h"
#include "config.h"
#include "health.h"
#include "inm.h"
#include "reserve.h"
#include "wr.h"

/* Coalesced writes: up to this many bytes of queued frames per WRITEABLE. */
#define WR_WRITE_COALESCE (64 * 1024)

/* rx.c — one WebSocket message reassembled from lws's chunks */
struct wr_rx {
	char *buf;
	size_t len, cap;
	bool active;                /* inside a message */
};
enum wr_rx_result {
	WR_RX_MORE,                 /* wait for the next chunk */
	WR_RX_DONE,                 /* *msg, *mlen: the whole message */
	WR_RX_BINARY,               /* a binary frame: close 1003 */
	WR_RX_TOO_LARGE,            /* over @limit: close 1009 */
	WR_RX_NOMEM,
};
/* Adds the chunk @in; on WR_RX_DONE *msg is @in itself (one-chunk
 * message) or rx->buf, valid until the next call. */
enum wr_rx_result wr_rx_add(struct wr_rx *rx, struct lws *wsi, const void *in,
			    size_t len, size_t limit, const char **msg,
			    size_t *mlen);
/* After a WR_RX_DONE message is handled: drops a big buffer. */
void wr_rx_handled(struct wr_rx *rx);
void wr_rx_fini(struct wr_rx *rx);

struct wr_client;
struct wr_peer;
struct wr_dial;

#define WR_MAX_LINKS 1024           /* node links routed over; more are refused */
#define WR_PEER_NAMES_MAX 64        /* peers kept per announcing node */

/* A node of the mesh this node knows of: a direct peer, or heard of
 * through its packets (announce events, 3.6). */
struct wr_known {
	char name[INM_NAME_MAX + 1];
	char url[256];
	int64_t heard_ms;           /* monotonic: its last packet or pong */
	int64_t announce_at;        /* its last announce's "at" (wall ms) */
	bool master;
	unsigned npeers;            /* its direct peers, from its announce */
	char (*peers)[INM_NAME_MAX + 1];
	double *latency;            /* to each of them in ms, < 0 unknown */
};

/* The node's mesh state (mesh.c): everything INM beyond one link. */
struct wr_mesh {
	struct inm_dedup *dedup;
	struct inm_route *route;
	struct inm_pending *pending;
	struct inm_tokens *tokens;
	struct chan_resv_table *resv;   /* the mesh's view: self included */
	struct wr_known *known;
	unsigned nknown, known_cap;
	int next_link;                  /* link ids for inm_route */
	int64_t next_announce_ms, next_ping_ms;
	uv_timer_t tick;                /* wakes the loop: wr_mesh_tick */
	struct wr_buf enc;              /* packet encoding, apart from scratch */
	bool evicting;                  /* a lost race empties a channel */
	bool leaving;                   /* shutdown: channels already released */
	/* remote connection (flows/remote.c) */
	int64_t remote_next_ms;
	unsigned remote_attempt;
	unsigned remote_inflight;       /* list-nodes / get-node-connection */
	struct wr_dial *once;           /* one-shot dials with one-time tokens */
	unsigned once_count;           /* once dials in flight */
#define WR_ASKING_MAX 8
	char asking[WR_ASKING_MAX][INM_NAME_MAX + 1]; /* get-node-connection */
	unsigned nasking;
};

struct wr_node {
	const struct wr_config *cfg;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	int port;                   /* the port actually bound */
	bool tls;

	struct chan_registry *reg;
	struct chan_pw_worker *pw;
	struct chan_pw_cache *pwcache;
	uint64_t pw_pending;

	struct wr_client *clients;  /* every /connect session */
	unsigned nclients;
	/* WebSocket connections not yet destroyed by lws: a client leaves
	 * node->clients at CLOSED, but its close frame may still be on its
	 * way out until WSI_DESTROY; shutdown waits for this to reach 0 */
	unsigned live_ws;

	struct wr_peer *peers;      /* every /node session */
	struct wr_dial *dials;      /* one per [[peers]] entry */
	unsigned npeers_up;         /* handshaken */

	struct health_counters ctr;
	int64_t started_ms;
	struct wr_mesh mesh;
	char url[256];              /* advertised /node url, "" if none */
	struct wr_observe *obs;     /* node-stats, host-stats (observe.c) */
	struct wr_master *master;   /* node.master only (master.c) */

	struct wr_buf scratch;      /* JSON building, reused */
	unsigned char *wbuf;        /* LWS_PRE + WR_WRITE_COALESCE */

	/* clients whose queue went non-empty during this loop pass: written
	 * once, coalesced, by the uv check hook that runs after the pass */
	struct wr_client *flush_head;
	/* clients and links that sent us data this pass: while one of them
	 * has more bytes waiting, the flush waits a pass (bounded) so that a
	 * burst of sends leaves as one coalesced write per subscriber and
	 * per link */
#define WR_MAX_READERS 16
#define WR_MAX_DEFER_PASSES 32
	struct lws *readers[WR_MAX_READERS];     /* clients and node links */
	unsigned nreaders;
	unsigned deferred;
	uint64_t pass;
	uv_loop_t loop;             /* ours; lws runs on it (foreign loop) */
	uv_check_t flush_check;
	uv_timer_t keepalive;       /* one sweep per client_ping_interval_ms */
	int sigfd;                  /* signalfd of SIGTERM and SIGINT */
	uv_poll_t sigpoll;

	bool stopping;
	int64_t stop_deadline_ms;
	uv_timer_t stop_timer;
};

struct wr_client {
	struct chan_client cc;      /* registry view: queue, subscriptions */
	struct wr_node *node;
	struct lws *wsi;
	struct wr_client *prev, *next;

	struct chan_pw_rate rate;
	struct chan_pw_job *job;    /* in flight; rx is paused meanwhile */

	struct wr_rx rx;

	int close_code;             /* non-zero: close on next WRITEABLE */
	const char *close_reason;

	struct wr_client *flush_prev, *flush_next;
	bool in_flush;
	bool peer_closing;          /* the client sent a close frame */
	uint64_t read_pass;         /* last loop pass it was a reader in */
	int64_t last_rx_ms;         /* any frame or pong from the client */
	int64_t ping_sent_ms;       /* 0: no ping outstanding */
};

/*
 * One /node link (accepted side). The mesh issue adds outbound links and
 * the command handlers; this side already authenticates, handshakes,
 * decodes and counts every packet, and answers commands it does not know.
 */
struct wr_peer {
	struct wr_node *node;
	struct lws *wsi;
	struct wr_peer *prev, *next;
	struct wr_dial *dial;       /* outbound: the [[peers]] entry; else NULL */
	char name[65];              /* "" until the handshake */
	char url[256];
	bool up;
	struct wr_rx rx;
	struct wr_peer_out *out_head, *out_tail;  /* frames to write */
	int64_t bad_window_ms;      /* malformed packets: window start */
	unsigned bad_count;
	int close_code;
	const char *close_reason;
	/* mesh */
	int link;                   /* route id, while up */
	int64_t last_rx_ms;         /* any frame or pong */
	uint64_t read_pass;         /* last loop pass it was a reader in */
	int64_t ping_sent_us;       /* 0: no ping outstanding */
	bool ping_due;
	bool flush_due;             /* packets queued this pass: wr_peers_flush */
	/* masking keys for a dialled link, drawn WR_MASK_POOL bytes at a time
	 * (randombytes_buf is one getrandom syscall per call) */
#define WR_MASK_POOL 256
	unsigned char mask_pool[WR_MASK_POOL];
	unsigned mask_left;         /* bytes of mask_pool not handed out */
	double latency_ms;          /* < 0 until the first pong */
	bool one_time;              /* accepted with a one-time token */
	char token[INM_TOKEN_LEN + 1];
};

/* per-session data lws allocates for every connection of our protocol */
struct wr_pss {
	struct wr_client *client;
	struct wr_peer *peer;
	bool counted;               /* in node->live_ws until WSI_DESTROY */
};

/* server.c */
int wr_node_run(const struct wr_config *cfg);

/* client.c — /connect sessions */
int wr_client_open(struct wr_node *node, struct lws *wsi, struct wr_pss *pss);
void wr_client_close(struct wr_node *node, struct wr_pss *pss);
int wr_client_receive(struct wr_node *node, struct wr_client *cl,
		      const void *in, size_t len);
int wr_client_writeable(struct wr_node *node, struct wr_client *cl);
void wr_client_pw_done(struct wr_node *node);
/* Pings clients silent for an interval, drops those that did not answer
 * the previous ping. */
void wr_client_keepalive(struct wr_node *node);
/* @wsi got input this pass: while it has more waiting, the flush waits. */
void wr_node_reader(struct wr_node *node, struct lws *wsi, uint64_t *read_pass);
/* @wsi is going away: it is no reader any more. */
void wr_node_reader_gone(struct wr_node *node, struct lws *wsi);
/* Writes the links with packets queued, then every client on the flush
 * list (the uv check hook), unless a reader has more input (bounded). */
void wr_client_flush(struct wr_node *node);
int wr_ws_close_raw(struct wr_node *node, struct lws *wsi, int code,
		    const char *reason);
/* Marks a session (its close slots) to close with @code on its next
 * WRITEABLE, cut off after 2 s if it never drains; the first call wins. */
void wr_close_later(struct lws *wsi, int *code_slot, const char **reason_slot,
		    int code, const char *reason);
/* Asks @cl to close with @code on its next WRITEABLE (cut off after 2 s). */
void wr_client_close_later(struct wr_client *cl, int code, const char *reason);
extern const struct chan_ops wr_client_chan_ops;

/* peer.c — /node sessions */
int wr_peer_open(struct wr_node *node, struct lws *wsi, struct wr_pss *pss);
void wr_peer_close(struct wr_node *node, struct wr_pss *pss);
int wr_peer_receive(struct wr_node *node, struct wr_peer *p, const void *in,
		    size_t len);
int wr_peer_writeable(struct wr_node *node, struct wr_peer *p);
/* Accepts an upgrade to /node: the Authentication header carries a
 * token this node knows. */
bool wr_peer_token_ok(struct wr_node *node, struct lws *wsi);

/* The up link to @name, or NULL. */
struct wr_peer *wr_peer_named(struct wr_node *node, const char *name);
/* Queues one text message on the link (a reference to @m is taken). */
void wr_peer_send_msg(struct wr_peer *p, struct wr_msg *m);
void wr_peer_close_later(struct wr_peer *p, int code, const char *reason);
/* LWS_CALLBACK_(CLIENT_)RECEIVE_PONG on a link */
void wr_peer_pong(struct wr_node *node, struct wr_peer *p, const void *in,
		  size_t len);
/* Shutdown: every link closes with 1001. */
void wr_peers_close_all(struct wr_node *node);
/* Writes the links that got packets since the last flush; called by
 * wr_client_flush() from the uv check hook. */
void wr_peers_flush(struct wr_node *node);
/* True when a link has packets waiting for wr_peers_flush(). */
bool wr_peers_flush_due(struct wr_node *node);
/* Outbound only: sends our handshake (the first frame). */
int wr_peer_send_handshake(struct wr_node *node, struct wr_peer *p);

/* link.c — outbound links to [[peers]] */
/* Full jitter: uniform in [0, min(reconnect_max_ms, reconnect_min_ms *
 * 2^attempt)] (3.1); dials and the remote connection flow retry by it. */
int64_t wr_backoff_ms(const struct wr_config *cfg, unsigned attempt);
int wr_links_start(struct wr_node *node);
void wr_links_stop(struct wr_node *node);
void wr_links_fini(struct wr_node *node);
/* A link to @name went down: a [[peers]] dial waiting on it dials soon. */
void wr_links_peer_down(struct wr_node *node, const char *name);
int wr_link_headers(struct lws *wsi, unsigned char **p, unsigned char *end);
int wr_link_established(struct wr_node *node, struct lws *wsi,
			struct wr_pss *pss);
void wr_link_lost(struct wr_node *node, struct lws *wsi, const char *why);
void wr_link_handshaken(struct wr_dial *d);
const char *wr_link_peer_name(const struct wr_dial *d);
/* One dial to @url with a one-time @token, for the remote connection
 * flow: no redial, the flow retries. WR_EEXIST when one is in flight. */
int wr_link_dial_once(struct wr_node *node, const char *name, const char *url,
		      const char *token);
void wr_link_destroyed(struct wr_node *node, struct lws *wsi);
/* Drops dials stuck for peer_timeout_ms (from the mesh tick). */
void wr_links_watch(struct wr_node *node);
/* True while a dial to @name is in flight (connecting or handshaking). */
bool wr_link_dialling(struct wr_node *node, const char *name);

/* mesh.c — INM over the links (PROTOCOL.md 3) */
int wr_mesh_init(struct wr_node *node);
void wr_mesh_fini(struct wr_node *node);
void wr_mesh_link_up(struct wr_node *node, struct wr_peer *p);
void wr_mesh_link_down(struct wr_node *node, struct wr_peer *p);
/* A decoded packet from @p: dedup, route, forward, process. */
void wr_mesh_packet(struct wr_node *node, struct wr_peer *p,
		    struct inm_packet *pkt);
/* Periodic work: timeouts, pings, announces, gone nodes, flows. */
void wr_mesh_tick(struct wr_node *node);
/* Called back for each response to a command (ev->response NULL on
 * timeout, and once with ev->done when nothing was awaited). */
typedef void (*wr_reply_cb)(struct wr_node *node,
			    const struct inm_pending_event *ev, void *arg);
/* Sends the command in @data (owned; it carries "command") to @dest, a
 * node name or "*". @cb may be NULL. Returns WR_OK or an error (then @cb
 * was not called and @data was freed). */
int wr_mesh_command(struct wr_node *node, const char *dest, cJSON *data,
		    wr_reply_cb cb, void *arg);
/* Answers command @cmd with @data (owned; "ok" added when missing). */
void wr_mesh_respond(struct wr_node *node, const char *dest,
		     const char *nonce, cJSON *data);
void wr_mesh_respond_fail(struct wr_node *node, const struct inm_packet *cmd,
			  const char *reason);
/* A local client's send: to the other nodes that hold the channel. */
void wr_mesh_publish(struct wr_node *node, const char *channel, size_t clen,
		     const char *msg, size_t mlen, const struct chan_str *nonce);
struct wr_known *wr_mesh_known(struct wr_node *node, const char *name);
/* GET /api/node */
void wr_mesh_api_json(struct wr_node *node, struct wr_buf *b);
/* observe.c — node-stats and host-stats (6.1, 6.2) */
int wr_observe_init(struct wr_node *node);
void wr_observe_fini(struct wr_node *node);
/* A channel message of @bytes arrived (from a client or a peer). */
void wr_observe_message(struct wr_node *node, const char *channel,
			size_t clen, size_t bytes);
void wr_observe_tick(struct wr_node *node, int64_t now);
/* The commands' answers ({"ok":true,...}); NULL when not available. */
cJSON *wr_observe_node_stats(struct wr_node *node);
cJSON *wr_observe_host_stats(struct wr_node *node);

/* master.c — the master node (5.4) */
int wr_master_init(struct wr_node *node);
void wr_master_fini(struct wr_node *node);
void wr_master_tick(struct wr_node *node, int64_t now);
uint64_t wr_master_repairs(const struct wr_node *node);
/* GET /api/overview; WR_ENOENT when this node is not the master. */
int wr_master_api_json(struct wr_node *node, struct wr_buf *b);

/* mesh_cmd.c — the commands of 3.4 */
void wr_mesh_command_in(struct wr_node *node, const struct inm_packet *pkt);
/* Shutdown: tells the mesh this node's channels are closed. */
void wr_mesh_leave(struct wr_node *node);

/* static.c — files under [web] root and the embedded client library */
int wr_static_request(struct wr_node *node, struct lws *wsi, const char *uri,
		      bool head);
/* Writes a response body (@buf has LWS_PRE bytes of headroom before it),
 * as one write over HTTP/1, as 16 KiB frames over HTTP/2. 0 or -1. */
int wr_http_body(struct lws *wsi, unsigned char *buf, size_t len);

/* http.c — GET /health, /metrics, upgrades' admission, 404 */
/* The node's /health verdict (6.3). */
void wr_node_health(struct wr_node *node, struct health_result *r);
int wr_http_request(struct wr_node *node, struct lws *wsi, const char *uri);
int wr_http_confirm_upgrade(struct wr_node *node, struct lws *wsi);

#endif
