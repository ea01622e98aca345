/* verify.c: the reconciliation check (verify.h): one SQL query per check,
 * each returning the violating rows as (firm_id, table, id, detail), run in
 * one read-only REPEATABLE READ transaction so that every check reads the
 * same snapshot while workers keep writing.
 *
 * Every query takes $1 = the firm to check (NULL = all firms); a reference
 * across firms is kept when either side is that firm. The queries read the
 * tables as they are: the database's own constraints and triggers are not
 * assumed to have held (a writer with triggers disabled, a restore, a
 * migration gone wrong), which is why checks that a constraint already
 * enforces (one payments row per PaymentIntent, one auto invoice per
 * engagement and period start) are still here.
 *
 * What each check may assume about the writers (common/payments.c,
 * credit.c, disputes.c, invoicing.c, billingctl) is stated in
 * docs/RELIABILITY.md; comments below say only why a query looks the way it
 * does. */
#include "ledgerline/verify.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

/* The checks are sql/queries/verify_*.sql, one per check, each saying
 * what it checks and why it reads the way it does. The wrapper every check
 * shares (the total on each row, a stable order, the cap) and the firm
 * predicate of $1 were C macros spliced into each query; each file spells
 * its query out whole, so that it reads and EXPLAINs as it runs. */

/* ------------------------------------------------------------------------ */

static const char *const verify_sql[VERIFY_NCHECKS] = {
    [VERIFY_LINE_ITEMS_SUM] = llq_verify_line_items_sum,
    [VERIFY_TOTAL] = llq_verify_total,
    [VERIFY_AMOUNT_PAID] = llq_verify_amount_paid,
    [VERIFY_PAYMENT_ONCE] = llq_verify_payment_once,
    [VERIFY_CREDIT_LEDGER] = llq_verify_credit_ledger,
    [VERIFY_AUDIT] = llq_verify_audit,
    [VERIFY_TENANT] = llq_verify_tenant,
    [VERIFY_TIME_ENTRIES] = llq_verify_time_entries,
    [VERIFY_AUTO_INVOICE] = llq_verify_auto_invoice,
};

static const char *const verify_names[VERIFY_NCHECKS] = {
    [VERIFY_LINE_ITEMS_SUM] = "line_items_sum",
    [VERIFY_TOTAL] = "total",
    [VERIFY_AMOUNT_PAID] = "amount_paid",
    [VERIFY_PAYMENT_ONCE] = "payment_once",
    [VERIFY_CREDIT_LEDGER] = "credit_ledger",
    [VERIFY_AUDIT] = "audit",
    [VERIFY_TENANT] = "tenant",
    [VERIFY_TIME_ENTRIES] = "time_entries",
    [VERIFY_AUTO_INVOICE] = "auto_invoice",
};

const char *verify_check_name(verify_check c)
{
    return (unsigned)c < VERIFY_NCHECKS ? verify_names[c] : "unknown";
}

typedef struct {
    int64_t firm_id;
    verify_fn fn;
    void *arg;
    int64_t max_per_check;
    verify_summary *out;
} verify_ctx;

static db_status verify_checks(db_conn *c, verify_ctx *x, char *err, size_t errlen)
{
    db_status st = DB_OK;
    char firm[24], cap[24];
    const char *p[] = {x->firm_id > 0 ? db_i64(x->firm_id, firm, sizeof firm) : NULL,
                       x->max_per_check > 0 ? db_i64(x->max_per_check, cap, sizeof cap) : NULL};
    if (x->firm_id > 0 && (st = db_require_firm(c, x->firm_id, err, errlen)) != DB_OK)
        return st;
    memset(x->out, 0, sizeof *x->out);
    for (int k = 0; k < VERIFY_NCHECKS; k++) {
        char dberr[768];
        PGresult *r = db_exec(c, verify_sql[k], 2, p, &st, dberr, sizeof dberr);
        if (r == NULL) {
            ll_failf(err, errlen, "could not run check %s: %s", verify_names[k], dberr);
            return st;
        }
        int rows = PQntuples(r);
        int64_t total = rows > 0 ? strtoll(PQgetvalue(r, 0, 4), NULL, 10) : 0;
        x->out->per_check[k] = total;
        x->out->violations += total;
        for (int i = 0; i < rows && x->fn != NULL; i++) {
            verify_violation v = {
                .check = (verify_check)k,
                .check_name = verify_names[k],
                .firm_id = PQgetisnull(r, i, 0) ? 0 : strtoll(PQgetvalue(r, i, 0), NULL, 10),
                .table = PQgetvalue(r, i, 1),
                .id = PQgetisnull(r, i, 2) ? 0 : strtoll(PQgetvalue(r, i, 2), NULL, 10),
                .detail = PQgetvalue(r, i, 3),
            };
            x->fn(&v, x->arg);
            x->out->reported++;
        }
        PQclear(r);
    }
    return DB_OK;
}

static db_status verify_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    /* One snapshot for every check; never a write. */
    db_status st = db_command(c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0,
                              NULL, err, errlen);
    return st == DB_OK ? verify_checks(c, varg, err, errlen) : st;
}

/* Checks the arguments and runs the checks, in the caller's transaction
 * (in_tx) or in a read-only snapshot of their own. */
static db_status verify_start(db_conn *c, bool in_tx, int64_t firm_id, verify_fn fn, void *arg,
                              int64_t max_per_check, verify_summary *out, char *err, size_t errlen)
{
    verify_summary scratch;
    if (out == NULL)
        out = &scratch;
    memset(out, 0, sizeof *out);
    if (c == NULL || firm_id < 0 || max_per_check < 0) {
        ll_failf(err, errlen, "cannot verify: the firm id and the limit must not be negative");
        return DB_PERMANENT;
    }
    verify_ctx x = {
        .firm_id = firm_id, .fn = fn, .arg = arg, .max_per_check = max_per_check, .out = out};
    db_status st =
        in_tx ? verify_checks(c, &x, err, errlen) : db_run_tx(c, verify_tx, &x, err, errlen);
    if (st != DB_OK)
        memset(out, 0, sizeof *out); /* no partial counts: the run did not finish */
    return st;
}

db_status verify_run_in(db_conn *c, int64_t firm_id, verify_fn fn, void *arg, int64_t max_per_check,
                        verify_summary *out, char *err, size_t errlen)
{
    return verify_start(c, true, firm_id, fn, arg, max_per_check, out, err, errlen);
}

db_status verify_run(db_conn *c, int64_t firm_id, verify_fn fn, void *arg, int64_t max_per_check,
                     verify_summary *out, char *err, size_t errlen)
{
    return verify_start(c, false, firm_id, fn, arg, max_per_check, out, err, errlen);
}
