/* topics.h: the contract's topic names, in one place. Every name is used with
 * KAFKA_TOPIC_PREFIX in front (default "billing."). */
#ifndef LEDGERLINE_TOPICS_H
#define LEDGERLINE_TOPICS_H

#include <stddef.h>

#define TOPIC_STRIPE_PAYMENTS "stripe.payments"
#define TOPIC_STRIPE_DISPUTES "stripe.disputes"
#define TOPIC_TICKS_INVOICING "ticks.invoicing"
#define TOPIC_TICKS_AUTOPAY "ticks.autopay"
#define TOPIC_TICKS_RETRY "ticks.retry"
#define TOPIC_TICKS_REMINDERS "ticks.reminders"
#define TOPIC_INVOICES "invoices"
#define TOPIC_DLQ "dlq"

#define TOPIC_DEFAULT_PREFIX "billing."
#define TOPIC_NAME_MAX 249 /* Kafka's limit */

/* Every topic of the contract (unprefixed), for the dev broker and provisioning. */
extern const char *const topics_all[];
extern const size_t topics_count;

/* Writes prefix + name into buf; -1 when it does not fit or is not a legal
 * Kafka topic name ([A-Za-z0-9._-], at most 249 characters). */
int topic_name(const char *prefix, const char *name, char *buf, size_t bufsz);
/* The prefix from KAFKA_TOPIC_PREFIX (default "billing."), validated;
 * exits 2 when malformed. */
const char *topic_prefix(void);

#endif
