/* standin.h: starting and steering `stripe-standin` (the loopback stand-in
 * for Stripe's API, tests/support/stripe_standin/README.md) from a test.
 *
 * Point the code under test at standin_url() (STRIPE_API_BASE) with any
 * sk_test_... key; read what it sent through /__standin/requests and
 * /__standin/stats. Every helper fails the running cmocka test when the
 * stand-in cannot be reached or answers something that is not JSON. */
#ifndef LEDGERLINE_TESTS_STANDIN_H
#define LEDGERLINE_TESTS_STANDIN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

typedef struct standin standin;

/* Spawns LL_STRIPE_STANDIN_BIN (listening on 127.0.0.1, a free port) with
 * extra_args appended (NULL-terminated, may be NULL: e.g. {"--latency-ms",
 * "300", NULL}) and waits for its URL; aborts the test on failure. */
standin *standin_start(const char *const *extra_args);
/* "http://127.0.0.1:PORT", valid until standin_stop. */
const char *standin_url(const standin *s);
/* GET a /__standin/ path ("/__standin/requests"), parsed JSON (caller decrefs). */
json_t *standin_get(const standin *s, const char *path);
/* POST json_body (NULL: empty) to a /__standin/ path, parsed JSON answer. */
json_t *standin_post(const standin *s, const char *path, const char *json_body);
/* One integer field of /__standin/stats ("payment_intents_created", ...). */
int64_t standin_stat(const standin *s, const char *name);
/* Recorded /v1 requests (replays included) whose method equals method and
 * whose path starts with path_prefix; NULL matches any. */
int64_t standin_count(const standin *s, const char *method, const char *path_prefix);
/* SIGTERM, wait for exit (SIGKILL after 10 s), free. NULL is fine. */
void standin_stop(standin *s);

/* One call per control (README "Test control"). Each fails the running test
 * when the stand-in refuses (an "error" answer). */

/* POST /__standin/reset: forgets everything, clock back to real time. */
void standin_reset(const standin *s);
/* The stand-in's clock (unix seconds): GET /__standin/clock. */
int64_t standin_clock_now(const standin *s);
/* Moves the clock on by seconds (>= 0) / sets it; returns the new now. */
int64_t standin_clock_advance(const standin *s, int64_t seconds);
int64_t standin_clock_set(const standin *s, int64_t unix_now);
/* The next count /v1 requests answer status (401, 403, 404, 429, 500;
 * no Stripe-Should-Retry header) without running anything. */
void standin_fail_status(const standin *s, int status, int64_t count);
/* The next count POST /v1 requests run (and are stored under their key) but
 * the connection closes unanswered: mode "lose_answer". */
void standin_fail_mode(const standin *s, const char *mode, int64_t count);
/* valid false: every /v1 request gets 401 until valid true again. */
void standin_auth_valid(const standin *s, bool valid);
/* An object is searchable only seconds (clock) after it was created/changed. */
void standin_search_lag(const standin *s, int64_t seconds);
/* The webhook events logged after seq: a new array of {"seq","event"}. */
json_t *standin_events_after(const standin *s, int64_t seq);
/* Everything Stripe holds, unpaged, oldest first (new arrays of objects). */
json_t *standin_payment_intents(const standin *s);
json_t *standin_refunds(const standin *s);
json_t *standin_disputes(const standin *s);
json_t *standin_charges(const standin *s);
/* New refunds start "pending" or "succeeded" (the default). */
void standin_refund_default(const standin *s, const char *status);
/* Moves a refund on (succeeded, failed, canceled); the charge.refund.updated
 * envelope (caller decrefs). */
json_t *standin_refund_update(const standin *s, const char *refund, const char *status);
/* Opens a dispute on the charge of pi_or_ch (a pi_ or ch_ id); amount 0 =
 * what is left of the charge, reason NULL = fraudulent. The
 * charge.dispute.created envelope (caller decrefs). */
json_t *standin_dispute_open(const standin *s, const char *pi_or_ch, int64_t amount,
                             const char *reason);
/* Closes it "won" or "lost"; the charge.dispute.closed envelope. */
json_t *standin_dispute_close(const standin *s, const char *dispute, const char *status);

#endif
