/*
 * node/server: builds the lws context from the config, runs the loop and
 * shuts down cleanly. One protocol handler serves HTTP and WebSocket on
 * one port; each callback case calls one named handler. The loop is lws's
 * libuv one (epoll: nothing is O(connections) per event), with one uv
 * check hook of ours that runs after every I/O pass to flush the clients
 * that got frames during it. Shutdown (SIGTERM or SIGINT): refuse new
 * clients, close every client with 1001, exit once they are gone or after
 * 3 s, whichever is first. Lame-duck drain (SIGUSR2): refuse new clients
 * (503, /health bad "draining"), close the ones there with 1012 spread
 * evenly over [node] drain_ms, then the shutdown above (exit 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "inm.h"
#include "node.h"

static struct node *node_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

const char *node_wsi_addr(struct lws *wsi, char *buf, size_t len)
{
	const char *a = wsi ? lws_get_peer_simple(wsi, buf, len) : NULL;

	return a && *a ? a : "?";
}

/* The upgrade's path, still readable at ESTABLISHED: /node or /connect
 * (http.c refused every other path before the upgrade). */
static bool is_node_link(struct lws *wsi)
{
	char uri[16];

	return lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 &&
	       !strcmp(uri, "/node");
}

static void tick_arm(struct node *node);

/*
 * A close frame from the other side (@in, @len: its payload), checked as
 * RFC 6455 5.5.1 / 7.4 say before lws echoes it. lws 4.1.6 has already
 * answered 1002 in place of the codes it knows are never sent (0-999,
 * 1004-1006, 1015, 1016-2999, and also the registered 1012-1014, which
 * are lost to us then); it echoes any code from 5000 up, and a reason
 * that is not UTF-8. Those two get 1002 and 1007 here: the reason is
 * stashed and -1 makes lws send our close frame instead of the echo.
 */
static int close_frame_check(struct lws *wsi, const unsigned char *in,
			     size_t len)
{
	enum lws_close_status code = 0;

	if (len == 1 || (len >= 2 && ((unsigned)in[0] << 8 | in[1]) >= 5000))
		code = LWS_CLOSE_STATUS_PROTOCOL_ERR;
	else if (len > 2 && !wr_utf8_valid(in + 2, len - 2))
		code = LWS_CLOSE_STATUS_INVALID_PAYLOAD;
	if (!code)
		return 0;
	lws_close_reason(wsi, code, NULL, 0);
	return -1;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	struct node_pss *pss = user;
	struct node *node;

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* in: the accepted socket (as an integer) */
		if (node_fds_filter(node_of(wsi), (int)(lws_intptr_t)in))
			return -1;
		return node_pending_filter(node_of(wsi), (int)(lws_intptr_t)in);
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return node_pending_open(node_of(wsi), wsi);
	case LWS_CALLBACK_HTTP:
		node_pending_done(node_of(wsi), wsi);
		return node_http_request(node_of(wsi), wsi, in);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		node_pending_done(node_of(wsi), wsi);
		return node_http_confirm_upgrade(node_of(wsi), wsi);
	case LWS_CALLBACK_ESTABLISHED:
		pss->counted = true;
		node_of(wsi)->live_ws++;
		if (is_node_link(wsi))
			return node_peer_open(node_of(wsi), wsi, pss);
		return node_client_open(node_of(wsi), wsi, pss);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!pss || pss->client || pss->peer)
			return 0;
		return node_http_out_write(node_of(wsi), wsi, &pss->http);
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pss && !pss->client && !pss->peer && !pss->counted)
			node_http_out_fini(&pss->http);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* a plain HTTP session's body, if one is still on its way (the
		 * union is a client's or a peer's once upgraded) */
		if (pss && !pss->client && !pss->peer && !pss->counted)
			node_http_out_fini(&pss->http);
		node_pending_done(node_of(wsi), wsi);
		node_link_destroyed(node_of(wsi), wsi);
		if (pss && pss->counted) {
			pss->counted = false;
			node_of(wsi)->live_ws--;
		}
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (pss->peer)
			return node_peer_receive(node_of(wsi), pss->peer, in,
						 len);
		if (!pss->client)
			return -1;
		return node_client_receive(node_of(wsi), pss->client, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (pss->peer)
			return node_peer_writeable(node_of(wsi), pss->peer);
		if (!pss->client)
			return 0;
		return node_client_writeable(node_of(wsi), pss->client);
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		/* in: a char ** to the header write position, len: room left */
		return node_link_headers(wsi, (unsigned char **)in,
					 *(unsigned char **)in + len);
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		pss->counted = true;
		node_of(wsi)->live_ws++;
		return node_link_established(node_of(wsi), wsi, pss);
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!pss->peer)
			return -1;
		return node_peer_receive(node_of(wsi), pss->peer, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!pss->peer)
			return 0;
		return node_peer_writeable(node_of(wsi), pss->peer);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		node_link_lost(node_of(wsi), wsi,
			       in ? (const char *)in : "connection failed");
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		node_peer_close(node_of(wsi), pss);
		node_link_lost(node_of(wsi), wsi, "link closed");
		return 0;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		/*
		 * A dial is an HTTP client until lws has parsed the 101. Lost
		 * while lws waits for it (reset by the peer, or lws's own
		 * timeout), it gets this callback and no other: lws's close
		 * reports CONNECTION_ERROR in that state only for the ws
		 * role, which the 101 brings.
		 */
		node_link_lost(node_of(wsi), wsi,
			       "connection lost before the upgrade answer");
		return 0;
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* the listener's TLS context (user): reloads renew its pair */
		node_reload_tls_ctx(node_of(wsi), user);
		return 0;
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* a wss:// dial: user is the X509_STORE_CTX, len preverify_ok
		 * (0: OpenSSL refused the certificate; lws fails the dial) */
		if (!len)
			node_link_cert_refused(
				wsi, X509_verify_cert_error_string(
					     X509_STORE_CTX_get_error(user)));
		return 0;
	case LWS_CALLBACK_TIMER:
		if (pss && pss->client)
			node_client_timer(node_of(wsi), pss->client);
		return 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (pss->client)
			pss->client->last_rx_ms = wr_now_ms();
		if (pss->peer)
			node_peer_pong(node_of(wsi), pss->peer, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		if (pss->peer)
			node_peer_pong(node_of(wsi), pss->peer, in, len);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (pss->client)
			pss->client->peer_closing = true;
		return close_frame_check(wsi, in, len);
	case LWS_CALLBACK_CLOSED:
		node_peer_close(node_of(wsi), pss);
		node_client_close(node_of(wsi), pss);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* a password worker finished, or the mesh tick is due */
		node = lws_context_user(lws_get_context(wsi));
		if (node) {
			node_client_pw_done(node);
			tick_arm(node);
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{
		.name = "wsrelay",
		.callback = callback,
		.per_session_data_size = sizeof(struct node_pss),
		/* lws also reads at most this much of a socket per pass: 64
		 * saved 190 bytes per idle connection but halved a publisher's
		 * rate (fan-out 1 -> 1000: 1.7 M deliveries/s against 3.6 M);
		 * a message over it is reassembled (node/rx.c) */
		.rx_buffer_size = 256,
		/* writes are coalesced up to NODE_WRITE_COALESCE; let one
		 * send() take all of it */
		.tx_packet_size = NODE_WRITE_COALESCE,
	},
	{
		/* node links that ask for it (ours do): a packet stream, read
		 * in big chunks rather than 256 bytes a pass */
		.name = "wsrelay-node",
		.callback = callback,
		.per_session_data_size = sizeof(struct node_pss),
		.rx_buffer_size = 65536,
		.tx_packet_size = NODE_WRITE_COALESCE,
	},
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void lws_log_emit(int level, const char *line)
{
	/* accept() at the descriptor limit (EMFILE 24, ENFILE 23): lws says
	 * so and would be woken again at once */
	if (!strncmp(line, "accept: errno 24", 16) ||
	    !strncmp(line, "accept: errno 23", 16))
		node_fds_emfile();
	wr_log(level == LLL_ERR ? WR_LOG_WARN : WR_LOG_DEBUG, "lws: %s", line);
}

static void pw_wake(void *arg)
{
	/* worker thread: lws_cancel_service is the one thread-safe lws call */
	lws_cancel_service(arg);
}

/* Keeps the loop turning while clients drain during shutdown, so that
 * on_check() sees the deadline. A uv timer: an lws_sul scheduled from
 * outside an lws callback does not re-arm lws's timer on a foreign loop
 * (the loop slept until the next keepalive, 30 s). */
static void stop_tick(uv_timer_t *t)
{
	(void)t;
}

/*
 * The tick of the mesh and the flows: a quarter of an announce period, at
 * most 250 ms. Wake-ups are most of an idle node's CPU (50 ms ticks woken
 * through lws_cancel_service cost an idle 50-node mesh 0.16 of a core):
 * the tick is an lws_sul that re-arms itself, so it wakes the loop once
 * and runs where the timeouts and timers it arms are picked up. Nothing
 * on a client's path waits for it; link changes, records and messages go
 * out at once.
 */
static uint64_t tick_ms(const struct config *cfg)
{
	int64_t t = cfg->announce_interval_ms / 4;

	return (uint64_t)(t < 20 ? 20 : t > 250 ? 250 : t);
}

/* The mesh engine's and the flows' periodic work (inside an lws
 * callback, where the timeouts and timers it arms are picked up). */
static void node_tick(struct node *node)
{
	int64_t now = wr_now_ms();

	if (!node->mesh)
		return;
	/* entries past the ttl free their frames without waiting for the
	 * next message on their channel (7.3) */
	chan_hist_expire(chan_registry_hist(node->reg), now);
	chan_linger_expire(node->reg, now);
	/* slabs a burst of handshakes emptied go back to the kernel
	 * (lwsmem.c); two of each size stay for the next burst */
	wr_slab_trim(2);
	if (node->npw_waiting)
		node_client_pw_watch(node);
	mesh_tick(node->mesh, now);
	flows_tick(node->flows, now);
	if (!node->stopping)
		node_links_watch(node);
}

/* Until the wall clock's next multiple of @t ms: every node ticks at the
 * same instants, so what they send each other at a tick (heartbeats,
 * pings) arrives together, in one wake-up. */
static int64_t grid_delay_ms(int64_t t)
{
	int64_t ms = t - wr_wall_ms() % t;

	return ms > 0 ? ms : t;
}

static lws_usec_t tick_delay_us(const struct config *cfg)
{
	return (lws_usec_t)grid_delay_ms((int64_t)tick_ms(cfg)) * LWS_US_PER_MS;
}

/* The next tick: soon while anything is under way, else at the next
 * announce period (an idle node then wakes about once a period). */
static lws_usec_t next_tick_us(struct node *node)
{
	int64_t idle = grid_delay_ms(node->cfg->announce_interval_ms);

	if (node->stopping || node->once.count || node->npw_waiting ||
	    mesh_busy(node->mesh, wr_now_ms() + idle) ||
	    flows_busy(node->flows) || node_links_dialling_any(node))
		return tick_delay_us(node->cfg);
	return (lws_usec_t)idle * LWS_US_PER_MS;
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct node *node = lws_container_of(sul, struct node, tick_sul);

	node->tick_soon = false;
	node_tick(node);
	lws_sul_schedule(node->ctx, 0, &node->tick_sul, on_tick,
			 next_tick_us(node));
}

void node_tick_soon(struct node *node)
{
	/* from lws callbacks only (see below): the engine kicks while it
	 * handles a packet, a link or a client's command */
	if (node->ticking && !node->tick_soon) {
		node->tick_soon = true;
		lws_sul_schedule(node->ctx, 0, &node->tick_sul, on_tick,
				 tick_delay_us(node->cfg));
	}
}

/* From an lws callback: a sul scheduled from outside one is not picked
 * up on a foreign loop. mesh_open() wakes the loop once for this. */
static void tick_arm(struct node *node)
{
	if (!node->mesh || node->ticking)
		return;
	node->ticking = true;
	lws_sul_schedule(node->ctx, 0, &node->tick_sul, on_tick,
			 tick_delay_us(node->cfg));
}

/* The mesh engine and the flows over it, once the url is known. */
static int mesh_open(struct node *node)
{
	node->mesh = mesh_create(node->cfg, node->url, node->reg, &node->ctr,
				 &node_peer_mesh_ops, node);
	if (!node->mesh)
		return WR_ENOMEM;
	node->flows = flows_create(node->mesh, node->reg,
				   &node_client_flows_ops, node);
	if (!node->flows)
		return WR_ENOMEM;
	lws_cancel_service(node->ctx); /* tick_arm() */
	return WR_OK;
}

static void begin_stop(struct node *node, int sig)
{
	node->stopping = true;
	node->stop_deadline_ms = wr_now_ms() + 3000;
	wr_info("signal %d: closing %u client(s) and stopping", sig,
		node->clients.count);
	node_links_stop(node);
	/* the mesh hears of our channels closing before our links do */
	if (node->flows)
		flows_leave(node->flows);
	for (struct node_client *cl = node_clients_first(node); cl;
	     cl = node_client_next(cl))
		node_client_close_later(cl, LWS_CLOSE_STATUS_GOINGAWAY,
					"going away");
	node_peer_close_all(node);
	uv_timer_start(&node->stop_timer, stop_tick, 50, 50);
}

/*
 * The drain's tick: by now floor(total * elapsed / drain_ms) clients have
 * been asked to close, so they reconnect elsewhere a few at a time rather
 * than all at once. Our channels stay reserved while they have
 * subscribers: each is released as its last one leaves, the rest by the
 * stop's flows_leave(). Once all were asked and drain_ms is over, the
 * stop (links, the mesh, the exit once the closes are out).
 */
static void drain_tick(uv_timer_t *t)
{
	struct node *node = t->data;
	int64_t elapsed = wr_now_ms() - node->drain_start_ms;
	int64_t span = node->cfg->drain_ms;
	unsigned due = node->drain_total;

	if (elapsed < span)
		due = (unsigned)((int64_t)node->drain_total * elapsed / span);
	if (due > node->drain_closed)
		node->drain_closed +=
			node_client_drain(node, due - node->drain_closed);
	if (elapsed >= span)
		begin_stop(node, SIGUSR2);
}

static void begin_drain(struct node *node)
{
	node->draining = true;
	node->drain_start_ms = wr_now_ms();
	node->drain_total = node->clients.count;
	node->drain_closed = 0;
	wr_info("signal %d: draining %u client(s) over %d ms", SIGUSR2,
		node->drain_total, node->cfg->drain_ms);
	node->stop_timer.data = node;
	drain_tick(&node->stop_timer); /* drain_ms 0: all now, and the stop */
	if (!node->stopping)
		uv_timer_start(&node->stop_timer, drain_tick, 50, 50);
}

static void lws_signal_ignore(void *handle, int sig)
{
	(void)handle;
	(void)sig;
}

/* The signalfd is readable: a stop, drain or reload signal arrived (loop
 * thread). */
static void on_signal(uv_poll_t *w, int status, int events)
{
	struct node *node = w->data;
	struct signalfd_siginfo si;

	(void)status;
	(void)events;
	while (read(node->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (node->stopping)
			continue;
		if (si.ssi_signo == SIGHUP) {
			node_reload_request(node);
			continue;
		}
		/* SIGTERM during a drain: the stop, now, for the rest */
		if (si.ssi_signo != SIGUSR2)
			begin_stop(node, (int)si.ssi_signo);
		else if (!node->draining)
			begin_drain(node);
	}
}

static void on_keepalive(uv_timer_t *t)
{
	node_client_keepalive(t->data);
}

void node_keepalive_rearm(struct node *node)
{
	uint64_t every = (uint64_t)node->cfg->client_ping_interval_ms;

	uv_timer_start(&node->keepalive, on_keepalive, every, every);
}

/* Runs once after every loop pass (uv check phase). */
static void on_check(uv_check_t *h)
{
	struct node *node = h->data;

	node_client_flush(node);
	if (node->stopping &&
	    (!node->live_ws || wr_now_ms() >= node->stop_deadline_ms))
		uv_stop(&node->loop);
}

static void close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Tears down lws on our loop, then the loop itself: lws closes its uv
 * handles asynchronously, so the loop runs until nothing is left. */
static void loop_fini(struct node *node)
{
	/* ours first, so that only lws's handles keep the loop alive */
	uv_close((uv_handle_t *)&node->flush_check, NULL);
	uv_close((uv_handle_t *)&node->keepalive, NULL);
	uv_close((uv_handle_t *)&node->stop_timer, NULL);
	if (node->sigpoll_open)
		uv_close((uv_handle_t *)&node->sigpoll, NULL);
	if (node->ticking)
		lws_sul_cancel(&node->tick_sul);
	if (node->ctx) {
		node_links_stop(node);
		/* on a foreign loop the first call starts closing lws's uv
		 * handles; once the loop has run them down, the second call
		 * frees the context (without it, everything lws holds leaks) */
		lws_context_destroy(node->ctx);
		uv_run(&node->loop, UV_RUN_DEFAULT);
		lws_context_destroy(node->ctx);
		node->ctx = NULL;
	}
	uv_run(&node->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&node->loop)) {
		/* lws left something open: close it rather than leak */
		uv_walk(&node->loop, close_handle, NULL);
		uv_run(&node->loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&node->loop))
			wr_warn("event loop closed with handles left");
	}
}

/* The /node url other nodes are told: [node] url, else this listening
 * address when it names one host (a wildcard does not: "" then). */
static void advertise(struct node *node)
{
	const char *h = node->cfg->listen_host;
	bool v6 = strchr(h, ':') != NULL;

	if (node->cfg->url)
		lws_snprintf(node->url, sizeof(node->url), "%s",
			     node->cfg->url);
	else if (strcmp(h, "0.0.0.0") && strcmp(h, "::"))
		lws_snprintf(node->url, sizeof(node->url),
			     "%s://%s%s%s:%d/node", node->tls ? "wss" : "ws",
			     v6 ? "[" : "", h, v6 ? "]" : "", node->port);
}

static bool is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!strcmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/*
 * Says why the listening address cannot be bound (in use, not an address
 * of this host, a privileged port) before lws tries: lws only logs it.
 * A throwaway socket, closed at once; port 0 needs no check.
 */
static int bind_probe(const struct config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc = 0;

	memset(&ss, 0, sizeof(ss));
	if (!cfg->listen_port)
		return 0;
	if (strchr(cfg->listen_host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)cfg->listen_port);
		if (inet_pton(AF_INET6, cfg->listen_host, &a->sin6_addr) != 1)
			return 0; /* lws resolves it, or says so */
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		const char *h = strcmp(cfg->listen_host, "localhost")
					? cfg->listen_host
					: "127.0.0.1";

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)cfg->listen_port);
		if (inet_pton(AF_INET, h, &a->sin_addr) != 1)
			return 0;
		len = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	/* as lws does: a port in TIME_WAIT is free */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len)) {
		wr_error("cannot listen on %s: %s", cfg->listen,
			 strerror(errno));
		rc = 1;
	}
	close(fd);
	return rc;
}

/*
 * [tls] ca must load: lws only logs a CA file it cannot load and goes on
 * with no trust at all, so every wss:// dial would fail with a certificate
 * error that hides the cause.
 */
static int ca_check(const char *path)
{
	const char *why;
	X509_STORE *st;
	int ok;

	if (access(path, R_OK)) {
		wr_error("cannot read [tls] ca '%s': %s", path,
			 strerror(errno));
		return -1;
	}
	ERR_clear_error();
	st = X509_STORE_new();
	ok = st && X509_STORE_load_file(st, path) == 1;
	X509_STORE_free(st);
	if (!ok) {
		why = ERR_reason_error_string(ERR_peek_last_error());
		wr_error("cannot load [tls] ca '%s': %s", path,
			 why ? why : "no certificate");
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static int node_init(struct node *node, struct config *cfg)
{
	struct chan_limits lim = {
		.max_queue_bytes = (size_t)cfg->max_queue_bytes,
		.max_subscriptions = (unsigned)cfg->max_subscriptions,
		.hist = { .size = (unsigned)cfg->history_size,
			  .ttl_ms = cfg->history_ttl_ms,
			  .max_bytes = (size_t)cfg->history_max_bytes,
			  .linger_ms = cfg->history_linger_ms },
	};

	memset(node, 0, sizeof(*node));
	node->sigfd = -1;
	node->cfg = cfg;
	node->started_ms = wr_now_ms();
	node_fds_init(node); /* before the context: lws sizes its table */
	wr_buf_init(&node->scratch);
	node->wbuf = malloc(LWS_PRE + NODE_WRITE_COALESCE);
	node->reg = chan_registry_create(&lim, &node_client_chan_ops, node);
	node->pwcache = chan_pw_cache_create(4096);
	node->per_ip = wr_addrtab_create();
	node->pending = node_pending_create();
	node->pw_jobs = wr_addrtab_create();
	node->pw_fails =
		wr_addrfail_create((unsigned)cfg->password_failures_per_ip,
				   CHAN_PW_WINDOW_MS, 0);
	node->node_fails = wr_addrfail_create(10, 10000, 60000);
	for (int i = 0; i < INM_DROP_COUNT && i < HEALTH_INM_DROP_MAX; i++)
		if (i != INM_DROP_NONE)
			node->ctr.inm_drop_names[i] =
				inm_drop_name((enum inm_drop)i);
	node->ctr.inm_ndrop = INM_DROP_COUNT;
	if (!node->wbuf || !node->reg || !node->pwcache || !node->per_ip ||
	    !node->pw_fails || !node->node_fails || !node->pw_jobs ||
	    !node->pending)
		return WR_ENOMEM;
	return WR_OK;
}

static void node_fini(struct node *node)
{
	node_fds_fini(node);
	chan_pw_worker_destroy(node->pw);
	free(node->pw_waiting);
	node_links_fini(node);
	/* every command still waiting is answered "timeout" while the flows
	 * that wait for it still exist; then the flows, then the engine */
	if (node->mesh)
		mesh_cancel_all(node->mesh);
	flows_destroy(node->flows);
	mesh_destroy(node->mesh);
	if (node->api_node.body)
		wr_msg_unref(&node->api_node.body);
	if (node->api_overview.body)
		wr_msg_unref(&node->api_overview.body);
	if (node->sigfd >= 0)
		close(node->sigfd);
	chan_pw_cache_destroy(node->pwcache);
	wr_addrtab_destroy(node->per_ip);
	node_pending_destroy(node->pending);
	node->pending = NULL;
	wr_addrtab_destroy(node->pw_jobs);
	wr_addrfail_destroy(node->pw_fails);
	wr_addrfail_destroy(node->node_fails);
	chan_registry_destroy(node->reg);
	auth_keys_destroy(node->auth);
	node->auth = NULL;
	free(node->wbuf);
	wr_buf_fini(&node->scratch);
}

/* Starts the password workers. */
static int start_workers(struct node *node)
{
	/* the stop signals are already blocked: the workers inherit that */
	node->pw_waiting = calloc(NODE_PW_QUEUE_MAX, sizeof(*node->pw_waiting));
	if (!node->pw_waiting)
		return WR_ENOMEM;
	node->pw = chan_pw_worker_create(1, pw_wake, node->ctx);
	return node->pw ? WR_OK : WR_ENOMEM;
}

/* Whether @cfg can be served at all: plaintext only on loopback unless
 * allowed, TLS files readable. 0, or 1 after saying why. */
static int node_check(const struct config *cfg)
{
	if (!cfg->tls_cert && !is_loopback(cfg->listen_host)) {
		if (!cfg->tls_insecure) {
			wr_error(
				"refusing to listen on %s without TLS: set [tls] cert and key, "
				"or [tls] insecure = true to allow plaintext",
				cfg->listen);
			return 1;
		}
		wr_warn("insecure: plaintext on the non-loopback address %s "
			"([tls] insecure = true)",
			cfg->listen);
	}
	/* lws would start without them, or fail deep inside with a leak */
	for (int i = 0; cfg->tls_cert && i < 2; i++) {
		const char *f = i ? cfg->tls_key : cfg->tls_cert;

		if (access(f, R_OK)) {
			wr_error("cannot read [tls] %s '%s': %s",
				 i ? "key" : "cert", f, strerror(errno));
			return 1;
		}
	}
	if (cfg->tls_ca && ca_check(cfg->tls_ca))
		return 1;
	return 0;
}

/*
 * The node's state, our libuv loop and our handles on it: the flush hook,
 * the timers, the signalfd. SIGTERM, SIGINT, SIGUSR2 and SIGHUP are blocked in
 * every thread and read from the signalfd on the loop: no handler disposition
 * (ours, libuv's or lws's) can ever apply, so a stop is always the clean
 * one. 0, or 1 after saying why (node_close() undoes what was done).
 */
static int node_open(struct node *node, struct config *cfg)
{
	sigset_t stopset;

	if (node_init(node, cfg)) {
		wr_error("out of memory");
		return 1;
	}
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGUSR2);
	sigaddset(&stopset, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stopset, NULL);
	node->sigfd = signalfd(-1, &stopset, SFD_NONBLOCK | SFD_CLOEXEC);
	if (node->sigfd < 0) {
		wr_error("cannot watch signals: %s", strerror(errno));
		return 1;
	}
	if (uv_loop_init(&node->loop)) {
		wr_error("cannot create the event loop");
		return 1;
	}
	node->loop_open = true;
	node->flush_check.data = node;
	uv_check_init(&node->loop, &node->flush_check);
	uv_check_start(&node->flush_check, on_check);
	uv_timer_init(&node->loop, &node->stop_timer);
	uv_timer_init(&node->loop, &node->keepalive);
	node->keepalive.data = node;
	node_keepalive_rearm(node);
	if (uv_poll_init(&node->loop, &node->sigpoll, node->sigfd)) {
		wr_error("cannot watch signals on the loop");
		return 1;
	}
	node->sigpoll_open = true;
	node->sigpoll.data = node;
	uv_poll_start(&node->sigpoll, UV_READABLE, on_signal);
	return 0;
}

/*
 * The lws context on our loop (listening), then what needs its port: the
 * url we advertise, the mesh engine and the flows, the [[peers]] dials;
 * the password worker; the banner. 0, or 1 after saying why.
 */
static int node_listen(struct node *node)
{
	const struct config *cfg = node->cfg;
	struct lws_context_creation_info info;
	static const lws_retry_bo_t idle = { 0 };
	const char *iface = cfg->listen_host;
	const char *h = strchr(cfg->listen_host, ':') ? "[" : "",
		   *t = *h ? "]" : "";

	lws_set_log_level(LLL_ERR |
				  (wr_log_get_level() == WR_LOG_DEBUG ? LLL_WARN
								      : 0),
			  lws_log_emit);
	if (bind_probe(cfg))
		return 1;
	node->foreign_loops[0] = &node->loop;
	memset(&info, 0, sizeof(info));
	info.port = cfg->listen_port;
	if (!strcmp(iface, "0.0.0.0") || !strcmp(iface, "::"))
		iface = NULL; /* every address */
	else if (!strcmp(iface, "localhost"))
		iface = "127.0.0.1";
	info.iface = iface;
	/* an IPv4 address must not open a dual-stack [::] socket: lws binds
	 * the v6 wildcard whenever IPv6 is enabled */
	if (!strchr(cfg->listen_host, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = protocols;
	info.user = node;
	/*
	 * Keepalive is ours (node_client_keepalive): lws's idle policy keeps a
	 * timer per connection in one sorted list, re-armed on traffic, which
	 * made connection setup O(connections). An all-zero policy leaves
	 * lws's validity timers unarmed.
	 */
	info.retry_and_idle_policy = &idle;
	/* headers being read at once; one address holds at most
	 * [limits] max_pending_per_ip of them (pending.c) */
	info.max_http_header_pool = 1024;
	/* lws's buffer for one request's headers (allocated while they are
	 * read): twice the NODE_HEADERS_MAX we answer 431 above, so that a
	 * request between the two gets its 431 (http.c) */
	info.max_http_header_data = 2 * NODE_HEADERS_MAX;
	/* a port already taken fails the start (exit 1), not a node that
	 * runs on without a listener */
	info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
			LWS_SERVER_OPTION_LIBUV |
			LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	info.foreign_loops =
		node->foreign_loops; /* ours: we hook and stop it */
	/* lws watches SIGINT/SIGTERM on a uv loop too and, without a
	 * callback, destroys the context at once (clients see 1006, not
	 * 1001): give it one that leaves the signal to our watchers */
	info.signal_cb = lws_signal_ignore;
	/*
	 * Outbound wss:// (PROTOCOL.md 1): the peer's certificate and name are
	 * verified against [tls] ca alone when it is set, else the system
	 * store. DO_SSL_GLOBAL_INIT above makes lws build the client context
	 * for a node without a cert of its own too.
	 */
	if (cfg->tls_ca) {
		info.client_ssl_ca_filepath = cfg->tls_ca;
		info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
	}
	if (cfg->tls_cert) {
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		info.ssl_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 |
				       SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
		node->tls = true;
	}
	/* per-connection lws objects from slabs (lwsmem.c), from the start:
	 * an object is freed by the allocator that made it */
	node_lwsmem_install();
	node->ctx = lws_create_context(&info);
	if (node->ctx)
		node_fds_listener(node);
	if (!node->ctx) {
		wr_error("cannot listen on %s (address in use, or bad TLS files?)",
			 cfg->listen);
		return 1;
	}
	node->vh = lws_get_vhost_by_name(node->ctx, "default");
	node->port = node->vh ? lws_get_vhost_listen_port(node->vh)
			      : cfg->listen_port;
	advertise(node);
	if (mesh_open(node) || node_links_start(node)) {
		wr_error("out of memory");
		return 1;
	}
	if (start_workers(node)) {
		wr_error("cannot start the password worker");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* the banner is printed whatever the log level: tools wait for it */
	wr_log_force(WR_LOG_INFO,
		     "wsrelay %s node '%s' listening on %s://%s%s%s:%d",
		     WR_VERSION, cfg->name, node->tls ? "https" : "http", h,
		     cfg->listen_host, t, node->port);
	wr_log_force(WR_LOG_INFO,
		     "clients: %s://%s%s%s:%d/connect  health: /health  metrics: /metrics",
		     node->tls ? "wss" : "ws", h, cfg->listen_host, t,
		     node->port);
	if (cfg->web_root)
		wr_log_force(WR_LOG_INFO,
			     "browser: %s://%s%s%s:%d/ (demo chat)%s",
			     node->tls ? "https" : "http", h, cfg->listen_host,
			     t, node->port,
			     cfg->master ? ", /overview (the network)" : "");
	return 0;
}

/* Undoes node_open() and node_listen(), whatever part of them ran. */
static void node_close(struct node *node)
{
	if (node->loop_open)
		loop_fini(node);
	node_fini(node);
}

int node_run(struct config *cfg, struct auth_keys *keys)
{
	struct node node;
	int rc = 1;

	if (node_check(cfg)) {
		auth_keys_destroy(keys);
		return 1;
	}
	if (node_open(&node, cfg)) {
		auth_keys_destroy(keys);
		goto out;
	}
	node.auth = keys;
	if (node_listen(&node))
		goto out;
	uv_run(&node.loop, UV_RUN_DEFAULT); /* until on_check() stops it */
	rc = 0;
	wr_info("stopped");
out:
	node_close(&node);
	return rc;
}
