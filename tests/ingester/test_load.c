/* test_load.c: 1,000 distinct events posted concurrently (curl multi, 64
 * connections at a time): every event answered 200 is in Kafka exactly once,
 * on the right topic, and nothing else is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "harness.h"

#define N_EVENTS 1000
#define PARALLEL 64

typedef struct {
    char id[64];
    char body[512];
    size_t len;
    struct curl_slist *hdrs;
    long code;
    int dest; /* 0 payments, 1 disputes */
} load_req;

static size_t load_discard(char *p, size_t sz, size_t nm, void *ud)
{
    (void)p;
    (void)ud;
    return sz * nm;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_concurrent_1000(void **state)
{
    (void)state;
    load_req *reqs = calloc(N_EVENTS, sizeof *reqs);
    assert_non_null(reqs);
    char url[128];
    snprintf(url, sizeof url, "%s/webhooks/stripe", H.url);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)PARALLEL);
    int64_t now = h_now();
    for (int i = 0; i < N_EVENTS; i++) {
        load_req *q = &reqs[i];
        q->dest = i % 2;
        snprintf(q->id, sizeof q->id, "evt_load_%04d", i);
        if (q->dest == 0)
            q->len = (size_t)snprintf(q->body, sizeof q->body,
                                      "{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                                      "\"payment_intent.succeeded\",\"data\":{\"object\":"
                                      "{\"id\":\"pi_load_%d\"}}}",
                                      q->id, i % 37);
        else
            q->len = (size_t)snprintf(q->body, sizeof q->body,
                                      "{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                                      "\"charge.dispute.created\",\"data\":{\"object\":"
                                      "{\"id\":\"dp_load_%d\",\"charge\":\"ch_load_%d\"}}}",
                                      q->id, i, i % 41);
        char sig[256], hdr[300];
        h_sign(i % 3 == 0 ? H_SECRET_B : H_SECRET_A, now, q->body, q->len, sig, sizeof sig);
        snprintf(hdr, sizeof hdr, "Stripe-Signature: %s", sig);
        q->hdrs = curl_slist_append(NULL, hdr);
        q->hdrs = curl_slist_append(q->hdrs, "Expect:");
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdrs);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)q->len);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, load_discard);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_PRIVATE, q);
        curl_multi_add_handle(multi, e);
    }
    int running = 1;
    uint64_t t0 = h_mono_ms();
    while (running > 0) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            load_req *q;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &q->code);
            curl_multi_remove_handle(multi, m->easy_handle);
            curl_easy_cleanup(m->easy_handle);
        }
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    curl_multi_cleanup(multi);
    uint64_t elapsed = h_mono_ms() - t0;

    size_t n_ok = 0, want[2] = {0, 0};
    for (int i = 0; i < N_EVENTS; i++) {
        curl_slist_free_all(reqs[i].hdrs);
        if (reqs[i].code == 200) {
            n_ok++;
            want[reqs[i].dest]++;
        } else if (reqs[i].code != 503) {
            fail_msg("%s: unexpected status %ld", reqs[i].id, reqs[i].code);
        }
    }
    print_message("%d concurrent events: %zu answered 200 in %llu ms\n", N_EVENTS, n_ok,
                  (unsigned long long)elapsed);
    /* With a healthy broker every event must get through. */
    assert_int_equal(n_ok, N_EVENTS);

    static const char *const topics[2] = {"billing.stripe.payments", "billing.stripe.disputes"};
    for (int d = 0; d < 2; d++) {
        h_msg *msgs;
        size_t n = h_read_topic(topics[d], want[d], 60000, 2000, &msgs);
        assert_int_equal(n, want[d]);
        const char **got = calloc(n + 1, sizeof *got), **exp = calloc(want[d] + 1, sizeof *exp);
        for (size_t k = 0; k < n; k++)
            got[k] = msgs[k].event_id;
        size_t e = 0;
        for (int i = 0; i < N_EVENTS; i++)
            if (reqs[i].code == 200 && reqs[i].dest == d)
                exp[e++] = reqs[i].id;
        qsort(got, n, sizeof *got, cmp_str);
        qsort(exp, e, sizeof *exp, cmp_str);
        for (size_t k = 0; k < n; k++)
            if (strcmp(got[k], exp[k]) != 0)
                fail_msg("%s: id mismatch at %zu: %s vs %s", topics[d], k, got[k], exp[k]);
        /* Body bytes and key of every message. */
        for (size_t k = 0; k < n; k++) {
            int i = atoi(msgs[k].event_id + strlen("evt_load_"));
            assert_true(i >= 0 && i < N_EVENTS);
            assert_int_equal(msgs[k].value_len, reqs[i].len);
            assert_memory_equal(msgs[k].value, reqs[i].body, reqs[i].len);
            char key[64];
            if (d == 0)
                snprintf(key, sizeof key, "pi_load_%d", i % 37);
            else
                snprintf(key, sizeof key, "ch_load_%d", i % 41);
            assert_string_equal(msgs[k].key, key);
        }
        free(got);
        free(exp);
        h_msgs_free(msgs, n);
    }
    free(reqs);
    assert_int_equal(h_stop_ingester(30000), 0);
}

static int group_setup(void **state)
{
    (void)state;
    static const char *const env[] = {"LOG_LEVEL=warn", NULL};
    return h_start(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_1000),
    };
    return h_done(cmocka_run_group_tests(tests, group_setup, NULL));
}
