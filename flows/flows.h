/*
 * flows: how the nodes of a mesh act together (PROTOCOL.md 4 and 5) —
 * channel state across the mesh (opening, closing, races, announces),
 * onboarding a new link, and the remote connection that fills a node's
 * pool of links. The flows orchestrate node state (node/node.h) and the
 * mesh transport (node/mesh.c); the state machines they drive live in
 * channels/reserve and inm/.
 */
#ifndef WR_FLOWS_H
#define WR_FLOWS_H

#include "node.h"

/* ---- channels.c: channel state across the mesh (4) ---- */

/* "password": null or 64 lowercase hex chars. False when malformed;
 * *has tells whether @out holds a hash. An absent value is null. */
bool wr_hash_parse(const cJSON *v, uint8_t out[CHAN_HASH_LEN], bool *has);
/*
 * What a subscribe must match: true when @name is open anywhere on the
 * mesh (active here or reserved), *hash then the channel's hash or NULL
 * for an open channel; false for a channel nobody has.
 */
bool wr_chan_lookup(struct wr_node *node, const char *name, size_t len,
		    const uint8_t **hash);
/* Told once the mesh acknowledged a reservation: @all false when
 * command_timeout_ms passed before every reachable node answered. */
typedef void (*wr_opened_cb)(struct wr_node *node, void *arg, bool all);
/*
 * 4.2: this node's first subscriber opened @ch (after chan_join): the
 * reservation goes to every node. True when it did and @cb (may be NULL)
 * will be called once, possibly before this returns; false when no node
 * was told (no link), and @cb is never called.
 */
bool wr_chan_opened(struct wr_node *node, struct chan_channel *ch,
		    wr_opened_cb cb, void *arg);
/* 4.3: @ch lost its last local subscriber (chan_ops.closed). */
void wr_chan_closed(struct wr_node *node, struct chan_channel *ch);
/* Adds a holder to the table, settling a race (4.4): losing local
 * subscribers are removed and told. */
int wr_chan_reserve(struct wr_node *node, const char *name, size_t len,
		    const uint8_t *hash, int64_t created, const char *holder,
		    enum chan_resv_result *res);
/* {"command":"reserve-channel","channel","password" (hex or null),
 * "created","holder"}, or NULL on no memory. */
cJSON *wr_chan_reserve_data(const char *name, const uint8_t *hash,
			    int64_t created, const char *holder);
/* The reserve-channel / unreserve-channel commands: NULL when ok, else
 * the reason to answer. */
const char *wr_chan_reserve_cmd(struct wr_node *node,
				const struct inm_packet *pkt);
const char *wr_chan_unreserve_cmd(struct wr_node *node,
				  const struct inm_packet *pkt);
/* An announce from @holder listing its active channels @chans, built at
 * @at (wall ms, 0 if unknown): its holder set becomes exactly that. */
void wr_chan_announced(struct wr_node *node, const char *holder,
		       const cJSON *chans, int64_t at);
/* Appends this node's active channels [{name, password, created}], or
 * with @reserved the whole table [{name, password, created, holders}]. */
void wr_chan_list_json(struct wr_node *node, cJSON *arr, bool reserved);
/* GET /api/node's channels: the table plus active and subscribers. */
void wr_chan_view_json(struct wr_node *node, cJSON *arr);

/* ---- reconcile.c: the master's repairs (5.4) ---- */
struct wr_repair {
	const char *dest;           /* the node to send it to */
	bool reserve;               /* reserve-channel, else unreserve-channel */
	const char *channel;
	const uint8_t *hash;        /* reserve: CHAN_HASH_LEN bytes, NULL for none */
	int64_t created;            /* reserve */
	const char *holder;
};
typedef void (*wr_repair_cb)(const struct wr_repair *r, void *arg);
/*
 * @holds: {node: [list-channels entries]} of every node that answered;
 * @views: {node: [list-reserved-channels entries]}. Calls @cb once per
 * command that brings a node of @views in step (pointers valid for the
 * call). WR_OK or WR_ENOMEM.
 */
int wr_reconcile(const cJSON *holds, const cJSON *views, wr_repair_cb cb,
		 void *arg);

/* ---- onboard.c: 5.2 ---- */
void wr_flow_onboard(struct wr_node *node, struct wr_peer *p);

/* ---- heal.c: a lost or split mesh dials the nodes it lost ---- */
void wr_flow_heal(struct wr_node *node, int64_t now);

/* ---- remote.c: 5.3 ---- */
/* Runs the remote connection flow when it is due (from the mesh tick). */
void wr_flow_remote(struct wr_node *node);
/* A one-shot dial of the flow handshook (@ok) or failed. */
void wr_flow_remote_result(struct wr_node *node, bool ok);

#endif
