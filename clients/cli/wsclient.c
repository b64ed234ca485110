/*
 * clients/cli/wsclient: one lws context holding one connection — the
 * /connect WebSocket, or the GET /health request — and, for `pub`,
 * standard input adopted onto the same poll loop. The callback only
 * records what happened (queues, state); the blocking cli_* calls run
 * lws_service() until what they wait for is there, a deadline passes or
 * a stop signal arrives. A 100 ms tick bounds every poll, so a signal
 * that lands just before poll() is still seen.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <libwebsockets.h>
#include <openssl/x509.h>

#include "cli.h"
#include "wr.h"

#define TICK_US (100 * LWS_US_PER_MS)
#define RX_MAX ((size_t)64 << 20)  /* one received message, at most */
#define BODY_MAX ((size_t)1 << 20) /* a /health answer, at most */
#define STDIN_CHUNK 65536
#define CLOSE_WAIT_MS 1000

struct out_frame {
	struct out_frame *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE headroom, then the payload */
};

struct in_msg {
	struct in_msg *next;
	size_t len;
	char data[]; /* NUL-terminated */
};

enum conn_state { ST_IDLE, ST_CONNECTING, ST_OPEN, ST_CLOSED };

struct cli_conn {
	struct cli_conn_opts opts;
	struct cli_url url;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws *wsi; /* the connection; NULL once lws freed it */
	struct lws *stdin_wsi;
	char hosthdr[CLI_HOST_MAX + 16]; /* the Host header */
	lws_sorted_usec_list_t tick;
	enum conn_state state;
	bool http;    /* the connection is GET /health */
	bool closing; /* we close: send close 1000 when writable */
	char error[768];
	char tls_error[128]; /* why OpenSSL refused the certificate */
	bool diagnose;       /* a dial failed for a reason lws kept */

	struct out_frame *out_head, **out_tail;
	struct wr_buf rx; /* the message being reassembled */
	struct in_msg *in_head, **in_tail;
	struct in_msg *taken; /* the last one cli_ws_recv returned */
	int close_code;       /* from the server's close frame, or -1 */
	char close_reason[128];

	int http_status;
	bool http_done;
	struct wr_buf body;

	struct wr_buf inb; /* standard input read, not yet taken */
	size_t in_off;     /* start of the first line not taken */
	bool stdin_eof, stdin_paused;
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

void cli_signals_init(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: poll() returns EINTR and the wait looks at the flag */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* a closed stdout shows as EPIPE on the write, not as a kill */
	signal(SIGPIPE, SIG_IGN);
}

bool cli_stop_requested(void)
{
	return stop_flag != 0;
}

static void set_error(struct cli_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_error(struct cli_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

static const char *url_text(const struct cli_conn *c, char *buf, size_t n)
{
	const char *scheme = c->http ? (c->url.tls ? "https" : "http")
				     : (c->url.tls ? "wss" : "ws");
	bool v6 = strchr(c->url.host, ':') != NULL;

	snprintf(buf, n, "%s://%s%s%s:%d%s", scheme, v6 ? "[" : "", c->url.host,
		 v6 ? "]" : "", c->url.port,
		 c->http ? c->url.health_path : c->url.ws_path);
	return buf;
}

/* ---- callback handlers: record, never block ---- */

/*
 * lws reports a failed dial as "Unable to connect" (or not at all, when
 * the name does not resolve). Only then, after the wait, dial once more
 * ourselves, for at most a second in all, to name the cause: "Connection
 * refused", a DNS error... Returns false when the probe connects (then
 * lws's words stand).
 */
static bool diagnose_dial(const struct cli_url *u, char *out, size_t n)
{
	struct addrinfo hints, *res = NULL, *ai;
	int64_t deadline = wr_now_ms() + 1000;
	char port[8];
	int rc, err = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", u->port);
	rc = getaddrinfo(u->host, port, &hints, &res);
	if (rc) {
		snprintf(out, n, "cannot resolve '%s': %s", u->host,
			 gai_strerror(rc));
		return true;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
				ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		socklen_t sl = sizeof(err);
		struct pollfd p;

		if (fd < 0) {
			err = errno;
			continue;
		}
		err = connect(fd, ai->ai_addr, ai->ai_addrlen) ? errno : 0;
		if (err == EINPROGRESS) {
			p.fd = fd;
			p.events = POLLOUT;
			if (poll(&p, 1, (int)(deadline - wr_now_ms())) == 1)
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
			else
				err = ETIMEDOUT;
		}
		close(fd);
		if (!err || wr_now_ms() >= deadline)
			break;
	}
	freeaddrinfo(res);
	if (!err)
		return false;
	snprintf(out, n, "%s", strerror(err));
	return true;
}

static void on_connection_error(struct cli_conn *c, struct lws *wsi,
				const char *why, size_t len)
{
	char u[CLI_HOST_MAX + CLI_PATH_MAX + 32];
	size_t n = why ? strnlen(why, len ? len : 512) : 0;
	int status = (int)lws_http_client_http_response(wsi);
	const char *cause = why;

	/* lws ends some of its reasons with a newline */
	while (n &&
	       (why[n - 1] == '\n' || why[n - 1] == '\r' || why[n - 1] == ' '))
		n--;
	if (!n || (n == 17 && !memcmp(why, "Unable to connect", 17)))
		c->diagnose = true; /* after the wait: see finish_error() */
	if (!n) {
		cause = "connection failed";
		n = strlen(cause);
	}
	if (status && !c->http)
		set_error(c,
			  "cannot connect to %s: the server answered HTTP %d, "
			  "not the WebSocket upgrade",
			  url_text(c, u, sizeof(u)), status);
	else if (c->tls_error[0])
		set_error(c,
			  "cannot connect to %s: TLS: the server's certificate "
			  "was refused: %s (--cafile FILE trusts its CA, --insecure "
			  "skips the check)",
			  url_text(c, u, sizeof(u)), c->tls_error);
	else if (strstr(cause, "SSL") || strstr(cause, "cert"))
		set_error(c,
			  "cannot connect to %s: TLS handshake failed (%.*s)",
			  url_text(c, u, sizeof(u)), (int)n, cause);
	else
		set_error(c, "cannot connect to %s: %.*s",
			  url_text(c, u, sizeof(u)), (int)n, cause);
	c->state = ST_CLOSED;
	c->wsi = NULL;
}

/* A failed dial whose reason lws did not give: find it, off the loop. */
static void finish_error(struct cli_conn *c)
{
	char u[CLI_HOST_MAX + CLI_PATH_MAX + 32], cause[512];

	if (!c->diagnose)
		return;
	c->diagnose = false;
	if (diagnose_dial(&c->url, cause, sizeof(cause)))
		set_error(c, "cannot connect to %s: %s",
			  url_text(c, u, sizeof(u)), cause);
}

static void on_peer_close(struct cli_conn *c, const unsigned char *in,
			  size_t len)
{
	if (len < 2)
		return;
	c->close_code = in[0] << 8 | in[1];
	snprintf(c->close_reason, sizeof(c->close_reason), "%.*s",
		 (int)(len - 2), (const char *)in + 2);
}

static void on_closed(struct cli_conn *c)
{
	char u[CLI_HOST_MAX + CLI_PATH_MAX + 32];

	if (c->state == ST_CLOSED)
		return;
	if (!c->closing && !c->http_done && !c->error[0]) {
		if (c->close_code >= 0)
			set_error(c, "%s closed the connection (code %d%s%s)",
				  url_text(c, u, sizeof(u)), c->close_code,
				  c->close_reason[0] ? ": " : "",
				  c->close_reason);
		else
			set_error(c,
				  "%s: connection lost (closed without a "
				  "close frame, or no answer to pings)",
				  url_text(c, u, sizeof(u)));
	}
	c->state = ST_CLOSED;
	c->wsi = NULL;
}

static int on_receive(struct cli_conn *c, struct lws *wsi, const void *in,
		      size_t len)
{
	struct in_msg *m;

	if (c->rx.len + len > RX_MAX) {
		set_error(c, "a message from the server is over %zu bytes",
			  RX_MAX);
		return -1;
	}
	wr_buf_append(&c->rx, in, len);
	if (c->rx.oom) {
		set_error(c, "out of memory");
		return -1;
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	m = malloc(sizeof(*m) + c->rx.len + 1);
	if (!m) {
		set_error(c, "out of memory");
		return -1;
	}
	m->next = NULL;
	m->len = c->rx.len;
	memcpy(m->data, c->rx.p, c->rx.len);
	m->data[m->len] = '\0';
	*c->in_tail = m;
	c->in_tail = &m->next;
	wr_buf_reset(&c->rx);
	return 0;
}

static int on_writeable(struct cli_conn *c, struct lws *wsi)
{
	struct out_frame *f = c->out_head;

	if (c->closing) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	if (!f)
		return 0; /* spurious */
	/* lws masks the payload in place: each frame is ours, written once */
	if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) <
	    (int)f->len) {
		set_error(c, "write to the server failed");
		return -1;
	}
	c->out_head = f->next;
	if (!c->out_head)
		c->out_tail = &c->out_head;
	free(f);
	if (c->out_head)
		lws_callback_on_writable(wsi);
	return 0;
}

static int on_http_read(struct cli_conn *c, const void *in, size_t len)
{
	if (c->body.len + len > BODY_MAX) {
		set_error(c, "the /health answer is over %zu bytes", BODY_MAX);
		return -1;
	}
	wr_buf_append(&c->body, in, len);
	return c->body.oom ? -1 : 0;
}

static bool has_line(const struct cli_conn *c)
{
	return memchr(c->inb.p + c->in_off, '\n', c->inb.len - c->in_off) !=
	       NULL;
}

static int on_stdin(struct cli_conn *c, struct lws *wsi)
{
	ssize_t n;

	if (wr_buf_reserve(&c->inb, STDIN_CHUNK))
		return -1;
	n = read(lws_get_socket_fd(wsi), c->inb.p + c->inb.len, STDIN_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		/* end of input (or a read error, taken as the end) */
		c->stdin_eof = true;
		c->stdin_wsi = NULL;
		return -1;
	}
	c->inb.len += (size_t)n;
	/* bounded: stop reading while a whole line waits to be taken, or
	 * while one line alone is over the limit */
	if (has_line(c) || c->inb.len - c->in_off > CLI_LINE_MAX) {
		c->stdin_paused = true;
		lws_rx_flow_control(wsi, 0);
	}
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	struct cli_conn *c = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c && wsi == c->wsi)
			on_connection_error(c, wsi, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->state = ST_OPEN;
		if (c->out_head)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return on_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		on_peer_close(c, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c && wsi == c->wsi)
			on_closed(c);
		return 0;

	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		c->http_status = (int)lws_http_client_http_response(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
		char buf[LWS_PRE + 4096];
		char *p = buf + LWS_PRE;
		int n = (int)sizeof(buf) - LWS_PRE;

		return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
	}
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		return on_http_read(c, in, len);
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		c->http_done = true;
		return -1; /* one request: hang up now */
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		if (c && wsi == c->wsi) {
			/* a server without Content-Length ends the body by closing */
			if (c->http_status && !c->error[0])
				c->http_done = true;
			on_closed(c);
		}
		return 0;

	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* len is OpenSSL's preverify_ok; lws decides, we keep the why */
		if (c && !len) {
			int e = X509_STORE_CTX_get_error(user);

			snprintf(c->tls_error, sizeof(c->tls_error), "%s",
				 X509_verify_cert_error_string(e));
		}
		return 0;
	case LWS_CALLBACK_RAW_RX_FILE:
		return on_stdin(c, wsi);
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (c && wsi == c->stdin_wsi) {
			c->stdin_eof = true;
			c->stdin_wsi = NULL;
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{ .name = "wsrelay-cli", .callback = callback, .rx_buffer_size = 4096 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct cli_conn *c = lws_container_of(sul, struct cli_conn, tick);

	/* nothing to do: waking poll() is the point */
	lws_sul_schedule(c->ctx, 0, &c->tick, on_tick, TICK_US);
}

/* ---- life cycle ---- */

struct cli_conn *cli_conn_create(const struct cli_conn_opts *o)
{
	struct lws_context_creation_info info;
	struct cli_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->opts = *o;
	c->url = *o->url;
	c->opts.url = &c->url;
	c->out_tail = &c->out_head;
	c->in_tail = &c->in_head;
	c->close_code = -1;
	wr_buf_init(&c->rx);
	wr_buf_init(&c->body);
	wr_buf_init(&c->inb);

	/* our own messages name what failed; lws's log would only repeat it */
	lws_set_log_level(getenv("WSRELAY_CLI_DEBUG") ? LLL_ERR | LLL_WARN : 0,
			  NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = c;
	info.fd_limit_per_thread = 8;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (o->cafile)
		info.client_ssl_ca_filepath = o->cafile;
	c->ctx = lws_create_context(&info);
	if (!c->ctx) {
		set_error(c, "cannot create the lws context");
		return c;
	}
	c->vh = lws_get_vhost_by_name(c->ctx, "default");
	lws_sul_schedule(c->ctx, 0, &c->tick, on_tick, TICK_US);
	return c;
}

const char *cli_conn_error(const struct cli_conn *c)
{
	return c->error[0] ? c->error : "unknown error";
}

/* Services until @done(c) holds; the deadline and stop signal checks
 * come after it, so what is already there is never lost to them. */
static enum cli_wait run_until(struct cli_conn *c, int64_t deadline_ms,
			       bool (*done)(const struct cli_conn *c),
			       bool stoppable)
{
	for (;;) {
		if (done(c))
			return CLI_WAIT_DONE;
		if (c->state == ST_CLOSED || !c->ctx)
			return CLI_WAIT_FAILED;
		if (stoppable && cli_stop_requested())
			return CLI_WAIT_STOPPED;
		if (deadline_ms >= 0 && wr_now_ms() >= deadline_ms)
			return CLI_WAIT_TIMEOUT;
		lws_service(c->ctx, 0);
	}
}

static bool closed(const struct cli_conn *c)
{
	return c->state == ST_CLOSED;
}

void cli_conn_destroy(struct cli_conn *c)
{
	if (!c)
		return;
	if (c->ctx && c->wsi && c->state == ST_OPEN && !c->http) {
		c->closing = true;
		lws_callback_on_writable(c->wsi);
		run_until(c, wr_now_ms() + CLOSE_WAIT_MS, closed, false);
	}
	if (c->ctx) {
		lws_sul_cancel(&c->tick);
		lws_context_destroy(c->ctx);
	}
	while (c->out_head) {
		struct out_frame *f = c->out_head;

		c->out_head = f->next;
		free(f);
	}
	while (c->in_head) {
		struct in_msg *m = c->in_head;

		c->in_head = m->next;
		free(m);
	}
	free(c->taken);
	wr_buf_fini(&c->rx);
	wr_buf_fini(&c->body);
	wr_buf_fini(&c->inb);
	free(c);
}

/* ---- dialling ---- */

static int dial(struct cli_conn *c, const char *method)
{
	struct lws_client_connect_info i;
	/* a connection silent for 30 s is pinged, and dropped 45 s later:
	 * a subscriber notices a server that vanished without a close */
	static const lws_retry_bo_t idle = {
		.secs_since_valid_ping = 30,
		.secs_since_valid_hangup = 75,
	};
	bool v6 = strchr(c->url.host, ':') != NULL;
	char u[CLI_HOST_MAX + CLI_PATH_MAX + 32];

	if (!c->ctx)
		return -1;
	if ((c->url.tls && c->url.port == 443) ||
	    (!c->url.tls && c->url.port == 80))
		snprintf(c->hosthdr, sizeof(c->hosthdr), "%s%s%s",
			 v6 ? "[" : "", c->url.host, v6 ? "]" : "");
	else
		snprintf(c->hosthdr, sizeof(c->hosthdr), "%s%s%s:%d",
			 v6 ? "[" : "", c->url.host, v6 ? "]" : "",
			 c->url.port);
	memset(&i, 0, sizeof(i));
	i.context = c->ctx;
	i.vhost = c->vh;
	i.address = c->url.host;
	i.port = c->url.port;
	i.path = method ? c->url.health_path : c->url.ws_path;
	i.host = c->hosthdr;
	i.method = method;
	i.alpn = "http/1.1";
	i.local_protocol_name = "wsrelay-cli";
	i.retry_and_idle_policy = &idle;
	i.pwsi = &c->wsi; /* errors during the call name this wsi */
	if (c->url.tls) {
		i.ssl_connection = LCCSCF_USE_SSL;
		if (c->opts.insecure)
			i.ssl_connection |=
				LCCSCF_ALLOW_SELFSIGNED |
				LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
				LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}
	c->http = method != NULL;
	c->state = ST_CONNECTING;
	if (!lws_client_connect_via_info(&i)) {
		/* failed inside the call: the error callback may have said why */
		if (!c->error[0]) {
			set_error(c, "cannot connect to %s: connection failed",
				  url_text(c, u, sizeof(u)));
			c->diagnose = true;
		}
		finish_error(c);
		c->state = ST_CLOSED;
		c->wsi = NULL;
		return -1;
	}
	return 0;
}

static void timeout_error(struct cli_conn *c, const char *what)
{
	char u[CLI_HOST_MAX + CLI_PATH_MAX + 32];

	set_error(c, "timed out %s %s", what, url_text(c, u, sizeof(u)));
}

static bool opened(const struct cli_conn *c)
{
	return c->state == ST_OPEN;
}

enum cli_wait cli_ws_connect(struct cli_conn *c, int64_t deadline_ms)
{
	enum cli_wait w;

	if (dial(c, NULL))
		return CLI_WAIT_FAILED;
	w = run_until(c, deadline_ms, opened, true);
	if (w == CLI_WAIT_TIMEOUT)
		timeout_error(c, "connecting to");
	if (w == CLI_WAIT_FAILED)
		finish_error(c);
	return w;
}

int cli_ws_send(struct cli_conn *c, const char *p, size_t n)
{
	struct out_frame *f = malloc(sizeof(*f) + LWS_PRE + n);

	if (!f)
		return WR_ENOMEM;
	f->next = NULL;
	f->len = n;
	memcpy(f->buf + LWS_PRE, p, n);
	*c->out_tail = f;
	c->out_tail = &f->next;
	if (c->wsi && c->state == ST_OPEN)
		lws_callback_on_writable(c->wsi);
	return WR_OK;
}

bool cli_ws_pending(const struct cli_conn *c)
{
	return c->in_head != NULL;
}

enum cli_wait cli_ws_recv(struct cli_conn *c, int64_t deadline_ms,
			  const char **msg, size_t *len)
{
	enum cli_wait w;

	free(c->taken);
	c->taken = NULL;
	/* queued messages first: a server that sent and closed is read out */
	if (!c->in_head) {
		w = run_until(c, deadline_ms, cli_ws_pending, true);
		if (w != CLI_WAIT_DONE) {
			if (w == CLI_WAIT_TIMEOUT)
				timeout_error(c, "waiting for an answer from");
			return w;
		}
	}
	c->taken = c->in_head;
	c->in_head = c->taken->next;
	if (!c->in_head)
		c->in_tail = &c->in_head;
	*msg = c->taken->data;
	*len = c->taken->len;
	return CLI_WAIT_DONE;
}

/* ---- standard input ---- */

int cli_conn_watch_stdin(struct cli_conn *c)
{
	lws_sock_file_fd_type fd;

	if (!c->vh)
		return WR_EINVAL;
	fd.filefd = STDIN_FILENO;
	c->stdin_wsi = lws_adopt_descriptor_vhost(c->vh,
						  LWS_ADOPT_RAW_FILE_DESC, fd,
						  "wsrelay-cli", NULL);
	return c->stdin_wsi ? WR_OK : WR_EIO;
}

int cli_conn_stdin_line(struct cli_conn *c, const char **line, size_t *len)
{
	char *start, *nl;
	size_t avail;

	/* what the previous call returned is gone now: compact */
	if (c->in_off) {
		memmove(c->inb.p, c->inb.p + c->in_off, c->inb.len - c->in_off);
		c->inb.len -= c->in_off;
		c->in_off = 0;
	}
	start = c->inb.p;
	avail = c->inb.len;
	nl = avail ? memchr(start, '\n', avail) : NULL;
	if (nl) {
		*len = (size_t)(nl - start);
		c->in_off = *len + 1;
	} else if (avail > CLI_LINE_MAX) {
		return -2;
	} else if (c->stdin_eof && avail) {
		*len = avail; /* a last line without its newline */
		c->in_off = avail;
	} else if (c->stdin_eof) {
		return -1;
	} else {
		if (c->stdin_paused && c->stdin_wsi) {
			c->stdin_paused = false;
			lws_rx_flow_control(c->stdin_wsi, 1);
		}
		return 0;
	}
	if (*len > CLI_LINE_MAX)
		return -2;
	if (*len && start[*len - 1] == '\r')
		(*len)--;
	*line = start;
	return 1;
}

static bool anything(const struct cli_conn *c)
{
	return c->in_head || c->stdin_eof ||
	       (c->inb.len > c->in_off &&
		(has_line(c) || c->inb.len - c->in_off > CLI_LINE_MAX));
}

enum cli_wait cli_conn_wait(struct cli_conn *c, int64_t deadline_ms)
{
	enum cli_wait w;

	/* a line already taken out leaves room: let reading resume */
	if (c->stdin_paused && c->stdin_wsi && !anything(c)) {
		c->stdin_paused = false;
		lws_rx_flow_control(c->stdin_wsi, 1);
	}
	w = run_until(c, deadline_ms, anything, true);
	if (w == CLI_WAIT_TIMEOUT)
		timeout_error(c, "waiting for an answer from");
	return w;
}

/* ---- GET /health ---- */

static bool http_finished(const struct cli_conn *c)
{
	return c->http_done;
}

enum cli_wait cli_http_get(struct cli_conn *c, int64_t deadline_ms, int *status,
			   const char **body, size_t *len)
{
	enum cli_wait w;

	if (dial(c, "GET"))
		return CLI_WAIT_FAILED;
	w = run_until(c, deadline_ms, http_finished, true);
	if (w == CLI_WAIT_TIMEOUT)
		timeout_error(c, "waiting for");
	if (w == CLI_WAIT_FAILED)
		finish_error(c);
	if (w != CLI_WAIT_DONE)
		return w;
	wr_buf_append(&c->body, "", 1); /* NUL-terminate */
	if (c->body.oom) {
		set_error(c, "out of memory");
		return CLI_WAIT_FAILED;
	}
	*status = c->http_status;
	*body = c->body.p;
	*len = c->body.len - 1;
	return CLI_WAIT_DONE;
}
