/*
 * mesh/observe: what the node-stats and host-stats commands report
 * (PROTOCOL.md 6.1, 6.2). Channel messages are counted in 60 s of
 * per-second buckets, for the node and per channel, as they arrive from
 * clients and from peers; the host is sampled every 15 s from /proc and
 * statvfs on the mesh tick (small reads, never on a client's path). The
 * arithmetic and the parsing live in health/stats.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "internal.h"
#include "stats.h"

#define PROC_BUF 65536

struct mesh_observe {
	struct stats_window net;
	struct stats_channels *chans;
	struct host_net_samples hostnet;
	struct host_stats host;
	bool have_host;
	int64_t next_host_ms;
	char *buf; /* /proc reads */
};

int mesh_observe_init(struct mesh *m)
{
	struct mesh_observe *o = calloc(1, sizeof(*o));

	if (!o)
		return WR_ENOMEM;
	m->obs = o;
	stats_window_init(&o->net);
	host_net_init(&o->hostnet);
	o->chans = stats_channels_create(0);
	o->buf = malloc(PROC_BUF);
	return o->chans && o->buf ? WR_OK : WR_ENOMEM;
}

void mesh_observe_fini(struct mesh *m)
{
	struct mesh_observe *o = m->obs;

	if (!o)
		return;
	stats_channels_destroy(o->chans);
	free(o->buf);
	free(o);
	m->obs = NULL;
}

void mesh_observe_message(struct mesh *m, const char *channel, size_t clen,
			  size_t bytes)
{
	struct mesh_observe *o = m->obs;
	int64_t now = wr_now_ms();

	stats_add(&o->net, now, bytes);
	stats_channels_add(o->chans, channel, clen, now, bytes);
}

static int real_statvfs(const char *path, struct statvfs *out)
{
	return statvfs(path, out);
}

/* Every 15 s: the interface counters for the sampler, and a fresh
 * reading of load, memory and disks. */
void mesh_observe_tick(struct mesh *m, int64_t now)
{
	static const struct host_paths proc = HOST_PATHS_PROC;
	struct mesh_observe *o = m->obs;
	struct host_stats fresh;

	if (now < o->next_host_ms)
		return;
	o->next_host_ms = now + HOST_NET_INTERVAL_MS;
	host_net_tick(&o->hostnet, proc.net_dev, now, o->buf, PROC_BUF);
	/* a failed reading keeps the last good one */
	if (host_stats_collect(&fresh, &proc, real_statvfs, o->buf, PROC_BUF) ==
	    WR_OK) {
		o->host = fresh;
		o->have_host = true;
	}
	stats_channels_gc(o->chans, now);
}

struct relay_ctx {
	struct wr_buf *b;
	bool first;
	bool counts; /* "name":members, else "name" */
};

static void relay_item(struct chan_channel *ch, void *arg)
{
	struct relay_ctx *r = arg;
	size_t len;
	const char *name = chan_name(ch, &len);

	if (!r->first)
		wr_buf_puts(r->b, ",");
	r->first = false;
	wr_buf_json_str(r->b, name, len);
	if (r->counts)
		wr_buf_printf(r->b, ":%u", chan_members(ch));
}

cJSON *mesh_node_stats(struct mesh *m)
{
	bool first = true;
	struct wr_buf b;
	struct relay_ctx r = { &b, true, false };
	struct health_result h;
	cJSON *d;

	wr_buf_init(&b);
	wr_buf_puts(&b, "{\"ok\":true,\"relay\":{\"channels\":[");
	chan_foreach(m->reg, relay_item, &r);
	wr_buf_printf(&b, "],\"clients\":%u,\"channel_connections\":{",
		      m->ops->clients(m->ud));
	r = (struct relay_ctx){ &b, true, true };
	chan_foreach(m->reg, relay_item, &r);
	wr_buf_puts(&b, "}},");
	/* extension: the node's /health verdict, for the overview */
	m->ops->health(m->ud, &h);
	wr_buf_puts(&b, "\"health\":");
	health_json(&b, &h, m->cfg->name);
	/* extension: the round trip to each peer, for the overview (the
	 * records carry only the first one: a refresh would flood) */
	wr_buf_puts(&b, ",\"links\":{");
	for (struct mesh_link *l = m->links; l; l = l->next) {
		if (l->latency_ms < 0)
			continue;
		if (!first)
			wr_buf_puts(&b, ",");
		first = false;
		wr_buf_json_str(&b, l->name, strlen(l->name));
		wr_buf_printf(&b, ":%.3f", l->latency_ms);
	}
	wr_buf_puts(&b, "},");
	stats_node_json(&b, &m->obs->net, m->obs->chans, wr_now_ms());
	wr_buf_puts(&b, "}");
	d = b.oom ? NULL : cJSON_ParseWithLength(b.p, b.len);
	wr_buf_fini(&b);
	return d;
}

cJSON *mesh_host_stats(struct mesh *m)
{
	struct mesh_observe *o = m->obs;
	struct wr_buf b;
	cJSON *d;

	if (!o->have_host)
		return NULL;
	wr_buf_init(&b);
	host_stats_json(&b, &o->host, &o->hostnet);
	d = b.oom ? NULL : cJSON_ParseWithLength(b.p, b.len);
	wr_buf_fini(&b);
	if (d && !cJSON_AddTrueToObject(d, "ok")) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}
