/* test_standin.c: `stripe-standin` driven over real HTTP (libcurl), the way
 * the Stripe client in common/stripe.c will talk to it.
 *
 * Covers: the success body's shape (ids, amount, metadata), every decline
 * test method, authentication_required, processing + complete -> webhook
 * envelope, 500/429-then-success with the same key, replays (identical bytes,
 * Idempotent-Replayed), key reuse with other parameters, a key in flight
 * (409), auth (401), parameter validation, dispute evidence, refunds (create,
 * list, over-refund, seeded), fault injection, declines-then-success, stats,
 * the request log, and 40 concurrent requests under injected latency.
 *
 * Each test starts its own stand-in, so nothing leaks between tests. Only
 * outcomes are asserted (statuses, bodies, counts), never timings. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "support/standin.h"

#define KEY_OK "Bearer sk_test_standin_suite"
#define PI_FORM(amount, pm, inv)                                                                \
    "amount=" amount "&currency=usd&payment_method=" pm                                        \
    "&customer=cus_QXg1o8vcGmoR32&confirm=true&off_session=true&metadata[invoice_id]=" inv     \
    "&metadata[firm_id]=7"

/* ---- a tiny HTTP client for /v1 ------------------------------------------ */

typedef struct {
    long status;
    json_t *body;
    char *raw;
    char request_id[64];
    char replayed[16];
    char should_retry[16];
} resp;

static size_t t_body(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = r->raw ? strlen(r->raw) : 0, add = size * n;
    char *d = realloc(r->raw, len + add + 1);
    if (d == NULL)
        return 0;
    memcpy(d + len, p, add);
    d[len + add] = '\0';
    r->raw = d;
    return add;
}

static void t_header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    while (*v == ' ')
        v++;
    size_t vl = (size_t)(line + n - v);
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    if (vl >= outlen)
        vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t t_header(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    t_header_value(p, size * n, "Request-Id", r->request_id, sizeof r->request_id);
    t_header_value(p, size * n, "Idempotent-Replayed", r->replayed, sizeof r->replayed);
    t_header_value(p, size * n, "Stripe-Should-Retry", r->should_retry, sizeof r->should_retry);
    return size * n;
}

/* One /v1 request; auth NULL = a valid test key, "" = no Authorization. */
static resp api(const standin *s, const char *method, const char *path, const char *form,
                const char *key, const char *auth)
{
    resp r = {0};
    char url[512], hk[300], ha[300];
    snprintf(url, sizeof url, "%s%s", standin_url(s), path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Stripe-Version: 2024-06-20");
    if (auth == NULL || *auth != '\0') {
        snprintf(ha, sizeof ha, "Authorization: %s", auth != NULL ? auth : KEY_OK);
        h = curl_slist_append(h, ha);
    }
    if (key != NULL) {
        snprintf(hk, sizeof hk, "Idempotency-Key: %s", key);
        h = curl_slist_append(h, hk);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, t_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, t_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form != NULL ? form : "");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    r.body = r.raw != NULL ? json_loads(r.raw, 0, NULL) : NULL;
    if (r.body == NULL)
        fail_msg("%s %s answered %ld, not JSON: %s", method, path, r.status,
                 r.raw ? r.raw : "(empty)");
    return r;
}

static void resp_free(resp *r)
{
    json_decref(r->body);
    free(r->raw);
    memset(r, 0, sizeof *r);
}

static const char *jstr(const json_t *o, const char *path)
{
    /* "a.b.c" walks nested objects. */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok != NULL && cur != NULL; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

static json_int_t jint(const json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok != NULL && cur != NULL; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    if (!json_is_integer(cur))
        fail_msg("%s is not an integer", path);
    return json_integer_value(cur);
}

static bool is_id(const char *s, const char *prefix, size_t n)
{
    if (s == NULL || strncmp(s, prefix, strlen(prefix)) != 0 || strlen(s) != strlen(prefix) + n)
        return false;
    for (const char *c = s + strlen(prefix); *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

/* ---- fixtures ----------------------------------------------------------- */

static int start(void **state)
{
    *state = standin_start(NULL);
    return *state == NULL ? -1 : 0;
}

static int stop(void **state)
{
    standin_stop(*state);
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_success_shape(void **state)
{
    standin *s = *state;
    resp r = api(s, "POST", "/v1/payment_intents",
                 PI_FORM("1099", "pm_card_visa", "42") "&metadata[note]=a+b%26c%C3%A9&metadata%5Benc%5D=y",
                 "inv-42-a1", NULL);
    assert_int_equal(r.status, 200);
    assert_true(is_id(r.request_id, "req_", 14));
    assert_string_equal(r.replayed, "");
    const char *id = jstr(r.body, "id");
    assert_true(is_id(id, "pi_", 24));
    assert_string_not_equal(id, "pi_1PgafyB7WZ01zgkWSjxsAJo3");
    assert_true(is_id(jstr(r.body, "latest_charge"), "ch_", 24));
    char secret_prefix[64];
    snprintf(secret_prefix, sizeof secret_prefix, "%s_secret_", id);
    assert_int_equal(strncmp(jstr(r.body, "client_secret"), secret_prefix, strlen(secret_prefix)), 0);
    assert_string_equal(jstr(r.body, "object"), "payment_intent");
    assert_string_equal(jstr(r.body, "status"), "succeeded");
    assert_int_equal(jint(r.body, "amount"), 1099);
    assert_int_equal(jint(r.body, "amount_received"), 1099);
    assert_string_equal(jstr(r.body, "currency"), "usd");
    assert_string_equal(jstr(r.body, "customer"), "cus_QXg1o8vcGmoR32");
    assert_string_equal(jstr(r.body, "payment_method"), "pm_card_visa");
    assert_string_equal(jstr(r.body, "metadata.invoice_id"), "42");
    assert_string_equal(jstr(r.body, "metadata.firm_id"), "7");
    assert_string_equal(jstr(r.body, "metadata.note"), "a b&c\xc3\xa9");
    assert_string_equal(jstr(r.body, "metadata.enc"), "y");
    assert_int_equal(json_object_size(json_object_get(r.body, "metadata")), 4);
    /* Untouched fixture members keep the real shape. */
    assert_string_equal(jstr(r.body, "capture_method"), "automatic_async");
    assert_true(json_is_null(json_object_get(r.body, "last_payment_error")));

    /* Another intent gets other ids; a pm_1... id succeeds too and is echoed. */
    resp r2 = api(s, "POST", "/v1/payment_intents",
                  PI_FORM("2500", "pm_1Pgc75B7WZ01zgkWlHVgdEGJ", "43"), "inv-43-a1", NULL);
    assert_int_equal(r2.status, 200);
    assert_string_not_equal(jstr(r2.body, "id"), id);
    assert_string_equal(jstr(r2.body, "payment_method"), "pm_1Pgc75B7WZ01zgkWlHVgdEGJ");
    assert_int_equal(jint(r2.body, "amount"), 2500);
    resp r3 = api(s, "POST", "/v1/payment_intents", PI_FORM("300", "pm_card_mastercard", "44"),
                  NULL, NULL);
    assert_int_equal(r3.status, 200);

    /* The request log: decoded params, key, version, outcome. */
    json_t *log = standin_get(s, "/__standin/requests");
    assert_int_equal(json_array_size(log), 3);
    json_t *first = json_array_get(log, 0);
    assert_int_equal(jint(first, "seq"), 1);
    assert_string_equal(jstr(first, "method"), "POST");
    assert_string_equal(jstr(first, "path"), "/v1/payment_intents");
    assert_string_equal(jstr(first, "idempotency_key"), "inv-42-a1");
    assert_string_equal(jstr(first, "stripe_version"), "2024-06-20");
    assert_int_equal(jint(first, "status"), 200);
    assert_false(json_is_true(json_object_get(first, "replayed")));
    assert_string_equal(jstr(first, "object_id"), id);
    assert_string_equal(json_string_value(json_object_get(json_object_get(first, "params"),
                                                          "metadata[invoice_id]")),
                        "42");
    assert_int_equal(jint(first, "latency_injected_ms"), 0);
    assert_true(json_is_null(json_object_get(json_array_get(log, 2), "idempotency_key")));
    json_decref(log);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 3);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 3);
    resp_free(&r);
    resp_free(&r2);
    resp_free(&r3);
}

static const struct {
    const char *pm, *code, *decline_code;
} declines[] = {
    {"pm_card_chargeDeclined", "card_declined", "generic_decline"},
    {"pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"},
    {"pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"},
    {"pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"},
    {"pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent"},
    {"pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"},
    {"pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"},
    {"pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"},
    {"pm_card_chargeDeclinedPickupCard", "card_declined", "pickup_card"},
    {"pm_card_chargeDeclinedCardNotSupported", "card_declined", "card_not_supported"},
    {"pm_card_chargeDeclinedIncorrectNumber", "incorrect_number", "incorrect_number"},
    {"pm_card_chargeDeclinedInvalidAccount", "card_declined", "invalid_account"},
};

static void test_declines(void **state)
{
    standin *s = *state;
    size_t n = sizeof declines / sizeof declines[0];
    for (size_t i = 0; i < n; i++) {
        char form[512], key[64];
        snprintf(form, sizeof form,
                 "amount=%zu&currency=usd&payment_method=%s&confirm=true&off_session=true"
                 "&metadata[invoice_id]=%zu",
                 2500 + i, declines[i].pm, 100 + i);
        snprintf(key, sizeof key, "decline-%zu", i);
        resp r = api(s, "POST", "/v1/payment_intents", form, key, NULL);
        assert_int_equal(r.status, 402);
        json_t *e = json_object_get(r.body, "error");
        assert_string_equal(jstr(e, "type"), "card_error");
        assert_string_equal(jstr(e, "code"), declines[i].code);
        assert_string_equal(jstr(e, "decline_code"), declines[i].decline_code);
        assert_non_null(jstr(e, "message"));
        assert_true(is_id(jstr(e, "charge"), "ch_", 24));
        json_t *pi = json_object_get(e, "payment_intent");
        assert_true(is_id(jstr(pi, "id"), "pi_", 24));
        assert_string_equal(jstr(pi, "status"), "requires_payment_method");
        assert_int_equal(jint(pi, "amount"), (json_int_t)(2500 + i));
        assert_int_equal(jint(pi, "amount_received"), 0);
        char inv[16];
        snprintf(inv, sizeof inv, "%zu", 100 + i);
        assert_string_equal(jstr(pi, "metadata.invoice_id"), inv);
        assert_string_equal(jstr(pi, "latest_charge"), jstr(e, "charge"));
        assert_string_equal(jstr(pi, "last_payment_error.code"), declines[i].code);
        assert_string_equal(jstr(pi, "last_payment_error.decline_code"),
                            declines[i].decline_code);
        assert_string_equal(jstr(pi, "last_payment_error.charge"), jstr(e, "charge"));
        assert_string_equal(jstr(e, "payment_method.id"), declines[i].pm);
        resp_free(&r);
    }
    assert_int_equal(standin_stat(s, "payment_intents_created"), (int64_t)n);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 0);
}

static void test_authentication_required(void **state)
{
    standin *s = *state;
    resp r = api(s, "POST", "/v1/payment_intents",
                 PI_FORM("4900", "pm_card_authenticationRequired", "44"), "inv-44-a1", NULL);
    assert_int_equal(r.status, 402);
    json_t *e = json_object_get(r.body, "error");
    assert_string_equal(jstr(e, "type"), "card_error");
    assert_string_equal(jstr(e, "code"), "authentication_required");
    assert_string_equal(jstr(e, "decline_code"), "authentication_required");
    assert_string_equal(jstr(e, "payment_intent.status"), "requires_payment_method");
    assert_string_equal(jstr(e, "payment_intent.metadata.invoice_id"), "44");
    assert_int_equal(jint(e, "payment_intent.amount"), 4900);
    assert_string_not_equal(jstr(e, "payment_intent.id"), "pi_1PgcC1B7WZ01zgkWkR7pX3nB");
    resp_free(&r);
}

static void test_processing_complete(void **state)
{
    standin *s = *state;
    resp a = api(s, "POST", "/v1/payment_intents", PI_FORM("1500", "pm_standin_processing", "50"),
                 "inv-50-a1", NULL);
    resp b = api(s, "POST", "/v1/payment_intents", PI_FORM("1600", "pm_standin_processing", "51"),
                 "inv-51-a1", NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(jstr(a.body, "status"), "processing");
    assert_int_equal(jint(a.body, "amount_received"), 0);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 2);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 0);
    const char *pa = jstr(a.body, "id"), *pb = jstr(b.body, "id");

    /* A refund before the money arrived is refused. */
    char form[128];
    snprintf(form, sizeof form, "payment_intent=%s", pa);
    resp early = api(s, "POST", "/v1/refunds", form, "re-early", NULL);
    assert_int_equal(early.status, 400);
    resp_free(&early);

    char body[256];
    snprintf(body, sizeof body, "{\"payment_intent\":\"%s\",\"outcome\":\"succeeded\"}", pa);
    json_t *ev = standin_post(s, "/__standin/complete", body);
    assert_true(is_id(jstr(ev, "id"), "evt_", 24));
    assert_string_equal(jstr(ev, "object"), "event");
    assert_string_equal(jstr(ev, "type"), "payment_intent.succeeded");
    assert_string_equal(jstr(ev, "api_version"), "2024-06-20");
    json_t *o = json_object_get(json_object_get(ev, "data"), "object");
    assert_string_equal(jstr(o, "id"), pa);
    assert_string_equal(jstr(o, "status"), "succeeded");
    assert_int_equal(jint(o, "amount"), 1500);
    assert_int_equal(jint(o, "amount_received"), 1500);
    assert_string_equal(jstr(o, "metadata.invoice_id"), "50");
    assert_string_equal(jstr(o, "latest_charge"), jstr(a.body, "latest_charge"));
    assert_true(json_is_object(json_object_get(ev, "request")));
    json_decref(ev);

    /* Completing twice is refused; the intent is no longer processing. */
    json_t *again = standin_post(s, "/__standin/complete", body);
    assert_non_null(json_object_get(again, "error"));
    json_decref(again);

    snprintf(body, sizeof body, "{\"payment_intent\":\"%s\",\"outcome\":\"failed\"}", pb);
    ev = standin_post(s, "/__standin/complete", body);
    assert_string_equal(jstr(ev, "type"), "payment_intent.payment_failed");
    o = json_object_get(json_object_get(ev, "data"), "object");
    assert_string_equal(jstr(o, "id"), pb);
    assert_string_equal(jstr(o, "status"), "requires_payment_method");
    assert_int_equal(jint(o, "amount"), 1600);
    assert_string_equal(jstr(o, "metadata.invoice_id"), "51");
    assert_string_equal(jstr(o, "last_payment_error.type"), "card_error");
    assert_string_equal(jstr(o, "last_payment_error.charge"), jstr(b.body, "latest_charge"));
    json_decref(ev);

    /* The succeeded one is now refundable in full; the failed one is not. */
    resp ok = api(s, "POST", "/v1/refunds", form, "re-late", NULL);
    assert_int_equal(ok.status, 200);
    assert_int_equal(jint(ok.body, "amount"), 1500);
    snprintf(form, sizeof form, "payment_intent=%s", pb);
    resp no = api(s, "POST", "/v1/refunds", form, "re-failed", NULL);
    assert_int_equal(no.status, 400);
    resp_free(&ok);
    resp_free(&no);
    resp_free(&a);
    resp_free(&b);
}

static void fail_then_success(standin *s, const char *pm, long first_status)
{
    char form[512];
    snprintf(form, sizeof form, PI_FORM("1099", "%s", "60"), pm);
    resp r1 = api(s, "POST", "/v1/payment_intents", form, "retry-key-1", NULL);
    assert_int_equal(r1.status, first_status);
    assert_string_equal(r1.should_retry, "true");
    assert_string_equal(jstr(r1.body, "error.type"),
                        first_status == 429 ? "invalid_request_error" : "api_error");
    if (first_status == 429)
        assert_string_equal(jstr(r1.body, "error.code"), "rate_limit");
    assert_int_equal(standin_stat(s, "payment_intents_created"), 0);

    /* Same key again: the failure was not stored, so this one executes. */
    resp r2 = api(s, "POST", "/v1/payment_intents", form, "retry-key-1", NULL);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.replayed, "");
    assert_string_equal(jstr(r2.body, "status"), "succeeded");
    /* ... and is stored: the third answer is its replay. */
    resp r3 = api(s, "POST", "/v1/payment_intents", form, "retry-key-1", NULL);
    assert_int_equal(r3.status, 200);
    assert_string_equal(r3.replayed, "true");
    assert_string_equal(r3.raw, r2.raw);
    /* Another key fails first again. */
    resp r4 = api(s, "POST", "/v1/payment_intents", form, "retry-key-2", NULL);
    assert_int_equal(r4.status, first_status);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 1);
    assert_int_equal(standin_count(s, "POST", "/v1/payment_intents"), 4);
    resp_free(&r1);
    resp_free(&r2);
    resp_free(&r3);
    resp_free(&r4);
}

static void test_500_then_success(void **state)
{
    fail_then_success(*state, "pm_standin_500_then_visa", 500);
}

static void test_429_then_success(void **state)
{
    fail_then_success(*state, "pm_standin_429_then_visa", 429);
}

static void test_500_always(void **state)
{
    standin *s = *state;
    for (int i = 0; i < 3; i++) {
        resp r = api(s, "POST", "/v1/payment_intents",
                     PI_FORM("1099", "pm_standin_500_always", "61"), "always-key", NULL);
        assert_int_equal(r.status, 500);
        assert_string_equal(r.replayed, "");
        resp_free(&r);
    }
    assert_int_equal(standin_stat(s, "payment_intents_created"), 0);
}

static void test_replay_identical(void **state)
{
    standin *s = *state;
    resp r1 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"),
                  "invoice-42-attempt-1", NULL);
    resp r2 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"),
                  "invoice-42-attempt-1", NULL);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.replayed, "true");
    assert_string_equal(r2.raw, r1.raw); /* byte for byte */
    assert_string_not_equal(r2.request_id, r1.request_id);
    /* A replayed decline is a replayed 402. */
    resp d1 = api(s, "POST", "/v1/payment_intents",
                  PI_FORM("1099", "pm_card_chargeDeclined", "43"), "k-decl", NULL);
    resp d2 = api(s, "POST", "/v1/payment_intents",
                  PI_FORM("1099", "pm_card_chargeDeclined", "43"), "k-decl", NULL);
    assert_int_equal(d2.status, 402);
    assert_string_equal(d2.replayed, "true");
    assert_string_equal(d2.raw, d1.raw);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 2);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 1);
    assert_int_equal(standin_stat(s, "replays"), 2);
    assert_int_equal(standin_count(s, "POST", "/v1/payment_intents"), 4);
    json_t *log = standin_get(s, "/__standin/requests");
    assert_true(json_is_true(json_object_get(json_array_get(log, 1), "replayed")));
    assert_string_equal(jstr(json_array_get(log, 1), "object_id"), jstr(r1.body, "id"));
    json_decref(log);
    resp_free(&r1);
    resp_free(&r2);
    resp_free(&d1);
    resp_free(&d2);
}

static void test_key_reuse_other_params(void **state)
{
    standin *s = *state;
    resp r1 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"),
                  "invoice-42-attempt-1", NULL);
    resp r2 = api(s, "POST", "/v1/payment_intents", PI_FORM("1100", "pm_card_visa", "42"),
                  "invoice-42-attempt-1", NULL);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r2.status, 400);
    assert_string_equal(jstr(r2.body, "error.type"), "idempotency_error");
    assert_non_null(strstr(jstr(r2.body, "error.message"), "invoice-42-attempt-1"));
    /* The same key on another endpoint is a mismatch too. */
    resp r3 = api(s, "POST", "/v1/refunds", "charge=ch_x", "invoice-42-attempt-1", NULL);
    assert_int_equal(r3.status, 400);
    assert_string_equal(jstr(r3.body, "error.type"), "idempotency_error");
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
    resp_free(&r1);
    resp_free(&r2);
    resp_free(&r3);
}

typedef struct {
    standin *s;
    resp r;
} bg_call;

static void *bg_post(void *arg)
{
    bg_call *b = arg;
    b->r = api(b->s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "70"),
               "in-flight-key", NULL);
    return NULL;
}

static void test_key_in_flight(void **state)
{
    standin *s = *state;
    json_decref(standin_post(s, "/__standin/latency", "{\"ms\":3000}"));
    bg_call b = {.s = s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_post, &b), 0);
    /* The first request is recorded in the same step that reserves its key. */
    for (int i = 0; i < 500 && standin_count(s, "POST", "/v1/payment_intents") < 1; i++)
        usleep(10000);
    json_decref(standin_post(s, "/__standin/latency", "{\"ms\":0}"));
    resp r = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "70"),
                 "in-flight-key", NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(jstr(r.body, "error.type"), "idempotency_error");
    assert_string_equal(jstr(r.body, "error.code"), "idempotency_key_in_use");
    pthread_join(t, NULL);
    assert_int_equal(b.r.status, 200);
    /* Once finished, the key replays. */
    resp r3 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "70"),
                  "in-flight-key", NULL);
    assert_int_equal(r3.status, 200);
    assert_string_equal(r3.replayed, "true");
    assert_string_equal(r3.raw, b.r.raw);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
    resp_free(&r);
    resp_free(&r3);
    resp_free(&b.r);
}

static void test_auth(void **state)
{
    standin *s = *state;
    resp r = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"), "a1",
                 "");
    assert_int_equal(r.status, 401);
    assert_string_equal(jstr(r.body, "error.type"), "invalid_request_error");
    assert_int_equal(strncmp(jstr(r.body, "error.message"), "Invalid API Key provided", 24), 0);
    assert_true(is_id(r.request_id, "req_", 14));
    resp_free(&r);
    r = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"), "a1",
            "Bearer sk_live_nope");
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = api(s, "GET", "/v1/refunds", NULL, NULL, "Bearer ");
    assert_int_equal(r.status, 401);
    resp_free(&r);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 0);
    /* The 401s are recorded, and did not burn the key. */
    assert_int_equal(standin_count(s, NULL, "/v1/"), 3);
    r = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"), "a1", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replayed, "");
    resp_free(&r);

    /* With --api-key only that key passes. */
    const char *args[] = {"--api-key", "sk_test_only_this", NULL};
    standin *k = standin_start(args);
    r = api(k, "GET", "/v1/refunds", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = api(k, "GET", "/v1/refunds", NULL, NULL, "Bearer sk_test_only_this");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    standin_stop(k);
}

static void test_validation(void **state)
{
    standin *s = *state;
    static const struct {
        const char *form, *param, *code;
        long status;
    } cases[] = {
        {"currency=usd&payment_method=pm_card_visa&confirm=true&off_session=true", "amount",
         "parameter_missing", 400},
        {"amount=12x&currency=usd&payment_method=pm_card_visa&confirm=true&off_session=true",
         "amount", "parameter_invalid_integer", 400},
        {"amount=0&currency=usd&payment_method=pm_card_visa&confirm=true&off_session=true",
         "amount", "parameter_invalid_integer", 400},
        {"amount=-5&currency=usd&payment_method=pm_card_visa&confirm=true&off_session=true",
         "amount", "parameter_invalid_integer", 400},
        {"amount=100&payment_method=pm_card_visa&confirm=true&off_session=true", "currency",
         "parameter_missing", 400},
        {"amount=100&currency=usd&confirm=true&off_session=true", "payment_method",
         "parameter_missing", 400},
        {"amount=100&currency=usd&payment_method=pm_card_visa&off_session=true", "confirm",
         "parameter_missing", 400},
        {"amount=100&currency=usd&payment_method=pm_standin_typo&confirm=true&off_session=true",
         "payment_method", "resource_missing", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r = api(s, "POST", "/v1/payment_intents", cases[i].form, "v-key", NULL);
        assert_int_equal(r.status, cases[i].status);
        assert_string_equal(jstr(r.body, "error.type"), "invalid_request_error");
        assert_string_equal(jstr(r.body, "error.param"), cases[i].param);
        assert_string_equal(jstr(r.body, "error.code"), cases[i].code);
        resp_free(&r);
    }
    /* Validation failures are not stored: the same key works once fixed. */
    resp ok = api(s, "POST", "/v1/payment_intents", PI_FORM("100", "pm_card_visa", "1"), "v-key",
                  NULL);
    assert_int_equal(ok.status, 200);
    resp_free(&ok);
    resp bad = api(s, "POST", "/v1/payment_intents", "amount=%zz", "v2", NULL);
    assert_int_equal(bad.status, 400);
    resp_free(&bad);
    resp none = api(s, "POST", "/v1/customers", "email=x", "v3", NULL);
    assert_int_equal(none.status, 404);
    resp_free(&none);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
}

static void test_dispute_evidence(void **state)
{
    standin *s = *state;
    resp r = api(s, "POST", "/v1/disputes/dp_1Pgc71B7WZ01zgkWMevJiAUx",
                 "evidence[customer_name]=Jenny+Rosen&evidence[uncategorized_text]=Saved+card%2C"
                 "+invoice+42&evidence[service_date]=2024-07-26&submit=true&metadata[case]=9",
                 "dp-42-submit", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "object"), "dispute");
    assert_string_equal(jstr(r.body, "id"), "dp_1Pgc71B7WZ01zgkWMevJiAUx");
    assert_string_equal(jstr(r.body, "status"), "under_review");
    assert_string_equal(jstr(r.body, "evidence.customer_name"), "Jenny Rosen");
    assert_string_equal(jstr(r.body, "evidence.uncategorized_text"), "Saved card, invoice 42");
    assert_string_equal(jstr(r.body, "evidence.service_date"), "2024-07-26");
    assert_true(json_is_null(json_object_get(json_object_get(r.body, "evidence"), "receipt")));
    assert_int_equal(jint(r.body, "evidence_details.submission_count"), 1);
    assert_true(json_is_true(json_object_get(json_object_get(r.body, "evidence_details"),
                                             "has_evidence")));
    assert_string_equal(jstr(r.body, "metadata.case"), "9");
    assert_string_equal(jstr(r.body, "charge"), "ch_1PgafuB7WZ01zgkWXYmPNZs8");
    resp_free(&r);

    /* Staged evidence on another dispute leaves it needing a response. */
    r = api(s, "POST", "/v1/disputes/dp_1StagedB7WZ01zgkWAAAAAAA",
            "evidence[product_description]=Consulting&submit=false", "dp-staged", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "id"), "dp_1StagedB7WZ01zgkWAAAAAAA");
    assert_string_equal(jstr(r.body, "status"), "needs_response");
    assert_string_equal(jstr(r.body, "evidence.product_description"), "Consulting");
    assert_int_equal(jint(r.body, "evidence_details.submission_count"), 0);
    resp_free(&r);

    r = api(s, "POST", "/v1/disputes/dp_1Pgc71B7WZ01zgkWMevJiAUx",
            "evidence[foo]=bar&submit=true", "dp-foo", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.body, "error.type"), "invalid_request_error");
    assert_string_equal(jstr(r.body, "error.message"),
                        "Received unknown parameter: evidence[foo]");
    resp_free(&r);
    r = api(s, "POST", "/v1/disputes/dp_1Pgc71B7WZ01zgkWMevJiAUx", "submit=maybe", "dp-m", NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    r = api(s, "POST", "/v1/disputes/not-a-dispute", "submit=true", "dp-n", NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(standin_stat(s, "disputes_updated"), 2);
}

static void test_refunds(void **state)
{
    standin *s = *state;
    resp pi = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"),
                  "inv-42", NULL);
    const char *pid = jstr(pi.body, "id"), *ch = jstr(pi.body, "latest_charge");
    char form[256];
    snprintf(form, sizeof form,
             "payment_intent=%s&amount=500&reason=requested_by_customer&metadata[invoice_id]=42",
             pid);
    resp r1 = api(s, "POST", "/v1/refunds", form, "re-1", NULL);
    assert_int_equal(r1.status, 200);
    assert_true(is_id(jstr(r1.body, "id"), "re_", 24));
    assert_string_equal(jstr(r1.body, "object"), "refund");
    assert_int_equal(jint(r1.body, "amount"), 500);
    assert_string_equal(jstr(r1.body, "charge"), ch);
    assert_string_equal(jstr(r1.body, "payment_intent"), pid);
    assert_string_equal(jstr(r1.body, "status"), "succeeded");
    assert_string_equal(jstr(r1.body, "reason"), "requested_by_customer");
    assert_string_equal(jstr(r1.body, "metadata.invoice_id"), "42");

    /* More than is left: refused, nothing stored. */
    snprintf(form, sizeof form, "charge=%s&amount=600", ch);
    resp big = api(s, "POST", "/v1/refunds", form, "re-2", NULL);
    assert_int_equal(big.status, 400);
    assert_string_equal(jstr(big.body, "error.type"), "invalid_request_error");
    assert_string_equal(jstr(big.body, "error.code"), "amount_too_large");
    resp_free(&big);

    /* No amount: the rest (599). */
    snprintf(form, sizeof form, "charge=%s", ch);
    resp r2 = api(s, "POST", "/v1/refunds", form, "re-3", NULL);
    assert_int_equal(r2.status, 200);
    assert_int_equal(jint(r2.body, "amount"), 599);
    assert_string_equal(jstr(r2.body, "payment_intent"), pid);
    assert_true(json_is_null(json_object_get(r2.body, "reason")));
    resp done = api(s, "POST", "/v1/refunds", form, "re-4", NULL);
    assert_int_equal(done.status, 400);
    assert_string_equal(jstr(done.body, "error.code"), "charge_already_refunded");
    resp_free(&done);

    resp miss = api(s, "POST", "/v1/refunds", "charge=ch_nope", "re-5", NULL);
    assert_int_equal(miss.status, 404);
    assert_string_equal(jstr(miss.body, "error.code"), "resource_missing");
    resp_free(&miss);
    miss = api(s, "POST", "/v1/refunds", "payment_intent=pi_nope", "re-6", NULL);
    assert_int_equal(miss.status, 404);
    resp_free(&miss);
    miss = api(s, "POST", "/v1/refunds", "amount=5", "re-7", NULL);
    assert_int_equal(miss.status, 400);
    assert_string_equal(jstr(miss.body, "error.code"), "parameter_missing");
    resp_free(&miss);

    /* The list: newest first, by charge or by intent, with a limit. */
    char path[256];
    snprintf(path, sizeof path, "/v1/refunds?charge=%s&limit=10", ch);
    resp l = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(l.status, 200);
    assert_string_equal(jstr(l.body, "object"), "list");
    assert_string_equal(jstr(l.body, "url"), "/v1/refunds");
    assert_false(json_is_true(json_object_get(l.body, "has_more")));
    json_t *data = json_object_get(l.body, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_string_equal(jstr(json_array_get(data, 0), "id"), jstr(r2.body, "id"));
    assert_string_equal(jstr(json_array_get(data, 1), "id"), jstr(r1.body, "id"));
    resp_free(&l);
    snprintf(path, sizeof path, "/v1/refunds?payment_intent=%s&limit=1", pid);
    l = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(l.body, "data")), 1);
    assert_true(json_is_true(json_object_get(l.body, "has_more")));
    resp_free(&l);
    /* Cursor pagination, as the dispute worker pages through refunds. */
    char cursor[256];
    snprintf(cursor, sizeof cursor, "/v1/refunds?charge=%s&limit=1&starting_after=%s", ch,
             jstr(r2.body, "id"));
    l = api(s, "GET", cursor, NULL, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(l.body, "data")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(l.body, "data"), 0), "id"),
                        jstr(r1.body, "id"));
    assert_false(json_is_true(json_object_get(l.body, "has_more")));
    resp_free(&l);
    snprintf(cursor, sizeof cursor, "/v1/refunds?charge=%s&ending_before=%s", ch,
             jstr(r1.body, "id"));
    l = api(s, "GET", cursor, NULL, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(l.body, "data")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(l.body, "data"), 0), "id"),
                        jstr(r2.body, "id"));
    resp_free(&l);
    l = api(s, "GET", "/v1/refunds?starting_after=re_unknown", NULL, NULL, NULL);
    assert_int_equal(l.status, 404);
    resp_free(&l);
    l = api(s, "GET", "/v1/refunds?charge=ch_other", NULL, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(l.body, "data")), 0);
    resp_free(&l);
    assert_int_equal(standin_stat(s, "refunds_created"), 2);
    assert_int_equal(standin_count(s, "GET", "/v1/refunds"), 6);
    resp_free(&r1);
    resp_free(&r2);
    resp_free(&pi);
}

static void test_seeded_refunds(void **state)
{
    standin *s = *state;
    json_t *a = standin_post(s, "/__standin/refunds",
                             "{\"charge\":\"ch_1PgafuB7WZ01zgkWXYmPNZs8\",\"payment_intent\":"
                             "\"pi_1PgafyB7WZ01zgkWSjxsAJo3\",\"amount\":500,\"charge_amount\":"
                             "1099,\"id\":\"re_1Pgc72B7WZ01zgkWqPvrRrPE\"}");
    assert_string_equal(jstr(a, "id"), "re_1Pgc72B7WZ01zgkWqPvrRrPE");
    assert_int_equal(jint(a, "amount"), 500);
    json_decref(a);
    json_t *b = standin_post(s, "/__standin/refunds",
                             "{\"charge\":\"ch_1PgafuB7WZ01zgkWXYmPNZs8\",\"amount\":599}");
    assert_true(is_id(jstr(b, "id"), "re_", 24));
    assert_string_equal(jstr(b, "payment_intent"), "pi_1PgafyB7WZ01zgkWSjxsAJo3");
    json_decref(b);
    json_t *over = standin_post(s, "/__standin/refunds",
                                "{\"charge\":\"ch_1PgafuB7WZ01zgkWXYmPNZs8\",\"amount\":1}");
    assert_non_null(json_object_get(over, "error"));
    json_decref(over);
    resp l = api(s, "GET", "/v1/refunds?charge=ch_1PgafuB7WZ01zgkWXYmPNZs8&limit=100", NULL, NULL,
                 NULL);
    assert_int_equal(l.status, 200);
    json_t *data = json_object_get(l.body, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_int_equal(jint(json_array_get(data, 0), "amount"), 599);
    assert_string_equal(jstr(json_array_get(data, 1), "id"), "re_1Pgc72B7WZ01zgkWqPvrRrPE");
    resp_free(&l);
    /* A real refund of the seeded (now fully refunded) charge is refused. */
    resp r = api(s, "POST", "/v1/refunds", "payment_intent=pi_1PgafyB7WZ01zgkWSjxsAJo3", "k",
                 NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.body, "error.code"), "charge_already_refunded");
    resp_free(&r);
    r = api(s, "POST", "/v1/refunds", "charge=ch_1PgafuB7WZ01zgkWXYmPNZs8", "k2", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.body, "error.code"), "charge_already_refunded");
    resp_free(&r);
}

static void test_fault_injection(void **state)
{
    standin *s = *state;
    json_t *f = standin_post(s, "/__standin/fail",
                             "{\"status\":429,\"count\":2,\"should_retry\":\"false\"}");
    assert_int_equal(jint(f, "count"), 2);
    json_decref(f);
    resp r1 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "80"),
                  "fault-key", NULL);
    resp r2 = api(s, "GET", "/v1/refunds", NULL, NULL, NULL);
    resp r3 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "80"),
                  "fault-key", NULL);
    assert_int_equal(r1.status, 429);
    assert_string_equal(r1.should_retry, "false");
    assert_string_equal(jstr(r1.body, "error.code"), "rate_limit");
    assert_int_equal(r2.status, 429);
    assert_int_equal(r3.status, 200); /* the key was not burned by the fault */
    assert_string_equal(r3.replayed, "");
    resp_free(&r1);
    resp_free(&r2);
    resp_free(&r3);
    /* Form bodies work too; should_retry omitted = no header. */
    f = standin_post(s, "/__standin/fail", "status=500&count=1");
    json_decref(f);
    resp r4 = api(s, "GET", "/v1/refunds", NULL, NULL, NULL);
    assert_int_equal(r4.status, 500);
    assert_string_equal(r4.should_retry, "");
    assert_string_equal(jstr(r4.body, "error.type"), "api_error");
    resp r5 = api(s, "GET", "/v1/refunds", NULL, NULL, NULL);
    assert_int_equal(r5.status, 200);
    resp_free(&r4);
    resp_free(&r5);
    json_t *bad = standin_post(s, "/__standin/fail", "{\"status\":418,\"count\":1}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
    assert_int_equal(standin_stat(s, "requests"), 5);
}

static void test_declines_then_visa(void **state)
{
    standin *s = *state;
    const char *keys[] = {"dn-1", "dn-2", "dn-2", "dn-3", "dn-4"};
    long want[] = {402, 402, 402, 200, 200};
    const char *want_replayed[] = {"", "", "true", "", ""};
    for (size_t i = 0; i < 5; i++) {
        resp r = api(s, "POST", "/v1/payment_intents",
                     PI_FORM("1099", "pm_standin_declines_2_then_visa", "90"), keys[i], NULL);
        assert_int_equal(r.status, want[i]);
        assert_string_equal(r.replayed, want_replayed[i]);
        if (r.status == 402)
            assert_string_equal(jstr(r.body, "error.decline_code"), "insufficient_funds");
        resp_free(&r);
    }
    /* Another invoice has its own count. */
    resp o = api(s, "POST", "/v1/payment_intents",
                 PI_FORM("1099", "pm_standin_declines_2_then_visa", "91"), "dn-91", NULL);
    assert_int_equal(o.status, 402);
    resp_free(&o);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 5);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 2);
}

static void test_reset_and_stats(void **state)
{
    standin *s = *state;
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "st-%d", i);
        resp r = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "95"), key,
                     NULL);
        resp_free(&r);
    }
    assert_int_equal(standin_stat(s, "requests"), 3);
    assert_int_equal(standin_stat(s, "max_requests_in_any_second") >= 1, 1);
    json_decref(standin_post(s, "/__standin/reset", NULL));
    assert_int_equal(standin_stat(s, "requests"), 0);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 0);
    assert_int_equal(standin_stat(s, "max_requests_in_any_second"), 0);
    /* Keys are forgotten too: st-0 executes anew. */
    resp r = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "95"), "st-0",
                 NULL);
    assert_string_equal(r.replayed, "");
    resp_free(&r);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
    json_t *bad = standin_post(s, "/__standin/latency", "{\"ms\":-1}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
}

#define N_PARALLEL 40

static void *par_post(void *arg)
{
    bg_call *b = arg;
    char key[32];
    snprintf(key, sizeof key, "par-%p", arg);
    b->r = api(b->s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "99"), key,
               NULL);
    return NULL;
}

/* Requests sleeping for the injected latency do not hold up each other: 40
 * sent at once are all in flight together. */
static void test_concurrency(void **state)
{
    standin *s = *state;
    json_decref(standin_post(s, "/__standin/latency", "{\"ms\":1500}"));
    bg_call calls[N_PARALLEL];
    pthread_t t[N_PARALLEL];
    for (int i = 0; i < N_PARALLEL; i++) {
        calls[i] = (bg_call){.s = s};
        assert_int_equal(pthread_create(&t[i], NULL, par_post, &calls[i]), 0);
    }
    for (int i = 0; i < N_PARALLEL; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(calls[i].r.status, 200);
        resp_free(&calls[i].r);
    }
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), N_PARALLEL);
    assert_true(standin_stat(s, "max_in_flight") >= 30);
    assert_int_equal(standin_stat(s, "max_requests_in_any_second") >= 30, 1);
    json_t *log = standin_get(s, "/__standin/requests");
    assert_int_equal(jint(json_array_get(log, 0), "latency_injected_ms"), 1500);
    json_decref(log);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_shape, start, stop),
        cmocka_unit_test_setup_teardown(test_declines, start, stop),
        cmocka_unit_test_setup_teardown(test_authentication_required, start, stop),
        cmocka_unit_test_setup_teardown(test_processing_complete, start, stop),
        cmocka_unit_test_setup_teardown(test_500_then_success, start, stop),
        cmocka_unit_test_setup_teardown(test_429_then_success, start, stop),
        cmocka_unit_test_setup_teardown(test_500_always, start, stop),
        cmocka_unit_test_setup_teardown(test_replay_identical, start, stop),
        cmocka_unit_test_setup_teardown(test_key_reuse_other_params, start, stop),
        cmocka_unit_test_setup_teardown(test_key_in_flight, start, stop),
        cmocka_unit_test_setup_teardown(test_auth, start, stop),
        cmocka_unit_test_setup_teardown(test_validation, start, stop),
        cmocka_unit_test_setup_teardown(test_dispute_evidence, start, stop),
        cmocka_unit_test_setup_teardown(test_refunds, start, stop),
        cmocka_unit_test_setup_teardown(test_seeded_refunds, start, stop),
        cmocka_unit_test_setup_teardown(test_fault_injection, start, stop),
        cmocka_unit_test_setup_teardown(test_declines_then_visa, start, stop),
        cmocka_unit_test_setup_teardown(test_reset_and_stats, start, stop),
        cmocka_unit_test_setup_teardown(test_concurrency, start, stop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
