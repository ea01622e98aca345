/* credit.h: the append-only credit ledger (BILLING_RULES section 4).
 *
 * A client's balance is credits minus debits, computed from the ledger; it is
 * never negative (the database refuses a debit above the balance, also when
 * two race: the debit trigger locks the client row). Credits are used oldest
 * first; an expiring credit's unused remainder is what is left of it after
 * the debits were allocated to credits in that order.
 *
 * Every function here runs inside the caller's open transaction (so a charge
 * can apply credit and record its attempt atomically) and writes one audit
 * event per ledger entry (credit_created, credit_applied, credit_expired),
 * recording its id in the entry.
 */
#ifndef LEDGERLINE_CREDIT_H
#define LEDGERLINE_CREDIT_H

#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"

typedef struct {
    int64_t client_id;
    int64_t amount_cents; /* > 0 */
    const char *source;   /* overpayment, refund, goodwill, promotional, correction,
                           * credit_note */
    const char *description;
    const char *reason;        /* required for goodwill and correction */
    const char *approved_by;   /* required for goodwill and correction */
    const char *created_by;    /* NULL = system */
    int64_t source_invoice_id; /* 0 = none (overpayment: the invoice overpaid) */
    int64_t source_payment_id; /* 0 = none (overpayment: the payment whose excess it is,
                                * taken back first by its refund: rule 11.1) */
    bool has_expiry;
    civil_date expires_at; /* last day the credit can be used */
} credit_add_params;

/* Adds a credit entry (and its credit_created audit event). Refusals (unknown
 * client, missing reason/approver, bad amount) are DB_PERMANENT with err
 * saying what to fix. */
db_status credit_add(db_conn *c, const credit_add_params *p, int64_t *entry_id, char *err,
                     size_t errlen);

/* The client's balance from the ledger, and its currency. */
db_status credit_balance(db_conn *c, int64_t client_id, int64_t *balance_cents, char currency[4],
                         char *err, size_t errlen);

/* Applies the client's available credit to an invoice's balance due (total -
 * amount_paid): exactly max_cents when max_cents > 0 (refused, writing
 * nothing, when that is more than the balance or the balance due: rule 4),
 * else as much as both allow: one debit entry (use invoice_payment when it
 * settles the invoice, else partial_payment), one payments row (source
 * credit), the invoice through billing.land_money (sql/009: a failed
 * invoice keeps its retry cycle, rule 11.7), audit credit_applied, and
 * invoice.paid through the outbox when the invoice became paid. Locks the invoice row. Credits that
 * expired before `on` are not available. *applied gets the amount (0 when
 * there is no balance or nothing due). actor NULL = system. */
db_status credit_apply_to_invoice(db_conn *c, int64_t invoice_id, int64_t max_cents, civil_date on,
                                  const char *actor, int64_t *applied, char *err, size_t errlen);

/* Writes one `expired` debit per credit whose expiry is before `as_of` and
 * that still has an unused remainder (audit credit_expired). firm_id 0 = all
 * firms. Idempotent: a second run finds nothing left to expire. */
db_status credit_expire(db_conn *c, civil_date as_of, int64_t firm_id, int64_t *entries,
                        int64_t *amount_cents, char *err, size_t errlen);

#endif
