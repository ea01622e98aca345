/* test_secrets.c: no secret in logs or metrics (issue 9, CONTRACT
 * "Secrets are never logged"). billingctl, billing-autopay-worker and
 * billing-ingester run with STRIPE_SECRET_KEY=sk_test_SECRETMARKER0123 and
 * STRIPE_WEBHOOK_SECRET=whsec_SECRETMARKER0123 at LOG_LEVEL=debug, through the
 * paths most likely to print a key: configuration errors, Stripe refusing
 * the key (401), a charge, bad and good webhook signatures; then their
 * stdout, stderr and /metrics must not contain SECRETMARKER. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/hmac.h>

#include "ledgerline/kafka.h"
#include "support/dbtest.h"
#include "support/kafkatest.h"
#include "support/standin.h"
#include "vtest.h"

#define MARKER "SECRETMARKER"
#define KEY "sk_test_" MARKER "0123"
#define WHSEC "whsec_" MARKER "0123"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void assert_no_marker(const char *what, const char *text)
{
    if (strstr(text, MARKER) != NULL)
        fail_msg("%s contains the secret marker:\n%s", what, text);
}

static char *slurp_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    fclose(f);
    return b;
}

/* ---- a tiny HTTP client ---------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len;
} body;

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    body *b = arg;
    char *g = realloc(b->buf, b->len + sz * n + 1);
    if (g == NULL)
        return 0;
    memcpy(g + b->len, p, sz * n);
    b->len += sz * n;
    g[b->len] = '\0';
    b->buf = g;
    return sz * n;
}

/* GET (post == NULL) or POST; returns the status, 0 when unreachable; the
 * body in *out (caller frees). */
static long http(const char *url, const char *post, const char *sig, char **out)
{
    CURL *c = curl_easy_init();
    body b = {.buf = calloc(1, 1)};
    struct curl_slist *h = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (post != NULL) {
        char hdr[512];
        snprintf(hdr, sizeof hdr, "Stripe-Signature: %s", sig);
        h = curl_slist_append(h, hdr);
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out)
        *out = b.buf;
    else
        free(b.buf);
    return code;
}

/* ---- processes --------------------------------------------------------------- */

static pid_t spawn(const char *bin, const char *log, const char *const *env)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        if (f == NULL || dup2(fileno(stderr), 1) < 0)
            _exit(126);
        for (int i = 0; env[i] != NULL; i++)
            putenv((char *)env[i]);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Waits until url answers (any status); false after ~20 s. */
static bool wait_http(const char *url)
{
    for (int i = 0; i < 200; i++) {
        if (http(url, NULL, NULL, NULL) != 0)
            return true;
        sleep_ms(100);
    }
    return false;
}

/* ---- the tests ------------------------------------------------------------------ */

static standin *stripe;
static char prefix[96], env_prefix[160], env_base[160], metrics_url[96];

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* The stand-in accepts another key: every call with ours gets a 401. */
    stripe = standin_start((const char *[]){"--api-key", "sk_test_SomebodyElse0123456789", NULL});
    snprintf(prefix, sizeof prefix, "secrets%ld.", (long)getpid());
    snprintf(env_prefix, sizeof env_prefix, "KAFKA_TOPIC_PREFIX=%s", prefix);
    snprintf(env_base, sizeof env_base, "STRIPE_API_BASE=%s", standin_url(stripe));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    standin_stop(stripe);
    curl_global_cleanup();
    return 0;
}

static void test_billingctl(void **state)
{
    (void)state;
    vt_firm f;
    vt_seed(&f, true);
    const char *env[] = {"STRIPE_SECRET_KEY=" KEY,
                         "STRIPE_WEBHOOK_SECRET=" WHSEC,
                         "LOG_LEVEL=debug",
                         env_base,
                         env_prefix,
                         NULL};
    /* An invoice paid through Stripe, so refund reaches Stripe (401). */
    char pi[64];
    snprintf(pi, sizeof pi, "pi_secret%ld", (long)getpid());

    int64_t inv = vt_q("WITH i AS (INSERT INTO billing.invoices (firm_id, client_id,"
                       " engagement_id, invoice_number, status, subtotal_cents, total_cents,"
                       " amount_paid_cents, stripe_payment_intent_id) VALUES ($1::bigint,"
                       " $2::bigint, $3::bigint, 'SECRET-1', 'paid', 100, 100, 100, $4)"
                       " RETURNING id, firm_id),"
                       " l AS (INSERT INTO billing.invoice_line_items (invoice_id, firm_id,"
                       " line_type, amount_cents) SELECT id, firm_id, 'package_fee', 100 FROM i)"
                       " SELECT id FROM i",
                       4, (const char *[]){vt_i(f.firm), vt_i(f.client), vt_i(f.engagement), pi});
    char dp[64];
    snprintf(dp, sizeof dp, "dp_secret%ld", (long)getpid());
    int64_t d = vt_q("INSERT INTO billing.payment_disputes (firm_id, invoice_id, stripe_dispute_id)"
                     " VALUES ($1, $2, $3) RETURNING id",
                     3, (const char *[]){vt_i(f.firm), vt_i(inv), dp});
    char path[] = "/tmp/vt-secret-XXXXXX";
    int fd = mkstemp(path);
    const char *doc = "{\"customer_name\":\"x\"}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);

    struct {
        const char *argv[16];
        int want;
    } runs[] = {
        {{"refund", vt_i(inv), "--reason", "requested_by_customer", "--by", "op", NULL}, 1},
        {{"dispute", "evidence", vt_i(d), "--file", path, NULL}, 1},
        /* 1: the paid invoice above was written by hand (no audit trail). */
        {{"verify", "--firm-id", vt_i(f.firm), NULL}, 1},
        {{"autopay", "run", "--date", "2026-02-10", "--firm-id", vt_i(f.firm), "--dry-run", NULL},
         0},
        {{"credit", "add", "--client", vt_i(f.client), "--amount-cents", "5", "--source",
          "promotional", "--description", "p", NULL},
         0},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        int rc = vt_ctl_env(env, runs[i].argv);
        assert_no_marker("billingctl stdout", vt_out);
        assert_no_marker("billingctl stderr", vt_err);
        if (rc != runs[i].want)
            fail_msg("billingctl %s %s: exit %d, want %d: %s", runs[i].argv[0], runs[i].argv[1], rc,
                     runs[i].want, vt_err);
    }
    /* The 401 really happened (the key was sent and refused). */
    assert_true(standin_count(stripe, "POST", "/v1/refunds") >= 1);
    /* A configuration error next to the key does not print the key. */
    const char *bad[] = {"STRIPE_SECRET_KEY=" KEY, "STRIPE_API_BASE=ftp://example.com", NULL};
    int rc =
        vt_ctl_env(bad, (const char *[]){"refund", vt_i(inv), "--reason", "x", "--by", "o", NULL});
    assert_int_equal(rc, 2);
    assert_no_marker("billingctl config error", vt_err);
    const char *badrps[] = {"STRIPE_SECRET_KEY=" KEY, "STRIPE_MAX_RPS=many", NULL};
    rc = vt_ctl_env(badrps,
                    (const char *[]){"refund", vt_i(inv), "--reason", "x", "--by", "o", NULL});
    assert_int_equal(rc, 2);
    assert_no_marker("billingctl config error", vt_err);
    unlink(path);
}

/* A message the worker cannot apply goes to the dlq: the dead letter's
 * headers (error, source topic, consumer, ...) carry no secret either. */
static void dlq_has_no_marker(void)
{
    const char *brokers = getenv("KAFKA_BROKERS");
    char topic[160], dlq[160], err[256];
    snprintf(topic, sizeof topic, "%sticks.autopay", prefix);
    snprintf(dlq, sizeof dlq, "%sdlq", prefix);
    kafka_producer *p = kafka_producer_new(brokers, 10000, err, sizeof err);
    assert_non_null(p);
    static const char bad[] = "{\"type\":\"tick.autopay\",\"not\":\"a tick\"}";
    assert_int_equal(
        kafka_produce_wait(p, topic, "0", 1, bad, strlen(bad), NULL, 0, 10000, err, sizeof err),
        KAFKA_OK);
    kafka_producer_destroy(p, 5000);
    rd_kafka_t *rk = kafkatest_reader(brokers, dlq);
    bool seen = false;
    for (int i = 0; i < 60 && !seen; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL)
            continue;
        rd_kafka_headers_t *hdrs = NULL;
        if (m->err == 0 && rd_kafka_message_headers(m, &hdrs) == 0) {
            char text[8192] = "";
            size_t len = 0;
            const char *name;
            const void *val;
            size_t size;
            for (size_t k = 0;
                 len < sizeof text - 1 && rd_kafka_header_get_all(hdrs, k, &name, &val, &size) == 0;
                 k++)
                len += (size_t)snprintf(text + len, sizeof text - len, "%s=%.*s\n", name,
                                        (int)(val ? size : 0), val ? (const char *)val : "");
            assert_no_marker("dlq headers", text);
            assert_non_null(strstr(text, "error="));
            seen = true;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    assert_true(seen);
}

static void test_autopay_worker(void **state)
{
    (void)state;
    /* A client with autopay and a card, an invoice due: the worker charges
     * it with our key and Stripe (the stand-in) refuses the key. */
    vt_firm f;
    vt_seed(&f, false);
    vt_q("UPDATE billing.clients SET autopay_enabled = true, autopay_payment_method_id ="
         " 'pm_card_visa', stripe_customer_id = 'cus_secret' WHERE id = $1",
         1, (const char *[]){vt_i(f.client)});
    vt_q("UPDATE billing.invoices SET autopay_opt_in = true, autopay_status = 'scheduled',"
         " autopay_payment_method_id = 'pm_card_visa',"
         " autopay_next_charge_at = '2026-02-01T00:00:00Z' WHERE id = $1",
         1, (const char *[]){vt_i(f.invoice)});
    int port = free_port();
    char listen[64], log[128];
    snprintf(listen, sizeof listen, "WORKER_HTTP_LISTEN=127.0.0.1:%d", port);
    snprintf(metrics_url, sizeof metrics_url, "http://127.0.0.1:%d/metrics", port);
    snprintf(log, sizeof log, "/tmp/vt-secrets-autopay-%ld.log", (long)getpid());
    char env_db[600]; /* billing_worker, as deployed */
    snprintf(env_db, sizeof env_db, "DATABASE_URL=%s", dbtest_worker_url());
    const char *env[] = {"STRIPE_SECRET_KEY=" KEY,
                         "STRIPE_WEBHOOK_SECRET=" WHSEC,
                         "LOG_LEVEL=debug",
                         "STRIPE_MAX_RPS=50",
                         env_base,
                         env_prefix,
                         listen,
                         env_db,
                         NULL};
    pid_t w = spawn(LL_AUTOPAY_WORKER_BIN, log, env);
    assert_true(wait_http(metrics_url));
    /* The autopay tick for the firm. */
    const char *ctl_env[] = {env_prefix, NULL};
    assert_int_equal(vt_ctl_env(ctl_env, (const char *[]){"autopay", "run", "--date", "2026-02-10",
                                                          "--firm-id", vt_i(f.firm), NULL}),
                     0);
    /* Wait until the worker has called Stripe with our key. */
    bool called = false;
    for (int i = 0; i < 300 && !called; i++) {
        called = standin_count(stripe, "POST", "/v1/payment_intents") >= 1 &&
                 vt_q("SELECT count(*) FROM billing.payment_attempts WHERE invoice_id = $1"
                      " AND status <> 'processing'",
                      1, (const char *[]){vt_i(f.invoice)}) >= 1;
        if (!called)
            sleep_ms(100);
    }
    dlq_has_no_marker();
    char *metrics = NULL;
    assert_int_equal(http(metrics_url, NULL, NULL, &metrics), 200);
    assert_int_equal(stop(w), 0);
    char *text = slurp_file(log);
    if (!called)
        fail_msg("the worker never called Stripe:\n%s", text);
    assert_no_marker("autopay worker log", text);
    assert_no_marker("autopay worker /metrics", metrics);
    assert_non_null(strstr(metrics, "# TYPE"));
    free(text);
    free(metrics);
    unlink(log);
}

/* t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>"> */
static void sign(const char *secret, const char *payload, char *out, size_t outlen)
{
    long ts = (long)time(NULL);
    size_t n = strlen(payload) + 32;
    char *signed_payload = malloc(n);
    snprintf(signed_payload, n, "%ld.%s", ts, payload);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signed_payload,
         strlen(signed_payload), mac, &maclen);
    free(signed_payload);
    char hex[65];
    for (unsigned i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    snprintf(out, outlen, "t=%ld,v1=%s", ts, hex);
}

static void test_ingester(void **state)
{
    (void)state;
    int port = free_port();
    char listen[64], log[128], url[96], murl[96];
    snprintf(listen, sizeof listen, "INGESTER_LISTEN=127.0.0.1:%d", port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/webhooks/stripe", port);
    snprintf(murl, sizeof murl, "http://127.0.0.1:%d/metrics", port);
    snprintf(log, sizeof log, "/tmp/vt-secrets-ingester-%ld.log", (long)getpid());
    const char *env[] = {"STRIPE_WEBHOOK_SECRET=" WHSEC ",whsec_second" MARKER,
                         "STRIPE_SECRET_KEY=" KEY,
                         "LOG_LEVEL=debug",
                         env_prefix,
                         listen,
                         NULL};
    pid_t ing = spawn(LL_INGESTER_BIN, log, env);
    assert_true(wait_http(murl));
    char evt[256], sig[160];
    snprintf(evt, sizeof evt,
             "{\"id\":\"evt_secret%ld\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\","
             "\"created\":1767225600,\"data\":{\"object\":{\"id\":\"pi_secret\","
             "\"object\":\"payment_intent\"}}}",
             (long)getpid());
    /* Wrong secret, malformed header, then the right one (published). */
    sign("whsec_wrong", evt, sig, sizeof sig);
    assert_int_equal(http(url, evt, sig, NULL), 400);
    assert_int_equal(http(url, evt, "t=1,v1=" MARKER, NULL), 400);
    sign(WHSEC, evt, sig, sizeof sig);
    long code = http(url, evt, sig, NULL);
    assert_true(code == 200 || code == 503);
    char *metrics = NULL;
    assert_int_equal(http(murl, NULL, NULL, &metrics), 200);
    assert_int_equal(stop(ing), 0);
    char *text = slurp_file(log);
    assert_no_marker("ingester log", text);
    assert_no_marker("ingester /metrics", metrics);
    free(text);
    free(metrics);
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_billingctl),
        cmocka_unit_test(test_autopay_worker),
        cmocka_unit_test(test_ingester),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
