/*
 * channels/password: PBKDF2-HMAC-SHA256 channel password hashing on worker
 * threads (32768 iterations cost milliseconds: never on the event loop),
 * a cache of successful verifications keyed by a keyed BLAKE2b of
 * (channel, password), and the per-connection failure window.
 * Threads touch only the two job lists, under the worker's mutex.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "channels.h"

int chan_pw_hash(const char *channel, size_t clen, const char *pw, size_t pwlen,
		 uint8_t out[CHAN_HASH_LEN])
{
	if (!PKCS5_PBKDF2_HMAC(pw, (int)pwlen, (const unsigned char *)channel,
			       (int)clen, CHAN_PBKDF2_ITERATIONS, EVP_sha256(),
			       CHAN_HASH_LEN, out))
		return WR_ENOMEM;
	return WR_OK;
}

struct chan_pw_job *chan_pw_job_create(const char *channel, size_t clen,
				       const char *pw, size_t pwlen)
{
	struct chan_pw_job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	job->channel = malloc(clen + 1);
	job->password = malloc(pwlen + 1);
	if (!job->channel || !job->password) {
		chan_pw_job_free(job);
		return NULL;
	}
	memcpy(job->channel, channel, clen);
	job->channel[clen] = '\0';
	job->clen = clen;
	memcpy(job->password, pw, pwlen);
	job->password[pwlen] = '\0';
	job->pwlen = pwlen;
	return job;
}

void chan_pw_job_free(struct chan_pw_job *job)
{
	if (!job)
		return;
	if (job->password)
		sodium_memzero(job->password, job->pwlen);
	free(job->password);
	free(job->channel);
	free(job);
}

struct chan_pw_worker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct chan_pw_job *todo_head, *todo_tail;
	struct chan_pw_job *done;
	bool stop;
	int nthreads;
	pthread_t *threads;
	void (*wake)(void *arg);
	void *arg;
};

static void *worker_main(void *p)
{
	struct chan_pw_worker *w = p;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct chan_pw_job *job;

		while (!w->stop && !w->todo_head)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		job = w->todo_head;
		w->todo_head = job->next;
		if (!w->todo_head)
			w->todo_tail = NULL;
		pthread_mutex_unlock(&w->lock);

		job->rc = chan_pw_hash(job->channel, job->clen, job->password,
				       job->pwlen, job->hash);
		/* the loop needs only the hash from here on */
		sodium_memzero(job->password, job->pwlen);

		pthread_mutex_lock(&w->lock);
		job->next = w->done;
		w->done = job;
		pthread_mutex_unlock(&w->lock);
		if (w->wake)
			w->wake(w->arg);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct chan_pw_worker *chan_pw_worker_create(int nthreads,
					     void (*wake)(void *arg), void *arg)
{
	struct chan_pw_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->wake = wake;
	w->arg = arg;
	w->threads = calloc((size_t)nthreads, sizeof(*w->threads));
	if (!w->threads) {
		chan_pw_worker_destroy(w);
		return NULL;
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w)) {
			chan_pw_worker_destroy(w);
			return NULL;
		}
		w->nthreads++;
	}
	return w;
}

static void free_list(struct chan_pw_job *job)
{
	while (job) {
		struct chan_pw_job *next = job->next;

		chan_pw_job_free(job);
		job = next;
	}
}

void chan_pw_worker_destroy(struct chan_pw_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	free_list(w->todo_head);
	free_list(w->done);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void chan_pw_submit(struct chan_pw_worker *w, struct chan_pw_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->todo_tail)
		w->todo_tail->next = job;
	else
		w->todo_head = job;
	w->todo_tail = job;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

bool chan_pw_cancel(struct chan_pw_worker *w, struct chan_pw_job *job)
{
	struct chan_pw_job **pp, *prev = NULL;
	bool found = false;

	pthread_mutex_lock(&w->lock);
	for (pp = &w->todo_head; *pp; prev = *pp, pp = &(*pp)->next)
		if (*pp == job) {
			*pp = job->next;
			if (w->todo_tail == job)
				w->todo_tail = prev;
			found = true;
			break;
		}
	if (found) { /* done without deriving: the loop frees it as usual */
		job->rc = WR_EAGAIN;
		sodium_memzero(job->password, job->pwlen);
		job->next = w->done;
		w->done = job;
	}
	pthread_mutex_unlock(&w->lock);
	if (found && w->wake)
		w->wake(w->arg);
	return found;
}

struct chan_pw_job *chan_pw_take_done(struct chan_pw_worker *w)
{
	struct chan_pw_job *list, *rev = NULL;

	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->lock);
	/* completion order, oldest first */
	while (list) {
		struct chan_pw_job *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	return rev;
}

/* ---- cache ---- */

struct cache_entry {
	uint8_t key[32];
	uint8_t hash[CHAN_HASH_LEN];
	bool used;
};

struct chan_pw_cache {
	unsigned n; /* power of two */
	unsigned char secret[crypto_generichash_KEYBYTES];
	struct cache_entry *e;
};

struct chan_pw_cache *chan_pw_cache_create(unsigned entries)
{
	struct chan_pw_cache *c;
	unsigned n = 16;

	if (sodium_init() < 0)
		return NULL;
	while (n < entries)
		n *= 2;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->e = calloc(n, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return NULL;
	}
	c->n = n;
	randombytes_buf(c->secret, sizeof(c->secret));
	return c;
}

void chan_pw_cache_destroy(struct chan_pw_cache *c)
{
	if (!c)
		return;
	sodium_memzero(c->e, c->n * sizeof(*c->e));
	free(c->e);
	free(c);
}

static void cache_key(const struct chan_pw_cache *c, const char *channel,
		      size_t clen, const char *pw, size_t pwlen,
		      uint8_t key[32])
{
	crypto_generichash_state st;
	uint8_t len8[8];

	/* length-prefix the channel so (ab, c) and (a, bc) differ */
	for (int i = 0; i < 8; i++)
		len8[i] = (uint8_t)((uint64_t)clen >> (8 * i));
	crypto_generichash_init(&st, c->secret, sizeof(c->secret), 32);
	crypto_generichash_update(&st, len8, sizeof(len8));
	crypto_generichash_update(&st, (const unsigned char *)channel, clen);
	crypto_generichash_update(&st, (const unsigned char *)pw, pwlen);
	crypto_generichash_final(&st, key, 32);
}

bool chan_pw_cache_get(struct chan_pw_cache *c, const char *channel,
		       size_t clen, const char *pw, size_t pwlen,
		       uint8_t out[CHAN_HASH_LEN])
{
	uint8_t key[32];
	struct cache_entry *e;
	uint32_t idx;

	cache_key(c, channel, clen, pw, pwlen, key);
	memcpy(&idx, key, sizeof(idx));
	e = &c->e[idx & (c->n - 1)];
	if (!e->used || sodium_memcmp(e->key, key, 32))
		return false;
	memcpy(out, e->hash, CHAN_HASH_LEN);
	return true;
}

void chan_pw_cache_key(const struct chan_pw_cache *c, const char *channel,
		       size_t clen, const char *pw, size_t pwlen,
		       uint8_t key[CHAN_PW_KEY_LEN])
{
	cache_key(c, channel, clen, pw, pwlen, key);
}

void chan_pw_cache_put_key(struct chan_pw_cache *c,
			   const uint8_t key[CHAN_PW_KEY_LEN],
			   const uint8_t hash[CHAN_HASH_LEN])
{
	struct cache_entry *e;
	uint32_t idx;

	memcpy(&idx, key, sizeof(idx));
	/* direct-mapped: a collision evicts the older entry, which only
	 * costs one more PBKDF2 later */
	e = &c->e[idx & (c->n - 1)];
	memcpy(e->key, key, 32);
	memcpy(e->hash, hash, CHAN_HASH_LEN);
	e->used = true;
}

void chan_pw_cache_put(struct chan_pw_cache *c, const char *channel,
		       size_t clen, const char *pw, size_t pwlen,
		       const uint8_t hash[CHAN_HASH_LEN])
{
	uint8_t key[CHAN_PW_KEY_LEN];

	cache_key(c, channel, clen, pw, pwlen, key);
	chan_pw_cache_put_key(c, key, hash);
}

/* ---- rate limit ---- */

bool chan_pw_rate_limited(const struct chan_pw_rate *r, int64_t now_ms)
{
	unsigned recent = 0;

	for (int i = 0; i < CHAN_PW_MAX_FAILS; i++)
		if (r->fails[i] && now_ms - r->fails[i] < CHAN_PW_WINDOW_MS)
			recent++;
	return recent >= CHAN_PW_MAX_FAILS;
}

void chan_pw_rate_fail(struct chan_pw_rate *r, int64_t now_ms)
{
	r->fails[r->next] = now_ms ? now_ms : 1;
	r->next = (r->next + 1) % CHAN_PW_MAX_FAILS;
}
