/*
 * node/pending: sockets that have not finished their request headers,
 * counted per address (issue 10: 256 idle sockets from one address held
 * every slot of lws's header pool, and /health, /connect and /node waited
 * for nobody). Debian's lws has no per-IP limits, so the node counts: a
 * socket is refused at accept (FILTER_NETWORK_CONNECTION) when its address
 * has [limits] max_pending_per_ip already, counted when lws adopts it
 * (SERVER_NEW_CLIENT_INSTANTIATED), and
 * uncounted when its headers are done (HTTP, HTTP_CONFIRM_UPGRADE) or it
 * goes (WSI_DESTROY). A map from the wsi to its address remembers which.
 */
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include "node.h"

#define BUCKETS 1024

struct pending {
	struct lws *wsi;
	struct wr_addr addr;
	struct pending *next;
};

struct node_pending {
	struct pending *bucket[BUCKETS];
	struct wr_addrtab *per_addr;
};

struct node_pending *node_pending_create(void)
{
	struct node_pending *p = calloc(1, sizeof(*p));

	if (p)
		p->per_addr = wr_addrtab_create();
	if (p && !p->per_addr) {
		free(p);
		p = NULL;
	}
	return p;
}

void node_pending_destroy(struct node_pending *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		while (p->bucket[i]) {
			struct pending *e = p->bucket[i];

			p->bucket[i] = e->next;
			free(e);
		}
	wr_addrtab_destroy(p->per_addr);
	free(p);
}

static struct pending **slot(struct node_pending *p, const struct lws *wsi)
{
	uintptr_t h = (uintptr_t)wsi;
	struct pending **pp = &p->bucket[(h >> 4 ^ h >> 14) % BUCKETS];

	while (*pp && (*pp)->wsi != wsi)
		pp = &(*pp)->next;
	return pp;
}

/* the peer address of a socket */
static int fd_addr(int fd, struct wr_addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len))
		return WR_EINVAL;
	return wr_addr_from_sockaddr(&ss, len, out);
}

int node_pending_filter(struct node *node, int fd)
{
	struct wr_addr a;

	/* before lws makes a wsi of it: a refusal costs one close */
	if (!node->pending || fd_addr(fd, &a) ||
	    wr_addrtab_count(node->pending->per_addr, &a) <
		    (unsigned)node->cfg->max_pending_per_ip)
		return 0;
	node->ctr.refused_pending++;
	return -1;
}

int node_pending_open(struct node *node, struct lws *wsi)
{
	struct node_pending *p = node->pending;
	struct wr_addr a;
	struct pending *e;

	if (fd_addr((int)lws_get_socket_fd(wsi), &a))
		return 0; /* not an IP socket: nothing to count by */
	e = malloc(sizeof(*e));
	if (!e || wr_addrtab_inc(p->per_addr, &a)) {
		free(e);
		return 0; /* uncounted rather than refused */
	}
	e->wsi = wsi;
	e->addr = a;
	e->next = NULL;
	*slot(p, wsi) = e;
	return 0;
}

void node_pending_done(struct node *node, struct lws *wsi)
{
	struct node_pending *p = node->pending;
	struct pending **pp, *e;

	if (!p)
		return;
	pp = slot(p, lws_get_network_wsi(wsi));
	e = *pp;
	if (!e)
		return;
	*pp = e->next;
	wr_addrtab_dec(p->per_addr, &e->addr);
	free(e);
}
