/*
 * node/link: outbound /node links to every [[peers]] entry, redialled
 * forever after any loss with exponential backoff and full jitter
 * ([mesh] reconnect_min_ms .. reconnect_max_ms, PROTOCOL.md 3.1). A dial
 * that handshakes becomes a wr_peer like an accepted link; client-side
 * writes are masked by lws in place, so peer.c writes from a copy.
 */
#include <string.h>

#include <sodium.h>

#include "node.h"

struct wr_dial {
	struct wr_node *node;
	const struct wr_peer_conf *conf;
	struct lws *wsi;            /* while connecting or connected */
	unsigned attempt;           /* failures since the last handshake */
	lws_sorted_usec_list_t sul;
	char url[512];              /* lws_parse_uri cuts this copy up */
};

static void dial(lws_sorted_usec_list_t *sul);

/* Full jitter: uniform in [0, min(max, min * 2^attempt)]. */
static int64_t backoff_ms(const struct wr_config *cfg, unsigned attempt)
{
	int64_t cap = cfg->reconnect_min_ms;

	for (unsigned i = 0; i < attempt && cap < cfg->reconnect_max_ms; i++)
		cap *= 2;
	if (cap > cfg->reconnect_max_ms)
		cap = cfg->reconnect_max_ms;
	return (int64_t)randombytes_uniform((uint32_t)cap + 1);
}

static void schedule(struct wr_dial *d)
{
	int64_t ms = backoff_ms(d->node->cfg, d->attempt);

	if (d->node->stopping)
		return;
	d->attempt++;
	lws_sul_schedule(d->node->ctx, 0, &d->sul, dial, ms * LWS_US_PER_MS);
}

static void dial(lws_sorted_usec_list_t *sul)
{
	struct wr_dial *d = lws_container_of(sul, struct wr_dial, sul);
	struct lws_client_connect_info i;
	const char *prot, *addr, *path;
	char fullpath[256];
	int port;

	memset(&i, 0, sizeof(i));
	lws_snprintf(d->url, sizeof(d->url), "%s", d->conf->url);
	if (lws_parse_uri(d->url, &prot, &addr, &port, &path)) {
		wr_error("peer '%s': cannot parse url", d->conf->name);
		return; /* config validation makes this unreachable */
	}
	lws_snprintf(fullpath, sizeof(fullpath), "/%s", path);
	i.context = d->node->ctx;
	i.address = addr;
	i.port = port;
	i.path = fullpath;
	i.host = addr;
	i.origin = addr;
	i.ssl_connection = !strcmp(prot, "wss") ? LCCSCF_USE_SSL : 0;
	i.local_protocol_name = "wsrelay";
	i.opaque_user_data = d;
	i.pwsi = &d->wsi;
	wr_debug("peer '%s': dialling (attempt %u)", d->conf->name, d->attempt);
	if (!lws_client_connect_via_info(&i))
		schedule(d);
}

int wr_links_start(struct wr_node *node)
{
	const struct wr_config *cfg = node->cfg;

	if (!cfg->npeers)
		return WR_OK;
	node->dials = calloc(cfg->npeers, sizeof(*node->dials));
	if (!node->dials)
		return WR_ENOMEM;
	for (size_t k = 0; k < cfg->npeers; k++) {
		struct wr_dial *d = &node->dials[k];

		d->node = node;
		d->conf = &cfg->peers[k];
		lws_sul_schedule(node->ctx, 0, &d->sul, dial, 1);
	}
	return WR_OK;
}

void wr_links_stop(struct wr_node *node)
{
	for (size_t k = 0; node->dials && k < node->cfg->npeers; k++)
		lws_sul_cancel(&node->dials[k].sul);
}

void wr_links_fini(struct wr_node *node)
{
	free(node->dials);
	node->dials = NULL;
}

/* LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER */
int wr_link_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	struct wr_dial *d = lws_get_opaque_user_data(wsi);

	if (!d)
		return -1;
	return lws_add_http_header_by_name(wsi,
			(const unsigned char *)"authentication:",
			(const unsigned char *)d->conf->token,
			(int)strlen(d->conf->token), p, end) ? -1 : 0;
}

/* LWS_CALLBACK_CLIENT_ESTABLISHED: the upgrade went through. */
int wr_link_established(struct wr_node *node, struct lws *wsi,
			struct wr_pss *pss)
{
	struct wr_dial *d = lws_get_opaque_user_data(wsi);

	if (!d || wr_peer_open(node, wsi, pss))
		return -1;
	pss->peer->dial = d;
	return wr_peer_send_handshake(node, pss->peer);
}

/* The link is gone or never came up: dial again later. */
void wr_link_lost(struct wr_node *node, struct lws *wsi, const char *why)
{
	struct wr_dial *d = lws_get_opaque_user_data(wsi);

	if (!d)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	d->wsi = NULL;
	if (!node->stopping)
		wr_info("peer '%s': %s, redialling", d->conf->name, why);
	schedule(d);
}

void wr_link_handshaken(struct wr_dial *d)
{
	d->attempt = 0;
}

const char *wr_link_peer_name(const struct wr_dial *d)
{
	return d->conf->name;
}
