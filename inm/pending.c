/*
 * inm/pending: commands this node sent and still waits on (3.4), keyed by
 * nonce, each with a deadline and the set of nodes expected to answer
 * (one for a unicast command, every known node for "*"). Each command's
 * callback ends with exactly one done == true call, unless it is
 * cancelled or the table destroyed; an entry leaves the table before that
 * call so callbacks can re-enter freely.
 */
#include <stdlib.h>
#include <string.h>

#include "inm.h"

struct pend {
	char nonce[INM_NONCE_LEN + 1];
	char *command;
	int64_t deadline_ms;
	uint64_t seq; /* add order, see expire */
	inm_pending_cb cb;
	void *ud;
	size_t nexpect, answered;
	char (*expect)[INM_NAME_MAX + 1];
	bool *got;
};

struct inm_pending {
	struct pend **v;
	size_t n, max;
	uint64_t next_seq;
};

struct inm_pending *inm_pending_create(size_t max_entries)
{
	struct inm_pending *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->v = calloc(max_entries ? max_entries : 1, sizeof(*p->v));
	if (!p->v) {
		free(p);
		return NULL;
	}
	p->max = max_entries;
	return p;
}

static void pend_free(struct pend *e)
{
	if (!e)
		return;
	free(e->command);
	free(e->expect);
	free(e->got);
	free(e);
}

void inm_pending_destroy(struct inm_pending *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		pend_free(p->v[i]);
	free(p->v);
	free(p);
}

static size_t find(const struct inm_pending *p, const char *nonce)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i]->nonce, nonce))
			return i;
	return SIZE_MAX;
}

/* Takes entry @i out of the table (order is not kept) and returns it. */
static struct pend *take(struct inm_pending *p, size_t i)
{
	struct pend *e = p->v[i];

	p->v[i] = p->v[--p->n];
	return e;
}

int inm_pending_add(struct inm_pending *p, const char *nonce,
		    const char *command, const char *const *expect,
		    size_t nexpect, int64_t deadline_ms, inm_pending_cb cb,
		    void *ud)
{
	struct pend *e = NULL;
	int rc = WR_EINVAL;

	if (!nonce || strnlen(nonce, INM_NONCE_LEN + 1) != INM_NONCE_LEN ||
	    !command || !cb || !expect || nexpect == 0)
		goto fail;
	for (size_t i = 0; i < nexpect; i++)
		if (!expect[i] ||
		    !inm_node_name_valid(expect[i],
					 strnlen(expect[i], INM_NAME_MAX + 1)))
			goto fail;
	rc = WR_EEXIST;
	if (find(p, nonce) != SIZE_MAX)
		goto fail;
	rc = WR_EFULL;
	if (p->n >= p->max)
		goto fail;
	rc = WR_ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto fail;
	e->command = strdup(command);
	e->expect = calloc(nexpect, sizeof(*e->expect));
	e->got = calloc(nexpect, sizeof(*e->got));
	if (!e->command || !e->expect || !e->got)
		goto fail;
	memcpy(e->nonce, nonce, INM_NONCE_LEN + 1);
	for (size_t i = 0; i < nexpect; i++)
		memcpy(e->expect[i], expect[i], strlen(expect[i]) + 1);
	e->nexpect = nexpect;
	e->deadline_ms = deadline_ms;
	e->seq = p->next_seq++;
	e->cb = cb;
	e->ud = ud;
	p->v[p->n++] = e;
	return WR_OK;
fail:
	pend_free(e);
	return rc;
}

int inm_pending_response(struct inm_pending *p, const struct inm_packet *resp)
{
	struct inm_pending_event ev = { 0 };
	struct pend *e;
	size_t i, k;

	if (resp->type != INM_RESPONSE)
		return WR_ENOENT;
	i = find(p, resp->nonce);
	if (i == SIZE_MAX)
		return WR_ENOENT;
	e = p->v[i];
	for (k = 0; k < e->nexpect; k++)
		if (!strcmp(e->expect[k], resp->source))
			break;
	/* a node we did not ask, or one answering twice (a duplicate that
	 * dedup let through cannot happen: same source, type and nonce) */
	if (k == e->nexpect || e->got[k])
		return WR_EPERM;
	e->got[k] = true;
	e->answered++;
	ev.nonce = e->nonce;
	ev.command = e->command;
	ev.response = resp;
	ev.done = e->answered == e->nexpect;
	ev.answered = e->answered;
	ev.expected = e->nexpect;
	if (ev.done)
		take(p, i);
	e->cb(e->ud, &ev);
	/* not done: the callback may have cancelled it; do not touch e */
	if (ev.done)
		pend_free(e);
	return WR_OK;
}

static void fire_timeout(struct pend *e)
{
	struct inm_pending_event ev = { 0 };
	const char **missing;
	size_t n = 0;

	/* if this allocation fails the callback just gets no names */
	missing = calloc(e->nexpect, sizeof(*missing));
	if (missing)
		for (size_t i = 0; i < e->nexpect; i++)
			if (!e->got[i])
				missing[n++] = e->expect[i];
	ev.nonce = e->nonce;
	ev.command = e->command;
	ev.reason = "timeout";
	ev.done = true;
	ev.answered = e->answered;
	ev.expected = e->nexpect;
	ev.missing = missing;
	ev.nmissing = n;
	e->cb(e->ud, &ev);
	free(missing);
}

size_t inm_pending_expire(struct inm_pending *p, int64_t now_ms)
{
	/* only commands that existed when we started: one a callback adds
	 * with a past deadline waits for the next call instead of looping */
	uint64_t limit = p->next_seq;
	size_t fired = 0;

	for (;;) {
		size_t i;
		struct pend *e;

		for (i = 0; i < p->n; i++)
			if (p->v[i]->seq < limit &&
			    p->v[i]->deadline_ms <= now_ms)
				break;
		if (i == p->n)
			break;
		e = take(p, i);
		fire_timeout(e);
		pend_free(e);
		fired++;
	}
	return fired;
}

bool inm_pending_cancel(struct inm_pending *p, const char *nonce)
{
	size_t i = find(p, nonce);

	if (i == SIZE_MAX)
		return false;
	pend_free(take(p, i));
	return true;
}

int64_t inm_pending_next_deadline(const struct inm_pending *p)
{
	int64_t t = INT64_MAX;

	for (size_t i = 0; i < p->n; i++)
		if (p->v[i]->deadline_ms < t)
			t = p->v[i]->deadline_ms;
	return t;
}

size_t inm_pending_count(const struct inm_pending *p)
{
	return p->n;
}
