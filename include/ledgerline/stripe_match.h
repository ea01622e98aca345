/* stripe_match.h: finding the invoice a Stripe event is about, in our own
 * records (a database read). Kept apart from stripe_event.h so that code
 * reading Stripe's bodies (the HTTP client, the parsers) needs no libpq. */
#ifndef LEDGERLINE_STRIPE_MATCH_H
#define LEDGERLINE_STRIPE_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/stripe_event.h"

/* What an event was matched to. ours = found through our own records of
 * the PaymentIntent (an attempt by its key or intent id, or a payment), so
 * the event's body is about money we asked for; otherwise the intent was
 * created elsewhere and must be read from Stripe before it is applied
 * (rule 11.9). */
typedef struct {
    int64_t invoice_id; /* 0 when none matches */
    int64_t firm_id;
    int64_t attempt_id; /* our attempt, when found by its key or intent */
    bool ours;
} stripe_event_match;

/* Finds the invoice: by metadata.attempt_key (our attempt), by PaymentIntent
 * id (payment attempts, payments, then invoices.stripe_payment_intent_id),
 * by charge id (payments, then invoices.stripe_charge_id), then by
 * metadata.invoice_id (a positive decimal id of an existing invoice).
 * Reads only; runs inside or outside a transaction. */
db_status stripe_event_find_invoice(db_conn *c, const stripe_event_refs *refs,
                                    stripe_event_match *out, char *err, size_t errlen);

#endif
