/* test_invoicing_kafka.c: end to end through the dev broker: an invoicing
 * tick published with ticks_publish to billing.ticks.invoicing (default
 * prefix) for a fresh firm, consumed by the worker's handler in-process in
 * its own consumer group, creates the invoice once even when the tick is
 * sent twice, and its invoice.issued event reaches billing.invoices once.
 *
 * The shared topic may hold other tests' ticks (other firms, or another
 * database sharing the broker), so the test's handler applies only ticks
 * scoped to its own firm and acknowledges the rest untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <jansson.h>

#include "handler.h"
#include "ledgerline/envelope.h"
#include "ledgerline/log.h"
#include "ledgerline/ticks.h"
#include "ledgerline/topics.h"
#include "support/dbtest.h"
#include "support/kafkatest.h"

static int64_t my_firm;
static int mine_handled;

static kafka_result filtered_handler(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    tick_msg t;
    if (tick_parse(m->value, m->value_len, &t, err, errlen) != 0 || t.firm_id != my_firm)
        return KAFKA_MSG_OK; /* not this test's tick */
    mine_handled++;
    return invoicing_worker_handle(ctx, m, err, errlen);
}

/* Counts invoice.issued events for (invoice, firm, client) on billing.invoices. */
static int count_events(const char *brokers, int64_t inv, int64_t firm, int64_t client)
{
    char err[512];
    rd_kafka_t *rk = kafkatest_reader(brokers, "billing.invoices");
    int found = 0, idle = 0;
    time_t deadline = time(NULL) + 60;
    /* read until the topic is drained: 10 empty polls after the first hit */
    while (time(NULL) < deadline && !(found > 0 && idle >= 10)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            idle++;
            continue;
        }
        idle = 0;
        invoice_event e;
        if (m->err == 0 && invoice_event_parse(m->payload, m->len, &e, err, sizeof err) == 0 &&
            e.invoice_id == inv && e.firm_id == firm && e.client_id == client &&
            e.type == INVOICE_EVENT_ISSUED) {
            char key[24];
            snprintf(key, sizeof key, "%lld", (long long)inv);
            assert_int_equal(m->key_len, strlen(key));
            assert_memory_equal(m->key, key, m->key_len);
            /* One writer for every lifecycle event (billing.invoice_event_payload,
             * sql/019): the batch's invoice.issued has the contract's fields
             * that billing.invoice_event writes, amount_paid_cents included. */
            json_t *root = json_loadb(m->payload, m->len, 0, NULL);
            assert_non_null(root);
            json_t *paid = json_object_get(root, "amount_paid_cents");
            assert_true(json_is_integer(paid));
            assert_int_equal(json_integer_value(paid), 0);
            json_decref(root);
            found++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

static void test_tick_through_kafka(void **state)
{
    (void)state;
    const char *brokers = getenv("KAFKA_BROKERS");
    const char *url = getenv("DATABASE_URL");
    if (brokers == NULL || *brokers == '\0')
        fail_msg("KAFKA_BROKERS is not set: run the tests through tests/run.sh");
    log_init("test_invoicing_kafka");
    log_set_level(LL_LOG_WARN);
    PGconn *pg = dbtest_connect();
    my_firm = dbtest_firm(pg);
    int64_t client = dbtest_client(pg, my_firm);
    char f[24], c[24];
    const char *p[] = {db_i64(my_firm, f, sizeof f), db_i64(client, c, sizeof c)};
    int64_t eng =
        dbtest_ok(pg,
                  "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode,"
                  " package_fee_cents, start_date) VALUES ($1, $2, 'Kafka retainer',"
                  " 'package', 250000, '2026-01-01') RETURNING id",
                  2, p);

    char err[1024], group[160];
    snprintf(group, sizeof group, "test.%s.billing-invoicing-worker", dbtest_unique());
    invoicing_worker w = {.prefix = TOPIC_DEFAULT_PREFIX, .group = group};
    w.db = db_connect(url, 0, err, sizeof err);
    assert_non_null(w.db);
    w.producer = kafka_producer_new(brokers, 10000, err, sizeof err);
    assert_non_null(w.producer);

    civil_date d;
    assert_true(date_parse("2026-11-24", &d));
    /* the same tick twice */
    assert_int_equal(ticks_publish(w.producer, TOPIC_DEFAULT_PREFIX, TICK_INVOICING, d, NULL, 12,
                                   my_firm, err, sizeof err),
                     0);
    assert_int_equal(ticks_publish(w.producer, TOPIC_DEFAULT_PREFIX, TICK_INVOICING, d, NULL, 12,
                                   my_firm, err, sizeof err),
                     0);

    const char *topics[] = {"billing.ticks.invoicing"};
    kafka_consumer_config cc = {.brokers = brokers,
                                .group_id = group,
                                .topics = topics,
                                .ntopics = 1,
                                .dlq_topic = "billing.dlq",
                                .handler = filtered_handler,
                                .ctx = &w,
                                .max_backoff_ms = 200};
    kafka_consumer *kc = kafka_consumer_new(&cc, err, sizeof err);
    if (kc == NULL)
        fail_msg("consumer: %s", err);
    time_t deadline = time(NULL) + 90;
    while (mine_handled < 24 && time(NULL) < deadline)
        assert_true(kafka_consumer_poll_once(kc, 200, err, sizeof err) >= 0);
    kafka_consumer_close(kc);
    assert_int_equal(mine_handled, 24);
    assert_int_equal(w.ticks_applied, 12);
    assert_int_equal(w.ticks_duplicate, 12);
    assert_int_equal(w.invoices_created, 1);

    const char *ep[] = {db_i64(eng, c, sizeof c)};
    assert_int_equal(
        dbtest_ok(pg, "SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", 1, ep), 1);
    int64_t inv = dbtest_ok(pg, "SELECT id FROM billing.invoices WHERE engagement_id = $1", 1, ep);
    const char *ip[] = {db_i64(inv, c, sizeof c)};
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.outbox WHERE msg_key = $1 AND"
                               " topic = 'invoices' AND published_at IS NOT NULL",
                               1, ip),
                     1);
    assert_int_equal(count_events(brokers, inv, my_firm, client), 1);

    kafka_producer_destroy(w.producer, 5000);
    db_close(w.db);
    PQfinish(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tick_through_kafka)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
