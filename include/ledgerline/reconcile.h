/* reconcile.h: the books against Stripe (BILLING_RULES rule 11.14,
 * CONTRACT "billingctl reconcile").
 *
 * For a window of creation dates, pages through Stripe's lists of
 * PaymentIntents, refunds and disputes (created[gte]/created[lte],
 * starting_after) and compares each object that is ours with the books;
 * then every object of the books in the window that Stripe's lists did not
 * show is read by id, so an object created just outside the window is not
 * a difference and one Stripe does not hold is. Ours means: a PaymentIntent
 * whose metadata[firm_id] names one of our firms, or whose charge belongs
 * to a payment in the books; a refund or dispute of a charge or intent in
 * the books (or already recorded by its id).
 *
 * Credit notes with a refund part (in the window by their creation): the
 * refunds Stripe holds with their metadata[credit_note_id], on every charge
 * of the invoice, must add up to the note's refunded_cents (amount_differs
 * otherwise, object "credit_note", the legal number as the id).
 *
 * Kinds of difference: missing_in_books (Stripe holds money the books do
 * not), missing_at_stripe (the books hold what Stripe does not),
 * amount_differs, currency_differs, status_differs (e.g. Stripe says a
 * refund failed, the books still count it; an attempt of ours failed in
 * the books but succeeded at Stripe).
 */
#ifndef LEDGERLINE_RECONCILE_H
#define LEDGERLINE_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/stripe.h"

typedef enum {
    RECON_MISSING_IN_BOOKS = 0,
    RECON_MISSING_AT_STRIPE,
    RECON_AMOUNT_DIFFERS,
    RECON_CURRENCY_DIFFERS,
    RECON_STATUS_DIFFERS
} recon_kind;

const char *recon_kind_name(recon_kind k);

typedef struct {
    recon_kind kind;
    const char *object;         /* "payment_intent", "refund", "dispute", "credit_note" */
    const char *stripe_id;      /* a credit note: its legal number */
    int64_t invoice_id;         /* 0 when not known */
    int64_t firm_id;            /* 0 when not known */
    int64_t books_amount;       /* -1 when the books have none */
    int64_t stripe_amount;      /* -1 when Stripe has none */
    const char *books_currency; /* "" when none */
    const char *stripe_currency;
    const char *books_status; /* "" when none */
    const char *stripe_status;
} recon_diff;

typedef void (*recon_fn)(const recon_diff *d, void *arg);

typedef struct {
    int64_t payment_intents; /* of ours, seen at Stripe */
    int64_t refunds;
    int64_t disputes;
    int64_t credit_notes; /* with a refund part, checked against Stripe's refunds */
    int64_t differences;
} recon_stats;

/* Compares [from 00:00:00Z, to 23:59:59Z]; firm_id 0 = every firm. Calls fn
 * for each difference. DB_OK when the comparison ran to the end (agreeing
 * or not), else the failure (err: Stripe or the database could not be
 * read; nothing is concluded). */
db_status reconcile_run(db_conn *c, stripe_client *sc, civil_date from, civil_date to,
                        int64_t firm_id, recon_fn fn, void *arg, recon_stats *stats, char *err,
                        size_t errlen);

#endif
