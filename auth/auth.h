/*
 * auth: client authentication with JSON Web Tokens (PROTOCOL.md 7.1, 7.5).
 * Strict compact-JWT parsing, HS256 (OpenSSL HMAC) and EdDSA (libsodium)
 * signatures, the claims, and the channel patterns of a login. Plain C
 * over plain data: no libwebsockets, no config struct; callable from any
 * thread (no shared mutable state: a keys object is read-only once built).
 */
#ifndef WR_AUTH_H
#define WR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr.h"

/* Tokens longer than this are "invalid token" without being parsed. */
#define AUTH_TOKEN_MAX 8192
/* The longest `sub` accepted, in bytes. */
#define AUTH_SUB_MAX 256
/* Clock skew allowed on exp and nbf, seconds (7.5.1). */
#define AUTH_SKEW_S 30

#define AUTH_INVALID "invalid token"
#define AUTH_EXPIRED "token expired"

/* What to build a keys object from: the [auth] section of a config, with
 * the file and lines its errors are reported at. Strings are borrowed. */
struct auth_spec {
	const char *cfg_path;          /* "PATH" of error messages */
	const char *hs256_secret_file; /* NULL: no HS256 */
	int hs256_line;
	const char *const *ed25519_keys; /* standard base64, 32 bytes each */
	const int *ed25519_lines;        /* one line per key */
	size_t ned25519;                 /* 0: no EdDSA */
	const char *issuer;              /* NULL: not checked */
	const char *audience;            /* NULL: not checked */
};

struct auth_keys;

/*
 * Builds a keys object from @spec: reads the HS256 secret file (raw bytes,
 * one trailing newline stripped; empty is an error) and decodes each
 * Ed25519 key. On success *@out is the caller's (auth_keys_destroy) and
 * the result WR_OK; else WR_EINVAL / WR_EIO / WR_ENOMEM and one line
 * "PATH:LINE: key 'auth.KEY': WHAT" in @err. Never logs the secret.
 * A SIGHUP reload builds a new object and frees the old one: nothing a
 * login keeps points into it.
 */
int auth_keys_load(const struct auth_spec *spec, struct auth_keys **out,
		   char *err, size_t errlen);
/* Wipes the key material and frees; NULL is a no-op. */
void auth_keys_destroy(struct auth_keys *k);
/* True when at least one algorithm is configured. */
bool auth_keys_any(const struct auth_keys *k);

/*
 * A successful verification: the user, the expiry and compact copies of
 * the pattern lists, in one allocation independent of the keys object.
 */
struct auth_grant;

/*
 * Verifies the compact JWT @token (@len bytes) at @now_s (seconds since
 * the epoch). Returns NULL and gives *@out to the caller (auth_grant_free)
 * on success; else AUTH_INVALID or AUTH_EXPIRED (static strings) and
 * leaves *@out NULL. Out of memory is AUTH_INVALID too.
 */
const char *auth_verify(const struct auth_keys *k, const char *token,
			size_t len, int64_t now_s, struct auth_grant **out);
void auth_grant_free(struct auth_grant *g);

/* The `sub` claim: @len bytes of valid UTF-8 (not NUL-terminated). */
const char *auth_grant_user(const struct auth_grant *g, size_t *len);
/* The `exp` claim, seconds since the epoch (rounded down). */
int64_t auth_grant_exp(const struct auth_grant *g);
/* The grant's `channels` / `publish` patterns allow @name: an absent list
 * allows every channel, an empty one none. */
bool auth_grant_may_subscribe(const struct auth_grant *g, const char *name,
			      size_t len);
bool auth_grant_may_publish(const struct auth_grant *g, const char *name,
			    size_t len);
/* Bytes the grant occupies (for the memory figures). */
size_t auth_grant_size(const struct auth_grant *g);

/* One pattern: the exact name, or a prefix when it ends in '*'. */
bool auth_pattern_match(const char *pat, size_t plen, const char *name,
			size_t nlen);

/* Strict base64url without padding (RFC 4648 section 5): every character
 * from the alphabet, no '=', no length of 4n+1, unused bits zero. Writes
 * at most @cap bytes. Returns the decoded length or -1. */
long auth_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* base64url without padding of @n bytes into @out (room for 4n/3+4, NUL
 * added). Returns the length written. For tests and the token minter. */
size_t auth_b64url_encode(const uint8_t *in, size_t n, char *out);
/* HMAC-SHA256 of @msg under @key into @mac (32 bytes). WR_OK or WR_EIO. */
int auth_hs256(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
	       uint8_t mac[32]);

#endif
