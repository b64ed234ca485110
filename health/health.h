/*
 * health: the /health evaluation (PROTOCOL.md 6.3) as a pure function of
 * the node's counts, and the /metrics Prometheus rendering (6.4) of the
 * node's counters. No sockets, no lws: the node gathers, this decides.
 */
#ifndef WR_HEALTH_H
#define WR_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "wr.h"

enum health_state { HEALTH_GOOD, HEALTH_DEGRADED, HEALTH_BAD };

struct health_peer {
	const char *name;
	bool up;
	double latency_ms; /* < 0: not measured yet */
};

struct health_input {
	unsigned active_channels;
	unsigned clients;
	unsigned peers_configured;       /* [[peers]] entries */
	const struct health_peer *peers; /* linked peers */
	unsigned npeers;
	int max_latency_ms;
	bool draining; /* lame-duck drain (SIGUSR2): load balancers move away */
};

#define HEALTH_MAX_REASONS 5
struct health_result {
	enum health_state state;
	const char *reason;                      /* first that holds */
	const char *reasons[HEALTH_MAX_REASONS]; /* every one that holds */
	unsigned nreasons;
};

void health_eval(const struct health_input *in, struct health_result *out);
const char *health_state_name(enum health_state s);
/* 200 for good and degraded, 503 for bad. */
int health_http_status(enum health_state s);
/* {"healthy":..,"reason":..,"reasons":[..],"node":..} */
void health_json(struct wr_buf *b, const struct health_result *r,
		 const char *node_name);

/* Counters the node bumps on its hot paths (loop thread only). */
struct health_counters {
	uint64_t connections_total;    /* accepted /connect upgrades */
	uint64_t connections_rejected; /* refused: max_clients */
	uint64_t client_msgs_in;       /* accepted sends */
	uint64_t client_msgs_out;      /* deliveries queued to clients */
	uint64_t client_bytes_in;      /* frame payload bytes received */
	uint64_t client_bytes_out;     /* bytes written to clients */
	uint64_t client_errors;        /* ok:false responses */
	uint64_t slow_consumer_disconnects;
	uint64_t dropped_slow_consumer; /* frames discarded on cut-off */
	uint64_t protocol_closes;       /* 1003 / 1007 / 1009 closes */
	uint64_t pw_ok, pw_failed, pw_cached, pw_rate_limited;
	uint64_t pw_dropped; /* queued jobs dropped: their client went */
	/* intra-node messages */
	uint64_t inm_in, inm_out;
	uint64_t inm_bytes_in, inm_bytes_out; /* packet payload bytes */
	uint64_t inm_link_closes_malformed; /* 1002: >100 bad packets a minute */
	uint64_t inm_duplicates;   /* seen before (3.3), or our own come back */
	uint64_t inm_forwarded;    /* packets passed on to other links */
	uint64_t inm_out_type[4];  /* packet copies sent, by inm_type */
	uint64_t inm_unroutable;   /* a holder no route reaches */
	uint64_t reserve_timeouts; /* a subscribe answered before every ack */
	uint64_t heal_dials;       /* dials of the self-healing flow */
	uint64_t resv_refused;     /* reservations with an unknown holder or
				    * a creation time out of bounds */
	uint64_t config_reloads_ok, config_reloads_failed; /* SIGHUP */
	uint64_t refused_origin, refused_per_ip; /* /connect upgrades, 7.2 */
	uint64_t refused_pending; /* sockets closed at accept: their address
				   * has NODE_PENDING_PER_ADDR before headers */
	uint64_t refused_headers; /* 431: request headers over 8 KiB */
	uint64_t refused_version; /* 426: Sec-WebSocket-Version not 13 */
	uint64_t refused_admin; /* 401: /api, /metrics without the admin token */
	uint64_t refused_fds;   /* sockets closed at accept: the fd reserve */
	uint64_t sends_rate_limited; /* "rate limited": messages_per_second */
	uint64_t node_auth_failures; /* /node upgrades with an unknown token */
	uint64_t node_auth_blocked;  /* /node upgrades refused 429 for them */
	/* client authentication (7.1): auth answers, 4401 closes, refusals */
	uint64_t auth_ok, auth_invalid, auth_expired;
	uint64_t auth_closes_unauthorized, auth_closes_expired;
	uint64_t permission_denied;
	/* history (7.3): subscribes with since, by outcome; history commands */
	uint64_t history_recovered, history_not_recovered;
	uint64_t history_commands;
	/* presence (7.4): presence commands (all, partial), join/leave
	 * frames queued, polls of the holders for them */
	uint64_t presence_queries, presence_partial;
	uint64_t presence_events, presence_polls;
#define HEALTH_INM_DROP_MAX 16
	uint64_t inm_dropped[HEALTH_INM_DROP_MAX];
	const char *inm_drop_names[HEALTH_INM_DROP_MAX]; /* label per slot */
	unsigned inm_ndrop;
};

struct health_gauges {
	unsigned clients;
	unsigned channels_active;
	unsigned channels_reserved;
	uint64_t subscriptions;
	unsigned peers_up;
	unsigned peers_configured;
	unsigned nodes_known;            /* the mesh as this node sees it */
	const struct health_peer *peers; /* linked peers, with latency */
	unsigned npeers;
	uint64_t pw_jobs_pending;
	uint64_t history_entries, history_bytes; /* every channel's ring */
	double uptime_seconds;
};

/* Appends the Prometheus text exposition (HELP and TYPE for each). */
void metrics_render(struct wr_buf *b, const struct health_counters *c,
		    const struct health_gauges *g, const char *node_name);

#endif
