/* credit_apply_cli.c: `billingctl credit apply` as one transaction
 * (credit_apply_cli.h): the application (common/credit.c), the invoice
 * afterwards, and the refusal when nothing applies. */
#include "ledgerline/credit_apply_cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "ledgerline/credit.h"
#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

typedef struct {
    int64_t invoice_id, max_cents;
    civil_date on;
    const char *by;
    credit_apply_outcome *out;
} apply_tx;

static db_status apply_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    apply_tx *a = varg;
    credit_apply_outcome *o = a->out;
    db_status st = credit_apply_to_invoice(c, a->invoice_id, a->max_cents, a->on, a->by,
                                           &o->applied, err, errlen);
    if (st != DB_OK)
        return st;
    const char *p[] = {DB_I64(a->invoice_id)};
    PGresult *r = db_exec(c, llq_credit_apply_cli_select_invoices, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    snprintf(o->status, sizeof o->status, "%s", PQgetvalue(r, 0, 0));
    o->total = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    o->paid = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    o->client_id = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    if (o->applied != 0)
        return DB_OK;
    /* Roll back: nothing applied means nothing is written by this command. */
    if (o->total - o->paid <= 0)
        ll_failf(err, errlen, "nothing to apply: invoice %lld (%s) has no balance due",
                 (long long)a->invoice_id, o->status);
    else
        ll_failf(err, errlen, "nothing to apply: client %lld has no available credit",
                 (long long)o->client_id);
    return DB_PERMANENT;
}

db_status credit_apply_manual(db_conn *c, int64_t invoice_id, int64_t max_cents, civil_date on,
                              const char *by, credit_apply_outcome *out, char *err, size_t errlen)
{
    apply_tx a = {.invoice_id = invoice_id, .max_cents = max_cents, .on = on, .by = by, .out = out};
    return db_run_tx(c, apply_work, &a, err, errlen);
}
