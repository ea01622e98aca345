/* outbox.h: the transactional outbox relay every worker can reuse.
 *
 * A state change writes its event into billing.outbox in the same
 * transaction (topic = the contract's UNPREFIXED topic name, e.g. "invoices";
 * msg_key; payload jsonb; headers jsonb object of string values or NULL).
 * The relay claims unpublished rows (FOR UPDATE SKIP LOCKED, so several
 * relays share the work without waiting on each other), publishes them to
 * <prefix><topic> as one batch (kafka_produce_batch_wait: all enqueued, then
 * every acks=all delivery report awaited), marks published only the rows the
 * broker acknowledged, and commits. At-least-once: a crash between the broker's ack and the
 * commit republishes those rows; consumers dedupe by idempotency key.
 */
#ifndef LEDGERLINE_OUTBOX_H
#define LEDGERLINE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/kafka.h"

#define OUTBOX_DEFAULT_BATCH 2000

/* One pass: claims at most `limit` rows (0 = OUTBOX_DEFAULT_BATCH) and marks
 * them published in the same statement, publishes them in id order as one
 * batch and unmarks the unacknowledged ones, in one transaction. Rows acknowledged in a batch where
 * others failed are still marked. *published (if given) gets how many were sent. Returns DB_OK, or
 * DB_TRANSIENT (broker or database unavailable: call again later) with err. Must not be called
 * inside an open transaction. */
db_status outbox_relay_once(db_conn *c, kafka_producer *p, const char *prefix, int limit,
                            int64_t *published, char *err, size_t errlen);

/* Repeats outbox_relay_once until the outbox is empty (a pass sends fewer
 * than limit rows) or a pass fails. *published gets the total. */
db_status outbox_relay_all(db_conn *c, kafka_producer *p, const char *prefix, int limit,
                           int64_t *published, char *err, size_t errlen);

/* A relay running in its own thread with its own database connection, so a
 * worker's handler commits its state change and goes on to the next message
 * while the events are published behind it. It relays whenever kicked and at
 * least every idle_ms, backing off while the broker or database is down. */
typedef struct outbox_relay outbox_relay;

/* Connects to db_url (retrying up to 60 s) and starts the thread; p must
 * outlive the relay. NULL with err on failure. */
outbox_relay *outbox_relay_start(const char *db_url, kafka_producer *p, const char *prefix,
                                 int idle_ms, char *err, size_t errlen);
/* Asks for a pass now (after a transaction that wrote outbox rows). */
void outbox_relay_kick(outbox_relay *r);
/* Runs a last pass, stops the thread and frees; returns how many rows the
 * relay published in its lifetime. */
int64_t outbox_relay_stop(outbox_relay *r);

#endif
