/*
 * flows: how the nodes of a mesh act together (PROTOCOL.md 4 and 5) —
 * channel state across the mesh (opening, closing, races, the check of
 * each node's channels against its record), onboarding a new link, the
 * remote connection that fills a node's pool, healing a split mesh, and
 * the master's reconciliation and history. The flows drive the mesh
 * engine (mesh.h) and own their state; the node (node/) calls them for
 * its clients' channels and its HTTP views. No libwebsockets here.
 */
#ifndef WR_FLOWS_H
#define WR_FLOWS_H

#include "mesh.h"
#include "reserve.h"

struct flows;

/* What the flows ask of the node; @ud is flows_create's. */
struct flows_ops {
	/* True while @cc's subscribe waits for its answer (a lost race
	 * then answers it instead of notifying it). */
	bool (*waiting)(void *ud, const struct chan_client *cc);
};

/* The flows over @m for the clients' channels in @reg (both outlive
 * them); registers their commands and listens to @m. The caller owns
 * them (flows_destroy). NULL on no memory. */
struct flows *flows_create(struct mesh *m, struct chan_registry *reg,
			   const struct flows_ops *ops, void *ud);
/* NULL is a no-op. Call it before mesh_destroy(). */
void flows_destroy(struct flows *f);
/* Periodic work: channel checks, remote connection, healing, master. */
void flows_tick(struct flows *f, int64_t now_ms);
/* True while a flow has something to do before the next announce
 * period: checks or suspects due, a remote connection or a healing
 * round under way, a pool with room. */
bool flows_busy(struct flows *f);
/* Shutdown: tells the mesh this node's channels are closed, then stops
 * the engine's periodic work. */
void flows_leave(struct flows *f);
/* The mesh's reservations as this node sees them (itself included). */
struct chan_resv_table *flows_resv(struct flows *f);

/* ---- channels.c: channel state across the mesh (4) ---- */

/*
 * What a subscribe must match: true when @name is open anywhere on the
 * mesh (active here or reserved), *hash then the channel's hash or NULL
 * for an open channel; false for a channel nobody has.
 */
bool flow_chan_lookup(struct flows *f, const char *name, size_t len,
		      const uint8_t **hash);
/* Told once the mesh acknowledged a reservation: @all false when
 * command_timeout_ms passed before every reachable node answered. */
typedef void (*flow_opened_cb)(void *ud, bool all);
/*
 * 4.2: this node's first subscriber opened @ch (after chan_join): the
 * reservation goes to every node. True when it did and @cb (may be NULL)
 * will be called once, possibly before this returns; false when no node
 * was told (no link), and @cb is never called.
 */
bool flow_chan_opened(struct flows *f, struct chan_channel *ch,
		      flow_opened_cb cb, void *ud);
/* 4.3: @ch lost its last local subscriber (chan_ops.closed). */
void flow_chan_closed(struct flows *f, struct chan_channel *ch);
/* GET /api/node's channels: the table, with active and subscribers. */
void flow_chan_view_json(struct flows *f, cJSON *arr);

/* ---- presence.c: 7.4 ---- */
struct flow_pres_answer {
	uint64_t clients; /* every subscriber of every node that answered */
	char **users;     /* sorted, distinct, at most 1000 */
	unsigned nusers;
	bool partial; /* a holder did not answer in time */
};
/* Called once with the merged answer (valid for the call). */
typedef void (*flow_pres_cb)(void *ud, const struct flow_pres_answer *a);
struct flow_pres_ask;
/*
 * The presence command on @ch (a channel with a local member): this
 * node's part now, every other alive holder's within command_timeout_ms.
 * WR_OK: @cb is called once, possibly before this returns (*@out then
 * NULL), else *@out is the query until then (flow_presence_forget when
 * @ud goes first). WR_ENOMEM: @cb is never called.
 */
int flow_presence_ask(struct flows *f, struct chan_channel *ch, flow_pres_cb cb,
		      void *ud, struct flow_pres_ask **out);
/* A subscriber of @ch asked for join / leave events: when it is the
 * first, the holders are asked at once for the baseline. */
void flow_presence_listen(struct flows *f, struct chan_channel *ch);
/* @q's callback is not called any more (the asker went away). */
void flow_presence_forget(struct flow_pres_ask *q);
/* Presence queries (all, partial) and event polls sent, for /metrics. */
void flow_presence_counts(const struct flows *f, uint64_t *queries,
			  uint64_t *partial, uint64_t *polls);

/* ---- remote.c: 5.3 ---- */
/* A one-shot dial (remote connection or healing) handshook (@ok) or
 * failed. */
void flow_remote_result(struct flows *f, bool ok);

/* ---- master.c: 5.4 ---- */
/* GET /api/overview; WR_ENOENT when this node is not the master. */
int flow_master_api_json(struct flows *f, struct wr_buf *b);

/* ---- reconcile.c: the master's repairs, pure (5.4) ---- */
struct flow_repair {
	const char *dest; /* the node to send it to */
	bool reserve;     /* reserve-channel, else unreserve-channel */
	const char *channel;
	const uint8_t *hash; /* reserve: CHAN_HASH_LEN bytes, NULL for none */
	int64_t created;     /* reserve */
	const char *holder;
};
typedef void (*flow_repair_cb)(const struct flow_repair *r, void *arg);
/*
 * @holds: {node: [list-channels entries]} of every node that answered;
 * @views: {node: [list-reserved-channels entries]}. Calls @cb once per
 * command that brings a node of @views in step (pointers valid for the
 * call). WR_OK or WR_ENOMEM.
 */
int flow_reconcile(const cJSON *holds, const cJSON *views, flow_repair_cb cb,
		   void *arg);

#endif
