/* stripe_standin.h: internals of `stripe-standin`, the loopback stand-in for
 * the subset of Stripe's v1 API that ledgerline calls (see README.md here).
 *
 * Modules (each file owns one):
 *   main.c     command line, daemon start/stop, signals
 *   http.c     libmicrohttpd glue: request bodies, routing, response headers
 *   form.c     application/x-www-form-urlencoded decoding (bracket keys kept flat)
 *   fixtures.c loading the fixture files, random ids, clock
 *   store.c    the shared state (one mutex): recorded requests, idempotency
 *              entries, intents, charges, refunds, disputes, faults, stats
 *   api.c      the /v1 endpoints (bodies built from the fixture files)
 *   control.c  the /__standin/ test-control endpoints
 *
 * Everything the handlers share lives in one `ss_state` guarded by one mutex:
 * handlers are short CPU work, the only long wait (injected latency) happens
 * outside the lock, so one lock is simple and never the bottleneck. */
#ifndef LEDGERLINE_STRIPE_STANDIN_H
#define LEDGERLINE_STRIPE_STANDIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SS_API_VERSION "2024-06-20"
#define SS_MAX_BODY (1024 * 1024)
#define SS_IDEMPOTENCY_KEY_MAX 255

/* ---- fixtures.c -------------------------------------------------------- */

/* The fixture files every answer is built from (parsed once at start). */
typedef struct {
    json_t *pi_200;            /* api/payment_intent.create.200.json */
    json_t *pi_402_declined;   /* api/payment_intent.create.402.card_declined.json */
    json_t *pi_402_auth;       /* api/payment_intent.create.402.authentication_required.json */
    json_t *err_429;           /* api/error.429.json */
    json_t *err_500;           /* api/error.500.json */
    json_t *err_400_idem;      /* api/error.400.idempotency.json */
    json_t *dispute_200;       /* api/dispute.update.200.json */
    json_t *refund_200;        /* api/refund.create.200.json */
    json_t *evt_succeeded;     /* payment_intent.succeeded.json */
    json_t *evt_failed;        /* payment_intent.payment_failed.json */
} ss_fixtures;

/* Loads every file from dir; -1 with err naming the file on failure. */
int ss_fixtures_load(ss_fixtures *fx, const char *dir, char *err, size_t errlen);
void ss_fixtures_free(ss_fixtures *fx);
/* prefix + n random [A-Za-z0-9] into out (OpenSSL RAND_bytes; thread-safe). */
void ss_random_id(char *out, size_t outlen, const char *prefix, size_t n);
int64_t ss_now_unix(void);
uint64_t ss_now_mono_ns(void);

/* ---- form.c ------------------------------------------------------------ */

/* Decodes "a=1&b%5Bc%5D=x+y" into a flat JSON object of strings
 * ({"a":"1","b[c]":"x y"}); a repeated key keeps its last value. NULL when
 * the text is not valid form encoding (bad %-escape, NUL byte). */
json_t *ss_form_decode(const char *text, size_t len);
/* Parses a control body: JSON object when it starts with '{', else form. */
json_t *ss_body_object(const char *text, size_t len);
/* Collects "<prefix>[name]" keys of a flat form into {"name": value}. */
json_t *ss_form_sub(const json_t *flat, const char *prefix);

/* ---- answers ----------------------------------------------------------- */

typedef struct {
    int status;
    json_t *body;               /* owned */
    const char *should_retry;   /* "true" / "false" / NULL: Stripe-Should-Retry */
    char object_id[64];         /* the object answered, for the request log */
    /* Stripe stores an idempotent result only once the endpoint started
     * executing: validation failures and injected faults are not stored. */
    bool store;
    bool pi_created;            /* a PaymentIntent came into being (200 or 402) */
    bool pi_succeeded;          /* ... and its status is succeeded */
} ss_answer;

/* Stripe-shaped error body {"error":{"type","message"[,"code"][,"param"]}}. */
void ss_answer_error(ss_answer *a, int status, const char *type, const char *code,
                     const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ---- store.c ----------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    ss_fixtures fx;
    const char *api_key;        /* NULL: any sk_test_... */
    int latency_initial_ms;
    int latency_ms;

    uint64_t seq;
    json_t *records;            /* array of request records (GET /__standin/requests) */
    uint64_t *arrivals;         /* monotonic ns of every /v1 request, in order */
    size_t n_arrivals, cap_arrivals;
    int64_t in_flight, max_in_flight;

    json_t *idem;               /* key -> {method,path,params,state,status,body,should_retry} */
    json_t *intents;            /* pi id -> {"intent": object, "charge", "payment_method", "request_id", "idempotency_key"} */
    json_t *charges;            /* ch id -> {"payment_intent","amount","currency","status","refunded"} */
    json_t *refunds;            /* array of refund objects, oldest first */
    json_t *disputes;           /* dp id -> dispute object */
    json_t *decline_counts;     /* "<method>|<invoice_id>" -> declines answered so far */
    json_t *fail_once_seen;     /* "<method>|<key>" -> true: first failure already answered */

    int fault_status;           /* global fault injection (POST /__standin/fail) */
    int64_t fault_count;
    const char *fault_should_retry;

    int64_t pi_created, pi_succeeded, refunds_created, disputes_updated, replays;
} ss_state;

int ss_state_init(ss_state *st, const char *fixtures_dir, const char *api_key, int latency_ms,
                  char *err, size_t errlen);
void ss_state_free(ss_state *st);
/* Forgets every request, object, fault and counter (caller holds mu). */
void ss_state_reset_locked(ss_state *st);
/* The most /v1 requests that arrived within any one second (caller holds mu). */
int64_t ss_state_max_per_second_locked(const ss_state *st);

/* ---- api.c ------------------------------------------------------------- */

typedef struct {
    const char *method;
    const char *path;           /* decoded path, no query */
    const char *query;          /* raw query string ("" when none) */
    const char *body;
    size_t body_len;
    const char *authorization;  /* header values or NULL */
    const char *idempotency_key;
    const char *stripe_version;
    char request_id[32];        /* Request-Id of the answer (set by the caller) */
} ss_request;

typedef struct {
    ss_answer a;
    bool replayed;
    char *body_text;            /* the bytes to send (malloc); a replay's are the
                                 * exact bytes stored with the first answer */
} ss_result;

/* Handles one /v1 request end to end: records it, checks auth, faults and
 * idempotency, sleeps the injected latency, runs the endpoint. */
void ss_api_handle(ss_state *st, const ss_request *rq, ss_result *out);

/* Moves a processing intent to succeeded/failed and builds the webhook
 * event envelope (caller holds mu). status 200 with the event, or an error. */
void ss_api_complete_locked(ss_state *st, const char *pi, const char *outcome, ss_answer *a);
/* Seeds a refund of a charge the stand-in did not create (caller holds mu). */
void ss_api_seed_refund_locked(ss_state *st, const json_t *req, ss_answer *a);

/* ---- http.c ------------------------------------------------------------ */

struct MHD_Daemon;
struct sockaddr_in;
/* Starts serving on addr (thread per connection, so a handler sleeping for
 * the injected latency never holds up another). NULL with err on failure. */
struct MHD_Daemon *ss_http_start(ss_state *st, const struct sockaddr_in *addr, char *err,
                                 size_t errlen);
/* The port actually bound (for --listen ...:0). */
int ss_http_port(struct MHD_Daemon *d);

/* ---- control.c --------------------------------------------------------- */

/* Handles one /__standin/ request (no auth, no latency, not recorded). */
void ss_control_handle(ss_state *st, const ss_request *rq, ss_answer *a);

#endif
