/* test_slow_body.c: the body deadline (INGESTER_BODY_TIMEOUT, CONTRACT.md
 * "Hardening") and the admin listener (INGESTER_ADMIN_LISTEN), over real
 * loopback sockets against a private broker and ingester (harness.h):
 * - one client sending its body one byte a second gets 408 at the deadline
 *   and its connection is closed, while a stream of good signed webhooks is
 *   answered 200 every time;
 * - 200 such clients, then 200 more, cannot hold the ingester: every one
 *   gets 408 and is closed, the second wave finds room under the per-IP
 *   limit the first one filled, and good webhooks get 200 meanwhile;
 * - /metrics is 404 on the public listener and 200 on the admin one,
 *   /healthz and /readyz answer on both, webhooks only on the public one;
 * - the topic holds exactly the good webhooks, each once; exit 0 on SIGTERM.
 * Before the deadline existed, every byte reset libmicrohttpd's idle
 * timeout and the slow connections stayed open for as long as they
 * trickled. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define SB_TOPIC "billing.stripe.payments"
#define SB_BODY_TIMEOUT_S 3 /* INGESTER_BODY_TIMEOUT of this run */
#define SB_SLOW_N 200       /* slow clients per wave */
#define SB_PER_IP 220       /* INGESTER_PER_IP_LIMIT: one wave and some room */
#define SB_BOUND_S 20       /* how long a slow client keeps trickling at most */

static char sb_admin_url[64];

/* Event ids answered 200: the topic must hold exactly these. */
static pthread_mutex_t sb_mu = PTHREAD_MUTEX_INITIALIZER;
static char **sb_ok_ids;
static size_t sb_ok_n, sb_ok_cap;

static void sb_record_ok(const char *id)
{
    pthread_mutex_lock(&sb_mu);
    if (sb_ok_n == sb_ok_cap) {
        sb_ok_cap = sb_ok_cap ? sb_ok_cap * 2 : 256;
        sb_ok_ids = realloc(sb_ok_ids, sb_ok_cap * sizeof *sb_ok_ids);
    }
    sb_ok_ids[sb_ok_n++] = strdup(id);
    pthread_mutex_unlock(&sb_mu);
}

static size_t sb_event(char *buf, size_t cap, const char *id)
{
    return (size_t)snprintf(buf, cap,
                            "{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                            "\"payment_intent.succeeded\",\"data\":{\"object\":"
                            "{\"id\":\"pi_%s\"}}}",
                            id, id);
}

/* Posts one good signed event on a fresh connection; its status. */
static long sb_post_good(const char *id)
{
    char body[512];
    size_t len = sb_event(body, sizeof body, id);
    h_resp r;
    long code = h_post_signed(H_SECRET_A, body, len, &r) == 0 ? r.code : 0;
    h_resp_free(&r);
    if (code == 200)
        sb_record_ok(id);
    return code;
}

/* Good webhooks posted by a helper thread while the slow clients trickle. */
typedef struct {
    const char *tag;
    atomic_bool stop;
    int sent, ok;
    long first_bad;
    pthread_t th;
} sb_good_stream;

static void *sb_good_thread(void *arg)
{
    sb_good_stream *g = arg;
    while (!atomic_load(&g->stop)) {
        char id[64];
        snprintf(id, sizeof id, "evt_%s_%d", g->tag, g->sent);
        long code = sb_post_good(id);
        g->sent++;
        if (code == 200)
            g->ok++;
        else if (g->first_bad == 0)
            g->first_bad = code == 0 ? -1 : code;
        h_sleep_ms(100);
    }
    return NULL;
}

static void sb_good_start(sb_good_stream *g, const char *tag)
{
    memset(g, 0, sizeof *g);
    g->tag = tag;
    atomic_init(&g->stop, false);
    assert_int_equal(pthread_create(&g->th, NULL, sb_good_thread, g), 0);
}

static void sb_good_stop(sb_good_stream *g)
{
    atomic_store(&g->stop, true);
    pthread_join(g->th, NULL);
}

/* A slow client: the request line and headers at once (a signed header,
 * Content-Length of a small event), then the body one byte at a time. */
typedef struct {
    int fd;
    size_t sent;    /* body bytes sent */
    char resp[512]; /* what the server answered */
    size_t resp_len;
    bool closed; /* the server closed the connection */
    uint64_t answered_ms;
} sb_slow;

static int sb_slow_open(sb_slow *s)
{
    memset(s, 0, sizeof *s);
    s->fd = h_raw_connect(h_port());
    if (s->fd < 0)
        return -1;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\n"
                     "Stripe-Signature: t=%" PRId64 ",v1=%064d\r\n"
                     "Content-Length: 4096\r\n\r\n",
                     h_now(), 0);
    return h_raw_send_all(s->fd, head, (size_t)n);
}

/* Reads what has arrived without blocking; notes the answer and the close. */
static void sb_slow_poll(sb_slow *s)
{
    for (;;) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            return;
        char buf[512];
        ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            s->closed = true;
            return;
        }
        if (s->resp_len == 0)
            s->answered_ms = h_mono_ms();
        size_t room = sizeof s->resp - 1 - s->resp_len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(s->resp + s->resp_len, buf, take);
        s->resp_len += take;
        s->resp[s->resp_len] = '\0';
    }
}

/* One more body byte, unless the server answered or closed. */
static void sb_slow_step(sb_slow *s)
{
    if (s->fd < 0 || s->closed)
        return;
    sb_slow_poll(s);
    if (s->closed || s->resp_len > 0)
        return;
    if (h_raw_send_all(s->fd, "{", 1) != 0) {
        s->closed = true;
        return;
    }
    s->sent++;
}

static int sb_slow_status(const sb_slow *s)
{
    int code = 0;
    if (s->resp_len == 0 || sscanf(s->resp, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

/* Trickles a byte a second on every client until all are closed or
 * SB_BOUND_S passed; then waits (bounded) for the closes of those that
 * were answered. Returns how many are closed. */
static int sb_trickle(sb_slow *s, int n, int *max_open)
{
    uint64_t bound = h_mono_ms() + SB_BOUND_S * 1000u;
    *max_open = 0;
    for (;;) {
        int open_n = 0, unanswered = 0;
        for (int i = 0; i < n; i++) {
            sb_slow_step(&s[i]);
            if (s[i].fd >= 0 && !s[i].closed) {
                open_n++;
                if (s[i].resp_len == 0)
                    unanswered++;
            }
        }
        if (open_n > *max_open)
            *max_open = open_n;
        if (open_n == 0 || h_mono_ms() >= bound)
            break;
        /* A byte a second while unanswered; answered ones only wait for
         * their close, polled more often. */
        h_sleep_ms(unanswered > 0 ? 1000 : 100);
    }
    int closed = 0;
    for (int i = 0; i < n; i++)
        closed += s[i].fd >= 0 && s[i].closed;
    return closed;
}

/* 1. One slow client: 408 at the deadline, connection closed; good
 * webhooks answered 200 every time meanwhile. */
static void test_slow_body_gets_408(void **state)
{
    (void)state;
    sb_good_stream g;
    sb_good_start(&g, "one");
    sb_slow s;
    uint64_t t0 = h_mono_ms();
    assert_int_equal(sb_slow_open(&s), 0);
    int max_open = 0;
    int closed = sb_trickle(&s, 1, &max_open);
    sb_good_stop(&g);
    uint64_t answered_after = s.answered_ms ? s.answered_ms - t0 : 0;
    print_message("slow body: %zu bytes sent one a second, answered %d after %" PRIu64
                  " ms (deadline %d s), closed: %s; %d good webhooks meanwhile, %d answered 200\n",
                  s.sent, sb_slow_status(&s), answered_after, SB_BODY_TIMEOUT_S,
                  closed ? "yes" : "no", g.sent, g.ok);
    close(s.fd);
    assert_int_equal(sb_slow_status(&s), 408);
    assert_non_null(strstr(s.resp, "Connection: close"));
    assert_non_null(strstr(s.resp, "INGESTER_BODY_TIMEOUT"));
    assert_true(s.closed);
    /* the deadline, not the idle timeout, ended it: a byte a second never
     * left the connection idle */
    assert_true(s.sent >= SB_BODY_TIMEOUT_S - 1);
    assert_true(g.sent > 0);
    if (g.ok != g.sent)
        fail_msg("%d of %d good webhooks answered 200 (first other answer %ld)", g.ok, g.sent,
                 g.first_bad);
}

/* Runs one wave of SB_SLOW_N slow clients; returns how many got 408 and
 * were closed. */
static int sb_wave(const char *name, int *max_open, int *connected)
{
    sb_slow *s = calloc(SB_SLOW_N, sizeof *s);
    assert_non_null(s);
    *connected = 0;
    for (int i = 0; i < SB_SLOW_N; i++) {
        if (sb_slow_open(&s[i]) != 0) {
            if (s[i].fd >= 0)
                close(s[i].fd);
            s[i].fd = -1;
            continue;
        }
        (*connected)++;
    }
    sb_trickle(s, SB_SLOW_N, max_open);
    int got408 = 0, other = 0, open_left = 0;
    for (int i = 0; i < SB_SLOW_N; i++) {
        if (s[i].fd < 0)
            continue;
        if (sb_slow_status(&s[i]) == 408 && s[i].closed)
            got408++;
        else if (!s[i].closed)
            open_left++;
        else
            other++;
        close(s[i].fd);
    }
    print_message("%s: %d slow clients connected, at most %d open at once; %d answered 408 and "
                  "closed, %d closed otherwise, %d still open after %d s\n",
                  name, *connected, *max_open, got408, other, open_left, SB_BOUND_S);
    free(s);
    return got408;
}

/* 2. Many slow clients cannot hold the ingester. */
static void test_many_slow_bodies(void **state)
{
    (void)state;
    sb_good_stream g;
    sb_good_start(&g, "many");
    int max1 = 0, max2 = 0, conn1 = 0, conn2 = 0;
    int w1 = sb_wave("wave 1", &max1, &conn1);
    /* The per-IP limit has room for one wave: the second connects only if
     * the first one's slots were given back. */
    int w2 = sb_wave("wave 2", &max2, &conn2);
    sb_good_stop(&g);
    print_message("many slow bodies: %d + %d slow clients, 408 to %d + %d; %d good webhooks "
                  "meanwhile, %d answered 200\n",
                  SB_SLOW_N, SB_SLOW_N, w1, w2, g.sent, g.ok);
    assert_int_equal(conn1, SB_SLOW_N);
    assert_int_equal(max1, SB_SLOW_N);
    assert_int_equal(w1, SB_SLOW_N);
    assert_int_equal(conn2, SB_SLOW_N);
    assert_int_equal(w2, SB_SLOW_N);
    assert_true(g.sent > 0);
    if (g.ok != g.sent)
        fail_msg("%d of %d good webhooks answered 200 (first other answer %ld)", g.ok, g.sent,
                 g.first_bad);
}

/* 3. /metrics only on the admin listener; probes on both. */
static void test_admin_listener(void **state)
{
    (void)state;
    h_resp r;
    assert_int_equal(h_http("GET", "/metrics", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 404);
    h_resp_free(&r);
    const char *probes[] = {"/healthz", "/readyz"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(h_http("GET", probes[i], NULL, 0, NULL, 0, &r), 0);
        assert_int_equal(r.code, 200);
        h_resp_free(&r);
        assert_int_equal(h_http_at(sb_admin_url, "GET", probes[i], NULL, 0, NULL, 0, &r), 0);
        assert_int_equal(r.code, 200);
        h_resp_free(&r);
    }
    /* no webhooks on the admin listener */
    char body[512], sig[256];
    size_t len = sb_event(body, sizeof body, "evt_admin_refused");
    h_sign(H_SECRET_A, h_now(), body, len, sig, sizeof sig);
    assert_int_equal(h_http_at(sb_admin_url, "POST", "/webhooks/stripe", body, len, sig, 0, &r), 0);
    assert_int_equal(r.code, 404);
    h_resp_free(&r);
    assert_int_equal(h_http_at(sb_admin_url, "GET", "/metrics", NULL, 0, NULL, 0, &r), 0);
    assert_int_equal(r.code, 200);
    /* 1 + 2 x SB_SLOW_N bodies answered 408 by the sweeper */
    char want[3][160];
    snprintf(want[0], sizeof want[0],
             "ingester_http_requests_total{route=\"/webhooks/stripe\",code=\"408\"} %d\n",
             1 + 2 * SB_SLOW_N);
    snprintf(want[1], sizeof want[1], "ingester_body_refusals_total{reason=\"deadline\"} %d\n",
             1 + 2 * SB_SLOW_N);
    snprintf(want[2], sizeof want[2],
             "ingester_http_requests_total{route=\"/metrics\",code=\"404\"} 1\n");
    for (size_t i = 0; i < 3; i++)
        if (strstr(r.body, want[i]) == NULL)
            fail_msg("admin /metrics lacks '%s':\n%s", want[i], r.body);
    if (strstr(r.body, "ingester_body_buffered_bytes 0\n") == NULL)
        fail_msg("bodies still held:\n%s", r.body);
    h_resp_free(&r);
}

static int sb_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 4. The topic holds exactly the good webhooks, each once; clean stop. */
static void test_only_good_published(void **state)
{
    (void)state;
    h_msg *msgs = NULL;
    size_t n = h_read_topic(SB_TOPIC, sb_ok_n, 60000, 2000, &msgs);
    const char **got = calloc(n + 1, sizeof *got);
    assert_non_null(got);
    for (size_t i = 0; i < n; i++)
        got[i] = msgs[i].event_id;
    qsort(got, n, sizeof *got, sb_cmp_str);
    qsort(sb_ok_ids, sb_ok_n, sizeof *sb_ok_ids, sb_cmp_str);
    print_message("topic %s: %zu messages, %zu events answered 200\n", SB_TOPIC, n, sb_ok_n);
    assert_int_equal(n, sb_ok_n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(got[i], sb_ok_ids[i]) != 0)
            fail_msg("message %zu: %s published, expected %s", i, got[i], sb_ok_ids[i]);
    free(got);
    h_msgs_free(msgs, n);
    assert_int_equal(h_stop_ingester(30000), 0);
}

static int group_setup(void **state)
{
    (void)state;
    static char timeout[64], per_ip[64], admin[64];
    int admin_port = h_free_port();
    if (admin_port <= 0)
        return -1;
    snprintf(sb_admin_url, sizeof sb_admin_url, "http://127.0.0.1:%d", admin_port);
    snprintf(admin, sizeof admin, "INGESTER_ADMIN_LISTEN=127.0.0.1:%d", admin_port);
    snprintf(timeout, sizeof timeout, "INGESTER_BODY_TIMEOUT=%d", SB_BODY_TIMEOUT_S);
    snprintf(per_ip, sizeof per_ip, "INGESTER_PER_IP_LIMIT=%d", SB_PER_IP);
    static const char *env[] = {"LOG_LEVEL=warn", NULL, NULL, NULL, NULL};
    env[1] = timeout;
    env[2] = per_ip;
    env[3] = admin;
    return h_start(env);
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sb_ok_n; i++)
        free(sb_ok_ids[i]);
    free(sb_ok_ids);
    sb_ok_ids = NULL;
    sb_ok_n = sb_ok_cap = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_body_gets_408),
        cmocka_unit_test(test_many_slow_bodies),
        cmocka_unit_test(test_admin_listener),
        cmocka_unit_test(test_only_good_published),
    };
    return h_done(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
