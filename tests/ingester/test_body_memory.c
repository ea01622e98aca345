/* test_body_memory.c: what request bodies cost the ingester in memory, over
 * real loopback sockets against a private broker and ingester (harness.h),
 * with INGESTER_MAX_BODY and INGESTER_MAX_BUFFERED both at 64 MiB:
 * - 100 connections announcing 64 MiB bodies (6.25 GiB in all) and sending
 *   100 bytes each hold 4 KiB each: the process's RSS and its data size
 *   (VmRSS, VmData of /proc/<pid>/status) stay far below the announced
 *   sizes (before, each announced size was allocated at the headers: the
 *   data size grew by the 6.25 GiB, the RSS did not only because glibc's
 *   large allocations are not touched until written);
 * - past INGESTER_MAX_BUFFERED, a body is answered 503 and dropped while the
 *   others are kept; a small webhook still finds room and gets 200, and
 *   the same large body gets 200 once the held ones are gone;
 * - the gauge ingester_body_buffered_bytes returns to 0 each time. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define BM_MIB ((size_t)1024 * 1024)
#define BM_MAX_BODY (64 * BM_MIB)     /* INGESTER_MAX_BODY */
#define BM_MAX_BUFFERED (64 * BM_MIB) /* INGESTER_MAX_BUFFERED */
#define BM_ANNOUNCERS 100
#define BM_FIRST_BYTES 100
#define BM_HELD 5
#define BM_HELD_SIZE (12 * BM_MIB)

/* The value of an unlabelled series in /metrics, or -1. */
static long long bm_metric(const char *name)
{
    h_resp r;
    long long v = -1;
    if (h_http("GET", "/metrics", NULL, 0, NULL, 0, &r) == 0 && r.code == 200) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *at = strstr(r.body, key);
        if (at != NULL)
            v = strtoll(at + strlen(key), NULL, 10);
    }
    h_resp_free(&r);
    return v;
}

/* Waits (at most timeout_ms) until the gauge of buffered bytes is want;
 * returns its last value. */
static long long bm_wait_buffered(long long want, int timeout_ms)
{
    uint64_t end = h_mono_ms() + (uint64_t)timeout_ms;
    long long v;
    while ((v = bm_metric("ingester_body_buffered_bytes")) != want && h_mono_ms() < end)
        h_sleep_ms(50);
    return v;
}

/* A raw POST whose headers announce len bytes, signed over nothing in
 * particular (the body never completes). */
static int bm_open_announcing(size_t len)
{
    int fd = h_raw_connect(h_port());
    if (fd < 0)
        return -1;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\n"
                     "Stripe-Signature: t=%" PRId64 ",v1=%064d\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     h_now(), 0, len);
    if (h_raw_send_all(fd, head, (size_t)n) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A signed event of about `size` bytes of type `type`. */
static char *bm_event(const char *id, const char *type, size_t size, size_t *len)
{
    char *b = malloc(size + 256);
    assert_non_null(b);
    int n = snprintf(b, 256,
                     "{\"id\":\"%s\",\"object\":\"event\",\"type\":\"%s\",\"data\":"
                     "{\"object\":{\"id\":\"pi_%s\",\"pad\":\"",
                     id, type, id);
    size_t at = (size_t)n;
    while (at < size)
        b[at++] = 'x';
    memcpy(b + at, "\"}}}", 5);
    *len = at + 4;
    return b;
}

static long bm_post(const char *body, size_t len, h_resp *r)
{
    return h_post_signed(H_SECRET_A, body, len, r) == 0 ? r->code : 0;
}

static void test_announced_size_pins_nothing(void **state)
{
    (void)state;
    /* one request first, so what every request allocates is in the baseline */
    size_t len;
    char *warm = bm_event("evt_mem_warm", "payment_intent.succeeded", 1500, &len);
    h_resp r;
    assert_int_equal(bm_post(warm, len, &r), 200);
    h_resp_free(&r);
    free(warm);
    pid_t pid = H.ingester_pid;
    long rss0 = h_proc_kib(pid, "VmRSS"), data0 = h_proc_kib(pid, "VmData");
    assert_true(rss0 > 0 && data0 > 0);

    int fds[BM_ANNOUNCERS];
    char first[BM_FIRST_BYTES];
    memset(first, ' ', sizeof first);
    for (int i = 0; i < BM_ANNOUNCERS; i++) {
        fds[i] = bm_open_announcing(BM_MAX_BODY);
        assert_true(fds[i] >= 0);
        assert_int_equal(h_raw_send_all(fds[i], first, sizeof first), 0);
    }
    /* every connection's first bytes are in: one 4 KiB buffer each */
    long long want = (long long)BM_ANNOUNCERS * (4096 + 1);
    long long held = bm_wait_buffered(want, 10000);
    long rss1 = h_proc_kib(pid, "VmRSS"), data1 = h_proc_kib(pid, "VmData");
    long long announced_mib = (long long)BM_ANNOUNCERS * (long long)(BM_MAX_BODY / BM_MIB);
    print_message("%d connections announcing %zu MiB each (%lld MiB in all), %d bytes sent on "
                  "each: buffered %lld bytes; VmRSS %ld -> %ld KiB (+%ld), VmData %ld -> %ld KiB "
                  "(+%ld)\n",
                  BM_ANNOUNCERS, BM_MAX_BODY / BM_MIB, announced_mib, BM_FIRST_BYTES, held, rss0,
                  rss1, rss1 - rss0, data0, data1, data1 - data0);
    for (int i = 0; i < BM_ANNOUNCERS; i++)
        close(fds[i]);
    assert_int_equal(held, want);
    /* far below the 6,400 MiB announced: less than 1% of it either way */
    assert_true(rss1 - rss0 < 64 * 1024);
    assert_true(data1 - data0 < 64 * 1024);
    assert_int_equal(bm_wait_buffered(0, 10000), 0);
}

static void test_global_cap_answers_503(void **state)
{
    (void)state;
    pid_t pid = H.ingester_pid;
    /* BM_HELD bodies of 12 MiB, each one byte short: 60 MiB held */
    char *chunk = malloc(BM_HELD_SIZE);
    assert_non_null(chunk);
    memset(chunk, ' ', BM_HELD_SIZE);
    int fds[BM_HELD];
    for (int i = 0; i < BM_HELD; i++) {
        fds[i] = bm_open_announcing(BM_HELD_SIZE);
        assert_true(fds[i] >= 0);
        assert_int_equal(h_raw_send_all(fds[i], chunk, BM_HELD_SIZE - 1), 0);
    }
    free(chunk);
    long long want = (long long)BM_HELD * (long long)(BM_HELD_SIZE + 1);
    long long held = bm_wait_buffered(want, 30000);
    long rss_held = h_proc_kib(pid, "VmRSS");

    /* an 8 MiB body does not fit in what is left: 503, and it is dropped */
    size_t big_len, small_len;
    char *big = bm_event("evt_mem_big", "customer.updated", 8 * BM_MIB, &big_len);
    char *small = bm_event("evt_mem_small", "payment_intent.succeeded", 1500, &small_len);
    h_resp r1, r2;
    long big_code = bm_post(big, big_len, &r1);
    long long after_big = bm_metric("ingester_body_buffered_bytes");
    long small_code = bm_post(small, small_len, &r2);
    print_message("%d connections holding %zu MiB bodies: buffered %lld bytes (cap %zu), VmRSS "
                  "%ld KiB; an %zu-byte webhook -> %ld, then %lld bytes buffered; a %zu-byte "
                  "webhook -> %ld\n",
                  BM_HELD, BM_HELD_SIZE / BM_MIB, held, BM_MAX_BUFFERED, rss_held, big_len,
                  big_code, after_big, small_len, small_code);
    assert_int_equal(held, want);
    assert_int_equal(big_code, 503);
    assert_non_null(strstr(r1.body, "INGESTER_MAX_BUFFERED"));
    assert_int_equal(after_big, want); /* its buffer was given back */
    assert_int_equal(small_code, 200);
    h_resp_free(&r1);
    h_resp_free(&r2);

    /* once the held bodies are gone, the same body fits */
    for (int i = 0; i < BM_HELD; i++)
        close(fds[i]);
    assert_int_equal(bm_wait_buffered(0, 10000), 0);
    h_resp r3;
    long again = bm_post(big, big_len, &r3);
    print_message("held connections closed: buffered 0 bytes; the %zu-byte webhook again -> %ld "
                  "%s\n",
                  big_len, again, r3.body);
    assert_int_equal(again, 200);
    assert_string_equal(r3.body, "{\"received\":true,\"ignored\":true}");
    h_resp_free(&r3);
    free(big);
    free(small);
    assert_int_equal(bm_wait_buffered(0, 10000), 0);

    h_resp m;
    assert_int_equal(h_http("GET", "/metrics", NULL, 0, NULL, 0, &m), 0);
    static const char want_503[] =
        "ingester_http_requests_total{route=\"/webhooks/stripe\",code=\"503\"} 1\n";
    if (strstr(m.body, "ingester_body_refusals_total{reason=\"buffer_full\"} 1\n") == NULL ||
        strstr(m.body, want_503) == NULL)
        fail_msg("/metrics does not count the 503:\n%s", m.body);
    h_resp_free(&m);
    assert_int_equal(h_stop_ingester(30000), 0);
}

static int group_setup(void **state)
{
    (void)state;
    static char max_body[64], max_buffered[64];
    snprintf(max_body, sizeof max_body, "INGESTER_MAX_BODY=%zu", BM_MAX_BODY);
    snprintf(max_buffered, sizeof max_buffered, "INGESTER_MAX_BUFFERED=%zu", BM_MAX_BUFFERED);
    static const char *env[] = {
        "LOG_LEVEL=warn", "INGESTER_BODY_TIMEOUT=60", "INGESTER_PER_IP_LIMIT=0", NULL, NULL, NULL};
    env[3] = max_body;
    env[4] = max_buffered;
    return h_start(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announced_size_pins_nothing),
        cmocka_unit_test(test_global_cap_answers_503),
    };
    return h_done(cmocka_run_group_tests(tests, group_setup, NULL));
}
