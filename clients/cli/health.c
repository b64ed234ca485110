/*
 * clients/cli/health: `wsrelay health URL` — GET /health (PROTOCOL.md
 * 6.3), the answer printed as it came, the exit status from its
 * "healthy": 0 good, 1 degraded, 2 bad. Anything else — no connection,
 * a timeout, another HTTP status, a body that is not a health answer —
 * is 3, with the reason on stderr.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "wr.h"

/* The exit status for a "healthy" value, or CLI_HEALTH_ERROR. */
static int health_status(const char *body, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "healthy");
	int rc = CLI_HEALTH_ERROR;

	if (cJSON_IsString(h)) {
		if (!strcmp(h->valuestring, "good"))
			rc = CLI_HEALTH_GOOD;
		else if (!strcmp(h->valuestring, "degraded"))
			rc = CLI_HEALTH_DEGRADED;
		else if (!strcmp(h->valuestring, "bad"))
			rc = CLI_HEALTH_BAD;
	}
	cJSON_Delete(root);
	return rc;
}

int cli_cmd_health(const struct cli_args *a)
{
	struct cli_conn_opts o = { .url = &a->url,
				   .insecure = a->insecure,
				   .cafile = a->cafile };
	struct cli_conn *c = cli_conn_create(&o);
	const char *body;
	enum cli_wait w;
	size_t len;
	int status, rc;

	if (!c) {
		cli_err(a, "out of memory");
		return CLI_HEALTH_ERROR;
	}
	w = cli_http_get(c, wr_now_ms() + a->timeout_ms, &status, &body, &len);
	if (w != CLI_WAIT_DONE) {
		cli_err(a, "%s",
			w == CLI_WAIT_STOPPED ? "interrupted"
					      : cli_conn_error(c));
		rc = CLI_HEALTH_ERROR;
		goto out;
	}
	/* 6.3: 200 for good and degraded, 503 for bad */
	if (status != 200 && status != 503) {
		cli_err(a, "GET %s: HTTP %d, not a health answer",
			a->url.health_path, status);
		rc = CLI_HEALTH_ERROR;
		goto out;
	}
	rc = health_status(body, len);
	if (rc == CLI_HEALTH_ERROR) {
		cli_err(a,
			"GET %s: the answer has no \"healthy\" of good, degraded "
			"or bad: %.200s",
			a->url.health_path, body);
		goto out;
	}
	fwrite(body, 1, len, stdout);
	if (!len || body[len - 1] != '\n')
		fputc('\n', stdout);
	if (cli_flush_stdout(a) < 0)
		rc = CLI_HEALTH_ERROR;
out:
	cli_conn_destroy(c);
	return rc;
}
