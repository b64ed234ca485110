/*
 * node/main: the command line. `wsrelay -c FILE` runs a node,
 * `--check` validates a config and exits, `--version`, `--help`.
 * Exit status: 0 ok, 1 runtime failure, 2 usage or config error.
 * `wsrelay sub|pub|list|health ...` is the client (clients/cli/).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "node.h"
#include "../clients/cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wsrelay [-c FILE] [--check]\n"
		"       wsrelay --version | --help\n"
		"       wsrelay sub|pub|list|health URL ... (the client, below)\n"
		"\n"
		"Runs a wsrelay node: a federated WebSocket pub/sub relay.\n"
		"\n"
		"  -c, --config FILE  load the TOML config FILE (default: built-in\n"
		"                     defaults, see node.toml.example)\n"
		"      --check        validate the config and exit\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n"
		"\n"
		"Endpoints: WS /connect (clients), WS /node (nodes), GET /health,\n"
		"GET /metrics.\n"
		"\n"
		"Exit status: 0 success (and clean shutdown on SIGTERM/SIGINT),\n"
		"1 runtime failure (cannot listen, refused insecure listen),\n"
		"2 usage or config error.\n"
		"\n");
	cli_usage_summary(f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool check = false;
	struct config cfg;
	struct auth_keys *keys = NULL;
	char err[512];
	int c, rc;

	/* before the node's signal setup: the client handles its own */
	if (argc > 1 && cli_is_command(argv[1]))
		return cli_main(argc - 1, argv + 1);

	{
		/* from the first instruction: a stop signal is only ever read
		 * from the loop's signalfd (server.c), never default-handled */
		sigset_t stop;

		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &stop, NULL);
	}
	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'V':
			printf("wsrelay %s\n", WR_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wsrelay: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}

	err[0] = '\0';
	rc = path ? config_load(&cfg, path, err, sizeof(err))
		  : config_defaults(&cfg);
	/* the [auth] keys are part of the config: a bad one is exit 2 */
	if (!rc)
		rc = node_auth_keys(&cfg, &keys, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s\n", err[0] ? err : wr_strerror(rc));
		config_fini(&cfg);
		return 2;
	}
	if (check) {
		printf("%s: ok\n", path ? path : "(defaults)");
		auth_keys_destroy(keys);
		config_fini(&cfg);
		return 0;
	}
	wr_log_set_level(cfg.log_level);
	wr_log_set_format(cfg.log_format);
	wr_log_set_node(cfg.name);
	rc = node_run(&cfg, keys); /* takes the keys */
	config_fini(&cfg);
	return rc;
}
