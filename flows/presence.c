/*
 * flows/presence: presence across the mesh (PROTOCOL.md 7.4, 7.5.9,
 * 7.5.10; docs/mesh.md "Presence").
 *
 * Every node answers the command channel-presence {"channel"} with its
 * subscribers' count and its users (sorted, at most FLOW_PRES_USERS_MAX
 * and FLOW_PRES_BYTES_MAX). The `presence` command asks every other alive
 * holder of the channel and merges the answers with this node's; a holder
 * that does not answer within command_timeout_ms is left out: partial.
 *
 * Join and leave events are pulled, not pushed: a node with subscribers
 * that asked for them polls the channel's other alive holders every
 * FLOW_PRES_POLL_MS and hands each answer to the channel's presence
 * state (channels/presence.c), which emits the edges of "present on some
 * node". A holder that is no holder any more, or no longer alive (a
 * crash, a partition), is dropped and its users leave unless present
 * elsewhere. Pulling keeps no state on the answering side, repairs itself
 * after any lost packet, and needs no ordering between nodes: the cost is
 * one small command per holder and channel each second, paid only for
 * channels where someone listens.
 */
#include <string.h>

#include "internal.h"

/* [mesh] has announce_interval_ms for records; presence wants seconds. */
#define FLOW_PRES_POLL_MS 1000
/* Per holder answer: the first users in sort order (a presence answer
 * shows at most 1000 anyway) within this many bytes of names. */
#define FLOW_PRES_USERS_MAX CHAN_PRESENCE_USERS_MAX
#define FLOW_PRES_BYTES_MAX 60000
#define FLOW_PRES_HOLDERS_MAX 64

/* Every round, ask and query in flight is on f->pres_live, so that
 * flows_destroy() frees them: the mesh's pending table fires no callback
 * when it goes. */
struct pres_obj {
	struct pres_obj *prev, *next;
	void (*free_fn)(struct pres_obj *o);
};

static void live_add(struct flows *f, struct pres_obj *o,
		     void (*free_fn)(struct pres_obj *o))
{
	o->free_fn = free_fn;
	o->prev = NULL;
	o->next = f->pres_live;
	if (o->next)
		o->next->prev = o;
	f->pres_live = o;
}

static void live_del(struct flows *f, struct pres_obj *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		f->pres_live = o->next;
	if (o->next)
		o->next->prev = o->prev;
}

static void plain_free(struct pres_obj *o)
{
	free(o);
}

/* ---- answering ---- */

struct users_json {
	cJSON *arr;
	unsigned n;
	size_t bytes;
	bool truncated;
};

static void add_user(void *arg, const char *user, size_t len)
{
	struct users_json *u = arg;
	char buf[CHAN_USER_MAX + 1];
	cJSON *s;

	if (u->truncated || !u->arr)
		return;
	if (u->n >= FLOW_PRES_USERS_MAX ||
	    u->bytes + len > FLOW_PRES_BYTES_MAX || len > CHAN_USER_MAX) {
		u->truncated = true;
		return;
	}
	memcpy(buf, user, len);
	buf[len] = '\0';
	s = cJSON_CreateString(buf);
	if (!s || !cJSON_AddItemToArray(u->arr, s)) {
		cJSON_Delete(s);
		u->truncated = true;
		return;
	}
	u->n++;
	u->bytes += len;
}

static void cmd_channel_presence(void *ud, const struct inm_packet *pkt)
{
	struct flows *f = ud;
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(pkt->data, "channel");
	struct chan_channel *ch;
	struct users_json u = { 0 };
	cJSON *d;

	if (!cJSON_IsString(c) ||
	    !chan_name_valid(c->valuestring, strlen(c->valuestring))) {
		mesh_respond_fail(f->mesh, pkt, "missing field: channel");
		return;
	}
	ch = chan_find(f->reg, c->valuestring, strlen(c->valuestring));
	d = cJSON_CreateObject();
	if (d && cJSON_AddTrueToObject(d, "ok") &&
	    cJSON_AddNumberToObject(d, "clients",
				    ch ? (double)chan_members(ch) : 0))
		u.arr = cJSON_AddArrayToObject(d, "users");
	if (!u.arr) {
		cJSON_Delete(d);
		mesh_respond_fail(f->mesh, pkt, "internal error");
		return;
	}
	if (ch)
		chan_pres_local_each(chan_presence(ch), add_user, &u);
	if (u.truncated)
		cJSON_AddTrueToObject(d, "truncated");
	f->pres_answered++;
	mesh_respond(f->mesh, pkt, d);
}

int flow_presence_init(struct flows *f)
{
	return mesh_command_register(f->mesh, "channel-presence",
				     cmd_channel_presence, f);
}

/* ---- the other alive holders of a channel ---- */

struct holders {
	const char *name[FLOW_PRES_HOLDERS_MAX];
	unsigned n;
};

static void other_holders(struct flows *f, const char *channel, size_t len,
			  struct holders *h)
{
	const struct chan_resv_entry *e = chan_resv_find(f->resv, channel, len);
	const char *self = mesh_name(f->mesh);
	unsigned n = e ? chan_resv_nholders(e) : 0;

	h->n = 0;
	for (unsigned i = 0; i < n && h->n < FLOW_PRES_HOLDERS_MAX; i++) {
		const char *name = chan_resv_holder(e, i);

		/* 7.5.10: only the holders that are alive */
		if (strcmp(name, self) && mesh_alive(f->mesh, name))
			h->name[h->n++] = name;
	}
}

/* A holder's users from its answer: a malloc'd array of malloc'd strings
 * (chan_presence_remote takes them). False on a malformed answer. */
static bool answer_users(const cJSON *data, char ***out, unsigned *n,
			 double *clients)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(data, "users");
	const cJSON *cl = cJSON_GetObjectItemCaseSensitive(data, "clients");
	const cJSON *it;
	unsigned cap, k = 0;
	char **v;

	if (!cJSON_IsArray(arr) || !cJSON_IsNumber(cl) || cl->valuedouble < 0)
		return false;
	cap = (unsigned)cJSON_GetArraySize(arr);
	if (cap > FLOW_PRES_USERS_MAX)
		cap = FLOW_PRES_USERS_MAX;
	v = calloc(cap ? cap : 1, sizeof(*v));
	if (!v)
		return false;
	cJSON_ArrayForEach(it, arr) {
		if (k == cap)
			break;
		if (!cJSON_IsString(it) || !*it->valuestring ||
		    strlen(it->valuestring) > CHAN_USER_MAX)
			continue;
		v[k] = strdup(it->valuestring);
		if (!v[k])
			break;
		k++;
	}
	*out = v;
	*n = k;
	*clients = cl->valuedouble;
	return true;
}

static void free_users(char **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static cJSON *presence_data(const char *channel)
{
	cJSON *d = cJSON_CreateObject();

	if (!d || !cJSON_AddStringToObject(d, "command", "channel-presence") ||
	    !cJSON_AddStringToObject(d, "channel", channel)) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

/* ---- polling for events ---- */

struct poll_round {
	struct pres_obj live; /* first: freed as one block */
	struct flows *f;
	unsigned left;
	char channel[CHAN_NAME_MAX + 1];
};

struct poll_ask {
	struct pres_obj live;
	struct poll_round *round;
	char holder[INM_NAME_MAX + 1];
};

static void on_poll_reply(void *ud, const struct inm_pending_event *ev)
{
	struct poll_ask *a = ud;
	struct poll_round *r = a->round;
	struct flows *f = r->f;
	struct chan_channel *ch = chan_find(f->reg, r->channel,
					    strlen(r->channel));
	struct chan_pres *p = ch ? chan_presence(ch) : NULL;
	char **users;
	unsigned n;
	double clients;

	/* the channel closed or nobody listens any more: nothing to do */
	if (ev->response && p && chan_presence_listeners(ch) &&
	    answer_users(ev->response->data, &users, &n, &clients))
		chan_presence_remote(f->reg, ch, a->holder, users, n,
				     !chan_pres_seeded(p));
	/* a timeout keeps what the holder said last: a crash or a
	 * partition takes it out of the alive holders, then it is dropped */
	if (!ev->done)
		return;
	live_del(f, &a->live);
	free(a);
	if (--r->left)
		return;
	if (p) {
		chan_pres_set_polling(p, false);
		if (chan_presence_listeners(ch))
			chan_pres_set_seeded(p);
	}
	live_del(f, &r->live);
	free(r);
}

struct drop_ctx {
	struct flows *f;
	struct chan_channel *ch;
	const struct holders *h;
};

static void drop_gone(void *arg, const char *holder)
{
	struct drop_ctx *x = arg;

	for (unsigned i = 0; i < x->h->n; i++)
		if (!strcmp(x->h->name[i], holder))
			return;
	chan_presence_drop(x->f->reg, x->ch, holder);
}

static void poll_channel(struct chan_channel *ch, void *arg)
{
	struct flows *f = arg;
	struct chan_pres *p = chan_presence(ch);
	size_t len;
	const char *name = chan_name(ch, &len);
	struct holders h;
	struct drop_ctx x = { f, ch, &h };
	struct poll_round *r;

	if (!p || !chan_presence_listeners(ch) || chan_pres_polling(p))
		return;
	other_holders(f, name, len, &h);
	chan_pres_remote_each(p, drop_gone, &x);
	if (!h.n) {
		chan_pres_set_seeded(p); /* nobody else: nothing to wait for */
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->f = f;
	memcpy(r->channel, name, len);
	r->left = 1; /* held while sending: a reply cannot end the round */
	for (unsigned i = 0; i < h.n; i++) {
		struct poll_ask *a = calloc(1, sizeof(*a));
		cJSON *d = presence_data(r->channel);

		if (!a || !d) {
			free(a);
			cJSON_Delete(d);
			break;
		}
		a->round = r;
		snprintf(a->holder, sizeof(a->holder), "%s", h.name[i]);
		r->left++;
		if (mesh_command(f->mesh, a->holder, d, on_poll_reply, a)) {
			r->left--;
			free(a);
			continue;
		}
		live_add(f, &a->live, plain_free);
	}
	f->pres_polls++;
	if (--r->left) {
		live_add(f, &r->live, plain_free);
		chan_pres_set_polling(p, true);
		return;
	}
	free(r);
}

void flow_presence_listen(struct flows *f, struct chan_channel *ch)
{
	/* the first listener's baseline is the holders' lists now, not at
	 * the next tick: a user joining meanwhile would pass unseen */
	if (!chan_pres_seeded(chan_presence(ch)))
		poll_channel(ch, f);
}

void flow_presence_tick(struct flows *f, int64_t now)
{
	if (now < f->pres_next_ms)
		return;
	f->pres_next_ms = now + FLOW_PRES_POLL_MS;
	if (f->leaving)
		return;
	chan_foreach(f->reg, poll_channel, f);
}

/* ---- the presence command (7.4) ---- */

struct flow_pres_ask {
	struct pres_obj live;
	struct flows *f;
	flow_pres_cb cb;
	void *ud;
	unsigned left;
	struct flow_pres_answer ans;
	unsigned cap;
};

/* Takes @v's strings into the answer's list (sorted and trimmed at the
 * end). */
static void take_users(struct flow_pres_ask *q, char **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (q->ans.nusers == q->cap) {
			unsigned cap = q->cap ? q->cap * 2 : 16;
			char **nv = realloc(q->ans.users, cap * sizeof(*nv));

			if (!nv) {
				free_users(v + i, n - i);
				free(v);
				return;
			}
			q->ans.users = nv;
			q->cap = cap;
		}
		q->ans.users[q->ans.nusers++] = v[i];
	}
	free(v);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ask_free(struct pres_obj *o)
{
	struct flow_pres_ask *q = (struct flow_pres_ask *)o;

	free_users(q->ans.users, q->ans.nusers);
	free(q);
}

static void ask_finish(struct flow_pres_ask *q)
{
	unsigned k = 0;

	if (q->ans.nusers)
		qsort(q->ans.users, q->ans.nusers, sizeof(char *), cmp_strp);
	for (unsigned i = 0; i < q->ans.nusers; i++) {
		if ((k && !strcmp(q->ans.users[k - 1], q->ans.users[i])) ||
		    k >= CHAN_PRESENCE_USERS_MAX)
			free(q->ans.users[i]);
		else
			q->ans.users[k++] = q->ans.users[i];
	}
	q->ans.nusers = k;
	if (q->ans.partial)
		q->f->pres_partial++;
	if (q->cb)
		q->cb(q->ud, &q->ans);
	live_del(q->f, &q->live);
	ask_free(&q->live);
}

static void on_ask_reply(void *ud, const struct inm_pending_event *ev)
{
	struct flow_pres_ask *q = ud;
	char **users;
	unsigned n;
	double clients;

	/* a timeout, a refusal or an answer that makes no sense: left out */
	if (ev->response &&
	    answer_users(ev->response->data, &users, &n, &clients)) {
		q->ans.clients += (uint64_t)clients;
		take_users(q, users, n);
	} else {
		q->ans.partial = true;
	}
	if (ev->done && !--q->left)
		ask_finish(q);
}

static void add_local(void *arg, const char *user, size_t len)
{
	struct flow_pres_ask *q = arg;
	char **v = malloc(sizeof(*v));

	if (!v)
		return;
	v[0] = strndup(user, len);
	if (!v[0]) {
		free(v);
		return;
	}
	take_users(q, v, 1);
}

int flow_presence_ask(struct flows *f, struct chan_channel *ch, flow_pres_cb cb,
		      void *ud, struct flow_pres_ask **out)
{
	struct flow_pres_ask *q = calloc(1, sizeof(*q));
	size_t len;
	const char *name = chan_name(ch, &len);
	struct holders h;

	*out = NULL;
	if (!q)
		return WR_ENOMEM;
	q->f = f;
	q->cb = cb;
	q->ud = ud;
	live_add(f, &q->live, ask_free);
	q->ans.clients = chan_members(ch);
	chan_pres_local_each(chan_presence(ch), add_local, q);
	f->pres_queries++;
	other_holders(f, name, len, &h);
	q->left = 1; /* held while sending */
	for (unsigned i = 0; i < h.n; i++) {
		cJSON *d = presence_data(name);

		q->left++;
		if (!d ||
		    mesh_command(f->mesh, h.name[i], d, on_ask_reply, q)) {
			q->left--;
			q->ans.partial = true; /* could not be asked */
		}
	}
	if (--q->left)
		*out = q;
	else
		ask_finish(q); /* nobody else to ask */
	return WR_OK;
}

void flow_presence_forget(struct flow_pres_ask *q)
{
	if (q)
		q->cb = NULL;
}

void flow_presence_counts(const struct flows *f, uint64_t *queries,
			  uint64_t *partial, uint64_t *polls)
{
	*queries = f->pres_queries;
	*partial = f->pres_partial;
	*polls = f->pres_polls;
}

void flow_presence_fini(struct flows *f)
{
	while (f->pres_live) {
		struct pres_obj *o = f->pres_live;

		f->pres_live = o->next;
		o->free_fn(o);
	}
}
