/* test_http.c: billing-ingester over real HTTP on loopback with its own dev
 * broker: every refusal path (ids of the wrong shape included), the accepted
 * fixtures read back from Kafka byte for byte with their key and headers,
 * ignored types, body limits, 405/404, /healthz /readyz /metrics, and a
 * clean exit on SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

#define MAX_BODY 65536

static void expect_400(const char *sig, const void *body, size_t len, const char *words)
{
    h_resp r;
    assert_int_equal(h_http("POST", "/webhooks/stripe", body, len, sig, 0, &r), 0);
    if (r.code != 400 || strstr(r.body, "\"error\"") == NULL || strstr(r.body, words) == NULL)
        fail_msg("expected 400 mentioning '%s', got %ld %s", words, r.code, r.body);
    h_resp_free(&r);
}

static void test_refusals_signature(void **state)
{
    (void)state;
    size_t len;
    char *body = h_fixture("payment_intent.succeeded.json", &len);
    assert_non_null(body);
    char sig[512], hex[65], hex_b[65];
    int64_t now = h_now();

    expect_400(NULL, body, len, "missing");
    expect_400("garbage", body, len, "malformed");
    h_sign_hex(H_SECRET_A, now, body, len, hex);
    snprintf(sig, sizeof sig, "v1=%s", hex);
    expect_400(sig, body, len, "malformed"); /* no t */
    snprintf(sig, sizeof sig, "t=12ab,v1=%s", hex);
    expect_400(sig, body, len, "malformed");
    snprintf(sig, sizeof sig, "t=%lld", (long long)now);
    expect_400(sig, body, len, "no v1");
    /* v0 only (test-mode extra scheme) is not a signature we accept. */
    snprintf(sig, sizeof sig, "t=%lld,v0=%s", (long long)now, hex);
    expect_400(sig, body, len, "no v1");
    /* Wrong secret. */
    h_sign("whsec_wrong", now, body, len, sig, sizeof sig);
    expect_400(sig, body, len, "no signature matches");
    /* Right secret, body changed by one byte. */
    h_sign(H_SECRET_A, now, body, len, sig, sizeof sig);
    expect_400(sig, body, len - 1, "no signature matches");
    /* Signed for another timestamp than the header says. */
    h_sign_hex(H_SECRET_A, now - 1, body, len, hex);
    snprintf(sig, sizeof sig, "t=%lld,v1=%s", (long long)now, hex);
    expect_400(sig, body, len, "no signature matches");
    /* Stale and future, each 301 s away from a 300 s tolerance. */
    h_sign(H_SECRET_A, now - 301, body, len, sig, sizeof sig);
    expect_400(sig, body, len, "too old");
    h_sign(H_SECRET_A, now + 301, body, len, sig, sizeof sig);
    expect_400(sig, body, len, "future");
    /* Several v1 where none match. */
    h_sign_hex("whsec_x", now, body, len, hex);
    h_sign_hex("whsec_y", now, body, len, hex_b);
    snprintf(sig, sizeof sig, "t=%lld,v1=%s,v1=%s", (long long)now, hex, hex_b);
    expect_400(sig, body, len, "no signature matches");
    free(body);
}

static void signed_body_400(const char *text, const char *words)
{
    char sig[256];
    h_sign(H_SECRET_A, h_now(), text, strlen(text), sig, sizeof sig);
    expect_400(sig, text, strlen(text), words);
}

static void test_refusals_envelope(void **state)
{
    (void)state;
    signed_body_400("this is not json", "not valid JSON");
    signed_body_400("{\"id\":\"evt_1\",\"type\":", "not valid JSON");
    signed_body_400("[1,2,3]", "not a JSON object");
    signed_body_400("{\"type\":\"payment_intent.succeeded\"}", "no valid \\\"id\\\"");
    signed_body_400("{\"id\":\"evt_no_type\"}", "no valid \\\"type\\\"");
    signed_body_400("{\"id\":\"\",\"type\":\"payment_intent.succeeded\"}", "id");
    signed_body_400("{\"id\":42,\"type\":\"payment_intent.succeeded\"}", "id");
    signed_body_400("{\"id\":\"evt_1\",\"type\":null}", "type");
    signed_body_400("", "not valid JSON");
}

/* A fixture with its first occurrence of `from` replaced by `to`, signed
 * and posted: 400 naming the field, and (test_read_back's exact counts)
 * nothing published. */
static void fixture_id_400(const char *file, const char *from, const char *to, const char *words)
{
    size_t len;
    char *body = h_fixture(file, &len);
    assert_non_null(body);
    char *at = strstr(body, from);
    assert_non_null(at);
    size_t fl = strlen(from), tl = strlen(to), off = (size_t)(at - body);
    char *out = malloc(len - fl + tl + 1);
    assert_non_null(out);
    memcpy(out, body, off);
    memcpy(out + off, to, tl);
    memcpy(out + off + tl, at + fl, len - off - fl);
    size_t olen = len - fl + tl;
    out[olen] = '\0';
    char sig[256];
    h_sign(H_SECRET_A, h_now(), out, olen, sig, sizeof sig);
    expect_400(sig, out, olen, words);
    free(out);
    free(body);
}

/* Ids of the wrong shape (CONTRACT.md, Hardening): signed events whose id
 * or routing key could steer a SQL key or a URL are refused. */
static void test_refusals_ids(void **state)
{
    (void)state;
    fixture_id_400("payment_intent.succeeded.json", "\"evt_1PgafzB7WZ01zgkWd7Nc0aQe\"",
                   "\"evt_1Pgafz/../x\"", "\\\"id\\\" is not a Stripe id");
    fixture_id_400("payment_intent.succeeded.json", "\"pi_1PgafyB7WZ01zgkWSjxsAJo3\"",
                   "\"pi_1Pgafy/../../v1/refunds\"", "data.object.id is not a Stripe id");
    fixture_id_400("invoice.payment_failed.json",
                   "\"payment_intent\": \"pi_1PgcB4B7WZ01zgkW0fJrT6sQ\"",
                   "\"payment_intent\": \"pi_1PgcB4?expand[]=customer\"",
                   "data.object.payment_intent is not a Stripe id");
    fixture_id_400("charge.dispute.created.json", "\"charge\": \"ch_1PgafuB7WZ01zgkWXYmPNZs8\"",
                   "\"charge\": \"ch_1' OR '1'='1\"", "data.object.charge is not a Stripe id");
    fixture_id_400("charge.refunded.json", "\"ch_1PgafuB7WZ01zgkWXYmPNZs8\"", "\"CH_1PGAFU\"",
                   "data.object.id is not a Stripe id");
    /* an ignored type too: its id is still an id taken from an event */
    fixture_id_400("customer.created.json", "\"evt_", "\"evt-", "\\\"id\\\" is not a Stripe id");
}

static void test_body_limits(void **state)
{
    (void)state;
    /* 413 from Content-Length, before the body is read. */
    size_t big = MAX_BODY + 1;
    char *body = malloc(big);
    memset(body, ' ', big);
    char sig[256];
    h_sign(H_SECRET_A, h_now(), body, big, sig, sizeof sig);
    h_resp r;
    assert_int_equal(h_http("POST", "/webhooks/stripe", body, big, sig, 0, &r), 0);
    assert_int_equal(r.code, 413);
    assert_non_null(strstr(r.body, "INGESTER_MAX_BODY"));
    h_resp_free(&r);
    /* 413 while accumulating a chunked body (no Content-Length). */
    size_t huge = 3 * MAX_BODY;
    char *hb = malloc(huge);
    memset(hb, ' ', huge);
    assert_int_equal(h_http("POST", "/webhooks/stripe", hb, huge, sig, 1, &r), 0);
    assert_int_equal(r.code, 413);
    h_resp_free(&r);
    free(hb);

    /* Exactly MAX_BODY, chunked and with Content-Length: accepted (ignored type). */
    const char *head = "{\"id\":\"evt_exact_max\",\"type\":\"customer.updated\",\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(body, head, hl);
    memset(body + hl, 'x', MAX_BODY - hl - 2);
    memcpy(body + MAX_BODY - 2, "\"}", 2);
    h_sign(H_SECRET_A, h_now(), body, MAX_BODY, sig, sizeof sig);
    for (int chunked = 0; chunked <= 1; chunked++) {
        assert_int_equal(h_http("POST", "/webhooks/stripe", body, MAX_BODY, sig, chunked, &r), 0);
        if (r.code != 200)
            fail_msg("chunked=%d: %ld %s", chunked, r.code, r.body);
        assert_string_equal(r.body, "{\"received\":true,\"ignored\":true}");
        h_resp_free(&r);
    }
    /* A small chunked event is read whole and verified. */
    const char *small = "{\"id\":\"evt_chunked_small\",\"type\":\"customer.deleted\"}";
    h_sign(H_SECRET_A, h_now(), small, strlen(small), sig, sizeof sig);
    assert_int_equal(h_http("POST", "/webhooks/stripe", small, strlen(small), sig, 1, &r), 0);
    assert_int_equal(r.code, 200);
    h_resp_free(&r);
    free(body);
}

static void test_methods_and_paths(void **state)
{
    (void)state;
    h_resp r;
    assert_int_equal(h_http("GET", "/webhooks/stripe", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "POST");
    h_resp_free(&r);
    assert_int_equal(h_http("PUT", "/api/webhooks/stripe/", "{}", 2, NULL, 0, &r), 0);
    assert_int_equal(r.code, 405);
    h_resp_free(&r);
    assert_int_equal(h_http("DELETE", "/webhooks/stripe", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 405);
    h_resp_free(&r);
    assert_int_equal(h_http("POST", "/healthz", "{}", 2, NULL, 0, &r), 0);
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "GET, HEAD");
    h_resp_free(&r);
    const char *paths[] = {"/",
                           "/webhooks",
                           "/webhooks/stripe/",
                           "/api/webhooks/stripe",
                           "/webhooks/stripe/x",
                           "/WEBHOOKS/STRIPE"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(h_http("POST", paths[i], "{}", 2, "t=1,v1=00", 0, &r), 0);
        if (r.code != 404)
            fail_msg("%s: expected 404, got %ld", paths[i], r.code);
        h_resp_free(&r);
    }
    assert_int_equal(h_http("GET", "/nope", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 404);
    h_resp_free(&r);
}

typedef struct {
    const char *file;
    const char *topic;
    const char *key;
    const char *secret;
    const char *path;
} accepted_case;

static const accepted_case accepted[] = {
    {"payment_intent.succeeded.json", "payments", "pi_1PgafyB7WZ01zgkWSjxsAJo3", H_SECRET_A,
     "/webhooks/stripe"},
    /* second secret of the rotation */
    {"payment_intent.payment_failed.json", "payments", "pi_1PgcB4B7WZ01zgkW0fJrT6sQ", H_SECRET_B,
     "/webhooks/stripe"},
    {"invoice.payment_succeeded.json", "payments", "pi_1PgafyB7WZ01zgkWSjxsAJo3", H_SECRET_A,
     "/api/webhooks/stripe/"},
    {"invoice.payment_failed.json", "payments", "pi_1PgcB4B7WZ01zgkW0fJrT6sQ", H_SECRET_B,
     "/webhooks/stripe"},
    {"charge.refunded.json", "disputes", "ch_1PgafuB7WZ01zgkWXYmPNZs8", H_SECRET_A,
     "/webhooks/stripe"},
    {"charge.refunded.partial.json", "disputes", "ch_1PgafuB7WZ01zgkWXYmPNZs8", H_SECRET_A,
     "/api/webhooks/stripe/"},
    {"charge.dispute.created.json", "disputes", "ch_1PgafuB7WZ01zgkWXYmPNZs8", H_SECRET_A,
     "/webhooks/stripe"},
    {"charge.dispute.updated.json", "disputes", "ch_1PgafuB7WZ01zgkWXYmPNZs8", H_SECRET_A,
     "/webhooks/stripe"},
    {"charge.dispute.closed.won.json", "disputes", "ch_1PgafuB7WZ01zgkWXYmPNZs8", H_SECRET_A,
     "/webhooks/stripe"},
    {"charge.dispute.closed.lost.json", "disputes", "ch_1PgafuB7WZ01zgkWXYmPNZs8", H_SECRET_B,
     "/webhooks/stripe"},
    {"charge.dispute.funds_withdrawn.json", "disputes", "ch_1PgafuB7WZ01zgkWXYmPNZs8", H_SECRET_A,
     "/webhooks/stripe"},
};
#define N_ACCEPTED (sizeof accepted / sizeof accepted[0])

static void test_accepted_and_ignored(void **state)
{
    (void)state;
    int64_t now = h_now();
    for (size_t i = 0; i < N_ACCEPTED; i++) {
        size_t len;
        char *body = h_fixture(accepted[i].file, &len);
        assert_non_null(body);
        char sig[512];
        if (i == 1) {
            /* Rotation as Stripe sends it: a v1 per secret plus a v0. */
            char hex_old[65], hex_new[65];
            h_sign_hex("whsec_retired", now, body, len, hex_old);
            h_sign_hex(accepted[i].secret, now, body, len, hex_new);
            snprintf(sig, sizeof sig, "t=%lld, v1=%s, v1=%s, v0=%s", (long long)now, hex_old,
                     hex_new, hex_old);
        } else if (i == 2) {
            h_sign(accepted[i].secret, now - 290, body, len, sig, sizeof sig); /* inside */
        } else {
            h_sign(accepted[i].secret, now, body, len, sig, sizeof sig);
        }
        h_resp r;
        assert_int_equal(h_http("POST", accepted[i].path, body, len, sig, 0, &r), 0);
        if (r.code != 200 || strcmp(r.body, "{\"received\":true}") != 0)
            fail_msg("%s: %ld %s", accepted[i].file, r.code, r.body);
        h_resp_free(&r);
        free(body);
    }
    size_t len;
    char *body = h_fixture("customer.created.json", &len);
    h_resp r;
    assert_int_equal(h_post_signed(H_SECRET_B, body, len, &r), 0);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "{\"received\":true,\"ignored\":true}");
    h_resp_free(&r);
    free(body);
}

static void check_topic(const char *short_name, size_t want)
{
    char topic[128];
    snprintf(topic, sizeof topic, "billing.stripe.%s", short_name);
    h_msg *msgs;
    size_t n = h_read_topic(topic, want, 30000, 1500, &msgs);
    if (n != want)
        fail_msg("%s: %zu messages, want %zu", topic, n, want);
    for (size_t i = 0; i < N_ACCEPTED; i++) {
        if (strcmp(accepted[i].topic, short_name) != 0)
            continue;
        size_t len;
        char *body = h_fixture(accepted[i].file, &len);
        json_t *j = json_loadb(body, len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *type = json_string_value(json_object_get(j, "type"));
        size_t found = 0;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(msgs[k].event_id, id) != 0)
                continue;
            found++;
            assert_int_equal(msgs[k].value_len, len);
            assert_memory_equal(msgs[k].value, body, len);
            assert_string_equal(msgs[k].key, accepted[i].key);
            assert_string_equal(msgs[k].event_type, type);
            /* RFC 3339 UTC with milliseconds, e.g. 2026-11-24T07:42:13.123Z */
            assert_int_equal(strlen(msgs[k].received_at), 24);
            assert_int_equal(msgs[k].received_at[10], 'T');
            assert_int_equal(msgs[k].received_at[23], 'Z');
        }
        if (found != 1)
            fail_msg("%s (%s): found %zu times in %s", accepted[i].file, id, found, topic);
        json_decref(j);
        free(body);
    }
    h_msgs_free(msgs, n);
}

/* Exact counts also prove that nothing refused or ignored was published. */
static void test_read_back(void **state)
{
    (void)state;
    check_topic("payments", 4);
    check_topic("disputes", 7);
}

static void test_health_and_metrics(void **state)
{
    (void)state;
    h_resp r;
    assert_int_equal(h_http("GET", "/healthz", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 200);
    h_resp_free(&r);
    assert_int_equal(h_http("GET", "/readyz", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 200);
    h_resp_free(&r);
    assert_int_equal(h_http("GET", "/metrics", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 200);
    const char *want[] = {
        "# TYPE ingester_http_requests_total counter",
        "ingester_http_requests_total{route=\"/webhooks/stripe\",code=\"200\"}",
        "ingester_http_requests_total{route=\"/webhooks/stripe\",code=\"400\"}",
        "ingester_http_requests_total{route=\"/webhooks/stripe\",code=\"413\"}",
        "ingester_http_requests_total{route=\"/webhooks/stripe\",code=\"405\"}",
        "ingester_http_requests_total{route=\"other\",code=\"404\"}",
        "ingester_events_published_total{type=\"charge.refunded\"} 2\n",
        "ingester_events_published_total{type=\"payment_intent.succeeded\"} 1\n",
        "ingester_events_ignored_total 4\n",
        "ingester_signature_failures_total{reason=\"mismatch\"}",
        "ingester_signature_failures_total{reason=\"stale\"} 1\n",
        "ingester_signature_failures_total{reason=\"future\"} 1\n",
        "ingester_signature_failures_total{reason=\"missing\"} 1\n",
        "# TYPE ingester_publish_duration_seconds histogram",
        "ingester_publish_duration_seconds_bucket{le=\"+Inf\"} 11\n",
        "ingester_publish_duration_seconds_count 11\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(r.body, want[i]) == NULL)
            fail_msg("/metrics lacks '%s':\n%s", want[i], r.body);
    h_resp_free(&r);
}

static void test_sigterm_exits_zero(void **state)
{
    (void)state;
    assert_int_equal(h_stop_ingester(20000), 0);
}

static int group_setup(void **state)
{
    (void)state;
    static const char *const env[] = {"INGESTER_MAX_BODY=65536", NULL};
    return h_start(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals_signature), cmocka_unit_test(test_refusals_envelope),
        cmocka_unit_test(test_refusals_ids),       cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_methods_and_paths),  cmocka_unit_test(test_accepted_and_ignored),
        cmocka_unit_test(test_read_back),          cmocka_unit_test(test_health_and_metrics),
        cmocka_unit_test(test_sigterm_exits_zero),
    };
    return h_done(cmocka_run_group_tests(tests, group_setup, NULL));
}
