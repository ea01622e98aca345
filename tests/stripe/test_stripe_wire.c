/* test_stripe_wire.c: the Stripe client (common/stripe.c) on the wire,
 * against the Stripe stand-in (tests/support/stripe_standin/).
 *
 * Covers: the headers every request carries (Authorization: Bearer, the
 * pinned Stripe-Version, Idempotency-Key on POSTs only) as the stand-in
 * recorded them; the form body as the stand-in decoded it; a replay of the
 * same key answering the same PaymentIntent; a key reused with other
 * parameters; declines; 500/429 then success with the same key and
 * Stripe-Should-Retry; 100 calls through stripe_perform_many under the rate
 * cap (asserted on the stand-in's own count of requests in any one-second
 * window, never on time); a GET with a query (the refund list); network
 * errors and timeouts; calls refused before sending; metrics.
 *
 * Each test starts its own stand-in. Only outcomes are asserted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/metrics.h"
#include "ledgerline/stripe.h"
#include "support/standin.h"

#define SUITE_KEY "sk_test_StripeCliSuite0123456"

static const char *const standin_args[] = {"--api-key", SUITE_KEY, NULL};

/* ---- helpers --------------------------------------------------------------- */

static stripe_client *client_for(const char *base, const char *key, int max_rps, int timeout_ms,
                                 metrics_registry *m)
{
    stripe_config cfg = {.secret_key = key,
                         .api_base = base,
                         .max_rps = max_rps,
                         .timeout_ms = timeout_ms,
                         .connect_timeout_ms = 2000,
                         .metrics = m};
    char err[256];
    stripe_client *c = stripe_client_new(&cfg, err, sizeof err);
    if (c == NULL)
        fail_msg("stripe_client_new(%s): %s", base, err);
    return c;
}

/* One POST /v1/payment_intents; the caller frees call->result. */
static void post_pi(stripe_client *c, stripe_call *call, stripe_form *f, const char *key)
{
    memset(call, 0, sizeof *call);
    call->method = "POST";
    call->path = "/v1/payment_intents";
    call->form = f;
    call->idempotency_key = key;
    char err[256];
    if (stripe_perform(c, call, err, sizeof err) != 0)
        fail_msg("stripe_perform: %s", err);
}

static stripe_form *pi_form(int64_t amount, const char *pm, int64_t invoice, const char *key)
{
    stripe_form *f =
        stripe_form_payment_intent(amount, "usd", "cus_QXg1o8vcGmoR32", pm, invoice, 7, key);
    assert_non_null(f);
    return f;
}

/* The recorded /v1 requests (array; caller decrefs the root it returns). */
static json_t *requests(standin *s)
{
    json_t *r = standin_get(s, "/__standin/requests");
    assert_non_null(r);
    /* Either a bare array or {"requests":[...]}: accept both. */
    if (json_is_array(r))
        return r;
    json_t *a = json_object_get(r, "requests");
    assert_true(json_is_array(a));
    json_incref(a);
    json_decref(r);
    return a;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- tests ----------------------------------------------------------------- */

static void test_headers_and_body(void **state)
{
    (void)state;
    standin *s = standin_start(standin_args);
    stripe_client *c = client_for(standin_url(s), SUITE_KEY, 25, 0, NULL);

    stripe_form *f = pi_form(1099, "pm_card_visa", 42, "autopay:42:1");
    /* Separators, spaces and UTF-8 survive the trip. */
    assert_int_equal(stripe_form_add(f, "metadata[note]", "a&b=c d+e %41 Zürich €"), 0);
    stripe_call call;
    post_pi(c, &call, f, "autopay:42:1");
    assert_int_equal(call.result.outcome, STRIPE_OK);
    assert_int_equal(call.result.http_status, 200);
    assert_string_equal(call.result.object_status, "succeeded");
    assert_memory_equal(call.result.object_id, "pi_", 3);
    assert_memory_equal(call.result.latest_charge, "ch_", 3);
    assert_int_equal(call.result.amount, 1099);
    assert_memory_equal(call.result.request_id, "req_", 4); /* Request-Id header read */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(call.result.body, "metadata"), "note")),
        "a&b=c d+e %41 Zürich €");

    json_t *reqs = requests(s);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *r = json_array_get(reqs, 0);
    assert_string_equal(jstr(r, "method"), "POST");
    assert_string_equal(jstr(r, "path"), "/v1/payment_intents");
    assert_string_equal(jstr(r, "idempotency_key"), "autopay:42:1");
    assert_string_equal(jstr(r, "stripe_version"), STRIPE_API_VERSION);
    assert_string_equal(jstr(r, "stripe_version"), "2024-06-20");
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
    assert_false(json_is_true(json_object_get(r, "replayed")));
    assert_string_equal(jstr(r, "object_id"), call.result.object_id);
    json_t *p = json_object_get(r, "params");
    assert_string_equal(jstr(p, "amount"), "1099");
    assert_string_equal(jstr(p, "currency"), "usd");
    assert_string_equal(jstr(p, "customer"), "cus_QXg1o8vcGmoR32");
    assert_string_equal(jstr(p, "payment_method"), "pm_card_visa");
    assert_string_equal(jstr(p, "confirm"), "true");
    assert_string_equal(jstr(p, "off_session"), "true");
    assert_string_equal(jstr(p, "metadata[invoice_id]"), "42");
    assert_string_equal(jstr(p, "metadata[firm_id]"), "7");
    assert_string_equal(jstr(p, "metadata[attempt_key]"), "autopay:42:1");
    assert_string_equal(jstr(p, "metadata[note]"), "a&b=c d+e %41 Zürich €");
    json_decref(reqs);
    stripe_result_free(&call.result);

    /* Authorization: the stand-in accepts only SUITE_KEY as a Bearer token,
     * so the 200 above proves it was sent; another key is refused (401),
     * which is our mistake, not an outage. */
    stripe_client *wrong = client_for(standin_url(s), "sk_test_NotTheSuiteKey0123456", 25, 0, NULL);
    post_pi(wrong, &call, f, "autopay:42:2");
    assert_int_equal(call.result.outcome, STRIPE_INVALID_REQUEST);
    assert_int_equal(call.result.http_status, 401);
    assert_false(stripe_result_transient(&call.result));
    assert_non_null(strstr(call.result.message, "API Key"));
    stripe_result_free(&call.result);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);

    stripe_stats st = stripe_client_stats(c);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.by_outcome[STRIPE_OK], 1);
    st = stripe_client_stats(wrong);
    assert_int_equal(st.by_outcome[STRIPE_INVALID_REQUEST], 1);

    stripe_form_free(f);
    stripe_client_free(wrong);
    stripe_client_free(c);
    standin_stop(s);
}

static void test_replay_same_intent(void **state)
{
    (void)state;
    standin *s = standin_start(standin_args);
    stripe_client *c = client_for(standin_url(s), SUITE_KEY, 25, 0, NULL);
    stripe_form *f = pi_form(2500, "pm_card_visa", 43, "autopay:43:1");
    stripe_call a, b;
    post_pi(c, &a, f, "autopay:43:1");
    post_pi(c, &b, f, "autopay:43:1"); /* a process that crashed after the call replays */
    assert_int_equal(a.result.outcome, STRIPE_OK);
    assert_int_equal(b.result.outcome, STRIPE_OK);
    assert_memory_equal(a.result.object_id, "pi_", 3);
    assert_string_equal(a.result.object_id, b.result.object_id);
    assert_string_equal(a.result.latest_charge, b.result.latest_charge);
    assert_int_equal(b.result.amount, 2500);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
    assert_int_equal(standin_stat(s, "replays"), 1);
    assert_int_equal(standin_count(s, "POST", "/v1/payment_intents"), 2);
    json_t *reqs = requests(s);
    assert_true(json_is_true(json_object_get(json_array_get(reqs, 1), "replayed")));
    json_decref(reqs);
    stripe_result_free(&a.result);
    stripe_result_free(&b.result);

    /* The same key with another amount: an idempotency error, never retried
     * on our own (it could charge twice). */
    stripe_form *g = pi_form(2600, "pm_card_visa", 43, "autopay:43:1");
    post_pi(c, &a, g, "autopay:43:1");
    assert_int_equal(a.result.outcome, STRIPE_IDEMPOTENCY_ERROR);
    assert_int_equal(a.result.http_status, 400);
    assert_false(stripe_result_transient(&a.result));
    assert_non_null(strstr(a.result.message, "autopay:43:1"));
    stripe_result_free(&a.result);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);

    stripe_form_free(f);
    stripe_form_free(g);
    stripe_client_free(c);
    standin_stop(s);
}

static void test_declines(void **state)
{
    (void)state;
    standin *s = standin_start(standin_args);
    stripe_client *c = client_for(standin_url(s), SUITE_KEY, 25, 0, NULL);
    stripe_form *f = pi_form(2500, "pm_card_chargeDeclinedInsufficientFunds", 43, "k-decline");
    stripe_call call;
    post_pi(c, &call, f, "k-decline");
    assert_int_equal(call.result.outcome, STRIPE_CARD_ERROR);
    assert_int_equal(call.result.http_status, 402);
    assert_false(stripe_result_transient(&call.result));
    assert_string_equal(call.result.code, "card_declined");
    assert_string_equal(call.result.decline_code, "insufficient_funds");
    assert_true(call.result.message[0] != '\0');
    assert_memory_equal(call.result.object_id, "pi_", 3); /* error.payment_intent */
    assert_string_equal(call.result.object_status, "requires_payment_method");
    assert_int_equal(call.result.amount, 2500);
    stripe_result_free(&call.result);
    stripe_form_free(f);

    f = pi_form(4900, "pm_card_authenticationRequired", 44, "k-auth");
    post_pi(c, &call, f, "k-auth");
    assert_int_equal(call.result.outcome, STRIPE_CARD_ERROR);
    assert_string_equal(call.result.code, "authentication_required");
    assert_string_equal(call.result.decline_code, "authentication_required");
    assert_memory_equal(call.result.object_id, "pi_", 3);
    stripe_result_free(&call.result);
    stripe_form_free(f);

    f = pi_form(100, "pm_card_chargeDeclinedExpiredCard", 45, "k-expired");
    post_pi(c, &call, f, "k-expired");
    assert_int_equal(call.result.outcome, STRIPE_CARD_ERROR);
    assert_string_equal(call.result.code, "expired_card");
    assert_string_equal(call.result.decline_code, "expired_card");
    stripe_result_free(&call.result);
    stripe_form_free(f);

    stripe_client_free(c);
    standin_stop(s);
}

static void test_transient_then_success(void **state)
{
    (void)state;
    standin *s = standin_start(standin_args);
    stripe_client *c = client_for(standin_url(s), SUITE_KEY, 25, 0, NULL);
    static const struct {
        const char *pm;
        stripe_outcome first;
        long status;
    } cases[] = {{"pm_standin_500_then_visa", STRIPE_SERVER_ERROR, 500},
                 {"pm_standin_429_then_visa", STRIPE_RATE_LIMITED, 429}};
    for (size_t i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "k-transient-%zu", i);
        stripe_form *f = pi_form(1000, cases[i].pm, 50 + (int64_t)i, key);
        stripe_call call;
        post_pi(c, &call, f, key);
        assert_int_equal(call.result.outcome, cases[i].first);
        assert_int_equal(call.result.http_status, cases[i].status);
        assert_true(stripe_result_transient(&call.result));
        assert_string_equal(call.result.object_id, "");
        stripe_result_free(&call.result);
        post_pi(c, &call, f, key); /* the same key again */
        assert_int_equal(call.result.outcome, STRIPE_OK);
        assert_string_equal(call.result.object_status, "succeeded");
        stripe_result_free(&call.result);
        stripe_form_free(f);
    }
    assert_int_equal(standin_stat(s, "payment_intents_created"), 2);

    /* Injected faults with Stripe-Should-Retry: false wins over the status. */
    json_decref(standin_post(s, "/__standin/fail",
                             "{\"status\":500,\"count\":1,\"should_retry\":\"false\"}"));
    stripe_form *f = pi_form(1000, "pm_card_visa", 60, "k-noretry");
    stripe_call call;
    post_pi(c, &call, f, "k-noretry");
    assert_int_equal(call.result.outcome, STRIPE_SERVER_ERROR);
    assert_false(call.result.retryable);
    assert_false(stripe_result_transient(&call.result));
    stripe_result_free(&call.result);
    json_decref(
        standin_post(s, "/__standin/fail", "{\"status\":429,\"count\":1,\"should_retry\":null}"));
    post_pi(c, &call, f, "k-noretry");
    assert_int_equal(call.result.outcome, STRIPE_RATE_LIMITED);
    assert_true(stripe_result_transient(&call.result));
    stripe_result_free(&call.result);
    post_pi(c, &call, f, "k-noretry");
    assert_int_equal(call.result.outcome, STRIPE_OK);
    stripe_result_free(&call.result);
    stripe_form_free(f);

    stripe_stats st = stripe_client_stats(c);
    assert_int_equal(st.requests, 7);
    assert_int_equal(st.by_outcome[STRIPE_OK], 3);
    assert_int_equal(st.by_outcome[STRIPE_SERVER_ERROR], 2);
    assert_int_equal(st.by_outcome[STRIPE_RATE_LIMITED], 2);
    stripe_client_free(c);
    standin_stop(s);
}

/* 100 charges at once, 300 ms each at the stand-in, a cap of 20 requests per
 * second: every call answered, and the stand-in never saw more than 20
 * arrivals in any one-second window. */
static void test_rate_cap_many(void **state)
{
    (void)state;
    enum { N = 100, CAP = 20 };
    standin *s =
        standin_start((const char *[]){"--api-key", SUITE_KEY, "--latency-ms", "300", NULL});
    metrics_registry *m = metrics_new();
    assert_non_null(m);
    stripe_client *c = client_for(standin_url(s), SUITE_KEY, CAP, 0, m);
    stripe_call *calls = calloc(N, sizeof *calls);
    stripe_form **forms = calloc(N, sizeof *forms);
    char(*keys)[32] = calloc(N, sizeof *keys);
    assert_non_null(calls);
    assert_non_null(forms);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "autopay:%d:1", 1000 + i);
        forms[i] = pi_form(100 + i, "pm_card_visa", 1000 + i, keys[i]);
        calls[i] = (stripe_call){.method = "POST",
                                 .path = "/v1/payment_intents",
                                 .form = forms[i],
                                 .idempotency_key = keys[i]};
    }
    char err[256];
    assert_int_equal(stripe_perform_many(c, calls, N, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        if (calls[i].result.outcome != STRIPE_OK)
            fail_msg("call %d: %s (%ld) %s", i, stripe_outcome_name(calls[i].result.outcome),
                     calls[i].result.http_status, calls[i].result.message);
        assert_int_equal(calls[i].result.amount, 100 + i); /* each answer with its own call */
        for (int j = 0; j < i; j++)
            assert_string_not_equal(calls[i].result.object_id, calls[j].result.object_id);
    }
    assert_int_equal(standin_stat(s, "payment_intents_created"), N);
    assert_int_equal(standin_stat(s, "requests"), N);
    /* The promise, measured where it is kept: the client never sent more
     * than CAP requests within any one-second window. */
    stripe_stats sent = stripe_client_stats(c);
    if (sent.max_sent_in_window > CAP)
        fail_msg("the client sent %llu requests in one second; the cap is %d",
                 (unsigned long long)sent.max_sent_in_window, CAP);
    /* The stand-in counts arrivals on its own clock: its threads may be
     * scheduled late on a loaded machine, bunching a boundary's arrivals.
     * The client paces over 1.02 s, so more than one extra is a real
     * breach. */
    int64_t most = standin_stat(s, "max_requests_in_any_second");
    if (most > CAP + 1)
        fail_msg("the stand-in saw %lld requests in one second; the cap is %d", (long long)most,
                 CAP);
    assert_true(most >= 1);
    /* Concurrent, not one after another: several were in flight at once. */
    assert_true(standin_stat(s, "max_in_flight") >= 2);

    stripe_stats st = stripe_client_stats(c);
    assert_int_equal(st.requests, N);
    assert_int_equal(st.by_outcome[STRIPE_OK], N);
    assert_int_equal(metrics_counter_get(m, "billing_stripe_requests_total", "outcome", "ok", NULL),
                     N);
    size_t len = 0;
    char *text = metrics_render(m, &len);
    assert_non_null(strstr(text, "billing_stripe_request_seconds_count 100"));
    free(text);

    for (int i = 0; i < N; i++) {
        stripe_result_free(&calls[i].result);
        stripe_form_free(forms[i]);
    }
    free(calls);
    free(forms);
    free(keys);
    stripe_client_free(c);
    metrics_free(m);
    standin_stop(s);
}

static void test_get_refund_list(void **state)
{
    (void)state;
    standin *s = standin_start(standin_args);
    stripe_client *c = client_for(standin_url(s), SUITE_KEY, 25, 0, NULL);
    stripe_form *f = pi_form(2000, "pm_card_visa", 42, "k-pi");
    stripe_call call;
    post_pi(c, &call, f, "k-pi");
    assert_int_equal(call.result.outcome, STRIPE_OK);
    char pi[STRIPE_ID_MAX];
    snprintf(pi, sizeof pi, "%s", call.result.object_id);
    stripe_result_free(&call.result);
    stripe_form_free(f);

    char err[256];
    static const int64_t amounts[] = {500, 300};
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "refund:42:%d", i + 1);
        f = stripe_form_refund(pi, NULL, amounts[i], "requested_by_customer", 42);
        call = (stripe_call){
            .method = "POST", .path = "/v1/refunds", .form = f, .idempotency_key = key};
        assert_int_equal(stripe_perform(c, &call, err, sizeof err), 0);
        assert_int_equal(call.result.outcome, STRIPE_OK);
        assert_memory_equal(call.result.object_id, "re_", 3);
        assert_int_equal(call.result.amount, amounts[i]);
        stripe_result_free(&call.result);
        stripe_form_free(f);
    }
    /* More than is left: refused by Stripe, not an outage. */
    f = stripe_form_refund(pi, NULL, 5000, NULL, 42);
    call = (stripe_call){
        .method = "POST", .path = "/v1/refunds", .form = f, .idempotency_key = "refund:42:3"};
    assert_int_equal(stripe_perform(c, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_INVALID_REQUEST);
    assert_string_equal(call.result.code, "amount_too_large");
    stripe_result_free(&call.result);
    stripe_form_free(f);

    /* GET: the form becomes the query string; a key given anyway is not sent
     * (idempotency keys are for POSTs). */
    f = stripe_form_new();
    assert_int_equal(stripe_form_add(f, "payment_intent", pi), 0);
    assert_int_equal(stripe_form_add_i64(f, "limit", 10), 0);
    call = (stripe_call){
        .method = "GET", .path = "/v1/refunds", .form = f, .idempotency_key = "ignored-on-get"};
    assert_int_equal(stripe_perform(c, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_OK);
    assert_string_equal(json_string_value(json_object_get(call.result.body, "object")), "list");
    json_t *data = json_object_get(call.result.body, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 0), "amount")), 300);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "amount")), 500);
    stripe_result_free(&call.result);
    stripe_form_free(f);

    /* A path that already has a query: the form is appended with '&'. */
    f = stripe_form_new();
    assert_int_equal(stripe_form_add(f, "payment_intent", pi), 0);
    call = (stripe_call){.method = "GET", .path = "/v1/refunds?limit=1", .form = f};
    assert_int_equal(stripe_perform(c, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_OK);
    data = json_object_get(call.result.body, "data");
    assert_int_equal(json_array_size(data), 1);
    assert_true(json_is_true(json_object_get(call.result.body, "has_more")));
    stripe_result_free(&call.result);
    stripe_form_free(f);

    json_t *reqs = requests(s);
    size_t gets = 0;
    for (size_t i = 0; i < json_array_size(reqs); i++) {
        json_t *r = json_array_get(reqs, i);
        if (strcmp(jstr(r, "method"), "GET") != 0)
            continue;
        gets++;
        assert_string_equal(jstr(r, "path"), "/v1/refunds");
        assert_true(json_is_null(json_object_get(r, "idempotency_key")));
        assert_string_equal(jstr(r, "stripe_version"), "2024-06-20");
        assert_string_equal(jstr(json_object_get(r, "params"), "payment_intent"), pi);
        assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
        if (gets == 1)
            assert_string_equal(jstr(json_object_get(r, "params"), "limit"), "10");
        else
            assert_string_equal(jstr(json_object_get(r, "params"), "limit"), "1");
    }
    assert_int_equal(gets, 2);
    json_decref(reqs);
    stripe_client_free(c);
    standin_stop(s);
}

static void test_network_errors(void **state)
{
    (void)state;
    /* Nothing listens on port 1. */
    stripe_client *c = client_for("http://127.0.0.1:1", SUITE_KEY, 25, 0, NULL);
    stripe_form *f = pi_form(1000, "pm_card_visa", 70, "k-net");
    stripe_call call;
    post_pi(c, &call, f, "k-net");
    assert_int_equal(call.result.outcome, STRIPE_NETWORK_ERROR);
    assert_int_equal(call.result.http_status, 0);
    assert_true(stripe_result_transient(&call.result));
    assert_true(call.result.message[0] != '\0');
    stripe_result_free(&call.result);
    stripe_client_free(c);

    /* An answer slower than the client's whole-request timeout. */
    standin *s =
        standin_start((const char *[]){"--api-key", SUITE_KEY, "--latency-ms", "3000", NULL});
    c = client_for(standin_url(s), SUITE_KEY, 25, 300, NULL);
    post_pi(c, &call, f, "k-net");
    assert_int_equal(call.result.outcome, STRIPE_NETWORK_ERROR);
    assert_true(stripe_result_transient(&call.result));
    stripe_result_free(&call.result);
    /* The stand-in got it: a timeout is exactly why the same key is replayed. */
    assert_int_equal(standin_count(s, "POST", "/v1/payment_intents"), 1);
    stripe_stats st = stripe_client_stats(c);
    assert_int_equal(st.by_outcome[STRIPE_NETWORK_ERROR], 1);
    stripe_form_free(f);
    stripe_client_free(c);
    standin_stop(s);
}

static void test_invalid_calls_not_sent(void **state)
{
    (void)state;
    standin *s = standin_start(standin_args);
    stripe_client *c = client_for(standin_url(s), SUITE_KEY, 25, 0, NULL);
    stripe_form *f = pi_form(1000, "pm_card_visa", 80, "k-ok");
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    stripe_call calls[] = {
        {.method = "POST", .path = "/v1/payment_intents", .form = f}, /* no key */
        {.method = "POST", .path = "/v1/payment_intents", .form = f, .idempotency_key = ""},
        {.method = "POST", .path = "/v1/payment_intents", .form = f, .idempotency_key = longkey},
        {.method = "DELETE", .path = "/v1/payment_intents", .idempotency_key = "k"},
        {.method = NULL, .path = "/v1/payment_intents", .idempotency_key = "k"},
        {.method = "GET", .path = "/__standin/stats"},
        {.method = "GET", .path = NULL},
        {.method = "POST", .path = "/v1/payment_intents", .form = f, .idempotency_key = "k-ok"},
    };
    size_t n = sizeof calls / sizeof calls[0];
    char err[256];
    assert_int_equal(stripe_perform_many(c, calls, n, err, sizeof err), 0);
    for (size_t i = 0; i + 1 < n; i++) {
        assert_int_equal(calls[i].result.outcome, STRIPE_INVALID_REQUEST);
        assert_false(stripe_result_transient(&calls[i].result));
        assert_non_null(strstr(calls[i].result.message, "not sent"));
        stripe_result_free(&calls[i].result);
    }
    assert_int_equal(calls[n - 1].result.outcome, STRIPE_OK);
    stripe_result_free(&calls[n - 1].result);
    /* Only the valid one reached the stand-in. */
    assert_int_equal(standin_stat(s, "requests"), 1);
    /* No calls at all is fine. */
    assert_int_equal(stripe_perform_many(c, calls, 0, err, sizeof err), 0);
    stripe_form_free(f);
    stripe_client_free(c);
    standin_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_and_body), cmocka_unit_test(test_replay_same_intent),
        cmocka_unit_test(test_declines),         cmocka_unit_test(test_transient_then_success),
        cmocka_unit_test(test_rate_cap_many),    cmocka_unit_test(test_get_refund_list),
        cmocka_unit_test(test_network_errors),   cmocka_unit_test(test_invalid_calls_not_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
