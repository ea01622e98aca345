/* main.c: billing-invoicing-worker: consumes <prefix>ticks.invoicing in group
 * "<prefix>billing-invoicing-worker" and generates each tick shard's invoices
 * (handler.c), relaying the outbox to <prefix>invoices. Serves /healthz,
 * /readyz and /metrics on WORKER_HTTP_LISTEN when set. Stops cleanly on
 * SIGTERM/SIGINT (finishes the message in hand, commits offsets). */
#include <stdio.h>

#include "handler.h"
#include "ledgerline/config.h"
#include "ledgerline/log.h"
#include "ledgerline/metrics.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/topics.h"
#include "ledgerline/worker_http.h"

#define WORKER_NAME "billing-invoicing-worker"

typedef struct {
    invoicing_worker *w;
    metrics_registry *metrics;
} invoicing_main;

/* The handler plus billing_invoices_generated_total: handler.c counts the
 * invoices each tick created; the difference is this message's share. */
static kafka_result invoicing_main_handle(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    invoicing_main *im = ctx;
    int64_t before = im->w->invoices_created;
    kafka_result r = invoicing_worker_handle(im->w, m, err, errlen);
    int64_t created = im->w->invoices_created - before;
    if (created > 0)
        metrics_counter_add(im->metrics, "billing_invoices_generated_total", (uint64_t)created,
                            NULL);
    return r;
}

int main(void)
{
    if (log_init(WORKER_NAME) != 0)
        config_die("LOG_LEVEL must be one of debug, info, warn, error");
    const char *url = config_require("DATABASE_URL");
    const char *brokers = config_require("KAFKA_BROKERS");
    const char *prefix = topic_prefix();
    shutdown_install();

    char group[TOPIC_NAME_MAX + 64], topic[TOPIC_NAME_MAX + 1], dlq[TOPIC_NAME_MAX + 1];
    char err[1024];
    snprintf(group, sizeof group, "%s%s", prefix, WORKER_NAME);
    if (topic_name(prefix, TOPIC_TICKS_INVOICING, topic, sizeof topic) != 0 ||
        topic_name(prefix, TOPIC_DLQ, dlq, sizeof dlq) != 0)
        config_die("KAFKA_TOPIC_PREFIX makes an illegal topic name");

    metrics_registry *metrics = metrics_new();
    if (metrics == NULL ||
        metrics_declare(metrics, "billing_invoices_generated_total", METRICS_COUNTER,
                        "Invoices created by invoicing ticks.") != 0 ||
        kafka_consumer_metrics_declare(metrics) != 0) {
        log_msg(LOG_ERROR, "cannot create metrics", NULL);
        return 1;
    }
    invoicing_worker w = {.prefix = prefix, .group = group};
    worker_http *http = NULL;
    int rc = 1;
    /* The listener starts first, so a malformed WORKER_HTTP_LISTEN stops the
     * process at once (exit 2) and /healthz answers while the database is
     * still being reached (/readyz says 503 until it is). */
    w.producer = kafka_producer_new(brokers, 30000, err, sizeof err);
    if (w.producer == NULL) {
        log_msg(LOG_ERROR, "cannot create the Kafka producer", "error", err, NULL);
        goto out;
    }
    worker_readiness readiness = {.database_url = url, .producer = w.producer};
    if (worker_http_start_from_env(metrics, worker_ready_db_kafka, &readiness, &http, err,
                                   sizeof err) != 0) {
        log_msg(LOG_ERROR, "cannot start the metrics listener", "error", err, NULL);
        goto out;
    }
    w.db = db_connect(url, 60000, err, sizeof err);
    if (w.db == NULL) {
        log_msg(LOG_ERROR, "cannot connect to the database", "error", err, NULL);
        goto out;
    }
    /* Events are published behind the ticks, so invoicing never waits on it. */
    w.relay = outbox_relay_start(url, w.producer, prefix, 1000, err, sizeof err);
    invoicing_main im = {.w = &w, .metrics = metrics};
    const char *topics[] = {topic};
    kafka_consumer_config cc = {.brokers = brokers, .group_id = group, .topics = topics,
                                .ntopics = 1, .dlq_topic = dlq,
                                .handler = invoicing_main_handle, .ctx = &im,
                                .metrics = metrics};
    kafka_consumer *consumer = w.relay ? kafka_consumer_new(&cc, err, sizeof err) : NULL;
    if (consumer != NULL) {
        log_msg(LOG_INFO, "invoicing worker started", "group", group, "topic", topic, NULL);
        rc = kafka_consumer_run(consumer) == 0 ? 0 : 1;
        kafka_consumer_close(consumer);
    } else {
        log_msg(LOG_ERROR, "cannot start kafka clients", "error", err, NULL);
    }
out:
    worker_http_stop(http);
    outbox_relay_stop(w.relay);
    if (w.producer)
        kafka_producer_destroy(w.producer, 10000);
    db_close(w.db);
    metrics_free(metrics);
    log_msg(LOG_INFO, "invoicing worker stopped", NULL);
    return rc;
}
