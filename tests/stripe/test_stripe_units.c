/* test_stripe_units.c: the pure parts of the Stripe client (common/stripe.c),
 * no network: stripe_classify over every answer in the fixtures' api/
 * folder plus Stripe-Should-Retry, non-JSON bodies and network errors; form
 * encoding (bracket keys, percent-encoded values, the request builders);
 * and the settings stripe_client_new accepts or refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/stripe.h"

/* ---- helpers --------------------------------------------------------------- */

/* The bytes of one fixture file (relative to the fixtures' root); caller frees. */
static char *fx_read(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", LL_FIXTURES_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void fx_classify(const char *rel, long status, const char *should_retry, stripe_result *out)
{
    size_t len = 0;
    char *body = fx_read(rel, &len);
    stripe_classify(status, should_retry, "req_fixture01", body, len, NULL, out);
    free(body);
}

static void cls(long status, const char *should_retry, const char *body, stripe_result *out)
{
    stripe_classify(status, should_retry, NULL, body, body ? strlen(body) : 0, NULL, out);
}

/* ---- classification of the fixture answers --------------------------------- */

static void test_fixture_200_payment_intent(void **state)
{
    (void)state;
    stripe_result r;
    fx_classify("api/payment_intent.create.200.json", 200, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_OK);
    assert_int_equal(r.http_status, 200);
    assert_false(r.retryable);
    assert_false(stripe_result_transient(&r));
    assert_string_equal(r.object_id, "pi_1PgafyB7WZ01zgkWSjxsAJo3");
    assert_string_equal(r.object_status, "succeeded");
    assert_string_equal(r.latest_charge, "ch_1PgafuB7WZ01zgkWXYmPNZs8");
    assert_int_equal(r.amount, 1099);
    assert_string_equal(r.request_id, "req_fixture01");
    assert_string_equal(r.error_type, "");
    assert_string_equal(r.code, "");
    assert_non_null(r.body);
    assert_string_equal(json_string_value(json_object_get(r.body, "object")), "payment_intent");
    stripe_result_free(&r);
    assert_null(r.body);
    stripe_result_free(&r); /* twice is harmless */
}

static void test_fixture_402_card_declined(void **state)
{
    (void)state;
    stripe_result r;
    fx_classify("api/payment_intent.create.402.card_declined.json", 402, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_CARD_ERROR);
    assert_false(r.retryable);
    assert_false(stripe_result_transient(&r));
    assert_string_equal(r.error_type, "card_error");
    assert_string_equal(r.code, "card_declined");
    assert_string_equal(r.decline_code, "insufficient_funds");
    assert_string_equal(r.message, "Your card has insufficient funds.");
    /* The intent the decline still created comes from error.payment_intent. */
    assert_string_equal(r.object_id, "pi_1PgcB4B7WZ01zgkW0fJrT6sQ");
    assert_string_equal(r.object_status, "requires_payment_method");
    assert_string_equal(r.latest_charge, "ch_1PgcB4B7WZ01zgkWm2VhZr8L");
    assert_int_equal(r.amount, 2500);
    stripe_result_free(&r);
}

static void test_fixture_402_authentication_required(void **state)
{
    (void)state;
    stripe_result r;
    fx_classify("api/payment_intent.create.402.authentication_required.json", 402, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_CARD_ERROR);
    assert_false(r.retryable);
    assert_string_equal(r.code, "authentication_required");
    assert_string_equal(r.decline_code, "authentication_required");
    assert_string_equal(r.message,
                        "Your card was declined. This transaction requires authentication.");
    assert_string_equal(r.object_id, "pi_1PgcC1B7WZ01zgkWkR7pX3nB");
    assert_string_equal(r.object_status, "requires_payment_method");
    assert_int_equal(r.amount, 4900);
    stripe_result_free(&r);
}

static void test_fixture_429(void **state)
{
    (void)state;
    stripe_result r;
    fx_classify("api/error.429.json", 429, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_RATE_LIMITED);
    assert_true(r.retryable);
    assert_true(stripe_result_transient(&r));
    assert_string_equal(r.code, "rate_limit");
    assert_string_equal(r.error_type, "invalid_request_error");
    assert_non_null(strstr(r.message, "rate limit"));
    assert_string_equal(r.object_id, "");
    assert_int_equal(r.amount, -1);
    stripe_result_free(&r);

    /* The same body under a 400 (code rate_limit) is a rate limit too. */
    fx_classify("api/error.429.json", 400, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_RATE_LIMITED);
    assert_true(stripe_result_transient(&r));
    stripe_result_free(&r);
}

static void test_fixture_500(void **state)
{
    (void)state;
    stripe_result r;
    fx_classify("api/error.500.json", 500, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_true(r.retryable);
    assert_true(stripe_result_transient(&r));
    assert_string_equal(r.error_type, "api_error");
    assert_string_equal(r.message, "An unknown error occurred");
    stripe_result_free(&r);
}

static void test_fixture_400_idempotency(void **state)
{
    (void)state;
    stripe_result r;
    fx_classify("api/error.400.idempotency.json", 400, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_IDEMPOTENCY_ERROR);
    assert_false(r.retryable);
    assert_false(stripe_result_transient(&r));
    assert_string_equal(r.error_type, "idempotency_error");
    assert_non_null(strstr(r.message, "invoice-42-attempt-1"));
    stripe_result_free(&r);
}

static void test_fixture_refund_and_dispute(void **state)
{
    (void)state;
    stripe_result r;
    fx_classify("api/refund.create.200.json", 200, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_OK);
    assert_string_equal(r.object_id, "re_1Pgc72B7WZ01zgkWqPvrRrPE");
    assert_string_equal(r.object_status, "succeeded");
    /* A refund has no latest_charge: its charge is taken instead. */
    assert_string_equal(r.latest_charge, "ch_1PgafuB7WZ01zgkWXYmPNZs8");
    assert_int_equal(r.amount, 500);
    stripe_result_free(&r);

    fx_classify("api/dispute.update.200.json", 200, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_OK);
    assert_string_equal(r.object_id, "dp_1Pgc71B7WZ01zgkWMevJiAUx");
    assert_string_equal(r.object_status, "under_review");
    assert_int_equal(r.amount, 1099);
    stripe_result_free(&r);
}

/* ---- Stripe-Should-Retry --------------------------------------------------- */

static void test_should_retry_overrides(void **state)
{
    (void)state;
    stripe_result r;
    /* false wins over the 5xx / 429 rule of thumb. */
    fx_classify("api/error.500.json", 500, "false", &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_false(r.retryable);
    assert_false(stripe_result_transient(&r));
    stripe_result_free(&r);
    fx_classify("api/error.429.json", 429, "false", &r);
    assert_int_equal(r.outcome, STRIPE_RATE_LIMITED);
    assert_false(stripe_result_transient(&r));
    stripe_result_free(&r);

    /* true makes an idempotency error (normally final) replayable. */
    fx_classify("api/error.400.idempotency.json", 400, "true", &r);
    assert_int_equal(r.outcome, STRIPE_IDEMPOTENCY_ERROR);
    assert_true(r.retryable);
    assert_true(stripe_result_transient(&r));
    stripe_result_free(&r);

    /* A decline is never transient, whatever the header says: it is the
     * customer's card, not an outage. */
    fx_classify("api/payment_intent.create.402.card_declined.json", 402, "true", &r);
    assert_int_equal(r.outcome, STRIPE_CARD_ERROR);
    assert_true(r.retryable);
    assert_false(stripe_result_transient(&r));
    stripe_result_free(&r);

    /* Case-insensitive; anything else leaves the rule of thumb alone. */
    fx_classify("api/error.500.json", 500, "FALSE", &r);
    assert_false(r.retryable);
    stripe_result_free(&r);
    fx_classify("api/error.500.json", 500, "maybe", &r);
    assert_true(r.retryable);
    stripe_result_free(&r);
    fx_classify("api/error.400.idempotency.json", 400, "", &r);
    assert_false(r.retryable);
    stripe_result_free(&r);

    /* 409: the same key still in flight, replayable unless Stripe says no. */
    cls(409, NULL,
        "{\"error\":{\"type\":\"idempotency_error\",\"code\":\"idempotency_key_in_use\"}}", &r);
    assert_int_equal(r.outcome, STRIPE_IDEMPOTENCY_ERROR);
    assert_true(stripe_result_transient(&r));
    stripe_result_free(&r);
    cls(409, "false", "{}", &r);
    assert_int_equal(r.outcome, STRIPE_IDEMPOTENCY_ERROR);
    assert_false(stripe_result_transient(&r));
    stripe_result_free(&r);
}

/* ---- other statuses and bodies ----------------------------------------------- */

static void test_other_statuses(void **state)
{
    (void)state;
    stripe_result r;
    cls(401, NULL,
        "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Invalid API Key provided\"}}",
        &r);
    assert_int_equal(r.outcome, STRIPE_INVALID_REQUEST);
    assert_false(r.retryable);
    assert_string_equal(r.message, "Invalid API Key provided");
    stripe_result_free(&r);

    cls(404, NULL, "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"resource_missing\"}}",
        &r);
    assert_int_equal(r.outcome, STRIPE_INVALID_REQUEST);
    assert_string_equal(r.code, "resource_missing");
    assert_string_equal(r.message, "HTTP 404 from Stripe"); /* no message in the body */
    stripe_result_free(&r);

    cls(503, NULL, "{\"error\":{\"type\":\"api_error\"}}", &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_true(stripe_result_transient(&r));
    stripe_result_free(&r);

    /* A 5xx is an outage whatever its body claims: replayed with the same
     * key, never recorded as a decline or a key conflict. */
    fx_classify("api/payment_intent.create.402.card_declined.json", 500, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_true(stripe_result_transient(&r));
    assert_string_equal(r.object_id, "");
    stripe_result_free(&r);
    fx_classify("api/error.400.idempotency.json", 503, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_true(stripe_result_transient(&r));
    stripe_result_free(&r);

    /* A card_error type decides even under another 4xx. */
    cls(400, NULL, "{\"error\":{\"type\":\"card_error\",\"code\":\"expired_card\"}}", &r);
    assert_int_equal(r.outcome, STRIPE_CARD_ERROR);
    assert_string_equal(r.code, "expired_card");
    assert_string_equal(r.object_id, "");
    stripe_result_free(&r);

    /* JSON null for optional fields is read as absent. */
    cls(402, NULL,
        "{\"error\":{\"type\":\"card_error\",\"code\":null,\"decline_code\":null,"
        "\"message\":null,\"payment_intent\":null}}",
        &r);
    assert_int_equal(r.outcome, STRIPE_CARD_ERROR);
    assert_string_equal(r.code, "");
    assert_string_equal(r.decline_code, "");
    assert_string_equal(r.object_id, "");
    assert_string_equal(r.message, "HTTP 402 from Stripe");
    stripe_result_free(&r);

    /* Over-long fields are cut, never overflow. */
    char big[2048];
    memset(big, 'x', sizeof big);
    char body[3000];
    snprintf(body, sizeof body, "{\"id\":\"pi_%.*s\",\"status\":\"%.*s\",\"amount\":5}", 1000, big,
             500, big);
    cls(200, NULL, body, &r);
    assert_int_equal(r.outcome, STRIPE_OK);
    assert_int_equal(strlen(r.object_id), STRIPE_ID_MAX - 1);
    assert_int_equal(strlen(r.object_status), sizeof r.object_status - 1);
    assert_int_equal(r.amount, 5);
    stripe_result_free(&r);
}

static void test_non_json_bodies(void **state)
{
    (void)state;
    stripe_result r;
    /* A proxy's HTML page under a 502: an outage, replay the same key. */
    cls(502, NULL, "<html><body>Bad Gateway</body></html>", &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_true(stripe_result_transient(&r));
    assert_null(r.body);
    assert_string_equal(r.message, "HTTP 502 from Stripe");
    stripe_result_free(&r);

    /* Garbage under a 4xx: refused, not retried. */
    cls(400, NULL, "oops", &r);
    assert_int_equal(r.outcome, STRIPE_INVALID_REQUEST);
    assert_false(r.retryable);
    assert_null(r.body);
    stripe_result_free(&r);

    /* A 2xx we cannot read: we do not know what happened, so the same key is
     * replayed later (never treated as paid). */
    cls(200, NULL, "not json", &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_true(stripe_result_transient(&r));
    assert_string_equal(r.object_id, "");
    stripe_result_free(&r);
    cls(200, NULL, "[1,2,3]", &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_non_null(r.body); /* parsed, but not an object */
    stripe_result_free(&r);
    cls(200, NULL, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    stripe_result_free(&r);
    cls(200, NULL, "{\"id\":\"pi_trunc", &r); /* cut off mid-body */
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    stripe_result_free(&r);

    /* Only len bytes are read: a body that is JSON only past len is not. */
    const char *b = "{\"id\":\"pi_1\"}";
    stripe_classify(200, NULL, NULL, b, 5, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    stripe_result_free(&r);

    /* A body with an embedded NUL is not JSON. */
    const char nul[] = "{\"id\":\"pi\0x\"}";
    stripe_classify(200, NULL, NULL, nul, sizeof nul - 1, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    stripe_result_free(&r);

    /* error is not an object: still classified by status. */
    cls(500, NULL, "{\"error\":\"boom\"}", &r);
    assert_int_equal(r.outcome, STRIPE_SERVER_ERROR);
    assert_string_equal(r.error_type, "");
    stripe_result_free(&r);
}

static void test_network_error(void **state)
{
    (void)state;
    stripe_result r;
    stripe_classify(0, NULL, NULL, NULL, 0, "Couldn't connect to server: Connection refused", &r);
    assert_int_equal(r.outcome, STRIPE_NETWORK_ERROR);
    assert_int_equal(r.http_status, 0);
    assert_true(r.retryable);
    assert_true(stripe_result_transient(&r));
    assert_string_equal(r.message, "Couldn't connect to server: Connection refused");
    assert_null(r.body);
    assert_int_equal(r.amount, -1);
    stripe_result_free(&r);

    /* No text given: a generic one. A body is ignored without a status. */
    stripe_classify(0, NULL, "req_x", "{\"id\":\"pi_1\"}", 12, NULL, &r);
    assert_int_equal(r.outcome, STRIPE_NETWORK_ERROR);
    assert_string_equal(r.message, "no answer from Stripe");
    assert_string_equal(r.request_id, "req_x");
    assert_string_equal(r.object_id, "");
    assert_null(r.body);
    stripe_result_free(&r);
    stripe_classify(-1, NULL, NULL, NULL, 0, "", &r);
    assert_int_equal(r.outcome, STRIPE_NETWORK_ERROR);
    assert_string_equal(r.message, "no answer from Stripe");
    stripe_result_free(&r);
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(stripe_outcome_name(STRIPE_OK), "ok");
    assert_string_equal(stripe_outcome_name(STRIPE_CARD_ERROR), "card_error");
    assert_string_equal(stripe_outcome_name(STRIPE_INVALID_REQUEST), "invalid_request");
    assert_string_equal(stripe_outcome_name(STRIPE_IDEMPOTENCY_ERROR), "idempotency_error");
    assert_string_equal(stripe_outcome_name(STRIPE_RATE_LIMITED), "rate_limited");
    assert_string_equal(stripe_outcome_name(STRIPE_SERVER_ERROR), "server_error");
    assert_string_equal(stripe_outcome_name(STRIPE_NETWORK_ERROR), "network_error");
    assert_string_equal(stripe_outcome_name((stripe_outcome)99), "unknown");
}

/* ---- form encoding ------------------------------------------------------------ */

static void test_form_brackets_and_escapes(void **state)
{
    (void)state;
    stripe_form *f = stripe_form_new();
    assert_non_null(f);
    assert_string_equal(stripe_form_body(f), "");
    assert_int_equal(stripe_form_add(f, "amount", "1099"), 0);
    assert_int_equal(stripe_form_add(f, "metadata[invoice_id]", "42"), 0);
    assert_int_equal(stripe_form_add(f, "payment_method_types[0]", "card"), 0);
    assert_string_equal(stripe_form_body(f),
                        "amount=1099&metadata[invoice_id]=42&payment_method_types[0]=card");
    stripe_form_free(f);

    f = stripe_form_new();
    /* Separators, space, brackets and percent in values are encoded. */
    assert_int_equal(stripe_form_add(f, "metadata[note]", "a&b=c d+e%f[g]"), 0);
    assert_string_equal(stripe_form_body(f), "metadata[note]=a%26b%3Dc%20d%2Be%25f%5Bg%5D");
    stripe_form_free(f);

    f = stripe_form_new();
    /* UTF-8 byte by byte, upper-case hex; unreserved characters literal. */
    assert_int_equal(stripe_form_add(f, "description", "Zürich €5 -_.~"), 0);
    assert_string_equal(stripe_form_body(f), "description=Z%C3%BCrich%20%E2%82%AC5%20-_.~");
    stripe_form_free(f);

    f = stripe_form_new();
    /* Keys: everything but brackets is encoded too; empty values are fine. */
    assert_int_equal(stripe_form_add(f, "metadata[a b&c]", ""), 0);
    assert_int_equal(stripe_form_add(f, "x", "\n\r\t/?#"), 0);
    assert_string_equal(stripe_form_body(f), "metadata[a%20b%26c]=&x=%0A%0D%09%2F%3F%23");
    stripe_form_free(f);
}

static void test_form_integers_and_refusals(void **state)
{
    (void)state;
    stripe_form *f = stripe_form_new();
    assert_int_equal(stripe_form_add_i64(f, "a", 0), 0);
    assert_int_equal(stripe_form_add_i64(f, "b", INT64_MAX), 0);
    assert_int_equal(stripe_form_add_i64(f, "c", INT64_MIN), 0);
    assert_string_equal(stripe_form_body(f), "a=0&b=9223372036854775807&c=-9223372036854775808");
    /* Refused: no key, an empty key, no value; the body is unchanged. */
    assert_int_equal(stripe_form_add(f, NULL, "1"), -1);
    assert_int_equal(stripe_form_add(f, "", "1"), -1);
    assert_int_equal(stripe_form_add(f, "k", NULL), -1);
    assert_int_equal(stripe_form_add(NULL, "k", "v"), -1);
    assert_string_equal(stripe_form_body(f), "a=0&b=9223372036854775807&c=-9223372036854775808");
    stripe_form_free(f);
    assert_string_equal(stripe_form_body(NULL), "");
    stripe_form_free(NULL);
}

static void test_form_grows(void **state)
{
    (void)state;
    /* Many pairs (each one fully percent-encoded) force several regrowths. */
    stripe_form *f = stripe_form_new();
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "metadata[k%d]", i);
        assert_int_equal(stripe_form_add(f, key, "€€"), 0);
    }
    const char *body = stripe_form_body(f);
    /* "metadata[kN]=%E2%82%AC%E2%82%AC" joined by '&'. */
    size_t want = 0;
    for (int i = 0; i < 5000; i++)
        want += (size_t)snprintf(key, sizeof key, "metadata[k%d]", i) + 1 + 18 + (i ? 1 : 0);
    assert_int_equal(strlen(body), want);
    assert_non_null(strstr(body, "&metadata[k4999]=%E2%82%AC%E2%82%AC"));
    assert_memory_equal(body, "metadata[k0]=%E2%82%AC%E2%82%AC&", 32);
    stripe_form_free(f);
}

static void test_form_builders(void **state)
{
    (void)state;
    stripe_form *f = stripe_form_payment_intent(1099, "usd", "cus_QXg1o8vcGmoR32", "pm_card_visa",
                                                42, 7, "autopay:42:1");
    assert_non_null(f);
    assert_string_equal(stripe_form_body(f),
                        "amount=1099&currency=usd&customer=cus_QXg1o8vcGmoR32"
                        "&payment_method=pm_card_visa&confirm=true&off_session=true"
                        "&metadata[invoice_id]=42&metadata[firm_id]=7"
                        "&metadata[attempt_key]=autopay%3A42%3A1");
    stripe_form_free(f);
    /* Without a customer the parameter is left out. */
    f = stripe_form_payment_intent(5, "eur", "", "pm_card_visa", 1, 2, "retry:1:2");
    assert_string_equal(stripe_form_body(f),
                        "amount=5&currency=eur&payment_method=pm_card_visa&confirm=true"
                        "&off_session=true&metadata[invoice_id]=1&metadata[firm_id]=2"
                        "&metadata[attempt_key]=retry%3A1%3A2");
    stripe_form_free(f);
    f = stripe_form_payment_intent(5, "eur", NULL, "pm_card_visa", 1, 2, "k");
    assert_null(strstr(stripe_form_body(f), "customer"));
    stripe_form_free(f);
    /* A missing currency or method is refused, not sent half-built. */
    assert_null(stripe_form_payment_intent(5, NULL, NULL, "pm_card_visa", 1, 2, "k"));
    assert_null(stripe_form_payment_intent(5, "usd", NULL, NULL, 1, 2, "k"));

    f = stripe_form_refund("pi_1PgafyB7WZ01zgkWSjxsAJo3", NULL, 500, "requested_by_customer", 42);
    assert_string_equal(stripe_form_body(f),
                        "payment_intent=pi_1PgafyB7WZ01zgkWSjxsAJo3&amount=500"
                        "&reason=requested_by_customer&metadata[invoice_id]=42");
    stripe_form_free(f);
    /* By charge; amount 0 = the whole rest; no reason. */
    f = stripe_form_refund(NULL, "ch_1PgafuB7WZ01zgkWXYmPNZs8", 0, NULL, 42);
    assert_string_equal(stripe_form_body(f),
                        "charge=ch_1PgafuB7WZ01zgkWXYmPNZs8&metadata[invoice_id]=42");
    stripe_form_free(f);
    assert_null(stripe_form_refund(NULL, NULL, 1, NULL, 42));
}

/* ---- client settings ----------------------------------------------------------- */

static stripe_client *new_client(const char *base, const char *key, int max_rps, char *err,
                                 size_t errlen)
{
    stripe_config cfg = {.secret_key = key, .api_base = base, .max_rps = max_rps};
    err[0] = '\0';
    return stripe_client_new(&cfg, err, errlen);
}

static void test_client_schemes(void **state)
{
    (void)state;
    char err[256];
    static const char *const ok[] = {"https://api.stripe.com", "https://api.stripe.com/",
                                     "http://127.0.0.1",       "http://127.0.0.1:8089",
                                     "http://127.0.0.1:8089/", "http://localhost:9",
                                     "http://[::1]:8089",      NULL /* default: https */};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        stripe_client *c = new_client(ok[i], "sk_test_abcdefgh01234567", 25, err, sizeof err);
        if (c == NULL)
            fail_msg("%s refused: %s", ok[i] ? ok[i] : "(default)", err);
        stripe_stats s = stripe_client_stats(c);
        assert_int_equal(s.requests, 0);
        stripe_client_free(c);
    }
    /* Plain http anywhere but loopback, other schemes, or a host that only
     * starts like a loopback name: refused, with a message that says why. */
    static const char *const bad[] = {"http://api.stripe.com",
                                      "http://10.0.0.1:8089",
                                      "http://127.0.0.1.evil.test",
                                      "http://localhost.evil.test",
                                      "http://localhost@evil.test",
                                      "http://127.0.0.10",
                                      "https://",
                                      "ftp://127.0.0.1",
                                      "api.stripe.com",
                                      "",
                                      "HTTP://api.stripe.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stripe_client *c = new_client(bad[i], "sk_test_abcdefgh01234567", 25, err, sizeof err);
        if (c != NULL)
            fail_msg("%s accepted", bad[i]);
        assert_non_null(strstr(err, "https://"));
    }
    stripe_client_free(NULL);
}

static void test_client_keys_and_rate(void **state)
{
    (void)state;
    char err[256];
    static const char *const bad_keys[] = {
        NULL, "", "sk_test", "sk_test_abc\r\nX-Evil: 1", "sk test abcdefgh", "sk_test_abcdefgh:"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        stripe_client *c = new_client("https://api.stripe.com", bad_keys[i], 25, err, sizeof err);
        if (c != NULL)
            fail_msg("key %zu accepted", i);
        assert_non_null(strstr(err, "secret key"));
        /* The key itself is never echoed into the message. */
        if (bad_keys[i] != NULL && bad_keys[i][0] != '\0')
            assert_null(strstr(err, bad_keys[i]));
    }
    char longkey[300];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_null(new_client("https://api.stripe.com", longkey, 25, err, sizeof err));
    stripe_client *c =
        new_client("https://api.stripe.com", "rk_live_abcdefgh01234567", 25, err, sizeof err);
    assert_non_null(c);
    stripe_client_free(c);

    assert_null(
        new_client("https://api.stripe.com", "sk_test_abcdefgh01234567", -1, err, sizeof err));
    assert_non_null(strstr(err, "max_rps"));
    /* 0 = the default. */
    c = new_client("https://api.stripe.com", "sk_test_abcdefgh01234567", 0, err, sizeof err);
    assert_non_null(c);
    stripe_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_200_payment_intent),
        cmocka_unit_test(test_fixture_402_card_declined),
        cmocka_unit_test(test_fixture_402_authentication_required),
        cmocka_unit_test(test_fixture_429),
        cmocka_unit_test(test_fixture_500),
        cmocka_unit_test(test_fixture_400_idempotency),
        cmocka_unit_test(test_fixture_refund_and_dispute),
        cmocka_unit_test(test_should_retry_overrides),
        cmocka_unit_test(test_other_statuses),
        cmocka_unit_test(test_non_json_bodies),
        cmocka_unit_test(test_network_error),
        cmocka_unit_test(test_outcome_names),
        cmocka_unit_test(test_form_brackets_and_escapes),
        cmocka_unit_test(test_form_integers_and_refusals),
        cmocka_unit_test(test_form_grows),
        cmocka_unit_test(test_form_builders),
        cmocka_unit_test(test_client_schemes),
        cmocka_unit_test(test_client_keys_and_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
