/*
 * flows/onboard: a link came up (PROTOCOL.md 5.2). Each side asks the
 * other list-channels (that peer is their holder) and
 * list-reserved-channels (with their holders), merges both into its
 * reservation table, and sends the peer every (channel, holder) it has
 * and the peer lacks with reserve-channel. Then the remote connection
 * flow gets its turn.
 */
#include <string.h>

#include "flows.h"

static cJSON *command(const char *name)
{
	cJSON *d = cJSON_CreateObject();

	if (d && !cJSON_AddStringToObject(d, "command", name)) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

/* The response's "channels" array when it answered ok, else NULL. */
static const cJSON *channels_of(const struct inm_pending_event *ev)
{
	const cJSON *d = ev->response ? ev->response->data : NULL, *a;

	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")))
		return NULL;
	a = cJSON_GetObjectItemCaseSensitive(d, "channels");
	return cJSON_IsArray(a) ? a : NULL;
}

/* One entry of either list: name, password, created. False if malformed. */
static bool entry_fields(const cJSON *e, const char **name, uint8_t *hash,
			 bool *has, int64_t *created)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "created");

	if (!cJSON_IsString(n) ||
	    !chan_name_valid(n->valuestring, strlen(n->valuestring)) ||
	    !wr_hash_parse(cJSON_GetObjectItemCaseSensitive(e, "password"),
			   hash, has))
		return false;
	*name = n->valuestring;
	*created = cJSON_IsNumber(c) ? (int64_t)c->valuedouble : wr_wall_ms();
	return true;
}

static void merge(struct wr_node *node, const char *name, const uint8_t *hash,
		  bool has, int64_t created, const char *holder)
{
	enum chan_resv_result res;

	/* only this node says what it holds */
	if (!strcmp(holder, node->cfg->name) ||
	    !inm_node_name_valid(holder, strlen(holder)))
		return;
	wr_chan_reserve(node, name, strlen(name), has ? hash : NULL, created,
			holder, &res);
}

static void on_channels(struct wr_node *node,
			const struct inm_pending_event *ev, void *arg)
{
	const cJSON *arr = channels_of(ev), *e;
	char *peer = arg;

	cJSON_ArrayForEach(e, arr) {
		uint8_t hash[CHAN_HASH_LEN];
		const char *name;
		int64_t created;
		bool has;

		if (entry_fields(e, &name, hash, &has, &created))
			merge(node, name, hash, has, created, peer);
	}
	if (ev->done)
		free(peer);
}

/* Does the peer's list have @holder for @name? */
static bool peer_has(const cJSON *arr, const char *name, size_t len,
		     const char *holder)
{
	const cJSON *e, *h;

	cJSON_ArrayForEach(e, arr) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");

		if (!cJSON_IsString(n) || strlen(n->valuestring) != len ||
		    memcmp(n->valuestring, name, len))
			continue;
		cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(e, "holders"))
			if (cJSON_IsString(h) && !strcmp(h->valuestring, holder))
				return true;
		return false;
	}
	return false;
}

struct push {
	struct wr_node *node;
	const char *peer;
	const cJSON *theirs;
};

static void push_missing(const struct chan_resv_entry *e, void *arg)
{
	struct push *p = arg;
	size_t len;
	const char *name = chan_resv_name(e, &len);
	const uint8_t *hash = chan_resv_hash(e);

	for (unsigned i = 0; i < chan_resv_nholders(e); i++) {
		const char *h = chan_resv_holder(e, i);

		if (!strcmp(h, p->peer) || peer_has(p->theirs, name, len, h))
			continue;
		wr_mesh_command(p->node, p->peer,
				wr_chan_reserve_data(name, hash,
						     chan_resv_holder_created(e, i), h),
				NULL, NULL);
	}
}

static void on_reserved(struct wr_node *node,
			const struct inm_pending_event *ev, void *arg)
{
	const cJSON *arr = channels_of(ev), *e, *h;
	char *peer = arg;

	cJSON_ArrayForEach(e, arr) {
		uint8_t hash[CHAN_HASH_LEN];
		const char *name;
		int64_t created;
		bool has;

		if (!entry_fields(e, &name, hash, &has, &created))
			continue;
		cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(e, "holders"))
			if (cJSON_IsString(h))
				merge(node, name, hash, has, created, h->valuestring);
	}
	if (arr) {
		struct push p = { node, peer, arr };

		chan_resv_foreach(node->mesh.resv, push_missing, &p);
	}
	if (ev->done)
		free(peer);
}

static void ask(struct wr_node *node, const char *peer, const char *cmd,
		wr_reply_cb cb)
{
	char *arg = strdup(peer);

	if (arg && wr_mesh_command(node, peer, command(cmd), cb, arg))
		free(arg);
}

void wr_flow_onboard(struct wr_node *node, struct wr_peer *p)
{
	ask(node, p->name, "list-channels", on_channels);
	ask(node, p->name, "list-reserved-channels", on_reserved);
	node->mesh.remote_next_ms = 0; /* and look for more links soon */
}
