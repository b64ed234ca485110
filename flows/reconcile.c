/*
 * flows/reconcile: the master's repair decisions (PROTOCOL.md 5.4), pure:
 * from what every node holds (its list-channels answer) and what every
 * node believes (its list-reserved-channels answer) to the commands that
 * bring each believer in step. The truth is built in a reservation table
 * of its own, so conflicting holders are settled by the race rule as on
 * every node. A node that did not answer list-channels is neither taken as
 * holding nothing nor unreserved anywhere; a node is never told what it
 * holds itself (it is the authority on that).
 */
#include <string.h>

#include "flows.h"

static const cJSON *entry_named(const cJSON *arr, const char *name)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");

		if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
			return e;
	}
	return NULL;
}

static bool has_holder(const cJSON *e, const char *holder)
{
	const cJSON *h;

	cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(e, "holders"))
		if (cJSON_IsString(h) && !strcmp(h->valuestring, holder))
			return true;
	return false;
}

static struct chan_resv_table *truth_of(const cJSON *holds)
{
	struct chan_resv_table *t = chan_resv_table_create(1u << 20, 0);
	const cJSON *holder, *e;

	if (!t)
		return NULL;
	cJSON_ArrayForEach(holder, holds) {
		if (!inm_node_name_valid(holder->string,
					 strlen(holder->string)))
			continue;
		cJSON_ArrayForEach(e, holder) {
			struct inm_chan_entry ce;
			enum chan_resv_result res;

			if (inm_chan_entry_decode(e, &ce) || !ce.has_created)
				continue;
			chan_resv_reserve(t, ce.name, strlen(ce.name),
					  ce.has_hash ? ce.hash : NULL,
					  ce.created, holder->string, NULL,
					  NULL, &res);
		}
	}
	return t;
}

struct fix {
	const char *target; /* the node being brought in step */
	const cJSON *view;  /* what it believes */
	flow_repair_cb cb;
	void *arg;
};

/* Reservations the target lacks: one reserve-channel per missing holder. */
static void add_missing(const struct chan_resv_entry *e, void *arg)
{
	struct fix *f = arg;
	size_t len;
	const char *name = chan_resv_name(e, &len);
	const cJSON *have = entry_named(f->view, name);
	const cJSON *hp = cJSON_GetObjectItemCaseSensitive(have, "password");
	const uint8_t *hash = chan_resv_hash(e);
	char hex[2 * CHAN_HASH_LEN + 1] = "";
	bool same;

	if (hash)
		wr_hex(hex, hash, CHAN_HASH_LEN);
	same = have &&
	       (hash ? cJSON_IsString(hp) && !strcmp(hp->valuestring, hex)
		     : cJSON_IsNull(hp));
	for (unsigned i = 0; i < chan_resv_nholders(e); i++) {
		const char *h = chan_resv_holder(e, i);
		struct flow_repair r = { .dest = f->target,
					 .reserve = true,
					 .channel = name,
					 .hash = hash,
					 .created = chan_resv_holder_created(e,
									     i),
					 .holder = h };

		if (strcmp(h, f->target) && !(same && has_holder(have, h)))
			f->cb(&r, f->arg);
	}
}

/* Holders the target believes in that hold nothing, by their own answer. */
static void drop_stale(const struct chan_resv_table *truth, const cJSON *holds,
		       const struct fix *f)
{
	const cJSON *e, *h;

	cJSON_ArrayForEach(e, f->view) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
		const struct chan_resv_entry *t;

		if (!cJSON_IsString(n))
			continue;
		t = chan_resv_find(truth, n->valuestring,
				   strlen(n->valuestring));
		cJSON_ArrayForEach(h,
				   cJSON_GetObjectItemCaseSensitive(e,
								    "holders")) {
			struct flow_repair r = { .dest = f->target,
						 .reserve = false,
						 .channel = n->valuestring };

			if (!cJSON_IsString(h) ||
			    !strcmp(h->valuestring, f->target) ||
			    !cJSON_GetObjectItemCaseSensitive(holds,
							      h->valuestring))
				continue; /* itself, or a node that did not answer */
			if (t && chan_resv_has_holder(t, h->valuestring))
				continue;
			r.holder = h->valuestring;
			f->cb(&r, f->arg);
		}
	}
}

int flow_reconcile(const cJSON *holds, const cJSON *views, flow_repair_cb cb,
		   void *arg)
{
	struct chan_resv_table *truth = truth_of(holds);
	const cJSON *view;

	if (!truth)
		return WR_ENOMEM;
	cJSON_ArrayForEach(view, views) {
		struct fix f = { view->string, view, cb, arg };

		if (!cJSON_IsArray(view))
			continue;
		chan_resv_foreach(truth, add_missing, &f);
		drop_stale(truth, holds, &f);
	}
	chan_resv_table_destroy(truth);
	return WR_OK;
}
