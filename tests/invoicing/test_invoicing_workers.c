/* test_invoicing_workers.c: two invoicing worker processes on one tick, and
 * the outbox relay run concurrently. (The rules themselves, renewal
 * included, go through a real worker in test_invoicing.c.)
 *
 * - two billing-invoicing-worker processes (LL_INVOICING_WORKER_BIN) in one
 *   consumer group, on a topic prefix of their own, consume one firm-scoped
 *   tick published twice: every engagement gets exactly one invoice, every
 *   outbox row is published, and both exit 0 on SIGTERM;
 * - two outbox relays running at once (and once more afterwards) put each
 *   invoice.issued event on <prefix>invoices once per invoice id. Its
 *   invoices are made in-process (invoicing_run): a worker process would
 *   relay them itself.
 *
 * Each test has its own firm and its own topic prefix, so it never sees
 * another test's ticks or events. Every wait is bounded by a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/db.h"
#include "ledgerline/envelope.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/log.h"
#include "ledgerline/outbox.h"
#include "ledgerline/ticks.h"
#include "support/dbtest.h"
#include "support/invworker.h"
#include "support/kafkatest.h"

static PGconn *pg;
static const char *url, *brokers;

#define I64(v) db_i64((v), (char[24]){0}, 24)

static int setup(void **state)
{
    (void)state;
    url = getenv("DATABASE_URL");
    brokers = getenv("KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0') {
        fprintf(stderr, "KAFKA_BROKERS is not set: run the tests through tests/run.sh\n");
        return -1;
    }
    log_init("test_invoicing_workers");
    log_set_level(LL_LOG_WARN);
    pg = dbtest_connect();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(pg);
    return 0;
}

static int64_t q1(const char *sql, int64_t id)
{
    const char *p[] = {I64(id)};
    return dbtest_ok(pg, sql, 1, p);
}

/* A package engagement of firm/client (monthly unless schedule says). */
static int64_t eng_new(int64_t firm, int64_t client, const char *mode, int64_t fee,
                       const char *start, const char *end)
{
    const char *p[] = {I64(firm), I64(client), mode, I64(fee), start, end};
    return dbtest_ok(pg,
                     "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode,"
                     " package_fee_cents, hourly_rate_cents, start_date, end_date)"
                     " VALUES ($1, $2, 'Retainer', $3, $4, 20000, $5, $6) RETURNING id",
                     6, p);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- two worker processes on one tick ----------------------------------- */

static void test_two_workers_one_tick(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = dbtest_client(pg, firm);
    enum { N = 7 };
    int64_t eng[N];
    for (int i = 0; i < N; i++)
        eng[i] =
            eng_new(firm, client, i == 0 ? "mixed" : "package", 100000 + i, "2026-01-01", NULL);
    /* the mixed one also bills two approved entries from last month */
    const char *tp[] = {I64(firm), I64(eng[0])};
    dbtest_ok(pg,
              "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, hours,"
              " approved) VALUES ($1, $2, 'ann', '2026-10-05', 2, true),"
              " ($1, $2, 'bob', '2026-10-06', 1.5, true)",
              2, tp);

    char prefix[64], log1[128], log2[128], err[1024], group[160];
    snprintf(prefix, sizeof prefix, "inv2w%ld.", (long)getpid());
    snprintf(log1, sizeof log1, "/tmp/inv2w%ld-1.log", (long)getpid());
    snprintf(log2, sizeof log2, "/tmp/inv2w%ld-2.log", (long)getpid());
    snprintf(group, sizeof group, "%sbilling-invoicing-worker", prefix);
    unlink(log1);
    unlink(log2);

    /* The tick goes out first (twice), so the topic exists when the workers
     * subscribe; the dev broker creates topics on produce. */
    kafka_producer *p = kafka_producer_new(brokers, 10000, err, sizeof err);
    assert_non_null(p);
    civil_date d;
    assert_true(date_parse("2026-11-24", &d));
    for (int i = 0; i < 2; i++)
        if (ticks_publish(p, prefix, TICK_INVOICING, d, NULL, 12, firm, err, sizeof err) != 0)
            fail_msg("ticks_publish: %s", err);
    kafka_producer_destroy(p, 5000);

    pid_t w1 = invworker_spawn(LL_INVOICING_WORKER_BIN, prefix, log1);
    pid_t w2 = invworker_spawn(LL_INVOICING_WORKER_BIN, prefix, log2);

    /* Done = every engagement invoiced, the 12 shard keys recorded, and no
     * unpublished outbox row of the firm. */
    const char *fp[] = {I64(firm)};
    const char *gp[] = {group};
    time_t deadline = time(NULL) + 120;
    bool done = false;
    while (!done && time(NULL) < deadline) {
        done =
            dbtest_ok(pg, "SELECT count(*) FROM billing.invoices WHERE firm_id = $1", 1, fp) == N &&
            dbtest_ok(pg,
                      "SELECT count(*) FROM billing.outbox WHERE firm_id = $1"
                      " AND published_at IS NULL",
                      1, fp) == 0 &&
            dbtest_ok(pg, "SELECT count(*) FROM billing.processed_messages WHERE consumer = $1", 1,
                      gp) == 12;
        if (!done)
            sleep_ms(200);
    }
    /* Let the duplicate copies of the shards drain too (they create nothing). */
    sleep_ms(2000);
    int rc1 = invworker_stop_pid(w1), rc2 = invworker_stop_pid(w2);
    if (!done || rc1 != 0 || rc2 != 0) {
        invworker_dump_log(log1);
        invworker_dump_log(log2);
    }
    assert_true(done);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);

    for (int i = 0; i < N; i++)
        assert_int_equal(
            q1("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", eng[i]), 1);
    assert_int_equal(
        dbtest_ok(pg, "SELECT count(*) FROM billing.invoices WHERE firm_id = $1", 1, fp), N);
    /* one audit and one published outbox row per invoice */
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.outbox o JOIN billing.invoices i"
                               " ON o.msg_key = i.id::text WHERE i.firm_id = $1"
                               " AND o.topic = 'invoices' AND o.published_at IS NOT NULL",
                               1, fp),
                     N);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.audit_events a JOIN billing.invoices i"
                               " ON (a.metadata->>'invoice_id')::bigint = i.id"
                               " WHERE i.firm_id = $1 AND a.firm_id = $1"
                               " AND a.action = 'package_invoice_auto_generated'",
                               1, fp),
                     N);
    /* the mixed invoice billed both entries once */
    assert_int_equal(q1("SELECT count(*) FROM billing.time_entries WHERE engagement_id = $1"
                        " AND invoice_id IS NOT NULL",
                        eng[0]),
                     2);
    unlink(log1);
    unlink(log2);
}

/* ---- the outbox relay, concurrently --------------------------------------- */

/* The relay test's invoices, made in-process (see the header). */
static int64_t run_firm(db_conn *db, int64_t firm, const char *date)
{
    invoicing_params p = {.shard = 0, .shards = 1, .firm_id = firm};
    assert_true(date_parse(date, &p.business_date));
    invoicing_stats s;
    char err[1024];
    if (invoicing_run(db, &p, &s, err, sizeof err) != DB_OK)
        fail_msg("invoicing_run: %s", err);
    return s.invoices;
}

typedef struct {
    kafka_producer *producer;
    const char *prefix;
    int64_t published;
    db_status st;
    char err[512];
} relay_job;

static void *relay_thread(void *arg)
{
    relay_job *j = arg;
    db_conn *db = db_connect(url, 0, j->err, sizeof j->err);
    if (db == NULL) {
        j->st = DB_TRANSIENT;
        return NULL;
    }
    /* small batches so the two relays interleave */
    j->st = outbox_relay_all(db, j->producer, j->prefix, 3, &j->published, j->err, sizeof j->err);
    db_close(db);
    return NULL;
}

static void test_relay_concurrent_once_per_invoice(void **state)
{
    (void)state;
    char err[1024];
    db_conn *db = db_connect(url, 0, err, sizeof err);
    assert_non_null(db);
    int64_t firm = dbtest_firm(pg);
    int64_t client = dbtest_client(pg, firm);
    enum { N = 20 };
    for (int i = 0; i < N; i++)
        eng_new(firm, client, "package", 50000 + i, "2026-01-01", NULL);
    assert_int_equal(run_firm(db, firm, "2026-11-24"), N);
    db_close(db);

    char prefix[64], topic[128];
    snprintf(prefix, sizeof prefix, "invrel%ld.", (long)getpid());
    snprintf(topic, sizeof topic, "%sinvoices", prefix);
    kafka_producer *p = kafka_producer_new(brokers, 10000, err, sizeof err);
    assert_non_null(p);
    relay_job a = {.producer = p, .prefix = prefix}, b = a;
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, relay_thread, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, relay_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.st != DB_OK || b.st != DB_OK)
        fail_msg("relay: %s / %s", a.err, b.err);
    assert_true(a.published + b.published >= N); /* the outbox may hold others' rows too */
    /* a further pass finds nothing of ours left */
    relay_job c = {.producer = p, .prefix = prefix};
    relay_thread(&c);
    assert_int_equal(c.st, DB_OK);
    kafka_producer_destroy(p, 5000);

    const char *fp[] = {I64(firm)};
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.outbox WHERE firm_id = $1"
                               " AND published_at IS NULL",
                               1, fp),
                     0);

    /* Read the whole topic: every invoice of the firm exactly once. */
    int64_t ids[N];
    int seen[N] = {0};
    PGresult *r = PQexecParams(pg, "SELECT id FROM billing.invoices WHERE firm_id = $1 ORDER BY id",
                               1, NULL, fp, NULL, NULL, 0);
    assert_int_equal(PQntuples(r), N);
    for (int i = 0; i < N; i++)
        ids[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);

    rd_kafka_t *rk = kafkatest_reader(brokers, topic);
    int found = 0, idle = 0;
    time_t deadline = time(NULL) + 60;
    while (time(NULL) < deadline && !(found >= N && idle >= 10)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            idle++;
            continue;
        }
        idle = 0;
        invoice_event e;
        if (m->err == 0 && invoice_event_parse(m->payload, m->len, &e, err, sizeof err) == 0 &&
            e.firm_id == firm) {
            assert_int_equal(e.type, INVOICE_EVENT_ISSUED);
            char key[24];
            snprintf(key, sizeof key, "%lld", (long long)e.invoice_id);
            assert_int_equal(m->key_len, strlen(key));
            assert_memory_equal(m->key, key, m->key_len);
            bool known = false;
            for (int i = 0; i < N; i++)
                if (ids[i] == e.invoice_id) {
                    seen[i]++;
                    known = true;
                }
            assert_true(known);
            found++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    for (int i = 0; i < N; i++)
        if (seen[i] != 1)
            fail_msg("invoice %lld reached %s %d times", (long long)ids[i], topic, seen[i]);
    assert_int_equal(found, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_concurrent_once_per_invoice),
        cmocka_unit_test(test_two_workers_one_tick),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
