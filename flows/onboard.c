/*
 * flows/onboard: a link came up (PROTOCOL.md 5.2). Each side asks the
 * other list-channels (that peer is their holder) and
 * list-reserved-channels (with their holders), merges both into its
 * reservation table, and sends the peer every (channel, holder) it has
 * and the peer lacks with reserve-channel. Then the remote connection
 * flow gets its turn.
 */
#include <string.h>

#include "internal.h"

struct ask {
	struct flows *f;
	char peer[INM_NAME_MAX + 1];
};

/* The response's "channels" array when it answered ok, else NULL. */
static const cJSON *channels_of(const struct inm_pending_event *ev)
{
	const cJSON *d = ev->response ? ev->response->data : NULL, *a;

	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")))
		return NULL;
	a = cJSON_GetObjectItemCaseSensitive(d, "channels");
	return cJSON_IsArray(a) ? a : NULL;
}

static void merge(struct flows *f, const struct inm_chan_entry *e,
		  const char *holder)
{
	enum chan_resv_result res;

	/* only this node says what it holds */
	if (!strcmp(holder, mesh_name(f->mesh)) ||
	    !inm_node_name_valid(holder, strlen(holder)))
		return;
	flow_chan_reserve(f, e->name, strlen(e->name),
			  e->has_hash ? e->hash : NULL,
			  e->has_created ? e->created : wr_wall_ms(), holder,
			  &res);
}

static void on_channels(void *ud, const struct inm_pending_event *ev)
{
	struct ask *a = ud;
	const cJSON *arr = channels_of(ev), *it;

	cJSON_ArrayForEach(it, arr) {
		struct inm_chan_entry e;

		if (!inm_chan_entry_decode(it, &e))
			merge(a->f, &e, a->peer);
	}
	if (ev->done)
		free(a);
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
		cJSON_ArrayForEach(h,
				   cJSON_GetObjectItemCaseSensitive(e,
								    "holders"))
			if (cJSON_IsString(h) &&
			    !strcmp(h->valuestring, holder))
				return true;
		return false;
	}
	return false;
}

struct push {
	struct flows *f;
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
		mesh_command(p->f->mesh, p->peer,
			     flow_chan_reserve_data(name, hash,
						    chan_resv_holder_created(e,
									     i),
						    h),
			     NULL, NULL);
	}
}

static void on_reserved(void *ud, const struct inm_pending_event *ev)
{
	struct ask *a = ud;
	const cJSON *arr = channels_of(ev), *it, *h;

	cJSON_ArrayForEach(it, arr) {
		struct inm_chan_entry e;

		if (inm_chan_entry_decode(it, &e))
			continue;
		cJSON_ArrayForEach(h, e.holders)
			if (cJSON_IsString(h))
				merge(a->f, &e, h->valuestring);
	}
	if (arr) {
		struct push p = { a->f, a->peer, arr };

		chan_resv_foreach(a->f->resv, push_missing, &p);
	}
	if (ev->done)
		free(a);
}

static void ask(struct flows *f, const char *peer, const char *cmd,
		mesh_reply_cb cb)
{
	struct ask *a = calloc(1, sizeof(*a));
	cJSON *d = cJSON_CreateObject();

	if (!a || !d || !cJSON_AddStringToObject(d, "command", cmd)) {
		free(a);
		cJSON_Delete(d);
		return;
	}
	a->f = f;
	snprintf(a->peer, sizeof(a->peer), "%s", peer);
	if (mesh_command(f->mesh, peer, d, cb, a))
		free(a);
}

void flow_onboard(struct flows *f, struct mesh_link *l)
{
	ask(f, l->name, "list-channels", on_channels);
	ask(f, l->name, "list-reserved-channels", on_reserved);
	f->remote_next_ms = 0; /* and look for more links soon */
}
