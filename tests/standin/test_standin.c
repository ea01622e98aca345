/* test_standin.c: `stripe-standin` driven over real HTTP (libcurl), the way
 * the Stripe client in common/stripe.c will talk to it.
 *
 * Covers: the success body's shape (ids, amount, metadata), every decline
 * test method, authentication_required, processing + complete -> webhook
 * envelope, 500/429-then-success with the same key, replays (identical bytes,
 * Idempotent-Replayed), key reuse with other parameters, a key in flight
 * (409), auth (401), parameter validation, dispute evidence, refunds (create,
 * list, over-refund, seeded), fault injection, declines-then-success, stats,
 * the request log, and 40 concurrent requests under injected latency; and
 * what makes it the oracle of the model test: the movable clock, key expiry
 * after 24 h, stored intents (retrieve, list paging with created filters,
 * search and its lag), lost answers, the 401 window and 401/403/404 faults,
 * refunds that fail, disputes opened and closed, and the event log.
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
#define PI_FORM(amount, pm, inv)                                                                   \
    "amount=" amount "&currency=usd&payment_method=" pm                                            \
    "&customer=cus_QXg1o8vcGmoR32&confirm=true&off_session=true&metadata[invoice_id]=" inv         \
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

/* One /v1 request; auth NULL = a valid test key, "" = no Authorization.
 * Returns curl's result; r->body is NULL when nothing (or no JSON) came. */
static CURLcode api_try(const standin *s, const char *method, const char *path, const char *form,
                        const char *key, const char *auth, resp *r)
{
    memset(r, 0, sizeof *r);
    char url[2048], hk[300], ha[300];
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
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, t_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form != NULL ? form : "");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r->body = r->raw != NULL ? json_loads(r->raw, 0, NULL) : NULL;
    return rc;
}

static resp api(const standin *s, const char *method, const char *path, const char *form,
                const char *key, const char *auth)
{
    resp r;
    CURLcode rc = api_try(s, method, path, form, key, auth, &r);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
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
    resp r = api(
        s, "POST", "/v1/payment_intents",
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
    assert_int_equal(strncmp(jstr(r.body, "client_secret"), secret_prefix, strlen(secret_prefix)),
                     0);
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
        assert_string_equal(jstr(pi, "last_payment_error.decline_code"), declines[i].decline_code);
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
    resp d1 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_chargeDeclined", "43"),
                  "k-decl", NULL);
    resp d2 = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_chargeDeclined", "43"),
                  "k-decl", NULL);
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
    resp r = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"), "a1", "");
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
    resp ok =
        api(s, "POST", "/v1/payment_intents", PI_FORM("100", "pm_card_visa", "1"), "v-key", NULL);
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
    assert_true(
        json_is_true(json_object_get(json_object_get(r.body, "evidence_details"), "has_evidence")));
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

    r = api(s, "POST", "/v1/disputes/dp_1Pgc71B7WZ01zgkWMevJiAUx", "evidence[foo]=bar&submit=true",
            "dp-foo", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.body, "error.type"), "invalid_request_error");
    assert_string_equal(jstr(r.body, "error.message"), "Received unknown parameter: evidence[foo]");
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
    resp pi = api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "42"), "inv-42",
                  NULL);
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
    resp l =
        api(s, "GET", "/v1/refunds?charge=ch_1PgafuB7WZ01zgkWXYmPNZs8&limit=100", NULL, NULL, NULL);
    assert_int_equal(l.status, 200);
    json_t *data = json_object_get(l.body, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_int_equal(jint(json_array_get(data, 0), "amount"), 599);
    assert_string_equal(jstr(json_array_get(data, 1), "id"), "re_1Pgc72B7WZ01zgkWqPvrRrPE");
    resp_free(&l);
    /* A real refund of the seeded (now fully refunded) charge is refused. */
    resp r = api(s, "POST", "/v1/refunds", "payment_intent=pi_1PgafyB7WZ01zgkWSjxsAJo3", "k", NULL);
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
        resp r =
            api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "95"), key, NULL);
        resp_free(&r);
    }
    assert_int_equal(standin_stat(s, "requests"), 3);
    assert_int_equal(standin_stat(s, "max_requests_in_any_second") >= 1, 1);
    json_decref(standin_post(s, "/__standin/reset", NULL));
    assert_int_equal(standin_stat(s, "requests"), 0);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 0);
    assert_int_equal(standin_stat(s, "max_requests_in_any_second"), 0);
    /* Keys are forgotten too: st-0 executes anew. */
    resp r =
        api(s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "95"), "st-0", NULL);
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
    b->r =
        api(b->s, "POST", "/v1/payment_intents", PI_FORM("1099", "pm_card_visa", "99"), key, NULL);
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

/* ==== the stand-in as the oracle of the model test ======================== */

/* POST /v1/payment_intents for customer cus, metadata attempt_key = key (the
 * idempotency key, as the system sends it) and invoice_id = inv. */
static resp pi_create(const standin *s, int64_t amount, const char *pm, const char *cus,
                      const char *key, const char *inv)
{
    char form[512];
    snprintf(form, sizeof form,
             "amount=%lld&currency=usd&payment_method=%s&customer=%s&confirm=true"
             "&off_session=true&metadata[attempt_key]=%s&metadata[invoice_id]=%s"
             "&metadata[firm_id]=7",
             (long long)amount, pm, cus, key, inv);
    return api(s, "POST", "/v1/payment_intents", form, key, NULL);
}

/* The id of an answered intent (200 body or a 402's error.payment_intent). */
static const char *pi_id(const resp *r)
{
    const char *id = jstr(r->body, "id");
    return id != NULL ? id : jstr(r->body, "error.payment_intent.id");
}

/* "type,type,..." of an event array (from standin_events_after). */
static void event_types(const json_t *events, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        size_t l = strlen(out);
        snprintf(out + l, outlen - l, "%s%s", l > 0 ? "," : "",
                 jstr(json_object_get(e, "event"), "type"));
    }
}

/* GET path + "?query=" + the escaped search query (+ extra). */
static resp search(const standin *s, const char *query, const char *extra)
{
    CURL *c = curl_easy_init();
    char *q = curl_easy_escape(c, query, 0);
    char path[2048];
    snprintf(path, sizeof path, "/v1/payment_intents/search?query=%s%s", q, extra ? extra : "");
    curl_free(q);
    curl_easy_cleanup(c);
    return api(s, "GET", path, NULL, NULL, NULL);
}

static size_t data_len(const resp *r)
{
    return json_array_size(json_object_get(r->body, "data"));
}

static const char *data_id(const resp *r, size_t i)
{
    return jstr(json_array_get(json_object_get(r->body, "data"), i), "id");
}

static void test_clock(void **state)
{
    standin *s = *state;
    int64_t t0 = (int64_t)time(NULL);
    int64_t now = standin_clock_now(s);
    int64_t t1 = (int64_t)time(NULL);
    assert_true(now >= t0 && now <= t1); /* starts at the real time */
    int64_t later = standin_clock_advance(s, 3600);
    assert_true(later >= now + 3600 && later <= (int64_t)time(NULL) + 3600);

    /* Set it: created of intents, refunds and events follow it. */
    int64_t set = 1800000000;
    int64_t r0 = (int64_t)time(NULL);
    assert_int_equal(standin_clock_set(s, set), set);
    resp pi = pi_create(s, 1000, "pm_card_visa", "cus_clock", "clock-1", "1");
    char form[128];
    snprintf(form, sizeof form, "payment_intent=%s&amount=100", pi_id(&pi));
    resp re = api(s, "POST", "/v1/refunds", form, "clock-re-1", NULL);
    int64_t slack = (int64_t)time(NULL) - r0 + 1; /* the clock runs on in real time */
    assert_int_equal(pi.status, 200);
    assert_true(jint(pi.body, "created") >= set && jint(pi.body, "created") <= set + slack);
    assert_true(jint(re.body, "created") >= set && jint(re.body, "created") <= set + slack);
    json_t *ev = standin_events_after(s, 0);
    assert_int_equal(json_array_size(ev), 2);
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e)
    {
        json_int_t c = jint(json_object_get(e, "event"), "created");
        assert_true(c >= set && c <= set + slack);
    }
    json_decref(ev);

    /* Bad bodies are refused. */
    json_t *bad = standin_post(s, "/__standin/clock", "{\"advance_s\":-5}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    bad = standin_post(s, "/__standin/clock", "{\"advance_s\":5,\"now\":5}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    bad = standin_post(s, "/__standin/clock", "{}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    /* Form bodies work too. */
    json_t *f = standin_post(s, "/__standin/clock", "advance_s=10");
    assert_true(jint(f, "now") >= set + 10);
    json_decref(f);

    /* Reset: back to the real time. */
    t0 = (int64_t)time(NULL);
    standin_reset(s);
    now = standin_clock_now(s);
    assert_true(now >= t0 && now <= (int64_t)time(NULL));
    resp_free(&pi);
    resp_free(&re);
}

/* Stripe forgets a key 24 h after its first request: the same request then
 * executes again, a second intent and a second charge. */
static void test_key_expiry(void **state)
{
    standin *s = *state;
    resp a = pi_create(s, 1099, "pm_card_visa", "cus_exp", "exp-key-1", "42");
    assert_int_equal(a.status, 200);
    /* Within the 24 h: a replay, byte for byte. */
    standin_clock_advance(s, 86000);
    resp b = pi_create(s, 1099, "pm_card_visa", "cus_exp", "exp-key-1", "42");
    assert_int_equal(b.status, 200);
    assert_string_equal(b.replayed, "true");
    assert_string_equal(b.raw, a.raw);
    /* ... and other parameters are still a conflict. */
    resp c = pi_create(s, 1100, "pm_card_visa", "cus_exp", "exp-key-1", "42");
    assert_int_equal(c.status, 400);
    assert_string_equal(jstr(c.body, "error.type"), "idempotency_error");
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);

    /* 86401 s after the first request: the key is gone, a new intent. */
    standin_clock_advance(s, 401);
    resp d = pi_create(s, 1099, "pm_card_visa", "cus_exp", "exp-key-1", "42");
    assert_int_equal(d.status, 200);
    assert_string_equal(d.replayed, "");
    assert_string_not_equal(pi_id(&d), pi_id(&a));
    assert_string_not_equal(jstr(d.body, "latest_charge"), jstr(a.body, "latest_charge"));
    assert_int_equal(standin_stat(s, "payment_intents_created"), 2);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 2);
    /* The key now belongs to the new request: it replays that one. */
    resp e = pi_create(s, 1099, "pm_card_visa", "cus_exp", "exp-key-1", "42");
    assert_string_equal(e.replayed, "true");
    assert_string_equal(pi_id(&e), pi_id(&d));
    /* Both intents are at Stripe, with the same attempt_key. */
    json_t *all = standin_payment_intents(s);
    assert_int_equal(json_array_size(all), 2);
    assert_string_equal(jstr(json_array_get(all, 0), "id"), pi_id(&a));
    assert_string_equal(jstr(json_array_get(all, 1), "id"), pi_id(&d));
    assert_string_equal(jstr(json_array_get(all, 1), "metadata.attempt_key"), "exp-key-1");
    json_decref(all);
    /* An expired key with other parameters executes too (nothing to compare). */
    standin_clock_advance(s, 86401);
    resp g = pi_create(s, 500, "pm_card_visa", "cus_exp", "exp-key-1", "42");
    assert_int_equal(g.status, 200);
    assert_int_equal(jint(g.body, "amount"), 500);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 3);
    resp_free(&a);
    resp_free(&b);
    resp_free(&c);
    resp_free(&d);
    resp_free(&e);
    resp_free(&g);
}

static void test_pi_retrieve_and_list(void **state)
{
    standin *s = *state;
    /* 3 groups of 9 intents for cus_A, 100 clock seconds apart, plus 3 for
     * cus_B; some declined, some processing. */
    int64_t t = 1800000000;
    char ids[27][40];
    int n = 0;
    for (int g = 0; g < 3; g++) {
        standin_clock_set(s, t + 100 * g);
        for (int i = 0; i < 9; i++, n++) {
            const char *pm = i == 3   ? "pm_card_chargeDeclined"
                             : i == 5 ? "pm_standin_processing"
                                      : "pm_card_visa";
            char key[32], inv[16];
            snprintf(key, sizeof key, "list-%d", n);
            snprintf(inv, sizeof inv, "%d", 100 + n);
            resp r = pi_create(s, 1000 + n, pm, "cus_A", key, inv);
            assert_int_equal(r.status, i == 3 ? 402 : 200);
            snprintf(ids[n], sizeof ids[n], "%s", pi_id(&r));
            resp_free(&r);
        }
        for (int i = 0; g == 1 && i < 3; i++) {
            char key[32];
            snprintf(key, sizeof key, "list-b-%d", i);
            resp r = pi_create(s, 50, "pm_card_visa", "cus_B", key, "900");
            resp_free(&r);
        }
    }

    /* Retrieve: the full stored object, 200 and 402 ones alike. */
    char path[512];
    snprintf(path, sizeof path, "/v1/payment_intents/%s", ids[0]);
    resp r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "object"), "payment_intent");
    assert_string_equal(jstr(r.body, "status"), "succeeded");
    assert_int_equal(jint(r.body, "amount"), 1000);
    assert_int_equal(jint(r.body, "amount_received"), 1000);
    assert_string_equal(jstr(r.body, "customer"), "cus_A");
    assert_string_equal(jstr(r.body, "metadata.attempt_key"), "list-0");
    assert_string_equal(jstr(r.body, "payment_method"), "pm_card_visa");
    assert_true(is_id(jstr(r.body, "latest_charge"), "ch_", 24));
    assert_true(jint(r.body, "created") >= t && jint(r.body, "created") < t + 100);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/payment_intents/%s", ids[3]);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "status"), "requires_payment_method");
    assert_int_equal(jint(r.body, "amount_received"), 0);
    assert_string_equal(jstr(r.body, "last_payment_error.decline_code"), "generic_decline");
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/payment_intents/%s", ids[5]);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_string_equal(jstr(r.body, "status"), "processing");
    resp_free(&r);
    r = api(s, "GET", "/v1/payment_intents/pi_nope", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(jstr(r.body, "error.code"), "resource_missing");
    assert_string_equal(jstr(r.body, "error.message"), "No such payment_intent: 'pi_nope'");
    resp_free(&r);

    /* Paging over every intent of cus_A: newest first, 10 + 10 + 7. */
    char seen[27][40];
    size_t got = 0;
    char after[64] = "";
    for (int page = 0; page < 5; page++) {
        snprintf(path, sizeof path, "/v1/payment_intents?customer=cus_A&limit=10%s%s",
                 after[0] ? "&starting_after=" : "", after);
        r = api(s, "GET", path, NULL, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(jstr(r.body, "object"), "list");
        assert_string_equal(jstr(r.body, "url"), "/v1/payment_intents");
        size_t len = data_len(&r);
        assert_int_equal(len, page < 2 ? 10 : 7);
        for (size_t i = 0; i < len; i++)
            snprintf(seen[got++], sizeof seen[0], "%s", data_id(&r, i));
        bool more = json_is_true(json_object_get(r.body, "has_more"));
        assert_int_equal(more, page < 2);
        snprintf(after, sizeof after, "%s", data_id(&r, len - 1));
        resp_free(&r);
        if (!more)
            break;
    }
    assert_int_equal(got, 27);
    for (size_t i = 0; i < 27; i++)
        assert_string_equal(seen[i], ids[26 - i]);
    /* ending_before the first of page 2: page 1 again. */
    snprintf(path, sizeof path, "/v1/payment_intents?customer=cus_A&limit=10&ending_before=%s",
             seen[10]);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&r), 10);
    assert_string_equal(data_id(&r, 0), seen[0]);
    assert_string_equal(data_id(&r, 9), seen[9]);
    assert_false(json_is_true(json_object_get(r.body, "has_more")));
    resp_free(&r);
    /* Default limit 10, every customer. */
    r = api(s, "GET", "/v1/payment_intents", NULL, NULL, NULL);
    assert_int_equal(data_len(&r), 10);
    assert_true(json_is_true(json_object_get(r.body, "has_more")));
    resp_free(&r);

    /* created filters (the middle group), also bracket-encoded. */
    snprintf(path, sizeof path,
             "/v1/payment_intents?limit=100&customer=cus_A&created[gte]=%lld&created[lt]=%lld",
             (long long)t + 50, (long long)t + 150);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&r), 9);
    assert_string_equal(data_id(&r, 0), ids[17]);
    assert_string_equal(data_id(&r, 8), ids[9]);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/payment_intents?limit=100&created%%5Bgt%%5D=%lld",
             (long long)t + 150);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&r), 9);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/payment_intents?limit=100&created[lte]=%lld",
             (long long)t + 150);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&r), 21); /* 18 of cus_A + 3 of cus_B */
    resp_free(&r);
    /* Paging inside a created window: the cursor and the filter together. */
    snprintf(path, sizeof path,
             "/v1/payment_intents?limit=5&created[gte]=%lld&created[lte]=%lld&starting_after=%s",
             (long long)t + 50, (long long)t + 150, ids[17]);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&r), 5);
    assert_string_equal(data_id(&r, 0), ids[16]);
    assert_true(json_is_true(json_object_get(r.body, "has_more")));
    resp_free(&r);

    /* Refused: limits, unknown parameters, unknown cursors, both cursors. */
    static const struct {
        const char *path;
        long status;
        const char *code;
    } bad[] = {
        {"/v1/payment_intents?limit=0", 400, "parameter_invalid_integer"},
        {"/v1/payment_intents?limit=101", 400, "parameter_invalid_integer"},
        {"/v1/payment_intents?created[gte]=soon", 400, "parameter_invalid_integer"},
        {"/v1/payment_intents?created[since]=1", 400, "parameter_unknown"},
        {"/v1/payment_intents?status=succeeded", 400, "parameter_unknown"},
        {"/v1/payment_intents?starting_after=pi_nope", 404, "resource_missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = api(s, "GET", bad[i].path, NULL, NULL, NULL);
        assert_int_equal(r.status, bad[i].status);
        assert_string_equal(jstr(r.body, "error.code"), bad[i].code);
        resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/payment_intents?starting_after=%s&ending_before=%s", ids[1],
             ids[2]);
    r = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* The control dump: every intent, oldest first. */
    json_t *all = standin_payment_intents(s);
    assert_int_equal(json_array_size(all), 30);
    assert_string_equal(jstr(json_array_get(all, 0), "id"), ids[0]);
    json_decref(all);
}

static void test_search(void **state)
{
    standin *s = *state;
    resp a = pi_create(s, 1000, "pm_card_visa", "cus_S1", "att-1", "11");
    resp b = pi_create(s, 2000, "pm_card_chargeDeclined", "cus_S1", "att-2", "11");
    resp c = pi_create(s, 3000, "pm_card_visa", "cus_S2", "att-3", "12");

    resp r = search(s, "metadata['attempt_key']:'att-2'", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "object"), "search_result");
    assert_string_equal(jstr(r.body, "url"), "/v1/payment_intents/search");
    assert_false(json_is_true(json_object_get(r.body, "has_more")));
    assert_true(json_is_null(json_object_get(r.body, "next_page")));
    assert_int_equal(data_len(&r), 1);
    assert_string_equal(data_id(&r, 0), pi_id(&b));
    assert_string_equal(jstr(json_array_get(json_object_get(r.body, "data"), 0), "status"),
                        "requires_payment_method");
    resp_free(&r);
    r = search(s, "metadata[\"invoice_id\"]:\"11\" AND status:'succeeded'", NULL);
    assert_int_equal(data_len(&r), 1);
    assert_string_equal(data_id(&r, 0), pi_id(&a));
    resp_free(&r);
    r = search(s, "customer:'cus_S1'", NULL);
    assert_int_equal(data_len(&r), 2);
    assert_string_equal(data_id(&r, 0), pi_id(&b)); /* newest first */
    resp_free(&r);
    char q[256];
    snprintf(q, sizeof q, "metadata['firm_id']:'7' AND created>%lld",
             (long long)jint(a.body, "created") - 1);
    r = search(s, q, NULL);
    assert_int_equal(data_len(&r), 3);
    resp_free(&r);
    snprintf(q, sizeof q, "created<%lld", (long long)jint(a.body, "created"));
    r = search(s, q, NULL);
    assert_int_equal(data_len(&r), 0);
    resp_free(&r);
    r = search(s, "metadata['attempt_key']:'none'", NULL);
    assert_int_equal(data_len(&r), 0);
    resp_free(&r);

    /* Paging with next_page. */
    r = search(s, "metadata['firm_id']:'7'", "&limit=2");
    assert_int_equal(data_len(&r), 2);
    assert_true(json_is_true(json_object_get(r.body, "has_more")));
    const char *np = jstr(r.body, "next_page");
    assert_non_null(np);
    char extra[256];
    snprintf(extra, sizeof extra, "&limit=2&page=%s", np);
    resp r2 = search(s, "metadata['firm_id']:'7'", extra);
    assert_int_equal(data_len(&r2), 1);
    assert_string_equal(data_id(&r2, 0), pi_id(&a));
    assert_false(json_is_true(json_object_get(r2.body, "has_more")));
    assert_true(json_is_null(json_object_get(r2.body, "next_page")));
    resp_free(&r);
    resp_free(&r2);

    /* Anything outside the subset is refused, not guessed at. */
    const char *bad[] = {"amount:1000",
                         "metadata['attempt_key']:'att-1' OR metadata['attempt_key']:'att-2'",
                         "metadata['attempt_key']:'att-1' AND",
                         "metadata['attempt_key']:att-1",
                         "metadata['attempt_key']:'att-1",
                         "-status:'succeeded'",
                         "status:'succeeded'AND customer:'cus_S1'",
                         "created>soon",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = search(s, bad[i], NULL);
        assert_int_equal(r.status, 400);
        assert_string_equal(jstr(r.body, "error.type"), "invalid_request_error");
        assert_string_equal(jstr(r.body, "error.param"), "query");
        resp_free(&r);
    }
    r = api(s, "GET", "/v1/payment_intents/search", NULL, NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.body, "error.code"), "parameter_missing");
    resp_free(&r);
    r = search(s, "status:'succeeded'", "&customer=cus_S1");
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.body, "error.code"), "parameter_unknown");
    resp_free(&r);
    r = search(s, "status:'succeeded'", "&page=spg_pi_nope");
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.body, "error.param"), "page");
    resp_free(&r);

    /* The lag: a new intent is searchable only 60 clock seconds later; the
     * list sees it at once. */
    standin_search_lag(s, 60);
    resp d = pi_create(s, 4000, "pm_card_visa", "cus_S3", "att-4", "13");
    r = search(s, "metadata['attempt_key']:'att-4'", NULL);
    assert_int_equal(data_len(&r), 0);
    resp_free(&r);
    r = api(s, "GET", "/v1/payment_intents?customer=cus_S3", NULL, NULL, NULL);
    assert_int_equal(data_len(&r), 1);
    resp_free(&r);
    standin_clock_advance(s, 61);
    r = search(s, "metadata['attempt_key']:'att-4'", NULL);
    assert_int_equal(data_len(&r), 1);
    assert_string_equal(data_id(&r, 0), pi_id(&d));
    resp_free(&r);
    /* A change lags too: a completed processing intent is found by its new
     * status only after the lag; meanwhile by the old one, with the current
     * object answered. */
    resp p = pi_create(s, 5000, "pm_standin_processing", "cus_S4", "att-5", "14");
    standin_clock_advance(s, 61);
    char body[128];
    snprintf(body, sizeof body, "{\"payment_intent\":\"%s\",\"outcome\":\"succeeded\"}", pi_id(&p));
    json_decref(standin_post(s, "/__standin/complete", body));
    r = search(s, "customer:'cus_S4' AND status:'succeeded'", NULL);
    assert_int_equal(data_len(&r), 0);
    resp_free(&r);
    r = search(s, "customer:'cus_S4' AND status:'processing'", NULL);
    assert_int_equal(data_len(&r), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(r.body, "data"), 0), "status"),
                        "succeeded");
    resp_free(&r);
    standin_clock_advance(s, 61);
    r = search(s, "customer:'cus_S4' AND status:'succeeded'", NULL);
    assert_int_equal(data_len(&r), 1);
    resp_free(&r);

    /* --search-lag-s sets the lag from the start (and reset returns to it). */
    const char *args[] = {"--search-lag-s", "30", NULL};
    standin *l = standin_start(args);
    resp e = pi_create(l, 100, "pm_card_visa", "cus_L", "att-l", "1");
    r = search(l, "metadata['attempt_key']:'att-l'", NULL);
    assert_int_equal(data_len(&r), 0);
    resp_free(&r);
    standin_clock_advance(l, 31);
    r = search(l, "metadata['attempt_key']:'att-l'", NULL);
    assert_int_equal(data_len(&r), 1);
    resp_free(&r);
    standin_search_lag(l, 0);
    standin_reset(l);
    resp e2 = pi_create(l, 100, "pm_card_visa", "cus_L", "att-l2", "1");
    r = search(l, "metadata['attempt_key']:'att-l2'", NULL);
    assert_int_equal(data_len(&r), 0);
    resp_free(&r);
    resp_free(&e);
    resp_free(&e2);
    standin_stop(l);
    json_t *bad_lag = standin_post(s, "/__standin/search_lag", "{\"s\":-1}");
    assert_non_null(json_object_get(bad_lag, "error"));
    json_decref(bad_lag);

    resp_free(&a);
    resp_free(&b);
    resp_free(&c);
    resp_free(&d);
    resp_free(&p);
}

/* "Answer lost after Stripe charged": the intent exists, the client saw a
 * network error, and a replay with the key returns the intent. */
static void test_lose_answer(void **state)
{
    standin *s = *state;
    standin_fail_mode(s, "lose_answer", 1);
    /* A GET does not use it up. */
    resp g = api(s, "GET", "/v1/payment_intents", NULL, NULL, NULL);
    assert_int_equal(g.status, 200);
    resp_free(&g);
    const char *form = "amount=1099&currency=usd&payment_method=pm_card_visa&customer=cus_L"
                       "&confirm=true&off_session=true&metadata[attempt_key]=lost-1"
                       "&metadata[invoice_id]=42&metadata[firm_id]=7";
    resp r;
    CURLcode rc = api_try(s, "POST", "/v1/payment_intents", form, "lost-1", NULL, &r);
    assert_int_equal(rc, CURLE_GOT_NOTHING);
    assert_null(r.body);
    resp_free(&r);

    /* Stripe holds it. */
    json_t *all = standin_payment_intents(s);
    assert_int_equal(json_array_size(all), 1);
    const json_t *held = json_array_get(all, 0);
    assert_string_equal(jstr(held, "status"), "succeeded");
    assert_string_equal(jstr(held, "metadata.attempt_key"), "lost-1");
    char id[64];
    snprintf(id, sizeof id, "%s", jstr(held, "id"));
    json_decref(all);
    assert_int_equal(standin_stat(s, "payment_intents_succeeded"), 1);
    json_t *log = standin_get(s, "/__standin/requests");
    json_t *rec = json_array_get(log, 1);
    assert_true(json_is_true(json_object_get(rec, "answer_lost")));
    assert_int_equal(jint(rec, "status"), 200);
    assert_string_equal(jstr(rec, "object_id"), id);
    assert_false(json_is_true(json_object_get(json_array_get(log, 0), "answer_lost")));
    json_decref(log);
    /* Its event was logged with the key. */
    json_t *ev = standin_events_after(s, 0);
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(
        jstr(json_object_get(json_array_get(ev, 0), "event"), "request.idempotency_key"), "lost-1");
    json_decref(ev);
    /* Found by search and list. */
    resp f = search(s, "metadata['attempt_key']:'lost-1'", NULL);
    assert_int_equal(data_len(&f), 1);
    assert_string_equal(data_id(&f, 0), id);
    resp_free(&f);
    /* The replay with the key answers it. */
    resp again = api(s, "POST", "/v1/payment_intents", form, "lost-1", NULL);
    assert_int_equal(again.status, 200);
    assert_string_equal(again.replayed, "true");
    assert_string_equal(jstr(again.body, "id"), id);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 1);
    resp_free(&again);

    /* A lost refund answer: the refund happened. */
    standin_fail_mode(s, "lose_answer", 1);
    char rf[128];
    snprintf(rf, sizeof rf, "payment_intent=%s&amount=99", id);
    rc = api_try(s, "POST", "/v1/refunds", rf, "lost-re-1", NULL, &r);
    assert_int_equal(rc, CURLE_GOT_NOTHING);
    resp_free(&r);
    json_t *refunds = standin_refunds(s);
    assert_int_equal(json_array_size(refunds), 1);
    assert_int_equal(jint(json_array_get(refunds, 0), "amount"), 99);
    json_decref(refunds);
    /* Spent: the next POST is answered. */
    resp ok = api(s, "POST", "/v1/refunds", rf, "lost-re-1", NULL);
    assert_int_equal(ok.status, 200);
    assert_string_equal(ok.replayed, "true");
    resp_free(&ok);
    json_t *bad = standin_post(s, "/__standin/fail", "{\"mode\":\"drop\",\"count\":1}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
}

/* A bad key deploy: every /v1 request 401 while the window is open; nothing
 * runs or is stored. And the injected 401/403/404 answers. */
static void test_auth_window_and_faults(void **state)
{
    standin *s = *state;
    standin_auth_valid(s, false);
    resp r = pi_create(s, 1099, "pm_card_visa", "cus_W", "win-1", "42");
    assert_int_equal(r.status, 401);
    assert_string_equal(jstr(r.body, "error.type"), "invalid_request_error");
    assert_int_equal(strncmp(jstr(r.body, "error.message"), "Invalid API Key provided", 24), 0);
    resp_free(&r);
    r = api(s, "GET", "/v1/refunds", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = api(s, "GET", "/v1/payment_intents/search?query=status:'succeeded'", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 0);
    standin_auth_valid(s, true);
    r = pi_create(s, 1099, "pm_card_visa", "cus_W", "win-1", "42");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replayed, ""); /* the 401 did not burn the key */
    resp_free(&r);
    json_t *bad = standin_post(s, "/__standin/auth", "{\"valid\":\"maybe\"}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);

    /* Injected 403: a permission error, not stored. */
    standin_fail_status(s, 403, 1);
    r = pi_create(s, 1099, "pm_card_visa", "cus_W", "win-2", "43");
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.body, "error.type"), "invalid_request_error");
    assert_string_equal(jstr(r.body, "error.code"), "secret_key_required");
    assert_non_null(
        strstr(jstr(r.body, "error.message"), "does not have the required permissions"));
    resp_free(&r);
    r = pi_create(s, 1099, "pm_card_visa", "cus_W", "win-2", "43");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replayed, "");
    resp_free(&r);
    /* Injected 404: an unrecognized URL for a collection, resource_missing
     * for an object path. */
    standin_fail_status(s, 404, 2);
    r = pi_create(s, 1099, "pm_card_visa", "cus_W", "win-3", "44");
    assert_int_equal(r.status, 404);
    assert_int_equal(strncmp(jstr(r.body, "error.message"), "Unrecognized request URL", 24), 0);
    assert_null(jstr(r.body, "error.code"));
    resp_free(&r);
    r = api(s, "POST", "/v1/disputes/dp_1Pgc71B7WZ01zgkWMevJiAUx", "submit=false", "win-4", NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(jstr(r.body, "error.code"), "resource_missing");
    assert_string_equal(jstr(r.body, "error.message"),
                        "No such dispute: 'dp_1Pgc71B7WZ01zgkWMevJiAUx'");
    resp_free(&r);
    /* Injected 401. */
    standin_fail_status(s, 401, 1);
    r = api(s, "GET", "/v1/payment_intents", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = api(s, "GET", "/v1/payment_intents", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(standin_stat(s, "payment_intents_created"), 2);
    assert_int_equal(standin_stat(s, "disputes_updated"), 0);
}

/* The charge object Stripe holds for ch (from /__standin/charges). */
static json_int_t charge_refunded(const standin *s, const char *ch)
{
    json_t *all = standin_charges(s);
    json_int_t v = -1;
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c)
    {
        if (strcmp(jstr(c, "id"), ch) == 0)
            v = jint(c, "amount_refunded");
    }
    json_decref(all);
    return v;
}

static void test_refund_life(void **state)
{
    standin *s = *state;
    resp pi = pi_create(s, 1000, "pm_card_visa", "cus_R", "rl-1", "42");
    const char *pid = pi_id(&pi), *ch = jstr(pi.body, "latest_charge");
    int64_t seq0 = standin_stat(s, "events");
    char form[256];
    snprintf(form, sizeof form, "payment_intent=%s&amount=400&metadata[standin_status]=pending",
             pid);
    resp r1 = api(s, "POST", "/v1/refunds", form, "rl-re-1", NULL);
    assert_int_equal(r1.status, 200);
    assert_string_equal(jstr(r1.body, "status"), "pending");
    char re1[64];
    snprintf(re1, sizeof re1, "%s", jstr(r1.body, "id"));
    assert_int_equal(charge_refunded(s, ch), 400); /* a pending refund counts */
    /* Only 600 are left. */
    snprintf(form, sizeof form, "payment_intent=%s&amount=700", pid);
    resp big = api(s, "POST", "/v1/refunds", form, "rl-re-2", NULL);
    assert_int_equal(big.status, 400);
    assert_string_equal(jstr(big.body, "error.code"), "amount_too_large");
    resp_free(&big);

    /* It fails: the money is back on the charge. */
    json_t *env = standin_refund_update(s, re1, "failed");
    assert_string_equal(jstr(env, "type"), "charge.refund.updated");
    assert_string_equal(jstr(env, "object"), "event");
    assert_true(is_id(jstr(env, "id"), "evt_", 24));
    json_t *o = json_object_get(json_object_get(env, "data"), "object");
    assert_string_equal(jstr(o, "object"), "refund");
    assert_string_equal(jstr(o, "id"), re1);
    assert_string_equal(jstr(o, "status"), "failed");
    assert_string_equal(jstr(o, "failure_reason"), "unknown");
    assert_string_equal(jstr(o, "charge"), ch);
    assert_string_equal(jstr(json_object_get(env, "data"), "previous_attributes.status"),
                        "pending");
    assert_true(json_is_null(json_object_get(json_object_get(env, "request"), "id")));
    json_decref(env);
    assert_int_equal(charge_refunded(s, ch), 0);
    char path[256];
    snprintf(path, sizeof path, "/v1/refunds/%s", re1);
    resp g = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(g.status, 200);
    assert_string_equal(jstr(g.body, "status"), "failed");
    assert_int_equal(jint(g.body, "amount"), 400);
    resp_free(&g);

    /* The events: charge.refunded (the API call), charge.refund.updated,
     * charge.refunded (amount_refunded back to 0). */
    json_t *ev = standin_events_after(s, seq0);
    char types[512];
    event_types(ev, types, sizeof types);
    assert_string_equal(types, "charge.refunded,charge.refund.updated,charge.refunded");
    json_t *e0 = json_object_get(json_array_get(ev, 0), "event");
    assert_string_equal(jstr(e0, "request.idempotency_key"), "rl-re-1");
    assert_string_equal(jstr(e0, "request.id"), r1.request_id);
    assert_string_equal(jstr(e0, "data.object.object"), "charge");
    assert_string_equal(jstr(e0, "data.object.id"), ch);
    assert_int_equal(jint(e0, "data.object.amount_refunded"), 400);
    assert_false(json_is_true(
        json_object_get(json_object_get(json_object_get(e0, "data"), "object"), "refunded")));
    assert_string_equal(jstr(e0, "data.object.metadata.attempt_key"), "rl-1");
    json_t *e2 = json_object_get(json_array_get(ev, 2), "event");
    assert_int_equal(jint(e2, "data.object.amount_refunded"), 0);
    assert_true(json_is_null(json_object_get(json_object_get(e2, "request"), "idempotency_key")));
    json_decref(ev);

    /* Now the whole 1000 can be refunded; then that one fails too. */
    snprintf(form, sizeof form, "charge=%s", ch);
    resp r2 = api(s, "POST", "/v1/refunds", form, "rl-re-3", NULL);
    assert_int_equal(r2.status, 200);
    assert_int_equal(jint(r2.body, "amount"), 1000);
    assert_string_equal(jstr(r2.body, "status"), "succeeded");
    assert_int_equal(charge_refunded(s, ch), 1000);
    env = standin_refund_update(s, jstr(r2.body, "id"), "failed");
    json_decref(env);
    assert_int_equal(charge_refunded(s, ch), 0);
    /* failed is final. */
    json_t *bad =
        standin_post(s, "/__standin/refund_update", "{\"refund\":\"x\",\"status\":\"succeeded\"}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    char body[256];
    snprintf(body, sizeof body, "{\"refund\":\"%s\",\"status\":\"succeeded\"}", re1);
    bad = standin_post(s, "/__standin/refund_update", body);
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    snprintf(body, sizeof body, "{\"refund\":\"%s\",\"status\":\"lost\"}", re1);
    bad = standin_post(s, "/__standin/refund_update", body);
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);

    /* New refunds pending by default; one is canceled, one succeeds (no
     * charge.refunded for that: amount_refunded did not change). */
    standin_refund_default(s, "pending");
    snprintf(form, sizeof form, "payment_intent=%s&amount=300", pid);
    resp r3 = api(s, "POST", "/v1/refunds", form, "rl-re-4", NULL);
    snprintf(form, sizeof form, "payment_intent=%s&amount=200", pid);
    resp r4 = api(s, "POST", "/v1/refunds", form, "rl-re-5", NULL);
    assert_string_equal(jstr(r3.body, "status"), "pending");
    assert_int_equal(charge_refunded(s, ch), 500);
    int64_t seq1 = standin_stat(s, "events");
    json_decref(standin_refund_update(s, jstr(r3.body, "id"), "canceled"));
    json_decref(standin_refund_update(s, jstr(r4.body, "id"), "succeeded"));
    ev = standin_events_after(s, seq1);
    event_types(ev, types, sizeof types);
    assert_string_equal(types, "charge.refund.updated,charge.refunded,charge.refund.updated");
    json_decref(ev);
    assert_int_equal(charge_refunded(s, ch), 200);

    /* GET /v1/refunds without a charge: all of them, created filters too. */
    resp l = api(s, "GET", "/v1/refunds?limit=100", NULL, NULL, NULL);
    assert_int_equal(data_len(&l), 4);
    assert_string_equal(data_id(&l, 0), jstr(r4.body, "id"));
    resp_free(&l);
    int64_t now = standin_clock_advance(s, 1000);
    snprintf(form, sizeof form, "payment_intent=%s&amount=50", pid);
    resp r5 = api(s, "POST", "/v1/refunds", form, "rl-re-6", NULL);
    snprintf(path, sizeof path, "/v1/refunds?created[gte]=%lld", (long long)now);
    l = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&l), 1);
    assert_string_equal(data_id(&l, 0), jstr(r5.body, "id"));
    resp_free(&l);
    snprintf(path, sizeof path, "/v1/refunds?created[lt]=%lld&charge=%s", (long long)now, ch);
    l = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&l), 4);
    resp_free(&l);
    l = api(s, "GET", "/v1/refunds/re_nope", NULL, NULL, NULL);
    assert_int_equal(l.status, 404);
    assert_string_equal(jstr(l.body, "error.code"), "resource_missing");
    resp_free(&l);
    l = api(s, "GET", "/v1/refunds?created[gte]=x", NULL, NULL, NULL);
    assert_int_equal(l.status, 400);
    resp_free(&l);
    resp bad_st =
        api(s, "POST", "/v1/refunds", "charge=ch_x&metadata[standin_status]=lost", "rl-re-7", NULL);
    assert_int_equal(bad_st.status, 400);
    resp_free(&bad_st);
    json_t *dump = standin_refunds(s);
    assert_int_equal(json_array_size(dump), 5);
    assert_string_equal(jstr(json_array_get(dump, 0), "id"), re1);
    json_decref(dump);
    resp_free(&pi);
    resp_free(&r1);
    resp_free(&r2);
    resp_free(&r3);
    resp_free(&r4);
    resp_free(&r5);
}

static void test_dispute_life(void **state)
{
    standin *s = *state;
    int64_t t = standin_clock_set(s, 1800000000);
    resp pi = pi_create(s, 2000, "pm_card_visa", "cus_D", "dl-1", "42");
    const char *pid = pi_id(&pi), *ch = jstr(pi.body, "latest_charge");
    int64_t seq0 = standin_stat(s, "events");

    json_t *env = standin_dispute_open(s, pid, 0, NULL);
    assert_string_equal(jstr(env, "type"), "charge.dispute.created");
    assert_true(json_is_null(json_object_get(json_object_get(env, "request"), "id")));
    json_t *d = json_object_get(json_object_get(env, "data"), "object");
    assert_string_equal(jstr(d, "object"), "dispute");
    assert_true(is_id(jstr(d, "id"), "dp_", 24));
    assert_string_equal(jstr(d, "status"), "needs_response");
    assert_string_equal(jstr(d, "charge"), ch);
    assert_string_equal(jstr(d, "payment_intent"), pid);
    assert_int_equal(jint(d, "amount"), 2000);
    assert_string_equal(jstr(d, "currency"), "usd");
    assert_string_equal(jstr(d, "reason"), "fraudulent");
    json_int_t created = jint(d, "created");
    assert_true(created >= t && created < t + 60);
    assert_int_equal(jint(d, "evidence_details.due_by"), created + 7 * 86400);
    assert_int_equal(jint(d, "evidence_details.submission_count"), 0);
    json_t *bt = json_array_get(json_object_get(d, "balance_transactions"), 0);
    assert_int_equal(jint(bt, "amount"), -2000);
    assert_string_equal(jstr(bt, "source"), jstr(d, "id"));
    char dp[64];
    snprintf(dp, sizeof dp, "%s", jstr(d, "id"));
    json_decref(env);

    /* A disputed charge cannot be refunded, nor disputed twice. */
    char form[256];
    snprintf(form, sizeof form, "payment_intent=%s", pid);
    resp rf = api(s, "POST", "/v1/refunds", form, "dl-re-1", NULL);
    assert_int_equal(rf.status, 400);
    assert_string_equal(jstr(rf.body, "error.code"), "charge_disputed");
    resp_free(&rf);
    char body[256];
    snprintf(body, sizeof body, "{\"charge\":\"%s\"}", ch);
    json_t *bad = standin_post(s, "/__standin/dispute", body);
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);

    /* Evidence through the API: charge.dispute.updated, caused by it. */
    char path[128];
    snprintf(path, sizeof path, "/v1/disputes/%s", dp);
    resp up =
        api(s, "POST", path, "evidence[customer_name]=Jenny+Rosen&submit=true", "dl-ev-1", NULL);
    assert_int_equal(up.status, 200);
    assert_string_equal(jstr(up.body, "status"), "under_review");
    assert_string_equal(jstr(up.body, "charge"), ch);
    assert_int_equal(jint(up.body, "amount"), 2000);
    resp g = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(g.status, 200);
    assert_string_equal(jstr(g.body, "status"), "under_review");
    assert_string_equal(jstr(g.body, "evidence.customer_name"), "Jenny Rosen");
    resp_free(&g);

    /* Lost: funds_withdrawn, then closed. */
    standin_clock_advance(s, 86400 * 30);
    env = standin_dispute_close(s, dp, "lost");
    assert_string_equal(jstr(env, "type"), "charge.dispute.closed");
    assert_string_equal(jstr(env, "data.object.status"), "lost");
    assert_string_equal(jstr(env, "data.object.id"), dp);
    assert_true(jint(env, "created") >= t + 86400 * 30);
    json_decref(env);
    json_t *ev = standin_events_after(s, seq0);
    char types[512];
    event_types(ev, types, sizeof types);
    assert_string_equal(types, "charge.dispute.created,charge.dispute.updated,"
                               "charge.dispute.funds_withdrawn,charge.dispute.closed");
    json_t *eu = json_object_get(json_array_get(ev, 1), "event");
    assert_string_equal(jstr(eu, "request.id"), up.request_id);
    assert_string_equal(jstr(eu, "request.idempotency_key"), "dl-ev-1");
    assert_string_equal(jstr(eu, "data.previous_attributes.status"), "needs_response");
    assert_true(json_is_null(json_object_get(
        json_object_get(json_object_get(json_object_get(eu, "data"), "previous_attributes"),
                        "evidence"),
        "customer_name")));
    assert_int_equal(jint(eu, "data.previous_attributes.evidence_details.submission_count"), 0);
    json_t *ew = json_object_get(json_array_get(ev, 2), "event");
    assert_string_equal(jstr(ew, "data.object.status"), "under_review");
    /* seq numbers rise by one. */
    for (size_t i = 0; i < json_array_size(ev); i++)
        assert_int_equal(jint(json_array_get(ev, i), "seq"), seq0 + 1 + (int64_t)i);
    json_decref(ev);
    resp_free(&up);
    /* Closed: evidence refused (stored like any executed refusal), close
     * twice refused, still no refund. */
    up = api(s, "POST", path, "evidence[customer_name]=X", "dl-ev-2", NULL);
    assert_int_equal(up.status, 400);
    resp_free(&up);
    snprintf(body, sizeof body, "{\"dispute\":\"%s\",\"status\":\"won\"}", dp);
    bad = standin_post(s, "/__standin/dispute_close", body);
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    rf = api(s, "POST", "/v1/refunds", form, "dl-re-2", NULL);
    assert_string_equal(jstr(rf.body, "error.code"), "charge_disputed");
    resp_free(&rf);

    /* Won, on a partly refunded charge: the rest is disputed; the money
     * comes back; no funds_withdrawn. */
    resp p2 = pi_create(s, 3000, "pm_card_visa", "cus_D", "dl-2", "43");
    snprintf(form, sizeof form, "payment_intent=%s&amount=1000", pi_id(&p2));
    rf = api(s, "POST", "/v1/refunds", form, "dl-re-3", NULL);
    assert_int_equal(rf.status, 200);
    resp_free(&rf);
    env = standin_dispute_open(s, jstr(p2.body, "latest_charge"), 0, "product_not_received");
    assert_int_equal(jint(env, "data.object.amount"), 2000);
    assert_string_equal(jstr(env, "data.object.reason"), "product_not_received");
    char dp2[64];
    snprintf(dp2, sizeof dp2, "%s", jstr(env, "data.object.id"));
    json_decref(env);
    int64_t seq1 = standin_stat(s, "events");
    env = standin_dispute_close(s, dp2, "won");
    assert_string_equal(jstr(env, "data.object.status"), "won");
    json_t *txns = json_object_get(json_object_get(json_object_get(env, "data"), "object"),
                                   "balance_transactions");
    assert_int_equal(json_array_size(txns), 2);
    assert_int_equal(jint(json_array_get(txns, 1), "amount"), 2000);
    assert_string_equal(jstr(json_array_get(txns, 1), "reporting_category"), "dispute_reversal");
    json_decref(env);
    ev = standin_events_after(s, seq1);
    event_types(ev, types, sizeof types);
    assert_string_equal(types, "charge.dispute.closed");
    json_decref(ev);
    /* A won charge is refundable again. */
    snprintf(form, sizeof form, "payment_intent=%s&amount=10", pi_id(&p2));
    rf = api(s, "POST", "/v1/refunds", form, "dl-re-4", NULL);
    assert_int_equal(rf.status, 200);
    resp_free(&rf);

    /* Refusals of /__standin/dispute. */
    resp dec = pi_create(s, 100, "pm_card_chargeDeclined", "cus_D", "dl-3", "44");
    snprintf(body, sizeof body, "{\"payment_intent\":\"%s\"}", pi_id(&dec));
    bad = standin_post(s, "/__standin/dispute", body);
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);
    resp p3 = pi_create(s, 100, "pm_card_visa", "cus_D", "dl-4", "45");
    const char *badbodies[] = {"{\"payment_intent\":\"pi_nope\"}", "{}", NULL, NULL};
    char b1[256], b2[256];
    snprintf(b1, sizeof b1, "{\"payment_intent\":\"%s\",\"amount\":101}", pi_id(&p3));
    snprintf(b2, sizeof b2, "{\"payment_intent\":\"%s\",\"reason\":\"boredom\"}", pi_id(&p3));
    badbodies[2] = b1;
    badbodies[3] = b2;
    for (size_t i = 0; i < 4; i++) {
        bad = standin_post(s, "/__standin/dispute", badbodies[i]);
        assert_non_null(json_object_get(bad, "error"));
        json_decref(bad);
    }
    bad = standin_post(s, "/__standin/dispute_close",
                       "{\"dispute\":\"dp_1Pgc71B7WZ01zgkWMevJiAUx\",\"status\":\"lost\"}");
    assert_non_null(json_object_get(bad, "error"));
    json_decref(bad);

    /* An adhoc dispute (unknown id, as before) is not in the lists. */
    resp ad =
        api(s, "POST", "/v1/disputes/dp_1Pgc71B7WZ01zgkWMevJiAUx", "submit=true", "dl-ad", NULL);
    assert_int_equal(ad.status, 200);
    resp_free(&ad);

    /* The list: newest first, paging, filters, created. */
    resp l = api(s, "GET", "/v1/disputes?limit=1", NULL, NULL, NULL);
    assert_int_equal(l.status, 200);
    assert_string_equal(jstr(l.body, "url"), "/v1/disputes");
    assert_int_equal(data_len(&l), 1);
    assert_string_equal(data_id(&l, 0), dp2);
    assert_true(json_is_true(json_object_get(l.body, "has_more")));
    resp_free(&l);
    snprintf(path, sizeof path, "/v1/disputes?limit=1&starting_after=%s", dp2);
    l = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&l), 1);
    assert_string_equal(data_id(&l, 0), dp);
    assert_false(json_is_true(json_object_get(l.body, "has_more")));
    resp_free(&l);
    snprintf(path, sizeof path, "/v1/disputes?payment_intent=%s", pid);
    l = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&l), 1);
    assert_string_equal(data_id(&l, 0), dp);
    resp_free(&l);
    snprintf(path, sizeof path, "/v1/disputes?created[gt]=%lld", (long long)created + 86400);
    l = api(s, "GET", path, NULL, NULL, NULL);
    assert_int_equal(data_len(&l), 1);
    assert_string_equal(data_id(&l, 0), dp2);
    resp_free(&l);
    l = api(s, "GET", "/v1/disputes?status=lost", NULL, NULL, NULL);
    assert_int_equal(l.status, 400);
    resp_free(&l);
    l = api(s, "GET", "/v1/disputes/dp_nope", NULL, NULL, NULL);
    assert_int_equal(l.status, 404);
    resp_free(&l);
    json_t *dump = standin_disputes(s);
    assert_int_equal(json_array_size(dump), 2);
    assert_string_equal(jstr(json_array_get(dump, 0), "status"), "lost");
    assert_string_equal(jstr(json_array_get(dump, 1), "status"), "won");
    json_decref(dump);
    json_t *charges = standin_charges(s);
    size_t i;
    json_t *c;
    json_array_foreach(charges, i, c)
    {
        if (strcmp(jstr(c, "id"), ch) == 0)
            assert_true(json_is_true(json_object_get(c, "disputed")));
    }
    json_decref(charges);
    resp_free(&pi);
    resp_free(&p2);
    resp_free(&dec);
    resp_free(&p3);
}

/* The log of everything, in order, with Stripe's envelope. */
static void test_event_log(void **state)
{
    standin *s = *state;
    resp a = pi_create(s, 1000, "pm_card_visa", "cus_E", "ev-1", "1");
    resp b = pi_create(s, 1000, "pm_card_chargeDeclinedInsufficientFunds", "cus_E", "ev-2", "2");
    resp c = pi_create(s, 1000, "pm_standin_processing", "cus_E", "ev-3", "3");
    resp rep = pi_create(s, 1000, "pm_card_visa", "cus_E", "ev-1", "1"); /* replay: no event */
    char body[256];
    snprintf(body, sizeof body, "{\"payment_intent\":\"%s\",\"outcome\":\"succeeded\"}", pi_id(&c));
    json_t *done = standin_post(s, "/__standin/complete", body);

    json_t *ev = standin_events_after(s, 0);
    char types[512];
    event_types(ev, types, sizeof types);
    assert_string_equal(types, "payment_intent.succeeded,payment_intent.payment_failed,"
                               "payment_intent.processing,payment_intent.succeeded");
    const resp *by[] = {&a, &b, &c};
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_object_get(json_array_get(ev, i), "event");
        assert_int_equal(jint(json_array_get(ev, i), "seq"), (json_int_t)i + 1);
        assert_true(is_id(jstr(e, "id"), "evt_", 24));
        assert_string_equal(jstr(e, "object"), "event");
        assert_string_equal(jstr(e, "api_version"), "2024-06-20");
        assert_int_equal(jint(e, "pending_webhooks"), 1);
        assert_false(json_is_true(json_object_get(e, "livemode")));
        assert_null(json_object_get(json_object_get(e, "data"), "previous_attributes"));
        if (i < 3) {
            assert_string_equal(jstr(e, "data.object.id"), pi_id(by[i]));
            assert_string_equal(jstr(e, "request.id"), by[i]->request_id);
            char key[16];
            snprintf(key, sizeof key, "ev-%zu", i + 1);
            assert_string_equal(jstr(e, "request.idempotency_key"), key);
        }
    }
    json_t *e1 = json_object_get(json_array_get(ev, 1), "event");
    assert_string_equal(jstr(e1, "data.object.status"), "requires_payment_method");
    assert_string_equal(jstr(e1, "data.object.last_payment_error.decline_code"),
                        "insufficient_funds");
    json_t *e2 = json_object_get(json_array_get(ev, 2), "event");
    assert_string_equal(jstr(e2, "data.object.status"), "processing");
    /* The completion: Stripe's own doing, the same envelope as answered. */
    json_t *e3 = json_object_get(json_array_get(ev, 3), "event");
    assert_string_equal(jstr(e3, "id"), jstr(done, "id"));
    assert_true(json_equal(e3, done));
    assert_true(json_is_null(json_object_get(json_object_get(e3, "request"), "id")));
    assert_true(json_is_null(json_object_get(json_object_get(e3, "request"), "idempotency_key")));
    assert_string_equal(jstr(e3, "data.object.status"), "succeeded");
    json_decref(ev);
    /* after=SEQ */
    ev = standin_events_after(s, 3);
    assert_int_equal(json_array_size(ev), 1);
    assert_int_equal(jint(json_array_get(ev, 0), "seq"), 4);
    json_decref(ev);
    ev = standin_events_after(s, 4);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    json_t *badq = standin_get(s, "/__standin/events?after=x");
    assert_non_null(json_object_get(badq, "error"));
    json_decref(badq);
    /* A seeded refund is an event too, with no request. */
    json_decref(standin_post(s, "/__standin/refunds",
                             "{\"charge\":\"ch_1PgafuB7WZ01zgkWXYmPNZs8\",\"amount\":5,"
                             "\"charge_amount\":1099}"));
    ev = standin_events_after(s, 4);
    assert_int_equal(json_array_size(ev), 1);
    json_t *e5 = json_object_get(json_array_get(ev, 0), "event");
    assert_string_equal(jstr(e5, "type"), "charge.refunded");
    assert_int_equal(jint(e5, "data.object.amount"), 1099);
    assert_int_equal(jint(e5, "data.object.amount_refunded"), 5);
    json_decref(ev);
    assert_int_equal(standin_stat(s, "events"), 5);

    /* Reset forgets the log, the objects, and the controls. */
    standin_fail_mode(s, "lose_answer", 3);
    standin_auth_valid(s, false);
    standin_search_lag(s, 500);
    standin_refund_default(s, "pending");
    standin_reset(s);
    ev = standin_events_after(s, 0);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    json_t *dumps[] = {standin_payment_intents(s), standin_refunds(s), standin_disputes(s),
                       standin_charges(s)};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(json_array_size(dumps[i]), 0);
        json_decref(dumps[i]);
    }
    resp n = pi_create(s, 1000, "pm_card_visa", "cus_E", "ev-1", "1"); /* answered, not lost */
    assert_int_equal(n.status, 200);
    assert_string_equal(n.replayed, "");
    resp f = search(s, "metadata['attempt_key']:'ev-1'", NULL);
    assert_int_equal(data_len(&f), 1); /* lag back to 0 */
    char form[128];
    snprintf(form, sizeof form, "payment_intent=%s&amount=1", pi_id(&n));
    resp rf = api(s, "POST", "/v1/refunds", form, "ev-re", NULL);
    assert_string_equal(jstr(rf.body, "status"), "succeeded");
    ev = standin_events_after(s, 0);
    assert_int_equal(jint(json_array_get(ev, 0), "seq"), 1);
    json_decref(ev);
    resp_free(&n);
    resp_free(&f);
    resp_free(&rf);
    json_decref(done);
    resp_free(&a);
    resp_free(&b);
    resp_free(&c);
    resp_free(&rep);
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
        cmocka_unit_test_setup_teardown(test_clock, start, stop),
        cmocka_unit_test_setup_teardown(test_key_expiry, start, stop),
        cmocka_unit_test_setup_teardown(test_pi_retrieve_and_list, start, stop),
        cmocka_unit_test_setup_teardown(test_search, start, stop),
        cmocka_unit_test_setup_teardown(test_lose_answer, start, stop),
        cmocka_unit_test_setup_teardown(test_auth_window_and_faults, start, stop),
        cmocka_unit_test_setup_teardown(test_refund_life, start, stop),
        cmocka_unit_test_setup_teardown(test_dispute_life, start, stop),
        cmocka_unit_test_setup_teardown(test_event_log, start, stop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
