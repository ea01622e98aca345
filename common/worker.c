/* worker.c: the process around every consumer worker (see worker.h). Owns
 * start-up order, shutdown order and the wiring of shared clients; a worker
 * itself only says which topics it reads and how it handles one message. */
#include "ledgerline/worker.h"

#include <stdio.h>
#include <string.h>

#include "ledgerline/config.h"
#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/processed.h"
#include "ledgerline/queries.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/worker_http.h"

static kafka_result worker_dispatch(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    worker *w = ctx;
    if (!db_ensure(w->db, 0)) {
        ll_failf(err, errlen,
                 "could not reach the database: the connection was lost and is not back yet");
        return KAFKA_MSG_TRANSIENT;
    }
    kafka_result r = w->spec->handle(w, m, err, errlen);
    worker_kick_outbox(w);
    return r;
}

const char *worker_topic_of(const worker *w, const kafka_msg *m)
{
    for (size_t i = 0; i < w->spec->ntopics; i++)
        if (m->topic != NULL && strcmp(m->topic, w->topic_names[i]) == 0)
            return w->spec->topics[i];
    return "";
}

void worker_kick_outbox(worker *w)
{
    if (w->relay != NULL)
        outbox_relay_kick(w->relay);
}

db_status worker_seen(worker *w, const char *key, bool *seen, char *err, size_t errlen)
{
    return processed_seen(w->db, w->group, key, seen, err, errlen);
}

static db_status worker_noop(db_conn *c, void *arg, char *err, size_t errlen)
{
    (void)c, (void)arg, (void)err, (void)errlen;
    return DB_OK;
}

db_status worker_record(worker *w, const char *key, char *err, size_t errlen)
{
    db_status st = db_run_once(w->db, w->group, key, worker_noop, NULL, err, errlen);
    return st == DB_DUPLICATE ? DB_OK : st;
}

kafka_result worker_result(db_status st)
{
    if (st == DB_OK || st == DB_DUPLICATE)
        return KAFKA_MSG_OK;
    return st == DB_PERMANENT ? KAFKA_MSG_PERMANENT : KAFKA_MSG_TRANSIENT;
}

/* Everything the worker holds, released in reverse order of creation. */
typedef struct {
    worker w;
    worker_http *http;
    kafka_consumer *consumer;
} worker_process;

static void worker_release(worker_process *p)
{
    if (p->consumer)
        kafka_consumer_close(p->consumer);
    outbox_relay_stop(p->w.relay);
    worker_http_stop(p->http);
    if (p->w.producer)
        kafka_producer_destroy(p->w.producer, 10000);
    stripe_client_free(p->w.stripe);
    db_close(p->w.db);
    metrics_free(p->w.metrics);
}

static int worker_start(worker_process *p, const char *url, const char *brokers, char *err,
                        size_t errlen)
{
    worker *w = &p->w;
    const worker_spec *spec = w->spec;
    w->metrics = metrics_new();
    if (w->metrics == NULL || kafka_consumer_metrics_declare(w->metrics) != 0) {
        return ll_failf(err, errlen, "could not create the metrics registry: out of memory");
    }
    if (spec->needs_stripe) {
        stripe_config sc;
        stripe_config_from_env(&sc); /* exits 2 on a bad setting */
        sc.metrics = w->metrics;
        w->stripe = stripe_client_new(&sc, err, errlen);
        if (w->stripe == NULL)
            return -1;
    }
    w->producer = kafka_producer_new(brokers, 30000, err, errlen);
    if (w->producer == NULL)
        return -1;
    /* The listener first: /healthz answers while the database is still
     * being reached, and /readyz says 503 until it is. */
    static worker_readiness readiness;
    readiness =
        (worker_readiness){.database_url = url, .producer = w->producer, .stripe = w->stripe};
    if (worker_http_start_from_env(w->metrics, worker_ready_db_kafka, &readiness, &p->http, err,
                                   errlen) != 0)
        return -1;
    w->db = db_connect(url, 60000, err, errlen);
    if (w->db == NULL)
        return -1;
    if (spec->declare_metrics != NULL && spec->declare_metrics(w->metrics) != 0)
        return ll_failf(err, errlen,
                        "could not declare the metrics of %s: a name is malformed or taken, "
                        "or memory ran out",
                        spec->name);
    if (spec->init != NULL && spec->init(w, err, errlen) != 0)
        return -1;
    w->relay = outbox_relay_start(url, w->producer, w->prefix, 1000, err, errlen);
    if (w->relay == NULL)
        return -1;
    const char *topics[WORKER_MAX_TOPICS];
    for (size_t i = 0; i < spec->ntopics; i++)
        topics[i] = w->topic_names[i];
    char dlq[TOPIC_NAME_MAX + 1];
    if (topic_name(w->prefix, TOPIC_DLQ, dlq, sizeof dlq) != 0)
        config_die("KAFKA_TOPIC_PREFIX makes an illegal topic name");
    kafka_consumer_config cc = {.brokers = brokers,
                                .group_id = w->group,
                                .topics = topics,
                                .ntopics = spec->ntopics,
                                .dlq_topic = dlq,
                                .handler = worker_dispatch,
                                .ctx = w,
                                .metrics = w->metrics};
    p->consumer = kafka_consumer_new(&cc, err, errlen);
    return p->consumer ? 0 : -1;
}

int worker_main(const worker_spec *spec)
{
    if (log_init(spec->name) != 0)
        config_die("LOG_LEVEL must be one of debug, info, warn, error");
    const char *url = config_require("DATABASE_URL");
    const char *brokers = kafka_brokers_or_exit();
    shutdown_install();

    worker_process p = {.w = {.spec = spec, .prefix = topic_prefix()}};
    worker *w = &p.w;
    snprintf(w->group, sizeof w->group, "%s%s", w->prefix, spec->name);
    if (spec->ntopics == 0 || spec->ntopics > WORKER_MAX_TOPICS)
        config_die("worker_spec: 1..WORKER_MAX_TOPICS topics");
    for (size_t i = 0; i < spec->ntopics; i++)
        if (topic_name(w->prefix, spec->topics[i], w->topic_names[i], sizeof w->topic_names[i]) !=
            0)
            config_die("KAFKA_TOPIC_PREFIX makes an illegal topic name");

    char err[1024];
    int rc = 1;
    if (worker_start(&p, url, brokers, err, sizeof err) == 0) {
        log_msg(LL_LOG_INFO, "worker started", "group", w->group, NULL);
        rc = kafka_consumer_run(p.consumer) == 0 ? 0 : 1;
    } else {
        log_msg(LL_LOG_ERROR, "worker cannot start", "error", err, NULL);
    }
    worker_release(&p);
    char why[512];
    if (kafka_fatal(why, sizeof why)) {
        /* Non-zero so the supervisor starts a fresh producer. */
        log_msg(LL_LOG_ERROR, "worker stopped after a fatal Kafka error", "group", w->group,
                "error", why, NULL);
        return 1;
    }
    log_msg(LL_LOG_INFO, "worker stopped", "group", w->group, NULL);
    return rc;
}
