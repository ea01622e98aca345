/* dlq.h: reading the dead-letter topic back and replaying dead letters
 * (billingctl dlq list / dlq replay).
 *
 * Every consumer dead-letters a message it can never apply to <prefix>dlq
 * with the original key and value and the headers error, source-topic,
 * source-partition, source-offset and consumer (common/kafka.c). Reading it
 * back uses a plain assigned consumer (no group, nothing committed), from
 * each partition's low watermark up to the high watermark taken at the
 * start, so a listing is a snapshot and never waits for new messages.
 * Replaying produces the original key and value to the topic named by
 * source-topic (acks=all, waited for); the consumers' idempotency keys make
 * a replay of a message that was meanwhile applied harmless.
 */
#ifndef LEDGERLINE_DLQ_H
#define LEDGERLINE_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/kafka.h"

typedef struct {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* when it was dead-lettered, -1 unknown */
    void *key;            /* original key (owned; NULL when none) */
    size_t key_len;
    void *value; /* original value (owned) */
    size_t value_len;
    char *error; /* header values (owned; "" when absent) */
    char *source_topic;
    char *source_partition;
    char *source_offset;
    char *consumer;
} dlq_entry;

typedef struct {
    dlq_entry *items;
    size_t n;
} dlq_entries;

/* Reads every message of dlq_topic (full name) present when called,
 * ordered by partition then offset. timeout_ms bounds the whole read.
 * -1 with err when the topic cannot be read (no broker, no such topic). */
int dlq_read(const char *brokers, const char *dlq_topic, int timeout_ms, dlq_entries *out,
             char *err, size_t errlen);
void dlq_entries_free(dlq_entries *l);

/* The entries whose offset is `offset` (in `partition` when >= 0): how
 * many match; *first (when given) gets the first match. */
size_t dlq_find(const dlq_entries *l, int32_t partition, int64_t offset, const dlq_entry **first);

/* Re-publishes e's original key and value to its source-topic, with the
 * header dlq-replay-of = "<dlq partition>:<dlq offset>", waiting for the
 * broker's ack. -1 with err when e has no usable source-topic, names the
 * dead-letter topic itself (dlq_topic), or the produce failed. */
int dlq_replay(kafka_producer *p, const char *dlq_topic, const dlq_entry *e, char *err,
               size_t errlen);

#endif
