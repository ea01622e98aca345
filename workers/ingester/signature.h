/* signature.h: Stripe-Signature verification (Stripe's scheme, stripe-node
 * Webhooks.js): header "t=<unix seconds>,v1=<hex>[,v1=...][,v0=...]", each v1
 * an HMAC-SHA256 of "<t>.<raw body>" keyed with the endpoint secret; any v1
 * matching any configured secret (rotation) is accepted; t must be within the
 * tolerance of the receiver's clock in both directions. Unknown schemes are
 * ignored.
 */
#ifndef INGESTER_SIGNATURE_H
#define INGESTER_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#define SIGNATURE_MAX_V1 8        /* v1 entries kept; more is malformed */
#define SIGNATURE_HEADER_MAX 4096 /* longer headers are malformed */
#define SIGNATURE_MAX_SECRETS 8

typedef struct {
    int64_t t;
    size_t nv1;
    unsigned char v1[SIGNATURE_MAX_V1][32];
} signature_header;

typedef enum {
    SIGNATURE_OK = 0,
    SIGNATURE_MISSING,   /* no header */
    SIGNATURE_MALFORMED, /* not t=...,v1=... (no t, bad t, bad item, too long) */
    SIGNATURE_NO_V1,     /* well formed but no usable v1 entry (e.g. v0 only) */
    SIGNATURE_STALE,     /* t older than the tolerance */
    SIGNATURE_FUTURE,    /* t further ahead than the tolerance */
    SIGNATURE_MISMATCH   /* no v1 matches any secret */
} signature_result;

struct evp_mac_ctx_st; /* OpenSSL's EVP_MAC_CTX */

typedef struct {
    size_t count;
    char *secret[SIGNATURE_MAX_SECRETS];
    size_t len[SIGNATURE_MAX_SECRETS];
    /* HMAC-SHA256 contexts keyed once with each secret; a request works on
     * a copy (EVP_MAC_CTX_dup) instead of fetching the digest and keying
     * again. */
    struct evp_mac_ctx_st *mac[SIGNATURE_MAX_SECRETS];
} signature_secrets;

/* Short text for a result, used in the 400 body and logs. */
const char *signature_result_text(signature_result r);

/* Parses header bytes (not necessarily NUL-terminated). v1 entries that are
 * not 64 hex digits are skipped (they can never match). */
signature_result signature_parse(const char *hdr, size_t len, signature_header *out);

/* Comma-separated secrets (blanks around each trimmed, empty items refused);
 * also keys an HMAC context per secret. Returns 0, or -1 with a message
 * (never containing a secret). */
int signature_secrets_parse(const char *list, signature_secrets *out, char *err, size_t errlen);
void signature_secrets_free(signature_secrets *s);

/* Full check: parse, tolerance against now, then HMAC against each secret
 * compared in constant time. hdr may be NULL (missing). */
signature_result signature_verify(const char *hdr, const void *body, size_t body_len,
                                  const signature_secrets *secrets, int64_t now, int64_t tolerance);

/* Lower-case hex HMAC-SHA256 of "<t>.<body>" (65 bytes with the NUL); tests
 * and tools. Returns 0, or -1 on an OpenSSL failure. */
int signature_compute_hex(const char *secret, size_t secret_len, int64_t t, const void *body,
                          size_t body_len, char out[65]);

#endif
