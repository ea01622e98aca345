/* envelope.h: the JSON messages of the contract that we produce ourselves:
 * daily ticks (topics ticks.*) and invoice lifecycle events (topic invoices).
 *
 * Parsers validate every field and say what was wrong: a message that fails
 * here can never succeed and belongs on the dlq.
 */
#ifndef LEDGERLINE_ENVELOPE_H
#define LEDGERLINE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"

#define ENVELOPE_KEY_MAX 256

typedef enum { TICK_INVOICING = 0, TICK_AUTOPAY, TICK_RETRY, TICK_REMINDERS } tick_kind;

typedef struct {
    tick_kind kind;
    char idempotency_key[ENVELOPE_KEY_MAX];
    civil_date business_date;
    char as_of[32];  /* RFC 3339 UTC, e.g. 2026-11-24T02:00:00Z */
    int shard;       /* 0 .. shards-1 */
    int shards;      /* >= 1 */
    int64_t firm_id; /* 0 = all firms (JSON null) */
} tick_msg;

/* "invoicing", "autopay", "retry", "reminders" <-> enum. */
const char *tick_kind_name(tick_kind k);
bool tick_kind_parse(const char *text, tick_kind *out);

/* Fills idempotency_key as "tick:<kind>:<date>:all:<s>/<n>" or
 * "tick:<kind>:<date>:firm-<id>:<s>/<n>", and as_of when empty as
 * "<date>T00:00:00Z". Returns 0, or -1 on invalid fields. */
int tick_init(tick_msg *t, tick_kind kind, civil_date business_date, const char *as_of, int shard,
              int shards, int64_t firm_id);
/* Serialises to a malloc'd JSON string (caller frees), NULL on error. */
char *tick_to_json(const tick_msg *t);
/* Parses and validates; -1 with a message in err. The idempotency_key must
 * be the one tick_init would give the tick's fields: a tick carrying any
 * other key (a forged one, say a future date's key on a harmless date,
 * which would have that key recorded as applied and the real tick skipped)
 * is malformed and belongs on the dlq. */
int tick_parse(const char *json, size_t len, tick_msg *out, char *err, size_t errlen);

typedef enum {
    INVOICE_EVENT_ISSUED = 0,
    INVOICE_EVENT_PAID,
    INVOICE_EVENT_PAYMENT_FAILED,
    INVOICE_EVENT_OVERDUE,
    INVOICE_EVENT_DISPUTED,
    INVOICE_EVENT_CHARGED_BACK,
    INVOICE_EVENT_REFUNDED,
    INVOICE_EVENT_VOIDED,  /* invoice lifecycle (sql/012) */
    INVOICE_EVENT_CREDITED /* key "invoice.credited:<invoice id>:<credit note id>" */
} invoice_event_type;

typedef struct {
    invoice_event_type type;
    char idempotency_key[ENVELOPE_KEY_MAX];
    int64_t invoice_id;
    int64_t firm_id;
    int64_t client_id;
    char status[24];
    int64_t total_cents;
    char currency[4];
    char occurred_at[40]; /* RFC 3339 */
} invoice_event;

/* "invoice.issued", ... <-> enum. */
const char *invoice_event_type_name(invoice_event_type t);
bool invoice_event_type_parse(const char *text, invoice_event_type *out);

/* Fills idempotency_key "<type>:<invoice id>", or "<type>:<invoice id>:<seq>"
 * when seq > 0 (events that can happen more than once to one invoice). */
int invoice_event_init_key(invoice_event *e, int seq);
char *invoice_event_to_json(const invoice_event *e);
int invoice_event_parse(const char *json, size_t len, invoice_event *out, char *err, size_t errlen);

#endif
