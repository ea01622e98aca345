/* payment_run.c: step 2 and the whole of a charge run (payments.h): a
 * stream of Stripe calls under the rate cap, each invoice prepared just
 * before its call and applied as soon as its answer arrives, transient
 * answers replayed with the same key, lookups after the stream. */
#include "ledgerline/payments.h"
#include "payment_charge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/config.h"
#include "ledgerline/credit.h"
#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_event.h"

/* Calls Stripe again for the jobs todo_in[0..m) whose first answer was
 * transient, up to ctx->transient_tries calls in all with the same key
 * (backing off, longer after a rate limit). */
static int pay_call_again(payments_ctx *ctx, stripe_call *calls, const size_t *todo_in, size_t m,
                          bool limited, char *err, size_t errlen)
{
    size_t *todo = malloc((m ? m : 1) * sizeof *todo);
    stripe_call *round = malloc((m ? m : 1) * sizeof *round);
    if (todo == NULL || round == NULL) {
        free(todo);
        free(round);
        return ll_failf(err, errlen, "could not call Stripe again: out of memory");
    }
    memcpy(todo, todo_in, m * sizeof *todo);
    int tries = ctx->transient_tries > 0 ? ctx->transient_tries : 3;
    int backoff = ctx->backoff_ms > 0 ? ctx->backoff_ms : 500;
    int rc = 0;
    for (int t = 1; m > 0 && rc == 0 && t < tries; t++) {
        if (!shutdown_sleep_ms(limited ? backoff * 4 << (t - 1) : backoff << (t - 1)))
            break; /* stopping: what is left is replayed by the next tick */
        for (size_t k = 0; k < m; k++) {
            round[k] = calls[todo[k]];
            memset(&round[k].result, 0, sizeof round[k].result);
        }
        rc = stripe_perform_many(ctx->stripe, round, m, err, errlen);
        size_t left = 0;
        limited = false;
        for (size_t k = 0; k < m; k++) {
            stripe_result_free(&calls[todo[k]].result);
            calls[todo[k]].result = round[k].result;
            calls[todo[k]].latency_us = round[k].latency_us;
            if (stripe_result_transient(&round[k].result) && t + 1 < tries) {
                limited |= round[k].result.outcome == STRIPE_RATE_LIMITED;
                todo[left++] = todo[k];
            }
        }
        m = left;
    }
    free(todo);
    free(round);
    return rc;
}

/* One payments_charge run: the invoices are prepared one at a time just
 * before their call starts (stripe_perform_stream asks when the cap allows
 * one more), and each answer is applied as soon as it arrives, so the
 * database work of one invoice overlaps the calls of the others in flight
 * and throughput is bound by the rate cap, not by prepare + call + apply in
 * turn. Transient answers are set aside and replayed after the stream. */
typedef struct {
    payments_ctx *ctx;
    payments_kind kind;
    civil_date on;
    payments_stats *stats;
    const int64_t *ids;
    size_t n, next; /* next invoice to prepare */
    pay_job *jobs;
    stripe_call *calls;
    size_t *again; /* jobs whose first answer was transient */
    size_t nagain;
    size_t *lookups; /* jobs resolved by asking Stripe (11.2), after the stream */
    size_t nlookups;
    bool limited;  /* one of them was rate limited */
    bool only_due; /* payments_charge_issued */
    db_status st;  /* first transient failure: stops the run */
    char *err;
    size_t errlen;
} pay_run;

static void pay_apply_one(pay_run *r, size_t i)
{
    pay_job *j = &r->jobs[i];
    stripe_call *call = &r->calls[i];
    pay_apply_arg aa = {
        .ctx = r->ctx, .on = r->on, .job = j, .res = &call->result, .stats = r->stats};
    db_status st = db_run_tx(r->ctx->db, pay_apply, &aa, r->err, r->errlen);
    char id[24];
    log_msg(st == DB_OK ? LL_LOG_INFO : LL_LOG_ERROR, "charge answered", "invoice_id",
            db_i64(j->invoice_id, id, sizeof id), "idempotency_key", j->key, "outcome",
            stripe_outcome_name(call->result.outcome), "payment_intent", call->result.object_id,
            "stripe_status", call->result.object_status, "decline_code", call->result.decline_code,
            "request_id", call->result.request_id, NULL);
    if (st == DB_PERMANENT) {
        log_msg(LL_LOG_ERROR, "charge answer could not be recorded", "invoice_id", id, "error",
                r->err, NULL);
        st = DB_OK; /* the attempt stays open and is replayed with its key */
    }
    if (st != DB_OK && r->st == DB_OK)
        r->st = st;
    stripe_result_free(&call->result);
}

/* Step 1 for the next invoice that needs a call; NULL when none is left
 * (or the database failed: what is prepared is still called and applied). */
static stripe_call *pay_run_next(void *arg, bool *finished)
{
    pay_run *r = arg;
    while (r->st == DB_OK && r->next < r->n) {
        size_t i = r->next++;
        pay_job *j = &r->jobs[i];
        j->invoice_id = r->ids[i];
        r->stats->considered++;
        pay_prepare_arg pa = {.ctx = r->ctx,
                              .kind = r->kind,
                              .on = r->on,
                              .job = j,
                              .stats = r->stats,
                              .only_due = r->only_due};
        db_status st = db_run_tx(r->ctx->db, pay_prepare, &pa, r->err, r->errlen);
        if (st == DB_PERMANENT) {
            /* One invoice the database refuses must not block the others. */
            char id[24];
            log_msg(LL_LOG_ERROR, "invoice cannot be charged", "invoice_id",
                    db_i64(j->invoice_id, id, sizeof id), "error", r->err, NULL);
            j->what = JOB_NONE;
            continue;
        }
        if (st != DB_OK) {
            r->st = st;
            break;
        }
        if (j->what == JOB_LOOKUP)
            r->lookups[r->nlookups++] = i;
        if (j->what != JOB_CALL)
            continue;
        j->form = stripe_form_payment_intent(j->amount, j->currency, j->customer, j->pm,
                                             j->invoice_id, j->firm_id, j->key);
        if (j->form == NULL) {
            ll_failf(r->err, r->errlen,
                     "could not build the charge of invoice %" PRId64 ": out of memory",
                     j->invoice_id);
            r->st = DB_TRANSIENT;
            break;
        }
        r->calls[i] = (stripe_call){.method = "POST",
                                    .path = "/v1/payment_intents",
                                    .form = j->form,
                                    .idempotency_key = j->key};
        return &r->calls[i];
    }
    *finished = true;
    return NULL;
}

/* Step 3 as each answer arrives (transient ones wait for the replays). */
static void pay_run_done(stripe_call *call, void *arg)
{
    pay_run *r = arg;
    size_t i = (size_t)(call - r->calls);
    int tries = r->ctx->transient_tries > 0 ? r->ctx->transient_tries : 3;
    if (stripe_result_transient(&call->result) && tries > 1) {
        r->limited |= call->result.outcome == STRIPE_RATE_LIMITED;
        r->again[r->nagain++] = i;
        return;
    }
    if (r->st != DB_OK)
        return; /* the attempt stays open and is replayed with its key */
    pay_apply_one(r, i);
}

/* Step 1-3 for ids; lookups (11.2) after the stream, one at a time (they
 * are rare), and an invoice whose attempt was abandoned is prepared once
 * more so its new attempt starts in the same run (again = false then). */
static db_status pay_charge_run(payments_ctx *ctx, payments_kind kind, const int64_t *ids, size_t n,
                                civil_date on, payments_stats *stats, bool again, bool only_due,
                                char *err, size_t errlen)
{
    if (n == 0)
        return DB_OK;
    pay_run r = {.ctx = ctx,
                 .kind = kind,
                 .on = on,
                 .stats = stats,
                 .ids = ids,
                 .n = n,
                 .only_due = only_due,
                 .st = DB_OK,
                 .err = err,
                 .errlen = errlen};
    r.jobs = calloc(n, sizeof *r.jobs);
    r.calls = calloc(n, sizeof *r.calls);
    r.again = calloc(n, sizeof *r.again);
    r.lookups = calloc(n, sizeof *r.lookups);
    int64_t *fresh = calloc(n, sizeof *fresh);
    if (r.jobs == NULL || r.calls == NULL || r.again == NULL || r.lookups == NULL ||
        fresh == NULL) {
        free(r.jobs);
        free(r.calls);
        free(r.again);
        free(r.lookups);
        free(fresh);
        ll_failf(err, errlen, "could not start the charge run: out of memory");
        return DB_TRANSIENT;
    }
    /* The stream's own err buffer: a database message in err must survive. */
    char serr[256];
    if (stripe_perform_stream(ctx->stripe, pay_run_next, pay_run_done, &r, serr, sizeof serr) !=
        0) {
        if (r.st == DB_OK)
            ll_failf(err, errlen, "%s", serr); /* already says what failed */

        r.st = DB_TRANSIENT;
    }
    if (r.st == DB_OK && r.nagain > 0) {
        if (pay_call_again(ctx, r.calls, r.again, r.nagain, r.limited, err, errlen) != 0)
            r.st = DB_TRANSIENT;
        for (size_t k = 0; k < r.nagain && r.st == DB_OK; k++)
            pay_apply_one(&r, r.again[k]);
    }
    size_t nfresh = 0;
    for (size_t k = 0; k < r.nlookups && r.st == DB_OK && !shutdown_requested(); k++) {
        pay_job *j = &r.jobs[r.lookups[k]];
        bool abandoned = false;
        r.st = pay_lookup_one(ctx, j, on, stats, &abandoned, err, errlen);
        if (abandoned)
            fresh[nfresh++] = j->invoice_id;
    }
    for (size_t i = 0; i < n; i++) {
        stripe_result_free(&r.calls[i].result);
        stripe_form_free(r.jobs[i].form);
    }
    free(r.jobs);
    free(r.calls);
    free(r.again);
    free(r.lookups);
    if (r.st == DB_OK && again && nfresh > 0)
        r.st = pay_charge_run(ctx, kind, fresh, nfresh, on, stats, false, only_due, err, errlen);
    free(fresh);
    return r.st;
}

db_status payments_charge(payments_ctx *ctx, payments_kind kind, const int64_t *ids, size_t n,
                          civil_date on, payments_stats *stats, char *err, size_t errlen)
{
    return pay_charge_run(ctx, kind, ids, n, on, stats, true, false, err, errlen);
}

db_status payments_charge_issued(payments_ctx *ctx, int64_t invoice_id, civil_date on,
                                 payments_stats *stats, char *err, size_t errlen)
{
    return pay_charge_run(ctx, PAYMENTS_AUTOPAY, &invoice_id, 1, on, stats, true, true, err,
                          errlen);
}
