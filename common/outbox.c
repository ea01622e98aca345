/* outbox.c: the outbox relay (see outbox.h). Owns reading billing.outbox,
 * publishing its rows to Kafka and marking them published. */
#include "ledgerline/outbox.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/queries.h"
#include "ledgerline/topics.h"

#define OUTBOX_WAIT_MS 30000
#define OUTBOX_MAX_HEADERS 16

typedef struct {
    kafka_producer *producer;
    const char *prefix;
    int limit;
    int64_t claimed;
    int64_t published;
} outbox_pass;

/* Headers jsonb {"name": "value", ...} -> kafka headers (borrowing from obj).
 * Non-string values are skipped. */
static size_t outbox_headers(json_t *obj, kafka_header *h, size_t max)
{
    size_t n = 0;
    const char *name;
    json_t *v;
    if (!json_is_object(obj))
        return 0;
    json_object_foreach(obj, name, v)
    {
        if (n == max)
            break;
        if (!json_is_string(v))
            continue;
        h[n].name = name;
        h[n].value = json_string_value(v);
        h[n].len = json_string_length(v);
        n++;
    }
    return n;
}

/* Publishes the claimed rows r as one batch: every message is enqueued, then
 * every delivery report awaited (kafka_produce_batch_wait). sent[i] = true
 * for the rows the broker acknowledged. Rows with an illegal topic are left
 * unpublished (logged). Returns -1 with err when some delivery failed. */
static int outbox_publish_rows(outbox_pass *x, PGresult *r, bool *sent, char *err, size_t errlen)
{
    int n = PQntuples(r);
    kafka_out_msg *msgs = calloc((size_t)n, sizeof *msgs);
    int *row = calloc((size_t)n, sizeof *row);
    kafka_status *res = calloc((size_t)n, sizeof *res);
    char(*topics)[TOPIC_NAME_MAX + 1] = calloc((size_t)n, sizeof *topics);
    kafka_header(*hdrs)[OUTBOX_MAX_HEADERS] = calloc((size_t)n, sizeof *hdrs);
    json_t **hj = calloc((size_t)n, sizeof *hj);
    int rc = 0;
    if (msgs == NULL || row == NULL || res == NULL || topics == NULL || hdrs == NULL ||
        hj == NULL) {
        ll_failf(err, errlen, "could not publish the outbox rows: out of memory");
        rc = -1;
        goto out;
    }
    size_t m = 0;
    for (int i = 0; i < n; i++) {
        sent[i] = false;
        const char *id = PQgetvalue(r, i, 0);
        if (topic_name(x->prefix, PQgetvalue(r, i, 1), topics[m], sizeof topics[m]) != 0) {
            log_msg(LL_LOG_ERROR, "outbox row has an illegal topic; left unpublished", "outbox_id",
                    id, "topic", PQgetvalue(r, i, 1), NULL);
            continue;
        }
        const char *key = PQgetvalue(r, i, 2);
        const char *payload = PQgetvalue(r, i, 3);
        size_t nh = 0;
        if (!PQgetisnull(r, i, 4)) {
            hj[m] = json_loads(PQgetvalue(r, i, 4), 0, NULL);
            nh = outbox_headers(hj[m], hdrs[m], OUTBOX_MAX_HEADERS);
        }
        msgs[m] = (kafka_out_msg){.topic = topics[m],
                                  .key = key,
                                  .keylen = strlen(key),
                                  .value = payload,
                                  .valuelen = strlen(payload),
                                  .headers = nh ? hdrs[m] : NULL,
                                  .nheaders = nh};
        row[m] = i;
        m++;
    }
    if (kafka_produce_batch_wait(x->producer, msgs, m, OUTBOX_WAIT_MS, res, err, errlen) !=
        KAFKA_OK)
        rc = -1;
    bool logged = false;
    for (size_t k = 0; k < m; k++) {
        if (res[k] == KAFKA_OK) {
            sent[row[k]] = true;
        } else if (!logged) {
            /* one line per batch: the first failure (err describes it) */
            log_msg(LL_LOG_WARN, "outbox publish failed", "outbox_id", PQgetvalue(r, row[k], 0),
                    "topic", topics[k], "error", err, NULL);
            logged = true;
        }
    }
out:
    if (hj != NULL)
        for (int i = 0; i < n; i++)
            json_decref(hj[i]);
    free(hj);
    free(hdrs);
    free(topics);
    free(res);
    free(row);
    free(msgs);
    return rc;
}

/* Claims and marks in one statement: the UPDATE takes the row locks that
 * keep other relays off these rows (SKIP LOCKED) and sets published_at at
 * once, so each row is written once per pass instead of locked (FOR UPDATE
 * writes the tuple) and then updated. The rows the broker did not
 * acknowledge are unmarked before the commit; a crash before the commit
 * leaves every row unmarked. */
static db_status outbox_pass_tx(db_conn *c, void *arg, char *err, size_t errlen)
{
    outbox_pass *x = arg;
    char lim[24];
    const char *p[] = {db_i64(x->limit, lim, sizeof lim)};
    db_status st;
    PGresult *r = db_exec(c, llq_outbox_claim, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    x->claimed = n;
    char *ids = malloc((size_t)n * 21 + 3);
    bool *sent = calloc((size_t)n + 1, sizeof *sent);
    if (ids == NULL || sent == NULL) {
        PQclear(r);
        free(ids);
        free(sent);
        ll_failf(err, errlen, "could not publish the claimed outbox rows: out of memory");
        return DB_TRANSIENT;
    }
    char perr[512] = "";
    bool broker_failed = n > 0 && outbox_publish_rows(x, r, sent, perr, sizeof perr) != 0;
    size_t off = 0;
    ids[off++] = '{';
    int64_t nsent = 0, nunsent = 0;
    for (int i = 0; i < n; i++) {
        if (sent[i]) {
            nsent++;
            continue;
        }
        const char *id = PQgetvalue(r, i, 0);
        if (nunsent > 0)
            ids[off++] = ',';
        size_t len = strlen(id);
        memcpy(ids + off, id, len);
        off += len;
        nunsent++;
    }
    ids[off++] = '}';
    ids[off] = '\0';
    PQclear(r);
    free(sent);
    if (nunsent > 0) {
        const char *up[] = {ids};
        st = db_command(c, llq_outbox_unmark, 1, up, err, errlen);
        if (st != DB_OK) {
            free(ids);
            return st;
        }
    }
    free(ids);
    x->published = nsent;
    if (broker_failed) {
        /* Commit what was sent (db_run_tx commits on DB_OK); report the
         * failure through the pass result instead. */
        ll_failf(err, errlen, "%s", perr);
        x->claimed = -1;
    }
    return DB_OK;
}

db_status outbox_relay_once(db_conn *c, kafka_producer *p, const char *prefix, int limit,
                            int64_t *published, char *err, size_t errlen)
{
    outbox_pass x = {
        .producer = p, .prefix = prefix, .limit = limit > 0 ? limit : OUTBOX_DEFAULT_BATCH};
    if (published)
        *published = 0;
    db_status st = db_run_tx(c, outbox_pass_tx, &x, err, errlen);
    if (st != DB_OK)
        return st == DB_PERMANENT ? DB_TRANSIENT : st;
    if (published)
        *published = x.published;
    if (x.claimed < 0)
        return DB_TRANSIENT; /* broker failure; err already filled */
    if (x.published > 0) {
        char n[24];
        log_msg(LL_LOG_DEBUG, "outbox rows published", "count", db_i64(x.published, n, sizeof n),
                NULL);
    }
    return DB_OK;
}

db_status outbox_relay_all(db_conn *c, kafka_producer *p, const char *prefix, int limit,
                           int64_t *published, char *err, size_t errlen)
{
    int lim = limit > 0 ? limit : OUTBOX_DEFAULT_BATCH;
    int64_t total = 0;
    db_status st;
    for (;;) {
        int64_t n = 0;
        st = outbox_relay_once(c, p, prefix, lim, &n, err, errlen);
        total += n;
        if (st != DB_OK || n < lim)
            break;
    }
    if (published)
        *published = total;
    return st;
}

/* ---------------------------------------------------------- relay thread */

struct outbox_relay {
    db_conn *db;
    kafka_producer *producer;
    char *prefix;
    int idle_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool kicked, stopping;
    int64_t published;
};

/* Waits until kicked, stopping, or ms passed. Returns true when stopping. */
static bool outbox_relay_wait(outbox_relay *r, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (!r->kicked && !r->stopping && rc == 0)
        rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
    r->kicked = false;
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->mu);
    return stopping;
}

static db_status outbox_relay_pass(outbox_relay *r)
{
    char err[512] = "database connection lost and not yet back";
    int64_t n = 0;
    db_status st = DB_TRANSIENT;
    if (db_ensure(r->db, 0))
        st = outbox_relay_all(r->db, r->producer, r->prefix, 0, &n, err, sizeof err);
    r->published += n;
    if (st != DB_OK)
        log_msg(LL_LOG_WARN, "outbox relay pass failed, will retry", "error", err, NULL);
    return st;
}

static void *outbox_relay_main(void *arg)
{
    outbox_relay *r = arg;
    int backoff = 0;
    while (!outbox_relay_wait(r, backoff > 0 ? backoff : r->idle_ms)) {
        if (outbox_relay_pass(r) == DB_OK)
            backoff = 0;
        else
            backoff = backoff == 0 ? 200 : (backoff * 2 > 30000 ? 30000 : backoff * 2);
    }
    outbox_relay_pass(r); /* what the last messages wrote */
    return NULL;
}

/* What a relay holds once its thread is gone (or never started). */
static void outbox_relay_free(outbox_relay *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    db_close(r->db);
    free(r->prefix);
    free(r);
}

outbox_relay *outbox_relay_start(const char *db_url, kafka_producer *p, const char *prefix,
                                 int idle_ms, char *err, size_t errlen)
{
    outbox_relay *r = calloc(1, sizeof *r);
    if (r == NULL || (r->prefix = strdup(prefix)) == NULL) {
        free(r);
        ll_failf(err, errlen, "could not start the outbox relay: out of memory");
        return NULL;
    }
    r->producer = p;
    r->idle_ms = idle_ms > 0 ? idle_ms : 1000;
    r->db = db_connect(db_url, 60000, err, errlen);
    if (r->db == NULL) {
        free(r->prefix);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    int rc = pthread_create(&r->thread, NULL, outbox_relay_main, r);
    if (rc != 0) {
        ll_failf(err, errlen, "could not start the outbox relay thread: %s", strerror(rc));
        outbox_relay_free(r);
        return NULL;
    }
    return r;
}

void outbox_relay_kick(outbox_relay *r)
{
    pthread_mutex_lock(&r->mu);
    r->kicked = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int64_t outbox_relay_stop(outbox_relay *r)
{
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    int64_t n = r->published;
    outbox_relay_free(r);
    return n;
}
