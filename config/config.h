/*
 * config/config: the node's configuration, loaded from a strict TOML subset
 * (config/toml.h). Every error names the file, the line and the key.
 * Key names and defaults are a contract: see node.toml.example.
 */
#ifndef CONFIG_CONFIG_H
#define CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr.h"

/* [node] token: the shortest static mesh token accepted */
#define CONFIG_TOKEN_MIN 16

/* A list of strings from the file, with the line of each. */
struct config_strs {
	char **v;
	int *lines;
	size_t n;
};

struct config_peer {
	char *name;
	char *url; /* ws://host:port/node or wss://... */
	char *token;
};

struct config {
	char *path; /* the file loaded, or NULL for defaults */

	/* [node] */
	char *name;        /* default: the host name */
	char *listen;      /* "127.0.0.1:8080" as written */
	char *listen_host; /* "127.0.0.1", "::1" (no brackets), "0.0.0.0" */
	int listen_port;   /* 0..65535; 0 = ephemeral */
	char *url;         /* advertised /node URL, may be NULL */
	char *token;       /* may be NULL: no static /node token */
	bool master;
	int max_peers; /* default 8 */

	/* [tls] */
	char *tls_cert, *tls_key, *tls_ca; /* NULL when unset */
	bool tls_insecure;

	/* [limits] */
	int64_t max_message_bytes; /* 65536 */
	int64_t max_queue_bytes;   /* 1048576 */
	int max_subscriptions;     /* 1024 */
	int max_clients;           /* 100000 */

	/* [health] */
	int max_latency_ms; /* 10 */

	/* [mesh] */
	int announce_interval_ms;  /* 5000 */
	int ping_interval_ms;      /* 5000 */
	int peer_timeout_ms;       /* 15000 */
	int command_timeout_ms;    /* 5000 */
	int reconnect_min_ms;      /* 500 */
	int reconnect_max_ms;      /* 30000 */
	int reconcile_interval_ms; /* 15000 */

	/* [log] */
	enum wr_log_level log_level;   /* info */
	enum wr_log_format log_format; /* text */

	/* [[peers]] */
	struct config_peer *peers;
	size_t npeers;

	/* [limits], added last to keep the layout above stable */
	int client_ping_interval_ms; /* 30000: keepalive ping to /connect clients */
	/* [mesh], added later */
	int stats_interval_ms; /* 15000: the master's stats samples */

	/* [node], added later */
	int drain_ms; /* 10000: SIGUSR2 closes the clients over this */

	/* [web] */
	char *web_root; /* absolute; NULL: no static files (root = "") */

	/* [auth] (PROTOCOL.md 7.1): the keys are read and checked by
	 * auth_keys_load() (auth/), which reports at these lines */
	char *auth_hs256_secret_file; /* relative to the config's directory */
	int auth_hs256_line;
	struct config_strs auth_ed25519; /* standard base64, as written */
	bool auth_required;
	char *auth_issuer, *auth_audience; /* NULL: not checked */
	int auth_timeout_ms;               /* 5000 */

	/* PROTOCOL.md 7.2 */
	struct config_strs allowed_origins; /* [web]; n 0: any Origin */
	/* [web] admin_token_file: its content (one trailing newline
	 * stripped) guards the /api paths and /metrics; NULL: open */
	char *admin_token_file;
	char *admin_token;
	size_t admin_token_len;
	int max_clients_per_ip;       /* [limits] 1000; per /64 (IPv6) */
	int messages_per_second;      /* [limits] 1000: a token bucket */
	int messages_burst;           /* [limits] 2000: its size */
	int max_list;                 /* [limits] 10000 names a list */
	int password_failures_per_ip; /* [limits] 5 in 10 s, as per connection */
	int max_pending_per_ip; /* [limits] 64 sockets before their headers */

	/* [history] (PROTOCOL.md 7.3) */
	int history_size;          /* 0 (off): messages kept per channel */
	int64_t history_ttl_ms;    /* 300000: an entry's lifetime */
	int64_t history_linger_ms; /* 30000: an emptied channel kept */
	int64_t history_max_bytes; /* 64 MiB: all channels of the node */
};

/* Fills @c with the defaults (allocating the default strings). */
int config_defaults(struct config *c);

/*
 * Parses @text (@len bytes, need not be NUL-terminated) as the config file
 * @path over the defaults already in @c. On error returns WR_EINVAL and
 * writes one line "PATH:LINE: key 'KEY': WHAT" (or "PATH:LINE: WHAT" when
 * no key is involved) into @err; @c then holds partial data and must
 * still be released with config_fini().
 */
int config_parse(struct config *c, const char *path, const char *text,
		 size_t len, char *err, size_t errlen);

/* Reads @path and parses it (config_defaults() first). Same errors;
 * an unreadable file gives "PATH: cannot read: <strerror>". */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/*
 * A reload: @live is the running config, @next a config just loaded from
 * the same file. Afterwards @live holds @next's values for every key that
 * may change while the node runs, and its own for the ones that need a
 * restart (node.listen, node.name, node.url, node.master, the [mesh]
 * timings, [tls] ca and insecure, TLS on/off); @restart is called once
 * per such key whose value differs. @next ends up holding what @live had: config_fini() it.
 * Pointers into @live's replaced strings are stale afterwards.
 */
typedef void (*config_restart_fn)(void *ud, const char *key);
void config_reload_merge(struct config *live, struct config *next,
			 config_restart_fn restart, void *ud);

/* Frees a list's strings (and zeroes it). */
void config_strs_fini(struct config_strs *l);
/* Frees every string; @c may be partially filled. */
void config_fini(struct config *c);

#endif
