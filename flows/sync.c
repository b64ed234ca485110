/*
 * flows/sync: each node's channels here against its record (docs/mesh.md).
 * A node's record carries the count and digest of its active channels.
 * After a newer record of it arrived (a period later: time for the
 * reservation commands of the change to land), and at once when it
 * becomes reachable, the holdings our reservation table gives it are
 * compared with the record; when they differ we pull its list-channels,
 * stamped, and make its holder set exact. A holder named by a command
 * before the mesh knew it is dropped if it never shows up.
 */
#include <string.h>

#include "internal.h"

static int64_t period(const struct flows *f)
{
	return f->cfg->announce_interval_ms;
}

static struct flow_check *check_find(struct flow_check *v, unsigned n,
				     const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	return NULL;
}

static void check_remove(struct flow_check *v, unsigned *n,
			 struct flow_check *c)
{
	*c = v[--*n];
}

/* Checks @name's channels against its record at @due (or sooner). */
static void schedule(struct flows *f, const char *name, int64_t due)
{
	struct flow_check *c = check_find(f->checks, f->nchecks, name);

	if (c) {
		if (due < c->due_ms)
			c->due_ms = due;
		return;
	}
	if (f->nchecks == FLOW_CHECKS_MAX)
		return; /* the next record change schedules it again */
	c = &f->checks[f->nchecks++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->due_ms = due;
}

void flow_sync_record(struct flows *f, const struct inm_node_state *st)
{
	/* whatever the last record said: a record missed while we were cut
	 * off may have been the one that changed */
	if (!st->legacy)
		schedule(f, st->name, wr_now_ms() + period(f));
}

void flow_sync_node(struct flows *f, const struct inm_node_state *st,
		    enum inm_view_event ev)
{
	unsigned n;

	if (ev == INM_VIEW_UP) {
		schedule(f, st->name, 0);
		return;
	}
	n = chan_resv_holder_gone(f->resv, st->name);
	if (n)
		wr_info("mesh: node '%s' gone: %u channel(s) updated", st->name,
			n);
}

struct held_digest {
	const char *holder;
	uint64_t d;
	uint32_t n;
};

static void digest_held(const struct chan_resv_entry *e, void *arg)
{
	struct held_digest *h = arg;
	unsigned n = chan_resv_nholders(e);

	for (unsigned i = 0; i < n; i++) {
		size_t len;
		const char *name;
		const uint8_t *hash;

		if (strcmp(chan_resv_holder(e, i), h->holder))
			continue;
		name = chan_resv_name(e, &len);
		hash = chan_resv_hash(e);
		h->d ^= inm_chan_digest(name, len, hash,
					hash ? CHAN_HASH_LEN : 0,
					chan_resv_holder_created(e, i));
		h->n++;
		return;
	}
}

struct pull {
	struct flows *f;
	char name[INM_NAME_MAX + 1];
};

static void on_pulled(void *ud, const struct inm_pending_event *ev)
{
	struct pull *p = ud;
	struct flows *f = p->f;
	const cJSON *d = ev->response ? ev->response->data : NULL;
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(d, "channels");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(d, "at");
	struct flow_check *c;

	if (!ev->done)
		return;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")) &&
	    cJSON_IsArray(chans))
		flow_chan_announced(f, p->name, chans,
				    inm_json_int_ok(at)
					    ? (int64_t)at->valuedouble
					    : 0);
	c = check_find(f->checks, f->nchecks, p->name);
	if (c && c->pulling) {
		if (ev->response) {
			check_remove(f->checks, &f->nchecks, c);
		} else { /* timed out: once more, a period later */
			c->pulling = false;
			c->due_ms = wr_now_ms() + period(f);
		}
	}
	free(p);
}

static void run_check(struct flows *f, struct flow_check *c)
{
	struct inm_view *v = mesh_view(f->mesh);
	const struct inm_node_state *st = inm_view_find(v, c->name);
	struct held_digest h = { c->name, 0, 0 };
	struct pull *p;
	cJSON *cmd;

	if (!st || st->legacy || !inm_view_reachable(v, c->name)) {
		check_remove(f->checks, &f->nchecks, c);
		return;
	}
	chan_resv_foreach(f->resv, digest_held, &h);
	if (h.n == st->nchannels && h.d == st->chan_digest) {
		check_remove(f->checks, &f->nchecks, c);
		return;
	}
	wr_info("mesh: channels of '%s' differ from its record (%u here, %u "
		"there): asking it",
		c->name, h.n, st->nchannels);
	cmd = cJSON_CreateObject();
	p = calloc(1, sizeof(*p));
	if (!cmd || !p ||
	    !cJSON_AddStringToObject(cmd, "command", "list-channels") ||
	    !cJSON_AddTrueToObject(cmd, "stamp")) {
		cJSON_Delete(cmd);
		free(p);
		return;
	}
	p->f = f;
	snprintf(p->name, sizeof(p->name), "%s", c->name);
	c->pulling = true;
	if (mesh_command(f->mesh, c->name, cmd, on_pulled, p)) {
		free(p);
		c->pulling = false;
		c->due_ms = wr_now_ms() + period(f);
	}
}

void flow_sync_holder_named(struct flows *f, const char *holder)
{
	struct flow_check *c;

	if (mesh_alive(f->mesh, holder) ||
	    check_find(f->suspects, f->nsuspects, holder) ||
	    f->nsuspects == FLOW_CHECKS_MAX)
		return;
	c = &f->suspects[f->nsuspects++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", holder);
	c->due_ms = wr_now_ms() + f->cfg->peer_timeout_ms + period(f);
}

/* A holder named before the mesh knew it, still unknown: not a node. */
static void run_suspects(struct flows *f, int64_t now)
{
	for (unsigned i = 0; i < f->nsuspects;) {
		struct flow_check *c = &f->suspects[i];

		if (c->due_ms > now) {
			i++;
			continue;
		}
		if (!mesh_alive(f->mesh, c->name)) {
			unsigned n = chan_resv_holder_gone(f->resv, c->name);

			if (n)
				wr_info("mesh: holder '%s' never joined the "
					"view: %u channel(s) updated",
					c->name, n);
		}
		check_remove(f->suspects, &f->nsuspects, c);
	}
}

void flow_sync_tick(struct flows *f, int64_t now)
{
	for (unsigned i = 0; i < f->nchecks;) {
		struct flow_check *c = &f->checks[i];
		unsigned before = f->nchecks;

		if (c->pulling || c->due_ms > now) {
			i++;
			continue;
		}
		run_check(f, c);
		if (f->nchecks == before)
			i++;
	}
	run_suspects(f, now);
}
