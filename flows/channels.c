/*
 * flows/channels: channel state across the mesh (PROTOCOL.md 4). The
 * reservation table (channels/reserve) is this node's view of the whole
 * mesh, this node included as a holder of its active channels: opening a
 * channel adds us and tells everyone (reserve-channel to "*"), closing it
 * removes us (unreserve-channel to "*", with the "channel still open"
 * repair), announces make each holder's set exact, and the race rule of
 * the table decides every conflict the same way on every node.
 */
#include <string.h>

#include "flows.h"

bool wr_hash_parse(const cJSON *v, uint8_t out[CHAN_HASH_LEN], bool *has)
{
	const char *s;

	*has = false;
	if (!v || cJSON_IsNull(v))
		return true;
	if (!cJSON_IsString(v) || strlen(v->valuestring) != 2 * CHAN_HASH_LEN)
		return false;
	s = v->valuestring;
	for (size_t i = 0; i < CHAN_HASH_LEN; i++) {
		int hi = s[2 * i], lo = s[2 * i + 1];

		hi = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
		lo = lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*has = true;
	return true;
}

static void hash_json(cJSON *o, const uint8_t *hash)
{
	char hex[2 * CHAN_HASH_LEN + 1];

	if (!hash) {
		cJSON_AddNullToObject(o, "password");
		return;
	}
	wr_hex(hex, hash, CHAN_HASH_LEN);
	cJSON_AddStringToObject(o, "password", hex);
}

bool wr_chan_lookup(struct wr_node *node, const char *name, size_t len,
		    const uint8_t **hash)
{
	struct chan_channel *ch = chan_find(node->reg, name, len);
	const struct chan_resv_entry *e;

	if (ch) {
		*hash = chan_hash(ch);
		return true;
	}
	e = chan_resv_find(node->mesh.resv, name, len);
	*hash = e ? chan_resv_hash(e) : NULL;
	return e != NULL;
}

/* A race was lost (4.4): every local subscriber leaves and is told. */
static void evict(struct wr_node *node, const char *name, size_t len)
{
	struct chan_channel *ch = chan_find(node->reg, name, len);
	struct wr_buf *b = &node->scratch;
	struct wr_msg *frame;
	unsigned n = 0;

	if (!ch)
		return;
	wr_buf_reset(b);
	wr_buf_puts(b, "{\"type\":\"unsubscribed\",\"data\":{\"channel\":");
	wr_buf_json_str(b, name, len);
	wr_buf_puts(b, ",\"reason\":\"channel reservation lost\"}}");
	frame = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	node->mesh.evicting = true;
	for (bool last = false; !last; n++) {
		struct chan_client *cl = chan_member(ch, 0);

		last = chan_members(ch) == 1;
		/* a subscriber still waiting for its answer gets that instead */
		if (frame && !wr_client_waiting(cl))
			chan_client_push(node->reg, cl, frame);
		chan_leave(node->reg, ch, cl); /* frees ch after the last */
	}
	node->mesh.evicting = false;
	wr_msg_unref(&frame);
	wr_warn("channel reservation lost: %u local subscriber(s) removed", n);
}

static void on_lost(const char *channel, size_t len, const char *holder,
		    void *arg)
{
	struct wr_node *node = arg;

	if (!strcmp(holder, node->cfg->name))
		evict(node, channel, len);
}

int wr_chan_reserve(struct wr_node *node, const char *name, size_t len,
		    const uint8_t *hash, int64_t created, const char *holder,
		    enum chan_resv_result *res)
{
	return chan_resv_reserve(node->mesh.resv, name, len, hash, created,
				 holder, on_lost, node, res);
}

cJSON *wr_chan_reserve_data(const char *name, const uint8_t *hash,
			    int64_t created, const char *holder)
{
	cJSON *d = cJSON_CreateObject();

	if (!d)
		return NULL;
	cJSON_AddStringToObject(d, "command", "reserve-channel");
	cJSON_AddStringToObject(d, "channel", name);
	hash_json(d, hash);
	cJSON_AddNumberToObject(d, "created", (double)created);
	cJSON_AddStringToObject(d, "holder", holder);
	return d;
}

struct opening {
	wr_opened_cb cb;
	void *arg;
};

static void on_reserve_reply(struct wr_node *node,
			     const struct inm_pending_event *ev, void *arg)
{
	struct opening *o = arg;
	const cJSON *why = NULL;

	if (ev->response)
		why = cJSON_GetObjectItemCaseSensitive(ev->response->data, "reason");
	if (cJSON_IsString(why))
		wr_info("reserve-channel refused by '%s': %s",
			ev->response->source, why->valuestring);
	if (!ev->done)
		return;
	if (o->cb)
		o->cb(node, o->arg, ev->answered >= ev->expected);
	free(o);
}

bool wr_chan_opened(struct wr_node *node, struct chan_channel *ch,
		    wr_opened_cb cb, void *arg)
{
	size_t len;
	const char *name = chan_name(ch, &len);
	enum chan_resv_result res;
	struct opening *o;

	if (wr_chan_reserve(node, name, len, chan_hash(ch), chan_created(ch),
			    node->cfg->name, &res))
		wr_warn("channel table full: a channel stays unreserved");
	wr_gossip_channels_changed(node);
	if (!node->npeers_up)
		return false; /* nobody to tell: onboarding pushes it to a new peer */
	o = malloc(sizeof(*o));
	if (!o)
		return false;
	*o = (struct opening){ cb, arg };
	if (wr_mesh_command(node, "*",
			    wr_chan_reserve_data(name, chan_hash(ch),
						 chan_created(ch), node->cfg->name),
			    on_reserve_reply, o)) {
		free(o);
		return false;
	}
	return true;
}

/* What the unreserve's replies need to repair the table (4.3). */
struct closing {
	bool has_hash;
	uint8_t hash[CHAN_HASH_LEN];
	int64_t created;
	size_t len;
	char name[CHAN_NAME_MAX + 1];
};

static void on_unreserve_reply(struct wr_node *node,
			       const struct inm_pending_event *ev, void *arg)
{
	struct closing *c = arg;
	const cJSON *why = ev->response
		? cJSON_GetObjectItemCaseSensitive(ev->response->data, "reason")
		: NULL;

	if (cJSON_IsString(why) && !strcmp(why->valuestring, "channel still open")) {
		/* a holder we did not know of, or every node forgot: put it
		 * back everywhere at once, so no node lacks the reservation */
		const char *holder = ev->response->source;
		const uint8_t *hash = c->has_hash ? c->hash : NULL;
		enum chan_resv_result res;

		wr_chan_reserve(node, c->name, c->len, hash, c->created, holder,
				&res);
		wr_mesh_command(node, "*",
				wr_chan_reserve_data(c->name, hash, c->created, holder),
				NULL, NULL);
	}
	if (ev->done)
		free(c);
}

static void release(struct wr_node *node, struct chan_channel *ch,
		    bool repair)
{
	struct closing *c = NULL;
	enum chan_resv_result res;
	size_t len;
	const char *name = chan_name(ch, &len);
	cJSON *d = cJSON_CreateObject();

	chan_resv_unreserve(node->mesh.resv, name, len, node->cfg->name, false,
			    &res);
	wr_gossip_channels_changed(node);
	if (!d || !node->npeers_up) {
		cJSON_Delete(d);
		return;
	}
	cJSON_AddStringToObject(d, "command", "unreserve-channel");
	cJSON_AddStringToObject(d, "channel", name);
	if (repair && (c = calloc(1, sizeof(*c)))) {
		c->has_hash = chan_hash(ch) != NULL;
		if (c->has_hash)
			memcpy(c->hash, chan_hash(ch), CHAN_HASH_LEN);
		c->created = chan_created(ch);
		c->len = len;
		memcpy(c->name, name, len);
	}
	if (wr_mesh_command(node, "*", d, c ? on_unreserve_reply : NULL, c))
		free(c);
}

void wr_chan_closed(struct wr_node *node, struct chan_channel *ch)
{
	if (node->mesh.evicting || node->mesh.leaving)
		return;
	release(node, ch, true);
}

static void release_one(struct chan_channel *ch, void *arg)
{
	release(arg, ch, false);
}

void wr_mesh_leave(struct wr_node *node)
{
	if (node->mesh.leaving || !node->mesh.resv)
		return;
	chan_foreach(node->reg, release_one, node);
	node->mesh.leaving = true;
	wr_gossip_leave(node);
}

/* @obj[@key]: a valid channel name, or NULL */
static const char *name_field(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsString(v) ||
	    !chan_name_valid(v->valuestring, strlen(v->valuestring)))
		return NULL;
	return v->valuestring;
}

/* data.holder, defaulting to the packet's source; NULL when invalid */
static const char *holder_field(const struct inm_packet *pkt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(pkt->data, "holder");

	if (!v || cJSON_IsNull(v))
		return pkt->source;
	if (!cJSON_IsString(v) ||
	    !inm_node_name_valid(v->valuestring, strlen(v->valuestring)))
		return NULL;
	return v->valuestring;
}

const char *wr_chan_reserve_cmd(struct wr_node *node,
				const struct inm_packet *pkt)
{
	const cJSON *d = pkt->data;
	const cJSON *cr = cJSON_GetObjectItemCaseSensitive(d, "created");
	const char *name = name_field(d, "channel"), *holder = holder_field(pkt);
	uint8_t hash[CHAN_HASH_LEN];
	enum chan_resv_result res;
	int64_t created = wr_wall_ms();
	bool has;

	if (!name)
		return "missing field: channel";
	if (!wr_hash_parse(cJSON_GetObjectItemCaseSensitive(d, "password"),
			   hash, &has))
		return "missing field: password";
	if (cr && !cJSON_IsNumber(cr))
		return "missing field: created";
	if (!holder)
		return "missing field: holder";
	if (cr)
		created = (int64_t)cr->valuedouble;
	/* only this node says what it holds */
	if (!strcmp(holder, node->cfg->name) &&
	    !chan_find(node->reg, name, strlen(name)))
		return NULL;
	if (wr_chan_reserve(node, name, strlen(name), has ? hash : NULL, created,
			    holder, &res))
		return "internal error";
	if (strcmp(holder, node->cfg->name))
		wr_gossip_holder_named(node, holder);
	return res == CHAN_RESV_ALREADY_RESERVED ? "channel already reserved"
						 : NULL;
}

const char *wr_chan_unreserve_cmd(struct wr_node *node,
				  const struct inm_packet *pkt)
{
	const char *name = name_field(pkt->data, "channel"), *holder = holder_field(pkt);
	enum chan_resv_result res;
	bool active;

	if (!name)
		return "missing field: channel";
	if (!holder)
		return "missing field: holder";
	active = chan_find(node->reg, name, strlen(name)) != NULL;
	if (!strcmp(holder, node->cfg->name))
		return active ? "channel still open" : NULL;
	chan_resv_unreserve(node->mesh.resv, name, strlen(name), holder, active,
			    &res);
	return res == CHAN_RESV_STILL_OPEN ? "channel still open" : NULL;
}

/* ---- announces ---- */

struct held {
	const char *holder;
	int64_t before;             /* only holders opened before this */
	char (*names)[CHAN_NAME_MAX + 1];
	size_t *lens;
	unsigned n, cap;
};

static void collect_held(const struct chan_resv_entry *e, void *arg)
{
	struct held *h = arg;
	unsigned nh = chan_resv_nholders(e);
	size_t len;
	const char *name;

	for (unsigned i = 0; i < nh; i++) {
		if (strcmp(chan_resv_holder(e, i), h->holder))
			continue;
		if (chan_resv_holder_created(e, i) >= h->before || h->n == h->cap)
			return;
		name = chan_resv_name(e, &len);
		memcpy(h->names[h->n], name, len);
		h->names[h->n][len] = '\0';
		h->lens[h->n++] = len;
		return;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void wr_chan_announced(struct wr_node *node, const char *holder,
		       const cJSON *chans, int64_t at)
{
	const cJSON *it;
	const char **listed;
	unsigned nlisted = 0, total = (unsigned)cJSON_GetArraySize(chans);
	struct held h = { .holder = holder, .before = at };

	listed = malloc((total ? total : 1) * sizeof(*listed));
	if (!listed)
		return;
	cJSON_ArrayForEach(it, chans) {
		const char *name = name_field(it, "name");
		const cJSON *cr = cJSON_GetObjectItemCaseSensitive(it, "created");
		uint8_t hash[CHAN_HASH_LEN];
		enum chan_resv_result res;
		bool has;

		if (!name || !cJSON_IsNumber(cr) ||
		    !wr_hash_parse(cJSON_GetObjectItemCaseSensitive(it, "password"),
				   hash, &has))
			continue;
		listed[nlisted++] = name;
		wr_chan_reserve(node, name, strlen(name), has ? hash : NULL,
				(int64_t)cr->valuedouble, holder, &res);
	}
	/* what it held before this announce was built and no longer lists:
	 * an unreserve-channel we missed (a partition, a lost link) */
	h.cap = chan_resv_count(node->mesh.resv);
	if (at && h.cap) {
		h.names = malloc(h.cap * sizeof(*h.names));
		h.lens = malloc(h.cap * sizeof(*h.lens));
		if (h.names && h.lens) {
			chan_resv_foreach(node->mesh.resv, collect_held, &h);
			qsort(listed, nlisted, sizeof(*listed), cmp_str);
			for (unsigned i = 0; i < h.n; i++) {
				const char *key = h.names[i];
				enum chan_resv_result res;

				if (bsearch(&key, listed, nlisted, sizeof(*listed),
					    cmp_str))
					continue;
				chan_resv_unreserve(node->mesh.resv, h.names[i],
						    h.lens[i], holder, false, &res);
			}
		}
		free(h.names);
		free(h.lens);
	}
	free(listed);
}

/* ---- listings ---- */

static cJSON *entry_json(const char *name, const uint8_t *hash, int64_t created)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", name);
	hash_json(o, hash);
	cJSON_AddNumberToObject(o, "created", (double)created);
	return o;
}

static void add_active(struct chan_channel *ch, void *arg)
{
	cJSON *o = entry_json(chan_name(ch, NULL), chan_hash(ch), chan_created(ch));

	if (o)
		cJSON_AddItemToArray(arg, o);
}

struct view {
	struct wr_node *node;
	cJSON *arr;
	bool detail;                /* /api/node: active, subscribers */
};

static void add_reserved(const struct chan_resv_entry *e, void *arg)
{
	struct view *v = arg;
	size_t len;
	const char *name = chan_resv_name(e, &len);
	cJSON *o = entry_json(name, chan_resv_hash(e), chan_resv_created(e)), *hs;
	struct chan_channel *ch;

	if (!o)
		return;
	hs = cJSON_AddArrayToObject(o, "holders");
	for (unsigned i = 0; hs && i < chan_resv_nholders(e); i++)
		cJSON_AddItemToArray(hs, cJSON_CreateString(chan_resv_holder(e, i)));
	if (v->detail) {
		ch = chan_find(v->node->reg, name, len);
		cJSON_AddBoolToObject(o, "active", ch != NULL);
		cJSON_AddNumberToObject(o, "subscribers", ch ? chan_members(ch) : 0);
	}
	cJSON_AddItemToArray(v->arr, o);
}

void wr_chan_list_json(struct wr_node *node, cJSON *arr, bool reserved)
{
	struct view v = { node, arr, false };

	if (reserved)
		chan_resv_foreach(node->mesh.resv, add_reserved, &v);
	else
		chan_foreach(node->reg, add_active, arr);
}

void wr_chan_view_json(struct wr_node *node, cJSON *arr)
{
	struct view v = { node, arr, true };

	chan_resv_foreach(node->mesh.resv, add_reserved, &v);
}
