/*
 * flows/remote: the remote connection (PROTOCOL.md 5.3). A node with
 * fewer than max_peers links asks each peer list-nodes; for every node it
 * is not linked to, while its pool has room, it asks the peer that listed
 * it get-node-connection, and that peer asks the target for a one-time
 * token bound to our name. We dial the target with it, once. Any failure
 * means the whole flow runs again later, with the backoff of 3.1.
 */
#include <string.h>

#include "internal.h"

/* Links we may still start: the pool minus what is up or on its way. */
static int room(struct flows *f)
{
	return mesh_cfg(f->mesh)->max_peers - (int)mesh_links_up(f->mesh) -
	       (int)mesh_dials(f->mesh) - (int)f->nasking;
}

static bool asking(struct flows *f, const char *name)
{
	for (unsigned i = 0; i < f->nasking; i++)
		if (!strcmp(f->asking[i], name))
			return true;
	return false;
}

static void asked(struct flows *f, const char *name)
{
	for (unsigned i = 0; i < f->nasking; i++)
		if (!strcmp(f->asking[i], name)) {
			memcpy(f->asking[i], f->asking[--f->nasking],
			       sizeof(f->asking[0]));
			return;
		}
}

/* Somebody we could link to: not us, not linked, not on the way. */
static bool candidate(struct flows *f, const char *name)
{
	return strcmp(name, mesh_name(f->mesh)) &&
	       !mesh_link_named(f->mesh, name) &&
	       !mesh_dialling(f->mesh, name) && !asking(f, name);
}

static void later(struct flows *f)
{
	f->remote_next_ms = wr_now_ms() +
			    mesh_backoff_ms(f->mesh, f->remote_attempt++);
}

struct conn {
	struct flows *f;
	char target[INM_NAME_MAX + 1];
};

static void on_connection(void *ud, const struct inm_pending_event *ev)
{
	struct conn *c = ud;
	struct flows *f = c->f;
	const cJSON *d = ev->response ? ev->response->data : NULL;
	const cJSON *host = cJSON_GetObjectItemCaseSensitive(d, "host");
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(d, "token");
	const cJSON *why = cJSON_GetObjectItemCaseSensitive(d, "reason");

	if (!ev->done)
		return;
	f->remote_inflight--;
	asked(f, c->target);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")) &&
	    cJSON_IsString(host) && cJSON_IsString(tok) &&
	    host->valuestring[0] && candidate(f, c->target)) {
		wr_info("remote connection: dialling '%s' at %s", c->target,
			host->valuestring);
		if (mesh_dial(f->mesh, c->target, host->valuestring,
			      tok->valuestring))
			later(f);
	} else if (!mesh_link_named(f->mesh, c->target)) {
		wr_info("remote connection to '%s' not possible: %s", c->target,
			cJSON_IsString(why) ? why->valuestring
			: ev->reason        ? ev->reason
					    : "no token");
		later(f);
	}
	free(c);
}

struct lister {
	struct flows *f;
	char peer[INM_NAME_MAX + 1];
};

static void on_nodes(void *ud, const struct inm_pending_event *ev)
{
	struct lister *l = ud;
	struct flows *f = l->f;
	const cJSON *d = ev->response ? ev->response->data : NULL, *it;

	if (!ev->done)
		return;
	f->remote_inflight--;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "nodes")) {
		struct conn *c;
		cJSON *cmd;

		if (room(f) <= 0 || f->nasking == FLOW_ASKING_MAX)
			break;
		if (!cJSON_IsString(it) ||
		    !inm_node_name_valid(it->valuestring,
					 strlen(it->valuestring)) ||
		    !candidate(f, it->valuestring))
			continue;
		c = calloc(1, sizeof(*c));
		cmd = cJSON_CreateObject();
		if (!c || !cmd ||
		    !cJSON_AddStringToObject(cmd, "command",
					     "get-node-connection") ||
		    !cJSON_AddStringToObject(cmd, "node", it->valuestring)) {
			free(c);
			cJSON_Delete(cmd);
			break;
		}
		c->f = f;
		snprintf(c->target, sizeof(c->target), "%s", it->valuestring);
		if (mesh_command(f->mesh, l->peer, cmd, on_connection, c)) {
			free(c);
			continue;
		}
		snprintf(f->asking[f->nasking++], sizeof(f->asking[0]), "%s",
			 c->target);
		f->remote_inflight++;
	}
	free(l);
}

/* Is a node of our part of the mesh, not linked to us, dialable? */
static bool anyone_unlinked(struct flows *f)
{
	struct inm_view *v = mesh_view(f->mesh);

	for (size_t i = 1; i < inm_view_count(v); i++) {
		const struct inm_node_state *st = inm_view_at(v, i);

		if (st->url[0] && inm_view_reachable(v, st->name) &&
		    candidate(f, st->name))
			return true;
	}
	return false;
}

void flow_remote_tick(struct flows *f, int64_t now)
{
	bool kicked = f->remote_next_ms == 0;

	if (mesh_stopping(f->mesh) || f->remote_inflight ||
	    !mesh_links_up(f->mesh) || room(f) <= 0 || now < f->remote_next_ms)
		return;
	if (!kicked && !anyone_unlinked(f))
		return;
	later(f);
	for (struct mesh_link *ml = mesh_links(f->mesh); ml; ml = ml->next) {
		struct lister *l;
		cJSON *cmd;

		if (ml->closing)
			continue;
		l = calloc(1, sizeof(*l));
		cmd = cJSON_CreateObject();
		if (!l || !cmd ||
		    !cJSON_AddStringToObject(cmd, "command", "list-nodes")) {
			free(l);
			cJSON_Delete(cmd);
			return;
		}
		l->f = f;
		snprintf(l->peer, sizeof(l->peer), "%s", ml->name);
		if (mesh_command(f->mesh, ml->name, cmd, on_nodes, l))
			free(l);
		else
			f->remote_inflight++;
	}
}

void flow_remote_result(struct flows *f, bool ok)
{
	if (ok)
		f->remote_attempt = 0;
	else
		later(f);
}
