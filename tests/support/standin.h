/* standin.h: starting and steering `stripe-standin` (the loopback stand-in
 * for Stripe's API, tests/support/stripe_standin/README.md) from a test.
 *
 * Point the code under test at standin_url() (STRIPE_API_BASE) with any
 * sk_test_... key; read what it sent through /__standin/requests and
 * /__standin/stats. Every helper fails the running cmocka test when the
 * stand-in cannot be reached or answers something that is not JSON. */
#ifndef LEDGERLINE_TESTS_STANDIN_H
#define LEDGERLINE_TESTS_STANDIN_H

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

#endif
