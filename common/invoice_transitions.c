/* invoice_transitions.c: calling the invoice transitions of sql/022 (see
 * invoice_transitions.h); each is one statement, so nothing here decides. */
#include "ledgerline/invoice_transitions.h"

#include <stdio.h>
#include <stdlib.h>

#include "ledgerline/queries.h"

db_status itr_dispute_opened(db_conn *c, int64_t dispute_id, const char *stripe_event_id, char *err,
                             size_t errlen)
{
    const char *p[] = {DB_I64(dispute_id), stripe_event_id};
    return db_command(c, "SELECT billing.dispute_opened($1::bigint, $2)", 2, p, err, errlen);
}

db_status itr_dispute_won(db_conn *c, int64_t dispute_id, const char *stripe_event_id, char *err,
                          size_t errlen)
{
    const char *p[] = {DB_I64(dispute_id), stripe_event_id};
    return db_command(c, "SELECT billing.dispute_won($1::bigint, $2)", 2, p, err, errlen);
}

db_status itr_dispute_lost(db_conn *c, int64_t dispute_id, const char *stripe_event_id,
                           const char *charge, const char *payment_intent, char *err, size_t errlen)
{
    const char *p[] = {DB_I64(dispute_id), stripe_event_id, charge, payment_intent};
    return db_command(c, "SELECT billing.dispute_lost($1::bigint, $2, $3, $4)", 4, p, err, errlen);
}

db_status itr_invoice_refunded(db_conn *c, const itr_refund *r, char *status, size_t statuslen,
                               int64_t *refunded_total, char *err, size_t errlen)
{
    const char *p[] = {
        DB_I64(r->invoice_id),  DB_I64(r->change),       r->own_money ? "t" : "f", r->charge,
        r->refund_ids_json,     DB_I64(r->paid_before),  r->stripe_event_id,       r->currency,
        DB_I64(r->from_credit), DB_I64(r->from_invoice), DB_I64(r->returned)};
    db_status st;
    PGresult *res = db_exec(c, llq_itr_invoice_refunded, 11, p, &st, err, errlen);
    if (res == NULL)
        return st;
    snprintf(status, statuslen, "%s", PQgetvalue(res, 0, 0));
    *refunded_total = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return DB_OK;
}

db_status itr_payment_failed(db_conn *c, const itr_failure *f, char *err, size_t errlen)
{
    const char *p[] = {f->invoice_id, f->status,      f->failed_at,       f->message,
                       f->code,       f->retry_count, f->delay_days,      f->payment_intent,
                       f->attempt_id, f->next_action, f->hard ? "t" : "f"};
    return db_command(c, llq_itr_payment_failed, 11, p, err, errlen);
}

db_status itr_mark_overdue(db_conn *c, const char *day, const char *shards, const char *shard,
                           const char *firm, int64_t *count, char *err, size_t errlen)
{
    const char *p[] = {day, shards, shard, firm};
    db_status st;
    PGresult *res =
        db_exec(c, "SELECT billing.mark_overdue($1::date, $2, $3, $4)", 4, p, &st, err, errlen);
    if (res == NULL)
        return st;
    *count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return DB_OK;
}
