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
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_event.h"

/* The shard and firm filter every tick selection shares: $2 shards, $3
 * shard, $4 firm (NULL = all). */
#define PAY_SHARD_FILTER                                                                           \
    " AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id "                    \
    "= $4::bigint)"

/* Which invoices a run charges is billing.charge_due's to say (sql/009);
 * the plain predicates beside it only let 004's partial indexes find the
 * candidates. The autopay run also takes the invoices whose unanswered
 * attempt (no PaymentIntent known) must be looked up at Stripe whatever the
 * invoice's state (11.2, 11.3): autopay off, a day old, or a conflict an
 * operator resumed. An attempt whose intent is known and processing waits
 * for its webhook (read back by id only when its invoice is charged). */
static const char pay_due_autopay_sql[] =
    "SELECT id FROM ("
    " SELECT i.id FROM billing.invoices i"
    "  WHERE i.autopay_opt_in AND i.autopay_status IN ('scheduled', 'processing')"
    "  AND billing.charge_due('autopay', i.status, i.autopay_opt_in, i.autopay_status,"
    "   i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER
    " UNION SELECT i.id FROM billing.payment_attempts a"
    "  JOIN billing.invoices i ON i.id = a.invoice_id"
    "  JOIN billing.clients c ON c.id = i.client_id"
    "  WHERE a.status IN ('processing', 'transient_error')"
    "  AND i.autopay_status <> 'needs_attention' AND a.stripe_payment_intent_id IS NULL"
    "  AND (a.created_at < greatest(now(), $1::date::timestamp AT TIME ZONE 'UTC')"
    "    - interval '23 hours'"
    "   OR NOT (i.autopay_opt_in AND c.autopay_enabled) OR a.failure_code = 'idempotency_error')" PAY_SHARD_FILTER
    ") s WHERE id > $5::bigint ORDER BY id LIMIT $6::int";

static const char pay_due_retry_sql[] =
    "SELECT i.id FROM billing.invoices i"
    " WHERE i.status = 'failed' AND i.next_payment_retry_at IS NOT NULL"
    " AND billing.charge_due('retry', i.status, i.autopay_opt_in, i.autopay_status,"
    "  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER
    " AND i.id > $5::bigint ORDER BY i.id LIMIT $6::int";

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
    PGresult *r = db_exec(c,
                          "WITH u AS (UPDATE billing.invoices i SET autopay_status = 'cancelled',"
                          "  autopay_opt_in = false, autopay_next_charge_at = NULL,"
                          "  next_payment_retry_at = NULL"
                          "  FROM billing.clients c WHERE c.id = i.client_id"
                          "  AND NOT (c.autopay_enabled AND i.autopay_opt_in)"
                          "  AND i.autopay_status IN ('scheduled', 'processing', 'failed',"
                          "   'needs_attention')"
                          "  AND NOT EXISTS (SELECT 1 FROM billing.payment_attempts a"
                          "   WHERE a.invoice_id = i.id"
                          "   AND a.status IN ('processing', 'transient_error'))"
                          "  AND $1::date IS NOT NULL" PAY_SHARD_FILTER
                          "  RETURNING i.id, i.firm_id, i.client_id)"
                          " SELECT billing.audit(firm_id, 'autopay_cancelled', 'INFO', NULL,"
                          "  jsonb_build_object('invoice_id', id, 'client_id', client_id,"
                          "   'reason', 'client autopay disabled')) FROM u",
                          4, p, &st, err, errlen);
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
        snprintf(err, errlen, "out of memory");
        return DB_TRANSIENT;
    }
    char day[16], shards[24], shard[24], firm[24], last[24], lim[24];
    pay_tick_params(t, day, shards, shard, firm);
    db_i64(limit, lim, sizeof lim);
    int64_t after = 0;
    for (;;) {
        const char *p[] = {
            day, shards, shard, t->firm_id ? firm : NULL, db_i64(after, last, sizeof last), lim};
        PGresult *r =
            db_exec(ctx->db, kind == PAYMENTS_AUTOPAY ? pay_due_autopay_sql : pay_due_retry_sql, 6,
                    p, &st, err, errlen);
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
    static const char charge_autopay[] =
        "SELECT CASE WHEN c.autopay_enabled THEN 'charge' ELSE 'cancel' END, i.id"
        " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
        " WHERE billing.charge_due('autopay', i.status, i.autopay_opt_in, i.autopay_status,"
        "  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER;
    static const char charge_retry[] =
        "SELECT CASE WHEN c.autopay_enabled THEN 'charge' ELSE 'cancel' END, i.id"
        " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
        " WHERE billing.charge_due('retry', i.status, i.autopay_opt_in, i.autopay_status,"
        "  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER
        " UNION ALL SELECT 'overdue', i.id FROM billing.invoices i"
        " WHERE i.status IN ('sent', 'partial', 'failed') AND i.due_date < $1::date"
        " AND billing.becomes_overdue(i.status, i.due_date, i.next_payment_retry_at,"
        "  i.autopay_status, $1::date)" PAY_SHARD_FILTER;
    char sql[2048];
    snprintf(
        sql, sizeof sql,
        "SELECT s.action, i.id, i.invoice_number, coalesce(i.engagement_id, 0),"
        " coalesce(to_char(i.period_start, 'YYYY-MM-DD'), ''),"
        " coalesce(to_char(i.period_end, 'YYYY-MM-DD'), ''), i.total_cents,"
        " billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents), i.currency,"
        " (SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts "
        "a"
        "  WHERE a.invoice_id = i.id)"
        " FROM (%s) s(action, id) JOIN billing.invoices i ON i.id = s.id"
        " ORDER BY i.id, s.action",
        kind == PAYMENTS_AUTOPAY ? charge_autopay : charge_retry);
    const char *p[] = {day, "1", "0", firm_id ? firm : NULL};
    db_status st;
    PGresult *r = db_exec(c, sql, 4, p, &st, err, errlen);
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
