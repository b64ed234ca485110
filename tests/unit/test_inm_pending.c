/*
 * tests/unit/test_inm_pending: commands awaiting responses — unicast
 * answered or timed out, "*" commands collecting one answer per expected
 * node, refused answers, re-entrant callbacks, and destroy firing nothing.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "inm.h"

#define NA "0123456789abcdef0123456789abcdef"
#define NB "fedcba9876543210fedcba9876543210"

struct rec {
	int calls, done_calls, timeouts;
	size_t answered, expected, nmissing;
	char missing[4][INM_NAME_MAX + 1];
	char last_from[INM_NAME_MAX + 1];
	char command[32];
	bool last_ok;
};

static void rec_cb(void *ud, const struct inm_pending_event *ev)
{
	struct rec *r = ud;

	r->calls++;
	r->done_calls += ev->done;
	r->answered = ev->answered;
	r->expected = ev->expected;
	strncpy(r->command, ev->command, sizeof(r->command) - 1);
	if (ev->response) {
		cr_assert_null(ev->reason);
		strcpy(r->last_from, ev->response->source);
		r->last_ok =
			cJSON_IsTrue(cJSON_GetObjectItem(ev->response->data,
							 "ok"));
	} else {
		cr_assert_str_eq(ev->reason, "timeout");
		cr_assert(ev->done);
		r->timeouts++;
		r->nmissing = ev->nmissing;
		for (size_t i = 0; i < ev->nmissing && i < 4; i++)
			strcpy(r->missing[i], ev->missing[i]);
	}
}

static void mkresp(struct inm_packet *p, const char *src, const char *nonce,
		   bool ok)
{
	inm_packet_init(p);
	p->type = INM_RESPONSE;
	strcpy(p->source, src);
	strcpy(p->destination, "me");
	strcpy(p->nonce, nonce);
	p->data = cJSON_CreateObject();
	cJSON_AddBoolToObject(p->data, "ok", ok);
}

Test(inm_pending, unicast_answered)
{
	struct inm_pending *p = inm_pending_create(8);
	const char *to[] = { "b" };
	struct rec r = { 0 };
	struct inm_packet resp;

	cr_assert_not_null(p);
	cr_assert_eq(inm_pending_add(p, NA, "list-nodes", to, 1, 5000, rec_cb,
				     &r),
		     WR_OK);
	cr_expect_eq(inm_pending_count(p), 1);
	cr_expect_eq(inm_pending_next_deadline(p), 5000);
	cr_expect_eq(inm_pending_expire(p, 4999), 0);
	mkresp(&resp, "b", NA, true);
	cr_expect_eq(inm_pending_response(p, &resp), WR_OK);
	cr_expect_eq(r.calls, 1);
	cr_expect_eq(r.done_calls, 1);
	cr_expect(r.last_ok);
	cr_expect_str_eq(r.last_from, "b");
	cr_expect_str_eq(r.command, "list-nodes");
	cr_expect_eq(inm_pending_count(p), 0);
	cr_expect_eq(inm_pending_next_deadline(p), INT64_MAX);
	/* a late duplicate finds nothing; no second call, no timeout */
	cr_expect_eq(inm_pending_response(p, &resp), WR_ENOENT);
	cr_expect_eq(inm_pending_expire(p, 1000000), 0);
	cr_expect_eq(r.calls, 1);
	inm_packet_fini(&resp);
	inm_pending_destroy(p);
}

Test(inm_pending, unicast_times_out)
{
	struct inm_pending *p = inm_pending_create(8);
	const char *to[] = { "b" };
	struct rec r = { 0 };
	struct inm_packet resp;

	cr_assert_eq(inm_pending_add(p, NA, "get-latency", to, 1, 5000, rec_cb,
				     &r),
		     WR_OK);
	cr_expect_eq(inm_pending_expire(p, 5000), 1);
	cr_expect_eq(r.calls, 1);
	cr_expect_eq(r.timeouts, 1);
	cr_expect_eq(r.answered, 0);
	cr_expect_eq(r.nmissing, 1);
	cr_expect_str_eq(r.missing[0], "b");
	/* the response after the timeout is late */
	mkresp(&resp, "b", NA, true);
	cr_expect_eq(inm_pending_response(p, &resp), WR_ENOENT);
	cr_expect_eq(r.calls, 1);
	inm_packet_fini(&resp);
	inm_pending_destroy(p);
}

Test(inm_pending, refuses_wrong_answers)
{
	struct inm_pending *p = inm_pending_create(8);
	const char *to[] = { "b" };
	struct rec r = { 0 };
	struct inm_packet resp;

	cr_assert_eq(inm_pending_add(p, NA, "x", to, 1, 10, rec_cb, &r), WR_OK);
	mkresp(&resp, "c", NA, true); /* not the node asked */
	cr_expect_eq(inm_pending_response(p, &resp), WR_EPERM);
	inm_packet_fini(&resp);
	mkresp(&resp, "b", NB, true); /* other nonce */
	cr_expect_eq(inm_pending_response(p, &resp), WR_ENOENT);
	inm_packet_fini(&resp);
	mkresp(&resp, "b", NA, true); /* a command, not a response */
	resp.type = INM_COMMAND;
	cr_expect_eq(inm_pending_response(p, &resp), WR_ENOENT);
	inm_packet_fini(&resp);
	cr_expect_eq(r.calls, 0);
	cr_expect_eq(inm_pending_count(p), 1);
	inm_pending_destroy(p);
}

Test(inm_pending, broadcast_collects_every_node)
{
	struct inm_pending *p = inm_pending_create(8);
	const char *to[] = { "a", "b", "c" };
	struct rec r = { 0 };
	struct inm_packet resp;

	cr_assert_eq(inm_pending_add(p, NA, "node-stats", to, 3, 5000, rec_cb,
				     &r),
		     WR_OK);
	mkresp(&resp, "b", NA, true);
	cr_expect_eq(inm_pending_response(p, &resp), WR_OK);
	cr_expect_eq(r.calls, 1);
	cr_expect_eq(r.done_calls, 0);
	cr_expect_eq(r.answered, 1);
	cr_expect_eq(r.expected, 3);
	/* the same node again: refused */
	cr_expect_eq(inm_pending_response(p, &resp), WR_EPERM);
	inm_packet_fini(&resp);
	mkresp(&resp, "a", NA, false);
	cr_expect_eq(inm_pending_response(p, &resp), WR_OK);
	inm_packet_fini(&resp);
	cr_expect_eq(inm_pending_count(p), 1);
	mkresp(&resp, "c", NA, true);
	cr_expect_eq(inm_pending_response(p, &resp), WR_OK);
	inm_packet_fini(&resp);
	cr_expect_eq(r.calls, 3);
	cr_expect_eq(r.done_calls, 1);
	cr_expect_eq(r.answered, 3);
	cr_expect_eq(inm_pending_count(p), 0);
	cr_expect_eq(inm_pending_expire(p, 99999), 0);
	inm_pending_destroy(p);
}

Test(inm_pending, broadcast_timeout_names_the_silent)
{
	struct inm_pending *p = inm_pending_create(8);
	const char *to[] = { "a", "b", "c" };
	struct rec r = { 0 };
	struct inm_packet resp;

	cr_assert_eq(inm_pending_add(p, NA, "list-channels", to, 3, 5000,
				     rec_cb, &r),
		     WR_OK);
	mkresp(&resp, "b", NA, true);
	cr_expect_eq(inm_pending_response(p, &resp), WR_OK);
	inm_packet_fini(&resp);
	cr_expect_eq(inm_pending_expire(p, 6000), 1);
	cr_expect_eq(r.calls, 2);
	cr_expect_eq(r.done_calls, 1);
	cr_expect_eq(r.timeouts, 1);
	cr_expect_eq(r.answered, 1);
	cr_expect_eq(r.nmissing, 2);
	cr_expect_str_eq(r.missing[0], "a");
	cr_expect_str_eq(r.missing[1], "c");
	inm_pending_destroy(p);
}

Test(inm_pending, add_checks)
{
	struct inm_pending *p = inm_pending_create(2);
	const char *to[] = { "b" }, *bad[] = { "b c" }, *null[] = { NULL };
	struct rec r = { 0 };

	cr_expect_eq(inm_pending_add(p, "short", "x", to, 1, 1, rec_cb, &r),
		     WR_EINVAL);
	cr_expect_eq(inm_pending_add(p, NA, "x", to, 0, 1, rec_cb, &r),
		     WR_EINVAL);
	cr_expect_eq(inm_pending_add(p, NA, "x", bad, 1, 1, rec_cb, &r),
		     WR_EINVAL);
	cr_expect_eq(inm_pending_add(p, NA, "x", null, 1, 1, rec_cb, &r),
		     WR_EINVAL);
	cr_expect_eq(inm_pending_add(p, NA, "x", to, 1, 1, NULL, &r),
		     WR_EINVAL);
	cr_expect_eq(inm_pending_add(p, NA, "x", to, 1, 1, rec_cb, &r), WR_OK);
	cr_expect_eq(inm_pending_add(p, NA, "x", to, 1, 1, rec_cb, &r),
		     WR_EEXIST);
	cr_expect_eq(inm_pending_add(p, NB, "x", to, 1, 1, rec_cb, &r), WR_OK);
	cr_expect_eq(inm_pending_add(p, "00000000000000000000000000000000", "x",
				     to, 1, 1, rec_cb, &r),
		     WR_EFULL);
	cr_expect_eq(r.calls, 0);
	inm_pending_destroy(p);
}

Test(inm_pending, cancel_and_destroy_fire_nothing)
{
	struct inm_pending *p = inm_pending_create(8);
	const char *to[] = { "b" };
	struct rec r = { 0 };

	cr_assert_eq(inm_pending_add(p, NA, "x", to, 1, 10, rec_cb, &r), WR_OK);
	cr_assert_eq(inm_pending_add(p, NB, "y", to, 1, 20, rec_cb, &r), WR_OK);
	cr_expect_eq(inm_pending_next_deadline(p), 10);
	cr_expect(inm_pending_cancel(p, NA));
	cr_expect_not(inm_pending_cancel(p, NA));
	cr_expect_eq(inm_pending_next_deadline(p), 20);
	inm_pending_destroy(p);
	cr_expect_eq(r.calls, 0);
	inm_pending_destroy(NULL);
}

Test(inm_pending, expire_fires_only_the_due)
{
	struct inm_pending *p = inm_pending_create(8);
	const char *to[] = { "b" };
	struct rec r1 = { 0 }, r2 = { 0 };

	cr_assert_eq(inm_pending_add(p, NA, "x", to, 1, 100, rec_cb, &r1),
		     WR_OK);
	cr_assert_eq(inm_pending_add(p, NB, "y", to, 1, 200, rec_cb, &r2),
		     WR_OK);
	cr_expect_eq(inm_pending_expire(p, 99), 0);
	cr_expect_eq(inm_pending_expire(p, 150), 1);
	cr_expect_eq(r1.timeouts, 1);
	cr_expect_eq(r2.calls, 0);
	cr_expect_eq(inm_pending_expire(p, 200), 1);
	cr_expect_eq(r2.timeouts, 1);
	inm_pending_destroy(p);
}

/* A callback that sends a retry from its timeout, with a past deadline. */
struct retry {
	struct inm_pending *p;
	int calls;
};

static void retry_cb(void *ud, const struct inm_pending_event *ev)
{
	struct retry *rt = ud;
	const char *to[] = { "b" };

	rt->calls++;
	/* the entry is already gone: its nonce may be reused, and a fresh
	 * command added during expire must not fire in the same pass */
	cr_expect_eq(inm_pending_add(rt->p, ev->nonce, "retry", to, 1, 0,
				     retry_cb, rt),
		     WR_OK);
}

Test(inm_pending, reentrant_callback)
{
	struct retry rt = { inm_pending_create(4), 0 };
	const char *to[] = { "b" };

	cr_assert_eq(inm_pending_add(rt.p, NA, "x", to, 1, 10, retry_cb, &rt),
		     WR_OK);
	cr_expect_eq(inm_pending_expire(rt.p, 10), 1);
	cr_expect_eq(rt.calls, 1);
	cr_expect_eq(inm_pending_count(rt.p), 1);
	cr_expect_eq(inm_pending_expire(rt.p, 10), 1);
	cr_expect_eq(rt.calls, 2);
	inm_pending_destroy(rt.p);
}
