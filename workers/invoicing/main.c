/* main.c: billing-invoicing-worker: consumes <prefix>ticks.invoicing in group
 * "<prefix>billing-invoicing-worker" and generates each tick shard's invoices
 * (handler.c), relaying the outbox to <prefix>invoices. Stops cleanly on
 * SIGTERM/SIGINT (finishes the message in hand, commits offsets). */
#include <stdio.h>

#include "handler.h"
#include "ledgerline/config.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/topics.h"

#define WORKER_NAME "billing-invoicing-worker"

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

    invoicing_worker w = {.prefix = prefix, .group = group};
    w.db = db_connect(url, 60000, err, sizeof err);
    if (w.db == NULL) {
        log_msg(LOG_ERROR, "cannot connect to the database", "error", err, NULL);
        return 1;
    }
    w.producer = kafka_producer_new(brokers, 30000, err, sizeof err);
    /* Events are published behind the ticks, so invoicing never waits on it. */
    if (w.producer != NULL)
        w.relay = outbox_relay_start(url, w.producer, prefix, 1000, err, sizeof err);
    const char *topics[] = {topic};
    kafka_consumer_config cc = {.brokers = brokers, .group_id = group, .topics = topics,
                                .ntopics = 1, .dlq_topic = dlq,
                                .handler = invoicing_worker_handle, .ctx = &w};
    kafka_consumer *consumer = w.relay ? kafka_consumer_new(&cc, err, sizeof err) : NULL;
    int rc = 1;
    if (consumer != NULL) {
        log_msg(LOG_INFO, "invoicing worker started", "group", group, "topic", topic, NULL);
        rc = kafka_consumer_run(consumer) == 0 ? 0 : 1;
        kafka_consumer_close(consumer);
    } else {
        log_msg(LOG_ERROR, "cannot start kafka clients", "error", err, NULL);
    }
    outbox_relay_stop(w.relay);
    if (w.producer)
        kafka_producer_destroy(w.producer, 10000);
    db_close(w.db);
    log_msg(LOG_INFO, "invoicing worker stopped", NULL);
    return rc;
}
