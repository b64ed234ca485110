/*
 * auth/auth: compact JWT verification. The token is split, its header
 * decoded first (the algorithm picks the key), the signature checked over
 * the raw "header.payload" bytes, and only then the payload's claims
 * read. Every failure is "invalid token" but an exp more than 30 s past.
 * cJSON trees never outlive auth_verify().
 */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "auth.h"

#define ED_KEY_LEN 32
#define ED_SIG_LEN 64
#define HS_SIG_LEN 32
/* the largest NumericDate taken: beyond it a double loses seconds */
#define MAX_DATE 9007199254740991.0

struct auth_keys {
	uint8_t *hs256; /* NULL: HS256 not accepted */
	size_t hs256_len;
	uint8_t (*ed)[ED_KEY_LEN]; /* NULL: EdDSA not accepted */
	size_t ned;
	char *issuer, *audience; /* NULL: not checked */
};

/*
 * The grant: exp, the user, then each list as (u16 length, bytes) runs.
 * nsub / npub are -1 for an absent list.
 */
struct auth_grant {
	int64_t exp;
	uint32_t size;     /* of the whole allocation */
	uint16_t user_len; /* <= AUTH_SUB_MAX */
	int16_t nsub, npub;
	uint32_t sub_off, pub_off; /* into data */
	unsigned char data[];
};

/* ------------------------------------------------------------------ */
/* base64url                                                           */

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long auth_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;

	if (len % 4 == 1)
		return -1; /* no byte ends there: truncated */
	if ((len / 4) * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_val((unsigned char)in[i]);

		if (v < 0)
			return -1; /* padding, whitespace, '+', '/', ... */
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc)
		return -1; /* unused bits set: not the canonical encoding */
	return (long)n;
}

size_t auth_b64url_encode(const uint8_t *in, size_t n, char *out)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
			     in[i + 2];

		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		out[o++] = abc[in[i] >> 2];
		out[o++] = abc[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		out[o++] = abc[v >> 10];
		out[o++] = abc[(v >> 4) & 63];
		out[o++] = abc[(v & 15) << 2];
	}
	out[o] = '\0';
	return o;
}

int auth_hs256(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
	       uint8_t mac[32])
{
	unsigned int outlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, mac, &outlen) ||
	    outlen != 32)
		return WR_EIO;
	return WR_OK;
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "PATH:LINE: key 'auth.KEY': " */
static int keys_bad(const struct auth_spec *s, int line, const char *key,
		    char *err, size_t errlen, const char *what, int rc)
{
	char at[32] = "";

	if (line > 0)
		snprintf(at, sizeof(at), ":%d", line);
	set_err(err, errlen, "%s%s: key 'auth.%s': %s",
		s->cfg_path ? s->cfg_path : "<config>", at, key, what);
	return rc;
}

/* Standard base64 (RFC 4648 section 4), padded or not, of exactly 32
 * bytes. Returns 0 or -1. */
static int ed_key_decode(const char *s, uint8_t out[ED_KEY_LEN])
{
	uint8_t tmp[ED_KEY_LEN + 3];
	size_t len = strlen(s), got = 0;
	const char *end = NULL;

	if (sodium_base642bin(tmp, sizeof(tmp), s, len, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    end == s + len && got == ED_KEY_LEN) {
		memcpy(out, tmp, ED_KEY_LEN);
		return 0;
	}
	if (sodium_base642bin(tmp, sizeof(tmp), s, len, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 &&
	    end == s + len && got == ED_KEY_LEN) {
		memcpy(out, tmp, ED_KEY_LEN);
		return 0;
	}
	return -1;
}

/* The secret file: raw bytes, one trailing "\n" (or "\r\n") stripped. */
static int read_secret(const struct auth_spec *s, struct auth_keys *k,
		       char *err, size_t errlen)
{
	char what[320];
	FILE *f = fopen(s->hs256_secret_file, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = WR_OK;

	if (!f) {
		snprintf(what, sizeof(what), "cannot read '%.200s': %s",
			 s->hs256_secret_file, strerror(errno));
		return keys_bad(s, s->hs256_line, "hs256_secret_file", err,
				errlen, what, WR_EIO);
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *nb;

			if (cap >= 65536) {
				rc = keys_bad(s, s->hs256_line,
					      "hs256_secret_file", err, errlen,
					      "file too large (limit 64 KiB)",
					      WR_EINVAL);
				goto out;
			}
			nb = sodium_malloc(cap ? cap * 2 : 256);
			if (!nb) {
				rc = keys_bad(s, s->hs256_line,
					      "hs256_secret_file", err, errlen,
					      "out of memory", WR_ENOMEM);
				goto out;
			}
			if (buf) {
				memcpy(nb, buf, len);
				sodium_free(buf);
			}
			buf = nb;
			cap = cap ? cap * 2 : 256;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		rc = keys_bad(s, s->hs256_line, "hs256_secret_file", err,
			      errlen, "read error", WR_EIO);
		goto out;
	}
	if (len && buf[len - 1] == '\n') {
		len--;
		if (len && buf[len - 1] == '\r')
			len--;
	}
	if (!len) {
		rc = keys_bad(s, s->hs256_line, "hs256_secret_file", err,
			      errlen, "the secret file is empty", WR_EINVAL);
		goto out;
	}
	k->hs256 = buf;
	k->hs256_len = len;
	buf = NULL;
out:
	if (buf)
		sodium_free(buf); /* wipes it */
	fclose(f);
	return rc;
}

int auth_keys_load(const struct auth_spec *s, struct auth_keys **out, char *err,
		   size_t errlen)
{
	struct auth_keys *k;
	int rc = WR_ENOMEM;

	*out = NULL;
	if (sodium_init() < 0)
		return keys_bad(s, 0, "ed25519_public_keys", err, errlen,
				"libsodium failed to initialise", WR_EIO);
	k = calloc(1, sizeof(*k));
	if (!k)
		goto oom;
	if (s->hs256_secret_file) {
		rc = read_secret(s, k, err, errlen);
		if (rc)
			goto fail;
	}
	if (s->ned25519) {
		k->ed = calloc(s->ned25519, sizeof(*k->ed));
		if (!k->ed)
			goto oom;
		k->ned = s->ned25519;
		for (size_t i = 0; i < s->ned25519; i++) {
			if (ed_key_decode(s->ed25519_keys[i], k->ed[i]) == 0)
				continue;
			rc = keys_bad(s,
				      s->ed25519_lines ? s->ed25519_lines[i]
						       : 0,
				      "ed25519_public_keys", err, errlen,
				      "not a base64 Ed25519 public key (32 bytes)",
				      WR_EINVAL);
			goto fail;
		}
	}
	if (s->issuer && !(k->issuer = strdup(s->issuer)))
		goto oom;
	if (s->audience && !(k->audience = strdup(s->audience)))
		goto oom;
	*out = k;
	return WR_OK;
oom:
	rc = WR_ENOMEM;
	set_err(err, errlen, "%s: out of memory",
		s->cfg_path ? s->cfg_path : "<config>");
fail:
	auth_keys_destroy(k);
	return rc;
}

void auth_keys_destroy(struct auth_keys *k)
{
	if (!k)
		return;
	if (k->hs256)
		sodium_free(k->hs256);
	free(k->ed);
	free(k->issuer);
	free(k->audience);
	free(k);
}

bool auth_keys_any(const struct auth_keys *k)
{
	return k && (k->hs256 || k->ned);
}

/* ------------------------------------------------------------------ */
/* verification                                                        */

/* No two members of the object @o share a key. */
static bool keys_unique(const cJSON *o)
{
	for (const cJSON *a = o->child; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (!strcmp(a->string, b->string))
				return false;
	return true;
}

/*
 * Decodes one base64url part into a JSON object. The text must be valid
 * UTF-8 without "\u0000" (cJSON would cut a string there, so a signed
 * "sub" could read as another one), and its top-level keys unique.
 */
static cJSON *part_json(const char *p, size_t len)
{
	uint8_t *buf;
	long n;
	cJSON *j = NULL;
	const char *end = NULL;

	buf = malloc(len + 1);
	if (!buf)
		return NULL;
	n = auth_b64url_decode(p, len, buf, len);
	if (n <= 0 || !wr_utf8_valid(buf, (size_t)n))
		goto out;
	for (long i = 0; i + 6 <= n; i++)
		if (buf[i] == '\\' && buf[i + 1] == 'u' &&
		    !memcmp(buf + i + 2, "0000", 4))
			goto out;
	buf[n] = '\0';
	j = cJSON_ParseWithLengthOpts((const char *)buf, (size_t)n, &end, 0);
	if (!j)
		goto out;
	/* nothing but whitespace after the value */
	while (end < (const char *)buf + n &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end != (const char *)buf + n || !cJSON_IsObject(j) ||
	    !keys_unique(j)) {
		cJSON_Delete(j);
		j = NULL;
	}
out:
	free(buf);
	return j;
}

static bool check_sig(const struct auth_keys *k, const char *alg,
		      const char *input, size_t ilen, const char *sig64,
		      size_t slen)
{
	uint8_t sig[ED_SIG_LEN + 3];
	long n = auth_b64url_decode(sig64, slen, sig, sizeof(sig));

	if (!strcmp(alg, "HS256") && k->hs256) {
		uint8_t mac[HS_SIG_LEN];
		bool ok;

		if (n != HS_SIG_LEN ||
		    auth_hs256(k->hs256, k->hs256_len, input, ilen, mac))
			return false;
		ok = CRYPTO_memcmp(mac, sig, HS_SIG_LEN) == 0;
		OPENSSL_cleanse(mac, sizeof(mac));
		return ok;
	}
	if (!strcmp(alg, "EdDSA") && k->ned) {
		if (n != ED_SIG_LEN)
			return false;
		for (size_t i = 0; i < k->ned; i++)
			if (!crypto_sign_verify_detached(sig,
							 (const unsigned char *)
								 input,
							 ilen, k->ed[i]))
				return true;
		return false;
	}
	return false; /* none, HS512, RS256, an unconfigured one, ... */
}

/* A NumericDate: a finite number in [0, 2^53). */
static bool date_of(const cJSON *v, double *out)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble < 0 || v->valuedouble >= MAX_DATE)
		return false;
	*out = floor(v->valuedouble);
	return true;
}

/* A pattern list: absent (-1), or an array of strings; its bytes counted
 * into *@bytes. False on any other type. */
static bool list_of(const cJSON *v, int *count, size_t *bytes)
{
	int n = 0;

	if (!v) {
		*count = -1;
		return true;
	}
	if (!cJSON_IsArray(v))
		return false;
	for (const cJSON *e = v->child; e; e = e->next) {
		size_t l;

		if (!cJSON_IsString(e))
			return false;
		l = strlen(e->valuestring);
		if (l > UINT16_MAX || n >= INT16_MAX)
			return false;
		*bytes += 2 + l;
		n++;
	}
	*count = n;
	return true;
}

static size_t put_list(unsigned char *d, const cJSON *v)
{
	size_t o = 0;

	for (const cJSON *e = v ? v->child : NULL; e; e = e->next) {
		size_t l = strlen(e->valuestring);

		d[o] = (unsigned char)(l >> 8);
		d[o + 1] = (unsigned char)l;
		memcpy(d + o + 2, e->valuestring, l);
		o += 2 + l;
	}
	return o;
}

/* aud: the configured value, or an array of strings holding it. */
static bool aud_ok(const cJSON *aud, const char *want)
{
	if (cJSON_IsString(aud))
		return !strcmp(aud->valuestring, want);
	if (!cJSON_IsArray(aud))
		return false;
	for (const cJSON *e = aud->child; e; e = e->next)
		if (cJSON_IsString(e) && !strcmp(e->valuestring, want))
			return true;
	return false;
}

static const char *claims(const struct auth_keys *k, const cJSON *p,
			  int64_t now_s, struct auth_grant **out)
{
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(p, "sub");
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(p, "channels");
	const cJSON *pubs = cJSON_GetObjectItemCaseSensitive(p, "publish");
	const cJSON *v;
	struct auth_grant *g;
	double exp, nbf, iat;
	size_t ulen, bytes = 0, o;
	int nsub, npub;

	if (!cJSON_IsString(sub))
		return AUTH_INVALID;
	ulen = strlen(sub->valuestring);
	if (!ulen || ulen > AUTH_SUB_MAX)
		return AUTH_INVALID;
	if (!date_of(cJSON_GetObjectItemCaseSensitive(p, "exp"), &exp))
		return AUTH_INVALID;
	v = cJSON_GetObjectItemCaseSensitive(p, "nbf");
	if (v && !date_of(v, &nbf))
		return AUTH_INVALID;
	if (v && nbf > (double)now_s + AUTH_SKEW_S)
		return AUTH_INVALID; /* not yet valid */
	v = cJSON_GetObjectItemCaseSensitive(p, "iat");
	if (v && !date_of(v, &iat))
		return AUTH_INVALID;
	if (k->issuer) {
		v = cJSON_GetObjectItemCaseSensitive(p, "iss");
		if (!cJSON_IsString(v) || strcmp(v->valuestring, k->issuer))
			return AUTH_INVALID;
	}
	if (k->audience &&
	    !aud_ok(cJSON_GetObjectItemCaseSensitive(p, "aud"), k->audience))
		return AUTH_INVALID;
	if (!list_of(chans, &nsub, &bytes) || !list_of(pubs, &npub, &bytes))
		return AUTH_INVALID;
	if (exp + AUTH_SKEW_S < (double)now_s)
		return AUTH_EXPIRED;

	g = malloc(sizeof(*g) + ulen + bytes);
	if (!g)
		return AUTH_INVALID;
	g->exp = (int64_t)exp;
	g->size = (uint32_t)(sizeof(*g) + ulen + bytes);
	g->user_len = (uint16_t)ulen;
	g->nsub = (int16_t)nsub;
	g->npub = (int16_t)npub;
	memcpy(g->data, sub->valuestring, ulen);
	o = ulen;
	g->sub_off = (uint32_t)o;
	o += put_list(g->data + o, chans);
	g->pub_off = (uint32_t)o;
	put_list(g->data + o, pubs);
	*out = g;
	return NULL;
}

const char *auth_verify(const struct auth_keys *k, const char *token,
			size_t len, int64_t now_s, struct auth_grant **out)
{
	const char *d1, *d2, *reason = AUTH_INVALID;
	cJSON *hdr = NULL, *pay = NULL;
	const cJSON *alg;

	*out = NULL;
	if (!k || !token || !len || len > AUTH_TOKEN_MAX)
		return AUTH_INVALID;
	d1 = memchr(token, '.', len);
	if (!d1)
		return AUTH_INVALID;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return AUTH_INVALID;
	if (d1 == token || d2 == d1 + 1 || d2 + 1 == token + len)
		return AUTH_INVALID; /* an empty part: "alg":"none" style */

	hdr = part_json(token, (size_t)(d1 - token));
	if (!hdr)
		goto out;
	alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
	if (!cJSON_IsString(alg))
		goto out;
	/* extensions we do not implement must not be ignored (RFC 7515) */
	if (cJSON_GetObjectItemCaseSensitive(hdr, "crit"))
		goto out;
	if (!check_sig(k, alg->valuestring, token, (size_t)(d2 - token), d2 + 1,
		       (size_t)(token + len - (d2 + 1))))
		goto out;
	pay = part_json(d1 + 1, (size_t)(d2 - (d1 + 1)));
	if (!pay)
		goto out;
	reason = claims(k, pay, now_s, out);
out:
	cJSON_Delete(hdr);
	cJSON_Delete(pay);
	return reason;
}

void auth_grant_free(struct auth_grant *g)
{
	free(g);
}

const char *auth_grant_user(const struct auth_grant *g, size_t *len)
{
	*len = g->user_len;
	return (const char *)g->data;
}

int64_t auth_grant_exp(const struct auth_grant *g)
{
	return g->exp;
}

size_t auth_grant_size(const struct auth_grant *g)
{
	return g->size;
}

bool auth_pattern_match(const char *pat, size_t plen, const char *name,
			size_t nlen)
{
	if (plen && pat[plen - 1] == '*')
		return nlen >= plen - 1 && !memcmp(pat, name, plen - 1);
	return plen == nlen && !memcmp(pat, name, nlen);
}

static bool list_allows(const unsigned char *d, int n, const char *name,
			size_t len)
{
	if (n < 0)
		return true; /* absent: everything */
	for (int i = 0; i < n; i++) {
		size_t l = (size_t)d[0] << 8 | d[1];

		if (auth_pattern_match((const char *)d + 2, l, name, len))
			return true;
		d += 2 + l;
	}
	return false;
}

bool auth_grant_may_subscribe(const struct auth_grant *g, const char *name,
			      size_t len)
{
	return list_allows(g->data + g->sub_off, g->nsub, name, len);
}

bool auth_grant_may_publish(const struct auth_grant *g, const char *name,
			    size_t len)
{
	return list_allows(g->data + g->pub_off, g->npub, name, len);
}
