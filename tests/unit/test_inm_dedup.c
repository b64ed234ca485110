/*
 * tests/unit/test_inm_dedup: the seen-packets set — duplicates, what is not
 * a duplicate, expiry exactly at the window with explicit now_ms, the
 * capacity bound with eviction counted, and a long run against a model.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "inm.h"

#define W 60000
#define NA "0123456789abcdef0123456789abcdef"
#define NB "fedcba9876543210fedcba9876543210"

static void nonce_of(unsigned i, char out[INM_NONCE_LEN + 1])
{
	snprintf(out, INM_NONCE_LEN + 1, "%032x", i);
}

Test(inm_dedup, rejects_bad_arguments)
{
	cr_expect_null(inm_dedup_create(0, W));
	cr_expect_null(inm_dedup_create(8, 0));
	cr_expect_null(inm_dedup_create(8, -1));
	inm_dedup_destroy(NULL);
}

Test(inm_dedup, seen_and_unseen)
{
	struct inm_dedup *d = inm_dedup_create(16, W);
	struct inm_dedup_stats st;

	cr_assert_not_null(d);
	cr_expect_not(inm_dedup_seen(d, "n1", INM_MESSAGE, NA, 1000));
	cr_expect(inm_dedup_seen(d, "n1", INM_MESSAGE, NA, 1001));
	cr_expect(inm_dedup_seen(d, "n1", INM_MESSAGE, NA, 2000));
	/* any differing part makes a different packet */
	cr_expect_not(inm_dedup_seen(d, "n1", INM_MESSAGE, NB, 1000));
	cr_expect_not(inm_dedup_seen(d, "n2", INM_MESSAGE, NA, 1000));
	cr_expect_not(inm_dedup_seen(d, "n1", INM_COMMAND, NA, 1000));
	/* a response reuses its command's nonce and must not be eaten */
	cr_expect_not(inm_dedup_seen(d, "n1", INM_RESPONSE, NA, 1000));
	cr_expect_not(inm_dedup_seen(d, "n1", INM_EVENT, NA, 1000));
	/* the separator keeps source/nonce boundaries apart */
	cr_expect_not(inm_dedup_seen(d, "n", INM_MESSAGE, NA, 1000));
	inm_dedup_stats(d, &st);
	cr_expect_eq(st.checks, 9);
	cr_expect_eq(st.duplicates, 2);
	cr_expect_eq(st.size, 7);
	cr_expect_eq(st.capacity, 16);
	cr_expect_eq(st.evicted, 0);
	inm_dedup_destroy(d);
}

Test(inm_dedup, expires_after_the_window)
{
	struct inm_dedup *d = inm_dedup_create(16, W);
	struct inm_dedup_stats st;

	cr_assert_not_null(d);
	cr_expect_not(inm_dedup_seen(d, "n1", INM_MESSAGE, NA, 1000));
	cr_expect_not(inm_dedup_seen(d, "n1", INM_MESSAGE, NB, 5000));
	/* still remembered at exactly t + window */
	cr_expect(inm_dedup_seen(d, "n1", INM_MESSAGE, NA, 1000 + W));
	/* gone one millisecond later, and recorded anew */
	cr_expect_not(inm_dedup_seen(d, "n1", INM_MESSAGE, NA, 1001 + W));
	cr_expect(inm_dedup_seen(d, "n1", INM_MESSAGE, NA, 1002 + W));
	/* the later entry lives on its own clock */
	cr_expect(inm_dedup_seen(d, "n1", INM_MESSAGE, NB, 5000 + W));
	cr_expect_not(inm_dedup_seen(d, "n1", INM_MESSAGE, NB, 5001 + W));
	inm_dedup_stats(d, &st);
	cr_expect_eq(st.expired, 2);
	cr_expect_eq(st.size, 2);
	/* everything expires at once after a long silence */
	cr_expect_not(inm_dedup_seen(d, "x", INM_EVENT, NA, 10 * W));
	inm_dedup_stats(d, &st);
	cr_expect_eq(st.expired, 4);
	cr_expect_eq(st.size, 1);
	inm_dedup_destroy(d);
}

Test(inm_dedup, capacity_bound_evicts_oldest)
{
	struct inm_dedup *d = inm_dedup_create(4, W);
	struct inm_dedup_stats st;
	char n[INM_NONCE_LEN + 1];

	cr_assert_not_null(d);
	for (unsigned i = 0; i < 6; i++) {
		nonce_of(i, n);
		cr_expect_not(inm_dedup_seen(d, "s", INM_MESSAGE, n, 100 + i));
	}
	inm_dedup_stats(d, &st);
	cr_expect_eq(st.size, 4);
	cr_expect_eq(st.evicted, 2);
	cr_expect_eq(st.expired, 0);
	/* 2..5 remembered, 0 and 1 were evicted well inside the window */
	for (unsigned i = 2; i < 6; i++) {
		nonce_of(i, n);
		cr_expect(inm_dedup_seen(d, "s", INM_MESSAGE, n, 200),
			  "nonce %u", i);
	}
	nonce_of(0, n);
	cr_expect_not(inm_dedup_seen(d, "s", INM_MESSAGE, n, 200));
	inm_dedup_stats(d, &st);
	cr_expect_eq(st.evicted, 3);
	cr_expect_eq(st.size, 4);
	inm_dedup_destroy(d);
}

Test(inm_dedup, capacity_one)
{
	struct inm_dedup *d = inm_dedup_create(1, W);

	cr_assert_not_null(d);
	cr_expect_not(inm_dedup_seen(d, "s", INM_MESSAGE, NA, 0));
	cr_expect(inm_dedup_seen(d, "s", INM_MESSAGE, NA, 0));
	cr_expect_not(inm_dedup_seen(d, "s", INM_MESSAGE, NB, 0));
	cr_expect_not(inm_dedup_seen(d, "s", INM_MESSAGE, NA, 0));
	inm_dedup_destroy(d);
}

/*
 * A long run mixing eviction, expiry and repeats, checked against the
 * obvious model (the last `cap` insertions still inside the window). It
 * exercises the index deletions, where a bug loses or ghosts entries.
 */
Test(inm_dedup, matches_a_model)
{
	enum { CAP = 37, OPS = 20000, WIN = 500 };
	/* the model: insertions in order; live[id] = insertion index + 1 */
	static unsigned ord_id[OPS];
	static int64_t ord_at[OPS];
	static size_t live[OPS];
	size_t norder = 0, oldest = 0;
	struct inm_dedup *d = inm_dedup_create(CAP, WIN);
	uint32_t rng = 12345;
	char n[INM_NONCE_LEN + 1];
	int64_t now = 1;

	cr_assert_not_null(d);
	memset(live, 0, sizeof(live));
	for (unsigned op = 0; op < OPS; op++) {
		unsigned id = op;
		bool want, got;

		rng = rng * 1103515245u + 12345u;
		now += (rng >> 16) % 7;
		/* a third of the time, repeat one of the last 60 insertions */
		if ((rng >> 8) % 3 == 0 && norder) {
			size_t back = (rng >> 4) % (norder < 60 ? norder : 60);

			id = ord_id[norder - 1 - back];
		}
		while (oldest < norder && now - ord_at[oldest] > WIN) {
			live[ord_id[oldest]] = 0;
			oldest++;
		}
		want = live[id] != 0;
		nonce_of(id, n);
		got = inm_dedup_seen(d, "src", INM_MESSAGE, n, now);
		cr_assert_eq(got, want, "op %u id %u", op, id);
		if (!want) {
			if (norder - oldest == CAP) {
				live[ord_id[oldest]] = 0;
				oldest++;
			}
			ord_id[norder] = id;
			ord_at[norder] = now;
			live[id] = ++norder;
		}
	}
	inm_dedup_destroy(d);
}
