/*
 * tests/unit/test_stats: the node-stats windows (PROTOCOL.md 6.1). Sums at
 * each window's edges, rollover after gaps of every interesting length,
 * a randomised comparison with a naive event list, kb/s arithmetic, the
 * per-channel bound and expiry, and the JSON shapes.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(x) ((int64_t)(x)*1000) /* seconds to ms */

static void sum_is(const struct stats_window *w, int64_t now_ms, unsigned secs,
		   uint64_t packets, uint64_t bytes)
{
	uint64_t p = 99, b = 99;

	cr_assert_eq(stats_sum(w, now_ms, secs, &p, &b), WR_OK);
	cr_expect_eq(p, packets, "now %lld ms, %us: packets %llu, want %llu",
		     (long long)now_ms, secs, (unsigned long long)p,
		     (unsigned long long)packets);
	cr_expect_eq(b, bytes, "now %lld ms, %us: bytes %llu, want %llu",
		     (long long)now_ms, secs, (unsigned long long)b,
		     (unsigned long long)bytes);
}

Test(stats, empty_window)
{
	struct stats_window w;

	stats_window_init(&w);
	for (unsigned s = 1; s <= 60; s++)
		sum_is(&w, S(12345), s, 0, 0);
	sum_is(&w, 0, 60, 0, 0);
	cr_expect(stats_window_empty(&w, S(7)));
}

Test(stats, zeroed_memory_is_an_empty_window)
{
	struct stats_window w;

	memset(&w, 0, sizeof(w));
	stats_add(&w, S(1000) + 5, 10);
	sum_is(&w, S(1000) + 999, 1, 1, 10);
	sum_is(&w, S(1000) + 999, 60, 1, 10);
}

Test(stats, bad_window_length)
{
	struct stats_window w;
	uint64_t p = 7, b = 7;

	stats_window_init(&w);
	stats_add(&w, S(5), 1);
	cr_expect_eq(stats_sum(&w, S(5), 0, &p, &b), WR_EINVAL);
	cr_expect_eq(p + b, 0);
	cr_expect_eq(stats_sum(&w, S(5), 61, &p, &b), WR_EINVAL);
	cr_expect_eq(p + b, 0);
}

/* One message at second 1000 - age; where each window stops counting it. */
static const struct edge {
	unsigned age; /* whole seconds before the query's second */
	uint64_t in1, in15, in60;
} edges[] = {
	{ 0, 1, 1, 1 },  { 1, 0, 1, 1 },  { 14, 0, 1, 1 }, { 15, 0, 0, 1 },
	{ 59, 0, 0, 1 }, { 60, 0, 0, 0 }, { 61, 0, 0, 0 }, { 3600, 0, 0, 0 },
};

Test(stats, window_edges)
{
	for (size_t i = 0; i < N(edges); i++) {
		/* the message at the first and last ms of its second, the
		 * query at the first and last ms of its own */
		static const int64_t at[] = { 0, 999 };

		for (size_t a = 0; a < N(at); a++)
			for (size_t q = 0; q < N(at); q++) {
				struct stats_window w;
				int64_t now = S(1000) + at[q];

				stats_window_init(&w);
				stats_add(&w,
					  S(1000 - (int64_t)edges[i].age) +
						  at[a],
					  100);
				sum_is(&w, now, 1, edges[i].in1,
				       edges[i].in1 * 100);
				sum_is(&w, now, 15, edges[i].in15,
				       edges[i].in15 * 100);
				sum_is(&w, now, 60, edges[i].in60,
				       edges[i].in60 * 100);
			}
	}
}

Test(stats, second_boundary_by_the_ms)
{
	struct stats_window w;

	stats_window_init(&w);
	stats_add(&w, 41999, 1); /* second 41 */
	stats_add(&w, 42000, 2); /* second 42 */
	sum_is(&w, 42000, 1, 1, 2);
	sum_is(&w, 42000, 15, 2, 3);
	sum_is(&w, 41999, 1, 1, 2);   /* a query "before" is one at 42 */
	sum_is(&w, 100999, 60, 2, 3); /* second 100: 41..100 */
	sum_is(&w, 101000, 60, 1, 2); /* second 101: 42..101 */
	sum_is(&w, 102000, 60, 0, 0);
}

/* The same slot reused after gaps: the old second must never leak in. */
static const struct gap {
	int64_t gap_s;
	uint64_t in60_after; /* messages in the 60 s window after the second add */
} gaps[] = {
	{ 0, 2 },   { 1, 2 },    { 14, 2 },        { 15, 2 },
	{ 59, 2 },  { 60, 1 },   { 61, 1 },        { 119, 1 },
	{ 120, 1 }, { 3600, 1 }, { 86400 * 7, 1 },
};

Test(stats, rollover_after_gaps)
{
	for (size_t i = 0; i < N(gaps); i++) {
		struct stats_window w;
		int64_t t0 = S(500) + 250, t1 = t0 + S(gaps[i].gap_s);

		stats_window_init(&w);
		stats_add(&w, t0, 10);
		stats_add(&w, t1, 1000);
		sum_is(&w, t1, 60, gaps[i].in60_after,
		       gaps[i].in60_after == 2 ? 1010 : 1000);
		sum_is(&w, t1, 1, gaps[i].gap_s ? 1 : 2,
		       gaps[i].gap_s ? 1000 : 1010);
		/* 60 s after the second message nothing is left */
		sum_is(&w, t1 + S(60), 60, 0, 0);
		sum_is(&w, t1 + S(59), 60, gaps[i].gap_s ? 1 : 2,
		       gaps[i].gap_s ? 1000 : 1010);
	}
}

Test(stats, time_not_moving)
{
	struct stats_window w;

	stats_window_init(&w);
	for (int i = 0; i < 100000; i++)
		stats_add(&w, S(77) + 500, 3);
	sum_is(&w, S(77) + 500, 1, 100000, 300000);
	sum_is(&w, S(77) + 500, 60, 100000, 300000);
	sum_is(&w, S(78), 1, 0, 0);
	sum_is(&w, S(78), 15, 100000, 300000);
}

Test(stats, time_going_back_counts_in_the_newest_second)
{
	struct stats_window w;

	stats_window_init(&w);
	stats_add(&w, S(100), 1);
	stats_add(&w, S(90), 1); /* a clock that stepped back */
	sum_is(&w, S(100), 1, 2, 2);
	sum_is(&w, S(80), 1, 2, 2); /* so does a query */
}

Test(stats, every_second_of_a_minute)
{
	struct stats_window w;

	/* second s carries s bytes, s = 1..120: each window is an exact sum */
	stats_window_init(&w);
	for (int64_t s = 1; s <= 120; s++) {
		stats_add(&w, S(s) + 10, (uint64_t)s);
		for (unsigned len = 1; len <= 60; len++) {
			int64_t lo = s - len + 1 < 1 ? 1 : s - len + 1;
			uint64_t want = 0;

			for (int64_t k = lo; k <= s; k++)
				want += (uint64_t)k;
			sum_is(&w, S(s) + 999, len, (uint64_t)(s - lo + 1),
			       want);
		}
	}
}

/* Randomised: the window against a plain list of (ms, bytes) events. */
Test(stats, matches_a_naive_model)
{
	enum { EVENTS = 3000 };
	static int64_t at[EVENTS];
	static uint64_t sz[EVENTS];
	uint32_t seed = 12345;
	int64_t t = S(10);
	struct stats_window w;

	stats_window_init(&w);
	for (int i = 0; i < EVENTS; i++) {
		seed = seed * 1103515245u + 12345u;
		/* mostly small steps, now and then 59-61 s or hours */
		switch ((seed >> 16) % 16) {
		case 0:
			t += S(59);
			break;
		case 1:
			t += S(60);
			break;
		case 2:
			t += S(61);
			break;
		case 3:
			t += S(3600);
			break;
		case 4:
			break; /* same ms */
		default:
			t += (seed >> 8) % 2500;
		}
		at[i] = t;
		sz[i] = (seed >> 4) % 5000;
		stats_add(&w, t, sz[i]);
		for (unsigned len = 1; len <= 60; len += (len < 15 ? 1 : 7)) {
			int64_t qs = t / 1000 + (int64_t)((seed >> 3) % 3);
			uint64_t p = 0, b = 0;

			for (int k = i; k >= 0 && at[k] / 1000 > qs - len;
			     k--) {
				p++;
				b += sz[k];
			}
			sum_is(&w, S(qs) + 123, len, p, b);
		}
	}
}

Test(stats, kbps_arithmetic)
{
	cr_expect_eq(stats_kbps(1250, 1), 10.0);
	cr_expect_eq(stats_kbps(1250, 15), 10.0 / 15.0);
	cr_expect(stats_kbps(1250, 15) > 0.6666 &&
		  stats_kbps(1250, 15) < 0.6667);
	cr_expect_eq(stats_kbps(7500, 60), 1.0);
	cr_expect_eq(stats_kbps(0, 60), 0.0);
	cr_expect_eq(stats_kbps(125, 1), 1.0); /* 1000 bits: 1 kb, not 1024 */
	cr_expect_eq(stats_kbps(1, 0), 0.0);
}

static char *window_json(const struct stats_window *w, int64_t now)
{
	struct wr_buf b;
	char *s;

	wr_buf_init(&b);
	stats_window_json(&b, w, now);
	cr_assert(!b.oom && b.p);
	s = strdup(b.p);
	wr_buf_fini(&b);
	return s;
}

Test(stats, window_json_exact)
{
	struct stats_window w;
	char *s;

	stats_window_init(&w);
	s = window_json(&w, S(5));
	cr_expect_str_eq(s,
			 "{\"packets\":{\"1s\":0,\"15s\":0,\"60s\":0},"
			 "\"bandwidth\":{\"1s\":0.0,\"15s\":0.0,\"60s\":0.0}}");
	free(s);

	stats_add(&w, S(70), 500); /* 30 s before: only in 60 s */
	stats_add(&w, S(100), 1250);
	stats_add(&w, S(90), 6250); /* back-dated: counts in 100 */
	s = window_json(&w, S(100) + 400);
	/* 1 s: 7500 B = 60 kb/s; 15 s: 60/15 = 4; 60 s: 8000 B -> 64/60 */
	cr_expect_str_eq(s,
			 "{\"packets\":{\"1s\":2,\"15s\":2,\"60s\":3},"
			 "\"bandwidth\":{\"1s\":60.0,\"15s\":4.0,\"60s\":1.067}}");
	free(s);

	stats_window_init(&w);
	stats_add(&w, S(1), 1250);
	s = window_json(&w, S(1));
	cr_expect_str_eq(
		s,
		"{\"packets\":{\"1s\":1,\"15s\":1,\"60s\":1},"
		"\"bandwidth\":{\"1s\":10.0,\"15s\":0.667,\"60s\":0.167}}");
	free(s);
}

/* ---- per-channel set ---- */

Test(stats, channels_count_separately)
{
	struct stats_channels *s = stats_channels_create(0);
	const struct stats_window *w;
	uint64_t p, b;

	cr_assert_not_null(s);
	cr_expect_eq(stats_channels_add(s, "abc", 3, S(10), 5), WR_OK);
	cr_expect_eq(stats_channels_add(s, "abcdef", 2, S(10), 7),
		     WR_OK); /* "ab" */
	cr_expect_eq(stats_channels_add(s, "abc", 3, S(11), 5), WR_OK);
	cr_expect_eq(stats_channels_add(s, "", 0, S(11), 5), WR_EINVAL);
	cr_expect_eq(stats_channels_count(s), 2);

	w = stats_channels_get(s, "abc", 3);
	cr_assert_not_null(w);
	stats_sum(w, S(11), 60, &p, &b);
	cr_expect_eq(p, 2);
	cr_expect_eq(b, 10);
	w = stats_channels_get(s, "ab", 2);
	cr_assert_not_null(w);
	stats_sum(w, S(11), 60, &p, &b);
	cr_expect_eq(p, 1);
	cr_expect_eq(b, 7);
	cr_expect_null(stats_channels_get(s, "a", 1));
	stats_channels_destroy(s);
	stats_channels_destroy(NULL);
}

Test(stats, channels_bound)
{
	struct stats_channels *s = stats_channels_create(3);
	char name[16];

	cr_assert_not_null(s);
	for (int i = 0; i < 3; i++) {
		int n = snprintf(name, sizeof(name), "ch%d", i);

		cr_expect_eq(stats_channels_add(s, name, (size_t)n, S(1), 1),
			     WR_OK);
	}
	cr_expect_eq(stats_channels_add(s, "ch3", 3, S(1), 1), WR_EFULL);
	cr_expect_eq(stats_channels_add(s, "ch4", 3, S(2), 1), WR_EFULL);
	cr_expect_eq(stats_channels_untracked(s), 2);
	cr_expect_null(stats_channels_get(s, "ch3", 3));
	/* tracked ones still count while full */
	cr_expect_eq(stats_channels_add(s, "ch1", 3, S(30), 1), WR_OK);
	cr_expect_eq(stats_channels_count(s), 3);

	/* ch0 and ch2 fall silent at second 1; gc at 61 frees them */
	stats_channels_gc(s, S(61));
	cr_expect_eq(stats_channels_count(s), 1);
	cr_expect_eq(stats_channels_add(s, "ch3", 3, S(61), 1), WR_OK);
	cr_expect_eq(stats_channels_add(s, "ch4", 3, S(61), 1), WR_OK);
	cr_expect_eq(stats_channels_add(s, "ch5", 3, S(61), 1), WR_EFULL);
	cr_expect_eq(stats_channels_untracked(s), 3);
	stats_channels_destroy(s);
}

Test(stats, channels_expire_60s_after_their_last_message)
{
	struct stats_channels *s = stats_channels_create(0);

	cr_assert_not_null(s);
	stats_channels_add(s, "a", 1, S(10) + 500, 1); /* second 10 */
	stats_channels_add(s, "b", 1, S(40), 1);
	stats_channels_gc(s, S(69) + 999); /* window 10..69: a is in it */
	cr_expect_eq(stats_channels_count(s), 2);
	stats_channels_gc(s, S(70)); /* window 11..70: a is gone */
	cr_expect_eq(stats_channels_count(s), 1);
	cr_expect_null(stats_channels_get(s, "a", 1));
	cr_expect_not_null(stats_channels_get(s, "b", 1));
	stats_channels_gc(s, S(100));
	cr_expect_eq(stats_channels_count(s), 0);
	/* and a channel can come back */
	cr_expect_eq(stats_channels_add(s, "a", 1, S(101), 1), WR_OK);
	cr_expect_eq(stats_channels_count(s), 1);
	stats_channels_destroy(s);
}

Test(stats, channels_many)
{
	struct stats_channels *s = stats_channels_create(0);
	char name[32];

	cr_assert_not_null(s);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < STATS_CHANNELS_MAX; i++) {
			int n = snprintf(name, sizeof(name), "channel-%d", i);

			cr_assert_eq(stats_channels_add(s, name, (size_t)n,
							S(5 + round),
							(uint64_t)i),
				     WR_OK);
		}
	cr_expect_eq(stats_channels_count(s), STATS_CHANNELS_MAX);
	cr_expect_eq(stats_channels_add(s, "one-more", 8, S(6), 1), WR_EFULL);
	for (int i = 0; i < STATS_CHANNELS_MAX; i += 97) {
		int n = snprintf(name, sizeof(name), "channel-%d", i);
		const struct stats_window *w = stats_channels_get(s, name,
								  (size_t)n);
		uint64_t p, b;

		cr_assert_not_null(w);
		stats_sum(w, S(6), 15, &p, &b);
		cr_expect_eq(p, 2);
		cr_expect_eq(b, 2 * (uint64_t)i);
	}
	stats_channels_gc(s, S(65));
	cr_expect_eq(stats_channels_count(s), STATS_CHANNELS_MAX);
	stats_channels_gc(s, S(66));
	cr_expect_eq(stats_channels_count(s), 0);
	stats_channels_destroy(s);
}

static void expect_window(const cJSON *o, double p1, double p15, double p60,
			  double k1, double k15, double k60)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "packets");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "bandwidth");
	const char *keys[] = { "1s", "15s", "60s" };
	double pw[] = { p1, p15, p60 }, kw[] = { k1, k15, k60 };

	cr_assert(cJSON_IsObject(p) && cJSON_IsObject(b));
	cr_expect_eq(cJSON_GetArraySize(p), 3);
	cr_expect_eq(cJSON_GetArraySize(b), 3);
	for (int i = 0; i < 3; i++) {
		const cJSON *pv = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
		const cJSON *kv = cJSON_GetObjectItemCaseSensitive(b, keys[i]);

		cr_assert(cJSON_IsNumber(pv) && cJSON_IsNumber(kv));
		cr_expect_eq(pv->valuedouble, pw[i], "packets %s", keys[i]);
		cr_expect_eq(kv->valuedouble, kw[i], "bandwidth %s", keys[i]);
	}
}

Test(stats, node_json_shape)
{
	struct stats_channels *s = stats_channels_create(0);
	struct stats_window net;
	struct wr_buf b;
	cJSON *root, *ch;

	cr_assert_not_null(s);
	stats_window_init(&net);
	/* c1: 2 messages now; c"2: one 20 s ago; old: silent for 60 s */
	stats_add(&net, S(140), 9);
	stats_channels_add(s, "old", 3, S(140), 9);
	stats_add(&net, S(180), 1500);
	stats_channels_add(s, "c\"2", 3, S(180), 1500);
	stats_add(&net, S(200), 1000);
	stats_channels_add(s, "c1", 2, S(200), 1000);
	stats_add(&net, S(200), 250);
	stats_channels_add(s, "c1", 2, S(200), 250);

	wr_buf_init(&b);
	wr_buf_puts(&b, "{\"ok\":true,");
	stats_node_json(&b, &net, s, S(200) + 1);
	wr_buf_puts(&b, "}");
	cr_assert(!b.oom);
	root = cJSON_Parse(b.p);
	cr_assert_not_null(root, "not JSON: %s", b.p);

	expect_window(cJSON_GetObjectItemCaseSensitive(root, "network"), 2, 2,
		      3, 10.0, 0.667, 0.367);
	ch = cJSON_GetObjectItemCaseSensitive(root, "channels");
	cr_assert(cJSON_IsObject(ch));
	cr_expect_eq(cJSON_GetArraySize(ch), 2, "%s", b.p); /* "old" is empty */
	expect_window(cJSON_GetObjectItemCaseSensitive(ch, "c1"), 2, 2, 2, 10.0,
		      0.667, 0.167);
	expect_window(cJSON_GetObjectItemCaseSensitive(ch, "c\"2"), 0, 0, 1,
		      0.0, 0.0, 0.2);
	cJSON_Delete(root);

	/* nothing tracked: "channels":{} */
	stats_channels_gc(s, S(300));
	wr_buf_reset(&b);
	stats_channels_json(&b, s, S(300));
	cr_expect_str_eq(b.p, "{}");
	wr_buf_fini(&b);
	stats_channels_destroy(s);
}
