/* test_worker_http.c: the workers' metrics endpoint (common/worker_http.c),
 * the gauge type of the metrics registry, and the consumer loop's metrics
 * (common/kafka.c) against the dev broker.
 *
 * HTTP answers are read with libcurl from a listener on a free loopback
 * port; the consumer test uses its own topics and group (unique names), so
 * it never sees other tests' messages. Needs KAFKA_BROKERS for the consumer
 * test only (skipped without it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "ledgerline/metrics.h"
#include "ledgerline/worker_http.h"
#include "support/httptest.h"

/* One request; returns the status code, *out gets the body (caller frees). */
static long http(const char *method, int port, const char *path, char **out)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    httptest_body b = {calloc(1, 1), 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httptest_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "x=1");
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (out != NULL)
        *out = b.data;
    else
        free(b.data);
    return code;
}

static bool ready_flag;
static bool ready_cb(void *ctx)
{
    return *(bool *)ctx;
}

static void test_gauge(void **state)
{
    (void)state;
    metrics_registry *m = metrics_new();
    assert_int_equal(metrics_declare(m, "queue_depth", METRICS_GAUGE, "Depth."), 0);
    assert_int_equal(metrics_gauge_set(m, "queue_depth", 7, "q", "a", NULL), 0);
    assert_int_equal(metrics_gauge_set(m, "queue_depth", -5, "q", "a", NULL), 0);
    assert_int_equal(metrics_gauge_set(m, "queue_depth", 3, "q", "b", NULL), 0);
    assert_int_equal(metrics_gauge_get(m, "queue_depth", "q", "a", NULL), -5);
    assert_int_equal(metrics_gauge_get(m, "queue_depth", "q", "b", NULL), 3);
    /* A gauge is not a counter, and the other way round. */
    assert_int_equal(metrics_counter_add(m, "queue_depth", 1, NULL), -1);
    assert_int_equal(metrics_declare(m, "c_total", METRICS_COUNTER, "C."), 0);
    assert_int_equal(metrics_gauge_set(m, "c_total", 1, NULL), -1);
    assert_int_equal(metrics_gauge_set(m, "undeclared", 1, NULL), -1);
    char *text = metrics_render(m, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE queue_depth gauge\n"));
    assert_non_null(strstr(text, "queue_depth{q=\"a\"} -5\n"));
    assert_non_null(strstr(text, "queue_depth{q=\"b\"} 3\n"));
    free(text);
    metrics_free(m);
}

static void test_endpoints(void **state)
{
    (void)state;
    metrics_registry *m = metrics_new();
    assert_int_equal(
        metrics_declare(m, "billing_invoices_generated_total", METRICS_COUNTER, "Invoices."), 0);
    metrics_counter_add(m, "billing_invoices_generated_total", 4, NULL);
    char err[256];
    ready_flag = true;
    worker_http *h = worker_http_start("127.0.0.1", 0, m, ready_cb, &ready_flag, err, sizeof err);
    assert_non_null(h);
    int port = worker_http_port(h);
    assert_true(port > 0);

    char *b = NULL;
    assert_int_equal(http("GET", port, "/healthz", &b), 200);
    assert_string_equal(b, "{\"status\":\"ok\"}");
    free(b);
    assert_int_equal(http("GET", port, "/readyz", NULL), 200);
    ready_flag = false;
    assert_int_equal(http("GET", port, "/readyz", &b), 503);
    assert_string_equal(b, "{\"status\":\"not ready\"}");
    free(b);
    assert_int_equal(http("GET", port, "/metrics", &b), 200);
    assert_non_null(strstr(b, "# TYPE billing_invoices_generated_total counter\n"));
    assert_non_null(strstr(b, "billing_invoices_generated_total 4\n"));
    free(b);
    assert_int_equal(http("HEAD", port, "/healthz", NULL), 200);
    assert_int_equal(http("GET", port, "/nope", NULL), 404);
    assert_int_equal(http("POST", port, "/metrics", NULL), 405);
    assert_int_equal(http("POST", port, "/healthz", NULL), 405);

    /* The port is taken now: a second listener on it fails with a message
     * naming the variable. */
    worker_http *h2 = worker_http_start("127.0.0.1", port, m, NULL, NULL, err, sizeof err);
    assert_null(h2);
    assert_non_null(strstr(err, "WORKER_HTTP_LISTEN"));
    worker_http_stop(h);
    metrics_free(m);
}

static void test_from_env(void **state)
{
    (void)state;
    char err[256];
    worker_http *h = (worker_http *)&err; /* must be reset to NULL */
    unsetenv("WORKER_HTTP_LISTEN");
    assert_int_equal(worker_http_start_from_env(NULL, NULL, NULL, &h, err, sizeof err), 0);
    assert_null(h);
    setenv("WORKER_HTTP_LISTEN", "", 1);
    assert_int_equal(worker_http_start_from_env(NULL, NULL, NULL, &h, err, sizeof err), 0);
    assert_null(h);

    /* Malformed: exit status 2 with one line naming the variable. */
    const char *bad[] = {"nonsense", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], 2);
            close(fds[0]);
            setenv("WORKER_HTTP_LISTEN", bad[i], 1);
            worker_http *c = NULL;
            worker_http_start_from_env(NULL, NULL, NULL, &c, err, sizeof err);
            _exit(0);
        }
        close(fds[1]);
        char out[512] = "";
        size_t n = 0;
        ssize_t r;
        while ((r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
            n += (size_t)r;
        out[n] = '\0';
        close(fds[0]);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 2);
        assert_non_null(strstr(out, "WORKER_HTTP_LISTEN"));
    }
    unsetenv("WORKER_HTTP_LISTEN");
}

/* ------------------------------------------------------ consumer metrics */

static kafka_result bad_is_permanent(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    int *handled = ctx;
    (*handled)++;
    if (m->value_len == 3 && memcmp(m->value, "bad", 3) == 0) {
        snprintf(err, errlen, "test: never applicable");
        return KAFKA_MSG_PERMANENT;
    }
    return KAFKA_MSG_OK;
}

static void test_consumer_metrics(void **state)
{
    (void)state;
    const char *brokers = getenv("KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0') {
        print_message("KAFKA_BROKERS unset: consumer metrics not tested\n");
        skip();
    }
    char topic[128], dlq[128], group[128], err[512];
    snprintf(topic, sizeof topic, "ops-test-%d-%ld.in", (int)getpid(), (long)time(NULL));
    snprintf(dlq, sizeof dlq, "ops-test-%d-%ld.dlq", (int)getpid(), (long)time(NULL));
    snprintf(group, sizeof group, "ops-test-%d-%ld", (int)getpid(), (long)time(NULL));

    /* Everything to one partition (same key), so its lag is known. */
    kafka_producer *p = kafka_producer_new(brokers, 30000, err, sizeof err);
    assert_non_null(p);
    const char *values[] = {"good1", "bad", "good2"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(kafka_produce_wait(p, topic, "k", 1, values[i], strlen(values[i]), NULL, 0,
                                            30000, err, sizeof err),
                         KAFKA_OK);
    kafka_producer_destroy(p, 5000);

    metrics_registry *m = metrics_new();
    int handled = 0;
    const char *topics[] = {topic};
    kafka_consumer_config cc = {.brokers = brokers,
                                .group_id = group,
                                .topics = topics,
                                .ntopics = 1,
                                .dlq_topic = dlq,
                                .handler = bad_is_permanent,
                                .ctx = &handled,
                                .metrics = m};
    kafka_consumer *c = kafka_consumer_new(&cc, err, sizeof err);
    assert_non_null(c);
    /* Bounded: the dev broker's first group assignment takes a few seconds. */
    for (int i = 0; i < 240 && handled < 3; i++)
        assert_true(kafka_consumer_poll_once(c, 250, err, sizeof err) >= 0);
    assert_int_equal(handled, 3);

    assert_int_equal(
        metrics_counter_get(m, "billing_messages_total", "topic", topic, "outcome", "ok", NULL), 2);
    assert_int_equal(metrics_counter_get(m, "billing_messages_total", "topic", topic, "outcome",
                                         "permanent", NULL),
                     1);
    assert_int_equal(metrics_counter_get(m, "billing_dlq_messages_total", "topic", topic, NULL), 1);

    /* The lag of the partition the three landed on is refreshed by the loop
     * (at most every KAFKA_LAG_REFRESH_MS): poll until its series appears. */
    char want[300];
    snprintf(want, sizeof want, "billing_consumer_lag{topic=\"%s\",partition=\"", topic);
    /* Everything was consumed: the lag comes to 0 once refreshed (on a
     * real cluster the first refresh can see the end offsets before the
     * positions moved). */
    char *text = NULL;
    const char *at = NULL;
    for (int i = 0; i < 120; i++) {
        free(text);
        text = metrics_render(m, NULL);
        at = strstr(text, want);
        const char *end = at ? strchr(at, '\n') : NULL;
        if (end != NULL && end - at > 2 && memcmp(end - 2, " 0", 2) == 0)
            break;
        kafka_consumer_poll_once(c, 250, err, sizeof err);
    }
    assert_non_null(at);
    const char *line_end = strchr(at, '\n');
    assert_non_null(line_end);
    assert_true(line_end - at > 2);
    assert_memory_equal(line_end - 2, " 0", 2);
    char count[300];
    snprintf(count, sizeof count, "billing_message_processing_seconds_count{topic=\"%s\"} 3\n",
             topic);
    assert_non_null(strstr(text, count));
    free(text);
    kafka_consumer_close(c);
    metrics_free(m);
}

int main(void)
{
    log_init("test_worker_http");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gauge),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_from_env),
        cmocka_unit_test(test_consumer_metrics),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
