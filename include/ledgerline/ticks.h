/* ticks.h: publishing one day's tick of a kind, split into shard messages.
 * Shared by billing-scheduler and billingctl (`invoices generate`, ...). */
#ifndef LEDGERLINE_TICKS_H
#define LEDGERLINE_TICKS_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/envelope.h"
#include "ledgerline/kafka.h"

/* Publishes `shards` messages (shard 0..shards-1) of kind for business_date
 * to <prefix>ticks.<kind>, key = shard number, each waited for (acks=all).
 * as_of NULL = "<date>T00:00:00Z"; firm_id 0 = all firms.
 * Returns 0, or -1 with err when any shard was not acknowledged (publishing
 * again is harmless: ticks are idempotent). */
int ticks_publish(kafka_producer *p, const char *prefix, tick_kind kind, civil_date business_date,
                  const char *as_of, int shards, int64_t firm_id, char *err, size_t errlen);

#endif
