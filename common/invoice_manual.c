/* invoice_manual.c: invoices an operator writes by hand (`billingctl
 * invoice create`; see invoice_manual.h): the client's terms, the firm's
 * INV-<firm>-<NNNNNN> numbering, the amounts in the client's currency, the
 * invoice and its lines, and the audit and lifecycle events of its issue.
 * The SQL of more than a line is in sql/queries/invoice_manual_*.sql. */
#include "ledgerline/invoice_manual.h"

#include <stdio.h>
#include <stdlib.h>

#include "ledgerline/failf.h"
#include "ledgerline/money.h"
#include "ledgerline/queries.h"

/* What the invoice takes from its client. */
typedef struct {
    int64_t firm_id, tax_bp;
    char autopay[8];
    bool has_method;
    char method[256];
    char currency[MONEY_CURRENCY_LEN + 1];
} manual_client;

typedef struct {
    invoice_manual *a;
    int64_t invoice_id;
    char number[64];
} manual_tx;

static db_status manual_client_read(db_conn *c, int64_t client_id, manual_client *cl, char *err,
                                    size_t errlen)
{
    db_status st;
    const char *p[] = {DB_I64(client_id)};
    PGresult *r = db_exec(c, llq_invoice_manual_select_clients, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        ll_failf(err, errlen, "cannot create the invoice: client %lld does not exist",
                 (long long)client_id);
        return DB_PERMANENT;
    }
    cl->firm_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    cl->tax_bp = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    snprintf(cl->autopay, sizeof cl->autopay, "%s", PQgetvalue(r, 0, 2));
    cl->has_method = !PQgetisnull(r, 0, 3);
    snprintf(cl->method, sizeof cl->method, "%s", PQgetvalue(r, 0, 3));
    snprintf(cl->currency, sizeof cl->currency, "%s", PQgetvalue(r, 0, 4));
    PQclear(r);
    return DB_OK;
}

static db_status manual_engagement_check(db_conn *c, const invoice_manual *a, char *err,
                                         size_t errlen)
{
    if (a->engagement_id == 0)
        return DB_OK;
    const char *p[] = {DB_I64(a->engagement_id), DB_I64(a->client_id)};
    bool found = false;
    db_status st =
        db_exists(c, "SELECT 1 FROM billing.engagements WHERE id = $1 AND client_id = $2", 2, p,
                  &found, err, errlen);
    if (st != DB_OK || found)
        return st;
    ll_failf(err, errlen, "cannot invoice engagement %lld: it is not an engagement of client %lld",
             (long long)a->engagement_id, (long long)a->client_id);
    return DB_PERMANENT;
}

db_status invoice_manual_next_number(db_conn *c, int64_t firm_id, char *number, size_t numberlen,
                                     char *err, size_t errlen)
{
    /* NO KEY UPDATE leaves the foreign-key checks of other writers alone. */
    const char *p[] = {DB_I64(firm_id)};
    db_status st = db_command(c, "SELECT 1 FROM billing.firms WHERE id = $1 FOR NO KEY UPDATE", 1,
                              p, err, errlen);
    if (st != DB_OK)
        return st;
    PGresult *r = db_exec(c, llq_invoice_manual_next_number, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    snprintf(number, numberlen, "INV-%lld-%06lld", (long long)firm_id,
             strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    return DB_OK;
}

/* The line's amount in the invoice's currency: quantity x rate rounded half
 * up once to the currency's granularity (rule 11.13). Recomputed from the
 * parsed quantity and rate, so a retried transaction gets the same. */
static db_status manual_line_amount(inv_line *l, const char *currency, char *err, size_t errlen)
{
    money_status ms = money_hours_amount_cur(l->hundredths, l->rate, currency, &l->amount);
    if (ms != MONEY_OK) {
        ll_failf(err, errlen, "%s",
                 ms == MONEY_OVERFLOW ? "cannot compute a line amount: it overflows"
                                      : "cannot compute a line amount: the client's currency "
                                        "is not a currency code");
        return DB_PERMANENT;
    }
    snprintf(l->amount_s, sizeof l->amount_s, "%lld", (long long)l->amount);
    return DB_OK;
}

/* t: subtotal, tax and total of the lines (amounts set in the currency). */
static db_status manual_totals(invoice_manual *a, const manual_client *cl, int64_t t[3], char *err,
                               size_t errlen)
{
    int64_t subtotal = 0;
    for (int i = 0; i < a->nlines; i++) {
        if (manual_line_amount(&a->lines[i], cl->currency, err, errlen) != DB_OK)
            return DB_PERMANENT;
        if (money_add(subtotal, a->lines[i].amount, &subtotal) != MONEY_OK)
            goto overflow;
    }
    t[0] = subtotal;
    if (money_apply_bp_cur(subtotal, cl->tax_bp, cl->currency, &t[1]) != MONEY_OK ||
        money_add(subtotal, t[1], &t[2]) != MONEY_OK)
        goto overflow;
    return DB_OK;
overflow:
    ll_failf(err, errlen, "cannot create the invoice: its total overflows");
    return DB_PERMANENT;
}

static db_status manual_insert(db_conn *c, manual_tx *x, const manual_client *cl,
                               const int64_t t[3], char *err, size_t errlen)
{
    const invoice_manual *a = x->a;
    char issue[11];
    date_format(a->issue, issue, sizeof issue);
    bool override = a->override_reason != NULL;
    const char *p[] = {DB_I64(cl->firm_id),
                       DB_I64(a->client_id),
                       a->engagement_id ? DB_I64(a->engagement_id) : NULL,
                       override ? "true" : "false",
                       a->override_reason,
                       a->override_by,
                       x->number,
                       DB_I64(t[0]),
                       DB_I64(t[1]),
                       DB_I64(t[2]),
                       issue,
                       cl->autopay,
                       cl->has_method ? cl->method : NULL,
                       cl->currency};
    db_status st;
    PGresult *r = db_exec(c, llq_invoice_manual_insert, 14, p, &st, err, errlen);
    if (r == NULL)
        return st;
    x->invoice_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    const char *pid[] = {DB_I64(x->invoice_id)};
    return db_command(c, llq_invoice_manual_terms, 1, pid, err, errlen);
}

static db_status manual_lines(db_conn *c, const manual_tx *x, int64_t firm_id, char *err,
                              size_t errlen)
{
    for (int i = 0; i < x->a->nlines; i++) {
        const inv_line *l = &x->a->lines[i];
        const char *p[] = {DB_I64(x->invoice_id), DB_I64(firm_id), l->type,    l->description,
                           l->quantity,           l->rate_s,       l->amount_s};
        db_status st = db_command(c, llq_invoice_manual_line, 7, p, err, errlen);
        if (st != DB_OK)
            return st;
    }
    return DB_OK;
}

static db_status manual_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    manual_tx *x = varg;
    invoice_manual *a = x->a;
    manual_client cl;
    int64_t t[3];
    db_status st = manual_client_read(c, a->client_id, &cl, err, errlen);
    if (st == DB_OK)
        st = manual_engagement_check(c, a, err, errlen);
    if (st == DB_OK)
        st = invoice_manual_next_number(c, cl.firm_id, x->number, sizeof x->number, err, errlen);
    if (st == DB_OK)
        st = manual_totals(a, &cl, t, err, errlen);
    if (st == DB_OK)
        st = manual_insert(c, x, &cl, t, err, errlen);
    if (st == DB_OK)
        st = manual_lines(c, x, cl.firm_id, err, errlen);
    if (st != DB_OK)
        return st;
    const char *actor = a->by ? a->by : a->override_by;
    const char *p[] = {DB_I64(x->invoice_id), actor};
    return db_command(c, llq_invoice_manual_created, 2, p, err, errlen);
}

db_status invoice_manual_create(db_conn *c, invoice_manual *a, int64_t *invoice_id, char *number,
                                size_t numberlen, char *err, size_t errlen)
{
    manual_tx x = {.a = a};
    db_status st = db_run_tx(c, manual_work, &x, err, errlen);
    if (st != DB_OK)
        return st;
    *invoice_id = x.invoice_id;
    snprintf(number, numberlen, "%s", x.number);
    return DB_OK;
}
