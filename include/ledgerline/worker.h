/* worker.h: the life of a consumer worker process, once for every worker
 * kind: configuration, the JSON log, the database connection, the producer
 * and the background outbox relay, the optional Stripe client, the metrics
 * listener (WORKER_HTTP_LISTEN), the consumer group loop and a clean stop on
 * SIGTERM/SIGINT. A worker's main() fills a worker_spec and calls
 * worker_main(); its handler gets the worker as context.
 */
#ifndef LEDGERLINE_WORKER_H
#define LEDGERLINE_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "ledgerline/db.h"
#include "ledgerline/kafka.h"
#include "ledgerline/metrics.h"
#include "ledgerline/outbox.h"
#include "ledgerline/stripe.h"
#include "ledgerline/topics.h"

#define WORKER_MAX_TOPICS 4

typedef struct worker worker;

typedef struct {
    const char *name;                      /* the binary's name: billing-<kind>-worker */
    const char *topics[WORKER_MAX_TOPICS]; /* unprefixed contract names */
    size_t ntopics;
    bool needs_stripe; /* STRIPE_SECRET_KEY required */
    /* Handles one message (ctx is the worker). */
    kafka_result (*handle)(worker *w, const kafka_msg *m, char *err, size_t errlen);
    /* Optional, after the clients exist and before init: declares the
     * worker's own metrics. Non-zero (a name malformed or taken, or no
     * memory) stops the worker. */
    int (*declare_metrics)(metrics_registry *m);
    /* Optional, after declare_metrics and before consuming: reads the
     * worker's own settings, sets up its state. Non-zero stops, with the
     * reason in err. */
    int (*init)(worker *w, char *err, size_t errlen);
    void *app; /* the worker's own state */
} worker_spec;

struct worker {
    const worker_spec *spec;
    const char *prefix;              /* KAFKA_TOPIC_PREFIX */
    char group[TOPIC_NAME_MAX + 64]; /* <prefix><name>: group and processed_messages consumer */
    char topic_names[WORKER_MAX_TOPICS][TOPIC_NAME_MAX + 1];
    db_conn *db;
    kafka_producer *producer;
    outbox_relay *relay;
    stripe_client *stripe; /* NULL unless needs_stripe */
    metrics_registry *metrics;
};

/* Runs the worker until it is asked to stop; returns the exit status. */
int worker_main(const worker_spec *spec);

/* The unprefixed topic a message came from ("" when not one of the spec's). */
const char *worker_topic_of(const worker *w, const kafka_msg *m);

/* After a transaction that wrote outbox rows. */
void worker_kick_outbox(worker *w);

/* true when the key is already recorded for this worker's group. */
db_status worker_seen(worker *w, const char *key, bool *seen, char *err, size_t errlen);

/* Records the key for this worker's group (after work that was made
 * idempotent by other means, e.g. a tick made of several transactions). */
db_status worker_record(worker *w, const char *key, char *err, size_t errlen);

/* DB_PERMANENT -> dlq; anything else that is not OK -> retry later. */
kafka_result worker_result(db_status st);

#endif
