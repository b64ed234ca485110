/*
 * tests/unit/test_config: the TOML subset parser and the config loader.
 * Malformed files are a table: each names the exact line and a piece of
 * the message, so a regression in either shows up as a readable diff.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "toml.h"

#define ERRLEN 512
#define N(a) (sizeof(a) / sizeof((a)[0]))

static int parse_len(struct config *c, const char *text, size_t len, char *err)
{
	cr_assert_eq(config_defaults(c), WR_OK);
	return config_parse(c, "node.toml", text, len, err, ERRLEN);
}

static int parse(struct config *c, const char *text, char *err)
{
	return parse_len(c, text, strlen(text), err);
}

/* ---- valid files ---- */

Test(config, defaults_from_empty_file)
{
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(parse(&c, "", err), WR_OK, "%s", err);
	cr_expect_str_eq(c.path, "node.toml");
	cr_expect(c.name && c.name[0]);
	cr_expect_leq(strlen(c.name), 64);
	cr_expect_eq(strspn(c.name,
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._-"),
		     strlen(c.name));
	cr_expect_str_eq(c.listen, "127.0.0.1:8080");
	cr_expect_str_eq(c.listen_host, "127.0.0.1");
	cr_expect_eq(c.listen_port, 8080);
	cr_expect_null(c.url);
	cr_expect_null(c.token);
	cr_expect_not(c.master);
	cr_expect_eq(c.max_peers, 8);
	cr_expect_eq(c.drain_ms, 10000);
	cr_expect_null(c.tls_cert);
	cr_expect_null(c.tls_key);
	cr_expect_null(c.tls_ca);
	cr_expect_not(c.tls_insecure);
	cr_expect_eq(c.max_message_bytes, 65536);
	cr_expect_eq(c.max_queue_bytes, 1048576);
	cr_expect_eq(c.max_subscriptions, 1024);
	cr_expect_eq(c.max_clients, 100000);
	cr_expect_eq(c.client_ping_interval_ms, 30000);
	cr_expect_eq(c.max_latency_ms, 10);
	cr_expect_eq(c.announce_interval_ms, 5000);
	cr_expect_eq(c.ping_interval_ms, 5000);
	cr_expect_eq(c.peer_timeout_ms, 15000);
	cr_expect_eq(c.command_timeout_ms, 5000);
	cr_expect_eq(c.reconnect_min_ms, 500);
	cr_expect_eq(c.reconnect_max_ms, 30000);
	cr_expect_eq(c.reconcile_interval_ms, 15000);
	cr_expect_eq(c.log_level, WR_LOG_INFO);
	cr_expect_eq(c.log_format, WR_LOG_TEXT);
	cr_expect_eq(c.npeers, 0);
	config_fini(&c);
}

Test(config, defaults_without_parse)
{
	struct config c;

	cr_assert_eq(config_defaults(&c), WR_OK);
	cr_expect_null(c.path);
	cr_expect_str_eq(c.listen_host, "127.0.0.1");
	config_fini(&c);
	config_fini(&c); /* zeroed by the first: a second is harmless */
}

Test(config, null_text_is_empty)
{
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(parse_len(&c, NULL, 0, err), WR_OK, "%s", err);
	config_fini(&c);
}

static const char full_file[] =
	"# every key\n"
	"[node]\n"
	"name = \"node-a.1_x\"\n"
	"listen = \"0.0.0.0:9000\"\n"
	"url = \"wss://a.example.net:9000/node\"\n"
	"token = 's3cret-s3cret-s3cret'\n"
	"master = true\n"
	"max_peers = 0\n"
	"drain_ms = 0\n"
	"[tls]\n"
	"cert = \"/etc/a.crt\"\n"
	"key = \"/etc/a.key\"\n"
	"ca = \"/etc/ca.pem\"\n"
	"insecure = true\n"
	"[limits]\n"
	"max_message_bytes = 16_777_216\n"
	"max_queue_bytes = 1_073_741_824\n"
	"max_subscriptions = 1000000\n"
	"max_clients = +10000000\n"
	"client_ping_interval_ms = 1000\n"
	"[health]\n"
	"max_latency_ms = 0\n"
	"[mesh]\n"
	"announce_interval_ms = 1\n"
	"ping_interval_ms = 2\n"
	"peer_timeout_ms = 3\n"
	"command_timeout_ms = 4\n"
	"reconnect_min_ms = 86400000\n"
	"reconnect_max_ms = 86400000\n"
	"reconcile_interval_ms = 7\n"
	"[log]\n"
	"level = \"debug\"\n"
	"format = \"json\"\n"
	"[[peers]]\n"
	"name = \"b\"\n"
	"url = \"ws://10.0.0.2:8080/node\"\n"
	"token = \"tb\"\n";

Test(config, full_file)
{
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(parse(&c, full_file, err), WR_OK, "%s", err);
	cr_expect_str_eq(c.name, "node-a.1_x");
	cr_expect_str_eq(c.listen, "0.0.0.0:9000");
	cr_expect_str_eq(c.listen_host, "0.0.0.0");
	cr_expect_eq(c.listen_port, 9000);
	cr_expect_str_eq(c.url, "wss://a.example.net:9000/node");
	cr_expect_str_eq(c.token, "s3cret-s3cret-s3cret");
	cr_expect(c.master);
	cr_expect_eq(c.max_peers, 0);
	cr_expect_eq(c.drain_ms, 0);
	cr_expect_str_eq(c.tls_cert, "/etc/a.crt");
	cr_expect_str_eq(c.tls_key, "/etc/a.key");
	cr_expect_str_eq(c.tls_ca, "/etc/ca.pem");
	cr_expect(c.tls_insecure);
	cr_expect_eq(c.max_message_bytes, 16777216);
	cr_expect_eq(c.max_queue_bytes, 1073741824);
	cr_expect_eq(c.max_subscriptions, 1000000);
	cr_expect_eq(c.max_clients, 10000000);
	cr_expect_eq(c.client_ping_interval_ms, 1000);
	cr_expect_eq(c.max_latency_ms, 0);
	cr_expect_eq(c.announce_interval_ms, 1);
	cr_expect_eq(c.ping_interval_ms, 2);
	cr_expect_eq(c.peer_timeout_ms, 3);
	cr_expect_eq(c.command_timeout_ms, 4);
	cr_expect_eq(c.reconnect_min_ms, 86400000);
	cr_expect_eq(c.reconnect_max_ms, 86400000);
	cr_expect_eq(c.reconcile_interval_ms, 7);
	cr_expect_eq(c.log_level, WR_LOG_DEBUG);
	cr_expect_eq(c.log_format, WR_LOG_JSON);
	cr_assert_eq(c.npeers, 1);
	cr_expect_str_eq(c.peers[0].name, "b");
	cr_expect_str_eq(c.peers[0].url, "ws://10.0.0.2:8080/node");
	cr_expect_str_eq(c.peers[0].token, "tb");
	config_fini(&c);
}

Test(config, comments_escapes_and_layout)
{
	static const char text[] =
		"\xef\xbb\xbf# a BOM, then comments everywhere\r\n"
		"\r\n"
		"  [ node ]   # header comment, blanks inside the brackets\r\n"
		"\ttoken\t=\t\"q\\\"b\\\\s\\t\\u00e9\\U0001F600 \xc3\xa9xx\" # trailing\r\n"
		"name='lit-eral'\n"
		"[log]\n"
		"level = \"\\u0077arn\"\n";
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(parse(&c, text, err), WR_OK, "%s", err);
	cr_expect_str_eq(c.token,
			 "q\"b\\s\t\xc3\xa9\xf0\x9f\x98\x80 \xc3\xa9xx");
	cr_expect_str_eq(c.name, "lit-eral");
	cr_expect_eq(c.log_level, WR_LOG_WARN);
	config_fini(&c);
}

Test(config, auth_section)
{
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(parse(&c, "", err), WR_OK, "%s", err);
	cr_expect_eq(c.auth_timeout_ms, 5000);
	cr_expect_not(c.auth_required);
	cr_expect_null(c.auth_hs256_secret_file);
	cr_expect_eq(c.auth_ed25519.n, 0);
	config_fini(&c);

	cr_assert_eq(config_defaults(&c), WR_OK);
	cr_assert_eq(config_parse(&c, "/etc/wsrelay/node.toml",
				  "[auth]\n"
				  "hs256_secret_file = \"secret.key\"\n"
				  "ed25519_public_keys = [\n"
				  "  \"a\",\n"
				  "  \"b\",\n"
				  "]\n"
				  "required = true\n"
				  "issuer = \"https://idp\"\n"
				  "audience = \"wsrelay\"\n"
				  "timeout_ms = 100\n",
				  157, err, ERRLEN),
		     WR_OK, "%s", err);
	cr_expect_str_eq(c.auth_hs256_secret_file, "/etc/wsrelay/secret.key");
	cr_expect_eq(c.auth_hs256_line, 2);
	cr_assert_eq(c.auth_ed25519.n, 2);
	cr_expect_str_eq(c.auth_ed25519.v[1], "b");
	cr_expect_eq(c.auth_ed25519.lines[0], 4);
	cr_expect_eq(c.auth_ed25519.lines[1], 5);
	cr_expect(c.auth_required);
	cr_expect_str_eq(c.auth_issuer, "https://idp");
	cr_expect_str_eq(c.auth_audience, "wsrelay");
	cr_expect_eq(c.auth_timeout_ms, 100);
	config_fini(&c);

	/* an absolute path stays as it is */
	cr_assert_eq(parse(&c, "[auth]\nhs256_secret_file = \"/k\"\n", err),
		     WR_OK, "%s", err);
	cr_expect_str_eq(c.auth_hs256_secret_file, "/k");
	config_fini(&c);
}

Test(config, log_format)
{
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(parse(&c, "[log]\nformat = \"text\"\n", err), WR_OK, "%s",
		     err);
	cr_expect_eq(c.log_format, WR_LOG_TEXT);
	config_fini(&c);
	cr_assert_eq(parse(&c, "[log]\nformat = 'json'\nlevel = \"warn\"\n",
			   err),
		     WR_OK, "%s", err);
	cr_expect_eq(c.log_format, WR_LOG_JSON);
	cr_expect_eq(c.log_level, WR_LOG_WARN);
	config_fini(&c);
	/* the whole message, file and line included */
	cr_expect_eq(parse(&c, "[log]\nlevel = \"info\"\nformat = \"yaml\"\n",
			   err),
		     WR_EINVAL);
	cr_expect_str_eq(
		err,
		"node.toml:3: key 'log.format': unknown log format 'yaml' (expected text or json)");
	config_fini(&c);
}

Test(config, literal_backslash_is_not_a_name_char)
{
	struct config c;
	char err[ERRLEN];

	/* the literal string kept its backslash, which a name may not hold */
	cr_expect_eq(parse(&c, "[node]\nname='lit\\eral'\n", err), WR_EINVAL);
	cr_expect(strstr(err, "invalid name 'lit\\eral'"), "%s", err);
	config_fini(&c);
}

Test(config, listen_forms)
{
	static const struct {
		const char *listen, *host;
		int port;
	} cases[] = {
		{ "[::1]:8080", "::1", 8080 },
		{ "[::]:0", "::", 0 },
		{ "[2001:db8::42]:65535", "2001:db8::42", 65535 },
		{ "localhost:1", "localhost", 1 },
		{ "my-host.example_x.net:443", "my-host.example_x.net", 443 },
		{ "10.1.2.3:00080", "10.1.2.3", 80 },
	};
	char text[128], err[ERRLEN];
	struct config c;

	for (size_t i = 0; i < N(cases); i++) {
		snprintf(text, sizeof(text), "[node]\nlisten = \"%s\"\n",
			 cases[i].listen);
		cr_assert_eq(parse(&c, text, err), WR_OK, "%s: %s",
			     cases[i].listen, err);
		cr_expect_str_eq(c.listen, cases[i].listen);
		cr_expect_str_eq(c.listen_host, cases[i].host);
		cr_expect_eq(c.listen_port, cases[i].port, "%s",
			     cases[i].listen);
		config_fini(&c);
	}
}

Test(config, several_peers)
{
	static const char text[] =
		"[[peers]]\n"
		"name = \"b\"\n"
		"url = \"ws://b:1/node\"\n"
		"token = \"tb\"\n"
		"\n"
		"[node]\n"
		"name = \"a\"\n"
		"\n"
		"[[peers]]\n"
		"token = \"tc\"\n"
		"url = \"wss://[::1]:2/node\"\n"
		"name = \"c\"\n"
		"[[peers]]\n"
		"name = \"d\"\n"
		"url = \"ws://d/node\"\n"
		"token = \"td\"\n";
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(parse(&c, text, err), WR_OK, "%s", err);
	cr_expect_str_eq(c.name, "a");
	cr_assert_eq(c.npeers, 3);
	cr_expect_str_eq(c.peers[0].name, "b");
	cr_expect_str_eq(c.peers[1].name, "c");
	cr_expect_str_eq(c.peers[1].url, "wss://[::1]:2/node");
	cr_expect_str_eq(c.peers[1].token, "tc");
	cr_expect_str_eq(c.peers[2].token, "td");
	config_fini(&c);
}

Test(config, example_file_loads)
{
	struct config c;
	char err[ERRLEN];

	cr_assert_eq(config_load(&c, WR_SOURCE_DIR "/node.toml.example", err,
				 sizeof(err)),
		     WR_OK, "%s", err);
	cr_expect_str_eq(c.path, WR_SOURCE_DIR "/node.toml.example");
	cr_expect_str_eq(c.name, "node-1");
	cr_expect_str_eq(c.listen, "127.0.0.1:8080");
	cr_expect_eq(c.max_message_bytes, 65536);
	cr_expect_eq(c.client_ping_interval_ms, 30000);
	cr_expect_eq(c.log_level, WR_LOG_INFO);
	cr_expect_eq(c.npeers, 0);
	config_fini(&c);
}

Test(config, load_missing_file)
{
	struct config c;
	char err[ERRLEN];

	cr_expect_neq(config_load(&c, "/nonexistent/node.toml", err,
				  sizeof(err)),
		      WR_OK);
	cr_expect_str_eq(
		err,
		"/nonexistent/node.toml: cannot read: No such file or directory");
	config_fini(&c);
}

/* Writes @n bytes of comment lines to a temporary file; returns its path. */
static char *temp_file(size_t n)
{
	static char path[64];
	char *buf = malloc(n);
	int fd;

	cr_assert(buf);
	memset(buf, ' ', n);
	for (size_t i = 63; i < n; i += 64)
		buf[i] = '\n';
	buf[0] = '#';
	snprintf(path, sizeof(path), "/tmp/wr_test_config_XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, n), (ssize_t)n);
	close(fd);
	free(buf);
	return path;
}

Test(config, load_size_limit)
{
	struct config c;
	char err[ERRLEN], want[128];
	char *path;

	path = temp_file(1 << 20);
	cr_expect_eq(config_load(&c, path, err, sizeof(err)), WR_OK, "%s", err);
	config_fini(&c);
	unlink(path);

	path = temp_file((1 << 20) + 1);
	cr_expect_eq(config_load(&c, path, err, sizeof(err)), WR_EINVAL);
	snprintf(want, sizeof(want), "%s: file too large (limit 1 MiB)", path);
	cr_expect_str_eq(err, want);
	config_fini(&c);
	unlink(path);
}

/* ---- malformed files: exact line, a telling piece of the message ---- */

struct bad_case {
	const char *text;
	size_t len; /* 0: strlen(text) */
	int line;
	const char *msg; /* must appear in the error, after "node.toml:LINE: " */
};

static const struct bad_case bad_cases[] = {
	/* unknown names */
	{ "[node]\ncolour = \"red\"\n", 0, 2,
	  "key 'node.colour': unknown key" },
	{ "[node]\nname = \"a\"\n\n[foo]\nx = 1\n", 0, 4,
	  "unknown table [foo]" },
	{ "# top\nfoo = 1\n", 0, 2, "key 'foo': unknown key" },
	{ "[[foo]]\n", 0, 1, "unknown table [[foo]]" },
	{ "[[peers]]\nname = \"b\"\nport = 1\n", 0, 3,
	  "key 'peers[0].port': unknown key" },
	/* wrong types, one per type */
	{ "[limits]\nmax_clients = \"100\"\n", 0, 2,
	  "key 'limits.max_clients': expected an integer, got a string" },
	{ "[limits]\nmax_message_bytes = true\n", 0, 2,
	  "key 'limits.max_message_bytes': expected an integer, got a boolean" },
	{ "[mesh]\nping_interval_ms = [1]\n", 0, 2,
	  "key 'mesh.ping_interval_ms': expected an integer, got an array" },
	{ "[node]\nname = 5\n", 0, 2,
	  "key 'node.name': expected a string, got an integer" },
	{ "[log]\nlevel = true\n", 0, 2,
	  "key 'log.level': expected a string, got a boolean" },
	{ "[node]\nmaster = \"yes\"\n", 0, 2,
	  "key 'node.master': expected a boolean, got a string" },
	{ "[tls]\ninsecure = 1\n", 0, 2,
	  "key 'tls.insecure': expected a boolean, got an integer" },
	{ "node = 1\n", 0, 1,
	  "key 'node': expected a table [node], got an integer" },
	{ "[[node]]\n", 0, 1, "[[node]] must be a table: write [node]" },
	{ "[peers]\n", 0, 1,
	  "[peers] must be an array of tables: write [[peers]]" },
	{ "peers = []\n", 0, 1,
	  "key 'peers': expected an array of tables [[peers]], got an array" },
	/* ranges */
	{ "[limits]\nmax_message_bytes = 0\n", 0, 2,
	  "key 'limits.max_message_bytes': 0 is out of range (1..16777216)" },
	{ "[limits]\nmax_message_bytes = 16777217\n", 0, 2,
	  "out of range (1..16777216)" },
	{ "[limits]\nmax_queue_bytes = 1073741825\n", 0, 2,
	  "key 'limits.max_queue_bytes': 1073741825 is out of range (1..1073741824)" },
	{ "[limits]\nmax_subscriptions = 1000001\n", 0, 2,
	  "out of range (1..1000000)" },
	{ "[limits]\nmax_clients = 0\n", 0, 2, "out of range (1..10000000)" },
	{ "[limits]\nclient_ping_interval_ms = 999\n", 0, 2,
	  "out of range (1000..3600000)" },
	{ "[node]\nmax_peers = 1025\n", 0, 2,
	  "key 'node.max_peers': 1025 is out of range (0..1024)" },
	{ "[node]\ndrain_ms = -1\n", 0, 2,
	  "key 'node.drain_ms': -1 is out of range (0..3600000)" },
	{ "[node]\ndrain_ms = 3600001\n", 0, 2, "out of range (0..3600000)" },
	{ "[mesh]\npeer_timeout_ms = 0\n", 0, 2, "out of range (1..86400000)" },
	{ "[mesh]\nannounce_interval_ms = 86400001\n", 0, 2,
	  "out of range (1..86400000)" },
	{ "[health]\nmax_latency_ms = -1\n", 0, 2,
	  "key 'health.max_latency_ms': -1 is out of range (0..600000)" },
	{ "[limits]\nmax_clients = -9223372036854775808\n", 0, 2,
	  "-9223372036854775808 is out of range" },
	/* relations between keys */
	{ "[mesh]\nreconnect_min_ms = 60000\n", 0, 2,
	  "key 'mesh.reconnect_min_ms': must be <= mesh.reconnect_max_ms (30000)" },
	{ "[mesh]\n\nreconnect_max_ms = 100\n", 0, 3,
	  "key 'mesh.reconnect_max_ms': must be >= mesh.reconnect_min_ms (500)" },
	{ "[limits]\nmax_message_bytes = 2000000\n", 0, 2,
	  "key 'limits.max_message_bytes': must be <= limits.max_queue_bytes (1048576)" },
	{ "[limits]\nmax_queue_bytes = 1000\n", 0, 2,
	  "key 'limits.max_queue_bytes': must be >= limits.max_message_bytes (65536)" },
	{ "[tls]\nca = \"/ca\"\ncert = \"/a.crt\"\n", 0, 3,
	  "key 'tls.cert': tls.key must be set too" },
	{ "[tls]\nkey = \"/a.key\"\n", 0, 2,
	  "key 'tls.key': tls.cert must be set too" },
	/* [auth] */
	{ "[auth]\nrequired = true\n", 0, 2,
	  "key 'auth.required': needs auth.hs256_secret_file or auth.ed25519_public_keys" },
	{ "[auth]\ntimeout_ms = 99\n", 0, 2,
	  "key 'auth.timeout_ms': 99 is out of range (100..3600000)" },
	{ "[auth]\ntimeout_ms = 3600001\n", 0, 2,
	  "out of range (100..3600000)" },
	{ "[auth]\nhs256_secret_file = \"\"\n", 0, 2,
	  "key 'auth.hs256_secret_file': must not be empty" },
	{ "[auth]\ned25519_public_keys = []\n", 0, 2,
	  "key 'auth.ed25519_public_keys': must not be empty" },
	{ "[auth]\ned25519_public_keys = \"k\"\n", 0, 2,
	  "key 'auth.ed25519_public_keys': expected an array, got a string" },
	{ "[auth]\ned25519_public_keys = [\n  \"k\",\n  1,\n]\n", 0, 4,
	  "key 'auth.ed25519_public_keys': expected strings, got an integer" },
	{ "[auth]\ned25519_public_keys = [\"\"]\n", 0, 2,
	  "must not hold an empty string" },
	{ "[auth]\nissuer = \"\"\n", 0, 2,
	  "key 'auth.issuer': must not be empty" },
	{ "[auth]\nrequired = 1\n", 0, 2,
	  "key 'auth.required': expected a boolean, got an integer" },
	{ "[auth]\nsecret = \"x\"\n", 0, 2, "key 'auth.secret': unknown key" },
	/* duplicates */
	{ "[node]\nname = \"a\"\n# c\nname = \"b\"\n", 0, 4,
	  "key 'node.name': duplicate key (first defined on line 2)" },
	{ "[node]\n[limits]\n[node]\n", 0, 3,
	  "duplicate table [node] (first defined on line 1)" },
	{ "[[peers]]\n[peers]\n", 0, 2,
	  "[peers] conflicts with 'peers' defined on line 1" },
	{ "peers = 1\n[[peers]]\n", 0, 2,
	  "[[peers]] conflicts with 'peers' defined on line 1" },
	{ "[[peers]]\nname = \"b\"\nurl = \"ws://b/node\"\ntoken = \"t\"\n"
	  "[[peers]]\nname = \"c\"\nurl = \"ws://c/node\"\ntoken = \"t\"\n"
	  "[[peers]]\ntoken = \"t\"\nurl = \"ws://b2/node\"\nname = \"b\"\n",
	  0, 12,
	  "key 'peers[2].name': duplicate peer name 'b' (also peers[0])" },
	{ "[node]\nname = \"a\"\n[[peers]]\nname = \"a\"\nurl = \"ws://a/node\"\ntoken = \"t\"\n",
	  0, 4, "key 'peers[0].name': 'a' is this node's own name" },
	/* strings */
	{ "[node]\nname = \"abc\n", 0, 2,
	  "key 'node.name': unterminated string" },
	{ "[node]\nname = \"abc", 0, 2,
	  "key 'node.name': unterminated string" },
	{ "[node]\nname = 'abc\nx = 1\n", 0, 2,
	  "key 'node.name': unterminated string" },
	{ "[node]\ntoken = \"a\\\n", 0, 2, "invalid escape sequence" },
	{ "[node]\ntoken = \"a\\", 0, 2, "unterminated string" },
	{ "[node]\ntoken = \"a\\qb\"\n", 0, 2,
	  "key 'node.token': invalid escape sequence '\\q'" },
	{ "[node]\ntoken = \"a\\x41\"\n", 0, 2,
	  "invalid escape sequence '\\x'" },
	{ "[node]\ntoken = \"\\u12G4\"\n", 0, 2,
	  "invalid escape: \\u needs 4 hex digits" },
	{ "[node]\ntoken = \"\\U0001F60\"\n", 0, 2,
	  "invalid escape: \\U needs 8 hex digits" },
	{ "[node]\ntoken = \"\\uD800\"\n", 0, 2,
	  "U+D800 is not a Unicode scalar value" },
	{ "[node]\ntoken = \"\\U00110000\"\n", 0, 2,
	  "U+110000 is not a Unicode scalar value" },
	{ "[node]\ntoken = \"\\u0000\"\n", 0, 2,
	  "\\u0000 (NUL) is not allowed" },
	{ "[node]\n# ok\ntoken = \"\xff\"\n", 0, 3, "invalid UTF-8" },
	{ "[node]\ntoken = \"\xc0\xaf\"\n", 0, 2, "invalid UTF-8" },
	{ "[node]\ntoken = \"\xed\xa0\x80\"\n", 0, 2, "invalid UTF-8" },
	{ "# caf\xc3\n", 0, 1, "invalid UTF-8" },
	{ "[node]\nname = \"a\0b\"\n", 20, 2, "NUL byte in the file" },
	{ "\0", 1, 1, "NUL byte" },
	{ "[node]\ntoken = \"a\x01"
	  "b\"\n",
	  0, 2, "key 'node.token': control character in string" },
	{ "[node]\ntoken = \"a\rb\"\n", 0, 2, "control character in string" },
	{ "[node]\ntoken = 'a\x7f'\n", 0, 2, "control character in string" },
	{ "# a\x07"
	  "b\n",
	  0, 1, "control character in comment" },
	{ "[node]\ntoken = \"\"\n", 0, 2,
	  "key 'node.token': must not be empty" },
	{ "[node]\nname = \"n\"\ntoken = \"a\"\n", 0, 3,
	  "key 'node.token': too short: at least 16 characters" },
	{ "[node]\ntoken = \"0123456789abcde\"\n", 0, 2,
	  "key 'node.token': too short" },
	{ "[tls]\nca = ''\n", 0, 2, "key 'tls.ca': must not be empty" },
	{ "[node]\nname = \"\"\"x\"\"\"\n", 0, 2,
	  "unsupported multi-line string" },
	{ "[node]\nname = '''x'''\n", 0, 2,
	  "unsupported multi-line literal string" },
	/* syntax */
	{ "[node]\nname \"x\"\n", 0, 2,
	  "key 'node.name': missing '=' after the key" },
	{ "[node]\nname\n", 0, 2, "missing '=' after the key" },
	{ "[node]\nname =\n", 0, 2, "key 'node.name': missing value" },
	{ "[node]\nname = # none\n", 0, 2, "missing value" },
	{ "= 1\n", 0, 1, "expected a key or a [table] header" },
	{ "[node]\nmax_peers = 3 4\n", 0, 2,
	  "key 'node.max_peers': unexpected text after the value" },
	{ "[node]\nname = \"a\" b\n", 0, 2, "unexpected text after the value" },
	{ "[node] x\n", 0, 1, "unexpected text after the table header" },
	{ "[node\n", 0, 1, "expected ']' after the table name" },
	{ "[[peers]\n", 0, 1, "expected ']]' after the table name" },
	{ "[]\n", 0, 1, "expected a table name" },
	{ "[log]\nlevel = info\n", 0, 2,
	  "invalid value (strings must be quoted)" },
	{ "[node]\nmaster = True\n", 0, 2, "invalid value" },
	{ "[node]\nmax_peers = 1\r", 0, 2,
	  "carriage return not followed by a newline" },
	/* unsupported TOML */
	{ "[limits]\nmax_clients = 1.5\n", 0, 2,
	  "key 'limits.max_clients': unsupported float value" },
	{ "[limits]\nmax_clients = 1e3\n", 0, 2, "unsupported float value" },
	{ "[limits]\nmax_clients = -inf\n", 0, 2, "unsupported float value" },
	{ "[limits]\nmax_clients = nan\n", 0, 2, "unsupported float value" },
	{ "[node]\nname = 1979-05-27\n", 0, 2, "unsupported date/time value" },
	{ "[node]\nname = 1979-05-27T07:32:00Z\n", 0, 2,
	  "unsupported date/time value" },
	{ "[node]\nname = 07:32:00\n", 0, 2, "unsupported date/time value" },
	{ "node = { name = \"x\" }\n", 0, 1,
	  "key 'node': unsupported inline table" },
	{ "node.name = \"x\"\n", 0, 1, "key 'node': unsupported dotted key" },
	{ "[node.sub]\n", 0, 1, "unsupported dotted table name" },
	{ "[\"node\"]\n", 0, 1, "unsupported quoted table name" },
	{ "[node]\n\"name\" = \"x\"\n", 0, 2, "unsupported quoted key" },
	{ "[limits]\nmax_clients = 0x10\n", 0, 2,
	  "unsupported hexadecimal, octal or binary integer" },
	{ "[node]\nx = [[1], 2]\n", 0, 2, "unsupported nested array" },
	/* integers */
	{ "[limits]\nmax_clients = 9223372036854775808\n", 0, 2,
	  "key 'limits.max_clients': integer out of range (64-bit)" },
	{ "[limits]\nmax_clients = -9223372036854775809\n", 0, 2,
	  "integer out of range" },
	{ "[limits]\nmax_clients = 99999999999999999999999\n", 0, 2,
	  "integer out of range" },
	{ "[limits]\nmax_clients = 0100\n", 0, 2,
	  "leading zeros are not allowed" },
	{ "[limits]\nmax_clients = 0_1\n", 0, 2,
	  "leading zeros are not allowed" },
	{ "[limits]\nmax_clients = 1__0\n", 0, 2,
	  "'_' in an integer must be between digits" },
	{ "[limits]\nmax_clients = 10_\n", 0, 2,
	  "'_' in an integer must be between digits" },
	{ "[limits]\nmax_clients = _10\n", 0, 2, "invalid value" },
	{ "[limits]\nmax_clients = 12ab\n", 0, 2, "invalid integer" },
	/* arrays */
	{ "[node]\nname = [\"a\",\n  \"b\"\n", 0, 2,
	  "key 'node.name': unterminated array (opened on line 2)" },
	{ "[node]\nname = [\"a\",\n  \"b\"\nurl = \"ws://x\"\n", 0, 4,
	  "expected ',' or ']' in the array opened on line 2" },
	{ "[node]\nname = [1 2]\n", 0, 2, "expected ',' or ']'" },
	{ "[node]\nname = [1,,2]\n", 0, 2, "missing value" },
	{ "[node]\nname = [\n # c\n \"a\", # d\n \"b\"\n,\n]\n", 0, 2,
	  "key 'node.name': expected a string, got an array" },
	/* node values */
	{ "[node]\nlisten = \"localhost\"\n", 0, 2,
	  "key 'node.listen': expected \"host:port\", e.g. \"127.0.0.1:8080\"" },
	{ "[node]\nlisten = \"::1:8080\"\n", 0, 2,
	  "IPv6 addresses need brackets" },
	{ "[node]\nlisten = \"127.0.0.1:65536\"\n", 0, 2,
	  "key 'node.listen': port out of range (0..65535)" },
	{ "[node]\nlisten = \"127.0.0.1:99999999999999999999\"\n", 0, 2,
	  "port out of range" },
	{ "[node]\nlisten = \"127.0.0.1:80a\"\n", 0, 2, "invalid port" },
	{ "[node]\nlisten = \"127.0.0.1:\"\n", 0, 2, "missing port" },
	{ "[node]\nlisten = \"127.0.0.1:-1\"\n", 0, 2, "invalid port" },
	{ "[node]\nlisten = \":80\"\n", 0, 2, "missing host" },
	{ "[node]\nlisten = \"[::g]:80\"\n", 0, 2, "invalid IPv6 address" },
	{ "[node]\nlisten = \"[::1]80\"\n", 0, 2,
	  "expected ':' and a port after ']'" },
	{ "[node]\nlisten = \"[::1:80\"\n", 0, 2, "missing ']'" },
	{ "[node]\nlisten = \"300.1.1.1:80\"\n", 0, 2, "invalid IPv4 address" },
	{ "[node]\nlisten = \"bad host:80\"\n", 0, 2, "invalid host name" },
	{ "[node]\nname = \"bad name\"\n", 0, 2,
	  "key 'node.name': invalid name 'bad name': use 1 to 64 characters" },
	{ "[node]\nname = \"n\\u00e9\"\n", 0, 2,
	  "invalid name 'n?"
	  "?'" },
	{ "[node]\nname = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
	  0, 2, "invalid name 'aaaa" },
	{ "[node]\nurl = \"http://a/node\"\n", 0, 2,
	  "key 'node.url': expected a ws:// or wss:// URL" },
	{ "[node]\nurl = \"ws://\"\n", 0, 2,
	  "missing host after the URL scheme" },
	{ "[node]\nurl = \"ws://a b/node\"\n", 0, 2, "URL contains a space" },
	{ "[log]\nlevel = \"verbose\"\n", 0, 2,
	  "key 'log.level': unknown log level 'verbose' (expected debug, info, warn or error)" },
	{ "[log]\nformat = \"xml\"\n", 0, 2,
	  "key 'log.format': unknown log format 'xml' (expected text or json)" },
	{ "[log]\nformat = \"JSON\"\n", 0, 2,
	  "key 'log.format': unknown log format 'JSON'" },
	{ "[log]\nformat = \"\"\n", 0, 2,
	  "key 'log.format': must not be empty" },
	{ "[log]\nformat = 1\n", 0, 2,
	  "key 'log.format': expected a string, got an integer" },
	/* peers */
	{ "[[peers]]\nname = \"b\"\ntoken = \"t\"\n", 0, 1,
	  "key 'peers[0].url': missing: every [[peers]] needs name, url and token" },
	{ "[[peers]]\nname = \"b\"\nurl = \"ws://b/node\"\ntoken = \"t\"\n[[peers]]\n",
	  0, 5, "key 'peers[1].name': missing" },
	{ "[[peers]]\nname = \"b\"\nurl = \"ws://b/node\"\n", 0, 1,
	  "key 'peers[0].token': missing" },
	{ "[[peers]]\nname = \"b\"\nurl = \"http://b/node\"\ntoken = \"t\"\n",
	  0, 3, "key 'peers[0].url': expected a ws:// or wss:// URL" },
	{ "[[peers]]\nname = \"b c\"\n", 0, 2,
	  "key 'peers[0].name': invalid name" },
};

Test(config, malformed_files)
{
	char err[ERRLEN], prefix[32];
	struct config c;

	for (size_t i = 0; i < N(bad_cases); i++) {
		const struct bad_case *bc = &bad_cases[i];
		size_t len = bc->len ? bc->len : strlen(bc->text);
		int rc;

		rc = parse_len(&c, bc->text, len, err);
		cr_expect_eq(rc, WR_EINVAL, "case %zu: rc %d, err \"%s\"", i,
			     rc, err);
		snprintf(prefix, sizeof(prefix), "node.toml:%d: ", bc->line);
		cr_expect(!strncmp(err, prefix, strlen(prefix)),
			  "case %zu: want line %d, got \"%s\"", i, bc->line,
			  err);
		cr_expect(strstr(err, bc->msg),
			  "case %zu: want \"%s\" in \"%s\"", i, bc->msg, err);
		cr_expect_null(strchr(err, '\n'), "case %zu: two lines", i);
		config_fini(&c);
	}
}

Test(config, exact_messages)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "[limits]\nmax_clients = \"x\"\n",
		  "node.toml:2: key 'limits.max_clients': expected an integer, got a string" },
		{ "[node]\n\ncolour = 1\n",
		  "node.toml:3: key 'node.colour': unknown key" },
		{ "\n\n[foo]\n", "node.toml:3: unknown table [foo]" },
		{ "[node]\nname = \"a\nb\"\n",
		  "node.toml:2: key 'node.name': unterminated string" },
		{ "# \xfe\n", "node.toml:1: invalid UTF-8" },
	};
	char err[ERRLEN];
	struct config c;

	for (size_t i = 0; i < N(cases); i++) {
		cr_expect_eq(parse(&c, cases[i].text, err), WR_EINVAL);
		cr_expect_str_eq(err, cases[i].err);
		config_fini(&c);
	}
}

Test(config, small_error_buffer)
{
	struct config c;
	char err[8];

	cr_assert_eq(config_defaults(&c), WR_OK);
	cr_expect_eq(config_parse(&c, "node.toml", "x = 1", 5, err,
				  sizeof(err)),
		     WR_EINVAL);
	cr_expect_str_eq(err, "node.to");
	config_fini(&c);
	cr_assert_eq(config_defaults(&c), WR_OK);
	cr_expect_eq(config_parse(&c, NULL, "x = 1", 5, NULL, 0), WR_EINVAL);
	config_fini(&c);
}

/* ---- the TOML layer on its own ---- */

Test(toml, tree_shape_and_lines)
{
	static const char text[] =
		"top = 'x'\n"
		"[t]\n"
		"arr = [ # open\n"
		"  1, -2,\n"
		"  \"s\", 'l', true,\n"
		"  # inside\n"
		"]\n"
		"b = false\n"
		"[[aot]]\n"
		"k = 9_223_372_036_854_775_807\n"
		"[[aot]]\n"
		"k = -9223372036854775808\n"
		"z = -0\n";
	const struct toml *t, *arr, *aot;
	struct toml *root;
	struct toml_err e;

	cr_assert_eq(toml_parse(text, sizeof(text) - 1, &root, &e), WR_OK,
		     "%d: %s", e.line, e.msg);
	cr_assert_eq(root->type, TOML_TABLE);
	cr_assert_eq(root->n, 3);
	cr_expect_str_eq(toml_get(root, "top")->v.str, "x");
	t = toml_get(root, "t");
	cr_assert(t);
	cr_expect_eq(t->line, 2);
	arr = toml_get(t, "arr");
	cr_assert(arr);
	cr_expect_eq(arr->type, TOML_ARRAY);
	cr_expect_not(arr->aot);
	cr_expect_eq(arr->line, 3);
	cr_assert_eq(arr->n, 5);
	cr_expect_eq(arr->items[0]->v.i, 1);
	cr_expect_eq(arr->items[0]->line, 4);
	cr_expect_eq(arr->items[1]->v.i, -2);
	cr_expect_str_eq(arr->items[2]->v.str, "s");
	cr_expect_eq(arr->items[2]->line, 5);
	cr_expect_str_eq(arr->items[3]->v.str, "l");
	cr_expect_eq(arr->items[4]->type, TOML_BOOL);
	cr_expect(arr->items[4]->v.b);
	cr_expect_null(arr->items[0]->key);
	cr_expect_eq(toml_get(t, "b")->line, 8);
	cr_expect_not(toml_get(t, "b")->v.b);
	aot = toml_get(root, "aot");
	cr_assert(aot);
	cr_expect(aot->aot);
	cr_expect_str_eq(toml_type_name(aot), "an array of tables");
	cr_assert_eq(aot->n, 2);
	cr_expect_eq(aot->items[0]->line, 9);
	cr_expect_eq(aot->items[1]->line, 11);
	cr_expect_eq(toml_get(aot->items[0], "k")->v.i, INT64_MAX);
	cr_expect_eq(toml_get(aot->items[1], "k")->v.i, INT64_MIN);
	cr_expect_eq(toml_get(aot->items[1], "z")->v.i, 0);
	cr_expect_null(toml_get(root, "missing"));
	cr_expect_null(toml_get(arr, "x"));
	cr_expect_null(toml_get(NULL, "x"));
	toml_destroy(root);
	toml_destroy(NULL);
}

Test(toml, length_bounds_the_input)
{
	/* the bytes past len would be an error if the parser read them */
	static const char text[] = "a = 12\"garbage";
	struct toml *root;
	struct toml_err e;

	cr_assert_eq(toml_parse(text, 5, &root, &e), WR_OK, "%s", e.msg);
	cr_expect_eq(toml_get(root, "a")->v.i, 1);
	toml_destroy(root);

	cr_assert_eq(toml_parse("s = \"ab\"", 7, &root, &e), WR_EINVAL);
	cr_expect_null(root);
	cr_expect_str_eq(e.msg, "unterminated string");
	cr_expect_str_eq(e.key, "s");
	cr_expect_eq(e.line, 1);
}

Test(toml, error_names_the_full_key)
{
	static const char text[] =
		"[[p]]\nx = 1\n[[p]]\n[[p]]\n\nurl = \"\\z\"\n";
	struct toml *root;
	struct toml_err e;

	cr_assert_eq(toml_parse(text, sizeof(text) - 1, &root, &e), WR_EINVAL);
	cr_expect_null(root);
	cr_expect_eq(e.line, 6);
	cr_expect_str_eq(e.key, "p[2].url");
	cr_expect_str_eq(e.msg, "invalid escape sequence '\\z'");
}

Test(toml, empty_and_blank_inputs)
{
	static const char *const texts[] = {
		"", "\n", "\r\n", "  \t \n# c", "#", "\xef\xbb\xbf"
	};
	struct toml *root;
	struct toml_err e;

	for (size_t i = 0; i < N(texts); i++) {
		cr_assert_eq(toml_parse(texts[i], strlen(texts[i]), &root, &e),
			     WR_OK, "case %zu: %s", i, e.msg);
		cr_expect_eq(root->n, 0);
		toml_destroy(root);
	}
}

Test(toml, too_many_keys)
{
	struct wr_buf b;
	struct toml *root;
	struct toml_err e;

	wr_buf_init(&b);
	for (int i = 0; i <= 4096; i++)
		wr_buf_printf(&b, "k%d = %d\n", i, i);
	cr_assert_not(b.oom);
	cr_expect_eq(toml_parse(b.p, b.len, &root, &e), WR_EINVAL);
	cr_expect_eq(e.line, 4097);
	cr_expect(strstr(e.msg, "too many entries"), "%s", e.msg);
	wr_buf_fini(&b);
}

/* ---- reload: live keys change, restart keys keep their value ---- */

struct restarts {
	char keys[8][48];
	int n;
};

static void note_restart(void *ud, const char *key)
{
	struct restarts *r = ud;

	cr_assert_lt(r->n, 8);
	snprintf(r->keys[r->n++], sizeof(r->keys[0]), "%s", key);
}

static void reload_pair(struct config *live, struct config *next, const char *a,
			const char *b)
{
	char err[ERRLEN];

	cr_assert_eq(parse(live, a, err), WR_OK, "%s", err);
	cr_assert_eq(parse(next, b, err), WR_OK, "%s", err);
}

Test(config, reload_applies_live_keys)
{
	struct config live, next;
	struct restarts r = { 0 };

	reload_pair(&live, &next,
		    "[node]\nname = \"a\"\n[limits]\nmax_subscriptions = 10\n"
		    "[log]\nlevel = \"info\"\n",
		    "[node]\nname = \"a\"\ndrain_ms = 500\n"
		    "[limits]\nmax_subscriptions = 3\nmax_clients = 7\n"
		    "[health]\nmax_latency_ms = 99\n[log]\nlevel = \"debug\"\n"
		    "[[peers]]\nname = \"b\"\nurl = \"ws://127.0.0.1:9/node\"\n"
		    "token = \"t\"\n");
	config_reload_merge(&live, &next, note_restart, &r);
	cr_expect_eq(r.n, 0);
	cr_expect_eq(live.max_subscriptions, 3);
	cr_expect_eq(live.max_clients, 7);
	cr_expect_eq(live.max_latency_ms, 99);
	cr_expect_eq(live.drain_ms, 500);
	cr_expect_eq(live.log_level, WR_LOG_DEBUG);
	cr_assert_eq(live.npeers, 1);
	cr_expect_str_eq(live.peers[0].name, "b");
	/* next holds the old values, to be freed */
	cr_expect_eq(next.max_subscriptions, 10);
	cr_expect_eq(next.npeers, 0);
	config_fini(&live);
	config_fini(&next);
}

Test(config, reload_keeps_restart_keys)
{
	struct config live, next;
	struct restarts r = { 0 };

	reload_pair(&live, &next,
		    "[node]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\n"
		    "[mesh]\npeer_timeout_ms = 15000\n",
		    "[node]\nname = \"b\"\nlisten = \"127.0.0.1:9090\"\n"
		    "master = true\n[mesh]\npeer_timeout_ms = 9000\n"
		    "[limits]\nmax_clients = 5\n");
	config_reload_merge(&live, &next, note_restart, &r);
	cr_assert_eq(r.n, 4);
	cr_expect_str_eq(r.keys[0], "node.name");
	cr_expect_str_eq(r.keys[1], "node.listen");
	cr_expect_str_eq(r.keys[2], "node.master");
	cr_expect_str_eq(r.keys[3], "mesh.peer_timeout_ms");
	cr_expect_str_eq(live.name, "a");
	cr_expect_str_eq(live.listen, "127.0.0.1:8080");
	cr_expect_str_eq(live.listen_host, "127.0.0.1");
	cr_expect_eq(live.listen_port, 8080);
	cr_expect_not(live.master);
	cr_expect_eq(live.peer_timeout_ms, 15000);
	cr_expect_eq(live.max_clients, 5); /* the live key beside them */
	cr_expect_str_eq(next.name, "b");  /* freed with next */
	config_fini(&live);
	config_fini(&next);
}

Test(config, reload_tls_pair_live_but_not_tls_on_off)
{
	struct config live, next;
	struct restarts r = { 0 };

	reload_pair(&live, &next,
		    "[tls]\ncert = \"/etc/a.pem\"\nkey = \"/etc/a.key\"\n",
		    "[tls]\ncert = \"/etc/b.pem\"\nkey = \"/etc/b.key\"\n");
	config_reload_merge(&live, &next, note_restart, &r);
	cr_expect_eq(r.n, 0);
	cr_expect_str_eq(live.tls_cert, "/etc/b.pem");
	cr_expect_str_eq(live.tls_key, "/etc/b.key");
	config_fini(&live);
	config_fini(&next);

	memset(&r, 0, sizeof(r));
	reload_pair(&live, &next, "",
		    "[tls]\ncert = \"/etc/b.pem\"\nkey = \"/etc/b.key\"\n");
	config_reload_merge(&live, &next, note_restart, &r);
	cr_assert_eq(r.n, 2);
	cr_expect_str_eq(r.keys[0], "tls.cert");
	cr_expect_str_eq(r.keys[1], "tls.key");
	cr_expect_null(live.tls_cert);
	config_fini(&live);
	config_fini(&next);
}

Test(config, origins_and_per_address_limits)
{
	struct config c;
	char err[ERRLEN];
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "[web]\nallowed_origins = \"https://a.example\"\n",
		  "node.toml:2: key 'web.allowed_origins': expected an array" },
		{ "[web]\nallowed_origins = []\n",
		  "key 'web.allowed_origins': must not be empty" },
		{ "[web]\nallowed_origins = [\"a.example\"]\n",
		  "'a.example' must start with http:// or https://" },
		{ "[web]\nallowed_origins = [\"https://a.example/app\"]\n",
		  "with no path" },
		{ "[web]\nallowed_origins = [\"https://A.example\"]\n",
		  "in lower case" },
		{ "[web]\nallowed_origins = [\"https://\"]\n", "has no host" },
		{ "[limits]\nmax_clients_per_ip = 0\n",
		  "key 'limits.max_clients_per_ip': 0 is out of range" },
		{ "[limits]\nmessages_per_second = 0\n", "out of range" },
		{ "[limits]\nmessages_burst = -1\n", "out of range" },
		{ "[limits]\nmax_pending_per_ip = 0\n",
		  "key 'limits.max_pending_per_ip': 0 is out of range" },
		{ "[history]\nsize = -1\n",
		  "node.toml:2: key 'history.size': -1 is out of range" },
		{ "[history]\nsize = 1000001\n", "out of range" },
		{ "[history]\nttl_ms = 0\n",
		  "key 'history.ttl_ms': 0 is out of range" },
		{ "[history]\nlinger_ms = -1\n",
		  "key 'history.linger_ms': -1 is out of range" },
		{ "[history]\nmax_bytes = -5\n",
		  "key 'history.max_bytes': -5 is out of range" },
		{ "[history]\nsize = \"100\"\n", "key 'history.size'" },
		{ "[history]\nwindow = 5\n", "window" },
	};

	cr_assert_eq(parse(&c, "", err), WR_OK, "%s", err);
	cr_expect_eq(c.allowed_origins.n, 0);
	cr_expect_eq(c.max_clients_per_ip, 1000);
	cr_expect_eq(c.messages_per_second, 1000);
	cr_expect_eq(c.messages_burst, 2000);
	cr_expect_eq(c.max_pending_per_ip, 64);
	/* [history] (7.3): off by default */
	cr_expect_eq(c.history_size, 0);
	cr_expect_eq(c.history_ttl_ms, 300000);
	cr_expect_eq(c.history_max_bytes, 64LL << 20);
	cr_expect_eq(c.history_linger_ms, 30000);
	config_fini(&c);
	cr_assert_eq(parse(&c,
			   "[history]\nsize = 100\nttl_ms = 1000\n"
			   "max_bytes = 0\nlinger_ms = 0\n",
			   err),
		     WR_OK, "%s", err);
	cr_expect_eq(c.history_size, 100);
	cr_expect_eq(c.history_ttl_ms, 1000);
	cr_expect_eq(c.history_max_bytes, 0);
	cr_expect_eq(c.history_linger_ms, 0);
	config_fini(&c);
	cr_assert_eq(parse(&c,
			   "[web]\nallowed_origins = [\n"
			   "  \"https://app.example.com\",\n"
			   "  \"http://localhost:3000\"]\n"
			   "[limits]\nmax_clients_per_ip = 7\n"
			   "messages_per_second = 50\nmessages_burst = 60\n",
			   err),
		     WR_OK, "%s", err);
	cr_assert_eq(c.allowed_origins.n, 2);
	cr_expect_str_eq(c.allowed_origins.v[1], "http://localhost:3000");
	cr_expect_eq(c.allowed_origins.lines[1], 4);
	cr_expect_eq(c.max_clients_per_ip, 7);
	cr_expect_eq(c.messages_per_second, 50);
	cr_expect_eq(c.messages_burst, 60);
	config_fini(&c);
	for (size_t i = 0; i < N(bad); i++) {
		cr_expect_eq(parse(&c, bad[i].text, err), WR_EINVAL, "%s",
			     bad[i].text);
		cr_expect(strstr(err, bad[i].want), "%s: got %s", bad[i].text,
			  err);
		config_fini(&c);
	}
}
