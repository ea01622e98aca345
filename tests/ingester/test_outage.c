/* test_outage.c: the broker goes down under a running ingester: every
 * request gets 503 within the bounded publish time and none gets 200; /readyz
 * says 503; when the broker comes back, requests succeed again without
 * restarting the ingester, and every 200 is in Kafka. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "harness.h"

#define PUBLISH_TIMEOUT_MS 2000
#define MAX_OK 64

static char ok_ids[MAX_OK][64];
static size_t n_ok;

static long post_event(const char *id, int64_t *micros)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"id\":\"%s\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\","
             "\"data\":{\"object\":{\"id\":\"pi_outage\",\"object\":\"payment_intent\"}}}\n",
             id);
    h_resp r;
    assert_int_equal(h_post_signed(H_SECRET_A, body, strlen(body), &r), 0);
    long code = r.code;
    if (micros != NULL)
        *micros = r.micros;
    if (code == 200) {
        assert_true(n_ok < MAX_OK);
        snprintf(ok_ids[n_ok++], sizeof ok_ids[0], "%s", id);
    }
    h_resp_free(&r);
    return code;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_outage_and_recovery(void **state)
{
    (void)state;
    assert_int_equal(post_event("evt_outage_before", NULL), 200);

    h_broker_signal(SIGUSR1);
    /* The dev broker acts on signals from its loop; wait until the ingester
     * itself sees the cluster gone, so no request races the switch. */
    uint64_t until = h_mono_ms() + 20000;
    h_resp r;
    for (;;) {
        assert_int_equal(h_http("GET", "/readyz", NULL, 0, NULL, 0, &r), 0);
        long rc = r.code;
        h_resp_free(&r);
        if (rc == 503)
            break;
        assert_true(h_mono_ms() < until);
        sleep_ms(100);
    }
    for (int i = 0; i < 4; i++) {
        char id[64];
        snprintf(id, sizeof id, "evt_outage_down_%d", i);
        int64_t us = 0;
        long code = post_event(id, &us);
        if (code != 503)
            fail_msg("%s during outage: %ld, want 503", id, code);
        /* Bounded: publish timeout plus a margin for sanitizer builds. */
        if (us / 1000 > PUBLISH_TIMEOUT_MS + 2000)
            fail_msg("%s took %d ms", id, (int)(us / 1000));
    }
    assert_int_equal(h_http("GET", "/readyz", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 503);
    h_resp_free(&r);

    h_broker_signal(SIGUSR2);
    /* librdkafka reconnects with backoff; retry like Stripe would. */
    uint64_t end = h_mono_ms() + 60000;
    long code = 0;
    int attempt = 0;
    while (h_mono_ms() < end) {
        char id[64];
        snprintf(id, sizeof id, "evt_outage_retry_%d", attempt++);
        code = post_event(id, NULL);
        if (code == 200)
            break;
        assert_int_equal(code, 503);
        sleep_ms(500);
    }
    assert_int_equal(code, 200);
    for (int i = 0; i < 5; i++) {
        char id[64];
        snprintf(id, sizeof id, "evt_outage_after_%d", i);
        assert_int_equal(post_event(id, NULL), 200);
    }
    assert_int_equal(h_http("GET", "/readyz", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 200);
    h_resp_free(&r);

    /* Every 200 is in Kafka. (A 503'd event may also be there: it is
     * allowed to land late; Stripe's redelivery is then a duplicate.) */
    h_msg *msgs;
    size_t n = h_read_topic("billing.stripe.payments", n_ok, 30000, 500, &msgs);
    for (size_t i = 0; i < n_ok; i++) {
        size_t found = 0;
        for (size_t k = 0; k < n; k++)
            found += strcmp(msgs[k].event_id, ok_ids[i]) == 0;
        if (found != 1)
            fail_msg("%s answered 200 but found %zu times in Kafka", ok_ids[i], found);
    }
    h_msgs_free(msgs, n);
    assert_int_equal(h_stop_ingester(20000), 0);
}

static int group_setup(void **state)
{
    (void)state;
    static const char *const env[] = {"INGESTER_PUBLISH_TIMEOUT_MS=2000", NULL};
    return h_start(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_and_recovery),
    };
    return h_done(cmocka_run_group_tests(tests, group_setup, NULL));
}
