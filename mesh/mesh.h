/*
 * mesh: the mesh engine (PROTOCOL.md 3, docs/mesh.md) — intra-node
 * packets over the links (dedup, routes, forwarding), commands and their
 * answers, node-state records and liveness, node-stats and host-stats.
 * No libwebsockets and no libuv here: the engine reaches the links
 * through struct mesh_ops, the way channels/ reaches clients through
 * chan_ops, and the node (node/) drives it: frames in, ticks, links up
 * and down. The flows above (flows/) listen to its events and register
 * their commands. Everything runs on the event loop thread.
 */
#ifndef WR_MESH_H
#define WR_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "channels.h"
#include "config.h"
#include "health.h"
#include "inm.h"
#include "wr.h"

#define MESH_MAX_LINKS 1024 /* links routed over; more are refused */
#define MESH_PEER_TIMEOUT_CODE 4408

struct mesh;

/*
 * One node link as the engine sees it, embedded in the node's peer (the
 * ops get it back with container_of). The node fills name and url before
 * mesh_link_up() and leaves the rest to the engine.
 */
struct mesh_link {
	char name[INM_NAME_MAX + 1];
	char url[256];
	bool dialled; /* we dialled it (3.1's tie rule) */
	/* the engine's, while the link is up */
	bool up;
	bool closing;         /* dropped: no more sends */
	int id;               /* route id */
	double latency_ms;    /* < 0 until the first pong */
	int64_t last_rx_ms;   /* any frame or pong (monotonic) */
	int64_t sync_ms;      /* our last full record sync to it */
	unsigned hb_mismatch; /* heartbeats in a row with another digest */
	struct mesh_link *prev, *next;
};

/* How the engine reaches the links and the node; @ud is mesh_create's. */
struct mesh_ops {
	/* Queues one text message on @l (takes a reference to @m). */
	void (*send)(void *ud, struct mesh_link *l, struct wr_msg *m);
	/* Sends a ping on @l now; its pong comes back as mesh_link_pong(). */
	void (*ping)(void *ud, struct mesh_link *l);
	/* Closes @l (it will not drain: do not wait for it). */
	void (*drop)(void *ud, struct mesh_link *l, int code,
		     const char *reason);
	/* One dial to @url with @token, no redial; 0 or an error. */
	int (*dial)(void *ud, const char *name, const char *url,
		    const char *token);
	/* True while a dial to @name is on its way. */
	bool (*dialling)(void *ud, const char *name);
	/* One-shot dials on their way (they take room in the pool). */
	unsigned (*dials)(void *ud);
	/* Something is under way (mesh_busy() turned true): tick soon. */
	void (*kick)(void *ud);
	/* The node's /health verdict and client count, for node-stats. */
	void (*health)(void *ud, struct health_result *r);
	unsigned (*clients)(void *ud);
};

/* What the engine tells the flows above it; any may be NULL. */
struct mesh_listener {
	/* A link came up (after its records were sent): onboarding. */
	void (*link_up)(void *ud, struct mesh_link *l);
	/* A node became reachable (INM_VIEW_UP) or gone (INM_VIEW_GONE). */
	void (*node)(void *ud, const struct inm_node_state *st,
		     enum inm_view_event ev);
	/* A newer record of a node arrived. */
	void (*record)(void *ud, const struct inm_node_state *st);
	/* An old node's full announce listed its active channels @chans
	 * (PROTOCOL.md 3.6), built at @at (wall ms; INT64_MAX: unknown). */
	void (*announced)(void *ud, const char *holder, const cJSON *chans,
			  int64_t at);
	/* Fills @arr with this node's active channels for an announce. */
	void (*active)(void *ud, cJSON *arr);
	/* The holders of @channel, as inm_holders_cb. */
	int (*holders)(void *ud, const char *channel, const char **out,
		       size_t max);
};

/*
 * Creates the engine for the node @cfg describes, advertising @url. It
 * counts into @ctr, delivers channel messages to @reg's subscribers, and
 * keeps pointers to all four (they outlive it). The caller owns the
 * engine (mesh_cancel_all, then mesh_destroy). NULL on no memory.
 */
struct mesh *mesh_create(const struct config *cfg, const char *url,
			 struct chan_registry *reg, struct health_counters *ctr,
			 const struct mesh_ops *ops, void *ud);
/* Every command still waiting times out now (its callback runs): at
 * teardown, before the flows that wait for answers are destroyed. */
void mesh_cancel_all(struct mesh *m);
/* Frees everything (after mesh_cancel_all). NULL is a no-op. */
void mesh_destroy(struct mesh *m);
void mesh_set_listener(struct mesh *m, const struct mesh_listener *l, void *ud);

/* ---- the node drives it ---- */

/* @l (name, url, dialled set) handshook: it carries packets from now. */
void mesh_link_up(struct mesh *m, struct mesh_link *l);
/* @l is down (closed, or never came up: then a no-op). */
void mesh_link_down(struct mesh *m, struct mesh_link *l);
/* Any frame or pong arrived on @l. */
void mesh_link_heard(struct mesh *m, struct mesh_link *l);
/* The round trip of a ping on @l. */
void mesh_link_pong(struct mesh *m, struct mesh_link *l, double ms);
/* A decoded packet arrived on @l: dedup, route, forward, process. */
void mesh_packet_in(struct mesh *m, struct mesh_link *l,
		    struct inm_packet *pkt);
/* Periodic work: timeouts, silent links, pings, records, heartbeats,
 * liveness, host samples. Call it every few tens of ms. */
void mesh_tick(struct mesh *m, int64_t now_ms);
/* True when mesh_tick must run before @next_ms (monotonic): commands in
 * flight, a record to send, a link that falls silent, a node whose
 * joining or going is not reported yet. Idle, one tick per announce
 * period is enough. */
bool mesh_busy(struct mesh *m, int64_t next_ms);
/* Shutdown begins: no more periodic work; a last record says we leave. */
void mesh_stop(struct mesh *m);
/* True for node.token, and for the rejoin token our record offers. */
bool mesh_token_static(struct mesh *m, const char *tok, size_t len);
/* The one-time tokens of get-connection-token (3.1). */
struct inm_tokens *mesh_tokens(struct mesh *m);

/* ---- the flows use it ---- */

const struct config *mesh_cfg(const struct mesh *m);
const char *mesh_name(const struct mesh *m);
const char *mesh_url(const struct mesh *m);
struct inm_view *mesh_view(struct mesh *m);
struct health_counters *mesh_counters(struct mesh *m);
bool mesh_stopping(const struct mesh *m);
/* The up links, newest first; NULL ends. */
struct mesh_link *mesh_links(struct mesh *m);
unsigned mesh_links_up(const struct mesh *m);
/* The up link to @name, or NULL. */
struct mesh_link *mesh_link_named(struct mesh *m, const char *name);
/*
 * The clock skew allowed between nodes (docs/mesh.md): a time a peer
 * states in wall milliseconds (a record's incarnation, a legacy
 * announce's "at", a reservation's "created") is refused when it is more
 * than this ahead of ours. A record's version may grow by at most one a
 * millisecond since its incarnation, plus MESH_VERSION_SLACK.
 */
#define MESH_SKEW_MS 60000
#define MESH_VERSION_SLACK 1000000
/* Channels are not older than this (2020-01-01, wall ms): a reservation
 * "created" before it is made up. */
#define MESH_CREATED_FLOOR_MS INT64_C(1577836800000)
bool mesh_record_time_ok(const struct inm_node_state *st, int64_t wall_ms);

/* True for self, and for a node the view holds alive (not gone). */
bool mesh_alive(struct mesh *m, const char *name);
/* The ops' dials, for the flows that start links. */
int mesh_dial(struct mesh *m, const char *name, const char *url,
	      const char *token);
bool mesh_dialling(struct mesh *m, const char *name);
unsigned mesh_dials(struct mesh *m);
/* Full jitter: uniform in [0, min(reconnect_max_ms, reconnect_min_ms *
 * 2^attempt)] (3.1). */
int64_t mesh_backoff_ms(const struct mesh *m, unsigned attempt);
/* This node's set of active channels changed: its record follows. */
void mesh_channels_changed(struct mesh *m);

/* Called for each response to a command (ev->response NULL on timeout),
 * ev->done on the last call; once with ev->done when nothing was
 * awaited. */
typedef void (*mesh_reply_cb)(void *ud, const struct inm_pending_event *ev);
/*
 * Sends the command in @data (taken; it carries "command") to @dest, a
 * node name or "*" (every reachable node answers). @cb may be NULL.
 * WR_OK, or an error: then @cb was not called and @data was freed.
 */
int mesh_command(struct mesh *m, const char *dest, cJSON *data,
		 mesh_reply_cb cb, void *ud);
/* Answers the command @cmd with @data (taken; "ok" added when missing). */
void mesh_respond(struct mesh *m, const struct inm_packet *cmd, cJSON *data);
void mesh_respond_fail(struct mesh *m, const struct inm_packet *cmd,
		       const char *reason);
/* A command handler; it answers with mesh_respond*(), now or later. */
typedef void (*mesh_command_fn)(void *ud, const struct inm_packet *cmd);
/* Adds command @name (a static string) to the ones this node answers.
 * WR_OK, WR_EEXIST, WR_EFULL. */
int mesh_command_register(struct mesh *m, const char *name, mesh_command_fn fn,
			  void *ud);

/* ---- channel messages (3.5) ---- */

/* A local client's send: toward the other nodes that hold the channel. */
void mesh_publish(struct mesh *m, const char *channel, size_t clen,
		  const char *msg, size_t mlen, const struct chan_str *nonce);
/* A channel message of @bytes arrived (from a client or a peer): counted
 * for node-stats (6.1). */
void mesh_observe_message(struct mesh *m, const char *channel, size_t clen,
			  size_t bytes);

/* ---- views ---- */

/* GET /api/node: name, url, master, peers, nodes into @root. */
void mesh_api_json(struct mesh *m, cJSON *root);
/* The answers of node-stats / host-stats ({"ok":true,...}; caller owns
 * them); NULL when not available. */
cJSON *mesh_node_stats(struct mesh *m);
cJSON *mesh_host_stats(struct mesh *m);

#endif
