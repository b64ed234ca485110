/*
 * tests/unit/test_slab: the slab allocator (common/slab.c) — classes by
 * rounded size, objects distinct, aligned and inside the region, reuse of
 * freed objects, empty slabs given back by a trim (some kept), the
 * region running out (NULL, not a crash), and a churn against a shadow
 * copy that would show two live objects overlapping.
 *
 * The region is one per process, so every test here runs in its own
 * process (Criterion's default) and starts it small.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wr.h"

#define SLAB (64 * 1024)

static void setup(void)
{
	cr_assert_eq(wr_slab_init(64 * SLAB), WR_OK);
}

TestSuite(slab, .init = setup);

Test(slab, classes_by_rounded_size)
{
	int a = wr_slab_class(864), b = wr_slab_class(860),
	    c = wr_slab_class(880);

	cr_assert_geq(a, 0);
	cr_expect_eq(a, b, "860 and 864 both round to 864");
	cr_expect_neq(a, c);
	cr_expect_eq(wr_slab_class(0), WR_EINVAL);
	cr_expect_eq(wr_slab_class(SLAB / 4 + 1), WR_EINVAL);
	cr_expect_geq(wr_slab_class(SLAB / 4), 0, "16 KiB objects fit");
	for (int i = 0; i < 16; i++)
		(void)wr_slab_class(32 + 16 * (size_t)i);
	cr_expect_eq(wr_slab_class(4000), WR_EFULL, "16 classes at most");
	cr_expect_null(wr_slab_alloc(99));
	cr_expect_null(wr_slab_alloc(-1));
}

Test(slab, objects_distinct_aligned_owned)
{
	int c = wr_slab_class(276);
	enum { N = 1000 }; /* 4+ slabs of 288-byte objects */
	static char *p[N];

	for (int i = 0; i < N; i++) {
		p[i] = wr_slab_alloc(c);
		cr_assert_not_null(p[i]);
		cr_assert_eq((uintptr_t)p[i] % 16, 0);
		cr_assert(wr_slab_owns(p[i]));
		cr_assert_eq(wr_slab_size(p[i]), 288);
		memset(p[i], i & 0xff, 288);
	}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 288; k++)
			cr_assert_eq((unsigned char)p[i][k], i & 0xff,
				     "object %d overwritten", i);
	int on_heap;
	void *m = malloc(16);
	cr_expect_not(wr_slab_owns(m));
	cr_expect_not(wr_slab_owns(&on_heap));
	cr_expect_eq(wr_slab_size(m), 0);
	free(m);

	struct wr_slab_stats st;
	wr_slab_stats(&st);
	cr_expect_eq(st.objects, N);
	cr_expect_eq(st.bytes, (size_t)N * 288);
	cr_expect_eq(st.slabs, (N + SLAB / 288 - 1) / (SLAB / 288));
	for (int i = 0; i < N; i++)
		wr_slab_free(p[i]);
	wr_slab_free(NULL);
}

Test(slab, freed_object_reused_first)
{
	int c = wr_slab_class(160);
	void *a = wr_slab_alloc(c), *b = wr_slab_alloc(c);

	wr_slab_free(a);
	cr_expect_eq(wr_slab_alloc(c), a, "the last freed comes back first");
	cr_expect_neq(wr_slab_alloc(c), b);
}

Test(slab, empty_slabs_given_back_one_kept)
{
	int c = wr_slab_class(16384); /* 4 a slab */
	void *p[40];
	struct wr_slab_stats st;

	for (int i = 0; i < 40; i++)
		cr_assert_not_null(p[i] = wr_slab_alloc(c));
	wr_slab_stats(&st);
	cr_expect_eq(st.slabs, 10);
	cr_expect_eq(st.released, 0);
	for (int i = 0; i < 40; i++)
		wr_slab_free(p[i]);
	wr_slab_stats(&st);
	cr_expect_eq(st.objects, 0);
	cr_expect_eq(st.slabs, 10, "empty slabs stay until a trim");
	cr_expect_eq(wr_slab_trim(1), 9);
	wr_slab_stats(&st);
	cr_expect_eq(st.slabs, 1, "one empty slab kept for the next burst");
	cr_expect_eq(st.released, 9);
	cr_expect_eq(wr_slab_trim(1), 0);

	/* released slabs serve any class, zeroed by the kernel */
	int d = wr_slab_class(1024);
	void *q[64 * 5];
	for (int i = 0; i < 64 * 5; i++) {
		cr_assert_not_null(q[i] = wr_slab_alloc(d));
		if (i % 64 == 0)
			cr_expect_eq(((char *)q[i])[100], 0);
	}
	wr_slab_stats(&st);
	cr_expect_eq(st.released, 4, "5 slabs came from the 9 released");
	for (int i = 0; i < 64 * 5; i++)
		wr_slab_free(q[i]);
}

Test(slab, region_full_is_null)
{
	int c = wr_slab_class(16384);
	void *p[64 * 4];
	int n = 0;

	while (n < 64 * 4 && (p[n] = wr_slab_alloc(c)))
		n++;
	cr_expect_eq(n, 64 * 4, "64 slabs of 4");
	cr_expect_null(wr_slab_alloc(c));
	wr_slab_free(p[7]);
	cr_expect_eq(wr_slab_alloc(c), p[7], "room again after a free");
}

/* Random alloc/free over three classes against a shadow: each live object
 * is filled with its own byte; any overlap or reuse of a live object shows
 * as a wrong byte. */
Test(slab, churn_against_shadow)
{
	int cls[3] = { wr_slab_class(224), wr_slab_class(864),
		       wr_slab_class(16384) };
	size_t sz[3] = { 224, 864, 16384 };
	enum { N = 600 };
	static unsigned char *p[N];
	static int k[N];
	unsigned seed = 12345;

	for (int round = 0; round < 20000; round++) {
		seed = seed * 1103515245u + 12345u;
		int i = (int)((seed >> 8) % N);
		if (p[i]) {
			for (size_t b = 0; b < sz[k[i]]; b += 61)
				cr_assert_eq(p[i][b], (unsigned char)i,
					     "object %d clobbered", i);
			wr_slab_free(p[i]);
			p[i] = NULL;
		} else {
			k[i] = (int)((seed >> 20) % 3);
			p[i] = wr_slab_alloc(cls[k[i]]);
			cr_assert_not_null(p[i]);
			memset(p[i], i, sz[k[i]]);
		}
	}
	struct wr_slab_stats st;
	size_t live = 0;
	wr_slab_stats(&st);
	for (int i = 0; i < N; i++)
		if (p[i]) {
			live++;
			wr_slab_free(p[i]);
		}
	cr_expect_eq(st.objects, live);
	wr_slab_stats(&st);
	cr_expect_eq(st.objects, 0);
	wr_slab_trim(0);
	wr_slab_stats(&st);
	cr_expect_eq(st.slabs, 0, "all given back");
	/* and the region serves again from what was given back */
	for (int i = 0; i < N; i++)
		cr_assert_not_null(p[i] = wr_slab_alloc(cls[i % 3]));
	for (int i = 0; i < N; i++)
		wr_slab_free(p[i]);
}
