/*
 * clients/cli/token: `wsrelay token`, an HS256 development token minted
 * from a node's [auth] hs256_secret_file (same reading: raw bytes, one
 * trailing newline stripped). The secret is wiped after use and never
 * printed; the token goes to stdout, nothing else does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"
#include "cli.h"
#include "wr.h"

#define SECRET_MAX 65536

static const char token_usage[] =
	"usage: wsrelay token --secret-file FILE --sub NAME [--channels P,...]\n"
	"                     [--publish P,...] [--ttl DURATION] [--iss S] [--aud S]\n"
	"\n"
	"Prints an HS256 JSON Web Token signed with the key in FILE (a node's\n"
	"[auth] hs256_secret_file), for development and tests.\n"
	"\n"
	"      --secret-file FILE  the HMAC key: FILE's bytes, one trailing\n"
	"                          newline stripped\n"
	"      --sub NAME          the user (the \"sub\" claim)\n"
	"      --channels P,...    subscribe patterns: names, or prefixes ending\n"
	"                          in '*' (\"chat.*\"); \"\" allows none; default:\n"
	"                          no list, every channel\n"
	"      --publish P,...     send patterns, the same way\n"
	"      --ttl DURATION      lifetime: N, Ns, Nm, Nh or Nd (default 1h)\n"
	"      --iss S, --aud S    the \"iss\" and \"aud\" claims (default: none)\n"
	"  -h, --help             print this help and exit\n"
	"\n"
	"Exit status: 0 printed, 2 usage error or unreadable secret file.\n";

static int token_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int token_error(const char *fmt, ...)
{
	va_list ap;

	fputs("wsrelay token: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(wsrelay token --help for more)\n", stderr);
	return CLI_EXIT_USAGE;
}

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 when not one of those. */
static long long parse_ttl(const char *s)
{
	char *end;
	long long v, mul = 1;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v <= 0 || *s == '+' || *s == ' ')
		return -1;
	if (*end) {
		if (end[1])
			return -1;
		switch (*end) {
		case 's':
			break;
		case 'm':
			mul = 60;
			break;
		case 'h':
			mul = 3600;
			break;
		case 'd':
			mul = 86400;
			break;
		default:
			return -1;
		}
	}
	if (v > 3650LL * 86400 / mul)
		return -1; /* ten years is plenty for a dev token */
	return v * mul;
}

/* Appends a JSON array of the comma-separated patterns in @list. */
static void put_list(struct wr_buf *b, const char *key, const char *list)
{
	const char *p = list;

	wr_buf_printf(b, ",\"%s\":[", key);
	while (*list) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (p != list)
			wr_buf_puts(b, ",");
		wr_buf_json_str(b, p, n);
		if (!comma)
			break;
		p = comma + 1;
	}
	wr_buf_puts(b, "]");
}

static int read_secret(const char *path, unsigned char *buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return token_error("cannot read --secret-file '%s': %s", path,
				   strerror(errno));
	n = fread(buf, 1, SECRET_MAX + 1, f);
	fclose(f);
	if (n > SECRET_MAX)
		return token_error("--secret-file '%s' is over 64 KiB", path);
	if (n && buf[n - 1] == '\n') {
		n--;
		if (n && buf[n - 1] == '\r')
			n--;
	}
	if (!n)
		return token_error("--secret-file '%s' is empty", path);
	*len = n;
	return 0;
}

int cli_cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "secret-file", required_argument, NULL, 'f' },
		{ "sub", required_argument, NULL, 's' },
		{ "channels", required_argument, NULL, 'c' },
		{ "publish", required_argument, NULL, 'p' },
		{ "ttl", required_argument, NULL, 'l' },
		{ "iss", required_argument, NULL, 'i' },
		{ "aud", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *sub = NULL, *chans = NULL, *pubs = NULL;
	const char *iss = NULL, *aud = NULL;
	long long ttl = 3600;
	unsigned char *secret, mac[32];
	size_t slen = 0, n;
	char *out;
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case 's':
			sub = optarg;
			break;
		case 'c':
			chans = optarg;
			break;
		case 'p':
			pubs = optarg;
			break;
		case 'i':
			iss = optarg;
			break;
		case 'a':
			aud = optarg;
			break;
		case 'l':
			ttl = parse_ttl(optarg);
			if (ttl < 0)
				return token_error(
					"--ttl wants N, Ns, Nm, Nh or Nd (N > 0, at most 10 years), not '%s'",
					optarg);
			break;
		case 'h':
			fputs(token_usage, stdout);
			return CLI_EXIT_OK;
		case ':':
			return token_error("option '%s' needs a value",
					   argv[optind - 1]);
		default:
			return token_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return token_error("unexpected argument '%s'", argv[optind]);
	if (!file || !sub)
		return token_error("--secret-file and --sub are required");
	if (!*sub || strlen(sub) > AUTH_SUB_MAX)
		return token_error("--sub must be 1 to %d bytes", AUTH_SUB_MAX);
	if (!wr_utf8_valid(sub, strlen(sub)) ||
	    (chans && !wr_utf8_valid(chans, strlen(chans))) ||
	    (pubs && !wr_utf8_valid(pubs, strlen(pubs))) ||
	    (iss && !wr_utf8_valid(iss, strlen(iss))) ||
	    (aud && !wr_utf8_valid(aud, strlen(aud))))
		return token_error("arguments must be valid UTF-8");
	if (sodium_init() < 0)
		return token_error("libsodium failed to initialise");
	secret = sodium_malloc(SECRET_MAX + 1);
	if (!secret)
		return token_error("out of memory");
	rc = read_secret(file, secret, &slen);
	if (rc) {
		sodium_free(secret);
		return rc;
	}

	/* the payload, then "header.payload" in @out, then the MAC */
	{
		struct wr_buf p;
		long long now = (long long)time(NULL);

		wr_buf_init(&p);
		wr_buf_puts(&p, "{\"sub\":");
		wr_buf_json_str(&p, sub, strlen(sub));
		wr_buf_printf(&p, ",\"iat\":%lld,\"exp\":%lld", now, now + ttl);
		if (iss) {
			wr_buf_puts(&p, ",\"iss\":");
			wr_buf_json_str(&p, iss, strlen(iss));
		}
		if (aud) {
			wr_buf_puts(&p, ",\"aud\":");
			wr_buf_json_str(&p, aud, strlen(aud));
		}
		if (chans)
			put_list(&p, "channels", chans);
		if (pubs)
			put_list(&p, "publish", pubs);
		wr_buf_puts(&p, "}");
		out = malloc(64 + (p.len * 4) / 3 + 4 + 48);
		if (p.oom || !out) {
			wr_buf_fini(&p);
			free(out);
			sodium_free(secret);
			return token_error("out of memory");
		}
		n = auth_b64url_encode(
			(const uint8_t *)"{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
			27, out);
		out[n++] = '.';
		n += auth_b64url_encode((const uint8_t *)p.p, p.len, out + n);
		wr_buf_fini(&p);
	}
	rc = auth_hs256(secret, slen, out, n, mac);
	sodium_free(secret);
	if (rc) {
		free(out);
		return token_error("HMAC failed");
	}
	out[n++] = '.';
	n += auth_b64url_encode(mac, sizeof(mac), out + n);
	sodium_memzero(mac, sizeof(mac));
	printf("%s\n", out);
	free(out);
	return fflush(stdout) ? CLI_EXIT_CONN : CLI_EXIT_OK;
}
