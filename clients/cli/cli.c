/*
 * clients/cli/cli: `wsrelay sub|pub|list|health` — the subcommand table,
 * each one's help, and one option parser for all of them. Anything that
 * is wrong on the command line exits 2 before a socket is opened.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "wr.h"

/* which options a subcommand takes */
#define OPT_PASSWORD 0x1
#define OPT_JSON 0x2
#define OPT_TOKEN 0x4
#define OPT_RECOVER 0x8 /* --recover, --since */
#define OPT_LIMIT 0x10

struct subcommand {
	const char *name;
	const char *synopsis;   /* after "wsrelay NAME " */
	const char *what;       /* the paragraph under the usage line */
	const char *exits;      /* the exit status paragraph */
	int min_args, max_args; /* positional arguments, URL included */
	unsigned opts;
	int (*run)(const struct cli_args *a);
};

static const char exits_common[] =
	"Exit status: 0 success, 1 the server refused (ok:false; its reason\n"
	"is printed), 2 usage error, 3 connection error, timeout or\n"
	"interrupted.\n";

static const struct subcommand commands[] = {
	{ "sub",
	  "URL CHANNEL [--password P] [--json] [--recover] "
	  "[--since EPOCH:OFFSET] [options]",
	  "Subscribes to CHANNEL and prints each message on it, one per line\n"
	  "(the message text as sent: a text with newlines spans lines; use\n"
	  "--json for unambiguous output), until interrupted by SIGINT or\n"
	  "SIGTERM, or until the connection ends. \"subscribed to ...\" on\n"
	  "stderr says when messages start to arrive. The first subscriber of\n"
	  "a channel creates it, with the password given or with none.\n"
	  "With --recover (node with [history], PROTOCOL.md 7.3) the position\n"
	  "reached is printed on stderr at exit, \"position EPOCH:OFFSET\";\n"
	  "--since EPOCH:OFFSET (implies --recover) resumes from such a\n"
	  "position: the messages missed since are printed first, or\n"
	  "\"not recovered\" on stderr says they cannot be.\n",
	  "Exit status: 0 interrupted (SIGINT/SIGTERM), 1 the server refused\n"
	  "the subscription (e.g. \"invalid password\") or removed it later,\n"
	  "2 usage error, 3 connection error or timeout before the subscription,\n"
	  "or the connection closed afterwards.\n",
	  2, 2, OPT_PASSWORD | OPT_JSON | OPT_TOKEN | OPT_RECOVER,
	  cli_cmd_sub },
	{ "pub", "URL CHANNEL [MESSAGE] [--password P] [options]",
	  "Publishes MESSAGE on CHANNEL or, without MESSAGE, each line of\n"
	  "standard input as one message (without its \"\\n\" or \"\\r\\n\"; an\n"
	  "empty line is an empty message). The protocol lets only subscribers\n"
	  "send, so pub subscribes first (with --password for a protected\n"
	  "channel). Waits for the server to accept every message; stops at the\n"
	  "first one refused. Put \"--\" before a MESSAGE that starts with\n"
	  "'-'.\n",
	  "Exit status: 0 every message accepted, 1 the server refused the\n"
	  "subscription or a message (its reason is printed), 2 usage error or\n"
	  "an input line that is not UTF-8 or over 16 MiB, 3 connection error,\n"
	  "timeout or interrupted.\n",
	  2, 3, OPT_PASSWORD | OPT_TOKEN, cli_cmd_pub },
	{ "list", "URL [options]",
	  "Prints the name of every channel open on the network, one per line,\n"
	  "sorted.\n",
	  exits_common, 1, 1, OPT_TOKEN, cli_cmd_list },
	{ "history", "URL CHANNEL [--limit N] [--password P] [options]",
	  "Prints the newest messages the node keeps on CHANNEL (PROTOCOL.md\n"
	  "7.3), oldest first, one per line (--json: the answer as received);\n"
	  "at most N (default and cap: the node's [history] size). The\n"
	  "protocol answers subscribers only: history subscribes first (with\n"
	  "--password for a protected channel). \"position EPOCH:OFFSET\" on\n"
	  "stderr is the channel's last offset, for sub --since.\n",
	  exits_common, 2, 2, OPT_PASSWORD | OPT_JSON | OPT_TOKEN | OPT_LIMIT,
	  cli_cmd_history },
	{ "presence", "URL CHANNEL [--password P] [options]",
	  "Prints the logged-in users on CHANNEL across the mesh (PROTOCOL.md\n"
	  "7.4), sorted, one per line (--json: the answer as received), and\n"
	  "\"N client(s)\" on stderr: every subscriber of every node, this\n"
	  "connection included (presence subscribes first: the protocol\n"
	  "answers subscribers only), \", partial\" when a node holding the\n"
	  "channel did not answer in time.\n",
	  exits_common, 2, 2, OPT_PASSWORD | OPT_JSON | OPT_TOKEN,
	  cli_cmd_presence },
	{ "health", "URL [options]",
	  "GET /health of the node at URL (for ws(s)://HOST:PORT/connect that\n"
	  "is http(s)://HOST:PORT/health) and prints its JSON answer.\n",
	  "Exit status: 0 good, 1 degraded, 2 bad, 3 cannot connect, timeout or\n"
	  "not a health answer (2 is also a usage error: its message is on\n"
	  "stderr).\n",
	  1, 1, 0, cli_cmd_health },
};

static const char common_text[] =
	"  -t, --timeout SECONDS  the longest wait to connect and for each\n"
	"                         answer (default 10)\n"
	"  -k, --insecure         wss/https: do not check the certificate\n"
	"      --cafile FILE      wss/https: trust the CA certificates in FILE\n"
	"                         (default: the system's)\n"
	"  -h, --help             print this help and exit\n"
	"\n"
	"URL: ws://HOST:PORT/connect, wss://HOST:PORT/connect (TLS), or\n"
	"http://HOST:PORT, https://HOST:PORT meaning its /connect.\n";

static const struct subcommand *find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

bool cli_is_command(const char *name)
{
	return find(name) != NULL || !strcmp(name, "token");
}

static void usage(const struct subcommand *sc, FILE *f)
{
	fprintf(f, "usage: wsrelay %s %s\n\n%s\n", sc->name, sc->synopsis,
		sc->what);
	if (sc->opts & OPT_PASSWORD)
		fprintf(f, "  -p, --password P       the channel's password\n");
	if (sc->opts & OPT_JSON)
		fprintf(f,
			"  -j, --json             print each frame as received (raw JSON)\n");
	if (sc->opts & OPT_RECOVER)
		fprintf(f,
			"  -r, --recover          offsets on, position printed at exit\n"
			"  -s, --since EPOCH:OFFSET  resume from a printed position\n");
	if (sc->opts & OPT_LIMIT)
		fprintf(f, "  -n, --limit N          at most N messages\n");
	if (sc->opts & OPT_TOKEN)
		fprintf(f,
			"  -T, --token JWT        authenticate with JWT first (default:\n"
			"                         $WSRELAY_TOKEN when set; see wsrelay token)\n");
	fprintf(f, "%s\n%s", common_text, sc->exits);
}

void cli_usage_summary(FILE *f)
{
	fprintf(f,
		"Client subcommands (wsrelay COMMAND --help for each):\n"
		"  wsrelay sub URL CHANNEL [--password P] [--json]   print a channel's messages\n"
		"  wsrelay pub URL CHANNEL [MESSAGE] [--password P]  publish MESSAGE or stdin lines\n"
		"  wsrelay list URL                                  print the open channels\n"
		"  wsrelay history URL CHANNEL [--limit N]           print a channel's kept messages\n"
		"  wsrelay presence URL CHANNEL                      print who is on a channel\n"
		"  sub --recover [--since EPOCH:OFFSET]: resume where a run stopped\n"
		"  wsrelay health URL                                print GET /health\n"
		"  wsrelay token --secret-file F --sub NAME [...]    print an HS256 dev token\n"
		"  sub, pub, list, history, presence also take --token JWT (auth first)\n"
		"  each also takes --timeout SECONDS (default 10), --insecure, --cafile FILE\n"
		"  URL: ws://HOST:PORT/connect, wss://..., or http(s)://HOST:PORT\n"
		"\n"
		"Client exit status: 0 success, 1 the server refused (ok:false),\n"
		"2 usage error, 3 connection error, timeout or interrupted; `sub`\n"
		"exits 0 on SIGINT/SIGTERM; `health` exits 0 good, 1 degraded,\n"
		"2 bad, 3 cannot connect or bad answer.\n");
}

void cli_err(const struct cli_args *a, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "wsrelay %s: ", a->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_flush_stdout(const struct cli_args *a)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	if (errno == EPIPE)
		return 1;
	cli_err(a, "cannot write to standard output: %s", strerror(errno));
	return -1;
}

static int parse_timeout(const char *s, int64_t *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 ||
	    v > 86400.0 * 365)
		return -1;
	*ms = (int64_t)(v * 1000.0 + 0.999); /* round up: 0.0001 s is 1 ms */
	return 0;
}

/* A whole decimal number below 2^64. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t n = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* EPOCH:OFFSET, the last ':' separating them; the epoch is kept in place
 * (a pointer into argv, cut at the ':'). */
static int parse_since(char *s, struct cli_args *a)
{
	char *colon = strrchr(s, ':');

	if (!colon || colon == s || parse_u64(colon + 1, &a->since_offset))
		return -1;
	*colon = '\0';
	if (!wr_utf8_valid(s, strlen(s)))
		return -1;
	a->since_epoch = s;
	return 0;
}

static int usage_error(const struct subcommand *sc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_error(const struct subcommand *sc, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "wsrelay %s: ", sc->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\nusage: wsrelay %s %s\n(wsrelay %s --help for more)\n",
		sc->name, sc->synopsis, sc->name);
	return CLI_EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "password", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "cafile", required_argument, NULL, 'C' },
		{ "token", required_argument, NULL, 'T' },
		{ "recover", no_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct subcommand *sc;
	struct cli_args a;
	char err[512];
	int c, npos;

	if (!strcmp(argv[0], "token"))
		return cli_cmd_token(argc, argv);
	sc = find(argv[0]);
	if (!sc)
		return CLI_EXIT_USAGE;
	memset(&a, 0, sizeof(a));
	a.cmd = sc->name;
	a.timeout_ms = 10000;
	opterr = 0; /* our messages name the subcommand */
	optind = 1;
	while ((c = getopt_long(argc, argv, ":p:jt:T:krs:n:h", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'T':
			if (!(sc->opts & OPT_TOKEN))
				return usage_error(sc,
						   "--token is not an option of %s",
						   sc->name);
			a.token = optarg;
			break;
		case 'p':
			if (!(sc->opts & OPT_PASSWORD))
				return usage_error(
					sc, "--password is not an option of %s",
					sc->name);
			a.password = optarg;
			break;
		case 'j':
			if (!(sc->opts & OPT_JSON))
				return usage_error(sc,
						   "--json is not an option of %s",
						   sc->name);
			a.json = true;
			break;
		case 't':
			if (parse_timeout(optarg, &a.timeout_ms))
				return usage_error(sc,
						   "--timeout wants a number of "
						   "seconds above 0, not '%s'",
						   optarg);
			break;
		case 'k':
			a.insecure = true;
			break;
		case 'r':
		case 's':
			if (!(sc->opts & OPT_RECOVER))
				return usage_error(sc,
						   "--%s is not an option of %s",
						   c == 'r' ? "recover"
							    : "since",
						   sc->name);
			a.recover = true;
			if (c == 's' && parse_since(optarg, &a))
				return usage_error(sc,
						   "--since wants EPOCH:OFFSET "
						   "(as sub --recover prints), "
						   "not '%s'",
						   optarg);
			break;
		case 'n':
			if (!(sc->opts & OPT_LIMIT))
				return usage_error(sc,
						   "--limit is not an option of %s",
						   sc->name);
			if (parse_u64(optarg, &a.limit))
				return usage_error(sc,
						   "--limit wants a whole number, "
						   "not '%s'",
						   optarg);
			a.has_limit = true;
			break;
		case 'C':
			a.cafile = optarg;
			break;
		case 'h':
			usage(sc, stdout);
			return CLI_EXIT_OK;
		case ':':
			return usage_error(sc, "option '%s' needs a value",
					   argv[optind - 1]);
		default:
			return usage_error(sc, "unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (!a.token && (sc->opts & OPT_TOKEN) && getenv("WSRELAY_TOKEN") &&
	    *getenv("WSRELAY_TOKEN"))
		a.token = getenv("WSRELAY_TOKEN");
	if (a.token && !wr_utf8_valid(a.token, strlen(a.token)))
		return usage_error(sc, "the token is not valid UTF-8");
	npos = argc - optind;
	if (npos < sc->min_args)
		return usage_error(sc, "missing %s",
				   npos == 0   ? "URL"
				   : npos == 1 ? "CHANNEL"
					       : "argument");
	if (npos > sc->max_args)
		return usage_error(sc, "unexpected argument '%s'",
				   argv[optind + sc->max_args]);
	a.url_text = argv[optind];
	if (cli_url_parse(&a.url, a.url_text, err, sizeof(err)))
		return usage_error(sc, "%s", err);
	if (npos >= 2) {
		a.channel = argv[optind + 1];
		if (!*a.channel || !wr_utf8_valid(a.channel, strlen(a.channel)))
			return usage_error(sc,
					   "CHANNEL must be non-empty UTF-8");
	}
	if (npos >= 3)
		a.message = argv[optind + 2];
	if (a.message && !wr_utf8_valid(a.message, strlen(a.message)))
		return usage_error(sc, "MESSAGE is not valid UTF-8");
	if (a.password && !wr_utf8_valid(a.password, strlen(a.password)))
		return usage_error(sc, "the password is not valid UTF-8");
	if (a.cafile && access(a.cafile, R_OK))
		return usage_error(sc, "cannot read --cafile '%s': %s",
				   a.cafile, strerror(errno));
	cli_signals_init();
	return sc->run(&a);
}
