/* payment_prepare.c: step 1 of a charge (payments.h): for one invoice,
 * under its row lock, decides whether to charge, replay an unfinished
 * attempt with its own key, look it up at Stripe (rules 11.2-11.4) or
 * cancel autopay, and writes the new attempt. */
#include "ledgerline/payments.h"
#include "payment_charge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/config.h"
#include "ledgerline/credit.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_event.h"
#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

/* The invoice's latest unfinished attempt, and what to do with it (rules
 * 11.2-11.4): replayed with its own key and parameters only while Stripe
 * still knows the key (under 23 h old, by the later of the clock and the
 * run's business date), autopay is still on and the client's card is the
 * one it charged, and it did not end in an idempotency conflict; any
 * other is looked up at Stripe, never sent again. A processing intent
 * waits for its webhook (looked up by id once it is a day old). Returns 1
 * when the attempt decides (job set or nothing to do), 0 when there is
 * none, -1 on a database error. */
static int pay_unfinished(db_conn *c, pay_prepare_arg *a, const char *inv, bool wanted,
                          db_status *st, char *err, size_t errlen)
{
    pay_job *j = a->job;
    char day[16];
    date_format(a->on, day, sizeof day);
    const char *p[] = {inv, day, pay_null(j->pm)};
    PGresult *r = db_exec(c, llq_pay_prepare_select_payment_attempts_1, 3, p, st, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    bool has_pi = PQgetvalue(r, 0, 3)[0] != '\0';
    bool processing = strcmp(PQgetvalue(r, 0, 7), "processing") == 0;
    bool stale = pay_bool(r, 0, 9), conflict = pay_bool(r, 0, 10), same_pm = pay_bool(r, 0, 11);
    j->attempt_id = pay_i64(r, 0, 0);
    pay_copy(j->key, sizeof j->key, r, 0, 1);
    j->amount = pay_i64(r, 0, 2);
    pay_copy(j->payment_intent, sizeof j->payment_intent, r, 0, 3);
    j->firm_id = pay_i64(r, 0, 8);
    j->since_unix = pay_i64(r, 0, 12) - 600; /* clock skew margin */
    if (has_pi && processing && !stale) {
        a->stats->skipped++; /* a processing PaymentIntent: its webhook decides */
        PQclear(r);
        return 1;
    }
    if (!has_pi && wanted && !stale && same_pm && !conflict && PQgetvalue(r, 0, 4)[0] != '\0') {
        j->what = JOB_CALL; /* replay: the same key, the same parameters */
        pay_copy(j->pm, sizeof j->pm, r, 0, 4);
        pay_copy(j->customer, sizeof j->customer, r, 0, 5);
        pay_copy(j->currency, sizeof j->currency, r, 0, 6);
        PQclear(r);
        *st = db_command(c, llq_pay_prepare_update_invoices, 1, p, err, errlen);
        return *st == DB_OK ? 1 : -1;
    }
    j->what = JOB_LOOKUP;
    pay_copy(j->customer, sizeof j->customer, r, 0, 5);
    PQclear(r);
    return 1;
}

/* Autopay turned off: the pending autopay is cancelled in any state
 * (rule 11.3; an unanswered attempt is looked up first). */
db_status pay_cancel(db_conn *c, const char *inv, char *err, size_t errlen)
{
    const char *p[] = {inv};
    return db_command(c, llq_pay_prepare_with_invoices, 1, p, err, errlen);
}

/* The autopay states an opt-out cancels. */
static bool pay_pending(const char *autopay_status)
{
    return strcmp(autopay_status, "scheduled") == 0 || strcmp(autopay_status, "processing") == 0 ||
           strcmp(autopay_status, "failed") == 0 || strcmp(autopay_status, "needs_attention") == 0;
}

db_status pay_prepare(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_prepare_arg *a = arg;
    pay_job *j = a->job;
    char inv[24], day[16];
    db_i64(j->invoice_id, inv, sizeof inv);
    date_format(a->on, day, sizeof day);
    db_status st;
    /* The invoice row is locked first: two workers preparing the same
     * invoice take turns, and the second sees the first one's attempt
     * (below) instead of starting another with a new key. */
    const char *p[] = {inv, day, payments_kind_names[a->kind]};
    PGresult *r = db_exec(c, llq_pay_prepare_select_invoices, 3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        a->stats->skipped++;
        return DB_OK;
    }
    j->firm_id = pay_i64(r, 0, 0);
    int64_t due = pay_i64(r, 0, 1);
    pay_copy(j->currency, sizeof j->currency, r, 0, 2);
    bool wanted = pay_bool(r, 0, 3);
    char autopay_status[24];
    pay_copy(autopay_status, sizeof autopay_status, r, 0, 4);
    pay_copy(j->pm, sizeof j->pm, r, 0, 5);
    pay_copy(j->customer, sizeof j->customer, r, 0, 6);
    bool due_now = pay_bool(r, 0, 7);
    bool same_currency = pay_bool(r, 0, 8);
    PQclear(r);
    if (strcmp(autopay_status, "needs_attention") == 0) {
        a->stats->skipped++; /* parked until an operator resumes it (11.6) */
        return DB_OK;
    }
    if (a->only_due && !due_now) {
        /* An invoice.issued event read late (a backlog after an outage) must
         * not touch an invoice the ticks own: its unfinished attempt may be
         * another worker's call in flight, which a lookup now would find
         * missing and abandon. */
        a->stats->skipped++;
        return DB_OK;
    }
    int u = pay_unfinished(c, a, inv, wanted, &st, err, errlen);
    if (u != 0)
        return u < 0 ? st : DB_OK;
    if (!wanted) {
        if (!pay_pending(autopay_status)) {
            a->stats->skipped++;
            return DB_OK;
        }
        a->stats->cancelled++;
        return pay_cancel(c, inv, err, errlen);
    }
    if (!due_now || due <= 0) {
        a->stats->skipped++;
        return DB_OK;
    }

    /* Credit first (section 4); only the remainder is charged. */
    /* The ledger is kept in the client's currency: an invoice in another
     * currency is charged in full. */
    int64_t applied = 0;
    if (same_currency)
        st = credit_apply_to_invoice(c, j->invoice_id, 0, a->on, NULL, &applied, err, errlen);
    if (st != DB_OK)
        return st;
    due -= applied;
    if (due <= 0) {
        a->stats->credit_paid++;
        return DB_OK; /* billing.land_money closed the autopay */
    }

    r = db_exec(c, llq_pay_prepare_select_payment_attempts_2, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int64_t attempt_no = pay_i64(r, 0, 0);
    PQclear(r);
    snprintf(j->key, sizeof j->key, "%s:%s:%" PRId64, payments_kind_names[a->kind], inv,
             attempt_no);
    j->amount = due;
    /* A new attempt charges the client's card of today (11.4). */
    char amt[24], no[24];
    const char *pi[] = {inv,
                        db_i64(attempt_no, no, sizeof no),
                        payments_kind_names[a->kind],
                        j->key,
                        db_i64(due, amt, sizeof amt),
                        pay_null(j->pm),
                        pay_null(j->customer),
                        j->currency};
    r = db_exec(c, llq_pay_prepare_with_payment_attempts, 8, pi, &st, err, errlen);
    if (r == NULL)
        return st;
    j->attempt_id = pay_i64(r, 0, 0);
    PQclear(r);
    if (j->pm[0] == '\0') {
        /* Nothing to charge with: a failure, without calling Stripe. */
        char at[40];
        snprintf(at, sizeof at, "%sT00:00:00Z", day);
        payments_failure f = {.invoice_id = j->invoice_id,
                              .attempt_id = j->attempt_id,
                              .code = "payment_method_missing",
                              .message = "autopay is enabled but no payment method is stored",
                              .failed_at = at};
        bool recorded = false;
        st = payments_record_failure(c, a->ctx, &f, &recorded, err, errlen);
        if (st == DB_OK)
            a->stats->failed++;
        return st;
    }
    j->what = JOB_CALL;
    return DB_OK;
}
