/* test_scheduler.c: billing-scheduler as a real process (--once, test clock
 * SCHEDULER_NOW) against the real database and the dev broker. Each test
 * publishes under its own topic prefix (the broker creates topics on
 * produce) and reads the ticks back with a fresh consumer group:
 * - very first start: only today's ticks whose time has passed;
 * - catch-up after a three-day gap: exactly the missing days, oldest first,
 *   TICK_SHARDS shards each with the contract's idempotency keys and as_of,
 *   and scheduler_state advanced; a second run publishes nothing;
 * - at most 35 days are caught up;
 * - the long-running loop publishes a tick when it falls due and exits 0 on
 *   SIGTERM.
 * billing.scheduler_state has one row per kind, so every test resets it
 * (the test runs serially: RESOURCE_LOCK in CMakeLists.txt). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/envelope.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "support/dbtest.h"

#define SHARDS 3
#define MAX_MSGS 512

static PGconn *db;
static const char *brokers;

typedef struct {
    tick_msg msgs[MAX_MSGS];
    char keys[MAX_MSGS][16];
    char topics[MAX_MSGS][64];
    int n;
} collected;

static kafka_result collect(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    collected *c = ctx;
    if (c->n == MAX_MSGS)
        return KAFKA_MSG_OK;
    if (tick_parse(m->value, m->value_len, &c->msgs[c->n], err, errlen) != 0)
        fail_msg("scheduler published a malformed tick: %s", err);
    snprintf(c->keys[c->n], sizeof c->keys[0], "%.*s", (int)m->key_len, (const char *)m->key);
    snprintf(c->topics[c->n], sizeof c->topics[0], "%s", m->topic);
    c->n++;
    return KAFKA_MSG_OK;
}

/* Reads every message of <prefix>ticks.* with a fresh group: until `expect`
 * arrived (or 30 s), then 2 s more to catch extras. */
static void read_ticks(const char *prefix, int expect, collected *out)
{
    char t1[128], t2[128], t3[128], dlq[128], group[160];
    snprintf(t1, sizeof t1, "%sticks.invoicing", prefix);
    snprintf(t2, sizeof t2, "%sticks.autopay", prefix);
    snprintf(t3, sizeof t3, "%sticks.retry", prefix);
    snprintf(dlq, sizeof dlq, "%sdlq", prefix);
    snprintf(group, sizeof group, "%sreader-%s", prefix, dbtest_unique());
    const char *topics[] = {t1, t2, t3};
    memset(out, 0, sizeof *out);
    kafka_consumer_config cfg = {.brokers = brokers,
                                 .group_id = group,
                                 .topics = topics,
                                 .ntopics = 3,
                                 .dlq_topic = dlq,
                                 .handler = collect,
                                 .ctx = out,
                                 .max_backoff_ms = 200};
    char err[512];
    kafka_consumer *c = kafka_consumer_new(&cfg, err, sizeof err);
    if (c == NULL)
        fail_msg("consumer: %s", err);
    time_t start = time(NULL), quiet_until = 0;
    for (;;) {
        kafka_consumer_poll_once(c, 200, err, sizeof err);
        time_t now = time(NULL);
        if (out->n >= expect && quiet_until == 0)
            quiet_until = now + 2;
        if (quiet_until != 0 && now >= quiet_until)
            break;
        if (now - start > 30)
            break;
    }
    kafka_consumer_close(c);
}

static int run_scheduler(const char *prefix, const char *now, const char *shards)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("DATABASE_URL", dbtest_worker_url(), 1); /* billing_worker, as deployed */
        setenv("KAFKA_TOPIC_PREFIX", prefix, 1);
        setenv("SCHEDULER_NOW", now, 1);
        setenv("TICK_SHARDS", shards, 1);
        setenv("LOG_LEVEL", "warn", 1);
        unsetenv("SCHEDULE_INVOICING");
        unsetenv("SCHEDULE_AUTOPAY");
        unsetenv("SCHEDULE_RETRY");
        execl(LL_SCHEDULER_BIN, LL_SCHEDULER_BIN, "--once", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void reset_state(const char *inv, const char *ap, const char *rt)
{
    dbtest_ok(db, "DELETE FROM billing.scheduler_state", 0, NULL);
    const char *p[] = {inv, ap, rt};
    dbtest_ok(db,
              "INSERT INTO billing.scheduler_state(kind, last_business_date) "
              "SELECT k, d::date FROM (VALUES ('invoicing', $1), ('autopay', $2), "
              "('retry', $3)) v(k, d) WHERE d IS NOT NULL",
              3, p);
}

static const char *state_of(const char *kind)
{
    const char *p[] = {kind};
    return dbtest_text(db,
                       "SELECT last_business_date::text FROM billing.scheduler_state "
                       "WHERE kind = $1",
                       1, p);
}

static void unique_prefix(char *buf, size_t n)
{
    snprintf(buf, n, "sched%ld.%s.", (long)getpid(), dbtest_unique());
    for (char *p = buf; *p; p++)
        if (*p != '.' && *p != '-' && *p != '_' && !(*p >= '0' && *p <= '9') &&
            !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
            *p = '-';
}

/* The ticks of one kind in the order they were read (per shard = per
 * partition, which is the only order Kafka keeps). */
static int count_kind(const collected *c, tick_kind k, const char *date)
{
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        char ds[11];
        date_format(c->msgs[i].business_date, ds, sizeof ds);
        if (c->msgs[i].kind == k && (date == NULL || strcmp(ds, date) == 0))
            n++;
    }
    return n;
}

static void check_tick(const tick_msg *t, const char *key, const char *hhmm)
{
    char ds[11], want[ENVELOPE_KEY_MAX], as_of[40], shard[16];
    date_format(t->business_date, ds, sizeof ds);
    snprintf(want, sizeof want, "tick:%s:%s:all:%d/%d", tick_kind_name(t->kind), ds, t->shard,
             SHARDS);
    assert_string_equal(t->idempotency_key, want);
    snprintf(as_of, sizeof as_of, "%sT%s:00Z", ds, hhmm);
    assert_string_equal(t->as_of, as_of);
    assert_int_equal(t->shards, SHARDS);
    assert_int_equal(t->firm_id, 0);
    snprintf(shard, sizeof shard, "%d", t->shard);
    assert_string_equal(key, shard);
}

static const char *hhmm_of(tick_kind k)
{
    return k == TICK_INVOICING ? "02:00" : k == TICK_AUTOPAY ? "03:00" : "03:30";
}

static void test_first_start_publishes_only_passed_ticks(void **state)
{
    (void)state;
    char prefix[128];
    unique_prefix(prefix, sizeof prefix);
    reset_state(NULL, NULL, NULL);
    assert_int_equal(run_scheduler(prefix, "2026-11-24T02:30:00Z", "3"), 0);
    assert_string_equal(state_of("invoicing"), "2026-11-24");
    assert_null(state_of("autopay"));
    assert_null(state_of("retry"));
    collected *c = calloc(1, sizeof *c);
    read_ticks(prefix, SHARDS, c);
    assert_int_equal(c->n, SHARDS);
    assert_int_equal(count_kind(c, TICK_INVOICING, "2026-11-24"), SHARDS);
    for (int i = 0; i < c->n; i++)
        check_tick(&c->msgs[i], c->keys[i], "02:00");

    /* Later the same day: autopay's time has passed, invoicing is done. */
    assert_int_equal(run_scheduler(prefix, "2026-11-24T03:10:00Z", "3"), 0);
    assert_string_equal(state_of("autopay"), "2026-11-24");
    assert_null(state_of("retry"));
    read_ticks(prefix, 2 * SHARDS, c);
    assert_int_equal(c->n, 2 * SHARDS);
    assert_int_equal(count_kind(c, TICK_AUTOPAY, "2026-11-24"), SHARDS);
    free(c);
}

static void test_catch_up_three_day_gap(void **state)
{
    (void)state;
    char prefix[128];
    unique_prefix(prefix, sizeof prefix);
    /* Last run published 2026-11-20; the scheduler was down until 11-24
     * 02:30: 21, 22, 23 are missed for every kind, and 24's invoicing tick
     * (02:00) is due too; 24's autopay (03:00) and retry (03:30) are not. */
    reset_state("2026-11-20", "2026-11-20", "2026-11-20");
    assert_int_equal(run_scheduler(prefix, "2026-11-24T02:30:00Z", "3"), 0);
    assert_string_equal(state_of("invoicing"), "2026-11-24");
    assert_string_equal(state_of("autopay"), "2026-11-23");
    assert_string_equal(state_of("retry"), "2026-11-23");

    int expect = (4 + 3 + 3) * SHARDS;
    collected *c = calloc(1, sizeof *c);
    read_ticks(prefix, expect, c);
    assert_int_equal(c->n, expect);
    const char *days[] = {"2026-11-21", "2026-11-22", "2026-11-23"};
    for (int d = 0; d < 3; d++) {
        assert_int_equal(count_kind(c, TICK_INVOICING, days[d]), SHARDS);
        assert_int_equal(count_kind(c, TICK_AUTOPAY, days[d]), SHARDS);
        assert_int_equal(count_kind(c, TICK_RETRY, days[d]), SHARDS);
    }
    assert_int_equal(count_kind(c, TICK_INVOICING, "2026-11-24"), SHARDS);
    assert_int_equal(count_kind(c, TICK_AUTOPAY, "2026-11-24"), 0);
    assert_int_equal(count_kind(c, TICK_INVOICING, "2026-11-20"), 0);
    /* Every key is the contract's; within each (kind, shard) the dates come
     * oldest first, and each (kind, date, shard) exactly once. */
    for (int i = 0; i < c->n; i++) {
        check_tick(&c->msgs[i], c->keys[i], hhmm_of(c->msgs[i].kind));
        for (int j = i + 1; j < c->n; j++) {
            if (c->msgs[j].kind != c->msgs[i].kind || c->msgs[j].shard != c->msgs[i].shard)
                continue;
            assert_true(c->msgs[j].business_date.days > c->msgs[i].business_date.days);
        }
    }

    /* Run again at the same instant: nothing new. */
    assert_int_equal(run_scheduler(prefix, "2026-11-24T02:30:00Z", "3"), 0);
    read_ticks(prefix, expect, c);
    assert_int_equal(c->n, expect);
    assert_string_equal(state_of("invoicing"), "2026-11-24");
    assert_string_equal(state_of("autopay"), "2026-11-23");
    free(c);
}

static void test_catch_up_at_most_35_days(void **state)
{
    (void)state;
    char prefix[128];
    unique_prefix(prefix, sizeof prefix);
    /* Down since September; before 02:00 on 11-24, so 11-24 is not due. */
    reset_state("2026-09-01", "2026-11-23", "2026-11-23");
    assert_int_equal(run_scheduler(prefix, "2026-11-24T01:00:00Z", "1"), 0);
    assert_string_equal(state_of("invoicing"), "2026-11-23");
    collected *c = calloc(1, sizeof *c);
    read_ticks(prefix, 35, c);
    assert_int_equal(c->n, 35);
    assert_int_equal(count_kind(c, TICK_INVOICING, "2026-10-20"), 1);
    assert_int_equal(count_kind(c, TICK_INVOICING, "2026-10-19"), 0);
    assert_int_equal(count_kind(c, TICK_INVOICING, "2026-11-23"), 1);
    free(c);
}

/* Long-running mode: started just before autopay's 03:00, it sleeps, then
 * publishes 11-24's autopay tick when due, and stops with status 0 on
 * SIGTERM. */
static void test_loop_publishes_when_due_and_stops_on_sigterm(void **state)
{
    (void)state;
    char prefix[128];
    unique_prefix(prefix, sizeof prefix);
    reset_state("2026-11-24", "2026-11-23", "2026-11-24");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("DATABASE_URL", dbtest_worker_url(), 1); /* billing_worker, as deployed */
        setenv("KAFKA_TOPIC_PREFIX", prefix, 1);
        setenv("SCHEDULER_NOW", "2026-11-24T02:59:57Z", 1);
        setenv("TICK_SHARDS", "3", 1);
        setenv("LOG_LEVEL", "warn", 1);
        execl(LL_SCHEDULER_BIN, LL_SCHEDULER_BIN, (char *)NULL);
        _exit(127);
    }
    sleep(1);
    assert_string_equal(state_of("autopay"), "2026-11-23");
    const char *s = NULL;
    for (int i = 0; i < 200; i++) {
        s = state_of("autopay");
        if (s != NULL && strcmp(s, "2026-11-24") == 0)
            break;
        usleep(100000);
    }
    assert_string_equal(s, "2026-11-24");
    kill(pid, SIGTERM);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    collected *c = calloc(1, sizeof *c);
    read_ticks(prefix, SHARDS, c);
    assert_int_equal(c->n, SHARDS);
    assert_int_equal(count_kind(c, TICK_AUTOPAY, "2026-11-24"), SHARDS);
    for (int i = 0; i < c->n; i++)
        check_tick(&c->msgs[i], c->keys[i], "03:00");
    free(c);
}

static void test_bad_config_exits_2(void **state)
{
    (void)state;
    char prefix[128];
    unique_prefix(prefix, sizeof prefix);
    assert_int_equal(run_scheduler(prefix, "2026-11-24 02:30", "3"), 2);
    assert_int_equal(run_scheduler(prefix, "2026-11-24T02:30:00Z", "0"), 2);
}

int main(void)
{
    brokers = getenv("KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0') {
        fprintf(stderr, "KAFKA_BROKERS is not set: run the tests through tests/run.sh\n");
        return 1;
    }
    log_init("test_scheduler");
    log_set_level(LL_LOG_ERROR);
    db = dbtest_connect();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_start_publishes_only_passed_ticks),
        cmocka_unit_test(test_catch_up_three_day_gap),
        cmocka_unit_test(test_catch_up_at_most_35_days),
        cmocka_unit_test(test_loop_publishes_when_due_and_stops_on_sigterm),
        cmocka_unit_test(test_bad_config_exits_2),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(db);
    return rc;
}
