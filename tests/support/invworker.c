/* invworker.c: see invworker.h. */
#include "invworker.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/envelope.h"
#include "ledgerline/kafka.h"
#include "ledgerline/ticks.h"
#include "ledgerline/topics.h"
#include "support/dbtest.h"

#define INVWORKER_WAIT_S 90

struct invworker {
    pid_t pid;
    PGconn *pg;
    kafka_producer *producer;
    int shards;
    char prefix[64];
    char group[160];
    char topic[TOPIC_NAME_MAX + 1];
    char logpath[128];
    unsigned sentinel_seq;
};

static void invworker_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

pid_t invworker_spawn(const char *bin, const char *prefix, const char *logpath)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(logpath, "a", stderr);
        if (f == NULL || dup2(fileno(stderr), 1) < 0)
            _exit(126);
        setenv("DATABASE_URL", dbtest_worker_url(), 1); /* billing_worker, as deployed */
        setenv("KAFKA_TOPIC_PREFIX", prefix, 1);
        setenv("LOG_LEVEL", "info", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int invworker_stop_pid(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 600; i++) { /* 60 s */
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        invworker_sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

void invworker_dump_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", path);
    char line[2048];
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* Fails the test (after printing the worker's log) unless the worker is
 * still running. */
static void invworker_assert_alive(invworker *w)
{
    int status;
    if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
        invworker_dump_log(w->logpath);
        fail_msg("billing-invoicing-worker exited early (status %d)", status);
    }
}

/* Produces one shard message of the invoicing tick (firm, date). */
static void invworker_produce(invworker *w, int64_t firm, civil_date d, int shard, int shards)
{
    tick_msg t;
    char err[512];
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, shard, shards, firm), 0);
    char *json = tick_to_json(&t);
    assert_non_null(json);
    char key[16];
    snprintf(key, sizeof key, "%d", shard); /* as ticks_publish: key = shard */
    kafka_status st = kafka_produce_wait(w->producer, w->topic, key, strlen(key), json,
                                         strlen(json), NULL, 0, 30000, err, sizeof err);
    free(json);
    if (st != KAFKA_OK)
        fail_msg("publishing a tick to %s: %s", w->topic, err);
}

/* Publishes a sentinel tick (shards messages, keys 0..shards-1) and waits
 * until the worker has recorded all its keys: everything published before it
 * on those partitions has been handled by then. */
static void invworker_sentinel(invworker *w, civil_date d, int shards)
{
    /* A firm id no test creates (ids come from an identity from 1 up). */
    int64_t firm =
        INT64_C(8000000000000000000) + (int64_t)getpid() * 1000000 + (int64_t)++w->sentinel_seq;
    if (ticks_publish(w->producer, w->prefix, TICK_INVOICING, d, NULL, shards, firm, (char[512]){0},
                      512) != 0)
        fail_msg("publishing a sentinel tick to %s failed", w->topic);
    char pattern[ENVELOPE_KEY_MAX];
    tick_msg t;
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, 0, shards, firm), 0);
    /* "tick:invoicing:<date>:firm-<id>:0/<n>" -> "tick:invoicing:<date>:firm-<id>:%" */
    snprintf(pattern, sizeof pattern, "%s", t.idempotency_key);
    char *colon = strrchr(pattern, ':');
    assert_non_null(colon);
    snprintf(colon + 1, sizeof pattern - (size_t)(colon + 1 - pattern), "%%");
    char n[16];
    snprintf(n, sizeof n, "%d", shards);
    const char *p[] = {w->group, pattern};
    time_t deadline = time(NULL) + INVWORKER_WAIT_S;
    for (;;) {
        PGresult *r = PQexecParams(w->pg,
                                   "SELECT count(*) FROM billing.processed_messages"
                                   " WHERE consumer = $1 AND idempotency_key LIKE $2",
                                   2, NULL, p, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        int got = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (got >= shards)
            return;
        invworker_assert_alive(w);
        if (time(NULL) > deadline) {
            invworker_dump_log(w->logpath);
            fail_msg("the worker did not handle the tick within %d s (%d of %s sentinel shards)",
                     INVWORKER_WAIT_S, got, n);
        }
        invworker_sleep_ms(20);
    }
}

invworker *invworker_start(const char *bin, const char *tag, PGconn *pg, int shards)
{
    invworker *w = calloc(1, sizeof *w);
    assert_non_null(w);
    const char *brokers = getenv("KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0')
        fail_msg("KAFKA_BROKERS is not set: run the tests through tests/run.sh");
    w->pg = pg;
    w->shards = shards;
    snprintf(w->prefix, sizeof w->prefix, "%s%ld.", tag, (long)getpid());
    snprintf(w->group, sizeof w->group, "%sbilling-invoicing-worker", w->prefix);
    assert_int_equal(topic_name(w->prefix, TOPIC_TICKS_INVOICING, w->topic, sizeof w->topic), 0);
    snprintf(w->logpath, sizeof w->logpath, "/tmp/%s%ld.log", tag, (long)getpid());
    unlink(w->logpath);
    char err[512];
    w->producer = kafka_producer_new(brokers, 10000, err, sizeof err);
    if (w->producer == NULL)
        fail_msg("kafka producer: %s", err);
    civil_date d;
    assert_true(date_parse("2000-01-01", &d));
    /* The first sentinel creates the topic (the dev broker creates topics on
     * produce) before the worker subscribes, then shows it is consuming. */
    if (ticks_publish(w->producer, w->prefix, TICK_INVOICING, d, NULL, shards,
                      INT64_C(8000000000000000000) + (int64_t)getpid() * 1000000, err,
                      sizeof err) != 0)
        fail_msg("creating %s: %s", w->topic, err);
    w->pid = invworker_spawn(bin, w->prefix, w->logpath);
    invworker_sentinel(w, d, shards);
    return w;
}

const char *invworker_prefix(const invworker *w)
{
    return w->prefix;
}

const char *invworker_group(const invworker *w)
{
    return w->group;
}

void invworker_tick(invworker *w, int64_t firm, const char *date)
{
    assert_true(firm > 0);
    civil_date d;
    if (!date_parse(date, &d))
        fail_msg("bad date %s", date);
    char err[512];
    if (ticks_publish(w->producer, w->prefix, TICK_INVOICING, d, NULL, w->shards, firm, err,
                      sizeof err) != 0)
        fail_msg("ticks_publish: %s", err);
    invworker_sentinel(w, d, w->shards);
}

void invworker_tick_shard(invworker *w, int64_t firm, const char *date, int shard, int shards)
{
    assert_true(firm > 0);
    civil_date d;
    if (!date_parse(date, &d))
        fail_msg("bad date %s", date);
    invworker_produce(w, firm, d, shard, shards);
    invworker_sentinel(w, d, shards > w->shards ? shards : w->shards);
}

int invworker_stop(invworker *w)
{
    int rc = invworker_stop_pid(w->pid);
    if (rc != 0)
        invworker_dump_log(w->logpath);
    else
        unlink(w->logpath);
    kafka_producer_destroy(w->producer, 5000);
    free(w);
    return rc;
}
