/*
 * node/auth: the [auth] keys of a config, built with auth/ at the lines
 * the config recorded, so a bad key reads like any config error. The
 * /connect side of authentication (the command, the deadlines) is in
 * client.c with the other commands.
 */
#include "node.h"

int node_auth_keys(const struct config *cfg, struct auth_keys **out, char *err,
		   size_t errlen)
{
	struct auth_spec s = {
		.cfg_path = cfg->path ? cfg->path : "<config>",
		.hs256_secret_file = cfg->auth_hs256_secret_file,
		.hs256_line = cfg->auth_hs256_line,
		.ed25519_keys = (const char *const *)cfg->auth_ed25519.v,
		.ed25519_lines = cfg->auth_ed25519.lines,
		.ned25519 = cfg->auth_ed25519.n,
		.issuer = cfg->auth_issuer,
		.audience = cfg->auth_audience,
	};

	return auth_keys_load(&s, out, err, errlen);
}
