/* credit.c: the append-only credit ledger (BILLING_RULES section 4, see
 * credit.h): adding credit, the balance, applying credit to an invoice and
 * expiring lapsed credit. Runs inside the caller's transaction; never
 * BEGINs or COMMITs.
 *
 * Concurrency: every write first locks the client row (FOR NO KEY UPDATE,
 * the same lock 002's balance trigger takes), then reads the ledger in a new
 * statement, so writes of one client run one after the other and each sees
 * the previous one's entries. Lock order is invoice, then client (clients in
 * id order when several), never the other way round.
 *
 * Oldest credit first: sql/005_credit.sql's billing.credit_remainders()
 * allocates debits to credits in (created_at, id) order. Credits are stamped
 * with clock_timestamp() while the client row is locked, so that order is
 * also the order in which they became visible. Lapsed credit is expired
 * (written off by an `expired` debit naming the credit) before credit is
 * applied, so a payment never consumes a credit that had already lapsed.
 *
 * Each entry and its audit event are written by one statement: the entry id
 * is drawn from the identity sequence first, so the audit metadata can name
 * the entry and the entry can record the audit id (the ledger is append-only:
 * the entry cannot be updated afterwards).
 */
#include "ledgerline/credit.h"

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"
#include "ledgerline/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool credit_source_valid(const char *s)
{
    static const char *const sources[] = {"overpayment", "refund",     "goodwill",
                                          "promotional", "correction", "credit_note"};
    for (size_t i = 0; s && i < sizeof sources / sizeof sources[0]; i++)
        if (strcmp(s, sources[i]) == 0)
            return true;
    return false;
}

/* The one row sql ($1 = id) returns; NULL with *st and err when the query
 * fails, or DB_PERMANENT "<missing>: <id>" when there is no such row. */
static PGresult *credit_row(db_conn *c, const char *sql, int64_t id, const char *missing,
                            db_status *st, char *err, size_t errlen)
{
    char b[24];
    const char *p[] = {db_i64(id, b, sizeof b)};
    PGresult *r = db_exec(c, sql, 1, p, st, err, errlen);
    if (r != NULL && PQntuples(r) != 1) {
        PQclear(r);
        ll_failf(err, errlen, "%s: %lld", missing, (long long)id);
        *st = DB_PERMANENT;
        return NULL;
    }
    return r;
}

/* Locks the client row (serialises ledger writes of one client) and returns
 * its firm and currency. Unknown client: DB_PERMANENT. */
static db_status credit_lock_client(db_conn *c, int64_t client_id, int64_t *firm_id,
                                    char currency[4], bool lock, char *err, size_t errlen)
{
    db_status st;
    PGresult *r = credit_row(c,
                             lock ? llq_credit_select_clients
                                  : "SELECT firm_id, currency FROM billing.clients WHERE id = $1",
                             client_id, "no such client", &st, err, errlen);
    if (r == NULL)
        return st;
    if (firm_id)
        *firm_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (currency)
        snprintf(currency, 4, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    return DB_OK;
}

/* The client's ledger balance (credits - debits). */
static db_status credit_sum(db_conn *c, int64_t client_id, int64_t *balance, char *err,
                            size_t errlen)
{
    char b[24];
    const char *p[] = {db_i64(client_id, b, sizeof b)};
    db_status st;
    PGresult *r = db_exec(c, llq_credit_select_credit_ledger, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *balance = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return DB_OK;
}

db_status credit_add(db_conn *c, const credit_add_params *p, int64_t *entry_id, char *err,
                     size_t errlen)
{
    if (p == NULL || c == NULL) {
        ll_failf(err, errlen, "cannot add credit: no parameters given");
        return DB_PERMANENT;
    }
    if (p->client_id <= 0) {
        ll_failf(err, errlen, "cannot add credit: the client id must be a positive integer");
        return DB_PERMANENT;
    }
    if (p->amount_cents <= 0) {
        ll_failf(err, errlen,
                 "cannot add credit: the amount must be a positive number of cents, not %lld",
                 (long long)p->amount_cents);
        return DB_PERMANENT;
    }
    if (!credit_source_valid(p->source)) {
        ll_failf(err, errlen,
                 "cannot add credit: its source must be one of overpayment, refund, goodwill, "
                 "promotional, correction, credit_note, not '%s'",
                 p->source ? p->source : "");
        return DB_PERMANENT;
    }
    bool needs_approval =
        strcmp(p->source, "goodwill") == 0 || strcmp(p->source, "correction") == 0;
    if (needs_approval && (ll_blank(p->reason) || ll_blank(p->approved_by))) {
        ll_failf(err, errlen,
                 "rule 4 (approval): a %s credit needs a reason and the name of its approver",
                 p->source);
        return DB_PERMANENT;
    }
    if (strcmp(p->source, "overpayment") == 0 && p->source_invoice_id <= 0) {
        ll_failf(err, errlen,
                 "cannot add credit: an overpayment credit must name the invoice overpaid");
        return DB_PERMANENT;
    }
    if (p->source_invoice_id < 0) {
        ll_failf(err, errlen,
                 "cannot add credit: the source invoice id must be a positive integer");
        return DB_PERMANENT;
    }
    char expires[11] = "";
    if (p->has_expiry && date_format(p->expires_at, expires, sizeof expires) == NULL) {
        ll_failf(err, errlen, "cannot add credit: its expiry date is out of range");
        return DB_PERMANENT;
    }

    int64_t firm = 0;
    db_status st = credit_lock_client(c, p->client_id, &firm, NULL, true, err, errlen);
    if (st != DB_OK)
        return st;

    char bf[24], bc[24], ba[24], bi[24], bp[24];
    const char *desc = ll_blank(p->description) ? p->source : p->description;
    const char *par[] = {
        db_i64(firm, bf, sizeof bf),
        db_i64(p->client_id, bc, sizeof bc),
        db_i64(p->amount_cents, ba, sizeof ba),
        p->source,
        desc,
        ll_blank(p->reason) ? NULL : p->reason,
        ll_blank(p->approved_by) ? NULL : p->approved_by,
        ll_blank(p->created_by) ? NULL : p->created_by,
        p->source_invoice_id > 0 ? db_i64(p->source_invoice_id, bi, sizeof bi) : NULL,
        p->has_expiry ? expires : NULL,
        p->source_payment_id > 0 ? db_i64(p->source_payment_id, bp, sizeof bp) : NULL};
    if (p->source_invoice_id > 0) {
        PGresult *r = db_exec(c, "SELECT 1 FROM billing.invoices WHERE id = $1 AND client_id = $2",
                              2, (const char *const[]){par[8], par[1]}, &st, err, errlen);
        if (r == NULL)
            return st;
        int found = PQntuples(r);
        PQclear(r);
        if (!found) {
            ll_failf(err, errlen,
                     "cannot add credit: invoice %lld is not an invoice of client %lld",
                     (long long)p->source_invoice_id, (long long)p->client_id);
            return DB_PERMANENT;
        }
    }
    PGresult *r = db_exec(c, llq_credit_add, 11, par, &st, err, errlen);
    if (r == NULL)
        return st;
    if (entry_id)
        *entry_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return DB_OK;
}

db_status credit_balance(db_conn *c, int64_t client_id, int64_t *balance_cents, char currency[4],
                         char *err, size_t errlen)
{
    db_status st = credit_lock_client(c, client_id, NULL, currency, false, err, errlen);
    if (st != DB_OK)
        return st;
    int64_t bal = 0;
    st = credit_sum(c, client_id, &bal, err, errlen);
    if (st == DB_OK && balance_cents)
        *balance_cents = bal;
    return st;
}

/* Expiry in two statements: credit_expire_lock.sql locks the candidate
 * clients in id order (what keeps two concurrent expiries, and
 * applications, deadlock-free), then credit_expire.sql, a new statement that
 * sees every committed entry, writes one `expired` debit per lapsed credit
 * with a remainder. */
static const char *const EXPIRE_LOCK_SQL = llq_credit_expire_lock;
static const char *const EXPIRE_SQL = llq_credit_expire;

static db_status credit_expire_scoped(db_conn *c, civil_date as_of, int64_t firm_id,
                                      int64_t client_id, const char *actor, int64_t *entries,
                                      int64_t *amount_cents, char *err, size_t errlen)
{
    if (entries)
        *entries = 0;
    if (amount_cents)
        *amount_cents = 0;
    char d[11], bf[24], bc[24];
    if (date_format(as_of, d, sizeof d) == NULL) {
        ll_failf(err, errlen, "cannot expire credit: the date is out of range");
        return DB_PERMANENT;
    }
    const char *p[] = {d, db_i64(firm_id, bf, sizeof bf), db_i64(client_id, bc, sizeof bc)};
    db_status st;
    PGresult *r = db_exec(c, EXPIRE_LOCK_SQL, 3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        return DB_OK;
    }
    /* The locked ids as a text array literal "{1,2,3}". */
    size_t cap = (size_t)n * 21 + 3, len = 0;
    char *ids = malloc(cap);
    if (ids == NULL) {
        PQclear(r);
        ll_failf(err, errlen, "could not expire credit: out of memory");
        return DB_TRANSIENT;
    }
    ids[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(ids + len, cap - len, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
    snprintf(ids + len, cap - len, "}");
    PQclear(r);

    const char *p2[] = {ids, d, actor};
    r = db_exec(c, EXPIRE_SQL, 3, p2, &st, err, errlen);
    free(ids);
    if (r == NULL)
        return st;
    int64_t total = 0;
    for (int i = 0; i < PQntuples(r); i++)
        total += strtoll(PQgetvalue(r, i, 0), NULL, 10);
    if (entries)
        *entries = PQntuples(r);
    if (amount_cents)
        *amount_cents = total;
    PQclear(r);
    return DB_OK;
}

db_status credit_expire(db_conn *c, civil_date as_of, int64_t firm_id, int64_t *entries,
                        int64_t *amount_cents, char *err, size_t errlen)
{
    if (firm_id < 0) {
        ll_failf(err, errlen,
                 "cannot expire credit: the firm id must be positive (0 for all firms)");
        return DB_PERMANENT;
    }
    return credit_expire_scoped(c, as_of, firm_id, 0, NULL, entries, amount_cents, err, errlen);
}

/* Invoice statuses credit cannot be applied to: not issued, or its money is
 * already contested or given back. */
static bool credit_invoice_refused(const char *status)
{
    static const char *const refused[] = {"draft", "cancelled", "refunded", "charged_back",
                                          "disputed"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (strcmp(status, refused[i]) == 0)
            return true;
    return false;
}

/* The debit and the payments row in one statement (credit_apply.sql). */
static const char *const APPLY_SQL = llq_credit_apply;

db_status credit_apply_to_invoice(db_conn *c, int64_t invoice_id, int64_t max_cents, civil_date on,
                                  const char *actor, int64_t *applied, char *err, size_t errlen)
{
    if (applied)
        *applied = 0;
    if (invoice_id <= 0 || max_cents < 0) {
        ll_failf(err, errlen,
                 "cannot apply credit: the invoice id must be positive and the maximum "
                 "amount not negative");
        return DB_PERMANENT;
    }
    char day[11];
    if (date_format(on, day, sizeof day) == NULL) {
        ll_failf(err, errlen, "cannot apply credit: the date is out of range");
        return DB_PERMANENT;
    }
    db_status st;
    PGresult *r = credit_row(c, llq_credit_select_invoices, invoice_id,
                             "cannot apply credit: no such invoice", &st, err, errlen);
    if (r == NULL)
        return st;
    int64_t firm = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t client = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    char status[32], inv_currency[4], number[128];
    snprintf(status, sizeof status, "%s", PQgetvalue(r, 0, 2));
    snprintf(inv_currency, sizeof inv_currency, "%s", PQgetvalue(r, 0, 3));
    int64_t total = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    int64_t paid = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    snprintf(number, sizeof number, "%s", PQgetvalue(r, 0, 6));
    PQclear(r);

    if (credit_invoice_refused(status)) {
        ll_failf(err, errlen,
                 "cannot apply credit to invoice %lld: it is %s; credit is applied only to an "
                 "issued invoice with a balance due (sent, partial, failed or overdue)",
                 (long long)invoice_id, status);
        return DB_PERMANENT;
    }
    int64_t due = total - paid;
    if (due <= 0 && max_cents == 0)
        return DB_OK;

    char client_currency[4];
    st = credit_lock_client(c, client, NULL, client_currency, true, err, errlen);
    if (st != DB_OK)
        return st;
    /* Credit that lapsed before `on` is written off first, so it is neither
     * available nor consumed ahead of younger credit. */
    st = credit_expire_scoped(c, on, 0, client, NULL, NULL, NULL, err, errlen);
    if (st != DB_OK)
        return st;
    int64_t balance = 0;
    st = credit_sum(c, client, &balance, err, errlen);
    if (st != DB_OK)
        return st;
    if (balance <= 0 && max_cents == 0)
        return DB_OK;
    if (strcmp(client_currency, inv_currency) != 0) {
        ll_failf(err, errlen,
                 "cannot apply credit to invoice %lld: it is in %s but client %lld's credit "
                 "balance is in %s; credit is applied only to invoices in the client's currency",
                 (long long)invoice_id, inv_currency, (long long)client, client_currency);
        return DB_PERMANENT;
    }
    int64_t amount = balance < due ? balance : due;
    if (amount < 0)
        amount = 0;
    if (max_cents > 0 && max_cents > amount) {
        /* An explicit amount is what the operator asked for: never less. */
        ll_failf(err, errlen,
                 "rule 4: cannot apply %lld cents of credit to invoice %lld: the client's "
                 "balance is %lld cents and the invoice's balance due %lld cents; apply at "
                 "most %lld cents, or omit the amount to apply what is available",
                 (long long)max_cents, (long long)invoice_id, (long long)balance, (long long)due,
                 (long long)amount);
        return DB_PERMANENT;
    }
    if (max_cents > 0)
        amount = max_cents;

    char bf[24], bc[24], bi[24], ba[24];
    const char *pa[] = {db_i64(firm, bf, sizeof bf),
                        db_i64(client, bc, sizeof bc),
                        db_i64(invoice_id, bi, sizeof bi),
                        db_i64(amount, ba, sizeof ba),
                        amount == due ? "invoice_payment" : "partial_payment",
                        ll_blank(actor) ? NULL : actor,
                        number,
                        inv_currency};
    st = db_command(c, APPLY_SQL, 8, pa, err, errlen);
    if (st != DB_OK)
        return st;
    const char *pl[] = {pa[2], pa[3], day};
    r = db_exec(c, "SELECT new_status FROM billing.land_money($1, $2, $3::date)", 3, pl, &st, err,
                errlen);
    if (r == NULL)
        return st;
    bool now_paid = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "paid") == 0;
    PQclear(r);
    if (now_paid) {
        /* Paid in full by credit (billing.land_money queued invoice.paid). */
        char bt[24];
        const char *pp[] = {pa[0], pa[1], pa[2], pa[5], db_i64(total, bt, sizeof bt)};
        st = db_command(c, llq_credit_audit_invoice_paid, 5, pp, err, errlen);
        if (st != DB_OK)
            return st;
    }
    if (applied)
        *applied = amount;
    return DB_OK;
}
