/*
 * flows/remote: the remote connection (PROTOCOL.md 5.3). A node with
 * fewer than max_peers links asks each peer list-nodes; for every node it
 * is not linked to, while its pool has room, it asks the peer that listed
 * it get-node-connection, and that peer asks the target for a one-time
 * token bound to our name. We dial the target with it, once. Any failure
 * means the whole flow runs again later, with the backoff of 3.1.
 */
#include <string.h>

#include "flows.h"

/* Links we may still start: the pool minus what is up or on its way. */
static int room(struct wr_node *node)
{
	return node->cfg->max_peers - (int)node->npeers_up -
	       (int)node->mesh.once_count - (int)node->mesh.nasking;
}

static bool asking(struct wr_node *node, const char *name)
{
	for (unsigned i = 0; i < node->mesh.nasking; i++)
		if (!strcmp(node->mesh.asking[i], name))
			return true;
	return false;
}

static void asked(struct wr_node *node, const char *name)
{
	struct wr_mesh *m = &node->mesh;

	for (unsigned i = 0; i < m->nasking; i++)
		if (!strcmp(m->asking[i], name)) {
			memcpy(m->asking[i], m->asking[--m->nasking],
			       sizeof(m->asking[0]));
			return;
		}
}

/* Somebody we could link to: not us, not linked, not on the way. */
static bool candidate(struct wr_node *node, const char *name)
{
	return strcmp(name, node->cfg->name) && !wr_peer_named(node, name) &&
	       !wr_link_dialling(node, name) && !asking(node, name);
}

static void later(struct wr_node *node)
{
	struct wr_mesh *m = &node->mesh;

	m->remote_next_ms = wr_now_ms() + wr_backoff_ms(node->cfg, m->remote_attempt++);
}

struct conn {
	char target[INM_NAME_MAX + 1];
};

static void on_connection(struct wr_node *node,
			  const struct inm_pending_event *ev, void *arg)
{
	struct conn *c = arg;
	const cJSON *d = ev->response ? ev->response->data : NULL;
	const cJSON *host = cJSON_GetObjectItemCaseSensitive(d, "host");
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(d, "token");
	const cJSON *why = cJSON_GetObjectItemCaseSensitive(d, "reason");

	if (!ev->done)
		return;
	node->mesh.remote_inflight--;
	asked(node, c->target);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")) &&
	    cJSON_IsString(host) && cJSON_IsString(tok) && host->valuestring[0] &&
	    candidate(node, c->target)) {
		wr_info("remote connection: dialling '%s' at %s", c->target,
			host->valuestring);
		if (wr_link_dial_once(node, c->target, host->valuestring,
				      tok->valuestring))
			later(node);
	} else if (!wr_peer_named(node, c->target)) {
		wr_info("remote connection to '%s' not possible: %s", c->target,
			cJSON_IsString(why) ? why->valuestring
			: ev->reason ? ev->reason : "no token");
		later(node);
	}
	free(c);
}

struct lister {
	char peer[INM_NAME_MAX + 1];
};

static void on_nodes(struct wr_node *node, const struct inm_pending_event *ev,
		     void *arg)
{
	struct lister *l = arg;
	const cJSON *d = ev->response ? ev->response->data : NULL, *it;

	if (!ev->done)
		return;
	node->mesh.remote_inflight--;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "nodes")) {
		struct conn *c;
		cJSON *cmd;

		if (room(node) <= 0 || node->mesh.nasking == WR_ASKING_MAX)
			break;
		if (!cJSON_IsString(it) ||
		    !inm_node_name_valid(it->valuestring, strlen(it->valuestring)) ||
		    !candidate(node, it->valuestring))
			continue;
		c = calloc(1, sizeof(*c));
		cmd = cJSON_CreateObject();
		if (!c || !cmd) {
			free(c);
			cJSON_Delete(cmd);
			break;
		}
		lws_snprintf(c->target, sizeof(c->target), "%s", it->valuestring);
		cJSON_AddStringToObject(cmd, "command", "get-node-connection");
		cJSON_AddStringToObject(cmd, "node", c->target);
		if (wr_mesh_command(node, l->peer, cmd, on_connection, c)) {
			free(c);
			continue;
		}
		lws_snprintf(node->mesh.asking[node->mesh.nasking++],
			     sizeof(node->mesh.asking[0]), "%s", c->target);
		node->mesh.remote_inflight++;
	}
	free(l);
}

/* Is a node of our part of the mesh, not linked to us, dialable? */
static bool anyone_unlinked(struct wr_node *node)
{
	struct inm_view *v = node->mesh.view;

	for (size_t i = 1; i < inm_view_count(v); i++) {
		const struct inm_node_state *st = inm_view_at(v, i);

		if (st->url[0] && inm_view_reachable(v, st->name) &&
		    candidate(node, st->name))
			return true;
	}
	return false;
}

void wr_flow_remote(struct wr_node *node)
{
	struct wr_mesh *m = &node->mesh;
	bool kicked = m->remote_next_ms == 0;

	if (node->stopping || m->remote_inflight || !node->npeers_up ||
	    room(node) <= 0 || wr_now_ms() < m->remote_next_ms)
		return;
	if (!kicked && !anyone_unlinked(node))
		return;
	later(node);
	for (struct wr_peer *p = node->peers; p; p = p->next) {
		struct lister *l;
		cJSON *cmd;

		if (!p->up || p->close_code)
			continue;
		l = calloc(1, sizeof(*l));
		cmd = cJSON_CreateObject();
		if (!l || !cmd || !cJSON_AddStringToObject(cmd, "command", "list-nodes")) {
			free(l);
			cJSON_Delete(cmd);
			return;
		}
		lws_snprintf(l->peer, sizeof(l->peer), "%s", p->name);
		if (wr_mesh_command(node, p->name, cmd, on_nodes, l))
			free(l);
		else
			m->remote_inflight++;
	}
}

void wr_flow_remote_result(struct wr_node *node, bool ok)
{
	if (ok)
		node->mesh.remote_attempt = 0;
	else
		later(node);
}
