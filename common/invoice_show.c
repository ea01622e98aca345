/* invoice_show.c: one invoice as the operators read it (`billingctl
 * invoice show`; invoice_show.h): the document of
 * sql/queries/invoice_show.sql. */
#include "ledgerline/invoice_show.h"

#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

typedef struct {
    int64_t id;
    char *json;
} show_tx;

static db_status show_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    show_tx *a = varg;
    const char *p[] = {DB_I64(a->id)};
    db_status st;
    PGresult *r = db_exec(c, llq_invoice_show, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        ll_failf(err, errlen, "invoice %lld does not exist", (long long)a->id);
        return DB_PERMANENT;
    }
    free(a->json);
    a->json = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (a->json != NULL)
        return DB_OK;
    ll_failf(err, errlen, "could not show invoice %lld: out of memory", (long long)a->id);
    return DB_TRANSIENT;
}

db_status invoice_show(db_conn *c, int64_t invoice_id, char **json, char *err, size_t errlen)
{
    show_tx a = {.id = invoice_id};
    db_status st = db_run_tx(c, show_work, &a, err, errlen);
    if (st != DB_OK) {
        free(a.json);
        a.json = NULL;
    }
    *json = a.json;
    return st;
}
