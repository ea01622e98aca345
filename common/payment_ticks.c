/* payment_ticks.c: what an autopay or retry tick charges (billing.charge_due
 * over the tick's shard and firm), the overdue rule and autopay cancellation
 * that run with it, and the dry-run preview of the same selection. */
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
#include "ledgerline/failf.h"
#include "ledgerline/queries.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_event.h"

/* The ticks' selections are sql/queries/pay_ticks_*.sql: which invoices
 * are due is billing.charge_due's to say, overdue billing.becomes_overdue's;
 * each query carries the shard and firm filter ($2 shards, $3 shard, $4 firm
 * or NULL). */

typedef struct {
    const tick_msg *t;
    int64_t count;
} pay_tick_arg;

static void pay_tick_params(const tick_msg *t, char day[16], char shards[24], char shard[24],
                            char firm[24])
{
    date_format(t->business_date, day, 16);
    db_i64(t->shards, shards, 24);
    db_i64(t->shard, shard, 24);
    db_i64(t->firm_id, firm, 24);
}

/* Section 6 on the tick's shard: billing.mark_overdue (sql/022). */
static db_status pay_overdue_tx(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_tick_arg *a = arg;
    char day[16], shards[24], shard[24], firm[24];
    pay_tick_params(a->t, day, shards, shard, firm);
    return itr_mark_overdue(c, day, shards, shard, a->t->firm_id ? firm : NULL, &a->count, err,
                            errlen);
}

/* Autopay turned off (the client's, or the invoice's opt-in): every
 * pending autopay without an unanswered attempt is cancelled, whatever its
 * state (11.3); those with one are looked up first (the selection above). */
static db_status pay_cancel_tx(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_tick_arg *a = arg;
    char day[16], shards[24], shard[24], firm[24];
    pay_tick_params(a->t, day, shards, shard, firm);
    const char *p[] = {day, shards, shard, a->t->firm_id ? firm : NULL};
    db_status st;
    PGresult *r = db_exec(c, llq_pay_ticks_cancel, 4, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->count = PQntuples(r);
    PQclear(r);
    return DB_OK;
}

db_status payments_run_tick(payments_ctx *ctx, payments_kind kind, const tick_msg *t,
                            payments_stats *stats, char *err, size_t errlen)
{
    pay_tick_arg ta = {.t = t};
    db_status st = db_run_tx(ctx->db, kind == PAYMENTS_AUTOPAY ? pay_cancel_tx : pay_overdue_tx,
                             &ta, err, errlen);
    if (st != DB_OK)
        return st;
    if (kind == PAYMENTS_AUTOPAY)
        stats->cancelled += ta.count;
    else
        stats->overdue += ta.count;

    int limit = ctx->batch_size > 0 ? ctx->batch_size : 500;
    int64_t *ids = malloc((size_t)limit * sizeof *ids);
    if (ids == NULL) {
        ll_failf(err, errlen, "could not run the tick: out of memory");
        return DB_TRANSIENT;
    }
    char day[16], shards[24], shard[24], firm[24], last[24], lim[24];
    pay_tick_params(t, day, shards, shard, firm);
    db_i64(limit, lim, sizeof lim);
    int64_t after = 0;
    for (;;) {
        const char *p[] = {
            day, shards, shard, t->firm_id ? firm : NULL, db_i64(after, last, sizeof last), lim};
        PGresult *r = db_exec(
            ctx->db, kind == PAYMENTS_AUTOPAY ? llq_pay_ticks_due_autopay : llq_pay_ticks_due_retry,
            6, p, &st, err, errlen);
        if (r == NULL)
            break;
        size_t n = (size_t)PQntuples(r);
        for (size_t i = 0; i < n; i++)
            ids[i] = pay_i64(r, (int)i, 0);
        PQclear(r);
        if (n == 0)
            break;
        after = ids[n - 1];
        st = payments_charge(ctx, kind, ids, n, t->business_date, stats, err, errlen);
        if (st != DB_OK || n < (size_t)limit || shutdown_requested())
            break;
    }
    free(ids);
    return st;
}

db_status payments_preview(db_conn *c, payments_kind kind, civil_date on, int64_t firm_id,
                           payments_preview_fn fn, void *arg, char *err, size_t errlen)
{
    char day[16], firm[24];
    date_format(on, day, sizeof day);
    db_i64(firm_id, firm, sizeof firm);
    /* The ticks' own selections, over every shard (shards = 1). */
    const char *p[] = {day, "1", "0", firm_id ? firm : NULL,
                       kind == PAYMENTS_AUTOPAY ? "autopay" : "retry"};
    db_status st;
    PGresult *r = db_exec(c, llq_pay_ticks_preview, 5, p, &st, err, errlen);
    if (r == NULL)
        return st;
    for (int i = 0; i < PQntuples(r); i++) {
        payments_preview_row row = {.action = PQgetvalue(r, i, 0),
                                    .invoice_id = pay_i64(r, i, 1),
                                    .invoice_number = PQgetvalue(r, i, 2),
                                    .engagement_id = pay_i64(r, i, 3),
                                    .period_start = PQgetvalue(r, i, 4),
                                    .period_end = PQgetvalue(r, i, 5),
                                    .total_cents = pay_i64(r, i, 6),
                                    .due_cents = pay_i64(r, i, 7),
                                    .currency = PQgetvalue(r, i, 8),
                                    .attempt_no = (int)pay_i64(r, i, 9)};
        fn(&row, arg);
    }
    PQclear(r);
    return DB_OK;
}
