/*
 * mesh/internal: the engine's state, shared by the files of mesh/ and by
 * nothing else (the flows and the node see mesh.h only).
 */
#ifndef WR_MESH_INTERNAL_H
#define WR_MESH_INTERNAL_H

#include <stdio.h>

#include "mesh.h"

#define MESH_COMMANDS_MAX 32

struct mesh_observe;

struct mesh {
	const struct config *cfg;
	char url[256];
	struct chan_registry *reg;
	struct health_counters *ctr;
	const struct mesh_ops *ops;
	void *ud;
	struct mesh_listener ls;
	void *lud;

	struct mesh_link *links; /* up, newest first */
	unsigned nup;
	int next_link; /* route ids */
	struct inm_dedup *dedup;
	struct inm_route *route;
	struct inm_pending *pending;
	struct inm_tokens *tokens;
	struct wr_buf enc;     /* packet encoding */
	struct wr_buf scratch; /* delivery frames */
	int64_t ping_slot;     /* wall ms / ping_interval_ms */
	bool stopping;

	struct {
		const char *name;
		mesh_command_fn fn;
		void *ud;
	} cmds[MESH_COMMANDS_MAX];
	unsigned ncmds;

	/* gossip.c: node-state records and liveness (docs/mesh.md) */
	struct inm_view *view;
	int64_t incarnation;            /* wall ms at start */
	uint64_t version;               /* of our record */
	char rejoin[INM_TOKEN_LEN + 1]; /* accepted like node.token */
	bool self_dirty;                /* links changed: new record now */
	bool chans_dirty;               /* channels changed: new record soon */
	bool leaving;                   /* our last record says so */
	int64_t self_built_ms;
	int64_t heartbeat_slot;  /* wall ms / announce_interval_ms */
	int64_t legacy_until_ms; /* an old node heard: announce until */

	struct mesh_observe *obs; /* observe.c */
};

/* Tells the node to tick soon: something is under way. */
static inline void mesh_kick(struct mesh *m)
{
	if (m->ops->kick)
		m->ops->kick(m->ud);
}
/* Fills the header of a packet built here (a new nonce); takes @data. */
void mesh_packet_new(struct mesh *m, struct inm_packet *pkt, const char *dest,
		     enum inm_type type, cJSON *data);
/* Answers the command (@dest, @nonce) with @data (taken). */
void mesh_respond_to(struct mesh *m, const char *dest, const char *nonce,
		     cJSON *data);
/* Sends @pkt (built here) on @l alone. */
void mesh_send_link(struct mesh *m, struct mesh_link *l,
		    struct inm_packet *pkt);
/* Sends @pkt (built here) wherever its destination says. */
void mesh_send(struct mesh *m, struct inm_packet *pkt);

/* commands.c */
int mesh_commands_init(struct mesh *m);
void mesh_command_in(struct mesh *m, const struct inm_packet *pkt);

/* gossip.c */
int mesh_gossip_init(struct mesh *m);
void mesh_gossip_fini(struct mesh *m);
void mesh_gossip_link_up(struct mesh *m, struct mesh_link *l);
void mesh_gossip_link_down(struct mesh *m, struct mesh_link *l);
void mesh_gossip_event(struct mesh *m, struct mesh_link *l,
		       const struct inm_packet *pkt);
void mesh_gossip_tick(struct mesh *m, int64_t now);
void mesh_gossip_leave(struct mesh *m);
/* A link's latency was measured since our record was built. */
bool mesh_gossip_latency_due(struct mesh *m);

/* observe.c */
int mesh_observe_init(struct mesh *m);
void mesh_observe_fini(struct mesh *m);
void mesh_observe_tick(struct mesh *m, int64_t now);

#endif
