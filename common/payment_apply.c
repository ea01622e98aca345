/* payment_apply.c: step 3 of a charge (payments.h): applies Stripe's answer
 * to the attempt and the invoice in one transaction, keeps an attempt open
 * on an answer that decides nothing, abandons one Stripe has no record of,
 * and resolves an unanswered attempt by asking Stripe (rule 11.2). */
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

/* Whether the row's first column (an attempt's status) says the attempt is
 * still open: processing, or waiting after a transient error. */
static bool pay_attempt_open(const PGresult *r)
{
    return PQntuples(r) > 0 && (strcmp(PQgetvalue(r, 0, 0), "processing") == 0 ||
                                strcmp(PQgetvalue(r, 0, 0), "transient_error") == 0);
}

/* An answer that changes nothing for the customer: the attempt stays
 * unfinished (transient_error, with why), the invoice's autopay waits for
 * the next run, or for an operator after an idempotency conflict. */
static db_status pay_keep_open(db_conn *c, const char *aid, const char *code, const char *message,
                               bool park, char *err, size_t errlen)
{
    const char *p[] = {aid, pay_null(code), message, park ? "true" : "false"};
    return db_command(c, llq_pay_apply_with_payment_attempts_1, 4, p, err, errlen);
}

db_status pay_apply(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_apply_arg *a = arg;
    pay_job *j = a->job;
    const stripe_result *res = a->res;
    char aid[24], day[16], at[40], code[96];
    db_i64(j->attempt_id, aid, sizeof aid);
    date_format(a->on, day, sizeof day);
    snprintf(at, sizeof at, "%sT00:00:00Z", day);
    const char *p[] = {aid};
    db_status st;
    /* Invoice, then attempt: the lock order of every money path. */
    PGresult *r = db_exec(c, llq_pay_apply_select_invoices_1, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    bool open = pay_attempt_open(r);
    bool abandoned = PQntuples(r) > 0 && strcmp(PQgetvalue(r, 0, 0), "abandoned") == 0;
    PQclear(r);
    if (!open && !abandoned) {
        a->stats->skipped++; /* a webhook got there first (11.5) */
        return DB_OK;
    }
    const char *pi = pay_null(res->object_id);
    payments_answer ans = payments_answer_of(res, code, sizeof code);
    /* Given up on by a lookup that ran while this call was in flight: the
     * money Stripe took still lands (rule 11.1: every PaymentIntent's money
     * is on the books), a decline is still recorded on the attempt; nothing
     * else reopens it. */
    if (abandoned && ans != PAYMENTS_ANSWER_PAID && ans != PAYMENTS_ANSWER_DECLINED) {
        a->stats->skipped++;
        return DB_OK;
    }
    switch (ans) {
    case PAYMENTS_ANSWER_TRANSIENT:
        a->stats->transient++;
        return pay_keep_open(c, aid, NULL, res->message, false, err, errlen);
    case PAYMENTS_ANSWER_OUR_FAULT:
        /* Not the customer's: no failure, no retry counted, no e-mail. */
        a->stats->our_fault++;
        log_msg(LL_LOG_ERROR, "Stripe refused our request; the customer is not told", "attempt_id",
                aid, "idempotency_key", j->key, "code", code, "stripe_message", res->message,
                "request_id", res->request_id, NULL);
        if (a->ctx->metrics != NULL)
            metrics_counter_add(a->ctx->metrics, "billing_stripe_integration_errors_total", 1,
                                "code", res->http_status > 0 ? code : "no_status", NULL);
        return pay_keep_open(c, aid, code, res->message, false, err, errlen);
    case PAYMENTS_ANSWER_CONFLICT: {
        a->stats->parked++;
        log_msg(LL_LOG_ERROR, "idempotency key reused with other parameters; invoice parked",
                "attempt_id", aid, "idempotency_key", j->key, "stripe_message", res->message, NULL);
        if (a->ctx->metrics != NULL)
            metrics_counter_add(a->ctx->metrics, "billing_stripe_integration_errors_total", 1,
                                "code", code, NULL);
        st = pay_keep_open(c, aid, code, res->message, true, err, errlen);
        if (st != DB_OK)
            return st;
        const char *pc[] = {aid, res->message};
        return db_command(c, llq_pay_apply_audit_payment_attempt_conflict, 2, pc, err, errlen);
    }
    case PAYMENTS_ANSWER_PAID: {
        a->stats->charged++;
        int64_t amount = stripe_json_i64(res->body, "amount_received", -1);
        payments_money m = {.invoice_id = j->invoice_id,
                            .attempt_id = j->attempt_id,
                            .payment_intent = pi,
                            .charge = pay_null(res->latest_charge),
                            .amount_cents = amount >= 0 ? amount : res->amount,
                            .currency = stripe_json_str(res->body, "currency"),
                            .on = a->on};
        payments_money_result mr;
        st = payments_apply_success(c, &m, &mr, err, errlen);
        if (st == DB_OK && mr == PAYMENTS_MONEY_WRONG_CURRENCY)
            return DB_PERMANENT; /* our own intent in another currency: a bug, kept open */
        if (st == DB_OK)
            a->stats->succeeded++;
        return st;
    }
    case PAYMENTS_ANSWER_PROCESSING:
        a->stats->charged++;
        a->stats->processing++;
        return payments_mark_processing(c, j->invoice_id, j->attempt_id, pi, err, errlen);
    case PAYMENTS_ANSWER_DECLINED: break;
    }
    a->stats->charged++;
    /* A decline, or an intent that cannot go on without the customer. */
    payments_failure f = {.invoice_id = j->invoice_id,
                          .attempt_id = j->attempt_id,
                          .payment_intent = pi,
                          .code = code,
                          .message = res->message[0] ? res->message : res->object_status,
                          .failed_at = at};
    bool recorded = false;
    st = payments_record_failure(c, a->ctx, &f, &recorded, err, errlen);
    if (st == DB_OK && recorded)
        a->stats->failed++;
    return st;
}

/* Nothing at Stripe for the attempt (11.2): closed as abandoned (no
 * customer failure); the invoice's autopay waits for a new attempt, or is
 * cancelled when autopay is now off (11.3). Returns whether a new attempt
 * may start now. */
static db_status pay_abandon(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_apply_arg *a = arg;
    char aid[24];
    const char *p[] = {db_i64(a->job->attempt_id, aid, sizeof aid)};
    db_status st;
    PGresult *r = db_exec(c, llq_pay_apply_select_invoices_2, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    bool open = pay_attempt_open(r);
    bool wanted = open && pay_bool(r, 0, 1);
    char inv[24];
    pay_copy(inv, sizeof inv, r, 0, 2);
    PQclear(r);
    if (!open)
        return DB_OK;
    a->stats->abandoned++;
    st = db_command(c, llq_pay_apply_with_payment_attempts_2, 1, p, err, errlen);
    if (st != DB_OK)
        return st;
    if (!wanted)
        return pay_cancel(c, inv, err, errlen);
    return db_command(c, llq_pay_apply_update_invoices, 1, (const char *const[]){inv}, err, errlen);
}

/* Resolves one attempt by asking Stripe (outside any transaction), then
 * applies what it found as if Stripe had answered, or abandons it. */
db_status pay_lookup_one(payments_ctx *ctx, pay_job *j, civil_date on, payments_stats *stats,
                         bool *abandoned, char *err, size_t errlen)
{
    payments_lookup l = {.since_unix = j->since_unix};
    snprintf(l.attempt_key, sizeof l.attempt_key, "%s", j->key);
    snprintf(l.payment_intent, sizeof l.payment_intent, "%s", j->payment_intent);
    snprintf(l.customer, sizeof l.customer, "%s", j->customer);
    stripe_result res;
    char lerr[384];
    int found = payments_lookup_attempt(ctx->stripe, &l, &res, lerr, sizeof lerr);
    char id[24];
    log_msg(found < 0 ? LL_LOG_WARN : LL_LOG_INFO, "unanswered attempt looked up at Stripe",
            "invoice_id", db_i64(j->invoice_id, id, sizeof id), "idempotency_key", j->key, "found",
            found > 0    ? res.object_id
            : found == 0 ? "none"
                         : "cannot tell",
            "error", found < 0 ? lerr : "", NULL);
    if (found < 0)
        return DB_OK; /* the next run asks again; nothing is sent meanwhile */
    pay_apply_arg aa = {.ctx = ctx, .on = on, .job = j, .res = &res, .stats = stats};
    db_status st;
    if (found > 0) {
        if (strcmp(res.object_status, "processing") == 0 && j->payment_intent[0] != '\0')
            st = DB_OK; /* still processing: its webhook decides */
        else
            st = db_run_tx(ctx->db, pay_apply, &aa, err, errlen);
        stripe_result_free(&res);
        if (st == DB_PERMANENT) {
            log_msg(LL_LOG_ERROR, "looked-up PaymentIntent could not be recorded", "invoice_id", id,
                    "error", err, NULL);
            st = DB_OK; /* the attempt stays unfinished: the next run looks again */
        }
        return st;
    }
    int64_t before = stats->abandoned;
    st = db_run_tx(ctx->db, pay_abandon, &aa, err, errlen);
    *abandoned = st == DB_OK && stats->abandoned > before;
    return st;
}
