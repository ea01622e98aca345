/* reports.c: the operators' reports (reports.h): the queries of
 * sql/queries/report_*.sql with their parameters; billingctl prints what
 * they return. */
#include "ledgerline/reports.h"

#include <stdlib.h>

#include "ledgerline/queries.h"
#include "ledgerline/query_text.h"

typedef struct {
    const char *sql;
    int64_t firm_id;
    int nparams;
    const char *const *params; /* $2.. ($1 is the firm) */
    char *json;
} document_tx;

/* The firm must exist; the query's one value is the document. */
static db_status document_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    document_tx *a = varg;
    db_status st = db_require_firm(c, a->firm_id, err, errlen);
    if (st != DB_OK)
        return st;
    const char *p[4] = {DB_I64(a->firm_id)};
    for (int i = 0; i < a->nparams && i < 3; i++)
        p[i + 1] = a->params[i];
    free(a->json);
    return query_text(c, a->sql, a->nparams + 1, p, &a->json, err, errlen);
}

static db_status report_document(db_conn *c, const char *sql, int64_t firm_id, int nparams,
                                 const char *const *params, char **json, char *err, size_t errlen)
{
    document_tx a = {.sql = sql, .firm_id = firm_id, .nparams = nparams, .params = params};
    db_status st = db_run_tx(c, document_work, &a, err, errlen);
    if (st != DB_OK) {
        free(a.json);
        a.json = NULL;
    }
    *json = a.json;
    return st;
}

db_status report_revenue(db_conn *c, int64_t firm_id, const char *from, const char *to, char **json,
                         char *err, size_t errlen)
{
    const char *p[] = {from, to};
    return report_document(c, llq_report_revenue, firm_id, 2, p, json, err, errlen);
}

db_status report_credits(db_conn *c, int64_t firm_id, const char *date, char **json, char *err,
                         size_t errlen)
{
    const char *p[] = {date};
    return report_document(c, llq_report_credits, firm_id, 1, p, json, err, errlen);
}

PGresult *report_failures(db_conn *c, int64_t firm_id, const char *from, const char *to,
                          db_status *st, char *err, size_t errlen)
{
    const char *p[] = {DB_I64(firm_id), from, to};
    return db_exec(c, llq_report_failures, 3, p, st, err, errlen);
}

PGresult *report_wip(db_conn *c, int64_t firm_id, const char *date, db_status *st, char *err,
                     size_t errlen)
{
    const char *p[] = {DB_I64(firm_id), date};
    return db_exec(c, llq_report_wip, 2, p, st, err, errlen);
}

PGresult *report_aging(db_conn *c, int64_t firm_id, const char *date, db_status *st, char *err,
                       size_t errlen)
{
    const char *p[] = {DB_I64(firm_id), date};
    return db_exec(c, llq_report_aging, 2, p, st, err, errlen);
}
