/* dispute_evidence.c: evidence an operator submits for a dispute
 * (dispute_evidence.h): the dispute it is for, and the record of its
 * submission (sql/queries/dispute_evidence_record.sql and
 * dispute_evidence_audit.sql). */
#include "ledgerline/dispute_evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/queries.h"

static db_status find_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    dispute_evidence *a = varg;
    db_status st;
    const char *p[] = {a->row_id ? DB_I64(a->row_id) : a->stripe_id};
    PGresult *r =
        db_exec_row(c, a->row_id ? llq_dispute_evidence_by_row : llq_dispute_evidence_by_stripe_id,
                    1, p, &st, err, errlen, "dispute %s does not exist", p[0]);
    if (r == NULL)
        return st;
    a->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    a->firm_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    a->invoice_id = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    snprintf(a->dp, sizeof a->dp, "%s", PQgetvalue(r, 0, 3));
    snprintf(a->status, sizeof a->status, "%s", PQgetvalue(r, 0, 4));
    PQclear(r);
    return DB_OK;
}

db_status dispute_evidence_find(db_conn *c, dispute_evidence *a, char *err, size_t errlen)
{
    return db_run_tx(c, find_work, a, err, errlen);
}

static db_status record_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    dispute_evidence *a = varg;
    db_status st;
    const char *p[] = {DB_I64(a->id)};
    PGresult *r = db_exec_row(c, llq_dispute_evidence_record, 1, p, &st, err, errlen,
                              "cannot record the evidence of dispute %lld: it no longer exists",
                              (long long)a->id);
    if (r == NULL)
        return st;
    a->recorded_now = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    snprintf(a->status, sizeof a->status, "%s", PQgetvalue(r, 0, 1));
    snprintf(a->submitted_at, sizeof a->submitted_at, "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
    if (!a->recorded_now)
        return DB_OK;
    const char *pa[] = {DB_I64(a->firm_id), a->by,           DB_I64(a->invoice_id),
                        DB_I64(a->id),      a->dp,           a->fields,
                        a->idem_key,        a->stripe_status};
    return db_command(c, llq_dispute_evidence_audit, 8, pa, err, errlen);
}

db_status dispute_evidence_record(db_conn *c, dispute_evidence *a, char *err, size_t errlen)
{
    return db_run_tx(c, record_work, a, err, errlen);
}
