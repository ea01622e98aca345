/* invoice_show.c: one invoice as the operators read it (`billingctl
 * invoice show`; invoice_show.h): the document of
 * sql/queries/invoice_show.sql. */
#include "ledgerline/invoice_show.h"

#include <stdlib.h>

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"
#include "ledgerline/query_text.h"

typedef struct {
    int64_t id;
    char *json;
} show_tx;

static db_status show_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    show_tx *a = varg;
    const char *p[] = {DB_I64(a->id)};
    free(a->json);
    db_status st = query_text(c, llq_invoice_show, 1, p, &a->json, err, errlen);
    if (st != DB_OK || a->json != NULL)
        return st;
    ll_failf(err, errlen, "invoice %lld does not exist", (long long)a->id);
    return DB_PERMANENT;
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
