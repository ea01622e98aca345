/* main.c: billing-dispute-worker: consumes <prefix>stripe.disputes in group
 * "<prefix>billing-dispute-worker" and applies disputes, chargebacks and
 * refunds (handler.c, rules in common/disputes.c), relaying the outbox to
 * <prefix>invoices in the background. Calls Stripe (STRIPE_SECRET_KEY,
 * STRIPE_API_BASE, STRIPE_MAX_RPS) to list a refunded charge's refunds.
 * Serves /healthz, /readyz and /metrics on WORKER_HTTP_LISTEN when set.
 * Stops cleanly on SIGTERM/SIGINT (finishes the message in hand, commits
 * offsets, flushes the producer). */
#include <stdio.h>

#include "handler.h"
#include "ledgerline/config.h"
#include "ledgerline/log.h"
#include "ledgerline/metrics.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe.h"
#include "ledgerline/topics.h"
#include "ledgerline/worker_http.h"

#define WORKER_NAME "billing-dispute-worker"

int main(void)
{
    if (log_init(WORKER_NAME) != 0)
        config_die("LOG_LEVEL must be one of debug, info, warn, error");
    const char *url = config_require("DATABASE_URL");
    const char *brokers = config_require("KAFKA_BROKERS");
    const char *prefix = topic_prefix();
    stripe_config scfg;
    stripe_config_from_env(&scfg);
    shutdown_install();

    char group[TOPIC_NAME_MAX + 64], topic[TOPIC_NAME_MAX + 1], dlq[TOPIC_NAME_MAX + 1];
    char err[1024];
    snprintf(group, sizeof group, "%s%s", prefix, WORKER_NAME);
    if (topic_name(prefix, TOPIC_STRIPE_DISPUTES, topic, sizeof topic) != 0 ||
        topic_name(prefix, TOPIC_DLQ, dlq, sizeof dlq) != 0)
        config_die("KAFKA_TOPIC_PREFIX makes an illegal topic name");

    dispute_worker w = {.prefix = prefix, .group = group};
    w.stripe = stripe_client_new(&scfg, err, sizeof err);
    if (w.stripe == NULL) {
        /* A bad STRIPE_API_BASE is a configuration error like any other. */
        fprintf(stderr, "%s: configuration error: %s\n", WORKER_NAME, err);
        return CONFIG_EXIT_STATUS;
    }
    metrics_registry *metrics = metrics_new();
    worker_http *http = NULL;
    kafka_consumer *consumer = NULL;
    int rc = 1;
    if (metrics == NULL || dispute_worker_metrics_declare(metrics) != 0 ||
        kafka_consumer_metrics_declare(metrics) != 0) {
        log_msg(LOG_ERROR, "cannot create metrics", NULL);
        goto out;
    }
    w.metrics = metrics;
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
    /* Lifecycle events are published behind the messages, so handling never
     * waits for the invoices topic. */
    w.relay = outbox_relay_start(url, w.producer, prefix, 1000, err, sizeof err);
    if (w.relay == NULL) {
        log_msg(LOG_ERROR, "cannot start the outbox relay", "error", err, NULL);
        goto out;
    }
    const char *topics[] = {topic};
    kafka_consumer_config cc = {.brokers = brokers, .group_id = group, .topics = topics,
                                .ntopics = 1, .dlq_topic = dlq,
                                .handler = dispute_worker_handle, .ctx = &w,
                                .metrics = metrics};
    consumer = kafka_consumer_new(&cc, err, sizeof err);
    if (consumer == NULL) {
        log_msg(LOG_ERROR, "cannot start the Kafka consumer", "error", err, NULL);
        goto out;
    }
    log_msg(LOG_INFO, "dispute worker started", "group", group, "topic", topic, NULL);
    rc = kafka_consumer_run(consumer) == 0 ? 0 : 1;
    kafka_consumer_close(consumer);
out:
    worker_http_stop(http);
    outbox_relay_stop(w.relay);
    if (w.producer)
        kafka_producer_destroy(w.producer, 10000);
    db_close(w.db);
    stripe_client_free(w.stripe);
    metrics_free(metrics);
    log_msg(LOG_INFO, "dispute worker stopped", NULL);
    return rc;
}
