/* payment_events.h: applying the stripe.payments events (the exact bodies
 * Stripe sent) to invoices, shared by the autopay worker (successes and
 * processing) and the retry worker (failures).
 *
 * Each event is applied in one transaction with its Stripe event id recorded
 * for the worker's group, so a duplicate event does nothing; below that,
 * money counts once per PaymentIntent (payments) and a failure once per
 * PaymentIntent (payment attempts), however many events report it.
 */
#ifndef LEDGERLINE_PAYMENT_EVENTS_H
#define LEDGERLINE_PAYMENT_EVENTS_H

#include "ledgerline/kafka.h"
#include "ledgerline/payments.h"

/* The worker process skeleton (worker.h) is its callers' business: the
 * handlers only pass it through, so it stays an opaque type here. */
typedef struct worker worker;

typedef enum {
    PAYMENT_EVENT_OTHER = 0,
    PAYMENT_EVENT_SUCCESS = 1,    /* payment_intent.succeeded, invoice.payment_succeeded */
    PAYMENT_EVENT_PROCESSING = 2, /* payment_intent.processing */
    PAYMENT_EVENT_FAILURE = 4     /* payment_intent.payment_failed, invoice.payment_failed */
} payment_event_kind;

payment_event_kind payment_event_kind_of(const char *type);

/* Handles one stripe.payments message when its kind is in `kinds` (a mask of
 * payment_event_kind); other kinds are acknowledged untouched (another
 * worker kind handles them). An event that matches no invoice is kept: a
 * WARNING audit event is committed and the message goes to the dlq. */
kafka_result payment_events_handle(worker *w, const payments_ctx *ctx, unsigned kinds,
                                   const kafka_msg *m, char *err, size_t errlen);

/* Handles one autopay or retry tick shard (payments_run_tick): several
 * transactions made idempotent by the invoices' own state, so the tick's key
 * is recorded once all of them are done; outcomes are added to the counter
 * family `counter`. A tick of the other kind is dead-lettered. */
kafka_result payment_tick_handle(worker *w, payments_ctx *ctx, payments_kind kind,
                                 const char *counter, const kafka_msg *m, char *err, size_t errlen);

#endif
