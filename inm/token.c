/*
 * inm/token: one-time connection tokens (get-connection-token, 3.1). At
 * most @capacity live tokens, each bound to a node name and valid for
 * ttl_ms; a token is wiped on first use whatever the outcome, and on
 * expiry as soon as a use or issue passes over it. A token is never
 * dropped early: while @capacity are live, issuing is refused (WR_EFULL)
 * rather than silently invalidating one already handed out.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "inm.h"

struct tok {
	bool live;
	int64_t issued_ms;
	char name[INM_NAME_MAX + 1];
	char hex[INM_TOKEN_LEN]; /* no NUL: compared as bytes */
};

struct inm_tokens {
	struct tok *ring; /* issue order; next is the oldest slot */
	size_t capacity, next, live;
	int64_t ttl_ms;
	uint64_t refused;
};

struct inm_tokens *inm_tokens_create(size_t capacity, int64_t ttl_ms)
{
	struct inm_tokens *t;

	if (capacity == 0 || ttl_ms <= 0 || sodium_init() < 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ring = calloc(capacity, sizeof(*t->ring));
	if (!t->ring) {
		free(t);
		return NULL;
	}
	t->capacity = capacity;
	t->ttl_ms = ttl_ms;
	return t;
}

void inm_tokens_destroy(struct inm_tokens *t)
{
	if (!t)
		return;
	sodium_memzero(t->ring, t->capacity * sizeof(*t->ring));
	free(t->ring);
	free(t);
}

static void wipe(struct inm_tokens *t, struct tok *k)
{
	if (k->live)
		t->live--;
	sodium_memzero(k, sizeof(*k));
}

int inm_token_issue(struct inm_tokens *t, const char *name, int64_t now_ms,
		    char out[INM_TOKEN_LEN + 1])
{
	unsigned char raw[INM_TOKEN_LEN / 2];
	struct tok *k;
	size_t nl;

	if (!name)
		return WR_EINVAL;
	nl = strnlen(name, INM_NAME_MAX + 1);
	if (!inm_node_name_valid(name, nl))
		return WR_EINVAL;
	/* a free or expired slot, the oldest first */
	for (size_t i = 0;; i++) {
		if (i == t->capacity) {
			t->refused++;
			return WR_EFULL;
		}
		k = &t->ring[t->next];
		if (!k->live || now_ms - k->issued_ms >= t->ttl_ms)
			break;
		t->next = (t->next + 1) % t->capacity;
	}
	wipe(t, k);
	randombytes_buf(raw, sizeof(raw));
	wr_hex(out, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	memcpy(k->hex, out, INM_TOKEN_LEN);
	memcpy(k->name, name, nl + 1);
	k->issued_ms = now_ms;
	k->live = true;
	t->live++;
	t->next = (t->next + 1) % t->capacity;
	return WR_OK;
}

/*
 * The live token equal to @token, or NULL; expired tokens met on the way
 * are wiped. Compares against every live token in constant time per
 * token: only which slot matched can leak, never how much of a token did.
 */
static struct tok *find(struct inm_tokens *t, const char *token, size_t len,
			int64_t now_ms)
{
	struct tok *hit = NULL;

	if (!token || len != INM_TOKEN_LEN)
		return NULL;
	for (size_t i = 0; i < t->capacity; i++) {
		struct tok *k = &t->ring[i];

		if (!k->live)
			continue;
		if (now_ms - k->issued_ms >= t->ttl_ms) {
			wipe(t, k);
			continue;
		}
		if (sodium_memcmp(k->hex, token, INM_TOKEN_LEN) == 0)
			hit = k;
	}
	return hit;
}

enum inm_token_result inm_token_use(struct inm_tokens *t, const char *token,
				    size_t len, const char *name,
				    int64_t now_ms)
{
	struct tok *hit = find(t, token, len, now_ms);
	enum inm_token_result rc;

	if (!hit)
		return INM_TOKEN_UNKNOWN;
	rc = name && !strcmp(hit->name, name) ? INM_TOKEN_OK
					      : INM_TOKEN_WRONG_NAME;
	wipe(t, hit);
	return rc;
}

bool inm_token_known(struct inm_tokens *t, const char *token, size_t len,
		     int64_t now_ms)
{
	return find(t, token, len, now_ms) != NULL;
}

size_t inm_tokens_count(const struct inm_tokens *t)
{
	return t->live;
}

uint64_t inm_tokens_refused(const struct inm_tokens *t)
{
	return t->refused;
}
