/*
 * tests/unit/test_auth: JWT verification as a table of tokens, each with
 * its exact reason (NULL: accepted), minted here with the library's own
 * base64url and HMAC and with libsodium for EdDSA; then the patterns and
 * the key loading with its config-style errors.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1700000000LL
#define SECRET "s3cret-key-for-tests"

static char secret_path[64];
static unsigned char ed_pk[32], ed_sk[64], ed2_pk[32], ed2_sk[64];

enum keyset { K_ALL, K_HS, K_ED, K_ISSAUD, K_NONE };
static struct auth_keys *keys[5];

static void write_file(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f);
	cr_assert_eq(fwrite(s, 1, n, f), n);
	fclose(f);
}

static struct auth_keys *load(const char *secret, const char *const *ed,
			      size_t ned, const char *iss, const char *aud)
{
	int lines[4] = { 7, 8, 9, 10 };
	struct auth_spec s = { .cfg_path = "node.toml",
			       .hs256_secret_file = secret,
			       .hs256_line = 3,
			       .ed25519_keys = ed,
			       .ed25519_lines = lines,
			       .ned25519 = ned,
			       .issuer = iss,
			       .audience = aud };
	struct auth_keys *k = NULL;
	char err[256] = "";

	cr_assert_eq(auth_keys_load(&s, &k, err, sizeof(err)), WR_OK, "%s",
		     err);
	return k;
}

static void setup(void)
{
	unsigned char seed[32];
	char b64[64];
	const char *ed[2];

	cr_assert(sodium_init() >= 0);
	memset(seed, 1, sizeof(seed));
	crypto_sign_seed_keypair(ed_pk, ed_sk, seed);
	memset(seed, 2, sizeof(seed));
	crypto_sign_seed_keypair(ed2_pk, ed2_sk, seed);
	snprintf(secret_path, sizeof(secret_path), "/tmp/wr-auth-%d.key",
		 (int)getpid());
	write_file(secret_path, SECRET "\n", strlen(SECRET) + 1);
	sodium_bin2base64(b64, sizeof(b64), ed_pk, 32,
			  sodium_base64_VARIANT_ORIGINAL);
	ed[0] = b64;
	keys[K_ALL] = load(secret_path, ed, 1, NULL, NULL);
	keys[K_HS] = load(secret_path, NULL, 0, NULL, NULL);
	keys[K_ED] = load(NULL, ed, 1, NULL, NULL);
	keys[K_ISSAUD] = load(secret_path, NULL, 0, "https://idp.example",
			      "wsrelay");
	keys[K_NONE] = load(NULL, NULL, 0, NULL, NULL);
}

static void teardown(void)
{
	for (size_t i = 0; i < N(keys); i++)
		auth_keys_destroy(keys[i]);
	unlink(secret_path);
}

/* How a test token is made from its header and payload. */
enum how {
	SIGN_HS,       /* HS256 with SECRET */
	SIGN_HS_OTHER, /* HS256 with another secret */
	SIGN_ED,       /* EdDSA with the configured key */
	SIGN_ED_OTHER, /* EdDSA with a key not configured */
	SIG_SHORT,     /* HS256, the MAC cut to 31 bytes */
	SIG_LONG,      /* HS256, the MAC with a byte more */
	ED_SIG_SHORT,  /* EdDSA, 63 bytes */
	SIG_EMPTY,     /* "header.payload." */
	SIG_PADDED,    /* a valid HS256 token with '=' after the signature */
	SIG_TRUNC,     /* the signature's last character dropped */
	SIG_FLIP,      /* the first signature character changed */
	PAY_PADDED,    /* payload part padded with '=' (signed as such) */
	PAY_STRAY,     /* payload part with a '+' (signed as such) */
	PAY_SPACE,     /* payload part with a space (signed as such) */
	PAY_BITS,      /* payload's last char with unused bits set (signed) */
	TWO_PARTS,     /* header.payload */
	FOUR_PARTS,    /* header.payload.sig.extra */
	RAW,           /* the payload field is the whole token */
};

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define ED "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}"
#define OKP "{\"sub\":\"alice\",\"exp\":1700003600}"

struct tcase {
	const char *name;
	enum keyset ks;
	enum how how;
	const char *hdr; /* NULL: HS or ED per how */
	const char *pay;
	const char *want; /* NULL: ok */
};

static const struct tcase cases[] = {
	/* accepted */
	{ "hs256 ok", K_ALL, SIGN_HS, NULL, OKP, NULL },
	{ "eddsa ok", K_ALL, SIGN_ED, NULL, OKP, NULL },
	{ "hs256 only ok", K_HS, SIGN_HS, NULL, OKP, NULL },
	{ "eddsa only ok", K_ED, SIGN_ED, NULL, OKP, NULL },
	{ "all claims", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"bob\",\"exp\":1700003600,\"nbf\":1699990000,\"iat\":1699990000,"
	  "\"iss\":\"x\",\"aud\":\"y\",\"channels\":[\"chat.*\"],\"publish\":[]}",
	  NULL },
	{ "exp fractional", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600.5}", NULL },
	{ "exp at skew edge", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1699999970}", NULL },
	{ "nbf at skew edge", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"nbf\":1700000030}", NULL },
	{ "iss and aud string", K_ISSAUD, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"iss\":\"https://idp.example\",\"aud\":\"wsrelay\"}",
	  NULL },
	{ "aud array", K_ISSAUD, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"wsrelay\"]}",
	  NULL },
	{ "unknown claims ignored", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"x\":{\"y\":[1,2]}}", NULL },
	{ "kid ignored", K_ALL, SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"k1\"}",
	  OKP, NULL },
	{ "sub at cap", K_ALL, SIGN_HS, NULL, NULL /* built */, NULL },

	/* expired */
	{ "exp past skew", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1699999969}", "token expired" },
	{ "exp long past", K_ALL, SIGN_ED, NULL, "{\"sub\":\"a\",\"exp\":0}",
	  "token expired" },
	{ "expired, wrong key", K_ALL, SIGN_HS_OTHER, NULL,
	  "{\"sub\":\"a\",\"exp\":1}", "invalid token" },

	/* algorithms */
	{ "alg none", K_ALL, SIGN_HS, "{\"alg\":\"none\"}", OKP,
	  "invalid token" },
	{ "alg none empty sig", K_ALL, SIG_EMPTY, "{\"alg\":\"none\"}", OKP,
	  "invalid token" },
	{ "alg HS512", K_ALL, SIGN_HS, "{\"alg\":\"HS512\"}", OKP,
	  "invalid token" },
	{ "alg RS256", K_ALL, SIGN_HS, "{\"alg\":\"RS256\"}", OKP,
	  "invalid token" },
	{ "alg hs256 lowercase", K_ALL, SIGN_HS, "{\"alg\":\"hs256\"}", OKP,
	  "invalid token" },
	{ "alg missing", K_ALL, SIGN_HS, "{\"typ\":\"JWT\"}", OKP,
	  "invalid token" },
	{ "alg not a string", K_ALL, SIGN_HS, "{\"alg\":256}", OKP,
	  "invalid token" },
	{ "hs256 not configured", K_ED, SIGN_HS, NULL, OKP, "invalid token" },
	{ "eddsa not configured", K_HS, SIGN_ED, NULL, OKP, "invalid token" },
	{ "no keys at all", K_NONE, SIGN_HS, NULL, OKP, "invalid token" },
	{ "crit header", K_ALL, SIGN_HS,
	  "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", OKP, "invalid token" },
	{ "hs256 header, eddsa sig", K_ALL, SIGN_ED, HS, OKP, "invalid token" },

	/* signatures */
	{ "hs256 wrong key", K_ALL, SIGN_HS_OTHER, NULL, OKP, "invalid token" },
	{ "eddsa wrong key", K_ALL, SIGN_ED_OTHER, NULL, OKP, "invalid token" },
	{ "hs256 sig 31 bytes", K_ALL, SIG_SHORT, NULL, OKP, "invalid token" },
	{ "hs256 sig 33 bytes", K_ALL, SIG_LONG, NULL, OKP, "invalid token" },
	{ "eddsa sig 63 bytes", K_ALL, ED_SIG_SHORT, NULL, OKP,
	  "invalid token" },
	{ "empty sig", K_ALL, SIG_EMPTY, NULL, OKP, "invalid token" },
	{ "sig flipped", K_ALL, SIG_FLIP, NULL, OKP, "invalid token" },

	/* base64url and form */
	{ "sig padded", K_ALL, SIG_PADDED, NULL, OKP, "invalid token" },
	{ "sig truncated", K_ALL, SIG_TRUNC, NULL, OKP, "invalid token" },
	{ "payload padded", K_ALL, PAY_PADDED, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600}", "invalid token" },
	{ "payload stray +", K_ALL, PAY_STRAY, NULL, OKP, "invalid token" },
	{ "payload space", K_ALL, PAY_SPACE, NULL, OKP, "invalid token" },
	{ "payload unused bits", K_ALL, PAY_BITS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600}", "invalid token" },
	{ "two parts", K_ALL, TWO_PARTS, NULL, OKP, "invalid token" },
	{ "four parts", K_ALL, FOUR_PARTS, NULL, OKP, "invalid token" },
	{ "empty token", K_ALL, RAW, NULL, "", "invalid token" },
	{ "dots only", K_ALL, RAW, NULL, "..", "invalid token" },
	{ "not base64", K_ALL, RAW, NULL, "a.b.c", "invalid token" },
	{ "too long", K_ALL, SIGN_HS, NULL, NULL /* built */, "invalid token" },
	{ "huge header", K_ALL, SIGN_HS, NULL /* built */, OKP,
	  "invalid token" },

	/* JSON */
	{ "header not json", K_ALL, SIGN_HS, "{alg:HS256}", OKP,
	  "invalid token" },
	{ "header array", K_ALL, SIGN_HS, "[\"HS256\"]", OKP, "invalid token" },
	{ "header dup alg", K_ALL, SIGN_HS,
	  "{\"alg\":\"none\",\"alg\":\"HS256\"}", OKP, "invalid token" },
	{ "payload not json", K_ALL, SIGN_HS, NULL, "{\"sub\":\"a\",",
	  "invalid token" },
	{ "payload string", K_ALL, SIGN_HS, NULL, "\"alice\"",
	  "invalid token" },
	{ "payload trailing junk", K_ALL, SIGN_HS, NULL, OKP "x",
	  "invalid token" },
	{ "payload dup sub", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"sub\":\"b\"}", "invalid token" },
	{ "payload dup exp", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1,\"exp\":1700003600}", "invalid token" },
	{ "payload nul escape", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"alice\\u0000bob\",\"exp\":1700003600}", "invalid token" },
	{ "payload invalid utf-8", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"\xc3\x28\",\"exp\":1700003600}", "invalid token" },

	/* claims */
	{ "sub missing", K_ALL, SIGN_HS, NULL, "{\"exp\":1700003600}",
	  "invalid token" },
	{ "sub empty", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"\",\"exp\":1700003600}", "invalid token" },
	{ "sub number", K_ALL, SIGN_HS, NULL, "{\"sub\":42,\"exp\":1700003600}",
	  "invalid token" },
	{ "sub null", K_ALL, SIGN_HS, NULL, "{\"sub\":null,\"exp\":1700003600}",
	  "invalid token" },
	{ "sub too long", K_ALL, SIGN_HS, NULL, NULL /* built */,
	  "invalid token" },
	{ "exp missing", K_ALL, SIGN_HS, NULL, "{\"sub\":\"a\"}",
	  "invalid token" },
	{ "exp string", K_ALL, SIGN_ED, NULL,
	  "{\"sub\":\"a\",\"exp\":\"1700003600\"}", "invalid token" },
	{ "exp negative", K_ALL, SIGN_HS, NULL, "{\"sub\":\"a\",\"exp\":-5}",
	  "invalid token" },
	{ "exp huge", K_ALL, SIGN_HS, NULL, "{\"sub\":\"a\",\"exp\":1e300}",
	  "invalid token" },
	{ "nbf future past skew", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"nbf\":1700000031}",
	  "invalid token" },
	{ "nbf string", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"nbf\":\"0\"}", "invalid token" },
	{ "iat string", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"iat\":true}", "invalid token" },
	{ "iss missing", K_ISSAUD, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"aud\":\"wsrelay\"}",
	  "invalid token" },
	{ "iss wrong", K_ISSAUD, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"iss\":\"https://evil\",\"aud\":\"wsrelay\"}",
	  "invalid token" },
	{ "aud missing", K_ISSAUD, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"iss\":\"https://idp.example\"}",
	  "invalid token" },
	{ "aud wrong", K_ISSAUD, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"iss\":\"https://idp.example\",\"aud\":\"other\"}",
	  "invalid token" },
	{ "aud array without it", K_ISSAUD, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"iss\":\"https://idp.example\",\"aud\":[\"x\",1]}",
	  "invalid token" },
	{ "channels string", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"channels\":\"chat.*\"}",
	  "invalid token" },
	{ "channels null", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"channels\":null}",
	  "invalid token" },
	{ "channels with number", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"channels\":[\"a\",1]}",
	  "invalid token" },
	{ "publish object", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"publish\":{}}",
	  "invalid token" },
	{ "publish nested array", K_ALL, SIGN_HS, NULL,
	  "{\"sub\":\"a\",\"exp\":1700003600,\"publish\":[[\"a\"]]}",
	  "invalid token" },
};

static size_t b64(const char *s, size_t n, char *out)
{
	return auth_b64url_encode((const uint8_t *)s, n, out);
}

/* Mints the token of @c into @tok (room for 64 KiB). */
static size_t mint(const struct tcase *c, const char *hdr, const char *pay,
		   char *tok)
{
	uint8_t sig[80];
	size_t n, slen = 0;
	char *p;

	if (c->how == RAW) {
		strcpy(tok, pay);
		return strlen(tok);
	}
	if (!hdr)
		hdr = (c->how == SIGN_ED || c->how == SIGN_ED_OTHER ||
		       c->how == ED_SIG_SHORT)
			      ? ED
			      : HS;
	n = b64(hdr, strlen(hdr), tok);
	tok[n++] = '.';
	p = tok + n;
	n += b64(pay, strlen(pay), p);
	switch (c->how) {
	case PAY_PADDED:
		tok[n++] = '=';
		break;
	case PAY_STRAY:
		memmove(p + 2, p + 1, strlen(p + 1) + 1);
		p[1] = '+';
		n++;
		break;
	case PAY_SPACE:
		memmove(p + 2, p + 1, strlen(p + 1) + 1);
		p[1] = ' ';
		n++;
		break;
	case PAY_BITS:
		/* the last character carries unused bits only when the
		 * length is not a multiple of 3: set the lowest */
		cr_assert_neq(strlen(pay) % 3, 0);
		{
			static const char abc[] =
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				"abcdefghijklmnopqrstuvwxyz"
				"0123456789-_";

			tok[n - 1] = abc[strchr(abc, tok[n - 1]) - abc + 1];
		}
		break;
	default:
		break;
	}
	tok[n] = '\0';
	if (c->how == TWO_PARTS)
		return n;
	switch (c->how) {
	case SIGN_ED:
	case ED_SIG_SHORT:
		crypto_sign_detached(sig, NULL, (uint8_t *)tok, n, ed_sk);
		slen = c->how == ED_SIG_SHORT ? 63 : 64;
		break;
	case SIGN_ED_OTHER:
		crypto_sign_detached(sig, NULL, (uint8_t *)tok, n, ed2_sk);
		slen = 64;
		break;
	case SIGN_HS_OTHER:
		auth_hs256((const uint8_t *)"other", 5, tok, n, sig);
		slen = 32;
		break;
	case SIG_EMPTY:
		slen = 0;
		break;
	default:
		auth_hs256((const uint8_t *)SECRET, strlen(SECRET), tok, n,
			   sig);
		slen = c->how == SIG_SHORT ? 31 : c->how == SIG_LONG ? 33 : 32;
		sig[32] = 0;
	}
	tok[n++] = '.';
	n += auth_b64url_encode(sig, slen, tok + n);
	switch (c->how) {
	case SIG_PADDED:
		tok[n++] = '=';
		break;
	case SIG_TRUNC:
		n--;
		break;
	case SIG_FLIP:
		tok[strrchr(tok, '.') - tok + 1] ^= 0x01;
		break;
	case FOUR_PARTS:
		memcpy(tok + n, ".AAAA", 5);
		n += 5;
		break;
	default:
		break;
	}
	tok[n] = '\0';
	return n;
}

static char *big_string(size_t n, char c)
{
	char *s = malloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

Test(auth, token_table, .init = setup, .fini = teardown)
{
	char *tok = malloc(65536), *fill;
	char buf[9000];

	cr_assert_geq(N(cases), 40);
	for (size_t i = 0; i < N(cases); i++) {
		const struct tcase *c = &cases[i];
		const char *hdr = c->hdr, *pay = c->pay, *r;
		struct auth_grant *g = (void *)1;
		size_t n;

		fill = NULL;
		if (!strcmp(c->name, "sub at cap") ||
		    !strcmp(c->name, "sub too long")) {
			size_t len = AUTH_SUB_MAX + (c->want ? 1 : 0);

			fill = big_string(len, 'u');
			snprintf(buf, sizeof(buf),
				 "{\"sub\":\"%s\",\"exp\":1700003600}", fill);
			pay = buf;
		} else if (!strcmp(c->name, "too long")) {
			fill = big_string(AUTH_TOKEN_MAX, 'x');
			snprintf(buf, sizeof(buf),
				 "{\"sub\":\"a\",\"exp\":1700003600,\"x\":\"%.*s\"}",
				 (int)(AUTH_TOKEN_MAX * 3 / 4 - 20), fill);
			pay = buf;
		} else if (!strcmp(c->name, "huge header")) {
			fill = big_string(AUTH_TOKEN_MAX, 'h');
			snprintf(buf, sizeof(buf),
				 "{\"alg\":\"HS256\",\"x\":\"%.*s\"}",
				 (int)AUTH_TOKEN_MAX - 20, fill);
			hdr = buf;
		}
		n = mint(c, hdr, pay, tok);
		r = auth_verify(keys[c->ks], tok, n, NOW, &g);
		if (!c->want) {
			cr_expect_null(r, "%s: got '%s'", c->name, r);
			cr_expect_not_null(g, "%s", c->name);
		} else {
			cr_expect(r && !strcmp(r, c->want),
				  "%s: want '%s', got '%s'", c->name, c->want,
				  r ? r : "ok");
			cr_expect_null(g, "%s: no grant on failure", c->name);
		}
		if (!r && g) {
			size_t ulen;
			const char *u = auth_grant_user(g, &ulen);

			cr_expect_gt(ulen, 0);
			cr_expect_eq(u[0], strstr(pay, "\"sub\":\"")[7]);
		}
		auth_grant_free(r ? NULL : g);
		free(fill);
	}
	free(tok);
}

Test(auth, grant_fields, .init = setup, .fini = teardown)
{
	static const struct tcase c = {
		"grant",
		K_ALL,
		SIGN_ED,
		NULL,
		"{\"sub\":\"carol\",\"exp\":1700001234.9,"
		"\"channels\":[\"chat.*\",\"news\"],\"publish\":[]}",
		NULL
	};
	char tok[1024];
	struct auth_grant *g;
	const char *u;
	size_t n = mint(&c, NULL, c.pay, tok), ulen;

	cr_assert_null(auth_verify(keys[K_ALL], tok, n, NOW, &g));
	u = auth_grant_user(g, &ulen);
	cr_expect_eq(ulen, 5);
	cr_expect(!memcmp(u, "carol", 5));
	cr_expect_eq(auth_grant_exp(g), 1700001234);
	cr_expect(auth_grant_may_subscribe(g, "chat.a", 6));
	cr_expect(auth_grant_may_subscribe(g, "chat.", 5));
	cr_expect(auth_grant_may_subscribe(g, "news", 4));
	cr_expect_not(auth_grant_may_subscribe(g, "news2", 5));
	cr_expect_not(auth_grant_may_subscribe(g, "chat", 4));
	cr_expect_not(auth_grant_may_publish(g, "news", 4)); /* empty list */
	cr_expect_lt(auth_grant_size(g), 128);
	auth_grant_free(g);

	/* absent lists allow everything */
	static const struct tcase d = {
		"open", K_ALL, SIGN_HS, NULL, OKP, NULL
	};
	n = mint(&d, NULL, d.pay, tok);
	cr_assert_null(auth_verify(keys[K_ALL], tok, n, NOW, &g));
	cr_expect(auth_grant_may_subscribe(g, "anything", 8));
	cr_expect(auth_grant_may_publish(g, "x", 1));
	auth_grant_free(g);
}

Test(auth, patterns)
{
	static const struct {
		const char *pat, *name;
		bool match;
	} t[] = {
		{ "chat", "chat", true },     { "chat", "chat2", false },
		{ "chat", "cha", false },     { "chat.*", "chat.x", true },
		{ "chat.*", "chat.", true },  { "chat.*", "chat", false },
		{ "chat.*", "chatx", false }, { "*", "anything", true },
		{ "*", "a", true },           { "a*b", "a*b", true },
		{ "a*b", "axb", false },      { "", "a", false },
		{ "news**", "news*x", true }, { "news**", "newsx", false },
	};

	for (size_t i = 0; i < N(t); i++)
		cr_expect_eq(auth_pattern_match(t[i].pat, strlen(t[i].pat),
						t[i].name, strlen(t[i].name)),
			     t[i].match, "%s ~ %s", t[i].pat, t[i].name);
}

Test(auth, b64url)
{
	static const struct {
		const char *in;
		long want; /* -1: refused */
	} t[] = {
		{ "", 0 },      { "QQ", 1 },    { "QUI", 2 },  { "QUJD", 3 },
		{ "Q", -1 },    { "QQ==", -1 }, { "QR", -1 },  { "QU+D", -1 },
		{ "QU/D", -1 }, { "QU D", -1 }, { "_-_-", 3 }, { "QUJ", -1 },
	};
	uint8_t out[16];

	for (size_t i = 0; i < N(t); i++)
		cr_expect_eq(auth_b64url_decode(t[i].in, strlen(t[i].in), out,
						sizeof(out)),
			     t[i].want, "%s", t[i].in);
	cr_expect_eq(auth_b64url_decode("QUJD", 4, out, 2), -1, "cap");
}

/* ---- key loading ---- */

static int try_load(const char *secret, const char *const *ed, size_t ned,
		    char *err)
{
	int lines[2] = { 12, 13 };
	struct auth_spec s = { .cfg_path = "node.toml",
			       .hs256_secret_file = secret,
			       .hs256_line = 4,
			       .ed25519_keys = ed,
			       .ed25519_lines = lines,
			       .ned25519 = ned };
	struct auth_keys *k = NULL;
	int rc = auth_keys_load(&s, &k, err, 256);

	cr_expect_eq(!rc, !!k);
	auth_keys_destroy(k);
	return rc;
}

Test(auth, keys_load)
{
	char path[64], err[256], tok[512];
	unsigned char pk[32], sk[64];
	char good[64], nopad[64];
	const char *ed[2];
	struct auth_keys *k;
	struct auth_grant *g;
	static const struct tcase c = { "k", K_HS, SIGN_HS, NULL, OKP, NULL };
	size_t n;

	cr_assert(sodium_init() >= 0);
	snprintf(path, sizeof(path), "/tmp/wr-auth-keys-%d", (int)getpid());

	/* empty, or only a newline: a config error naming file, line, key */
	write_file(path, "", 0);
	cr_expect_eq(try_load(path, NULL, 0, err), WR_EINVAL);
	cr_expect_str_eq(
		err,
		"node.toml:4: key 'auth.hs256_secret_file': the secret file is empty");
	write_file(path, "\n", 1);
	cr_expect_eq(try_load(path, NULL, 0, err), WR_EINVAL);
	unlink(path);
	cr_expect_eq(try_load(path, NULL, 0, err), WR_EIO);
	cr_expect(strstr(err,
			 "node.toml:4: key 'auth.hs256_secret_file': cannot read"),
		  "%s", err);

	/* one trailing newline stripped, no more: "SECRET\n\n" is SECRET\n */
	write_file(path, SECRET "\n\n", strlen(SECRET) + 2);
	{
		struct auth_spec s = { .cfg_path = "n",
				       .hs256_secret_file = path };

		cr_assert_eq(auth_keys_load(&s, &k, err, sizeof(err)), WR_OK);
		n = mint(&c, NULL, c.pay, tok);
		cr_expect_str_eq(auth_verify(k, tok, n, NOW, &g),
				 "invalid token");
		auth_keys_destroy(k);
		write_file(path, SECRET, strlen(SECRET));
		cr_assert_eq(auth_keys_load(&s, &k, err, sizeof(err)), WR_OK);
		cr_expect_null(auth_verify(k, tok, n, NOW, &g));
		auth_grant_free(g);
		auth_keys_destroy(k);
	}
	unlink(path);

	/* Ed25519 keys: padded or not, 32 bytes, else file:line of the key */
	crypto_sign_keypair(pk, sk);
	sodium_bin2base64(good, sizeof(good), pk, 32,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(nopad, sizeof(nopad), pk, 32,
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	ed[0] = good;
	ed[1] = nopad;
	cr_expect_eq(try_load(NULL, ed, 2, err), WR_OK, "%s", err);
	ed[1] = "AAAA";
	cr_expect_eq(try_load(NULL, ed, 2, err), WR_EINVAL);
	cr_expect_str_eq(
		err,
		"node.toml:13: key 'auth.ed25519_public_keys': not a base64 Ed25519 public key (32 bytes)");
	ed[0] = "not base64!";
	cr_expect_eq(try_load(NULL, ed, 1, err), WR_EINVAL);
	cr_expect(strstr(err, "node.toml:12:"), "%s", err);
	good[5] = '-'; /* base64url, not standard */
	ed[0] = good;
	cr_expect_eq(try_load(NULL, ed, 1, err), WR_EINVAL);

	/* the grant does not depend on the keys object (reload frees it) */
	write_file(path, SECRET, strlen(SECRET));
	{
		struct auth_spec s = { .cfg_path = "n",
				       .hs256_secret_file = path };

		cr_assert_eq(auth_keys_load(&s, &k, err, sizeof(err)), WR_OK);
		n = mint(&c, NULL, c.pay, tok);
		cr_assert_null(auth_verify(k, tok, n, NOW, &g));
		auth_keys_destroy(k);
		cr_expect_eq(auth_grant_exp(g), 1700003600);
		cr_expect(auth_grant_may_subscribe(g, "x", 1));
		auth_grant_free(g);
	}
	unlink(path);
}
