/*
 * flows/channels: channel state across the mesh (PROTOCOL.md 4). The
 * reservation table (channels/reserve) is this node's view of the whole
 * mesh, this node included as a holder of its active channels: opening a
 * channel adds us and tells everyone (reserve-channel to "*"), closing it
 * removes us (unreserve-channel to "*", with the "channel still open"
 * repair), a holder's list of its channels (an old announce, a stamped
 * list-channels) makes its set exact, and the race rule of the table
 * decides every conflict the same way on every node.
 */
#include <string.h>

#include <sodium.h>

#include "internal.h"

bool flow_chan_lookup(struct flows *f, const char *name, size_t len,
		      const uint8_t **hash)
{
	struct chan_channel *ch = chan_find(f->reg, name, len);
	const struct chan_resv_entry *e;

	if (ch) {
		*hash = chan_hash(ch);
		return true;
	}
	e = chan_resv_find(f->resv, name, len);
	*hash = e ? chan_resv_hash(e) : NULL;
	return e != NULL;
}

/* A race was lost (4.4): every local subscriber leaves and is told. */
static void evict(struct flows *f, const char *name, size_t len)
{
	struct chan_channel *ch = chan_find(f->reg, name, len);
	struct wr_buf *b = &f->scratch;
	struct wr_msg *frame;
	unsigned n = 0;

	if (!ch)
		return;
	wr_buf_reset(b);
	wr_buf_puts(b, "{\"type\":\"unsubscribed\",\"data\":{\"channel\":");
	wr_buf_json_str(b, name, len);
	wr_buf_puts(b, ",\"reason\":\"channel reservation lost\"}}");
	frame = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	f->evicting = true;
	for (bool last = false; !last; n++) {
		struct chan_client *cl = chan_member(ch, 0);

		last = chan_members(ch) == 1;
		/* a subscriber still waiting for its answer gets that instead */
		if (frame && !(f->ops.waiting && f->ops.waiting(f->ud, cl)))
			chan_client_push(f->reg, cl, frame);
		chan_leave(f->reg, ch, cl); /* frees ch after the last */
	}
	f->evicting = false;
	wr_msg_unref(&frame);
	wr_warn("channel reservation lost: %u local subscriber(s) removed", n);
}

static void on_lost(const char *channel, size_t len, const char *holder,
		    void *arg)
{
	struct flows *f = arg;

	if (!strcmp(holder, mesh_name(f->mesh)))
		evict(f, channel, len);
}

/*
 * What a peer states about another holder must be checkable: the holder
 * is this node, a node linked to it, or one its view holds alive (never a
 * made-up name, which no sweep would ever remove), and the creation time
 * lies between MESH_CREATED_FLOOR_MS and our wall clock plus the skew
 * allowance (a forged "created": 0 would win every race for good).
 */
bool flow_chan_claim_ok(struct flows *f, int64_t created, const char *holder)
{
	if (created < 0 || created > wr_wall_ms() + MESH_SKEW_MS)
		return false;
	return !strcmp(holder, mesh_name(f->mesh)) ||
	       mesh_link_named(f->mesh, holder) || mesh_alive(f->mesh, holder);
}

int flow_chan_reserve(struct flows *f, const char *name, size_t len,
		      const uint8_t *hash, int64_t created, const char *holder,
		      enum chan_resv_result *res)
{
	if (!flow_chan_claim_ok(f, created, holder)) {
		mesh_counters(f->mesh)->resv_refused++;
		return WR_EINVAL;
	}
	return chan_resv_reserve(f->resv, name, len, hash, created, holder,
				 on_lost, f, res);
}

cJSON *flow_chan_reserve_data(const char *name, const uint8_t *hash,
			      int64_t created, const char *holder)
{
	cJSON *d = cJSON_CreateObject();

	if (!d || !cJSON_AddStringToObject(d, "command", "reserve-channel") ||
	    !cJSON_AddStringToObject(d, "channel", name) ||
	    !inm_hash_json(d, hash) ||
	    !cJSON_AddNumberToObject(d, "created", (double)created) ||
	    !cJSON_AddStringToObject(d, "holder", holder)) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

struct opening {
	flow_opened_cb cb;
	void *ud;
};

static void on_reserve_reply(void *ud, const struct inm_pending_event *ev)
{
	struct opening *o = ud;
	const cJSON *why = NULL;

	if (ev->response)
		why = cJSON_GetObjectItemCaseSensitive(ev->response->data,
						       "reason");
	if (cJSON_IsString(why))
		wr_info("reserve-channel refused by '%s': %s",
			ev->response->source, why->valuestring);
	if (!ev->done)
		return;
	if (o->cb)
		o->cb(o->ud, ev->answered >= ev->expected);
	free(o);
}

bool flow_chan_opened(struct flows *f, struct chan_channel *ch,
		      flow_opened_cb cb, void *ud)
{
	size_t len;
	const char *name = chan_name(ch, &len);
	const char *self = mesh_name(f->mesh);
	enum chan_resv_result res;
	struct opening *o;

	if (flow_chan_reserve(f, name, len, chan_hash(ch), chan_created(ch),
			      self, &res))
		wr_warn("channel table full: a channel stays unreserved");
	mesh_channels_changed(f->mesh);
	if (!mesh_links_up(f->mesh))
		return false; /* nobody to tell: onboarding pushes it to a new peer */
	o = malloc(sizeof(*o));
	if (!o)
		return false;
	*o = (struct opening){ cb, ud };
	if (mesh_command(f->mesh, "*",
			 flow_chan_reserve_data(name, chan_hash(ch),
						chan_created(ch), self),
			 on_reserve_reply, o)) {
		free(o);
		return false;
	}
	return true;
}

/* What the unreserve's replies need to repair the table (4.3). */
struct closing {
	struct flows *f;
	bool has_hash;
	uint8_t hash[CHAN_HASH_LEN];
	int64_t created;
	size_t len;
	char name[CHAN_NAME_MAX + 1];
};

static void on_unreserve_reply(void *ud, const struct inm_pending_event *ev)
{
	struct closing *c = ud;
	const cJSON *why =
		ev->response
			? cJSON_GetObjectItemCaseSensitive(ev->response->data,
							   "reason")
			: NULL;

	if (cJSON_IsString(why) &&
	    !strcmp(why->valuestring, "channel still open")) {
		/* a holder we did not know of, or every node forgot: put it
		 * back everywhere at once, so no node lacks the reservation */
		const char *holder = ev->response->source;
		const uint8_t *hash = c->has_hash ? c->hash : NULL;
		enum chan_resv_result res;

		flow_chan_reserve(c->f, c->name, c->len, hash, c->created,
				  holder, &res);
		mesh_command(c->f->mesh, "*",
			     flow_chan_reserve_data(c->name, hash, c->created,
						    holder),
			     NULL, NULL);
	}
	if (ev->done)
		free(c);
}

static void release(struct flows *f, struct chan_channel *ch, bool repair)
{
	struct closing *c = NULL;
	enum chan_resv_result res;
	size_t len;
	const char *name = chan_name(ch, &len);
	cJSON *d;

	chan_resv_unreserve(f->resv, name, len, mesh_name(f->mesh), false,
			    &res);
	mesh_channels_changed(f->mesh);
	if (!mesh_links_up(f->mesh))
		return;
	d = cJSON_CreateObject();
	if (!d || !cJSON_AddStringToObject(d, "command", "unreserve-channel") ||
	    !cJSON_AddStringToObject(d, "channel", name)) {
		cJSON_Delete(d);
		return;
	}
	if (repair && (c = calloc(1, sizeof(*c)))) {
		c->f = f;
		c->has_hash = chan_hash(ch) != NULL;
		if (c->has_hash)
			memcpy(c->hash, chan_hash(ch), CHAN_HASH_LEN);
		c->created = chan_created(ch);
		c->len = len;
		memcpy(c->name, name, len);
	}
	if (mesh_command(f->mesh, "*", d, c ? on_unreserve_reply : NULL, c))
		free(c);
}

void flow_chan_closed(struct flows *f, struct chan_channel *ch)
{
	if (f->evicting || f->leaving)
		return;
	release(f, ch, true);
}

static void release_one(struct chan_channel *ch, void *arg)
{
	release(arg, ch, false);
}

void flow_chan_leave(struct flows *f)
{
	if (f->leaving)
		return;
	chan_foreach(f->reg, release_one, f);
	f->leaving = true;
}

/* ---- the commands of 4.2 and 4.3 ---- */

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

/* NULL when ok, else the reason to answer. */
static const char *reserve_cmd(struct flows *f, const struct inm_packet *pkt)
{
	const cJSON *d = pkt->data;
	const cJSON *cr = cJSON_GetObjectItemCaseSensitive(d, "created");
	const char *name = name_field(d, "channel"),
		   *holder = holder_field(pkt);
	const char *self = mesh_name(f->mesh);
	uint8_t hash[CHAN_HASH_LEN];
	enum chan_resv_result res;
	int64_t created = wr_wall_ms();
	bool has;

	if (!name)
		return "missing field: channel";
	if (inm_hash_decode(cJSON_GetObjectItemCaseSensitive(d, "password"),
			    hash, &has))
		return "missing field: password";
	if (cr && !inm_json_int_ok(cr))
		return "missing field: created";
	if (!holder)
		return "missing field: holder";
	if (cr)
		created = (int64_t)cr->valuedouble;
	/* only this node says what it holds */
	if (!strcmp(holder, self) && !chan_find(f->reg, name, strlen(name)))
		return NULL;
	if (!flow_chan_claim_ok(f, created, holder)) {
		mesh_counters(f->mesh)->resv_refused++;
		return "invalid reservation";
	}
	if (flow_chan_reserve(f, name, strlen(name), has ? hash : NULL, created,
			      holder, &res))
		return "internal error";
	if (strcmp(holder, self))
		flow_sync_holder_named(f, holder);
	return res == CHAN_RESV_ALREADY_RESERVED ? "channel already reserved"
						 : NULL;
}

static const char *unreserve_cmd(struct flows *f, const struct inm_packet *pkt)
{
	const char *name = name_field(pkt->data, "channel"),
		   *holder = holder_field(pkt);
	enum chan_resv_result res;
	bool active;

	if (!name)
		return "missing field: channel";
	if (!holder)
		return "missing field: holder";
	active = chan_find(f->reg, name, strlen(name)) != NULL;
	if (!strcmp(holder, mesh_name(f->mesh)))
		return active ? "channel still open" : NULL;
	chan_resv_unreserve(f->resv, name, strlen(name), holder, active, &res);
	return res == CHAN_RESV_STILL_OPEN ? "channel still open" : NULL;
}

static void answer(struct flows *f, const struct inm_packet *pkt,
		   const char *why)
{
	if (why)
		mesh_respond_fail(f->mesh, pkt, why);
	else
		mesh_respond(f->mesh, pkt, cJSON_CreateObject());
}

static void cmd_reserve(void *ud, const struct inm_packet *pkt)
{
	answer(ud, pkt, reserve_cmd(ud, pkt));
}

static void cmd_unreserve(void *ud, const struct inm_packet *pkt)
{
	answer(ud, pkt, unreserve_cmd(ud, pkt));
}

static void list_channels(struct flows *f, const struct inm_packet *pkt,
			  bool reserved)
{
	cJSON *d = cJSON_CreateObject(), *arr = NULL;

	if (d && cJSON_AddTrueToObject(d, "ok"))
		arr = cJSON_AddArrayToObject(d, "channels");
	if (!arr) {
		cJSON_Delete(d);
		mesh_respond_fail(f->mesh, pkt, "internal error");
		return;
	}
	flow_chan_list_json(f, arr, reserved);
	/* asked with "stamp" (docs/mesh.md): when the list was true, so a
	 * holder set is replaced by it only for channels opened before */
	if (!reserved &&
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pkt->data, "stamp")))
		cJSON_AddNumberToObject(d, "at", (double)wr_wall_ms());
	mesh_respond(f->mesh, pkt, d);
}

static void cmd_list_channels(void *ud, const struct inm_packet *pkt)
{
	list_channels(ud, pkt, false);
}

static void cmd_list_reserved(void *ud, const struct inm_packet *pkt)
{
	list_channels(ud, pkt, true);
}

int flow_channels_init(struct flows *f)
{
	if (mesh_command_register(f->mesh, "list-channels", cmd_list_channels,
				  f) ||
	    mesh_command_register(f->mesh, "list-reserved-channels",
				  cmd_list_reserved, f) ||
	    mesh_command_register(f->mesh, "reserve-channel", cmd_reserve, f) ||
	    mesh_command_register(f->mesh, "unreserve-channel", cmd_unreserve,
				  f))
		return WR_EFULL;
	return WR_OK;
}

/* ---- a holder's whole list ---- */

struct held {
	const char *holder;
	int64_t before; /* only holders opened before this */
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
		if (chan_resv_holder_created(e, i) >= h->before ||
		    h->n == h->cap)
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

void flow_chan_announced(struct flows *f, const char *holder,
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
		struct inm_chan_entry e;
		enum chan_resv_result res;

		if (inm_chan_entry_decode(it, &e) || !e.has_created)
			continue;
		listed[nlisted++] = e.name;
		flow_chan_reserve(f, e.name, strlen(e.name),
				  e.has_hash ? e.hash : NULL, e.created, holder,
				  &res);
	}
	/* what it held before this list was true and no longer lists: an
	 * unreserve-channel we missed (a partition, a lost link) */
	h.cap = chan_resv_count(f->resv);
	if (at && h.cap) {
		h.names = malloc(h.cap * sizeof(*h.names));
		h.lens = malloc(h.cap * sizeof(*h.lens));
		if (h.names && h.lens) {
			chan_resv_foreach(f->resv, collect_held, &h);
			qsort(listed, nlisted, sizeof(*listed), cmp_str);
			for (unsigned i = 0; i < h.n; i++) {
				const char *key = h.names[i];
				enum chan_resv_result res;

				if (bsearch(&key, listed, nlisted,
					    sizeof(*listed), cmp_str))
					continue;
				chan_resv_unreserve(f->resv, h.names[i],
						    h.lens[i], holder, false,
						    &res);
			}
		}
		free(h.names);
		free(h.lens);
	}
	free(listed);
}

/* ---- listings ---- */

static void add_active(struct chan_channel *ch, void *arg)
{
	cJSON *o = inm_chan_entry_json(chan_name(ch, NULL), chan_hash(ch),
				       chan_created(ch));

	if (o)
		cJSON_AddItemToArray(arg, o);
}

struct view {
	struct flows *f;
	cJSON *arr;
	bool detail; /* /api/node: active, subscribers */
};

/*
 * What /api/node shows for a password: null for none, else the first 16
 * hex characters of HMAC-SHA256(key, hash), the key being the mesh's
 * static token (so every node of a mesh shows the same tag for the same
 * password, which is what an operator compares) or, without one, random
 * per process. Without the key the tag is no help to an offline guess.
 */
static cJSON *view_tag(const struct flows *f, const uint8_t *hash)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * 8 + 1];
	crypto_auth_hmacsha256_state st;

	if (!hash)
		return cJSON_CreateNull();
	if (f->cfg->token) /* read each time: a reload may change it */
		crypto_auth_hmacsha256_init(&st,
					    (const unsigned char *)f->cfg->token,
					    strlen(f->cfg->token));
	else
		crypto_auth_hmacsha256_init(&st, f->view_key,
					    sizeof(f->view_key));
	crypto_auth_hmacsha256_update(&st, hash, CHAN_HASH_LEN);
	crypto_auth_hmacsha256_final(&st, mac);
	wr_hex(hex, mac, 8);
	return cJSON_CreateString(hex);
}

static void add_reserved(const struct chan_resv_entry *e, void *arg)
{
	struct view *v = arg;
	size_t len;
	const char *name = chan_resv_name(e, &len);
	cJSON *o = inm_chan_entry_json(name, chan_resv_hash(e),
				       chan_resv_created(e)),
	      *hs;
	struct chan_channel *ch;

	if (!o)
		return;
	hs = cJSON_AddArrayToObject(o, "holders");
	for (unsigned i = 0; hs && i < chan_resv_nholders(e); i++)
		cJSON_AddItemToArray(hs,
				     cJSON_CreateString(chan_resv_holder(e,
									 i)));
	if (v->detail) {
		/* GET /api/node: hashes never leave the mesh (issue 10) */
		cJSON_ReplaceItemInObjectCaseSensitive(
			o, "password", view_tag(v->f, chan_resv_hash(e)));
		ch = chan_find(v->f->reg, name, len);
		cJSON_AddBoolToObject(o, "active", ch != NULL);
		cJSON_AddNumberToObject(o, "subscribers",
					ch ? chan_members(ch) : 0);
	}
	cJSON_AddItemToArray(v->arr, o);
}

void flow_chan_list_json(struct flows *f, cJSON *arr, bool reserved)
{
	struct view v = { f, arr, false };

	if (reserved)
		chan_resv_foreach(f->resv, add_reserved, &v);
	else
		chan_foreach(f->reg, add_active, arr);
}

void flow_chan_view_json(struct flows *f, cJSON *arr)
{
	struct view v = { f, arr, true };

	chan_resv_foreach(f->resv, add_reserved, &v);
}
