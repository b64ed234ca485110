/*
 * inm/route: where a packet goes next (3.3), decided over plain link ids
 * so no socket is involved. Two small tables: direct peers (name <-> link)
 * and learned "return to sender" routes (source -> first arrival link).
 * Meshes hold tens of nodes, so both are arrays searched linearly.
 */
#include <stdlib.h>
#include <string.h>

#include "inm.h"

#define HOLDERS_MAX 256 /* more holders than this: flood instead */

struct hop {
	char name[INM_NAME_MAX + 1];
	int link;
};

struct hops {
	struct hop *v;
	size_t n, cap;
};

struct inm_route {
	struct hops direct, learned;
	size_t max_learned;
};

struct inm_route *inm_route_create(size_t max_learned)
{
	struct inm_route *r = calloc(1, sizeof(*r));

	if (r)
		r->max_learned = max_learned;
	return r;
}

void inm_route_destroy(struct inm_route *r)
{
	if (!r)
		return;
	free(r->direct.v);
	free(r->learned.v);
	free(r);
}

static struct hop *hops_find(const struct hops *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].name, name))
			return &h->v[i];
	return NULL;
}

static void hops_remove_at(struct hops *h, size_t i)
{
	h->v[i] = h->v[--h->n];
}

static int hops_add(struct hops *h, const char *name, int link)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		struct hop *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return WR_ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	memcpy(h->v[h->n].name, name, strlen(name) + 1);
	h->v[h->n].link = link;
	h->n++;
	return WR_OK;
}

static bool name_ok(const char *name)
{
	return name &&
	       inm_node_name_valid(name, strnlen(name, INM_NAME_MAX + 1));
}

int inm_route_link_up(struct inm_route *r, const char *name, int link)
{
	struct hop *h;

	if (!name_ok(name) || link < 0)
		return WR_EINVAL;
	h = hops_find(&r->direct, name);
	if (h) {
		h->link = link;
		return WR_OK;
	}
	return hops_add(&r->direct, name, link);
}

void inm_route_link_down(struct inm_route *r, int link)
{
	for (size_t i = r->direct.n; i-- > 0;)
		if (r->direct.v[i].link == link)
			hops_remove_at(&r->direct, i);
	for (size_t i = r->learned.n; i-- > 0;)
		if (r->learned.v[i].link == link)
			hops_remove_at(&r->learned, i);
}

int inm_route_learn(struct inm_route *r, const char *source, int link)
{
	if (!name_ok(source) || link < 0)
		return WR_EINVAL;
	if (hops_find(&r->learned, source))
		return WR_EEXIST;
	if (r->learned.n >= r->max_learned)
		return WR_EFULL;
	return hops_add(&r->learned, source, link);
}

void inm_route_forget_node(struct inm_route *r, const char *name)
{
	struct hop *h = hops_find(&r->learned, name);

	if (h)
		hops_remove_at(&r->learned, (size_t)(h - r->learned.v));
}

int inm_route_direct(const struct inm_route *r, const char *name)
{
	const struct hop *h = hops_find(&r->direct, name);

	return h ? h->link : -1;
}

int inm_route_lookup(const struct inm_route *r, const char *name)
{
	const struct hop *h = hops_find(&r->direct, name);

	if (!h)
		h = hops_find(&r->learned, name);
	return h ? h->link : -1;
}

const char *inm_route_link_name(const struct inm_route *r, int link)
{
	for (size_t i = 0; i < r->direct.n; i++)
		if (r->direct.v[i].link == link)
			return r->direct.v[i].name;
	return NULL;
}

static bool has_link(const int *links, size_t n, int link)
{
	for (size_t i = 0; i < n; i++)
		if (links[i] == link)
			return true;
	return false;
}

static void flood(const int *links, size_t nlinks, int from_link, int *out,
		  size_t *nout)
{
	for (size_t i = 0; i < nlinks; i++)
		if (links[i] != from_link && !has_link(out, *nout, links[i]))
			out[(*nout)++] = links[i];
}

/*
 * The links toward the holders of a message's channel, or false when any
 * of them is unreachable by a known route (then flooding is the answer).
 * A holder behind @from_link is skipped: the upstream node is closer to
 * it and forwards toward it itself, so sending it back only echoes.
 */
static bool toward_holders(const struct inm_route *r,
			   const struct inm_packet *pkt, int from_link,
			   const int *links, size_t nlinks, const char *self,
			   inm_holders_cb holders, void *ud, int *out,
			   size_t *nout)
{
	const char *names[HOLDERS_MAX], *channel, *b64, *cn;
	int n;

	if (!holders || inm_message_fields(pkt, &channel, &b64, &cn))
		return false;
	n = holders(ud, channel, names, HOLDERS_MAX);
	if (n < 0 || n > HOLDERS_MAX)
		return false;
	for (int i = 0; i < n; i++) {
		int link;

		/* we deliver locally; the source delivered to its own */
		if ((self && !strcmp(names[i], self)) ||
		    !strcmp(names[i], pkt->source))
			continue;
		link = inm_route_lookup(r, names[i]);
		if (link < 0 || !has_link(links, nlinks, link)) {
			*nout = 0;
			return false;
		}
		if (link != from_link && !has_link(out, *nout, link))
			out[(*nout)++] = link;
	}
	return true;
}

void inm_route_targets(const struct inm_route *r, const struct inm_packet *pkt,
		       int from_link, const int *links, size_t nlinks,
		       const char *self, inm_holders_cb holders,
		       void *holders_ud, int *out, size_t *nout)
{
	const char *dest = pkt->destination;
	int link;

	*nout = 0;
	if (pkt->ttl <= 1 || (self && !strcmp(dest, self)))
		return;
	if (!strcmp(dest, "*")) {
		if (pkt->type == INM_MESSAGE &&
		    toward_holders(r, pkt, from_link, links, nlinks, self,
				   holders, holders_ud, out, nout))
			return;
		flood(links, nlinks, from_link, out, nout);
		return;
	}
	link = inm_route_direct(r, dest);
	if (link >= 0 && has_link(links, nlinks, link)) {
		/* from the destination itself, addressed to itself: a loop */
		if (link != from_link)
			out[(*nout)++] = link;
		return;
	}
	/* a learned route pointing back where the packet came from is stale
	 * (the topology changed): flooding still reaches the destination */
	link = inm_route_lookup(r, dest);
	if (link >= 0 && link != from_link && has_link(links, nlinks, link)) {
		out[(*nout)++] = link;
		return;
	}
	flood(links, nlinks, from_link, out, nout);
}
