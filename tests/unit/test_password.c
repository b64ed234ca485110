/*
 * tests/unit/test_password: channel password hashing against PBKDF2 vectors
 * computed independently (Python's hashlib, 32768 iterations), the worker
 * threads (waited for with a condition variable and a deadline, never a
 * sleep), the verification cache and the per-connection failure window.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channels.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s) s, sizeof(s) - 1

/*
 * Expected values from:
 * /usr/bin/python3 -c "import hashlib; print(hashlib.pbkdf2_hmac('sha256',
 *     PASSWORD, CHANNEL, 32768, 32).hex())"
 */
static const struct vec {
	const char *channel;
	size_t clen;
	const char *pw;
	size_t pwlen;
	const char *hex;
} vectors[] = {
	{ LIT("channel1"), LIT("wordpass"),
	  "5e8e1c3f3d66a7240d92badaa4c7e9744497dfa0f368fbe05bf6f2227f16788e" },
	/* UTF-8 channel name: the salt is its bytes */
	{ LIT("caf\xc3\xa9-\xf0\x9f\x98\x80"), LIT("hunter2"),
	  "5b5e26243852f981a5edf1bd34d9efe531aed29b658611965eea569d99d37be2" },
	/* empty password */
	{ LIT("open"), LIT(""),
	  "bec036c404d7ba4fcaab2e8c5d798b0cbe1ff6160f300b679d7aad62b482a530" },
	/* explicit lengths: a NUL inside the password counts */
	{ LIT("c"), LIT("p\0w"),
	  "7e91e92f8662594051942cee8d21ec2e5357e87f9f527d5ca911606ac0edc581" },
};

static void hash_hex(const char *channel, size_t clen, const char *pw,
		     size_t pwlen, char hex[2 * CHAN_HASH_LEN + 1])
{
	uint8_t out[CHAN_HASH_LEN];

	cr_assert_eq(chan_pw_hash(channel, clen, pw, pwlen, out), WR_OK);
	wr_hex(hex, out, sizeof(out));
}

Test(password, pbkdf2_vectors)
{
	cr_assert_eq(CHAN_PBKDF2_ITERATIONS, 32768);
	cr_assert_eq(CHAN_HASH_LEN, 32);
	for (size_t i = 0; i < N(vectors); i++) {
		char hex[2 * CHAN_HASH_LEN + 1];

		hash_hex(vectors[i].channel, vectors[i].clen, vectors[i].pw,
			 vectors[i].pwlen, hex);
		cr_expect_str_eq(hex, vectors[i].hex, "vector %zu", i);
	}
}

Test(password, pbkdf2_inputs_matter)
{
	char a[65], b[65];

	/* salt and password are not interchangeable */
	hash_hex(LIT("channel1"), LIT("wordpass"), a);
	hash_hex(LIT("wordpass"), LIT("channel1"), b);
	cr_expect_str_neq(a, b);
	/* the NUL and what follows it are part of the password */
	hash_hex(LIT("c"), LIT("p"), b);
	cr_expect_str_neq(b, vectors[3].hex);
	/* deterministic */
	hash_hex(LIT("channel1"), LIT("wordpass"), b);
	cr_expect_str_eq(a, b);
}

/* ---- jobs and the worker ---- */

Test(password, job_copies_inputs)
{
	char ch[] = "chan", pw[] = "secret";
	struct chan_pw_job *job = chan_pw_job_create(ch, 4, pw, 6);

	cr_assert_not_null(job);
	memset(ch, 'X', 4);
	memset(pw, 'X', 6);
	cr_expect_eq(job->clen, 4);
	cr_expect_eq(job->pwlen, 6);
	cr_expect_str_eq(job->channel, "chan");
	cr_expect_str_eq(job->password, "secret");
	cr_expect_null(job->owner);
	chan_pw_job_free(job);
	chan_pw_job_free(NULL);

	/* only @clen / @pwlen bytes are taken */
	job = chan_pw_job_create("abcdef", 3, "uvwxyz", 2);
	cr_assert_not_null(job);
	cr_expect_str_eq(job->channel, "abc");
	cr_expect_str_eq(job->password, "uv");
	chan_pw_job_free(job);
}

struct waker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_uint wakes;
};

static void waker_init(struct waker *w)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	atomic_init(&w->wakes, 0);
}

static void waker_fini(struct waker *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* The worker's wake callback: runs on a worker thread. */
static void on_wake(void *arg)
{
	struct waker *w = arg;

	pthread_mutex_lock(&w->mu);
	atomic_fetch_add(&w->wakes, 1);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Waits until @n wakes were counted or @secs passed; true on the former. */
static bool wait_wakes(struct waker *w, unsigned n, int secs)
{
	struct timespec deadline;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += secs;
	pthread_mutex_lock(&w->mu);
	while (atomic_load(&w->wakes) < n)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &deadline) ==
		    ETIMEDOUT)
			break;
	ok = atomic_load(&w->wakes) >= n;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

Test(password, worker_hashes_jobs)
{
	enum { NJOBS = 10 };
	struct waker wk;
	struct chan_pw_worker *w;
	struct chan_pw_job *done, *next;
	int tag[NJOBS];
	unsigned seen[NJOBS] = { 0 }, got = 0;

	waker_init(&wk);
	w = chan_pw_worker_create(2, on_wake, &wk);
	cr_assert_not_null(w);
	cr_expect_null(chan_pw_take_done(w), "nothing done yet");
	for (int i = 0; i < NJOBS; i++) {
		char ch[16], pw[16];
		struct chan_pw_job *job;

		snprintf(ch, sizeof(ch), "chan-%d", i);
		snprintf(pw, sizeof(pw), "pw%d", i * 7);
		job = chan_pw_job_create(ch, strlen(ch), pw, strlen(pw));
		cr_assert_not_null(job);
		tag[i] = i;
		job->owner = &tag[i];
		job->rc = -100;
		chan_pw_submit(w, job);
	}
	cr_assert(wait_wakes(&wk, NJOBS, 10), "only %u of %d jobs in 10 s",
		  atomic_load(&wk.wakes), NJOBS);

	done = chan_pw_take_done(w);
	for (; done; done = next) {
		int i = *(int *)done->owner;
		char ch[16], pw[16];
		uint8_t exp[CHAN_HASH_LEN];

		next = done->next;
		cr_assert(i >= 0 && i < NJOBS);
		seen[i]++;
		got++;
		snprintf(ch, sizeof(ch), "chan-%d", i);
		snprintf(pw, sizeof(pw), "pw%d", i * 7);
		cr_expect_eq(done->rc, WR_OK, "job %d", i);
		cr_expect_eq(done->clen, strlen(ch));
		cr_expect_str_eq(done->channel, ch);
		cr_assert_eq(chan_pw_hash(ch, strlen(ch), pw, strlen(pw), exp),
			     WR_OK);
		cr_expect(!memcmp(done->hash, exp, CHAN_HASH_LEN),
			  "job %d hash", i);
		chan_pw_job_free(done);
	}
	cr_expect_eq(got, NJOBS);
	for (int i = 0; i < NJOBS; i++)
		cr_expect_eq(seen[i], 1, "job %d returned %u times", i,
			     seen[i]);
	cr_expect_null(chan_pw_take_done(w), "taken once");
	chan_pw_worker_destroy(w);
	cr_expect_eq(atomic_load(&wk.wakes), NJOBS, "one wake per job");
	waker_fini(&wk);
}

Test(password, worker_vectors_and_order)
{
	struct waker wk;
	struct chan_pw_worker *w;
	struct chan_pw_job *done, *next;
	size_t k = 0;

	waker_init(&wk);
	/* one thread: completion order is submission order */
	w = chan_pw_worker_create(1, on_wake, &wk);
	cr_assert_not_null(w);
	for (size_t i = 0; i < N(vectors); i++) {
		struct chan_pw_job *job = chan_pw_job_create(vectors[i].channel,
							     vectors[i].clen,
							     vectors[i].pw,
							     vectors[i].pwlen);

		cr_assert_not_null(job);
		chan_pw_submit(w, job);
	}
	cr_assert(wait_wakes(&wk, N(vectors), 10));
	for (done = chan_pw_take_done(w); done; done = next, k++) {
		char hex[2 * CHAN_HASH_LEN + 1];

		next = done->next;
		cr_assert_lt(k, N(vectors));
		cr_expect_eq(done->clen, vectors[k].clen,
			     "job %zu out of order", k);
		cr_expect(!memcmp(done->channel, vectors[k].channel,
				  vectors[k].clen));
		wr_hex(hex, done->hash, CHAN_HASH_LEN);
		cr_expect_str_eq(hex, vectors[k].hex, "job %zu", k);
		chan_pw_job_free(done);
	}
	cr_expect_eq(k, N(vectors));
	chan_pw_worker_destroy(w);
	waker_fini(&wk);
}

Test(password, worker_destroy_with_jobs_queued)
{
	struct waker wk;
	struct chan_pw_worker *w;

	waker_init(&wk);
	w = chan_pw_worker_create(1, on_wake, &wk);
	cr_assert_not_null(w);
	for (int i = 0; i < 40; i++) {
		struct chan_pw_job *job = chan_pw_job_create("c", 1, "p", 1);

		cr_assert_not_null(job);
		chan_pw_submit(w, job);
	}
	/* one finished (left in the done list), the rest queued or running */
	cr_assert(wait_wakes(&wk, 1, 10));
	chan_pw_worker_destroy(w);
	cr_expect_lt(atomic_load(&wk.wakes), 40u,
		     "destroy did not run the queue");
	waker_fini(&wk);

	/* immediately, with nothing finished; and without a wake callback */
	w = chan_pw_worker_create(3, NULL, NULL);
	cr_assert_not_null(w);
	for (int i = 0; i < 10; i++)
		chan_pw_submit(w, chan_pw_job_create("c", 1, "p", 1));
	chan_pw_worker_destroy(w);
	chan_pw_worker_destroy(NULL);
}

/* ---- the cache ---- */

Test(password, cache_roundtrip)
{
	struct chan_pw_cache *c = chan_pw_cache_create(64);
	uint8_t h1[CHAN_HASH_LEN], h2[CHAN_HASH_LEN], out[CHAN_HASH_LEN];

	cr_assert_not_null(c);
	memset(h1, 0x11, sizeof(h1));
	memset(h2, 0x22, sizeof(h2));
	memset(out, 0, sizeof(out));
	cr_expect_not(chan_pw_cache_get(c, LIT("chan"), LIT("pw"), out),
		      "empty");

	chan_pw_cache_put(c, LIT("chan"), LIT("pw"), h1);
	cr_expect(chan_pw_cache_get(c, LIT("chan"), LIT("pw"), out));
	cr_expect(!memcmp(out, h1, CHAN_HASH_LEN));

	/* a different password or channel misses */
	static const struct {
		const char *ch;
		size_t clen;
		const char *pw;
		size_t pwlen;
	} miss[] = {
		{ LIT("chan"), LIT("pw2") }, { LIT("chan"), LIT("p") },
		{ LIT("chan"), LIT("") },    { LIT("chan"), LIT("PW") },
		{ LIT("chan2"), LIT("pw") }, { LIT("cha"), LIT("pw") },
		{ LIT("cha"), LIT("npw") }, /* same concatenation */
		{ LIT("chanp"), LIT("w") },  { LIT("chan\0"), LIT("pw") },
	};
	for (size_t i = 0; i < N(miss); i++) {
		memset(out, 0, sizeof(out));
		cr_expect_not(chan_pw_cache_get(c, miss[i].ch, miss[i].clen,
						miss[i].pw, miss[i].pwlen, out),
			      "row %zu hit", i);
	}

	/* a newer put for the same pair replaces the hash */
	chan_pw_cache_put(c, LIT("chan"), LIT("pw"), h2);
	cr_expect(chan_pw_cache_get(c, LIT("chan"), LIT("pw"), out));
	cr_expect(!memcmp(out, h2, CHAN_HASH_LEN));
	chan_pw_cache_destroy(c);
	chan_pw_cache_destroy(NULL);
}

Test(password, cache_split_is_distinct)
{
	struct chan_pw_cache *c = chan_pw_cache_create(16);
	uint8_t h1[CHAN_HASH_LEN], h2[CHAN_HASH_LEN], out[CHAN_HASH_LEN];

	cr_assert_not_null(c);
	memset(h1, 0xa1, sizeof(h1));
	memset(h2, 0xb2, sizeof(h2));
	chan_pw_cache_put(c, LIT("ab"), LIT("c"), h1);
	cr_expect_not(chan_pw_cache_get(c, LIT("a"), LIT("bc"), out),
		      "(\"a\", \"bc\") must not hit (\"ab\", \"c\")");
	chan_pw_cache_put(c, LIT("a"), LIT("bc"), h2);
	/* both present (or one evicted by a slot collision), never swapped */
	if (chan_pw_cache_get(c, LIT("ab"), LIT("c"), out))
		cr_expect(!memcmp(out, h1, CHAN_HASH_LEN));
	cr_expect(chan_pw_cache_get(c, LIT("a"), LIT("bc"), out));
	cr_expect(!memcmp(out, h2, CHAN_HASH_LEN));
	chan_pw_cache_destroy(c);
}

Test(password, cache_many_entries)
{
	struct chan_pw_cache *c = chan_pw_cache_create(1000);
	unsigned hits = 0;

	cr_assert_not_null(c);
	for (unsigned i = 0; i < 200; i++) {
		char ch[16];
		uint8_t h[CHAN_HASH_LEN];

		snprintf(ch, sizeof(ch), "c%u", i);
		memset(h, (int)i, sizeof(h));
		chan_pw_cache_put(c, ch, strlen(ch), LIT("pw"), h);
	}
	for (unsigned i = 0; i < 200; i++) {
		char ch[16];
		uint8_t h[CHAN_HASH_LEN], out[CHAN_HASH_LEN];

		snprintf(ch, sizeof(ch), "c%u", i);
		memset(h, (int)i, sizeof(h));
		if (chan_pw_cache_get(c, ch, strlen(ch), LIT("pw"), out)) {
			hits++;
			/* a hit is always the right entry */
			cr_expect(!memcmp(out, h, CHAN_HASH_LEN), "entry %u",
				  i);
		}
		cr_expect_not(chan_pw_cache_get(c, ch, strlen(ch), LIT("wrong"),
						out));
	}
	/* 200 keys in >= 1000 direct-mapped slots: most survive collisions */
	cr_expect_gt(hits, 150u, "hits %u", hits);
	chan_pw_cache_destroy(c);
}

/* Two caches have different keys: nothing leaks from one to the other. */
Test(password, cache_instances_independent)
{
	struct chan_pw_cache *a = chan_pw_cache_create(16),
			     *b = chan_pw_cache_create(16);
	uint8_t h[CHAN_HASH_LEN], out[CHAN_HASH_LEN];

	cr_assert(a && b);
	memset(h, 7, sizeof(h));
	chan_pw_cache_put(a, LIT("x"), LIT("y"), h);
	cr_expect(chan_pw_cache_get(a, LIT("x"), LIT("y"), out));
	cr_expect_not(chan_pw_cache_get(b, LIT("x"), LIT("y"), out));
	chan_pw_cache_destroy(a);
	chan_pw_cache_destroy(b);
}

/* ---- the failure window ---- */

#define T0 1000000 /* a realistic monotonic clock reading, in ms */

Test(password, rate_limit)
{
	static const struct {
		const char *what;
		int64_t fails[8]; /* offsets from T0; terminated by -1 */
		int64_t at;       /* offset checked */
		bool limited;
	} t[] = {
		{ "no failures", { -1 }, 0, false },
		{ "4 failures", { 0, 1, 2, 3, -1 }, 3, false },
		{ "4 failures, 9 s later",
		  { 0, 1000, 2000, 3000, -1 },
		  9000,
		  false },
		{ "5 failures at once", { 0, 0, 0, 0, 0, -1 }, 0, true },
		{ "5 failures", { 0, 1000, 2000, 3000, 4000, -1 }, 4000, true },
		{ "5 failures, just before 10 s",
		  { 0, 1000, 2000, 3000, 4000, -1 },
		  9999,
		  true },
		{ "10 s after the oldest",
		  { 0, 1000, 2000, 3000, 4000, -1 },
		  10000,
		  false },
		{ "10 s after the newest",
		  { 0, 1000, 2000, 3000, 4000, -1 },
		  14000,
		  false },
		{ "5 spread over exactly 10 s",
		  { 0, 2500, 5000, 7500, 10000, -1 },
		  10000,
		  false },
		{ "5 spread over 9.999 s",
		  { 0, 2500, 5000, 7500, 9999, -1 },
		  9999,
		  true },
		/* the ring keeps the newest five */
		{ "6th failure, oldest aged out",
		  { 0, 5000, 6000, 7000, 8000, 12000, -1 },
		  12000,
		  true },
		{ "old burst, then one",
		  { 0, 1, 2, 3, 4, 20000, -1 },
		  20000,
		  false },
		{ "old burst, then two",
		  { 0, 1, 2, 3, 4, 20000, 20001, -1 },
		  20001,
		  false },
	};

	for (size_t i = 0; i < N(t); i++) {
		struct chan_pw_rate r;

		memset(&r, 0, sizeof(r));
		for (int k = 0; t[i].fails[k] >= 0; k++)
			chan_pw_rate_fail(&r, T0 + t[i].fails[k]);
		cr_expect_eq(chan_pw_rate_limited(&r, T0 + t[i].at),
			     t[i].limited, "row %zu: %s", i, t[i].what);
	}
}

Test(password, rate_limit_sequence)
{
	struct chan_pw_rate r;

	memset(&r, 0, sizeof(r));
	for (int k = 0; k < 4; k++) {
		chan_pw_rate_fail(&r, T0 + k * 100);
		cr_expect_not(chan_pw_rate_limited(&r, T0 + k * 100),
			      "after %d", k + 1);
	}
	chan_pw_rate_fail(&r, T0 + 400);
	cr_expect(chan_pw_rate_limited(&r, T0 + 400));
	cr_expect(chan_pw_rate_limited(&r, T0 + 9999));
	cr_expect_not(chan_pw_rate_limited(&r, T0 + 10000));
	/* T0+100 .. T0+10000: five failures within 9.9 s */
	chan_pw_rate_fail(&r, T0 + 10000);
	cr_expect(chan_pw_rate_limited(&r, T0 + 10000));
	cr_expect(chan_pw_rate_limited(&r, T0 + 10099));
	cr_expect_not(chan_pw_rate_limited(&r, T0 + 10100), "T0+100 aged out");
	for (int k = 1; k <= 4; k++)
		chan_pw_rate_fail(&r, T0 + 30000 + k);
	cr_expect_not(chan_pw_rate_limited(&r, T0 + 30004),
		      "4 recent + 1 stale");
	chan_pw_rate_fail(&r, T0 + 30005);
	cr_expect(chan_pw_rate_limited(&r, T0 + 30005));
}
