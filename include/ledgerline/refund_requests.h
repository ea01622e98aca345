/* refund_requests.h: refunds the operators ask of Stripe (`billingctl
 * refund`, `credit-note create --refund`): what the invoice holds and the
 * audit event refund_requested (common/refund_requests.c). Recording the
 * refund itself is the dispute worker's (charge.refunded). */
#ifndef LEDGERLINE_REFUND_REQUESTS_H
#define LEDGERLINE_REFUND_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/stripe.h"

typedef struct {
    int64_t firm_id, amount_paid, refunded, total;
    char status[16], currency[8];
    char pi[STRIPE_ID_MAX], charge[STRIPE_ID_MAX]; /* "" when none */
} refund_invoice;

/* The invoice's firm, status, amounts and the PaymentIntent (or charge)
 * that paid it, in a transaction of its own. DB_PERMANENT when there is no
 * such invoice. */
db_status refund_invoice_read(db_conn *c, int64_t invoice_id, refund_invoice *out, char *err,
                              size_t errlen);

typedef struct {
    int64_t firm_id, invoice_id, amount;
    const char *actor, *refund_id, *idempotency_key;
    const char *stripe_status; /* "" or NULL: none */
    const char *reason;        /* NULL: not recorded */
    const char *currency;      /* NULL: not recorded */
    int64_t credit_note_id;    /* 0: none */
} refund_request;

/* The audit event refund_requested, once per Stripe refund id, in a
 * transaction of its own; *audited (may be NULL): whether this call wrote
 * it. */
db_status refund_request_audit(db_conn *c, const refund_request *r, bool *audited, char *err,
                               size_t errlen);

#endif
