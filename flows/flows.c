/*
 * flows/flows: the flows' lifetime and what ties them to the engine —
 * they register their commands, listen to the engine's events (a link up,
 * a node up or gone, a newer record, an old node's announce) and take
 * their turn on every tick.
 */
#include <string.h>

#include <sodium.h>

#include "internal.h"

#define RESV_CHANNELS_MAX (1u << 20)

static void on_link_up(void *ud, struct mesh_link *l)
{
	flow_onboard(ud, l);
}

static void on_node(void *ud, const struct inm_node_state *st,
		    enum inm_view_event ev)
{
	flow_sync_node(ud, st, ev);
}

static void on_record(void *ud, const struct inm_node_state *st)
{
	flow_sync_record(ud, st);
}

static void on_announced(void *ud, const char *holder, const cJSON *chans,
			 int64_t at)
{
	flow_chan_announced(ud, holder, chans, at);
}

static void on_active(void *ud, cJSON *arr)
{
	flow_chan_list_json(ud, arr, false);
}

/* The holders of @channel from the reservation table (inm_holders_cb). */
static int on_holders(void *ud, const char *channel, const char **out,
		      size_t max)
{
	struct flows *f = ud;
	const struct chan_resv_entry *e = chan_resv_find(f->resv, channel,
							 strlen(channel));
	unsigned n;

	if (!e)
		return -1;
	n = chan_resv_nholders(e);
	for (unsigned i = 0; i < n && i < max; i++)
		out[i] = chan_resv_holder(e, i);
	return (int)n;
}

static const struct mesh_listener listener = {
	.link_up = on_link_up,
	.node = on_node,
	.record = on_record,
	.announced = on_announced,
	.active = on_active,
	.holders = on_holders,
};

struct flows *flows_create(struct mesh *m, struct chan_registry *reg,
			   const struct flows_ops *ops, void *ud)
{
	struct flows *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->mesh = m;
	f->cfg = mesh_cfg(m);
	f->reg = reg;
	if (ops)
		f->ops = *ops;
	f->ud = ud;
	wr_buf_init(&f->scratch);
	randombytes_buf(f->view_key, sizeof(f->view_key));
	f->resv = chan_resv_table_create(RESV_CHANNELS_MAX, 0);
	if (!f->resv || flow_channels_init(f) || flow_presence_init(f) ||
	    flow_master_init(f)) {
		flows_destroy(f);
		return NULL;
	}
	mesh_set_listener(m, &listener, f);
	return f;
}

void flows_destroy(struct flows *f)
{
	static const struct mesh_listener none;

	if (!f)
		return;
	mesh_set_listener(f->mesh, &none, NULL);
	flow_master_fini(f);
	flow_presence_fini(f);
	chan_resv_table_destroy(f->resv);
	wr_buf_fini(&f->scratch);
	free(f);
}

void flows_tick(struct flows *f, int64_t now)
{
	if (mesh_stopping(f->mesh))
		return;
	flow_sync_tick(f, now);
	flow_heal_tick(f, now);
	flow_remote_tick(f, now);
	flow_master_tick(f, now);
	flow_presence_tick(f, now);
}

bool flows_busy(struct flows *f)
{
	return f->nchecks || f->nsuspects || f->remote_inflight || f->nasking ||
	       f->heal_attempt || chan_presence_channels(f->reg) ||
	       (int)mesh_links_up(f->mesh) < f->cfg->max_peers;
}

void flows_leave(struct flows *f)
{
	flow_chan_leave(f);
	mesh_stop(f->mesh);
}

struct chan_resv_table *flows_resv(struct flows *f)
{
	return f->resv;
}
