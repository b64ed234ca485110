/*
 * tests/fuzz/fuzz_jwt: libFuzzer entry for JWT verification. The first
 * byte picks the mode: odd, the rest is a whole token; even, the rest is
 * "header.payload" that the harness signs with the configured HS256 key,
 * so the fuzzer reaches the JSON and the claims behind the signature.
 * Any result other than ok / "invalid token" / "token expired", or a
 * grant that breaks its own invariants, is a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct auth_keys *keys;
static const char key[] = "fuzz-secret";

static void init(void)
{
	static const char *ed[] = {
		"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	};
	char path[64];
	FILE *f;
	struct auth_spec s = { .cfg_path = "fuzz",
			       .ed25519_keys = ed,
			       .ned25519 = 1,
			       .audience = "wsrelay" };

	snprintf(path, sizeof(path), "/tmp/fuzz-jwt-%d.key", (int)getpid());
	f = fopen(path, "wb");
	if (!f)
		abort();
	fputs(key, f);
	fclose(f);
	s.hs256_secret_file = path;
	if (auth_keys_load(&s, &keys, NULL, 0))
		abort();
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok;
	size_t n;
	const char *r;
	struct auth_grant *g;

	if (!keys)
		init();
	if (!size || size > 2 * AUTH_TOKEN_MAX)
		return 0;
	tok = malloc(size + 64);
	if (!tok)
		return 0;
	n = size - 1;
	memcpy(tok, data + 1, n);
	if (!(data[0] & 1)) {
		uint8_t mac[32];

		auth_hs256((const uint8_t *)key, strlen(key), tok, n, mac);
		tok[n++] = '.';
		n += auth_b64url_encode(mac, sizeof(mac), tok + n);
	}
	r = auth_verify(keys, tok, n, 1700000000, &g);
	if (r && strcmp(r, AUTH_INVALID) && strcmp(r, AUTH_EXPIRED))
		__builtin_trap();
	if (!r) {
		size_t ulen;
		const char *u = auth_grant_user(g, &ulen);

		if (!ulen || ulen > AUTH_SUB_MAX || !wr_utf8_valid(u, ulen) ||
		    auth_grant_exp(g) + AUTH_SKEW_S < 1700000000)
			__builtin_trap();
		(void)auth_grant_may_subscribe(g, "chat.x", 6);
		(void)auth_grant_may_publish(g, "chat.x", 6);
		auth_grant_free(g);
	}
	free(tok);
	return 0;
}
