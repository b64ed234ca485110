/*
 * node/mesh_cmd: the commands of PROTOCOL.md 3.4, one handler each, looked
 * up by name. Each reads its own fields from pkt->data and answers with
 * wr_mesh_respond; get-node-connection answers later, once the target
 * node has issued a token. A command this node does not know is answered
 * "unknown command".
 */
#include <string.h>

#include <sodium.h>

#include "flows.h"
#include "node.h"

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

static void list_nodes(struct wr_node *node, const struct inm_packet *pkt)
{
	cJSON *d = ok_data(), *arr = d ? cJSON_AddArrayToObject(d, "nodes") : NULL;

	for (struct wr_peer *p = node->peers; arr && p; p = p->next)
		if (p->up)
			cJSON_AddItemToArray(arr, cJSON_CreateString(p->name));
	wr_mesh_respond(node, pkt->source, pkt->nonce, d);
}

static void list_channels(struct wr_node *node, const struct inm_packet *pkt,
			  bool reserved)
{
	cJSON *d = ok_data(), *arr = d ? cJSON_AddArrayToObject(d, "channels") : NULL;

	if (arr)
		wr_chan_list_json(node, arr, reserved);
	/* asked with "stamp" (docs/mesh.md): when the list was true, so a
	 * holder set is replaced by it only for channels opened before */
	if (d && !reserved &&
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pkt->data, "stamp")))
		cJSON_AddNumberToObject(d, "at", (double)wr_wall_ms());
	wr_mesh_respond(node, pkt->source, pkt->nonce, d);
}

static void get_connection_token(struct wr_node *node,
				 const struct inm_packet *pkt)
{
	const char *name = node_field(pkt);
	char tok[INM_TOKEN_LEN + 1];
	cJSON *d;

	if (!name) {
		wr_mesh_respond_fail(node, pkt, "missing field: node");
		return;
	}
	if (inm_token_issue(node->mesh.tokens, name, wr_now_ms(), tok)) {
		wr_mesh_respond_fail(node, pkt, "internal error");
		return;
	}
	wr_info("mesh: one-time token issued for '%s' (asked by '%s')", name,
		pkt->source);
	d = ok_data();
	if (d)
		cJSON_AddStringToObject(d, "token", tok);
	sodium_memzero(tok, sizeof(tok));
	wr_mesh_respond(node, pkt->source, pkt->nonce, d);
}

/* get-node-connection waits for the target's token: who asked, and how
 * to answer them */
struct conn_ask {
	char requester[INM_NAME_MAX + 1];
	char nonce[INM_NONCE_LEN + 1];
	char host[256];
};

static void on_token(struct wr_node *node, const struct inm_pending_event *ev,
		     void *arg)
{
	struct conn_ask *a = arg;
	const cJSON *d = ev->response ? ev->response->data : NULL;
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(d, "token");
	const cJSON *why = cJSON_GetObjectItemCaseSensitive(d, "reason");
	cJSON *out = cJSON_CreateObject();

	if (!ev->done && !ev->response)
		return;
	if (out && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")) &&
	    cJSON_IsString(tok)) {
		cJSON_AddTrueToObject(out, "ok");
		cJSON_AddStringToObject(out, "host", a->host);
		cJSON_AddStringToObject(out, "token", tok->valuestring);
	} else if (out) {
		cJSON_AddFalseToObject(out, "ok");
		cJSON_AddStringToObject(out, "reason",
					cJSON_IsString(why) ? why->valuestring
					: ev->reason ? ev->reason : "target not connected");
	}
	if (out)
		wr_mesh_respond(node, a->requester, a->nonce, out);
	if (ev->done)
		free(a);
}

static void get_node_connection(struct wr_node *node,
				const struct inm_packet *pkt)
{
	const char *target = node_field(pkt);
	struct wr_peer *t;
	struct conn_ask *a;
	cJSON *cmd;

	if (!target) {
		wr_mesh_respond_fail(node, pkt, "missing field: node");
		return;
	}
	t = wr_peer_named(node, target);
	/* a peer that advertises no url accepts no links */
	if (!t || !t->url[0] || !strcmp(target, pkt->source)) {
		wr_mesh_respond_fail(node, pkt, "target not connected");
		return;
	}
	a = calloc(1, sizeof(*a));
	cmd = cJSON_CreateObject();
	if (!a || !cmd ||
	    !cJSON_AddStringToObject(cmd, "command", "get-connection-token") ||
	    !cJSON_AddStringToObject(cmd, "node", pkt->source)) {
		free(a);
		cJSON_Delete(cmd);
		wr_mesh_respond_fail(node, pkt, "internal error");
		return;
	}
	lws_snprintf(a->requester, sizeof(a->requester), "%s", pkt->source);
	lws_snprintf(a->nonce, sizeof(a->nonce), "%s", pkt->nonce);
	lws_snprintf(a->host, sizeof(a->host), "%s", t->url);
	if (wr_mesh_command(node, target, cmd, on_token, a)) {
		free(a);
		wr_mesh_respond_fail(node, pkt, "internal error");
	}
}

static void get_latency(struct wr_node *node, const struct inm_packet *pkt)
{
	const char *target = node_field(pkt);
	struct wr_peer *t;
	cJSON *d;

	if (!target) {
		wr_mesh_respond_fail(node, pkt, "missing field: node");
		return;
	}
	t = wr_peer_named(node, target);
	if (!t) {
		wr_mesh_respond_fail(node, pkt, "target not connected");
		return;
	}
	if (t->latency_ms < 0) {
		wr_mesh_respond_fail(node, pkt, "latency unknown");
		return;
	}
	d = ok_data();
	if (d)
		cJSON_AddNumberToObject(d, "latency", t->latency_ms);
	wr_mesh_respond(node, pkt->source, pkt->nonce, d);
}

static void reserve_channel(struct wr_node *node, const struct inm_packet *pkt)
{
	const char *why = wr_chan_reserve_cmd(node, pkt);

	if (why)
		wr_mesh_respond_fail(node, pkt, why);
	else
		wr_mesh_respond(node, pkt->source, pkt->nonce, ok_data());
}

static void unreserve_channel(struct wr_node *node,
			      const struct inm_packet *pkt)
{
	const char *why = wr_chan_unreserve_cmd(node, pkt);

	if (why)
		wr_mesh_respond_fail(node, pkt, why);
	else
		wr_mesh_respond(node, pkt->source, pkt->nonce, ok_data());
}

static void cmd_list_channels(struct wr_node *node, const struct inm_packet *pkt)
{
	list_channels(node, pkt, false);
}

static void cmd_list_reserved(struct wr_node *node, const struct inm_packet *pkt)
{
	list_channels(node, pkt, true);
}

static void answer(struct wr_node *node, const struct inm_packet *pkt,
		   cJSON *d)
{
	if (d)
		wr_mesh_respond(node, pkt->source, pkt->nonce, d);
	else
		wr_mesh_respond_fail(node, pkt, "not available");
}

static void node_stats(struct wr_node *node, const struct inm_packet *pkt)
{
	answer(node, pkt, wr_observe_node_stats(node));
}

static void host_stats(struct wr_node *node, const struct inm_packet *pkt)
{
	answer(node, pkt, wr_observe_host_stats(node));
}

static const struct {
	const char *name;
	void (*fn)(struct wr_node *node, const struct inm_packet *pkt);
} commands[] = {
	{ "get-node-connection", get_node_connection },
	{ "get-connection-token", get_connection_token },
	{ "list-nodes", list_nodes },
	{ "list-channels", cmd_list_channels },
	{ "list-reserved-channels", cmd_list_reserved },
	{ "reserve-channel", reserve_channel },
	{ "unreserve-channel", unreserve_channel },
	{ "get-latency", get_latency },
	{ "node-stats", node_stats },
	{ "host-stats", host_stats },
};

void wr_mesh_command_in(struct wr_node *node, const struct inm_packet *pkt)
{
	const char *name = cJSON_GetObjectItemCaseSensitive(pkt->data, "command")
				   ->valuestring;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name)) {
			commands[i].fn(node, pkt);
			return;
		}
	wr_mesh_respond_fail(node, pkt, "unknown command");
}
