/* main.c: billing-scheduler: publishes each day's invoicing, autopay, retry
 * and reminders ticks at their configured UTC times (SCHEDULE_INVOICING,
 * SCHEDULE_AUTOPAY, SCHEDULE_RETRY, SCHEDULE_REMINDERS), split into
 * TICK_SHARDS shard messages.
 *
 * The last business date published per kind lives in billing.scheduler_state
 * and is advanced only after every shard of that day's tick was acknowledged
 * by the broker. On start every missed day (at most 35 days back) is
 * published, oldest first (and within one day in time-of-day order); on the
 * very first start, today's ticks whose time has passed. Then it sleeps until
 * the next tick is due, waking on SIGTERM/SIGINT.
 *
 * Serves /healthz, /readyz and /metrics on WORKER_HTTP_LISTEN when set:
 * billing_ticks_published_total{kind}, billing_tick_failures_total{kind} and
 * billing_scheduler_last_business_date_seconds{kind} (the last published
 * business date as Unix time at 00:00Z: alert when it falls behind).
 *
 * Testing only:
 *   SCHEDULER_NOW=YYYY-MM-DDTHH:MM:SSZ  the clock starts at this instant (and
 *                                        advances with real time from there);
 *   --once                               catch up what is due now, then exit
 *                                        (0 ok, 1 a tick could not be published).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ledgerline/config.h"
#include "ledgerline/db.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "ledgerline/metrics.h"
#include "ledgerline/scheduler_state.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/ticks.h"
#include "ledgerline/topics.h"
#include "ledgerline/worker_http.h"
#include "schedule.h"

typedef struct {
    db_conn *db;
    kafka_producer *producer;
    const char *prefix;
    int shards;
    sched_kind_state kinds[SCHED_KINDS];
    bool fake_clock;
    sched_instant fake_base;
    struct timespec mono_base;
    metrics_registry *metrics;
} scheduler;

static int scheduler_metrics_declare(metrics_registry *m)
{
    int rc = 0;
    rc |= metrics_declare(m, "billing_ticks_published_total", METRICS_COUNTER,
                          "Daily ticks published (every shard acknowledged), by kind.");
    rc |= metrics_declare(m, "billing_tick_failures_total", METRICS_COUNTER,
                          "Ticks that could not be published or recorded (retried), by kind.");
    rc |= metrics_declare(m, "billing_scheduler_last_business_date_seconds", METRICS_GAUGE,
                          "Last published business date, as Unix time at 00:00Z, by kind.");
    return rc == 0 ? 0 : -1;
}

static void scheduler_metrics_date(scheduler *s, tick_kind kind, civil_date d)
{
    metrics_gauge_set(s->metrics, "billing_scheduler_last_business_date_seconds",
                      (int64_t)d.days * 86400, "kind", tick_kind_name(kind), NULL);
}

static sched_instant now_of(const scheduler *s)
{
    if (!s->fake_clock)
        return (sched_instant)time(NULL);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return s->fake_base + (int64_t)(t.tv_sec - s->mono_base.tv_sec);
}

/* Loads the last published date of each kind. */
static int load_state(scheduler *s, char *err, size_t errlen)
{
    PGresult *r = scheduler_state_read(s->db, err, errlen);
    if (r == NULL)
        return -1;
    for (int k = 0; k < SCHED_KINDS; k++)
        s->kinds[k].has_last = false;
    for (int i = 0; i < PQntuples(r); i++) {
        tick_kind kind;
        civil_date d;
        if (!tick_kind_parse(PQgetvalue(r, i, 0), &kind) || !date_parse(PQgetvalue(r, i, 1), &d))
            continue;
        for (int k = 0; k < SCHED_KINDS; k++) {
            if (s->kinds[k].kind == kind) {
                s->kinds[k].has_last = true;
                s->kinds[k].last = d;
                scheduler_metrics_date(s, kind, d);
            }
        }
    }
    PQclear(r);
    return 0;
}

static int save_state(scheduler *s, tick_kind kind, civil_date d, char *err, size_t errlen)
{
    char ds[11];
    date_format(d, ds, sizeof ds);
    db_status st = scheduler_state_save(s->db, tick_kind_name(kind), ds, err, errlen);
    return st == DB_OK ? 0 : -1;
}

/* Publishes every tick due at now, earliest first. Returns 0, or -1 when one
 * could not be published or recorded (nothing later is attempted). *next_due
 * receives when the next tick falls due. */
static int catch_up(scheduler *s, sched_instant *next_due)
{
    char err[1024];
    if (!db_ensure(s->db, 5000) || load_state(s, err, sizeof err) != 0) {
        log_msg(LL_LOG_ERROR, "cannot read scheduler state", "error", err, NULL);
        return -1;
    }
    for (;;) {
        sched_instant now = now_of(s), best_due = 0;
        int best = -1;
        civil_date best_date = {0};
        for (int k = 0; k < SCHED_KINDS; k++) {
            sched_instant due;
            civil_date d = sched_next_date(&s->kinds[k], now, &due);
            if (best < 0 || due < best_due) {
                best = k;
                best_due = due;
                best_date = d;
            }
        }
        if (best_due > now || shutdown_requested()) {
            *next_due = best_due;
            return 0;
        }
        sched_kind_state *k = &s->kinds[best];
        char as_of[32], ds[11], shards[16];
        sched_as_of(best_date, k->minutes, as_of, sizeof as_of);
        date_format(best_date, ds, sizeof ds);
        snprintf(shards, sizeof shards, "%d", s->shards);
        if (ticks_publish(s->producer, s->prefix, k->kind, best_date, as_of, s->shards, 0, err,
                          sizeof err) != 0) {
            metrics_counter_add(s->metrics, "billing_tick_failures_total", 1, "kind",
                                tick_kind_name(k->kind), NULL);
            log_msg(LL_LOG_ERROR, "tick not acknowledged; will retry", "kind",
                    tick_kind_name(k->kind), "business_date", ds, "error", err, NULL);
            return -1;
        }
        if (save_state(s, k->kind, best_date, err, sizeof err) != 0) {
            metrics_counter_add(s->metrics, "billing_tick_failures_total", 1, "kind",
                                tick_kind_name(k->kind), NULL);
            log_msg(LL_LOG_ERROR, "tick published but state not saved; will republish (harmless)",
                    "kind", tick_kind_name(k->kind), "business_date", ds, "error", err, NULL);
            return -1;
        }
        k->has_last = true;
        k->last = best_date;
        metrics_counter_add(s->metrics, "billing_ticks_published_total", 1, "kind",
                            tick_kind_name(k->kind), NULL);
        scheduler_metrics_date(s, k->kind, best_date);
        log_msg(LL_LOG_INFO, "tick published", "kind", tick_kind_name(k->kind), "business_date", ds,
                "as_of", as_of, "shards", shards, NULL);
    }
}

int main(int argc, char **argv)
{
    bool once = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else {
            fprintf(stderr, "usage: billing-scheduler [--once]\n");
            return CONFIG_EXIT_STATUS;
        }
    }
    if (log_init("billing-scheduler") != 0)
        config_die("LOG_LEVEL must be one of debug, info, warn, error");
    scheduler s = {0};
    const char *url = config_require("DATABASE_URL");
    const char *brokers = kafka_brokers_or_exit();
    s.prefix = topic_prefix();
    s.shards = (int)config_int("TICK_SHARDS", 12, 1, 1024);
    s.kinds[0] = (sched_kind_state){.kind = TICK_INVOICING,
                                    .minutes = config_hhmm("SCHEDULE_INVOICING", "02:00")};
    s.kinds[1] = (sched_kind_state){.kind = TICK_AUTOPAY,
                                    .minutes = config_hhmm("SCHEDULE_AUTOPAY", "03:00")};
    s.kinds[2] =
        (sched_kind_state){.kind = TICK_RETRY, .minutes = config_hhmm("SCHEDULE_RETRY", "03:30")};
    s.kinds[3] = (sched_kind_state){.kind = TICK_REMINDERS,
                                    .minutes = config_hhmm("SCHEDULE_REMINDERS", "04:00")};
    const char *fake = config_str("SCHEDULER_NOW", "");
    if (*fake != '\0') {
        if (!sched_parse_instant(fake, &s.fake_base))
            config_die("SCHEDULER_NOW must look like 2026-11-24T02:00:00Z (testing only)");
        s.fake_clock = true;
        clock_gettime(CLOCK_MONOTONIC, &s.mono_base);
        log_msg(LL_LOG_WARN, "SCHEDULER_NOW set: using a test clock", "now", fake, NULL);
    }
    shutdown_install();

    char err[1024];
    s.metrics = metrics_new();
    if (s.metrics == NULL || scheduler_metrics_declare(s.metrics) != 0) {
        log_msg(LL_LOG_ERROR, "cannot create metrics", NULL);
        return 1;
    }
    s.producer = kafka_producer_new(brokers, 30000, err, sizeof err);
    if (s.producer == NULL) {
        metrics_free(s.metrics);
        log_msg(LL_LOG_ERROR, "cannot create the Kafka producer", "error", err, NULL);
        return CONFIG_EXIT_STATUS;
    }
    /* Before the database: a malformed WORKER_HTTP_LISTEN stops the process
     * at once (exit 2), and /readyz says 503 while PostgreSQL is down. */
    worker_readiness readiness = {.database_url = url, .producer = s.producer};
    worker_http *http = NULL;
    if (worker_http_start_from_env(s.metrics, worker_ready_db_kafka, &readiness, &http, err,
                                   sizeof err) != 0) {
        log_msg(LL_LOG_ERROR, "cannot start the metrics listener", "error", err, NULL);
        kafka_producer_destroy(s.producer, 0);
        metrics_free(s.metrics);
        return 1;
    }
    s.db = db_connect(url, 30000, err, sizeof err);
    if (s.db == NULL) {
        log_msg(LL_LOG_ERROR, "cannot connect to the database", "error", err, NULL);
        worker_http_stop(http);
        kafka_producer_destroy(s.producer, 0);
        metrics_free(s.metrics);
        return 1;
    }
    log_msg(LL_LOG_INFO, "scheduler started", "prefix", s.prefix, once ? "mode" : NULL, "once",
            NULL);

    int rc = 0, backoff_ms = 1000;
    while (!shutdown_requested()) {
        sched_instant next_due = 0;
        if (catch_up(&s, &next_due) != 0) {
            if (once) {
                rc = 1;
                break;
            }
            shutdown_sleep_ms(backoff_ms);
            backoff_ms = backoff_ms >= 30000 ? 60000 : backoff_ms * 2;
            continue;
        }
        backoff_ms = 1000;
        if (once)
            break;
        /* Sleep until the next tick is due, in slices so a changed wall
         * clock (or a suspended machine) is noticed within a minute. */
        int64_t wait_s = next_due - now_of(&s);
        if (wait_s > 60)
            wait_s = 60;
        if (wait_s > 0)
            shutdown_sleep_ms((int)wait_s * 1000);
    }
    worker_http_stop(http);
    kafka_producer_destroy(s.producer, 10000);
    db_close(s.db);
    metrics_free(s.metrics);
    char why[512];
    if (kafka_fatal(why, sizeof why)) {
        log_msg(LL_LOG_ERROR, "scheduler stopped after a fatal Kafka error", "error", why, NULL);
        return 1;
    }
    log_msg(LL_LOG_INFO, "scheduler stopped", NULL);
    return rc;
}
