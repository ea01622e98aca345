/* stripe.h: the Stripe API client every process that calls Stripe shares.
 *
 * - Requests: form-encoded bodies with bracket notation (metadata[invoice_id]),
 *   Authorization: Bearer, a pinned Stripe-Version, an Idempotency-Key on
 *   every POST, connect and total timeouts, TLS verification always on (only an
 *   http:// STRIPE_API_BASE on a loopback address may be plain, for tests).
 * - Answers: every answer is classified (stripe_classify, a pure function) as
 *   success, card error, invalid request, idempotency error, rate limited,
 *   server error or network error; Stripe-Should-Retry overrides the rule of
 *   thumb when present.
 * - Rate: at most max_rps requests start in any one-second window per client
 *   (a sliding window of start times), and stripe_perform_many runs many calls
 *   at once over curl multi, so throughput is bound by the cap, not latency.
 *
 * A client is used by one thread at a time.
 */
#ifndef LEDGERLINE_STRIPE_H
#define LEDGERLINE_STRIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ledgerline/metrics.h"

/* The API version every request pins (the fixtures' version). */
#define STRIPE_API_VERSION "2024-06-20"
#define STRIPE_ID_MAX 128

typedef enum {
    STRIPE_OK = 0,            /* 2xx */
    STRIPE_CARD_ERROR,        /* 402 card_error: a decline; a payment failure */
    STRIPE_INVALID_REQUEST,   /* 400/404 invalid_request_error, 401, 403: our bug or bad data */
    STRIPE_IDEMPOTENCY_ERROR, /* key reused with other parameters, or in flight (409) */
    STRIPE_RATE_LIMITED,      /* 429 (or 400 code rate_limit) */
    STRIPE_SERVER_ERROR,      /* 5xx */
    STRIPE_NETWORK_ERROR      /* no answer: connect failure, timeout, reset */
} stripe_outcome;

typedef struct {
    stripe_outcome outcome;
    long http_status;      /* 0 when there was no answer */
    bool retryable;        /* the same request (same key) may be sent again */
    char error_type[48];   /* error.type: card_error, api_error, ... */
    char code[64];         /* error.code */
    char decline_code[64]; /* error.decline_code */
    char message[512];     /* error.message, or the network error's text */
    char param[64];        /* error.param: the parameter Stripe objected to */
    char request_id[64];   /* Request-Id header */
    /* The object answered (or, for a card error, error.payment_intent). */
    char object_id[STRIPE_ID_MAX]; /* pi_..., re_..., dp_... */
    char object_status[32];        /* succeeded, processing, requires_payment_method ... */
    char latest_charge[STRIPE_ID_MAX];
    int64_t amount; /* the object's amount, -1 when absent */
    json_t *body;   /* the parsed body (owned; NULL when not JSON) */
} stripe_result;

/* Fills out from one answer: HTTP status, the Stripe-Should-Retry header
 * value (NULL when absent), the Request-Id header (NULL when absent) and the
 * body. status 0 = no answer (network error, net_error says why). Never
 * fails: an unparseable body is a server error when status >= 500, else an
 * invalid request. The caller frees with stripe_result_free. */
void stripe_classify(long status, const char *should_retry, const char *request_id,
                     const char *body, size_t len, const char *net_error, stripe_result *out);
void stripe_result_free(stripe_result *r);
const char *stripe_outcome_name(stripe_outcome o);
/* true for outcomes that are not the customer's or our fault and may pass
 * when sent again with the same idempotency key (rate limit, 5xx, network),
 * honouring Stripe-Should-Retry. */
bool stripe_result_transient(const stripe_result *r);

/* Form bodies: key/value pairs, percent-encoded at build time. */
typedef struct stripe_form stripe_form;
stripe_form *stripe_form_new(void);
/* Adds key=value (key may carry brackets: "metadata[invoice_id]"). 0 or -1. */
int stripe_form_add(stripe_form *f, const char *key, const char *value);
int stripe_form_add_i64(stripe_form *f, const char *key, int64_t value);
/* The encoded body ("a=1&b%5Bc%5D=2"); owned by the form. */
const char *stripe_form_body(const stripe_form *f);
void stripe_form_free(stripe_form *f);

typedef struct {
    const char *secret_key; /* STRIPE_SECRET_KEY */
    const char *api_base;   /* STRIPE_API_BASE, default https://api.stripe.com */
    int max_rps;            /* STRIPE_MAX_RPS, default 25 */
    int connect_timeout_ms; /* default 5000 */
    int timeout_ms;         /* whole request, default 30000 */
    int max_concurrency;    /* calls in flight in stripe_perform_many, default 256 */
    /* Optional: billing_stripe_requests_total{outcome} and
     * billing_stripe_request_seconds are recorded here (declared by the client). */
    metrics_registry *metrics;
} stripe_config;

typedef struct stripe_client stripe_client;

/* Reads STRIPE_SECRET_KEY (required), STRIPE_API_BASE, STRIPE_MAX_RPS into cfg
 * (pointers into the environment). Exits 2 naming the variable when one is
 * missing or malformed (config_die). */
void stripe_config_from_env(stripe_config *cfg);
/* Validates cfg (https, or http on 127.0.0.1 / localhost / [::1] only; a key;
 * max_rps >= 1). NULL with err on a bad setting. */
stripe_client *stripe_client_new(const stripe_config *cfg, char *err, size_t errlen);
void stripe_client_free(stripe_client *c);

/* One call for stripe_perform_many. method "GET" or "POST"; path starts with
 * "/v1/"; form may be NULL (GET: encoded as the query string). A POST must
 * carry an idempotency key. */
typedef struct {
    const char *method;
    const char *path;
    const stripe_form *form;
    const char *idempotency_key;
    stripe_result result; /* filled by the call */
    uint64_t latency_us;  /* filled by the call */
} stripe_call;

/* Runs n calls concurrently, each started within the rate cap. Every call's
 * result is filled (network errors included). Returns 0, or -1 when the
 * client cannot run at all (err). */
int stripe_perform_many(stripe_client *c, stripe_call *calls, size_t n, char *err, size_t errlen);
/* The streaming form of stripe_perform_many, for a caller that makes each
 * call ready just in time and records each answer as it comes (payments.c),
 * so that its own work overlaps the calls in flight instead of alternating
 * with them. next() is asked for a call whenever the cap and the
 * concurrency allow one more to start: it returns the call, or NULL with
 * *finished = true when no more will come (false: none is ready yet; asked
 * again within a few milliseconds). done() gets each call handed out once
 * its result is filled (calls refused before sending included), possibly
 * while others are in flight. Both run on the calling thread between
 * transfers, so they may take a few milliseconds (a database transaction)
 * but must not use this client. A call must stay valid until done() got
 * it. Returns 0 once every call handed out is done, or -1 (err) when the
 * client cannot run at all (the calls in flight are then done() with a
 * network error). */
typedef stripe_call *(*stripe_next_fn)(void *arg, bool *finished);
typedef void (*stripe_done_fn)(stripe_call *call, void *arg);
int stripe_perform_stream(stripe_client *c, stripe_next_fn next, stripe_done_fn done, void *arg,
                          char *err, size_t errlen);
/* One call (stripe_perform_many with n = 1). */
int stripe_perform(stripe_client *c, stripe_call *call, char *err, size_t errlen);

/* Counters since the client was created, for metrics and tests. */
typedef struct {
    uint64_t requests;
    uint64_t by_outcome[STRIPE_NETWORK_ERROR + 1];
    uint64_t latency_us_total;
    /* The most requests this client sent (by the time they went out on their
     * connection) within any one-second window: never above max_rps. */
    uint64_t max_sent_in_window;
} stripe_stats;
stripe_stats stripe_client_stats(const stripe_client *c);

/* true while Stripe refuses our key: the latest answer was 401 or 403
 * (rule 11.6: /readyz fails until an answer comes back with another
 * status). Safe to call from another thread. */
bool stripe_client_key_refused(const stripe_client *c);

/* ---- Request builders for the calls the system makes -------------------- */

/* POST /v1/payment_intents: confirm=true, off_session=true, amount, currency,
 * payment_method, customer (when given), metadata[invoice_id],
 * metadata[firm_id], metadata[attempt_key]. The caller frees with
 * stripe_form_free. */
stripe_form *stripe_form_payment_intent(int64_t amount, const char *currency, const char *customer,
                                        const char *payment_method, int64_t invoice_id,
                                        int64_t firm_id, const char *attempt_key);
/* POST /v1/refunds: payment_intent (or charge when pi is NULL), amount when >
 * 0, reason (Stripe's: duplicate, fraudulent, requested_by_customer),
 * metadata[invoice_id]. */
stripe_form *stripe_form_refund(const char *payment_intent, const char *charge, int64_t amount,
                                const char *reason, int64_t invoice_id);

#endif
