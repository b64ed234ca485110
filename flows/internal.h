/*
 * flows/internal: the flows' state, shared by the files of flows/ and by
 * nothing else.
 */
#ifndef WR_FLOWS_INTERNAL_H
#define WR_FLOWS_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>

#include "flows.h"

#define FLOW_ASKING_MAX 8
#define FLOW_CHECKS_MAX 256

/* A node whose channels are to be checked against its record (sync.c),
 * or a holder named by a command before the mesh knew it. */
struct flow_check {
	char name[INM_NAME_MAX + 1];
	int64_t due_ms;
	bool pulling; /* list-channels in flight */
};

struct flow_master;
struct pres_obj;

struct flows {
	struct mesh *mesh;
	const struct config *cfg;
	struct chan_registry *reg;
	struct flows_ops ops;
	void *ud;
	struct chan_resv_table *resv; /* the mesh's view: self included */
	struct wr_buf scratch;
	bool evicting; /* a lost race empties a channel */
	bool leaving;  /* shutdown: channels released */
	/* remote.c */
	int64_t remote_next_ms;
	unsigned remote_attempt;
	unsigned remote_inflight; /* list-nodes / get-node-connection */
	char asking[FLOW_ASKING_MAX][INM_NAME_MAX + 1];
	unsigned nasking;
	/* heal.c */
	int64_t heal_next_ms;
	unsigned heal_attempt, heal_rr;
	/* sync.c */
	struct flow_check checks[FLOW_CHECKS_MAX];
	unsigned nchecks;
	struct flow_check suspects[FLOW_CHECKS_MAX];
	unsigned nsuspects;
	/* master.c */
	struct flow_master *master;
	/* channels.c: /api/node's password tags without a mesh token */
	unsigned char view_key[32];
	/* presence.c */
	int64_t pres_next_ms;
	struct pres_obj *pres_live; /* rounds and queries in flight */
	uint64_t pres_queries, pres_partial, pres_polls, pres_answered;
};

/* channels.c */
int flow_channels_init(struct flows *f);
/* A peer's claim that @holder holds a channel since @created can be
 * checked: a node we know (self, linked, alive) and a time within bounds. */
bool flow_chan_claim_ok(struct flows *f, int64_t created, const char *holder);
/* Adds a holder to the table, settling a race (4.4): losing local
 * subscribers are removed and told. WR_EINVAL when the claim is refused
 * (flow_chan_claim_ok; counted). */
int flow_chan_reserve(struct flows *f, const char *name, size_t len,
		      const uint8_t *hash, int64_t created, const char *holder,
		      enum chan_resv_result *res);
/* {"command":"reserve-channel","channel","password","created","holder"},
 * the caller's (mesh_command takes it), or NULL on no memory. */
cJSON *flow_chan_reserve_data(const char *name, const uint8_t *hash,
			      int64_t created, const char *holder);
/* An announce or a stamped list-channels from @holder listing its active
 * channels @chans, true at @at (wall ms, 0 unknown: nothing removed): its
 * holder set becomes exactly that. */
void flow_chan_announced(struct flows *f, const char *holder,
			 const cJSON *chans, int64_t at);
/* Appends this node's active channels [{name, password, created}], or
 * with @reserved the whole table [{name, password, created, holders}]. */
void flow_chan_list_json(struct flows *f, cJSON *arr, bool reserved);
/* Shutdown: unreserve-channel for every active channel. */
void flow_chan_leave(struct flows *f);

/* onboard.c: 5.2 */
void flow_onboard(struct flows *f, struct mesh_link *l);

/* remote.c: 5.3 */
void flow_remote_tick(struct flows *f, int64_t now);

/* heal.c */
void flow_heal_tick(struct flows *f, int64_t now);

/* sync.c: channel digests against the records */
void flow_sync_node(struct flows *f, const struct inm_node_state *st,
		    enum inm_view_event ev);
void flow_sync_record(struct flows *f, const struct inm_node_state *st);
/* A command named @holder as a channel's holder: when the mesh does not
 * know it alive, it is dropped from the holder sets unless it shows up. */
void flow_sync_holder_named(struct flows *f, const char *holder);
void flow_sync_tick(struct flows *f, int64_t now);

/* presence.c: 7.4 */
int flow_presence_init(struct flows *f);
void flow_presence_tick(struct flows *f, int64_t now);
/* Frees what is in flight (the mesh fires no callback once destroyed). */
void flow_presence_fini(struct flows *f);
/* master.c */
int flow_master_init(struct flows *f);
void flow_master_fini(struct flows *f);
void flow_master_tick(struct flows *f, int64_t now);

#endif
