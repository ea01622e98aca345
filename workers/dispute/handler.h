/* handler.h: billing-dispute-worker's message handler (one Stripe event of
 * <prefix>stripe.disputes), shared by main.c and the in-process tests. */
#ifndef DISPUTE_WORKER_HANDLER_H
#define DISPUTE_WORKER_HANDLER_H

#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/kafka.h"
#include "ledgerline/metrics.h"
#include "ledgerline/outbox.h"
#include "ledgerline/stripe.h"

typedef struct {
    db_conn *db;
    stripe_client *stripe;    /* lists a charge's refunds */
    kafka_producer *producer; /* outbox relay when relay is NULL */
    outbox_relay *relay;      /* background relay (the binary); NULL: relay inline */
    const char *prefix;
    const char *group;         /* consumer name in processed_messages */
    metrics_registry *metrics; /* optional */
    /* counters (tests) */
    int64_t applied, duplicates, unmatched;
} dispute_worker;

/* Declares the worker's metric families in m (0, or -1). */
int dispute_worker_metrics_declare(metrics_registry *m);

kafka_result dispute_worker_handle(void *ctx, const kafka_msg *m, char *err, size_t errlen);

#endif
