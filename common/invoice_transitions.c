/* invoice_transitions.c: the one C caller of the invoice transitions
 * (sql/013, 014, 022; see invoice_transitions.h): each is one statement,
 * parameters in and its row out, so nothing here decides. */
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

db_status itr_issue(db_conn *c, int64_t invoice_id, const char *day, const char *by,
                    char legal_number[ITR_NUMBER_MAX], bool *already, char *err, size_t errlen)
{
    const char *p[] = {DB_I64(invoice_id), day, by};
    db_status st;
    PGresult *r = db_exec(c, llq_itr_issue, 3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    snprintf(legal_number, ITR_NUMBER_MAX, "%s", PQgetvalue(r, 0, 0));
    *already = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return DB_OK;
}

db_status itr_adjust(db_conn *c, int64_t invoice_id, int64_t line_id, const char *quantity,
                     int64_t amount_cents, const char *reason, const char *by, int64_t *total,
                     int64_t *amount, char *err, size_t errlen)
{
    const char *p[] = {DB_I64(invoice_id),
                       DB_I64(line_id),
                       quantity,
                       amount_cents >= 0 ? DB_I64(amount_cents) : NULL,
                       reason,
                       by};
    db_status st;
    PGresult *r = db_exec(c, llq_itr_adjust, 6, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *total = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *amount = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return DB_OK;
}

db_status itr_void(db_conn *c, int64_t invoice_id, const char *reason, const char *by,
                   int64_t *released, bool *already, char *err, size_t errlen)
{
    const char *p[] = {DB_I64(invoice_id), reason, by};
    db_status st;
    PGresult *r =
        db_exec(c, "SELECT released, already FROM billing.void_invoice($1::bigint, $2, $3)", 3, p,
                &st, err, errlen);
    if (r == NULL)
        return st;
    *released = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *already = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return DB_OK;
}

db_status itr_credit_note(db_conn *c, const itr_credit *q, itr_note *out, char *err, size_t errlen)
{
    const char *p[] = {DB_I64(q->invoice_id),
                       q->lines_json ? NULL : DB_I64(q->total_cents),
                       q->lines_json,
                       q->mode,
                       q->reason,
                       q->by,
                       q->day};
    db_status st;
    PGresult *r = db_exec(c, llq_itr_credit_note, 7, p, &st, err, errlen);
    if (r == NULL)
        return st;
    out->credit_note_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    snprintf(out->legal_number, sizeof out->legal_number, "%s", PQgetvalue(r, 0, 1));
    out->applied_to_due_cents = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    out->refunded_cents = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    out->credited_cents = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    out->firm_id = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    out->client_id = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    out->already = PQgetvalue(r, 0, 7)[0] == 't';
    PQclear(r);
    return DB_OK;
}
