/*
 * config/reload: what a reload (SIGHUP) may change in a running node.
 *
 * The rule is inverted on purpose: every key is live except the ones
 * listed here, which shape what was built at start (the listening socket,
 * the node's name and advertised url, the mesh timings its engine and view
 * derive their clocks from, TLS on or off and the dialling trust). A key
 * added later is therefore live unless it is added to this list.
 */
#include <string.h>

#include "config.h"

static bool str_differs(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Keeps @live's string in @next (the pointers trade places, so the value
 * @next brought is freed with it), saying so when it differed. */
static void keep_str(char **live, char **next, const char *key,
		     config_restart_fn restart, void *ud)
{
	char *t;

	if (str_differs(*live, *next) && restart)
		restart(ud, key);
	t = *live;
	*live = *next;
	*next = t;
}

#define KEEP_STR(f, key) keep_str(&live->f, &next->f, key, restart, ud)
#define KEEP_VAL(f, key)                           \
	do {                                       \
		if (live->f != next->f && restart) \
			restart(ud, key);          \
		next->f = live->f;                 \
	} while (0)

void config_reload_merge(struct config *live, struct config *next,
			 config_restart_fn restart, void *ud)
{
	struct config t;

	KEEP_STR(name, "node.name");
	KEEP_STR(listen, "node.listen");
	keep_str(&live->listen_host, &next->listen_host, NULL, NULL, ud);
	next->listen_port = live->listen_port;
	KEEP_STR(url, "node.url");
	KEEP_VAL(master, "node.master");
	/* TLS on or off is the listener's; a new pair for a TLS node is live */
	if ((live->tls_cert == NULL) != (next->tls_cert == NULL)) {
		KEEP_STR(tls_cert, "tls.cert");
		KEEP_STR(tls_key, "tls.key");
	}
	KEEP_STR(tls_ca, "tls.ca");
	KEEP_VAL(tls_insecure, "tls.insecure");
	KEEP_VAL(announce_interval_ms, "mesh.announce_interval_ms");
	KEEP_VAL(ping_interval_ms, "mesh.ping_interval_ms");
	KEEP_VAL(peer_timeout_ms, "mesh.peer_timeout_ms");
	KEEP_VAL(command_timeout_ms, "mesh.command_timeout_ms");
	KEEP_VAL(reconnect_min_ms, "mesh.reconnect_min_ms");
	KEEP_VAL(reconnect_max_ms, "mesh.reconnect_max_ms");
	KEEP_VAL(reconcile_interval_ms, "mesh.reconcile_interval_ms");
	KEEP_VAL(stats_interval_ms, "mesh.stats_interval_ms");

	/* everything else is @next's: the two trade places */
	t = *live;
	*live = *next;
	*next = t;
}
