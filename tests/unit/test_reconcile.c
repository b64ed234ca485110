/*
 * tests/unit/test_reconcile: the master's repair decisions (PROTOCOL.md
 * 5.4) from what nodes hold and believe to the commands sent: nothing when
 * in step, a missing reservation added, a stale holder removed, nodes that
 * did not answer left alone, a node never told about itself, conflicts
 * settled by the race rule, a wrong password replaced.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "flows.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

struct got {
	char lines[32][256];
	unsigned n;
};

static void collect(const struct flow_repair *r, void *arg)
{
	struct got *g = arg;
	char hex[2 * CHAN_HASH_LEN + 1] = "null";

	cr_assert_lt(g->n, 32);
	if (r->hash)
		wr_hex(hex, r->hash, CHAN_HASH_LEN);
	if (r->reserve)
		snprintf(g->lines[g->n++], sizeof(g->lines[0]),
			 "%s: reserve %s %s %lld %s", r->dest, r->channel, hex,
			 (long long)r->created, r->holder);
	else
		snprintf(g->lines[g->n++], sizeof(g->lines[0]),
			 "%s: unreserve %s %s", r->dest, r->channel, r->holder);
}

static void run(const char *holds, const char *views, struct got *g)
{
	cJSON *h = cJSON_Parse(holds), *v = cJSON_Parse(views);

	cr_assert_not_null(h, "holds: %s", holds);
	cr_assert_not_null(v, "views: %s", views);
	memset(g, 0, sizeof(*g));
	cr_assert_eq(flow_reconcile(h, v, collect, g), WR_OK);
	cJSON_Delete(h);
	cJSON_Delete(v);
}

static bool has(const struct got *g, const char *line)
{
	for (unsigned i = 0; i < g->n; i++)
		if (!strcmp(g->lines[i], line))
			return true;
	return false;
}

Test(reconcile, in_step_sends_nothing)
{
	struct got g;

	run("{\"A\":[{\"name\":\"c\",\"password\":null,\"created\":100}],\"B\":[]}",
	    "{\"A\":[{\"name\":\"c\",\"password\":null,\"holders\":[\"A\"]}],"
	    " \"B\":[{\"name\":\"c\",\"password\":null,\"holders\":[\"A\"]}]}",
	    &g);
	cr_expect_eq(g.n, 0, "%s", g.lines[0]);
}

Test(reconcile, missing_reservation_added)
{
	struct got g;

	run("{\"A\":[{\"name\":\"c\",\"password\":\"" H1
	    "\",\"created\":100}],\"B\":[]}",
	    "{\"A\":[{\"name\":\"c\",\"password\":\"" H1
	    "\",\"holders\":[\"A\"]}],"
	    " \"B\":[]}",
	    &g);
	cr_expect_eq(g.n, 1);
	cr_expect(has(&g, "B: reserve c " H1 " 100 A"), "%s", g.lines[0]);
}

Test(reconcile, stale_holder_removed_only_when_it_answered)
{
	struct got g;

	/* B believes A holds "ghost" (A says it does not) and D holds "d"
	 * (D did not answer: nothing is known, nothing is removed) */
	run("{\"A\":[],\"B\":[]}",
	    "{\"B\":[{\"name\":\"ghost\",\"password\":null,\"holders\":[\"A\"]},"
	    "        {\"name\":\"d\",\"password\":null,\"holders\":[\"D\"]}]}",
	    &g);
	cr_expect_eq(g.n, 1);
	cr_expect(has(&g, "B: unreserve ghost A"), "%s", g.lines[0]);
}

Test(reconcile, never_told_about_itself)
{
	struct got g;

	/* A holds c but its own view lacks it, and it believes it holds x:
	 * A is the authority on what it holds */
	run("{\"A\":[{\"name\":\"c\",\"password\":null,\"created\":5}]}",
	    "{\"A\":[{\"name\":\"x\",\"password\":null,\"holders\":[\"A\"]}]}",
	    &g);
	cr_expect_eq(g.n, 0, "%s", g.lines[0]);
}

Test(reconcile, conflict_settled_by_the_race_rule)
{
	struct got g;

	/* A opened c with H1 at 100, C with H2 at 50: C's wins everywhere */
	run("{\"A\":[{\"name\":\"c\",\"password\":\"" H1
	    "\",\"created\":100}],"
	    " \"C\":[{\"name\":\"c\",\"password\":\"" H2
	    "\",\"created\":50}],"
	    " \"B\":[]}",
	    "{\"A\":[{\"name\":\"c\",\"password\":\"" H1
	    "\",\"holders\":[\"A\"]}],"
	    " \"B\":[{\"name\":\"c\",\"password\":\"" H1
	    "\",\"holders\":[\"A\"]}],"
	    " \"C\":[{\"name\":\"c\",\"password\":\"" H2
	    "\",\"holders\":[\"C\"]}]}",
	    &g);
	cr_expect(has(&g, "A: reserve c " H2 " 50 C"));
	cr_expect(has(&g, "B: reserve c " H2 " 50 C"));
	cr_expect(has(&g, "B: unreserve c A"));
	cr_expect_eq(g.n, 3, "%u: %s / %s / %s / %s", g.n, g.lines[0],
		     g.lines[1], g.lines[2], g.lines[3]);
}

Test(reconcile, wrong_password_replaced)
{
	struct got g;

	run("{\"A\":[{\"name\":\"c\",\"password\":\"" H2 "\",\"created\":7}]}",
	    "{\"B\":[{\"name\":\"c\",\"password\":\"" H1
	    "\",\"holders\":[\"A\"]}]}",
	    &g);
	cr_expect_eq(g.n, 1);
	cr_expect(has(&g, "B: reserve c " H2 " 7 A"), "%s", g.lines[0]);
}

Test(reconcile, malformed_answers_ignored)
{
	struct got g;

	run("{\"A\":[{\"name\":\"c\"},{\"name\":5,\"created\":1},"
	    "        {\"name\":\"p\",\"password\":\"nothex\",\"created\":1}],"
	    " \"bad name!\":[{\"name\":\"z\",\"password\":null,\"created\":1}]}",
	    "{\"B\":\"not an array\",\"C\":[]}", &g);
	cr_expect_eq(g.n, 0, "%s", g.lines[0]);
}
