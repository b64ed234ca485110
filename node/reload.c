/*
 * node/reload: SIGHUP reloads the config file without dropping anyone.
 *
 * The file is read and parsed, and the TLS pair it names loaded and matched,
 * on a libuv worker thread: the loop never blocks on the disk. The result
 * comes back to the loop, which applies it in one go or not at all:
 *  - an error anywhere (syntax, a value out of range, an unreadable or
 *    mismatched certificate) keeps the running config, logs the reason
 *    with file and line, and counts in wsrelay_config_reloads_total
 *    {result="error"};
 *  - otherwise [[peers]] are diffed (new entries dialled, gone ones closed),
 *    a TLS node puts the new pair into its listener's context (connections
 *    open keep the pair they were made with, new ones get the new one),
 *    and every other key takes its new value (config_reload_merge: the
 *    ones that need a restart are logged and keep theirs), the log level
 *    and format, the registry's limits and the keepalive period included;
 *    the [auth] keys are built on the worker too (the secret file read
 *    there) and swapped in: logins hold no pointer into the old object.
 * One reload runs at a time; a SIGHUP meanwhile runs another after it.
 */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "node.h"

struct node_reload {
	uv_work_t work;
	struct node *node;
	char *path;
	bool tls; /* load the TLS pair the new config names */
	struct config next;
	int rc;
	char err[512];
	X509 *leaf;
	STACK_OF(X509) * chain;
	EVP_PKEY *key;
	struct auth_keys *keys; /* the new [auth] keys */
};

static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s ? s : "no PEM data";
}

/* Worker thread: the certificate chain and the key, checked to match. */
static int tls_load(struct node_reload *r)
{
	const char *cert = r->next.tls_cert, *key = r->next.tls_key;
	X509 *x;
	BIO *b;

	ERR_clear_error();
	b = BIO_new_file(cert, "r");
	if (!b) {
		snprintf(r->err, sizeof(r->err),
			 "%s: [tls] cert '%s': cannot read: %s", r->path, cert,
			 strerror(errno));
		return WR_EINVAL;
	}
	r->leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
	r->chain = sk_X509_new_null();
	while (r->leaf && r->chain &&
	       (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		if (!sk_X509_push(r->chain, x))
			X509_free(x);
	BIO_free(b);
	if (!r->leaf || !r->chain ||
	    ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		snprintf(r->err, sizeof(r->err),
			 "%s: [tls] cert '%s': not a PEM certificate chain: %s",
			 r->path, cert, ossl_reason());
		return WR_EINVAL;
	}
	ERR_clear_error();
	b = BIO_new_file(key, "r");
	if (!b) {
		snprintf(r->err, sizeof(r->err),
			 "%s: [tls] key '%s': cannot read: %s", r->path, key,
			 strerror(errno));
		return WR_EINVAL;
	}
	r->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!r->key) {
		snprintf(r->err, sizeof(r->err),
			 "%s: [tls] key '%s': not a PEM private key: %s",
			 r->path, key, ossl_reason());
		return WR_EINVAL;
	}
	if (X509_check_private_key(r->leaf, r->key) != 1) {
		snprintf(r->err, sizeof(r->err),
			 "%s: [tls] key '%s' does not match the certificate "
			 "'%s'",
			 r->path, key, cert);
		return WR_EINVAL;
	}
	ERR_clear_error();
	return WR_OK;
}

static void load_work(uv_work_t *w)
{
	struct node_reload *r = w->data;

	r->rc = config_load(&r->next, r->path, r->err, sizeof(r->err));
	if (!r->rc)
		r->rc = node_auth_keys(&r->next, &r->keys, r->err,
				       sizeof(r->err));
	if (!r->rc && r->tls && r->next.tls_cert)
		r->rc = tls_load(r);
}

/* Loop: the new pair into the listener's context, or why not. */
static int tls_apply(struct node *node, struct node_reload *r)
{
	SSL_CTX *ctx = node->server_ssl_ctx;
	int ok;

	if (!r->leaf)
		return WR_OK;
	if (!ctx) {
		snprintf(r->err, sizeof(r->err),
			 "the listener has no TLS context to update");
		return WR_EINVAL;
	}
	ERR_clear_error();
	ok = SSL_CTX_use_certificate(ctx, r->leaf) == 1 &&
	     SSL_CTX_use_PrivateKey(ctx, r->key) == 1 &&
	     SSL_CTX_clear_chain_certs(ctx) == 1;
	for (int i = 0; ok && i < sk_X509_num(r->chain); i++)
		ok = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(r->chain, i)) ==
		     1;
	ok = ok && SSL_CTX_check_private_key(ctx) == 1;
	if (!ok) {
		/* the old pair may be half replaced: say so loudly */
		snprintf(r->err, sizeof(r->err),
			 "cannot use the new TLS pair: %s", ossl_reason());
		ERR_clear_error();
		return WR_EINVAL;
	}
	return WR_OK;
}

static void restart_key(void *ud, const char *key)
{
	(void)ud;
	wr_warn("reload: %s changed: it needs a restart, keeping the running "
		"value",
		key);
}

static void apply(struct node *node, struct node_reload *r)
{
	struct config *cfg = node->cfg;
	int ping = cfg->client_ping_interval_ms;
	struct chan_limits lim;

	node_links_reload(node, &r->next);
	config_reload_merge(cfg, &r->next, restart_key, node);
	/* new verifications use the new keys; logins keep their grants */
	auth_keys_destroy(node->auth);
	node->auth = r->keys;
	r->keys = NULL;
	wr_log_set_level(cfg->log_level);
	wr_log_set_format(cfg->log_format);
	lim.max_queue_bytes = (size_t)cfg->max_queue_bytes;
	lim.max_subscriptions = (unsigned)cfg->max_subscriptions;
	lim.hist.size = (unsigned)cfg->history_size;
	lim.hist.ttl_ms = cfg->history_ttl_ms;
	lim.hist.max_bytes = (size_t)cfg->history_max_bytes;
	lim.hist.linger_ms = cfg->history_linger_ms;
	chan_registry_set_limits(node->reg, &lim);
	node_fds_clamp(node);
	if (ping != cfg->client_ping_interval_ms)
		node_keepalive_rearm(node);
}

static void reload_free(struct node_reload *r)
{
	config_fini(&r->next);
	auth_keys_destroy(r->keys);
	X509_free(r->leaf);
	sk_X509_pop_free(r->chain, X509_free);
	EVP_PKEY_free(r->key);
	free(r->path);
	free(r);
}

static void load_done(uv_work_t *w, int status)
{
	struct node_reload *r = w->data;
	struct node *node = r->node;

	node->reload = NULL;
	if (status || node->stopping)
		goto out;
	if (r->rc || tls_apply(node, r)) {
		node->ctr.config_reloads_failed++;
		wr_error("reload failed, the running config is kept: %s",
			 r->err);
		goto out;
	}
	apply(node, r);
	node->ctr.config_reloads_ok++;
	wr_info("reload: config applied from %s", r->path);
out:
	reload_free(r);
	if (node->reload_again && !node->stopping) {
		node->reload_again = false;
		node_reload_request(node);
	}
}

void node_reload_request(struct node *node)
{
	struct node_reload *r;

	if (node->stopping)
		return;
	if (node->reload) {
		node->reload_again = true;
		return;
	}
	if (!node->cfg->path) {
		wr_warn("reload: running on the built-in defaults, no file to "
			"read");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r)
		r->path = strdup(node->cfg->path);
	if (!r || !r->path) {
		free(r);
		wr_error("reload: out of memory");
		return;
	}
	r->node = node;
	r->tls = node->tls;
	r->work.data = r;
	wr_info("reload: reading %s (SIGHUP)", r->path);
	if (uv_queue_work(&node->loop, &r->work, load_work, load_done)) {
		wr_error("reload: cannot queue the work");
		reload_free(r);
		return;
	}
	node->reload = r;
}

void node_reload_tls_ctx(struct node *node, void *ssl_ctx)
{
	node->server_ssl_ctx = ssl_ctx;
}
