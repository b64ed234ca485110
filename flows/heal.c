/*
 * flows/heal: the mesh mends itself after a crash (docs/mesh.md). The
 * remote connection flow (remote.c) only fills a pool through linked
 * peers, so a lost hub can leave islands that never meet again. Here a
 * node whose view holds nodes it lost lately (unreachable, not leaving,
 * with a url) dials them itself: every one of them when it has no link
 * left, and otherwise only when it is the smallest name of its part of
 * the mesh, so that each part sends one dialler rather than all of its
 * nodes. A round dials up to HEAL_FANOUT of them, in turn (a dead node
 * refuses at once, a live one in another part joins the two parts);
 * rounds are spaced by the backoff of 3.1. The dial authenticates with
 * the rejoin token the target's record offers, else with node.token.
 */
#include <string.h>

#include "internal.h"

#define HEAL_WINDOW_MS (10 * 60 * 1000) /* lost longer: not dialled */
#define HEAL_FANOUT 3

void flow_heal_tick(struct flows *f, int64_t now)
{
	const struct config *cfg = mesh_cfg(f->mesh);
	struct inm_view *v = mesh_view(f->mesh);
	const char *token = cfg->token ? cfg->token : "";
	size_t lost[HEAL_FANOUT * 4], nlost = 0, n = inm_view_count(v);
	int64_t grace = cfg->announce_interval_ms / 2;

	if (mesh_stopping(f->mesh) || f->leaving || now < f->heal_next_ms)
		return;
	if (strcmp(inm_view_leader(v), cfg->name)) {
		f->heal_attempt = 0;
		return;
	}
	/* each of the n - 1 records but ours once, from after the last one
	 * dialled: one more step would visit the first again */
	for (size_t k = 0; k + 1 < n && nlost < HEAL_FANOUT * 4; k++) {
		size_t i = 1 + (f->heal_rr + k) % (n - 1);
		const struct inm_node_state *st = inm_view_at(v, i);
		int64_t since = inm_view_lost_since(v, i);

		if (!since || st->leaving || !st->url[0] ||
		    now - since < grace || now - since > HEAL_WINDOW_MS ||
		    mesh_link_named(f->mesh, st->name) ||
		    mesh_dialling(f->mesh, st->name))
			continue;
		lost[nlost++] = i;
	}
	if (!nlost) {
		f->heal_attempt = 0;
		return;
	}
	f->heal_next_ms = now + cfg->reconnect_min_ms / 2 +
			  mesh_backoff_ms(f->mesh, f->heal_attempt++);
	for (size_t k = 0; k < nlost && k < HEAL_FANOUT; k++) {
		const struct inm_node_state *st = inm_view_at(v, lost[k]);

		f->heal_rr = (unsigned)lost[k];
		wr_info("mesh: healing: dialling '%s' at %s (lost %lld ms ago)",
			st->name, st->url,
			(long long)(now - inm_view_lost_since(v, lost[k])));
		mesh_counters(f->mesh)->heal_dials++;
		mesh_dial(f->mesh, st->name, st->url,
			  st->rejoin[0] ? st->rejoin : token);
	}
}
