/* payment_record.c: recording what Stripe said about money, inside the
 * caller's transaction (payments.h "Recording outcomes"): a success lands
 * through billing.land_money, a processing intent is marked, a failure is
 * counted once per PaymentIntent with the retry schedule, and an operator
 * resumes a parked invoice. */
#include "ledgerline/payments.h"
#include "payment_charge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/config.h"
#include "ledgerline/credit.h"
#include "ledgerline/invoice_transitions.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_event.h"
#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

/* The invoice's currency and whether an attempt of ours created this
 * PaymentIntent (attempt_id, or an attempt holding the intent). */
static db_status pay_money_context(db_conn *c, const payments_money *m, char currency[8],
                                   int64_t *attempt_id, char *err, size_t errlen)
{
    char id[24], aid[24];
    const char *p[] = {db_i64(m->invoice_id, id, sizeof id), m->payment_intent,
                       db_i64(m->attempt_id, aid, sizeof aid)};
    db_status st;
    PGresult *r = db_exec(c, llq_pay_record_select_payment_attempts_1, 3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        ll_failf(err, errlen, "invoice %s does not exist", id);
        return DB_PERMANENT;
    }
    pay_copy(currency, 8, r, 0, 0);
    *attempt_id = pay_i64(r, 0, 1);
    PQclear(r);
    return DB_OK;
}

db_status payments_apply_success(db_conn *c, const payments_money *m, payments_money_result *out,
                                 char *err, size_t errlen)
{
    *out = PAYMENTS_MONEY_ALREADY;
    char id[24];
    db_i64(m->invoice_id, id, sizeof id);
    if (m->amount_cents < 0 || m->payment_intent == NULL || m->payment_intent[0] == '\0') {
        ll_failf(
            err, errlen,
            "cannot record a payment for invoice %s: no PaymentIntent id, or a negative amount",
            id);
        return DB_PERMANENT;
    }
    /* The invoice is locked first (the lock order of every money path). */
    char currency[8];
    int64_t attempt_id = 0;
    db_status st = pay_money_context(c, m, currency, &attempt_id, err, errlen);
    if (st != DB_OK)
        return st;
    if (m->currency != NULL && strcmp(m->currency, currency) != 0) {
        *out = PAYMENTS_MONEY_WRONG_CURRENCY;
        ll_failf(err, errlen, "cannot apply PaymentIntent %s: it is in %s but invoice %s is in %s",
                 m->payment_intent, m->currency, id, currency);
        return DB_OK;
    }
    char aid[24], amt[24], day[16];
    db_i64(attempt_id, aid, sizeof aid);
    db_i64(m->amount_cents, amt, sizeof amt);
    date_format(m->on, day, sizeof day);
    /* The unique PaymentIntent id is what makes money count once, however
     * many times (and by whom) its success is reported. */
    const char *p1[] = {id, m->payment_intent, currency, pay_null(m->charge), amt};
    PGresult *r = db_exec(c, llq_pay_record_with_payments_1, 5, p1, &st, err, errlen);
    if (r == NULL)
        return st;
    int fresh = PQntuples(r);
    char payment_id[24] = "";
    if (fresh > 0)
        pay_copy(payment_id, sizeof payment_id, r, 0, 0);
    PQclear(r);
    /* The attempt that created this intent is finished, whoever reported
     * it first (11.5). */
    const char *pa[] = {aid, m->payment_intent};
    st = db_command(c, llq_pay_record_update_payment_attempts_1, 2, pa, err, errlen);
    if (st != DB_OK || fresh == 0)
        return st;

    /* A dispute lost before the books knew this payment waits for it
     * (model finding 6, sql/023): the money lands as it would have before
     * the chargeback, and the dispute takes its part back below. */
    r = db_exec(c,
                "SELECT l.applied_cents, l.surplus_cents, w.waits"
                " FROM billing.dispute_waits_for($1::bigint, $4, $5) AS w(waits),"
                " LATERAL billing.land_money($1, $2, $3::date, w.waits) AS l",
                5, (const char *const[]){id, amt, day, m->payment_intent, pay_null(m->charge)}, &st,
                err, errlen);
    if (r == NULL)
        return st;
    int64_t apply = pay_i64(r, 0, 0), over = pay_i64(r, 0, 1);
    bool dispute_waits = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    char ap[24];
    db_i64(apply, ap, sizeof ap);
    const char *p3[] = {id, ap, m->payment_intent, pay_null(m->charge), payment_id};
    st = db_command(c, llq_pay_record_with_payments_2, 5, p3, err, errlen);
    if (st != DB_OK)
        return st;

    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"invoice_id\":%" PRId64 ",\"payment_id\":%s,\"amount_cents\":%" PRId64
             ",\"received_cents\":%" PRId64 ",\"overpayment_cents\":%" PRId64 "}",
             m->invoice_id, payment_id, apply, m->amount_cents, over);
    const char *p4[] = {id, attempt_id > 0 ? "invoice_autopaid" : "payment_received", meta,
                        m->payment_intent};
    st = db_command(c, llq_pay_record_select_invoices_1, 4, p4, err, errlen);
    if (st != DB_OK)
        return st;
    if (over > 0) {
        r = db_exec(c, "SELECT client_id FROM billing.invoices WHERE id = $1::bigint", 1,
                    (const char *const[]){id}, &st, err, errlen);
        if (r == NULL)
            return st;
        int64_t client_id = pay_i64(r, 0, 0);
        PQclear(r);
        char desc[256];
        snprintf(desc, sizeof desc, "Overpayment of invoice %" PRId64 " by %s", m->invoice_id,
                 m->payment_intent);
        credit_add_params cp = {.client_id = client_id,
                                .amount_cents = over,
                                .source = "overpayment",
                                .description = desc,
                                .source_invoice_id = m->invoice_id,
                                .source_payment_id = strtoll(payment_id, NULL, 10)};
        int64_t entry = 0;
        st = credit_add(c, &cp, &entry, err, errlen);
        if (st != DB_OK)
            return st;
    }
    if (dispute_waits) {
        st = db_command(c, "SELECT billing.dispute_take_back_pending($1::bigint)", 1,
                        (const char *const[]){payment_id}, err, errlen);
        if (st != DB_OK)
            return st;
    }
    *out = PAYMENTS_MONEY_APPLIED;
    return DB_OK;
}

db_status payments_mark_processing(db_conn *c, int64_t invoice_id, int64_t attempt_id,
                                   const char *payment_intent, char *err, size_t errlen)
{
    char id[24], aid[24];
    const char *p[] = {db_i64(invoice_id, id, sizeof id), payment_intent,
                       db_i64(attempt_id, aid, sizeof aid)};
    return db_command(c, llq_pay_record_with_payment_attempts, 3, p, err, errlen);
}

/* Finds (and locks) the attempt a failure belongs to, writing one for an
 * intent we did not create. *already = true when it is already counted;
 * *abandoned = true when we had given it up (11.2). */
static db_status pay_failure_attempt(db_conn *c, const payments_failure *f, int64_t *attempt_id,
                                     bool *already, bool *abandoned, char *err, size_t errlen)
{
    char inv[24], aid[24], amt[24];
    db_i64(f->invoice_id, inv, sizeof inv);
    db_i64(f->attempt_id, aid, sizeof aid);
    db_i64(f->amount_cents, amt, sizeof amt);
    const char *p[] = {aid, pay_null(f->payment_intent), inv};
    db_status st;
    PGresult *r = db_exec(c, llq_pay_record_select_payment_attempts_2, 2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *already = *abandoned = false;
    if (PQntuples(r) > 0) {
        *attempt_id = pay_i64(r, 0, 0);
        const char *status = PQgetvalue(r, 0, 1);
        *already = strcmp(status, "failed") == 0 || strcmp(status, "succeeded") == 0;
        *abandoned = strcmp(status, "abandoned") == 0;
        PQclear(r);
        return DB_OK;
    }
    PQclear(r);
    /* A failure of an intent we have no attempt for (created elsewhere and
     * read back from Stripe): written as an attempt so a second report of it
     * counts once. */
    char key[PAYMENTS_KEY_MAX];
    snprintf(key, sizeof key, "stripe:%s", f->payment_intent ? f->payment_intent : "");
    const char *p2[] = {inv, key, pay_null(f->payment_intent), amt};
    r = db_exec(c, llq_pay_record_insert_payment_attempts, 4, p2, &st, err, errlen);
    if (r == NULL)
        return st;
    /* A draft or void invoice has no attempts (rule 12.3): the failure of a
     * foreign intent for one moves no money and has nothing to land on. */
    *already = PQntuples(r) == 0;
    if (!*already)
        *attempt_id = pay_i64(r, 0, 0);
    PQclear(r);
    return DB_OK;
}

db_status payments_record_failure(db_conn *c, const payments_ctx *ctx, const payments_failure *f,
                                  bool *recorded, char *err, size_t errlen)
{
    *recorded = false;
    int64_t attempt_id = 0;
    bool already = false, abandoned = false;
    db_status st = pay_failure_attempt(c, f, &attempt_id, &already, &abandoned, err, errlen);
    if (st != DB_OK || already)
        return st;
    const char *code = f->code && f->code[0] ? f->code : "unknown";
    char inv[24], aid[24];
    db_i64(f->invoice_id, inv, sizeof inv);
    db_i64(attempt_id, aid, sizeof aid);
    const char *pa[] = {aid, code, f->message ? f->message : "", pay_null(f->payment_intent),
                        f->failed_at};
    st = db_command(c, llq_pay_record_update_payment_attempts_2, 5, pa, err, errlen);
    /* An attempt we had given up on: a newer attempt owns the invoice now. */
    if (st != DB_OK || abandoned)
        return st;

    const char *pi[] = {inv};
    PGresult *r = db_exec(c, llq_pay_record_select_invoices_2, 1, pi, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        ll_failf(err, errlen, "invoice %s does not exist", inv);
        return DB_PERMANENT;
    }
    char status[24];
    pay_copy(status, sizeof status, r, 0, 0);
    int64_t n = pay_i64(r, 0, 1) + 1;
    PQclear(r);
    /* Money already settled (paid by credit meanwhile, refunded, disputed):
     * the attempt is recorded, the invoice is not a failure. */
    if (strcmp(status, "sent") != 0 && strcmp(status, "partial") != 0 &&
        strcmp(status, "overdue") != 0 && strcmp(status, "failed") != 0)
        return DB_OK;

    bool hard = payments_is_hard_decline(code);
    bool exhausted = !hard && (size_t)n > ctx->nretry;
    char days[24], nbuf[24];
    int64_t delay = (!hard && !exhausted) ? ctx->retry_days[n - 1] : 0;
    db_i64(delay, days, sizeof days);
    db_i64(n, nbuf, sizeof nbuf);
    const char *next_action = hard        ? "payment_retry_skipped"
                              : exhausted ? "payment_retry_exhausted"
                                          : "payment_retry_scheduled";
    itr_failure t = {.invoice_id = inv,
                     .status = exhausted ? "overdue" : "failed",
                     .failed_at = f->failed_at,
                     .message = f->message ? f->message : "",
                     .code = code,
                     .retry_count = nbuf,
                     .delay_days = (hard || exhausted) ? NULL : days,
                     .payment_intent = pay_null(f->payment_intent),
                     .attempt_id = aid,
                     .next_action = next_action,
                     .hard = hard};
    st = itr_payment_failed(c, &t, err, errlen);
    if (st == DB_OK)
        *recorded = true;
    if (st == DB_OK && ctx->metrics != NULL)
        metrics_counter_add(ctx->metrics, "billing_payment_failures_total", 1, "code",
                            payments_failure_code_label(code), NULL);
    return st;
}

db_status payments_resume(db_conn *c, int64_t invoice_id, const char *by, char *err, size_t errlen)
{
    char id[24];
    const char *p[] = {db_i64(invoice_id, id, sizeof id), by};
    db_status st;
    PGresult *r = db_exec(c, llq_pay_record_with_invoices, 2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        ll_failf(err, errlen,
                 "cannot resume invoice %s: its autopay is not needs_attention (only an "
                 "invoice parked by an idempotency conflict can be resumed)",
                 id);
        return DB_PERMANENT;
    }
    return DB_OK;
}
