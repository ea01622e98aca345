/* fcheck.c: what the fault suite reads back (see faults.h). Owns a database
 * connection that rides out PostgreSQL restarts, the consumer groups' lag
 * (committed offsets against high watermarks: "every group has processed
 * everything") and the dead-letter count. */
#include "faults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

/* Partitions a topic has (its metadata): the dev broker makes 12 of every
 * topic, a real cluster the contract's counts (deploy/kafka/create-topics.sh). */
#define FCHECK_MAX_PARTITIONS 64

void fdb_open(fdb *d, const char *url)
{
    snprintf(d->url, sizeof d->url, "%s", url);
    d->c = NULL;
}

void fdb_close(fdb *d)
{
    if (d->c)
        PQfinish(d->c);
    d->c = NULL;
}

static bool fdb_ensure(fdb *d)
{
    if (d->c != NULL && PQstatus(d->c) == CONNECTION_OK)
        return true;
    if (d->c != NULL)
        PQfinish(d->c);
    d->c = PQconnectdb(d->url);
    if (PQstatus(d->c) == CONNECTION_OK) {
        PGresult *r = PQexec(d->c, "SET client_min_messages = warning");
        PQclear(r);
        return true;
    }
    return false;
}

PGresult *fdb_query(fdb *d, const char *sql, int n, const char *const *params)
{
    int64_t until = fproc_now_ms() + 90000;
    for (;;) {
        if (fdb_ensure(d)) {
            PGresult *r = PQexecParams(d->c, sql, n, NULL, params, NULL, NULL, 0);
            ExecStatusType s = PQresultStatus(r);
            if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
                return r;
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            bool transient =
                PQstatus(d->c) != CONNECTION_OK ||
                (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                           strncmp(state, "40", 2) == 0));
            if (!transient) {
                char msg[1024];
                snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
                PQclear(r);
                fproc_die("query failed: %s\n%s", msg, sql);
            }
            PQclear(r);
        }
        if (fproc_now_ms() > until)
            fproc_die("the database stayed unreachable for 90 s: %s",
                      d->c ? PQerrorMessage(d->c) : "no connection");
        fproc_sleep_ms(250);
    }
}

int64_t fdb_i64(fdb *d, const char *sql, int n, const char *const *params)
{
    PGresult *r = fdb_query(d, sql, n, params);
    int64_t v = PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0)
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : 0;
    PQclear(r);
    return v;
}

void fdb_exec(fdb *d, const char *sql, int n, const char *const *params)
{
    PQclear(fdb_query(d, sql, n, params));
}

/* ------------------------------------------------------------------------ */

static rd_kafka_t *fcheck_client(const char *brokers, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

/* How many partitions topic has; -1 when the metadata cannot be read now. */
static int fcheck_partitions(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (t == NULL)
        return -1;
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            md->topics[0].partition_cnt > 0)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    return n > FCHECK_MAX_PARTITIONS ? FCHECK_MAX_PARTITIONS : n;
}

/* Lag of one group over its topics; -1 when unknown. */
static int64_t fcheck_group_lag(const char *brokers, const char *prefix, const char *group,
                                const char *const *topics, size_t ntopics)
{
    char gname[256];
    snprintf(gname, sizeof gname, "%s%s", prefix, group);
    rd_kafka_t *rk = fcheck_client(brokers, gname);
    if (rk == NULL)
        return -1;
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)(ntopics * FCHECK_MAX_PARTITIONS));
    char names[4][256];
    bool known = true;
    for (size_t t = 0; t < ntopics && known; t++) {
        snprintf(names[t], sizeof names[t], "%s%s", prefix, topics[t]);
        int parts = fcheck_partitions(rk, names[t]);
        known = parts > 0;
        for (int p = 0; p < parts; p++)
            rd_kafka_topic_partition_list_add(l, names[t], p);
    }
    int64_t lag = -1;
    if (known && rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        lag = 0;
        for (int i = 0; i < l->cnt && lag >= 0; i++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(rk, l->elems[i].topic, l->elems[i].partition, &lo,
                                                 &hi, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                lag = -1;
                break;
            }
            int64_t committed = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
            lag += hi > committed ? hi - committed : 0;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return lag;
}

int64_t fcheck_lag(const char *brokers, const char *prefix)
{
    static const char *const inv[] = {"ticks.invoicing"};
    static const char *const ap[] = {"ticks.autopay", "invoices", "stripe.payments"};
    static const char *const rt[] = {"ticks.retry", "stripe.payments"};
    static const char *const dp[] = {"stripe.disputes"};
    const struct {
        const char *group;
        const char *const *topics;
        size_t n;
    } g[] = {{"billing-invoicing-worker", inv, 1},
             {"billing-autopay-worker", ap, 3},
             {"billing-retry-worker", rt, 2},
             {"billing-dispute-worker", dp, 1}};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        int64_t l = fcheck_group_lag(brokers, prefix, g[i].group, g[i].topics, g[i].n);
        if (l < 0)
            return -1;
        total += l;
    }
    return total;
}

int64_t fcheck_dlq_count(const char *brokers, const char *prefix)
{
    rd_kafka_t *rk = fcheck_client(brokers, "faults-dlq-reader");
    if (rk == NULL)
        return -1;
    char topic[256];
    snprintf(topic, sizeof topic, "%sdlq", prefix);
    int parts = fcheck_partitions(rk, topic);
    int64_t n = parts > 0 ? 0 : -1;
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            n = -1;
            break;
        }
        n += hi - lo;
    }
    rd_kafka_destroy(rk);
    return n;
}
