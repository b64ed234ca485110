/*
 * health/metrics: Prometheus text exposition format 0.0.4. Names follow
 * the conventions: wsrelay_ prefix, _total for counters, base units.
 */
#include <inttypes.h>
#include <string.h>

#include "health.h"

static void head(struct wr_buf *b, const char *name, const char *type,
		 const char *help)
{
	wr_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		      type);
}

static void counter(struct wr_buf *b, const char *name, const char *help,
		    uint64_t v)
{
	head(b, name, "counter", help);
	wr_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void gauge(struct wr_buf *b, const char *name, const char *help,
		  uint64_t v)
{
	head(b, name, "gauge", help);
	wr_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* Label values are escaped as the format requires: \\, \" and \n. */
static void label_value(struct wr_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			wr_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			wr_buf_puts(b, "\\n");
		else
			wr_buf_append(b, s, 1);
	}
}

void metrics_render(struct wr_buf *b, const struct health_counters *c,
		    const struct health_gauges *g, const char *node_name)
{
	head(b, "wsrelay_build_info", "gauge",
	     "Build information; the value is always 1.");
	wr_buf_puts(b, "wsrelay_build_info{version=\"" WR_VERSION "\",node=\"");
	label_value(b, node_name);
	wr_buf_puts(b, "\"} 1\n");
	head(b, "wsrelay_uptime_seconds", "gauge",
	     "Seconds since the node started.");
	wr_buf_printf(b, "wsrelay_uptime_seconds %.3f\n", g->uptime_seconds);

	gauge(b, "wsrelay_clients", "Open /connect connections.", g->clients);
	gauge(b, "wsrelay_channels_active",
	      "Channels with at least one local subscriber.",
	      g->channels_active);
	gauge(b, "wsrelay_channels_reserved",
	      "Channels open on other nodes of the mesh.",
	      g->channels_reserved);
	gauge(b, "wsrelay_subscriptions",
	      "Local (client, channel) subscriptions.", g->subscriptions);
	gauge(b, "wsrelay_peers_up", "Node links that are up.", g->peers_up);
	gauge(b, "wsrelay_peers_configured", "[[peers]] entries in the config.",
	      g->peers_configured);
	gauge(b, "wsrelay_mesh_nodes_known",
	      "Other nodes of the mesh this node knows of (linked or announced).",
	      g->nodes_known);
	if (g->npeers)
		head(b, "wsrelay_peer_latency_seconds", "gauge",
		     "Ping round trip to each linked node (absent until measured).");
	for (unsigned i = 0; i < g->npeers; i++) {
		if (g->peers[i].latency_ms < 0)
			continue;
		wr_buf_puts(b, "wsrelay_peer_latency_seconds{peer=\"");
		label_value(b, g->peers[i].name);
		wr_buf_printf(b, "\"} %.6f\n", g->peers[i].latency_ms / 1000.0);
	}
	gauge(b, "wsrelay_password_jobs_pending",
	      "Password hashes queued or running on the worker threads.",
	      g->pw_jobs_pending);

	head(b, "wsrelay_config_reloads_total", "counter",
	     "Config reloads (SIGHUP) by result: ok, or error (the running "
	     "config kept).");
	wr_buf_printf(b,
		      "wsrelay_config_reloads_total{result=\"ok\"} %llu\n"
		      "wsrelay_config_reloads_total{result=\"error\"} %llu\n",
		      (unsigned long long)c->config_reloads_ok,
		      (unsigned long long)c->config_reloads_failed);
	head(b, "wsrelay_auth_total", "counter",
	     "Client auth commands by result: ok, invalid (\"invalid token\"), "
	     "expired (\"token expired\").");
	wr_buf_printf(b,
		      "wsrelay_auth_total{result=\"ok\"} %" PRIu64
		      "\n"
		      "wsrelay_auth_total{result=\"invalid\"} %" PRIu64
		      "\n"
		      "wsrelay_auth_total{result=\"expired\"} %" PRIu64 "\n",
		      c->auth_ok, c->auth_invalid, c->auth_expired);
	head(b, "wsrelay_auth_closes_total", "counter",
	     "Client connections closed 4401, by reason: unauthorized (no "
	     "auth within timeout_ms), token_expired (exp + 30 s).");
	wr_buf_printf(b,
		      "wsrelay_auth_closes_total{reason=\"unauthorized\"} %" PRIu64
		      "\n"
		      "wsrelay_auth_closes_total{reason=\"token_expired\"} %" PRIu64
		      "\n",
		      c->auth_closes_unauthorized, c->auth_closes_expired);
	counter(b, "wsrelay_permission_denied_total",
		"subscribe and send refused by the token's patterns.",
		c->permission_denied);
	gauge(b, "wsrelay_history_entries",
	      "Messages kept in the channels' history rings.",
	      g->history_entries);
	gauge(b, "wsrelay_history_bytes",
	      "Bytes the history rings count against [history] max_bytes.",
	      g->history_bytes);
	head(b, "wsrelay_history_recoveries_total", "counter",
	     "Subscribes with since, by outcome: recovered (the missed "
	     "messages replayed) or not_recovered.");
	wr_buf_printf(b,
		      "wsrelay_history_recoveries_total{result=\"recovered\"} "
		      "%" PRIu64
		      "\n"
		      "wsrelay_history_recoveries_total{result=\"not_recovered\"} "
		      "%" PRIu64 "\n",
		      c->history_recovered, c->history_not_recovered);
	counter(b, "wsrelay_history_commands_total",
		"history commands answered (on a subscribed channel).",
		c->history_commands);
	head(b, "wsrelay_presence_queries_total", "counter",
	     "presence commands answered, by outcome: complete, or partial "
	     "(a holder did not answer in time).");
	wr_buf_printf(b,
		      "wsrelay_presence_queries_total{result=\"complete\"} "
		      "%" PRIu64
		      "\n"
		      "wsrelay_presence_queries_total{result=\"partial\"} "
		      "%" PRIu64 "\n",
		      c->presence_queries - c->presence_partial,
		      c->presence_partial);
	counter(b, "wsrelay_presence_events_total",
		"join and leave events queued to presence_events subscribers.",
		c->presence_events);
	counter(b, "wsrelay_presence_polls_total",
		"channel-presence rounds to the other holders of channels with "
		"presence_events subscribers here (one a second each).",
		c->presence_polls);
	counter(b, "wsrelay_inm_reservations_refused_total",
		"Channel reservations refused: a holder this node does not know "
		"alive, or a creation time out of bounds.",
		c->resv_refused);
	head(b, "wsrelay_connections_refused_total", "counter",
	     "Client upgrades refused: origin (403, [web] allowed_origins), "
	     "per_ip (429, max_clients_per_ip); sockets closed at accept: "
	     "pending (max_pending_per_ip before their headers); requests and "
	     "upgrades: headers (431, over 8 KiB), version (426, a "
	     "WebSocket version other than 13), admin (401, /api or "
	     "/metrics without [web] admin_token_file's token), fds (sockets "
	     "closed at accept: the descriptor limit is near).");
	wr_buf_printf(b,
		      "wsrelay_connections_refused_total{reason=\"origin\"} "
		      "%llu\n"
		      "wsrelay_connections_refused_total{reason=\"per_ip\"} "
		      "%llu\n"
		      "wsrelay_connections_refused_total{reason=\"pending\"} "
		      "%llu\n"
		      "wsrelay_connections_refused_total{reason=\"headers\"} "
		      "%llu\n"
		      "wsrelay_connections_refused_total{reason=\"version\"} "
		      "%llu\n"
		      "wsrelay_connections_refused_total{reason=\"admin\"} "
		      "%llu\n"
		      "wsrelay_connections_refused_total{reason=\"fds\"} "
		      "%llu\n",
		      (unsigned long long)c->refused_origin,
		      (unsigned long long)c->refused_per_ip,
		      (unsigned long long)c->refused_pending,
		      (unsigned long long)c->refused_headers,
		      (unsigned long long)c->refused_version,
		      (unsigned long long)c->refused_admin,
		      (unsigned long long)c->refused_fds);
	counter(b, "wsrelay_client_sends_rate_limited_total",
		"Sends answered \"rate limited\" (messages_per_second).",
		c->sends_rate_limited);
	counter(b, "wsrelay_node_auth_failures_total",
		"/node upgrades refused (403) for an unknown Authentication token.",
		c->node_auth_failures);
	counter(b, "wsrelay_node_auth_blocked_total",
		"/node upgrades refused (429): 10 wrong tokens in 10 s from the "
		"address, held off 60 s.",
		c->node_auth_blocked);
	counter(b, "wsrelay_connections_total",
		"Client WebSocket connections accepted.", c->connections_total);
	counter(b, "wsrelay_connections_rejected_total",
		"Client WebSocket upgrades refused (max_clients).",
		c->connections_rejected);
	counter(b, "wsrelay_client_messages_in_total",
		"Channel messages accepted from local clients.",
		c->client_msgs_in);
	counter(b, "wsrelay_client_messages_out_total",
		"Channel message deliveries queued to local clients.",
		c->client_msgs_out);
	counter(b, "wsrelay_client_bytes_in_total",
		"WebSocket payload bytes received from clients.",
		c->client_bytes_in);
	counter(b, "wsrelay_client_bytes_out_total",
		"Bytes written to clients (frames, responses included).",
		c->client_bytes_out);
	counter(b, "wsrelay_client_errors_total",
		"Client commands answered with ok: false.", c->client_errors);
	counter(b, "wsrelay_client_protocol_closes_total",
		"Clients closed for binary (1003), invalid UTF-8 (1007) or oversized (1009) frames.",
		c->protocol_closes);
	counter(b, "wsrelay_slow_consumer_disconnects_total",
		"Clients closed (1008) for letting their queue overflow.",
		c->slow_consumer_disconnects);

	head(b, "wsrelay_messages_dropped_total", "counter",
	     "Frames dropped instead of delivered, by reason.");
	wr_buf_printf(b,
		      "wsrelay_messages_dropped_total{reason=\"slow_consumer\"} %" PRIu64
		      "\n",
		      c->dropped_slow_consumer);

	counter(b, "wsrelay_inm_packets_in_total",
		"Intra-node packets received and decoded.", c->inm_in);
	counter(b, "wsrelay_inm_packets_out_total", "Intra-node packets sent.",
		c->inm_out);
	counter(b, "wsrelay_inm_bytes_in_total",
		"Intra-node packet bytes received.", c->inm_bytes_in);
	counter(b, "wsrelay_inm_bytes_out_total",
		"Intra-node packet bytes queued to node links.",
		c->inm_bytes_out);
	counter(b, "wsrelay_inm_packets_forwarded_total",
		"Intra-node packets passed on toward other nodes.",
		c->inm_forwarded);
	head(b, "wsrelay_inm_packets_out_by_type_total", "counter",
	     "Intra-node packet copies written to links, by packet type.");
	for (unsigned i = 0; i < 4; i++)
		wr_buf_printf(b,
			      "wsrelay_inm_packets_out_by_type_total{type=\"%s\"} %" PRIu64
			      "\n",
			      (const char *[]){ "message", "command",
						"response", "event" }[i],
			      c->inm_out_type[i]);
	counter(b, "wsrelay_inm_unroutable_total",
		"Channel-message copies not sent: no route reached a holder.",
		c->inm_unroutable);
	counter(b, "wsrelay_subscribe_reserve_timeouts_total",
		"Subscribes answered after command_timeout_ms without every node's acknowledgement.",
		c->reserve_timeouts);
	counter(b, "wsrelay_mesh_heal_dials_total",
		"Dials started by the self-healing flow (a lost or split mesh).",
		c->heal_dials);
	counter(b, "wsrelay_inm_packets_duplicate_total",
		"Intra-node packets dropped as already seen (loops in the mesh).",
		c->inm_duplicates);
	counter(b, "wsrelay_inm_malformed_disconnects_total",
		"Node links closed (1002) for more than 100 malformed packets a minute.",
		c->inm_link_closes_malformed);
	/* a family with no sample is not exposed at all */
	if (c->inm_ndrop)
		head(b, "wsrelay_inm_packets_dropped_total", "counter",
		     "Intra-node packets dropped, by reason.");
	for (unsigned i = 0; i < c->inm_ndrop && i < HEALTH_INM_DROP_MAX; i++) {
		if (!c->inm_drop_names[i])
			continue;
		wr_buf_puts(b, "wsrelay_inm_packets_dropped_total{reason=\"");
		label_value(b, c->inm_drop_names[i]);
		wr_buf_printf(b, "\"} %" PRIu64 "\n", c->inm_dropped[i]);
	}

	head(b, "wsrelay_password_verifications_total", "counter",
	     "Channel password checks by result.");
	wr_buf_printf(
		b,
		"wsrelay_password_verifications_total{result=\"ok\"} %" PRIu64
		"\n"
		"wsrelay_password_verifications_total{result=\"failed\"} %" PRIu64
		"\n"
		"wsrelay_password_verifications_total{result=\"cached\"} %" PRIu64
		"\n"
		"wsrelay_password_verifications_total{result=\"rate_limited\"} %" PRIu64
		"\n",
		c->pw_ok, c->pw_failed, c->pw_cached, c->pw_rate_limited);
	counter(b, "wsrelay_password_jobs_dropped_total",
		"Queued PBKDF2 jobs dropped before they ran: their client had "
		"hung up.",
		c->pw_dropped);
}
