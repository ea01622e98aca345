/* handler.h: billing-invoicing-worker's message handler, apart from main.c
 * so tests can run it in-process. */
#ifndef INVOICING_WORKER_HANDLER_H
#define INVOICING_WORKER_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/kafka.h"
#include "ledgerline/outbox.h"

typedef struct {
    db_conn *db;
    kafka_producer *producer; /* for the outbox relay */
    outbox_relay *relay;      /* background relay; NULL = relay inline */
    const char *prefix;       /* KAFKA_TOPIC_PREFIX */
    const char *group;        /* consumer group = processed_messages.consumer */
    int batch_size;           /* 0 = INVOICING_DEFAULT_BATCH */
    /* counters (tests, logs) */
    uint64_t ticks_applied, ticks_duplicate;
    int64_t invoices_created, events_published;
} invoicing_worker;

/* kafka_handler_fn: parse the tick (malformed -> permanent, to the dlq);
 * unless the tick's idempotency key is already recorded, generate its
 * shard's invoices (batches, each one transaction) and record the key; then
 * relay the outbox to <prefix>invoices: kick the background relay, or relay
 * inline when there is none (tests). Database or broker down -> transient. */
kafka_result invoicing_worker_handle(void *ctx, const kafka_msg *m, char *err, size_t errlen);

#endif
