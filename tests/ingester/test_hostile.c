/* test_hostile.c: the ingester under hostile HTTP (issue 9), over real
 * loopback sockets against a private broker and ingester (harness.h):
 * slow-loris connections, oversized headers, chunked bodies past
 * INGESTER_MAX_BODY and 10,000 invalid signatures on keep-alive connections.
 * In each case valid signed events posted meanwhile or afterwards get 200,
 * and at the end the topic holds exactly the events answered 200, each once,
 * and nothing that was refused. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "harness.h"

#define HS_TOPIC "billing.stripe.payments"
#define HS_CONN_TIMEOUT_S 5 /* INGESTER_CONNECTION_TIMEOUT of this run */
#define HS_MAX_BODY 4096    /* INGESTER_MAX_BODY of this run */
#define HS_SLOW_N 200
#define HS_SIG_THREADS 8
#define HS_SIG_INVALID_PER_THREAD 1250 /* 8 x 1250 = 10,000 */
#define HS_SIG_VALID_EVERY 100

/* Event ids answered 200 so far, in every test: the topic must hold exactly
 * these at the end (test_nothing_else_published). */
static pthread_mutex_t hs_mu = PTHREAD_MUTEX_INITIALIZER;
static char **hs_ok_ids;
static size_t hs_ok_n, hs_ok_cap;

static void hs_record_ok(const char *id)
{
    pthread_mutex_lock(&hs_mu);
    if (hs_ok_n == hs_ok_cap) {
        hs_ok_cap = hs_ok_cap ? hs_ok_cap * 2 : 256;
        hs_ok_ids = realloc(hs_ok_ids, hs_ok_cap * sizeof *hs_ok_ids);
    }
    hs_ok_ids[hs_ok_n++] = strdup(id);
    pthread_mutex_unlock(&hs_mu);
}

static size_t hs_event(char *buf, size_t cap, const char *id, size_t pad)
{
    int n = snprintf(buf, cap,
                     "{\"id\":\"%s\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\","
                     "\"data\":{\"object\":{\"id\":\"pi_%s\",\"pad\":\"",
                     id, id);
    size_t len = (size_t)n;
    for (size_t i = 0; i < pad && len + 8 < cap; i++)
        buf[len++] = 'x';
    len += (size_t)snprintf(buf + len, cap - len, "\"}}}");
    return len;
}

/* Posts one valid signed event; records it when answered 200. */
static long hs_post_valid(const char *id)
{
    char body[512];
    size_t len = hs_event(body, sizeof body, id, 0);
    h_resp r;
    long code = h_post_signed(H_SECRET_A, body, len, &r) == 0 ? r.code : 0;
    h_resp_free(&r);
    if (code == 200)
        hs_record_ok(id);
    return code;
}

static void hs_assert_alive(void)
{
    assert_true(H.ingester_pid > 0);
    assert_int_equal(waitpid(H.ingester_pid, NULL, WNOHANG), 0);
}

/* 1. Slow-loris: HS_SLOW_N connections send a request line and headers one
 * byte a second and never finish them. Valid events on fresh connections
 * get 200 meanwhile, and the server closes every slow connection within
 * its connection timeout (bounded wait: the timeout + 15 s). */
static void test_slow_loris(void **state)
{
    (void)state;
    static const char head[] = "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    int fds[HS_SLOW_N];
    size_t pos[HS_SLOW_N];
    for (int i = 0; i < HS_SLOW_N; i++) {
        fds[i] = h_raw_connect(h_port());
        assert_true(fds[i] >= 0);
        pos[i] = 0;
    }
    int open_n = HS_SLOW_N, posted = 0, posted_all_open = 0;
    uint64_t t0 = h_mono_ms(), bound = t0 + (HS_CONN_TIMEOUT_S + 15) * 1000u;
    while (open_n > 0 && h_mono_ms() < bound) {
        for (int i = 0; i < HS_SLOW_N; i++) {
            if (fds[i] < 0)
                continue;
            char b = pos[i] < sizeof head - 1 ? head[pos[i]] : 'a';
            if (h_raw_closed(fds[i]) || h_raw_send_all(fds[i], &b, 1) != 0) {
                close(fds[i]);
                fds[i] = -1;
                open_n--;
                continue;
            }
            pos[i]++;
        }
        /* Two valid events on fresh connections while the slow ones hang. */
        int was_open = open_n;
        for (int k = 0; k < 2 && open_n > 0; k++) {
            char id[64];
            snprintf(id, sizeof id, "evt_slow_%d", posted++);
            long code = hs_post_valid(id);
            if (code != 200)
                fail_msg("%s answered %ld while %d slow connections were open", id, code, open_n);
            if (was_open == HS_SLOW_N)
                posted_all_open++;
        }
        h_sleep_ms(1000);
    }
    uint64_t dt = h_mono_ms() - t0;
    int still_open = open_n;
    size_t max_sent = 0;
    for (int i = 0; i < HS_SLOW_N; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        if (pos[i] > max_sent)
            max_sent = pos[i];
    }
    print_message("slow-loris: %d connections, %d still open after %" PRIu64
                  " ms (timeout %d s, up to %zu bytes sent on each, 1 a second); %d valid "
                  "events answered 200 meanwhile, %d of them while all %d were open\n",
                  HS_SLOW_N, still_open, dt, HS_CONN_TIMEOUT_S, max_sent, posted, posted_all_open,
                  HS_SLOW_N);
    assert_int_equal(still_open, 0);
    assert_true(posted_all_open >= 2);
    hs_assert_alive();
}

/* Sends a raw request; returns its status (0: closed without an answer). */
static int hs_raw_request(const char *req, size_t len)
{
    int fd = h_raw_connect(h_port());
    assert_true(fd >= 0);
    int sent = h_raw_send_all(fd, req, len);
    int code = h_raw_read_status(fd);
    close(fd);
    if (sent != 0 && code < 0)
        code = 0; /* closed while we were still sending */
    return code;
}

/* 2. Oversized headers: a 64 KiB header line, 10,000 small headers, and a
 * Stripe-Signature of 8 KiB (within libmicrohttpd's memory limit, past the
 * signature parser's 4096): answered 4xx or closed, never a crash, and
 * valid requests are still served. */
static void test_oversized_headers(void **state)
{
    (void)state;
    char body[512];
    size_t blen = hs_event(body, sizeof body, "evt_hdr_refused", 0);
    size_t cap = 256 * 1024;
    char *req = malloc(cap);
    assert_non_null(req);

    /* a) one 64 KiB header line, signed body */
    char sig[256];
    h_sign(H_SECRET_A, h_now(), body, blen, sig, sizeof sig);
    size_t n = (size_t)snprintf(req, cap,
                                "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Stripe-Signature: %s\r\nX-Big: ",
                                sig);
    memset(req + n, 'a', 64 * 1024);
    n += 64 * 1024;
    n += (size_t)snprintf(req + n, cap - n, "\r\nContent-Length: %zu\r\n\r\n%s", blen, body);
    int code_big = hs_raw_request(req, n);

    /* b) 10,000 small headers */
    n = (size_t)snprintf(req, cap,
                         "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Stripe-Signature: %s\r\n",
                         sig);
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(req + n, cap - n, "X-H%05d: v\r\n", i);
    n += (size_t)snprintf(req + n, cap - n, "Content-Length: %zu\r\n\r\n%s", blen, body);
    assert_true(n < cap - 1);
    int code_many = hs_raw_request(req, n);

    /* c) an 8 KiB Stripe-Signature: a valid one followed by junk items */
    n = (size_t)snprintf(req, cap,
                         "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Stripe-Signature: %s",
                         sig);
    for (int i = 0; i < 8 * 1024 / 8; i++)
        n += (size_t)snprintf(req + n, cap - n, ",v0=abcd");
    n += (size_t)snprintf(req + n, cap - n, "\r\nContent-Length: %zu\r\n\r\n%s", blen, body);
    int code_sig = hs_raw_request(req, n);
    free(req);

    print_message("oversized headers: 64 KiB line -> %d, 10,000 headers -> %d, 8 KiB "
                  "Stripe-Signature -> %d (0 = closed without an answer)\n",
                  code_big, code_many, code_sig);
    assert_true(code_big == 0 || (code_big >= 400 && code_big < 500));
    assert_true(code_many == 0 || (code_many >= 400 && code_many < 500));
    assert_int_equal(code_sig, 400);
    hs_assert_alive();
    assert_int_equal(hs_post_valid("evt_hdr_after_1"), 200);
    assert_int_equal(hs_post_valid("evt_hdr_after_2"), 200);
}

/* One signed chunked POST of an event padded to about total bytes. */
static long hs_post_chunked(const char *id, size_t total, size_t *len_out)
{
    char *body = malloc(total + 512);
    assert_non_null(body);
    size_t base = hs_event(body, total + 512, id, 0);
    size_t len = hs_event(body, total + 512, id, total > base ? total - base : 0);
    char sig[256];
    h_sign(H_SECRET_A, h_now(), body, len, sig, sizeof sig);
    h_resp r;
    long code = h_http("POST", "/webhooks/stripe", body, len, sig, 1, &r) == 0 ? r.code : 0;
    h_resp_free(&r);
    free(body);
    if (code == 200)
        hs_record_ok(id);
    *len_out = len;
    return code;
}

/* 3. Chunked bodies (no Content-Length) past INGESTER_MAX_BODY, validly
 * signed: 413 while the excess is small, the connection closed once it
 * passes 4x the limit; none published (checked at the end). A chunked body
 * of exactly the limit is accepted. */
static void test_chunked_past_limit(void **state)
{
    (void)state;
    size_t len_at = 0, len_over = 0, len_far = 0, len_huge = 0;
    long at = hs_post_chunked("evt_chunk_at_limit", HS_MAX_BODY, &len_at);
    long over = hs_post_chunked("evt_chunk_refused_1", HS_MAX_BODY + 1, &len_over);
    long far = hs_post_chunked("evt_chunk_refused_2", 3 * HS_MAX_BODY, &len_far);
    long huge = hs_post_chunked("evt_chunk_refused_3", 1024 * 1024, &len_huge);
    print_message("chunked: %zu bytes -> %ld, %zu -> %ld, %zu -> %ld, %zu -> %ld "
                  "(limit %d; 0 = closed)\n",
                  len_at, at, len_over, over, len_far, far, len_huge, huge, HS_MAX_BODY);
    assert_int_equal(len_at, HS_MAX_BODY);
    assert_int_equal(at, 200);
    assert_int_equal(over, 413);
    assert_int_equal(far, 413);
    assert_true(huge == 0 || huge == 413);
    hs_assert_alive();
    assert_int_equal(hs_post_valid("evt_chunk_after_1"), 200);
}

typedef struct {
    int t;
    int n_invalid, n_400, n_other;
    int n_valid, n_valid_ok;
    long new_conns;
    char other[128];
} hs_sig_worker;

/* One keep-alive connection (one curl handle) posting HS_SIG_INVALID_PER_THREAD
 * badly signed events, with a valid one after every HS_SIG_VALID_EVERY. */
static void *hs_sig_thread(void *arg)
{
    hs_sig_worker *w = arg;
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/webhooks/stripe", H.url);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    for (int i = 0; i < HS_SIG_INVALID_PER_THREAD + HS_SIG_INVALID_PER_THREAD / HS_SIG_VALID_EVERY;
         i++) {
        int valid = (i + 1) % (HS_SIG_VALID_EVERY + 1) == 0;
        char id[64], body[512], sig[256], hdr[300];
        int64_t now = h_now();
        snprintf(id, sizeof id, valid ? "evt_many_%d_%d" : "evt_bad_%d_%d", w->t, i);
        size_t len = hs_event(body, sizeof body, id, 0);
        struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
        if (valid) {
            h_sign(H_SECRET_B, now, body, len, sig, sizeof sig);
        } else {
            switch (i % 6) {
            case 0: /* an unknown secret */
                h_sign("whsec_not_ours", now, body, len, sig, sizeof sig);
                break;
            case 1: /* signed, then the body changed */
                h_sign(H_SECRET_A, now, body, len, sig, sizeof sig);
                body[len - 5] = 'y';
                break;
            case 2: /* too old */ h_sign(H_SECRET_A, now - 3600, body, len, sig, sizeof sig); break;
            case 3: /* in the future */
                h_sign(H_SECRET_A, now + 3600, body, len, sig, sizeof sig);
                break;
            case 4: /* malformed */ snprintf(sig, sizeof sig, "t=%" PRId64 ",,v1=zz", now); break;
            default: /* missing */ sig[0] = '\0'; break;
            }
        }
        if (sig[0] != '\0') {
            snprintf(hdr, sizeof hdr, "Stripe-Signature: %s", sig);
            hl = curl_slist_append(hl, hdr);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        long code = 0, conns = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
        w->new_conns += conns;
        curl_slist_free_all(hl);
        if (valid) {
            w->n_valid++;
            if (code == 200) {
                w->n_valid_ok++;
                hs_record_ok(id);
            } else if (w->other[0] == '\0') {
                snprintf(w->other, sizeof w->other, "valid %s answered %ld", id, code);
            }
        } else {
            w->n_invalid++;
            if (code == 400) {
                w->n_400++;
            } else {
                w->n_other++;
                if (w->other[0] == '\0')
                    snprintf(w->other, sizeof w->other, "invalid %s (kind %d) answered %ld", id,
                             i % 6, code);
            }
        }
    }
    curl_easy_cleanup(c);
    if (devnull != NULL)
        fclose(devnull);
    return NULL;
}

/* 4. 10,000 invalid signatures on HS_SIG_THREADS concurrent keep-alive
 * connections, valid events interleaved: every invalid one 400, every
 * valid one 200 (published exactly once: test_nothing_else_published). */
static void test_invalid_signatures(void **state)
{
    (void)state;
    hs_sig_worker w[HS_SIG_THREADS];
    pthread_t th[HS_SIG_THREADS];
    memset(w, 0, sizeof w);
    uint64_t t0 = h_mono_ms();
    for (int t = 0; t < HS_SIG_THREADS; t++) {
        w[t].t = t;
        assert_int_equal(pthread_create(&th[t], NULL, hs_sig_thread, &w[t]), 0);
    }
    for (int t = 0; t < HS_SIG_THREADS; t++)
        pthread_join(th[t], NULL);
    uint64_t dt = h_mono_ms() - t0;
    int inv = 0, inv400 = 0, val = 0, valok = 0;
    long conns = 0;
    for (int t = 0; t < HS_SIG_THREADS; t++) {
        inv += w[t].n_invalid;
        inv400 += w[t].n_400;
        val += w[t].n_valid;
        valok += w[t].n_valid_ok;
        conns += w[t].new_conns;
        if (w[t].other[0] != '\0')
            print_error("thread %d: %s\n", t, w[t].other);
    }
    print_message("invalid signatures: %d sent, %d answered 400; %d valid interleaved, %d "
                  "answered 200; %d threads, %ld connections opened, %" PRIu64 " ms\n",
                  inv, inv400, val, valok, HS_SIG_THREADS, conns, dt);
    assert_int_equal(inv, HS_SIG_THREADS * HS_SIG_INVALID_PER_THREAD);
    assert_int_equal(inv400, inv);
    assert_int_equal(valok, val);
    assert_true(val > 0);
    /* keep-alive: the connections were reused, not one per request */
    assert_true(conns <= HS_SIG_THREADS * 4);
    hs_assert_alive();
}

static int hs_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The topic holds exactly the events answered 200, each once: nothing
 * refused in any case above was published. Then a clean stop (exit 0, which
 * under ASan also means no leak). */
static void test_nothing_else_published(void **state)
{
    (void)state;
    h_msg *msgs = NULL;
    size_t n = h_read_topic(HS_TOPIC, hs_ok_n, 60000, 2000, &msgs);
    const char **got = calloc(n + 1, sizeof *got);
    assert_non_null(got);
    size_t n_many = 0;
    for (size_t i = 0; i < n; i++) {
        got[i] = msgs[i].event_id;
        if (strncmp(got[i], "evt_bad_", 8) == 0 || strstr(got[i], "refused") != NULL)
            fail_msg("refused event %s was published", got[i]);
        if (strncmp(got[i], "evt_many_", 9) == 0)
            n_many++;
    }
    qsort(got, n, sizeof *got, hs_cmp_str);
    qsort(hs_ok_ids, hs_ok_n, sizeof *hs_ok_ids, hs_cmp_str);
    print_message("topic %s: %zu messages, %zu events answered 200 (%zu interleaved with the "
                  "invalid signatures)\n",
                  HS_TOPIC, n, hs_ok_n, n_many);
    assert_int_equal(n, hs_ok_n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(got[i], hs_ok_ids[i]) != 0)
            fail_msg("message %zu: %s published, expected %s", i, got[i], hs_ok_ids[i]);
        if (i > 0 && strcmp(got[i], got[i - 1]) == 0)
            fail_msg("%s published twice", got[i]);
    }
    free(got);
    h_msgs_free(msgs, n);
    assert_int_equal(h_stop_ingester(30000), 0);
}

static int group_setup(void **state)
{
    (void)state;
    static char timeout[64], max_body[64];
    snprintf(timeout, sizeof timeout, "INGESTER_CONNECTION_TIMEOUT=%d", HS_CONN_TIMEOUT_S);
    snprintf(max_body, sizeof max_body, "INGESTER_MAX_BODY=%d", HS_MAX_BODY);
    /* error: 10,000 refusals would otherwise be 10,000 warning lines */
    static const char *const env[] = {"LOG_LEVEL=error", timeout, max_body, NULL};
    return h_start(env);
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < hs_ok_n; i++)
        free(hs_ok_ids[i]);
    free(hs_ok_ids);
    hs_ok_ids = NULL;
    hs_ok_n = hs_ok_cap = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_loris),
        cmocka_unit_test(test_oversized_headers),
        cmocka_unit_test(test_chunked_past_limit),
        cmocka_unit_test(test_invalid_signatures),
        cmocka_unit_test(test_nothing_else_published),
    };
    return h_done(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
