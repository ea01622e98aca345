/* stripe_standin.h: internals of `stripe-standin`, the loopback stand-in for
 * the subset of Stripe's v1 API that ledgerline calls (see README.md here).
 *
 * Modules (each file owns one):
 *   main.c     command line, daemon start/stop, signals
 *   http.c     libmicrohttpd glue: request bodies, routing, response headers
 *   form.c     application/x-www-form-urlencoded decoding (bracket keys kept flat)
 *   fixtures.c loading the fixture files, random ids, the real clocks
 *   store.c    the shared state (one mutex): recorded requests, idempotency
 *              entries, intents, charges, refunds, disputes, faults, stats,
 *              and the stand-in's movable clock
 *   api.c      the request pipeline (auth, faults, idempotency, latency),
 *              routing, and the PaymentIntent endpoints
 *   refunds.c  the Refund endpoints and refund state changes
 *   disputes.c the Dispute endpoints, opening and closing disputes
 *   lists.c    Stripe's list paging (created filters, cursors) and the
 *              Search query subset
 *   events.c   the log of webhook events Stripe would send, and the Charge
 *              objects those events carry
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
    json_t *pi_200;           /* api/payment_intent.create.200.json */
    json_t *pi_402_declined;  /* api/payment_intent.create.402.card_declined.json */
    json_t *pi_402_auth;      /* api/payment_intent.create.402.authentication_required.json */
    json_t *err_429;          /* api/error.429.json */
    json_t *err_500;          /* api/error.500.json */
    json_t *err_400_idem;     /* api/error.400.idempotency.json */
    json_t *dispute_200;      /* api/dispute.update.200.json */
    json_t *refund_200;       /* api/refund.create.200.json */
    json_t *evt_succeeded;    /* payment_intent.succeeded.json */
    json_t *evt_failed;       /* payment_intent.payment_failed.json */
    json_t *evt_refunded;     /* charge.refunded.json */
    json_t *evt_dp_created;   /* charge.dispute.created.json */
    json_t *evt_dp_updated;   /* charge.dispute.updated.json */
    json_t *evt_dp_withdrawn; /* charge.dispute.funds_withdrawn.json */
    json_t *evt_dp_won;       /* charge.dispute.closed.won.json */
    json_t *evt_dp_lost;      /* charge.dispute.closed.lost.json */
} ss_fixtures;

/* Loads every file from dir; -1 with err naming the file on failure. */
int ss_fixtures_load(ss_fixtures *fx, const char *dir, char *err, size_t errlen);
void ss_fixtures_free(ss_fixtures *fx);
/* prefix + n random [A-Za-z0-9] into out (OpenSSL RAND_bytes; thread-safe). */
void ss_random_id(char *out, size_t outlen, const char *prefix, size_t n);
/* The real wall clock; answers use the stand-in's clock (ss_clock_locked). */
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
    json_t *body;             /* owned */
    const char *should_retry; /* "true" / "false" / NULL: Stripe-Should-Retry */
    char object_id[64];       /* the object answered, for the request log */
    /* Stripe stores an idempotent result only once the endpoint started
     * executing: validation failures and injected faults are not stored. */
    bool store;
    bool pi_created;   /* a PaymentIntent came into being (200 or 402) */
    bool pi_succeeded; /* ... and its status is succeeded */
} ss_answer;

/* Small helpers shared by the endpoint files (api.c). */
const char *ss_param(const json_t *p, const char *key);
/* A strictly decimal, non-negative int64 of at most 18 digits. */
bool ss_parse_i64(const char *s, int64_t *out);
/* An integer member, or a string of digits (control bodies may be forms). */
bool ss_json_i64(const json_t *obj, const char *key, int64_t *out);
void ss_set_str(json_t *o, const char *key, const char *v);
void ss_doc_url(char *out, size_t outlen, const char *code);

/* Stripe-shaped error body {"error":{"type","message"[,"code"][,"param"]}}. */
void ss_answer_error(ss_answer *a, int status, const char *type, const char *code,
                     const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- store.c ----------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    ss_fixtures fx;
    const char *api_key; /* NULL: any sk_test_... */
    int latency_initial_ms;
    int latency_ms;

    uint64_t seq;
    json_t *records;    /* array of request records (GET /__standin/requests) */
    uint64_t *arrivals; /* monotonic ns of every /v1 request, in order */
    size_t n_arrivals, cap_arrivals;
    int64_t in_flight, max_in_flight;

    json_t *idem;           /* key -> {method,path,params,state,first_at,status,body,
                             *   should_retry,object_id} */
    json_t *intents;        /* pi id -> {"intent": object, "charge", "payment_method",
                             *   "request_id", "idempotency_key", "versions": [[at, copy], ...]}
                             * (seeded: {"charge","seeded":true}, no "intent") */
    json_t *charges;        /* ch id -> {"payment_intent","amount","currency","status",
                             *   "refunded","created","balance_transaction","dispute"?} */
    json_t *refunds;        /* array of refund objects, oldest first */
    json_t *disputes;       /* dp id -> {"dispute": object, "adhoc": bool} */
    json_t *decline_counts; /* "<method>|<invoice_id>" -> declines answered so far */
    json_t *fail_once_seen; /* "<method>|<key>" -> true: first failure already answered */
    json_t *events;         /* array of {"seq": N, "event": envelope}, oldest first */
    int64_t event_seq;

    int fault_status; /* global fault injection (POST /__standin/fail) */
    int64_t fault_count;
    const char *fault_should_retry;
    int64_t lose_count; /* POSTs to execute whose answer is then dropped */
    bool auth_refused;  /* POST /__standin/auth {"valid":false}: every /v1 gets 401 */

    int64_t clock_offset; /* the stand-in's clock = real time + this (seconds) */
    int64_t search_lag_initial_s, search_lag_s;
    const char *refund_status_default; /* "succeeded" or "pending" */

    int64_t pi_created, pi_succeeded, refunds_created, disputes_updated, replays;
} ss_state;

/* Idempotency keys expire this many clock seconds after their first request. */
#define SS_IDEMPOTENCY_TTL_S 86400

int ss_state_init(ss_state *st, const char *fixtures_dir, const char *api_key, int latency_ms,
                  int64_t search_lag_s, char *err, size_t errlen);
void ss_state_free(ss_state *st);
/* Forgets every request, object, fault and counter (caller holds mu). */
void ss_state_reset_locked(ss_state *st);
/* The most /v1 requests that arrived within any one second (caller holds mu). */
int64_t ss_state_max_per_second_locked(const ss_state *st);
/* The stand-in's clock (unix seconds): every created, event and key expiry. */
int64_t ss_clock_locked(const ss_state *st);

/* ---- api.c ------------------------------------------------------------- */

typedef struct {
    const char *method;
    const char *path;  /* decoded path, no query */
    const char *query; /* raw query string ("" when none) */
    const char *body;
    size_t body_len;
    const char *authorization; /* header values or NULL */
    const char *idempotency_key;
    const char *stripe_version;
    char request_id[32]; /* Request-Id of the answer (set by the caller) */
} ss_request;

typedef struct {
    ss_answer a;
    bool replayed;
    bool lost;       /* executed, but close the connection unanswered */
    char *body_text; /* the bytes to send (malloc); a replay's are the
                      * exact bytes stored with the first answer */
} ss_result;

/* Handles one /v1 request end to end: records it, checks auth, faults and
 * idempotency, sleeps the injected latency, runs the endpoint. */
void ss_api_handle(ss_state *st, const ss_request *rq, ss_result *out);

/* Moves a processing intent to succeeded/failed, logs and answers the webhook
 * event envelope (caller holds mu). status 200 with the event, or an error. */
void ss_api_complete_locked(ss_state *st, const char *pi, const char *outcome, ss_answer *a);
/* The fixture-shaped error of an injected 401/403/404 (or 429/500). */
void ss_api_fault_answer_locked(ss_state *st, int status, const char *should_retry,
                                const ss_request *rq, ss_answer *a);
/* A Stripe request_log_url for an error body that has one. */
void ss_request_log_url_locked(const ss_state *st, json_t *err, const char *request_id);
/* GET /v1/payment_intents, /v1/payment_intents/search, /v1/payment_intents/{id}. */
void ss_pi_list_locked(ss_state *st, const json_t *p, ss_answer *a);
void ss_pi_search_locked(ss_state *st, const json_t *p, ss_answer *a);
void ss_pi_get_locked(ss_state *st, const char *id, ss_answer *a);
/* Every stored intent object, oldest first (new array of copies). */
json_t *ss_pi_all_locked(ss_state *st);

/* ---- refunds.c --------------------------------------------------------- */

void ss_refund_create_locked(ss_state *st, const ss_request *rq, const json_t *p, ss_answer *a);
void ss_refund_list_locked(ss_state *st, const json_t *p, ss_answer *a);
void ss_refund_get_locked(ss_state *st, const char *id, ss_answer *a);
/* Seeds a refund of a charge the stand-in did not create (caller holds mu). */
void ss_api_seed_refund_locked(ss_state *st, const json_t *req, ss_answer *a);
/* POST /__standin/refund_update: moves a refund on, logs, answers the event. */
void ss_refund_update_locked(ss_state *st, const json_t *req, ss_answer *a);

/* ---- disputes.c -------------------------------------------------------- */

void ss_dispute_update_locked(ss_state *st, const ss_request *rq, const char *dp, const json_t *p,
                              ss_answer *a);
void ss_dispute_list_locked(ss_state *st, const json_t *p, ss_answer *a);
void ss_dispute_get_locked(ss_state *st, const char *id, ss_answer *a);
/* POST /__standin/dispute and /__standin/dispute_close. */
void ss_dispute_open_locked(ss_state *st, const json_t *req, ss_answer *a);
void ss_dispute_close_locked(ss_state *st, const json_t *req, ss_answer *a);
/* Every dispute opened through /__standin/dispute, oldest first (copies). */
json_t *ss_dispute_all_locked(ss_state *st);

/* ---- lists.c ----------------------------------------------------------- */

/* A `created` filter: lo <= created <= hi. */
typedef struct {
    int64_t lo, hi;
} ss_created_range;

/* Reads created / created[gte|gt|lte|lt]; false with a 400 in a. */
bool ss_created_parse(const json_t *p, ss_created_range *r, ss_answer *a);

typedef bool (*ss_list_match)(const json_t *obj, void *ctx);
typedef struct {
    const char *url;           /* "/v1/refunds" */
    const char *noun;          /* "refund": "No such refund: '...'" */
    const char *const *params; /* other parameters accepted (NULL-terminated);
                                * NULL: any other parameter is ignored */
    ss_list_match match;       /* NULL: every object */
    void *ctx;
} ss_list_spec;

/* Stripe's list answer over items (every object of the kind, oldest first,
 * each with "id" and "created"): newest first, created filters, limit
 * (1..100, default 10), starting_after / ending_before, has_more. */
void ss_list_answer(const json_t *items, const json_t *p, const ss_list_spec *spec, ss_answer *a);

/* The supported subset of Stripe's search query language. */
typedef struct {
    enum { SS_Q_METADATA, SS_Q_CUSTOMER, SS_Q_STATUS, SS_Q_CREATED } kind;
    char key[64];    /* metadata key */
    char value[512]; /* string value */
    char op[3];      /* created: ">", "<", ">=", "<=" */
    int64_t n;
} ss_clause;
typedef struct {
    ss_clause c[10]; /* Stripe allows at most 10 clauses */
    size_t n;
} ss_query;

/* Parses q strictly; false with a message in err. */
bool ss_query_parse(const char *q, ss_query *out, char *err, size_t errlen);
/* Whether an intent object satisfies every clause. */
bool ss_query_match(const ss_query *q, const json_t *obj);
/* Stripe's search answer: current holds every object (oldest first),
 * indexed[i] what the search index holds of current[i] (null: not yet
 * searchable); matches are judged on indexed, answered from current. */
void ss_search_answer(const json_t *current, const json_t *indexed, const json_t *p,
                      const char *url, ss_answer *a);

/* ---- events.c ---------------------------------------------------------- */

/* Logs the event Stripe would send: tmpl (a fixture envelope) with a new
 * evt_ id, created = the clock, type, data.object = a copy of object,
 * data.previous_attributes = previous (stolen; NULL: none) and request =
 * the API request that caused it (rq NULL: Stripe acted on its own).
 * Returns the logged envelope (borrowed from the log). */
json_t *ss_event_log_locked(ss_state *st, const json_t *tmpl, const char *type,
                            const json_t *object, json_t *previous, const ss_request *rq);
/* The Charge object of a known charge, built from charge.refunded.json's
 * object (new reference; NULL when unknown). */
json_t *ss_charge_object_locked(ss_state *st, const char *ch);
/* Every known charge object, oldest first (new array). */
json_t *ss_charge_all_locked(ss_state *st);

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
