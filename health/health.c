/*
 * health/health: PROTOCOL.md 6.3 as a table walked in order; the first
 * reason that holds is "reason", all that hold are "reasons".
 */
#include <string.h>

#include "health.h"

void health_eval(const struct health_input *in, struct health_result *out)
{
	bool linked = false, slow = false;

	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < in->npeers; i++) {
		if (!in->peers[i].up)
			continue;
		linked = true;
		if (in->peers[i].latency_ms > in->max_latency_ms)
			slow = true;
	}

	struct {
		bool holds;
		enum health_state state;
		const char *reason;
	} rules[] = {
		{ in->draining, HEALTH_BAD, "draining" },
		{ in->active_channels > 0 && in->clients == 0, HEALTH_BAD,
		  "channels no clients" },
		{ in->peers_configured > 0 && !linked, HEALTH_DEGRADED,
		  "no peers" },
		{ slow, HEALTH_DEGRADED, "high latency" },
		{ in->clients > 3 && in->active_channels == 0, HEALTH_DEGRADED,
		  "clients no channels" },
	};

	out->state = HEALTH_GOOD;
	out->reason = "healthy";
	for (unsigned i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (!rules[i].holds)
			continue;
		if (!out->nreasons) {
			out->state = rules[i].state;
			out->reason = rules[i].reason;
		}
		out->reasons[out->nreasons++] = rules[i].reason;
	}
}

const char *health_state_name(enum health_state s)
{
	switch (s) {
	case HEALTH_GOOD:
		return "good";
	case HEALTH_DEGRADED:
		return "degraded";
	case HEALTH_BAD:
		return "bad";
	}
	return "bad";
}

int health_http_status(enum health_state s)
{
	return s == HEALTH_BAD ? 503 : 200;
}

void health_json(struct wr_buf *b, const struct health_result *r,
		 const char *node_name)
{
	wr_buf_puts(b, "{\"healthy\":\"");
	wr_buf_puts(b, health_state_name(r->state));
	wr_buf_puts(b, "\",\"reason\":\"");
	wr_buf_puts(b, r->reason);
	wr_buf_puts(b, "\",\"reasons\":[");
	for (unsigned i = 0; i < r->nreasons; i++) {
		wr_buf_puts(b, i ? ",\"" : "\"");
		wr_buf_puts(b, r->reasons[i]);
		wr_buf_puts(b, "\"");
	}
	wr_buf_puts(b, "],\"node\":");
	wr_buf_json_str(b, node_name, strlen(node_name));
	wr_buf_puts(b, "}");
}
