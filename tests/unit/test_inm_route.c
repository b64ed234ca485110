/*
 * tests/unit/test_inm_route: every forwarding rule of PROTOCOL.md 3.3 over
 * plain link ids — own destination, "*", direct peer, learned route,
 * flooding fallback, forgetting links and nodes, ttl, and interest
 * routing of message packets with and without known holders.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "inm.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SELF "me"

/* links 1..4; peers a (1), b (2), c (3), d (4) */
static const int links[] = { 1, 2, 3, 4 };
static struct inm_route *r;

static void setup(void)
{
	r = inm_route_create(16);
	cr_assert_not_null(r);
	cr_assert_eq(inm_route_link_up(r, "a", 1), WR_OK);
	cr_assert_eq(inm_route_link_up(r, "b", 2), WR_OK);
	cr_assert_eq(inm_route_link_up(r, "c", 3), WR_OK);
	cr_assert_eq(inm_route_link_up(r, "d", 4), WR_OK);
}

static void teardown(void)
{
	inm_route_destroy(r);
}

static void mkpkt(struct inm_packet *p, enum inm_type type, const char *src,
		  const char *dst, const char *channel)
{
	inm_packet_init(p);
	p->type = type;
	strcpy(p->source, src);
	strcpy(p->destination, dst);
	strcpy(p->nonce, "0123456789abcdef0123456789abcdef");
	if (channel) {
		p->data = cJSON_CreateObject();
		cJSON_AddStringToObject(p->data, "channel", channel);
		cJSON_AddStringToObject(p->data, "message", "");
	}
}

/* The targets as a bitmask of link ids (order does not matter). */
static unsigned targets(const struct inm_packet *p, int from, inm_holders_cb cb,
			void *ud)
{
	int out[N(links)];
	size_t n = 99;
	unsigned mask = 0;

	inm_route_targets(r, p, from, links, N(links), SELF, cb, ud, out, &n);
	cr_assert_leq(n, N(links));
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(mask & (1u << out[i]), 0, "link %d twice", out[i]);
		cr_assert_neq(out[i], from, "sent back on the arrival link");
		mask |= 1u << out[i];
	}
	return mask;
}
#define L(x) (1u << (x))

TestSuite(inm_route, .init = setup, .fini = teardown);

Test(inm_route, own_destination_is_not_forwarded)
{
	struct inm_packet p;

	mkpkt(&p, INM_COMMAND, "a", SELF, NULL);
	cr_expect_eq(targets(&p, 1, NULL, NULL), 0);
	cr_expect_eq(targets(&p, -1, NULL, NULL), 0);
}

Test(inm_route, star_goes_everywhere_but_back)
{
	struct inm_packet p;

	mkpkt(&p, INM_EVENT, "a", "*", NULL);
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(2) | L(3) | L(4));
	cr_expect_eq(targets(&p, 3, NULL, NULL), L(1) | L(2) | L(4));
	/* built here: every link */
	cr_expect_eq(targets(&p, -1, NULL, NULL), L(1) | L(2) | L(3) | L(4));
}

Test(inm_route, direct_peer_wins)
{
	struct inm_packet p;

	mkpkt(&p, INM_COMMAND, "a", "c", NULL);
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(3));
	/* even over a learned route to the same name */
	cr_expect_eq(inm_route_learn(r, "c", 2), WR_OK);
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(3));
	/* a packet for c coming from c itself goes nowhere */
	cr_expect_eq(targets(&p, 3, NULL, NULL), 0);
	cr_expect_eq(inm_route_direct(r, "c"), 3);
	cr_expect_str_eq(inm_route_link_name(r, 3), "c");
	cr_expect_null(inm_route_link_name(r, 9));
}

Test(inm_route, learned_route_then_flood)
{
	struct inm_packet p;

	mkpkt(&p, INM_RESPONSE, "a", "far", NULL);
	/* unknown: flood all but the arrival link */
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(2) | L(3) | L(4));
	/* first arrival wins */
	cr_expect_eq(inm_route_learn(r, "far", 4), WR_OK);
	cr_expect_eq(inm_route_learn(r, "far", 2), WR_EEXIST);
	cr_expect_eq(inm_route_lookup(r, "far"), 4);
	cr_expect_eq(inm_route_direct(r, "far"), -1);
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(4));
	/* a route pointing back where the packet came from: flood instead */
	cr_expect_eq(targets(&p, 4, NULL, NULL), L(1) | L(2) | L(3));
	/* forgetting the node */
	inm_route_forget_node(r, "far");
	cr_expect_eq(inm_route_lookup(r, "far"), -1);
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(2) | L(3) | L(4));
	inm_route_forget_node(r, "never-seen");
}

Test(inm_route, forgetting_a_link_drops_its_routes)
{
	struct inm_packet p;

	cr_expect_eq(inm_route_learn(r, "x", 2), WR_OK);
	cr_expect_eq(inm_route_learn(r, "y", 2), WR_OK);
	cr_expect_eq(inm_route_learn(r, "z", 3), WR_OK);
	inm_route_link_down(r, 2);
	cr_expect_eq(inm_route_direct(r, "b"), -1);
	cr_expect_eq(inm_route_lookup(r, "x"), -1);
	cr_expect_eq(inm_route_lookup(r, "y"), -1);
	cr_expect_eq(inm_route_lookup(r, "z"), 3);
	cr_expect_null(inm_route_link_name(r, 2));
	/* x can be learned anew through another link */
	cr_expect_eq(inm_route_learn(r, "x", 4), WR_OK);
	mkpkt(&p, INM_COMMAND, "a", "x", NULL);
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(4));
}

Test(inm_route, stale_ids_are_not_used)
{
	static const int two[] = { 1, 3 };
	struct inm_packet p;
	int out[4];
	size_t n;

	/* the caller's link list is the truth: a route to a link not in it
	 * (closed but not yet forgotten) falls back to flooding */
	cr_expect_eq(inm_route_learn(r, "x", 2), WR_OK);
	mkpkt(&p, INM_COMMAND, "a", "x", NULL);
	inm_route_targets(r, &p, 1, two, 2, SELF, NULL, NULL, out, &n);
	cr_expect_eq(n, 1);
	cr_expect_eq(out[0], 3);
	mkpkt(&p, INM_COMMAND, "a", "b", NULL);
	inm_route_targets(r, &p, 1, two, 2, SELF, NULL, NULL, out, &n);
	cr_expect_eq(n, 1);
	cr_expect_eq(out[0], 3);
}

Test(inm_route, relinking_a_name_moves_it)
{
	cr_expect_eq(inm_route_link_up(r, "a", 7), WR_OK);
	cr_expect_eq(inm_route_direct(r, "a"), 7);
	cr_expect_null(inm_route_link_name(r, 1));
	cr_expect_eq(inm_route_link_up(r, "*", 5), WR_EINVAL);
	cr_expect_eq(inm_route_link_up(r, "ok", -1), WR_EINVAL);
	cr_expect_eq(inm_route_learn(r, "bad name", 1), WR_EINVAL);
	cr_expect_eq(inm_route_learn(r, NULL, 1), WR_EINVAL);
}

Test(inm_route, learned_routes_are_bounded)
{
	struct inm_route *small = inm_route_create(2);

	cr_assert_not_null(small);
	cr_expect_eq(inm_route_learn(small, "x", 1), WR_OK);
	cr_expect_eq(inm_route_learn(small, "y", 1), WR_OK);
	cr_expect_eq(inm_route_learn(small, "z", 1), WR_EFULL);
	inm_route_forget_node(small, "x");
	cr_expect_eq(inm_route_learn(small, "z", 1), WR_OK);
	inm_route_destroy(small);
	inm_route_destroy(NULL);
}

Test(inm_route, ttl_one_or_zero_is_not_forwarded)
{
	struct inm_packet p;

	mkpkt(&p, INM_EVENT, "a", "*", NULL);
	p.ttl = 1;
	cr_expect_eq(targets(&p, 1, NULL, NULL), 0);
	p.ttl = 0;
	cr_expect_eq(targets(&p, 1, NULL, NULL), 0);
	p.ttl = 2;
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(2) | L(3) | L(4));
}

/* ---- interest routing ---- */

struct holders {
	const char *channel;
	const char *names[8];
	int n; /* -1: unknown */
	int calls;
};

static int holders_cb(void *ud, const char *channel, const char **out,
		      size_t max)
{
	struct holders *h = ud;

	h->calls++;
	if (h->n < 0 || strcmp(channel, h->channel))
		return -1;
	for (int i = 0; i < h->n && (size_t)i < max; i++)
		out[i] = h->names[i];
	return h->n;
}

Test(inm_route, message_to_known_holders_only)
{
	struct holders h = { "ch", { "b", "far", "me", "a" }, 4, 0 };
	struct inm_packet p;

	cr_expect_eq(inm_route_learn(r, "far", 4), WR_OK);
	mkpkt(&p, INM_MESSAGE, "a", "*", "ch");
	/* b direct, far via 4, me and the source a skipped */
	cr_expect_eq(targets(&p, 1, holders_cb, &h), L(2) | L(4));
	cr_expect_eq(h.calls, 1);
	/* two holders behind one link: the link once */
	cr_expect_eq(inm_route_learn(r, "far2", 4), WR_OK);
	h.names[0] = "far2";
	cr_expect_eq(targets(&p, 1, holders_cb, &h), L(4));
	/* a holder behind the arrival link is left to the upstream node */
	cr_expect_eq(targets(&p, 4, holders_cb, &h), 0);
	/* nobody else holds it: nowhere */
	h.n = 1;
	h.names[0] = "me";
	cr_expect_eq(targets(&p, 1, holders_cb, &h), 0);
	inm_packet_fini(&p);
}

Test(inm_route, message_floods_without_known_routes_or_holders)
{
	struct holders h = { "ch", { "b", "nowhere" }, 2, 0 };
	struct inm_packet p;

	mkpkt(&p, INM_MESSAGE, "a", "*", "ch");
	/* a holder with no route: flood */
	cr_expect_eq(targets(&p, 1, holders_cb, &h), L(2) | L(3) | L(4));
	/* holders unknown: flood */
	h.n = -1;
	cr_expect_eq(targets(&p, 1, holders_cb, &h), L(2) | L(3) | L(4));
	/* a channel the callback does not know: flood */
	h.n = 1;
	h.channel = "other";
	cr_expect_eq(targets(&p, 2, holders_cb, &h), L(1) | L(3) | L(4));
	/* no callback: flood */
	cr_expect_eq(targets(&p, 1, NULL, NULL), L(2) | L(3) | L(4));
	/* non-message "*" packets never ask for holders */
	h.calls = 0;
	inm_packet_fini(&p);
	mkpkt(&p, INM_EVENT, "a", "*", NULL);
	cr_expect_eq(targets(&p, 1, holders_cb, &h), L(2) | L(3) | L(4));
	cr_expect_eq(h.calls, 0);
}

static int many_holders(void *ud, const char *channel, const char **out,
			size_t max)
{
	(void)ud;
	(void)channel;
	for (size_t i = 0; i < max; i++)
		out[i] = "b";
	return (int)max + 1;
}

Test(inm_route, too_many_holders_floods)
{
	struct inm_packet p;

	mkpkt(&p, INM_MESSAGE, "a", "*", "ch");
	cr_expect_eq(targets(&p, 1, many_holders, NULL), L(2) | L(3) | L(4));
	inm_packet_fini(&p);
}
