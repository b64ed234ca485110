/*
 * mesh/commands: the commands of PROTOCOL.md 3.4 that are the mesh's own
 * (links, tokens, latency, statistics), one handler each, and the table
 * the flows add theirs to (the channel commands). Each handler reads its
 * own fields from pkt->data and answers with mesh_respond*();
 * get-node-connection answers later, once the target node has issued a
 * token. A command nobody registered is answered "unknown command".
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

/* data.node: a valid node name, or NULL */
static const char *node_field(const struct inm_packet *pkt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(pkt->data, "node");

	if (!cJSON_IsString(v) ||
	    !inm_node_name_valid(v->valuestring, strlen(v->valuestring)))
		return NULL;
	return v->valuestring;
}

static cJSON *ok_data(void)
{
	cJSON *d = cJSON_CreateObject();

	if (d && !cJSON_AddTrueToObject(d, "ok")) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

static void list_nodes(void *ud, const struct inm_packet *pkt)
{
	struct mesh *m = ud;
	cJSON *d = ok_data(),
	      *arr = d ? cJSON_AddArrayToObject(d, "nodes") : NULL;

	for (struct mesh_link *l = m->links; arr && l; l = l->next)
		cJSON_AddItemToArray(arr, cJSON_CreateString(l->name));
	mesh_respond(m, pkt, d);
}

static void get_connection_token(void *ud, const struct inm_packet *pkt)
{
	struct mesh *m = ud;
	const char *name = node_field(pkt);
	char tok[INM_TOKEN_LEN + 1];
	cJSON *d;

	if (!name) {
		mesh_respond_fail(m, pkt, "missing field: node");
		return;
	}
	switch (inm_token_issue(m->tokens, name, wr_now_ms(), tok)) {
	case WR_OK:
		break;
	case WR_EFULL:
		/* every slot holds a token handed out in the last minute */
		wr_warn("mesh: one-time token for '%s' refused: %zu live", name,
			inm_tokens_count(m->tokens));
		mesh_respond_fail(m, pkt, "too many tokens");
		return;
	default:
		mesh_respond_fail(m, pkt, "internal error");
		return;
	}
	wr_info("mesh: one-time token issued for '%s' (asked by '%s')", name,
		pkt->source);
	d = ok_data();
	if (d)
		cJSON_AddStringToObject(d, "token", tok);
	sodium_memzero(tok, sizeof(tok));
	mesh_respond(m, pkt, d);
}

/* get-node-connection waits for the target's token: who asked, and how
 * to answer them */
struct conn_ask {
	struct mesh *m;
	char requester[INM_NAME_MAX + 1];
	char nonce[INM_NONCE_LEN + 1];
	char host[256];
};

static void on_token(void *ud, const struct inm_pending_event *ev)
{
	struct conn_ask *a = ud;
	const cJSON *d = ev->response ? ev->response->data : NULL;
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(d, "token");
	const cJSON *why = cJSON_GetObjectItemCaseSensitive(d, "reason");
	cJSON *out;

	if (!ev->done && !ev->response)
		return;
	out = cJSON_CreateObject();
	if (out && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")) &&
	    cJSON_IsString(tok)) {
		cJSON_AddTrueToObject(out, "ok");
		cJSON_AddStringToObject(out, "host", a->host);
		cJSON_AddStringToObject(out, "token", tok->valuestring);
	} else if (out) {
		cJSON_AddFalseToObject(out, "ok");
		cJSON_AddStringToObject(out, "reason",
					cJSON_IsString(why) ? why->valuestring
					: ev->reason        ? ev->reason
						     : "target not connected");
	}
	if (out)
		mesh_respond_to(a->m, a->requester, a->nonce, out);
	if (ev->done)
		free(a);
}

static void get_node_connection(void *ud, const struct inm_packet *pkt)
{
	struct mesh *m = ud;
	const char *target = node_field(pkt);
	struct mesh_link *t;
	struct conn_ask *a;
	cJSON *cmd;

	if (!target) {
		mesh_respond_fail(m, pkt, "missing field: node");
		return;
	}
	t = mesh_link_named(m, target);
	/* a peer that advertises no url accepts no links */
	if (!t || !t->url[0] || !strcmp(target, pkt->source)) {
		mesh_respond_fail(m, pkt, "target not connected");
		return;
	}
	a = calloc(1, sizeof(*a));
	cmd = cJSON_CreateObject();
	if (!a || !cmd ||
	    !cJSON_AddStringToObject(cmd, "command", "get-connection-token") ||
	    !cJSON_AddStringToObject(cmd, "node", pkt->source)) {
		free(a);
		cJSON_Delete(cmd);
		mesh_respond_fail(m, pkt, "internal error");
		return;
	}
	a->m = m;
	snprintf(a->requester, sizeof(a->requester), "%s", pkt->source);
	snprintf(a->nonce, sizeof(a->nonce), "%s", pkt->nonce);
	snprintf(a->host, sizeof(a->host), "%s", t->url);
	if (mesh_command(m, target, cmd, on_token, a)) {
		free(a);
		mesh_respond_fail(m, pkt, "internal error");
	}
}

static void get_latency(void *ud, const struct inm_packet *pkt)
{
	struct mesh *m = ud;
	const char *target = node_field(pkt);
	struct mesh_link *t;
	cJSON *d;

	if (!target) {
		mesh_respond_fail(m, pkt, "missing field: node");
		return;
	}
	t = mesh_link_named(m, target);
	if (!t) {
		mesh_respond_fail(m, pkt, "target not connected");
		return;
	}
	if (t->latency_ms < 0) {
		mesh_respond_fail(m, pkt, "latency unknown");
		return;
	}
	d = ok_data();
	if (d)
		cJSON_AddNumberToObject(d, "latency", t->latency_ms);
	mesh_respond(m, pkt, d);
}

static void answer(struct mesh *m, const struct inm_packet *pkt, cJSON *d)
{
	if (d)
		mesh_respond(m, pkt, d);
	else
		mesh_respond_fail(m, pkt, "not available");
}

static void node_stats(void *ud, const struct inm_packet *pkt)
{
	answer(ud, pkt, mesh_node_stats(ud));
}

static void host_stats(void *ud, const struct inm_packet *pkt)
{
	answer(ud, pkt, mesh_host_stats(ud));
}

int mesh_command_register(struct mesh *m, const char *name, mesh_command_fn fn,
			  void *ud)
{
	for (unsigned i = 0; i < m->ncmds; i++)
		if (!strcmp(m->cmds[i].name, name))
			return WR_EEXIST;
	if (m->ncmds == MESH_COMMANDS_MAX)
		return WR_EFULL;
	m->cmds[m->ncmds].name = name;
	m->cmds[m->ncmds].fn = fn;
	m->cmds[m->ncmds++].ud = ud;
	return WR_OK;
}

int mesh_commands_init(struct mesh *m)
{
	static const struct {
		const char *name;
		mesh_command_fn fn;
	} own[] = {
		{ "get-node-connection", get_node_connection },
		{ "get-connection-token", get_connection_token },
		{ "list-nodes", list_nodes },
		{ "get-latency", get_latency },
		{ "node-stats", node_stats },
		{ "host-stats", host_stats },
	};

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (mesh_command_register(m, own[i].name, own[i].fn, m))
			return WR_EFULL;
	return WR_OK;
}

void mesh_command_in(struct mesh *m, const struct inm_packet *pkt)
{
	const char *name = cJSON_GetObjectItemCaseSensitive(pkt->data,
							    "command")
				   ->valuestring;

	for (unsigned i = 0; i < m->ncmds; i++)
		if (!strcmp(name, m->cmds[i].name)) {
			m->cmds[i].fn(m->cmds[i].ud, pkt);
			return;
		}
	mesh_respond_fail(m, pkt, "unknown command");
}
