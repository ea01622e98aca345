/* refund_requests.c: refunds the operators ask of Stripe
 * (refund_requests.h): the invoice as a refund reads it
 * (sql/queries/refund_invoice.sql) and the one writer of the audit event
 * refund_requested (sql/queries/refund_requested.sql). */
#include "ledgerline/refund_requests.h"

#include <stdio.h>
#include <stdlib.h>

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

typedef struct {
    int64_t invoice_id;
    refund_invoice *out;
} invoice_tx;

static db_status invoice_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    invoice_tx *a = varg;
    refund_invoice *o = a->out;
    db_status st;
    const char *p[] = {DB_I64(a->invoice_id)};
    PGresult *r = db_exec(c, llq_refund_invoice, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        ll_failf(err, errlen, "no such invoice: %lld", (long long)a->invoice_id);
        return DB_PERMANENT;
    }
    o->firm_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    snprintf(o->status, sizeof o->status, "%s", PQgetvalue(r, 0, 1));
    snprintf(o->currency, sizeof o->currency, "%s", PQgetvalue(r, 0, 2));
    o->amount_paid = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    o->refunded = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    o->total = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    snprintf(o->pi, sizeof o->pi, "%s", PQgetvalue(r, 0, 6));
    snprintf(o->charge, sizeof o->charge, "%s", PQgetvalue(r, 0, 7));
    PQclear(r);
    return DB_OK;
}

db_status refund_invoice_read(db_conn *c, int64_t invoice_id, refund_invoice *out, char *err,
                              size_t errlen)
{
    invoice_tx a = {.invoice_id = invoice_id, .out = out};
    return db_run_tx(c, invoice_work, &a, err, errlen);
}

typedef struct {
    const refund_request *r;
    bool audited;
} audit_tx;

static db_status audit_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    audit_tx *a = varg;
    const refund_request *q = a->r;
    const char *p[] = {DB_I64(q->firm_id),
                       q->actor,
                       DB_I64(q->invoice_id),
                       q->refund_id,
                       DB_I64(q->amount),
                       q->idempotency_key,
                       q->stripe_status != NULL ? q->stripe_status : "",
                       q->reason,
                       q->currency,
                       q->credit_note_id > 0 ? DB_I64(q->credit_note_id) : NULL};
    db_status st;
    PGresult *r = db_exec(c, llq_refund_requested, 10, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->audited = PQntuples(r) > 0;
    PQclear(r);
    return DB_OK;
}

db_status refund_request_audit(db_conn *c, const refund_request *r, bool *audited, char *err,
                               size_t errlen)
{
    audit_tx a = {.r = r};
    db_status st = db_run_tx(c, audit_work, &a, err, errlen);
    if (audited != NULL)
        *audited = st == DB_OK && a.audited;
    return st;
}
