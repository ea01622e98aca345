/* signature.c: Stripe-Signature parsing and HMAC-SHA256 verification
 * (signature.h). OpenSSL's EVP_MAC does the HMAC, from a context keyed once
 * per secret and copied per request; CRYPTO_memcmp compares. */
#include "signature.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "ledgerline/failf.h"

const char *signature_result_text(signature_result r)
{
    switch (r) {
    case SIGNATURE_OK: return "ok";
    case SIGNATURE_MISSING: return "missing Stripe-Signature header";
    case SIGNATURE_MALFORMED: return "malformed Stripe-Signature header";
    case SIGNATURE_NO_V1: return "no v1 signature in Stripe-Signature header";
    case SIGNATURE_STALE: return "signature timestamp outside the tolerance (too old)";
    case SIGNATURE_FUTURE: return "signature timestamp outside the tolerance (in the future)";
    case SIGNATURE_MISMATCH: return "no signature matches the expected signature";
    }
    return "invalid signature";
}

static bool signature_is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int signature_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Strict non-negative decimal, at most 18 digits (no overflow possible). */
static bool signature_parse_ts(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

signature_result signature_parse(const char *hdr, size_t len, signature_header *out)
{
    memset(out, 0, sizeof *out);
    if (hdr == NULL)
        return SIGNATURE_MISSING;
    if (len == 0 || len > SIGNATURE_HEADER_MAX)
        return SIGNATURE_MALFORMED;
    bool have_t = false;
    size_t pos = 0;
    while (pos <= len) {
        size_t end = pos;
        while (end < len && hdr[end] != ',')
            end++;
        size_t a = pos, b = end;
        while (a < b && signature_is_space(hdr[a]))
            a++;
        while (b > a && signature_is_space(hdr[b - 1]))
            b--;
        if (a == b)
            return SIGNATURE_MALFORMED; /* empty item */
        const char *eq = memchr(hdr + a, '=', b - a);
        if (eq == NULL || eq == hdr + a)
            return SIGNATURE_MALFORMED;
        size_t klen = (size_t)(eq - (hdr + a));
        const char *val = eq + 1;
        size_t vlen = (size_t)(hdr + b - val);
        for (size_t i = a; i < b; i++)
            if ((unsigned char)hdr[i] < 0x21 || (unsigned char)hdr[i] > 0x7e)
                return SIGNATURE_MALFORMED; /* controls, blanks inside, non-ASCII */
        if (klen == 1 && hdr[a] == 't') {
            if (have_t || !signature_parse_ts(val, vlen, &out->t))
                return SIGNATURE_MALFORMED;
            have_t = true;
        } else if (klen == 2 && hdr[a] == 'v' && hdr[a + 1] == '1') {
            if (vlen == 64) {
                unsigned char d[32];
                bool ok = true;
                for (size_t i = 0; i < 32 && ok; i++) {
                    int hi = signature_hexval(val[2 * i]), lo = signature_hexval(val[2 * i + 1]);
                    ok = hi >= 0 && lo >= 0;
                    if (ok)
                        d[i] = (unsigned char)((unsigned)hi << 4 | (unsigned)lo);
                }
                if (ok) {
                    if (out->nv1 == SIGNATURE_MAX_V1)
                        return SIGNATURE_MALFORMED;
                    memcpy(out->v1[out->nv1++], d, 32);
                }
            }
        }
        /* Any other scheme (v0, future ones) is ignored, as Stripe says. */
        pos = end + 1;
    }
    if (!have_t)
        return SIGNATURE_MALFORMED;
    return out->nv1 == 0 ? SIGNATURE_NO_V1 : SIGNATURE_OK;
}

/* Fetching an algorithm takes locks and a lookup: do it once per process
 * (OpenSSL frees it at exit). */
static pthread_once_t signature_mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *signature_mac;

static void signature_mac_fetch(void)
{
    signature_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* A new HMAC-SHA256 context keyed with secret, or NULL. */
static EVP_MAC_CTX *signature_mac_keyed(const char *secret, size_t secret_len)
{
    pthread_once(&signature_mac_once, signature_mac_fetch);
    if (signature_mac == NULL)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(signature_mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (ctx != NULL && EVP_MAC_init(ctx, (const unsigned char *)secret, secret_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* HMAC of "<t>.<body>" on a copy of the keyed context (keyed stays as it
 * is, so threads can share it). */
static int signature_hmac_ctx(const EVP_MAC_CTX *keyed, int64_t t, const void *body,
                              size_t body_len, unsigned char out[32])
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
    if (plen < 0 || (size_t)plen >= sizeof prefix || keyed == NULL)
        return -1;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(keyed);
    int rc = -1;
    size_t outl = 0;
    if (ctx != NULL && EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)plen) == 1 &&
        (body_len == 0 || EVP_MAC_update(ctx, body, body_len) == 1) &&
        EVP_MAC_final(ctx, out, &outl, 32) == 1 && outl == 32)
        rc = 0;
    EVP_MAC_CTX_free(ctx);
    return rc;
}

static int signature_hmac(const char *secret, size_t secret_len, int64_t t, const void *body,
                          size_t body_len, unsigned char out[32])
{
    EVP_MAC_CTX *keyed = signature_mac_keyed(secret, secret_len);
    int rc = signature_hmac_ctx(keyed, t, body, body_len, out);
    EVP_MAC_CTX_free(keyed);
    return rc;
}

int signature_secrets_parse(const char *list, signature_secrets *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (list == NULL) {
        ll_failf(err, errlen, "STRIPE_WEBHOOK_SECRET is required but not set");
        return -1;
    }
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *a = p, *b = p + n;
        while (a < b && signature_is_space(*a))
            a++;
        while (b > a && signature_is_space(b[-1]))
            b--;
        if (a == b) {
            ll_failf(err, errlen,
                     "STRIPE_WEBHOOK_SECRET has an empty entry "
                     "(expected whsec_... secrets separated by commas)");
            goto fail;
        }
        if (out->count == SIGNATURE_MAX_SECRETS) {
            ll_failf(err, errlen, "STRIPE_WEBHOOK_SECRET has more than %d secrets",
                     SIGNATURE_MAX_SECRETS);
            goto fail;
        }
        out->secret[out->count] = strndup(a, (size_t)(b - a));
        if (out->secret[out->count] == NULL) {
            ll_failf(err, errlen, "could not read STRIPE_WEBHOOK_SECRET: out of memory");
            goto fail;
        }
        out->len[out->count] = (size_t)(b - a);
        out->mac[out->count] = signature_mac_keyed(out->secret[out->count], out->len[out->count]);
        if (out->mac[out->count] == NULL) {
            OPENSSL_cleanse(out->secret[out->count], out->len[out->count]);
            free(out->secret[out->count]);
            out->secret[out->count] = NULL;
            ll_failf(err, errlen, "could not set up HMAC-SHA256: OpenSSL refused the key");
            goto fail;
        }
        out->count++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
fail:
    signature_secrets_free(out);
    return -1;
}

void signature_secrets_free(signature_secrets *s)
{
    for (size_t i = 0; i < s->count; i++) {
        OPENSSL_cleanse(s->secret[i], s->len[i]);
        free(s->secret[i]);
        EVP_MAC_CTX_free(s->mac[i]);
    }
    memset(s, 0, sizeof *s);
}

int signature_compute_hex(const char *secret, size_t secret_len, int64_t t, const void *body,
                          size_t body_len, char out[65])
{
    unsigned char d[32];
    if (signature_hmac(secret, secret_len, t, body, body_len, d) != 0)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 0xf];
    }
    out[64] = '\0';
    return 0;
}

signature_result signature_verify(const char *hdr, const void *body, size_t body_len,
                                  const signature_secrets *secrets, int64_t now, int64_t tolerance)
{
    signature_header h;
    signature_result r = signature_parse(hdr, hdr ? strlen(hdr) : 0, &h);
    if (r != SIGNATURE_OK)
        return r;
    /* t <= 10^18 and now is a real clock, so these cannot overflow. */
    if (h.t < now - tolerance)
        return SIGNATURE_STALE;
    if (h.t > now + tolerance)
        return SIGNATURE_FUTURE;
    bool match = false;
    for (size_t s = 0; s < secrets->count; s++) {
        unsigned char d[32];
        int hrc = secrets->mac[s] != NULL
                      ? signature_hmac_ctx(secrets->mac[s], h.t, body, body_len, d)
                      : signature_hmac(secrets->secret[s], secrets->len[s], h.t, body, body_len, d);
        if (hrc != 0)
            continue;
        /* Every entry is compared, so timing says nothing about which. */
        for (size_t i = 0; i < h.nv1; i++)
            match |= CRYPTO_memcmp(d, h.v1[i], 32) == 0;
        OPENSSL_cleanse(d, sizeof d);
    }
    return match ? SIGNATURE_OK : SIGNATURE_MISMATCH;
}
