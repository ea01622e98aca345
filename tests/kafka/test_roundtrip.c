/* test_roundtrip.c: the shared Kafka loop against the dev broker and the real
 * database: produce with a delivery report, consume in a group, apply each
 * message in a transaction guarded by its idempotency key, dead-letter what
 * can never succeed, retry what failed transiently, and commit offsets only
 * for what was applied.
 *
 * Every run uses its own topics and group (unique prefix), so runs never see
 * each other's messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "ledgerline/db.h"
#include "ledgerline/envelope.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "support/dbtest.h"
#include "support/kafkatest.h"

static char topic[256], dlq[256], group[256], run_id[128];
static const char *brokers;

typedef struct {
    db_conn *db;
    int handled;
    int applied;
    int duplicates;
    int transient_left; /* return TRANSIENT this many times for key "flaky" */
    bool always_transient_for_stuck;
} roundtrip_ctx;

typedef struct {
    const tick_msg *tick;
} effect_arg;

static db_status write_effect(db_conn *c, void *arg, char *err, size_t errlen)
{
    const effect_arg *a = arg;
    const char *p[] = {run_id, a->tick->idempotency_key};
    return db_command(c,
                      "INSERT INTO billing.audit_events(firm_id, category, action, severity, "
                      "metadata) VALUES (NULL, 'billing', 'test_kafka_roundtrip', 'INFO', "
                      "jsonb_build_object('run', $1::text, 'key', $2::text))",
                      2, p, err, errlen);
}

static kafka_result handler(void *vctx, const kafka_msg *m, char *err, size_t errlen)
{
    roundtrip_ctx *ctx = vctx;
    ctx->handled++;
    if (m->key_len == 5 && memcmp(m->key, "flaky", 5) == 0 && ctx->transient_left > 0) {
        ctx->transient_left--;
        snprintf(err, errlen, "simulated database outage");
        return KAFKA_MSG_TRANSIENT;
    }
    if (m->key_len == 5 && memcmp(m->key, "stuck", 5) == 0 && ctx->always_transient_for_stuck) {
        snprintf(err, errlen, "simulated database outage");
        return KAFKA_MSG_TRANSIENT;
    }
    tick_msg t;
    if (tick_parse(m->value, m->value_len, &t, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    effect_arg a = {&t};
    db_status st = db_run_once(ctx->db, group, t.idempotency_key, write_effect, &a, err, errlen);
    switch (st) {
    case DB_OK: ctx->applied++; return KAFKA_MSG_OK;
    case DB_DUPLICATE: ctx->duplicates++; return KAFKA_MSG_OK;
    case DB_TRANSIENT: return KAFKA_MSG_TRANSIENT;
    case DB_PERMANENT: return KAFKA_MSG_PERMANENT;
    }
    return KAFKA_MSG_PERMANENT;
}

static int setup(void **state)
{
    (void)state;
    brokers = getenv("KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0') {
        fprintf(stderr, "KAFKA_BROKERS is not set: run the tests through tests/run.sh\n");
        return -1;
    }
    snprintf(run_id, sizeof run_id, "%s", dbtest_unique());
    snprintf(topic, sizeof topic, "test.%s.ticks.invoicing", run_id);
    snprintf(dlq, sizeof dlq, "test.%s.dlq", run_id);
    snprintf(group, sizeof group, "test.%s.billing-roundtrip", run_id);
    log_init("test_roundtrip");
    log_set_level(LL_LOG_WARN);
    return 0;
}

static void produce(kafka_producer *p, const char *t, const char *key, const char *value)
{
    char err[512];
    kafka_status st = kafka_produce_wait(p, t, key, strlen(key), value, strlen(value), NULL, 0,
                                         10000, err, sizeof err);
    if (st != KAFKA_OK)
        fail_msg("produce failed: %s", err);
}

static char *tick_json(int shard)
{
    tick_msg t;
    civil_date d;
    assert_true(date_parse("2026-11-24", &d));
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, shard, 12, 0), 0);
    return tick_to_json(&t);
}

static kafka_consumer *consumer_new(roundtrip_ctx *ctx)
{
    const char *topics[] = {topic};
    kafka_consumer_config cfg = {
        .brokers = brokers,
        .group_id = group,
        .topics = topics,
        .ntopics = 1,
        .dlq_topic = dlq,
        .handler = handler,
        .ctx = ctx,
        .max_backoff_ms = 200,
    };
    char err[512];
    kafka_consumer *c = kafka_consumer_new(&cfg, err, sizeof err);
    if (c == NULL)
        fail_msg("consumer: %s", err);
    return c;
}

/* Polls until `want` messages were handled or 60 s passed. */
static void poll_until(kafka_consumer *c, roundtrip_ctx *ctx, int want)
{
    char err[512];
    time_t deadline = time(NULL) + 60;
    while (ctx->handled < want && time(NULL) < deadline)
        assert_true(kafka_consumer_poll_once(c, 200, err, sizeof err) >= 0);
    assert_true(ctx->handled >= want);
}

static int64_t effects(db_conn *db)
{
    const char *p[] = {run_id};
    return dbtest_ok(db->pg,
                     "SELECT count(*) FROM billing.audit_events "
                     "WHERE action = 'test_kafka_roundtrip' AND metadata->>'run' = $1",
                     1, p);
}

/* Reads the dead letter back with a plain consumer and checks its headers. */
static void assert_dead_letter(const char *want_key, const char *want_value)
{
    rd_kafka_t *rk = kafkatest_reader(brokers, dlq);

    bool found = false;
    time_t deadline = time(NULL) + 60;
    while (!found && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err == 0) {
            kafka_msg km = {.raw = m};
            const void *v;
            size_t n;
            assert_int_equal(m->key_len, strlen(want_key));
            assert_memory_equal(m->key, want_key, m->key_len);
            assert_int_equal(m->len, strlen(want_value));
            assert_memory_equal(m->payload, want_value, m->len);
            assert_true(kafka_msg_header(&km, "error", &v, &n) && n > 0);
            assert_true(kafka_msg_header(&km, "source-topic", &v, &n));
            assert_int_equal(n, strlen(topic));
            assert_memory_equal(v, topic, n);
            assert_true(kafka_msg_header(&km, "source-partition", &v, &n) && n > 0);
            assert_true(kafka_msg_header(&km, "source-offset", &v, &n) && n > 0);
            assert_true(kafka_msg_header(&km, "consumer", &v, &n));
            assert_int_equal(n, strlen(group));
            assert_memory_equal(v, group, n);
            found = true;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    assert_true(found);
}

static void test_roundtrip(void **state)
{
    (void)state;
    char err[512];
    kafka_producer *p = kafka_producer_new(brokers, 10000, err, sizeof err);
    assert_non_null(p);
    assert_true(kafka_producer_reachable(p, 5000));

    char *a = tick_json(1), *b = tick_json(2);
    produce(p, topic, "1", a);                   /* applied */
    produce(p, topic, "1", a);                   /* replay of the same tick: skipped by its key */
    produce(p, topic, "bad", "not json at all"); /* dead-lettered */
    produce(p, topic, "flaky", b);               /* fails transiently twice, then applied */
    free(a);
    free(b);

    roundtrip_ctx ctx = {0};
    char derr[512];
    ctx.db = db_connect(getenv("DATABASE_URL"), 5000, derr, sizeof derr);
    assert_non_null(ctx.db);
    ctx.transient_left = 2;

    kafka_consumer *c = consumer_new(&ctx);
    poll_until(c, &ctx, 4 + 2);
    assert_int_equal(ctx.applied, 2);
    assert_int_equal(ctx.duplicates, 1);
    assert_int_equal(effects(ctx.db), 2);
    kafka_consumer_stats s = kafka_consumer_get_stats(c);
    assert_int_equal(s.permanent, 1);
    assert_int_equal(s.transient, 2);
    assert_int_equal(s.ok, 3);
    kafka_consumer_close(c);
    assert_dead_letter("bad", "not json at all");

    /* A message whose transaction never commits is not committed either:
     * after a restart of the group it comes back, and nothing is replayed
     * that was already applied. */
    char *stuck = tick_json(3);
    produce(p, topic, "stuck", stuck);
    roundtrip_ctx ctx2 = {.db = ctx.db, .always_transient_for_stuck = true};
    c = consumer_new(&ctx2);
    poll_until(c, &ctx2, 2);
    assert_int_equal(ctx2.applied, 0);
    kafka_consumer_close(c);

    roundtrip_ctx ctx3 = {.db = ctx.db};
    c = consumer_new(&ctx3);
    poll_until(c, &ctx3, 1);
    /* Give any wrongly uncommitted earlier message time to show up. */
    for (int i = 0; i < 10; i++)
        assert_true(kafka_consumer_poll_once(c, 200, err, sizeof err) >= 0);
    assert_int_equal(ctx3.handled, 1);
    assert_int_equal(ctx3.applied, 1);
    assert_int_equal(effects(ctx.db), 3);
    kafka_consumer_close(c);
    free(stuck);

    db_close(ctx.db);
    kafka_producer_destroy(p, 5000);
}

static void test_produce_to_unreachable_broker_times_out(void **state)
{
    (void)state;
    char err[512];
    /* Nothing listens on port 1: the delivery report cannot arrive in time. */
    kafka_producer *p = kafka_producer_new("127.0.0.1:1", 2000, err, sizeof err);
    assert_non_null(p);
    kafka_status st = kafka_produce_wait(p, topic, "k", 1, "v", 1, NULL, 0, 500, err, sizeof err);
    assert_int_equal(st, KAFKA_TIMEOUT);
    assert_false(kafka_producer_reachable(p, 300));
    kafka_producer_destroy(p, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_produce_to_unreachable_broker_times_out),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
