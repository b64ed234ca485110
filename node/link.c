/*
 * node/link: outbound /node links. Every [[peers]] entry is dialled and
 * redialled forever after any loss with exponential backoff and full
 * jitter ([mesh] reconnect_min_ms .. reconnect_max_ms, PROTOCOL.md 3.1),
 * but not while a link to that name is up the other way (3.1's tie rule
 * would close one of the two). The remote connection flow adds one-shot
 * dials with a one-time token: no redial, the flow retries. A dial that
 * handshakes becomes a node_peer like an accepted link (peer.c frames its
 * packets itself and, on a dialled link, masks them into the write
 * buffer; lws frames and masks only its pings and close).
 *
 * An attempt ends on the first of CLIENT_CONNECTION_ERROR, CLOSED_CLIENT_HTTP
 * (lost before the 101: lws reports nothing else then), CLIENT_CLOSED, and
 * two backstops: WSI_DESTROY and a 5 s watchdog.
 */
#include <string.h>

#include <sodium.h>

#include "node.h"

struct node_dial {
	struct node *node;
	char name[INM_NAME_MAX + 1];
	char url[512];
	char token[256];
	bool once;              /* remote connection: one attempt */
	bool listed;            /* in node->once.head (until it is up) */
	bool removed;           /* [[peers]] entry gone (reload): freed when
				 * its link is */
	struct node_dial *next; /* node->once.head, or node->dials */
	struct lws *wsi;        /* while connecting or connected */
	unsigned attempt;       /* failures since the last handshake */
	int64_t since_ms;       /* dial started, until it handshakes */
	bool in_connect;        /* inside lws_client_connect_via_info */
	char cert_error[96];    /* why TLS refused the peer, this attempt */
	lws_sorted_usec_list_t sul;
	char parse[512]; /* lws_parse_uri cuts this copy up */
};

static void dial(lws_sorted_usec_list_t *sul);
static void lost(struct node *node, struct node_dial *d, const char *why);

static void schedule(struct node_dial *d)
{
	int64_t ms = mesh_backoff_ms(d->node->mesh, d->attempt);

	if (d->node->stopping)
		return;
	d->attempt++;
	lws_sul_schedule(d->node->ctx, 0, &d->sul, dial, ms * LWS_US_PER_MS);
}

/* A one-shot dial leaves the list when it is up: it is a link then. */
static void once_unlist(struct node_dial *d)
{
	struct node_dials_once *m = &d->node->once;

	if (!d->listed)
		return;
	d->listed = false;
	for (struct node_dial **pp = &m->head; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			m->count--;
			break;
		}
}

static void once_free(struct node_dial *d)
{
	once_unlist(d);
	lws_sul_cancel(&d->sul);
	sodium_memzero(d->token, sizeof(d->token));
	free(d);
}

static int connect_to(struct node_dial *d)
{
	struct lws_client_connect_info i;
	const char *prot, *addr, *path;
	char fullpath[256];
	int port;

	memset(&i, 0, sizeof(i));
	lws_snprintf(d->parse, sizeof(d->parse), "%s", d->url);
	if (lws_parse_uri(d->parse, &prot, &addr, &port, &path)) {
		wr_error("peer '%s': cannot parse url '%s'", d->name, d->url);
		return -1;
	}
	lws_snprintf(fullpath, sizeof(fullpath), "/%s", path);
	i.context = d->node->ctx;
	i.address = addr;
	i.port = port;
	i.path = fullpath;
	i.host = addr;
	i.origin = addr;
	i.ssl_connection = !strcmp(prot, "wss") ? LCCSCF_USE_SSL : 0;
	/* asks the accepting node for its node-link protocol (bigger reads);
	 * a node without it answers with its default one, which works too */
	i.protocol = "wsrelay-node";
	i.local_protocol_name = "wsrelay-node";
	i.opaque_user_data = d;
	/* no i.pwsi: lws would write to it after we may have freed @d */
	wr_debug("peer '%s': dialling %s (attempt %u)", d->name, d->url,
		 d->attempt);
	d->since_ms = wr_now_ms();
	d->cert_error[0] = '\0';
	d->in_connect = true;
	d->wsi = lws_client_connect_via_info(&i);
	d->in_connect = false;
	if (!d->wsi)
		d->since_ms = 0;
	return d->wsi ? 0 : -1;
}

static void dial(lws_sorted_usec_list_t *sul)
{
	struct node_dial *d = lws_container_of(sul, struct node_dial, sul);

	if (d->node->stopping)
		return;
	if (node_peer_named(d->node, d->name)) {
		/* linked the other way: look again later (and at once when
		 * that link goes, node_links_peer_down) */
		d->attempt = 0;
		schedule(d);
		return;
	}
	if (connect_to(d))
		schedule(d);
}

static struct node_dial *dial_new(struct node *node,
				  const struct config_peer *cp)
{
	struct node_dial *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->node = node;
	lws_snprintf(d->name, sizeof(d->name), "%s", cp->name);
	lws_snprintf(d->url, sizeof(d->url), "%s", cp->url);
	lws_snprintf(d->token, sizeof(d->token), "%s",
		     cp->token ? cp->token : "");
	d->next = node->dials;
	node->dials = d;
	lws_sul_schedule(node->ctx, 0, &d->sul, dial, 1);
	return d;
}

static void dial_free(struct node_dial *d)
{
	lws_sul_cancel(&d->sul);
	sodium_memzero(d->token, sizeof(d->token));
	free(d);
}

int node_links_start(struct node *node)
{
	const struct config *cfg = node->cfg;

	for (size_t k = cfg->npeers; k-- > 0;)
		if (!dial_new(node, &cfg->peers[k]))
			return WR_ENOMEM;
	return WR_OK;
}

void node_links_stop(struct node *node)
{
	for (struct node_dial *d = node->dials; d; d = d->next)
		lws_sul_cancel(&d->sul);
	for (struct node_dial *d = node->once.head; d; d = d->next)
		lws_sul_cancel(&d->sul);
}

void node_links_fini(struct node *node)
{
	while (node->once.head) {
		once_free(node->once.head);
	}
	while (node->dials) {
		struct node_dial *d = node->dials;

		node->dials = d->next;
		dial_free(d);
	}
}

void node_links_peer_down(struct node *node, const char *name)
{
	for (struct node_dial *d = node->dials; d; d = d->next) {
		if (!d->wsi && !strcmp(d->name, name) && !node->stopping) {
			d->attempt = 0;
			schedule(d);
		}
	}
}

static const struct config_peer *peer_entry(const struct config *cfg,
					    const char *name)
{
	for (size_t k = 0; k < cfg->npeers; k++)
		if (!strcmp(cfg->peers[k].name, name))
			return &cfg->peers[k];
	return NULL;
}

/*
 * An entry gone from [[peers]]: no more dials. A link it made closes
 * (1000); the entry is freed when lws reports the close (node_link_lost).
 * An attempt still connecting is abandoned at once.
 */
static void dial_remove(struct node *node, struct node_dial *d)
{
	struct node_peer *p;

	lws_sul_cancel(&d->sul);
	if (!d->wsi) {
		dial_free(d);
		return;
	}
	for (p = node_peers_first(node); p && p->dial != d;)
		p = node_peer_next(p);
	if (p) {
		d->removed = true;
		node_peer_close_later(p, LWS_CLOSE_STATUS_NORMAL,
				      "peer removed from the config");
		return;
	}
	lws_set_opaque_user_data(d->wsi, NULL);
	lws_set_timeout(d->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	dial_free(d);
}

int node_links_reload(struct node *node, const struct config *next)
{
	struct node_dial **pp = &node->dials;
	int rc = WR_OK;

	/* entries gone, or changed (the new url and token serve the next
	 * dial; an up link stays) */
	while (*pp) {
		struct node_dial *d = *pp;
		const struct config_peer *cp = peer_entry(next, d->name);

		if (!cp) {
			wr_info("peer '%s': removed from the config, closing "
				"its link",
				d->name);
			*pp = d->next;
			dial_remove(node, d);
			continue;
		}
		if (strcmp(d->url, cp->url) ||
		    strcmp(d->token, cp->token ? cp->token : "")) {
			wr_info("peer '%s': url or token changed", d->name);
			lws_snprintf(d->url, sizeof(d->url), "%s", cp->url);
			lws_snprintf(d->token, sizeof(d->token), "%s",
				     cp->token ? cp->token : "");
			if (!d->wsi) {
				d->attempt = 0;
				lws_sul_schedule(node->ctx, 0, &d->sul, dial,
						 1);
			}
		}
		pp = &d->next;
	}
	/* new entries: dialled now */
	for (size_t k = 0; k < next->npeers; k++) {
		struct node_dial *d = node->dials;

		while (d && strcmp(d->name, next->peers[k].name))
			d = d->next;
		if (d)
			continue;
		wr_info("peer '%s': added to the config, dialling %s",
			next->peers[k].name, next->peers[k].url);
		if (!dial_new(node, &next->peers[k]))
			rc = WR_ENOMEM;
	}
	return rc;
}

int node_link_dial_once(struct node *node, const char *name, const char *url,
			const char *token)
{
	struct node_dial *d;

	if (node->stopping || !node->ctx)
		return WR_EINVAL;
	if (node_link_dialling(node, name))
		return WR_EEXIST;
	d = calloc(1, sizeof(*d));
	if (!d)
		return WR_ENOMEM;
	d->node = node;
	d->once = true;
	lws_snprintf(d->name, sizeof(d->name), "%s", name);
	lws_snprintf(d->url, sizeof(d->url), "%s", url);
	lws_snprintf(d->token, sizeof(d->token), "%s", token);
	d->next = node->once.head;
	d->listed = true;
	node->once.head = d;
	node->once.count++;
	if (connect_to(d)) {
		once_free(d);
		return WR_EINVAL;
	}
	return WR_OK;
}

/*
 * A dial must connect and handshake within 5 s (the handshake limit of
 * 3.1), else it is dropped and the dial starts anew. lws's limits are per
 * phase, each re-armed as the last one ends: 5 s (timeout_secs) for the
 * TCP connect, for TLS and sending the upgrade, for the 101, then our 5 s
 * for the handshake reply (peer.c), so a slow or stalling peer could hold
 * one attempt for 20 s. This also bounds any end of a connection that lws
 * might yet fail to report.
 */
#define DIAL_TIMEOUT_MS 5000

static void watch(struct node_dial *d, int64_t now)
{
	if (!d->since_ms || !d->wsi || now - d->since_ms < DIAL_TIMEOUT_MS)
		return;
	wr_warn("peer '%s': no answer for %d ms, dropping the attempt", d->name,
		DIAL_TIMEOUT_MS);
	/* its callbacks find nobody from now on */
	lws_set_opaque_user_data(d->wsi, NULL);
	lws_set_timeout(d->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	lost(d->node, d, "attempt abandoned");
}

void node_links_watch(struct node *node)
{
	int64_t now = wr_now_ms();

	for (struct node_dial *d = node->dials; d; d = d->next)
		watch(d, now);
	for (struct node_dial *d = node->once.head, *next; d; d = next) {
		next = d->next;
		watch(d, now);
	}
}

bool node_links_dialling_any(struct node *node)
{
	for (struct node_dial *d = node->dials; d; d = d->next)
		if (d->since_ms)
			return true;
	return node->once.head != NULL;
}

bool node_link_dialling(struct node *node, const char *name)
{
	for (struct node_dial *d = node->once.head; d; d = d->next)
		if (!strcmp(d->name, name))
			return true;
	for (struct node_dial *d = node->dials; d; d = d->next)
		if (d->wsi && !strcmp(d->name, name))
			return true;
	return false;
}

/* LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER */
int node_link_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	struct node_dial *d = lws_get_opaque_user_data(wsi);

	if (!d)
		return -1;
	return lws_add_http_header_by_name(wsi,
					   (const unsigned char
						    *)"authentication:",
					   (const unsigned char *)d->token,
					   (int)strlen(d->token), p, end)
		       ? -1
		       : 0;
}

/* LWS_CALLBACK_CLIENT_ESTABLISHED: the upgrade went through. */
int node_link_established(struct node *node, struct lws *wsi,
			  struct node_pss *pss)
{
	struct node_dial *d = lws_get_opaque_user_data(wsi);

	if (!d || node_peer_open(node, wsi, pss))
		return -1;
	pss->peer->dial = d;
	return node_peer_send_handshake(node, pss->peer);
}

/*
 * LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION with preverify_ok
 * 0: OpenSSL refused the peer's certificate and the handshake will fail.
 * lws's own error text for that is an opaque "connect SSL err 1", so the
 * dial keeps OpenSSL's reason for its log line.
 */
void node_link_cert_refused(struct lws *wsi, const char *why)
{
	struct node_dial *d = lws_get_opaque_user_data(wsi);

	if (d && !d->cert_error[0])
		lws_snprintf(d->cert_error, sizeof(d->cert_error), "%s", why);
}

/* The link is gone or never came up: dial again later (a one-shot dial
 * is forgotten; its flow retries). */
void node_link_lost(struct node *node, struct lws *wsi, const char *why)
{
	struct node_dial *d = lws_get_opaque_user_data(wsi);
	char buf[192];

	if (!d)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	if (d->in_connect)
		return; /* failed inside connect_to(): its caller handles it */
	if (d->cert_error[0]) {
		/* say which trust the certificate failed: the usual fix is
		 * [tls] ca */
		lws_snprintf(buf, sizeof(buf),
			     "certificate refused (checked against %s): %s",
			     node->cfg->tls_ca ? "[tls] ca"
					       : "the system store",
			     d->cert_error);
		why = buf;
	}
	lost(node, d, why);
}

static void lost(struct node *node, struct node_dial *d, const char *why)
{
	d->wsi = NULL;
	d->since_ms = 0;
	if (d->once) {
		bool was_up = !d->listed;

		if (!node->stopping)
			wr_info("peer '%s': %s (remote connection)", d->name,
				why);
		once_free(d);
		if (!was_up)
			flow_remote_result(node->flows, false);
		return;
	}
	if (d->removed) {
		dial_free(d);
		return;
	}
	if (!node->stopping)
		wr_info("peer '%s': %s, redialling", d->name, why);
	schedule(d);
}

/* LWS_CALLBACK_WSI_DESTROY: lws frees a dial's connection. A
 * CONNECTION_ERROR, CLOSED_CLIENT_HTTP or CLIENT_CLOSED came first on
 * every path read in lws 4.1.6; should one not, the attempt ends here
 * rather than waiting for the watchdog. */
void node_link_destroyed(struct node *node, struct lws *wsi)
{
	struct node_dial *d = lws_get_opaque_user_data(wsi);

	if (!d || d->wsi != wsi || d->in_connect)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	wr_debug("peer '%s': connection freed without a close", d->name);
	lost(node, d, "connection ended");
}

void node_link_handshaken(struct node_dial *d)
{
	d->since_ms = 0;
	if (d->once) {
		once_unlist(d);
		flow_remote_result(d->node->flows, true);
		return;
	}
	d->attempt = 0;
}

const char *node_link_peer_name(const struct node_dial *d)
{
	return d->name;
}
