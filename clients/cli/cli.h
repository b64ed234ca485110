/*
 * clients/cli: the command-line client, `wsrelay sub|pub|list|health`.
 * Each subcommand runs one small lws context of its own on lws's default
 * poll loop, on the main thread; every wait has a deadline except a
 * subscriber's wait for the next message. No lws types in this header.
 */
#ifndef WR_CLI_H
#define WR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- entry points (node/main.c) ---- */

/* True when @name is a client subcommand ("sub", "pub", "list", "health",
 * "token"). */
bool cli_is_command(const char *name);
/* Runs the subcommand argv[0] with its arguments; returns the exit status. */
int cli_main(int argc, char **argv);
/* The client part of `wsrelay --help`: usage lines and exit statuses. */
void cli_usage_summary(FILE *f);

/* ---- exit statuses ---- */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_REFUSED = 1, /* the server answered ok:false */
	CLI_EXIT_USAGE = 2,   /* bad command line or input */
	CLI_EXIT_CONN = 3,    /* connection, TLS, timeout, interrupted */
};
/* health: 0 good, 1 degraded, 2 bad, 3 cannot connect or bad answer */
enum cli_health_exit {
	CLI_HEALTH_GOOD = 0,
	CLI_HEALTH_DEGRADED = 1,
	CLI_HEALTH_BAD = 2,
	CLI_HEALTH_ERROR = 3,
};

/* ---- url.c ---- */
#define CLI_HOST_MAX 256
#define CLI_PATH_MAX 1024

/* Where one URL argument leads: the WebSocket endpoint and /health. */
struct cli_url {
	bool tls;                /* wss:// or https:// */
	char host[CLI_HOST_MAX]; /* without brackets for IPv6 */
	int port;
	char ws_path[CLI_PATH_MAX];     /* path of the /connect upgrade */
	char health_path[CLI_PATH_MAX]; /* path of GET /health */
};
/*
 * Parses ws(s)://HOST[:PORT][/PATH] or http(s)://HOST[:PORT][/PATH].
 * ws(s): PATH (default /connect) is the endpoint itself. http(s): PATH is a
 * base, /connect is appended. /health is the base (PATH less a trailing
 * /connect or /health) plus /health. Returns 0, or -1 with @err set.
 */
int cli_url_parse(struct cli_url *u, const char *text, char *err,
		  size_t errlen);

/* ---- wsclient.c: one lws context with one connection ---- */

/* How a wait ended. Not an error code: STOPPED is the user's wish. */
enum cli_wait {
	CLI_WAIT_DONE,    /* what was waited for happened */
	CLI_WAIT_TIMEOUT, /* the deadline passed */
	CLI_WAIT_STOPPED, /* SIGINT or SIGTERM */
	CLI_WAIT_FAILED,  /* connection failed or closed: see error */
};

struct cli_conn_opts {
	const struct cli_url *url;
	bool insecure;      /* no certificate or hostname checks */
	const char *cafile; /* trust this CA file (NULL: system store) */
};

struct cli_conn;

/* Installs the SIGINT/SIGTERM handlers every wait watches. */
void cli_signals_init(void);
bool cli_stop_requested(void);

/* Returns a new connection object (nothing dialled yet), or NULL. */
struct cli_conn *cli_conn_create(const struct cli_conn_opts *o);
/* Closes politely (close 1000, up to 1 s for the answer) and frees;
 * NULL is a no-op. */
void cli_conn_destroy(struct cli_conn *c);
/* Why the last wait failed or timed out: a sentence, never NULL. */
const char *cli_conn_error(const struct cli_conn *c);

/* Dials the URL's WebSocket endpoint; DONE once the upgrade is complete.
 * @deadline_ms is monotonic (wr_now_ms()). */
enum cli_wait cli_ws_connect(struct cli_conn *c, int64_t deadline_ms);
/* Queues one text frame, copied from @p (@n bytes). 0, or WR_ENOMEM. */
int cli_ws_send(struct cli_conn *c, const char *p, size_t n);
/* Waits for the next received text message (@deadline_ms < 0: forever).
 * On DONE *msg (NUL-terminated) and *len stay valid until the next call. */
enum cli_wait cli_ws_recv(struct cli_conn *c, int64_t deadline_ms,
			  const char **msg, size_t *len);

/* Reads standard input on the connection's loop from now on. */
int cli_conn_watch_stdin(struct cli_conn *c);
/* The next complete line of standard input without its "\n" (and "\r"):
 * 1 and *line, *len (valid until the next call), 0 when none is complete
 * yet, -1 at end of input once every line was taken, -2 for a line
 * over CLI_LINE_MAX. */
#define CLI_LINE_MAX (16u << 20)
int cli_conn_stdin_line(struct cli_conn *c, const char **line, size_t *len);
/* Waits until a message or a line of input is ready, or input ends. */
enum cli_wait cli_conn_wait(struct cli_conn *c, int64_t deadline_ms);
/* True when a received message is queued (cli_ws_recv will not wait). */
bool cli_ws_pending(const struct cli_conn *c);

/* GET the URL's /health path; DONE with *status, *body (NUL-terminated,
 * valid until destroy) and *len. */
enum cli_wait cli_http_get(struct cli_conn *c, int64_t deadline_ms, int *status,
			   const char **body, size_t *len);

/* ---- cli.c: one parsed command line, and the subcommands ---- */
struct cli_args {
	const char *cmd;      /* "sub", "pub", "list", "health" */
	const char *url_text; /* as given, for messages */
	struct cli_url url;
	const char *channel;
	const char *message;  /* pub: NULL means standard input */
	const char *password; /* NULL: none */
	bool json;
	bool insecure;
	const char *cafile;
	int64_t timeout_ms;
	const char *token; /* --token or $WSRELAY_TOKEN: auth first; or NULL */
	/* sub (PROTOCOL.md 7.3): --recover, --since EPOCH:OFFSET */
	bool recover;
	const char *since_epoch; /* NULL: none */
	uint64_t since_offset;
	/* history: --limit N (has_limit false: the node's size) */
	bool has_limit;
	uint64_t limit;
};

/* Prints "wsrelay CMD: " and the message on stderr. */
void cli_err(const struct cli_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Flushes stdout: 0, 1 when the reader has gone (EPIPE), -1 on another
 * error (reported). */
int cli_flush_stdout(const struct cli_args *a);

/* pubsub.c and health.c: each returns the exit status */
int cli_cmd_sub(const struct cli_args *a);
int cli_cmd_pub(const struct cli_args *a);
int cli_cmd_list(const struct cli_args *a);
int cli_cmd_history(const struct cli_args *a);
int cli_cmd_presence(const struct cli_args *a);
int cli_cmd_health(const struct cli_args *a);
/* token.c: `wsrelay token ...` (its own options; argv[0] is "token") */
int cli_cmd_token(int argc, char **argv);

#endif
