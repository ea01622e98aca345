/* test_credit.c: the credit ledger (common/credit.c, sql/005_credit.sql)
 * against the real database: BILLING_RULES section 4. Each test makes its
 * own firm and expires firm-scoped, so tests never see each other's data.
 * Covers: add/balance with audit ids, goodwill refusal (C and database),
 * debits above the balance, two racing debits (two connections, one blocked
 * on the other's lock), two racing applications (threads), partial and full
 * application (payments row, invoice.paid in the outbox), oldest credit
 * first, expiry once (also when two expiries race), lapsed credit not
 * applied, currency and status refusals, and running inside the caller's
 * transaction. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/credit.h"
#include "ledgerline/db.h"
#include "ledgerline/log.h"
#include "support/dbtest.h"

static db_conn *db;
static PGconn *pg;

static const char *I(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

static civil_date D(const char *text)
{
    civil_date d;
    assert_true(date_parse(text, &d));
    return d;
}

static int setup(void **state)
{
    (void)state;
    pg = dbtest_connect();
    char err[256];
    db = db_connect(getenv("DATABASE_URL"), 0, err, sizeof err);
    log_init("test_credit");
    log_set_level(LL_LOG_WARN);
    return db ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    db_close(db);
    PQfinish(pg);
    return 0;
}

static int64_t q(const char *sql, int n, const char *const *p)
{
    return dbtest_ok(pg, sql, n, p);
}

static int64_t client_in(int64_t firm, const char *currency)
{
    const char *p[] = {I(firm), currency};
    return q("INSERT INTO billing.clients(firm_id, company_name, currency) "
             "VALUES ($1, 'Client', $2) RETURNING id",
             2, p);
}

/* An issued invoice (status given) of total cents, one adjustment line. */
static int64_t invoice_new(int64_t firm, int64_t client, int64_t total, const char *status,
                           const char *currency)
{
    char number[96];
    snprintf(number, sizeof number, "T-%s", dbtest_unique());
    const char *p[] = {I(firm), I(client), number, status, currency, I(total)};
    return q("WITH i AS (INSERT INTO billing.invoices(firm_id, client_id, engagement_override, "
             "  engagement_override_reason, engagement_override_by, invoice_number, status, "
             "  currency, subtotal_cents, total_cents, issue_date, due_date) "
             "  VALUES ($1, $2, true, 'test', 'tester', $3, $4, $5, $6::bigint, $6::bigint, "
             "  '2026-01-01', '2026-01-31') RETURNING id, firm_id), "
             "l AS (INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
             "  description, quantity, rate_cents, amount_cents) "
             "  SELECT id, firm_id, 'adjustment', 'Work', 1, $6::bigint, $6::bigint FROM i) "
             "SELECT id FROM i",
             6, p);
}

/* credit_add in its own transaction. */
typedef struct {
    credit_add_params p;
    int64_t id;
} add_arg;

static db_status add_fn(db_conn *c, void *v, char *err, size_t errlen)
{
    add_arg *a = v;
    return credit_add(c, &a->p, &a->id, err, errlen);
}

static int64_t add_credit(int64_t client, int64_t cents, const char *source, const char *expires)
{
    add_arg a = {.p = {.client_id = client,
                       .amount_cents = cents,
                       .source = source,
                       .description = "test credit",
                       .reason = "test",
                       .approved_by = "lee"}};
    if (expires) {
        a.p.has_expiry = true;
        a.p.expires_at = D(expires);
    }
    char err[1024] = "";
    db_status st = db_run_tx(db, add_fn, &a, err, sizeof err);
    if (st != DB_OK)
        fail_msg("credit_add: %s", err);
    return a.id;
}

typedef struct {
    int64_t invoice_id, max;
    civil_date on;
    int64_t applied;
} apply_arg;

static db_status apply_fn(db_conn *c, void *v, char *err, size_t errlen)
{
    apply_arg *a = v;
    return credit_apply_to_invoice(c, a->invoice_id, a->max, a->on, "ops", &a->applied, err,
                                   errlen);
}

static db_status apply(db_conn *c, int64_t invoice, int64_t max, const char *on, int64_t *applied,
                       char *err, size_t errlen)
{
    apply_arg a = {.invoice_id = invoice, .max = max, .on = D(on)};
    db_status st = db_run_tx(c, apply_fn, &a, err, errlen);
    *applied = a.applied;
    return st;
}

static int64_t apply_ok(int64_t invoice, int64_t max, const char *on)
{
    int64_t applied = -1;
    char err[1024] = "";
    db_status st = apply(db, invoice, max, on, &applied, err, sizeof err);
    if (st != DB_OK)
        fail_msg("credit_apply_to_invoice: %s", err);
    return applied;
}

typedef struct {
    civil_date as_of;
    int64_t firm, entries, amount;
} expire_arg;

static db_status expire_fn(db_conn *c, void *v, char *err, size_t errlen)
{
    expire_arg *a = v;
    return credit_expire(c, a->as_of, a->firm, &a->entries, &a->amount, err, errlen);
}

static int64_t expire(int64_t firm, const char *as_of, int64_t *amount)
{
    expire_arg a = {.as_of = D(as_of), .firm = firm};
    char err[1024] = "";
    db_status st = db_run_tx(db, expire_fn, &a, err, sizeof err);
    if (st != DB_OK)
        fail_msg("credit_expire: %s", err);
    if (amount)
        *amount = a.amount;
    return a.entries;
}

static int64_t balance(int64_t client)
{
    const char *p[] = {I(client)};
    return q("SELECT coalesce(sum(CASE entry_type WHEN 'credit' THEN amount_cents "
             "ELSE -amount_cents END), 0) FROM billing.credit_ledger WHERE client_id = $1",
             1, p);
}

static int64_t remaining(int64_t client, int64_t entry)
{
    const char *p[] = {I(client), I(entry)};
    return q("SELECT remaining_cents FROM billing.credit_remainders($1) WHERE entry_id = $2", 2, p);
}

/* Every entry of the firm records an audit event of the firm with the
 * action its kind calls for, and whose metadata names the entry. */
static void assert_entries_audited(int64_t firm)
{
    const char *p[] = {I(firm)};
    assert_int_equal(
        q("SELECT count(*) FROM billing.credit_ledger l LEFT JOIN billing.audit_events a "
          "ON a.id = l.audit_event_id WHERE l.firm_id = $1 AND (a.id IS NULL "
          "OR a.firm_id <> l.firm_id OR (a.metadata->>'entry_id')::bigint <> l.id "
          "OR a.action <> CASE WHEN l.entry_type = 'credit' THEN 'credit_created' "
          "  WHEN l.use = 'expired' THEN 'credit_expired' ELSE 'credit_applied' END)",
          1, p),
        0);
}

/* ---- add and balance ---------------------------------------------------- */

static void test_add_and_balance(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    int64_t e1 = add_credit(client, 2500, "promotional", NULL);
    int64_t e2 = add_credit(client, 1000, "goodwill", "2026-12-31");
    assert_true(e2 > e1);

    int64_t bal = -1;
    char cur[4] = "", err[512];
    assert_int_equal(credit_balance(db, client, &bal, cur, err, sizeof err), DB_OK);
    assert_int_equal(bal, 3500);
    assert_string_equal(cur, "usd");
    assert_int_equal(credit_balance(db, 999999999999, &bal, cur, err, sizeof err), DB_PERMANENT);
    assert_non_null(strstr(err, "no such client"));

    const char *p[] = {I(e2)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger l JOIN billing.audit_events a "
                       "ON a.id = l.audit_event_id WHERE l.id = $1 AND l.source = 'goodwill' "
                       "AND l.expires_at = '2026-12-31' AND l.reason = 'test' "
                       "AND l.approved_by = 'lee' AND a.action = 'credit_created' "
                       "AND (a.metadata->>'amount_cents')::bigint = 1000 "
                       "AND a.metadata->>'source' = 'goodwill'",
                       1, p),
                     1);
    assert_entries_audited(firm);

    /* Bad input is refused before anything is written. */
    add_arg a = {.p = {.client_id = client, .amount_cents = 0, .source = "promotional"}};
    assert_int_equal(db_run_tx(db, add_fn, &a, err, sizeof err), DB_PERMANENT);
    a.p.amount_cents = 10;
    a.p.source = "gift";
    assert_int_equal(db_run_tx(db, add_fn, &a, err, sizeof err), DB_PERMANENT);
    assert_non_null(strstr(err, "source must be one of"));
    a.p.source = "overpayment"; /* without the invoice overpaid */
    assert_int_equal(db_run_tx(db, add_fn, &a, err, sizeof err), DB_PERMANENT);
    a.p.source = "promotional";
    a.p.client_id = 999999999999;
    assert_int_equal(db_run_tx(db, add_fn, &a, err, sizeof err), DB_PERMANENT);
    assert_non_null(strstr(err, "no such client"));
    assert_int_equal(balance(client), 3500);

    /* Overpayment: names the invoice overpaid (an invoice of this client). */
    int64_t inv = invoice_new(firm, client, 1000, "paid", "usd");
    add_arg o = {.p = {.client_id = client,
                       .amount_cents = 250,
                       .source = "overpayment",
                       .description = "Overpayment",
                       .source_invoice_id = inv}};
    assert_int_equal(db_run_tx(db, add_fn, &o, err, sizeof err), DB_OK);
    const char *po[] = {I(o.id), I(inv)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE id = $1 "
                       "AND source = 'overpayment' AND source_invoice_id = $2",
                       2, po),
                     1);
    int64_t other = client_in(firm, "usd");
    int64_t other_inv = invoice_new(firm, other, 1000, "paid", "usd");
    o.p.source_invoice_id = other_inv;
    assert_int_equal(db_run_tx(db, add_fn, &o, err, sizeof err), DB_PERMANENT);
    assert_non_null(strstr(err, "not an invoice of client"));
    assert_int_equal(balance(client), 3750);
}

/* ---- goodwill needs reason and approver --------------------------------- */

static void test_goodwill_needs_reason_and_approver(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    char err[512];
    const char *sources[] = {"goodwill", "correction"};
    for (int i = 0; i < 2; i++) {
        add_arg a = {.p = {.client_id = client,
                           .amount_cents = 500,
                           .source = sources[i],
                           .description = "sorry",
                           .approved_by = "lee"}};
        assert_int_equal(db_run_tx(db, add_fn, &a, err, sizeof err), DB_PERMANENT);
        assert_non_null(strstr(err, "needs a reason"));
        a.p.reason = "  ";
        assert_int_equal(db_run_tx(db, add_fn, &a, err, sizeof err), DB_PERMANENT);
        a.p.reason = "late delivery";
        a.p.approved_by = NULL;
        assert_int_equal(db_run_tx(db, add_fn, &a, err, sizeof err), DB_PERMANENT);
    }
    assert_int_equal(balance(client), 0);

    /* The database refuses it too, whoever writes the row. */
    const char *p[] = {I(firm), I(client)};
    dbtest_refused(pg, "credit_ledger_rule_4_goodwill_needs_reason_and_approver",
                   "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                   "amount_cents, source, approved_by) VALUES ($1, $2, 'credit', 500, "
                   "'goodwill', 'lee')",
                   2, p);
    const char *pf[] = {I(firm)};
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1", 1, pf), 0);
}

/* ---- debits are bounded by the balance ---------------------------------- */

static void test_debit_above_balance_refused(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    add_credit(client, 1000, "promotional", NULL);
    int64_t inv = invoice_new(firm, client, 5000, "sent", "usd");
    const char *p[] = {I(firm), I(client), I(inv), "1001"};
    dbtest_refused(pg, "rule 4 (credit balance)",
                   "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                   "amount_cents, use, applied_to_invoice_id) VALUES ($1, $2, 'debit', $4, "
                   "'partial_payment', $3)",
                   4, p);
    assert_int_equal(balance(client), 1000);
    /* The ledger is append-only. */
    const char *pc[] = {I(client)};
    dbtest_refused(pg, "rule 1.7 (append-only)",
                   "UPDATE billing.credit_ledger SET amount_cents = 1 WHERE client_id = $1", 1, pc);
    dbtest_refused(pg, "rule 1.7 (append-only)",
                   "DELETE FROM billing.credit_ledger WHERE client_id = $1", 1, pc);
    /* expired_entry_id: only on `expired` debits, naming an expiring credit
     * of the same client. */
    int64_t plain = add_credit(client, 10, "refund", NULL);
    int64_t other = client_in(firm, "usd");
    int64_t others = add_credit(other, 10, "refund", "2026-12-31");
    const char *pe[] = {I(firm), I(client), I(inv), I(plain)};
    dbtest_refused(pg, "credit_ledger_rule_4_expired_entry_only_on_expiry",
                   "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                   "amount_cents, use, applied_to_invoice_id, expired_entry_id) "
                   "VALUES ($1, $2, 'debit', 5, 'partial_payment', $3, $4)",
                   4, pe);
    static const char *const EXPIRED_DEBIT =
        "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, amount_cents, use, "
        "expired_entry_id) VALUES ($1, $2, 'debit', 5, 'expired', $3)";
    const char *pn[] = {I(firm), I(client), I(plain)};
    dbtest_refused(pg, "has no expiry date", EXPIRED_DEBIT, 3, pn);
    const char *po[] = {I(firm), I(client), I(others)};
    dbtest_refused(pg, "which is not a credit of client", EXPIRED_DEBIT, 3, po);
    assert_int_equal(balance(client), 1010);
    assert_int_equal(balance(other), 10);
}

/* ---- two racing debits: exactly one fits -------------------------------- */

static PGconn *connect_raw(void)
{
    PGconn *c = PQconnectdb(getenv("DATABASE_URL"));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void test_racing_debits(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    add_credit(client, 1000, "promotional", NULL);
    int64_t inv1 = invoice_new(firm, client, 5000, "sent", "usd");
    int64_t inv2 = invoice_new(firm, client, 5000, "sent", "usd");
    static const char *const DEBIT =
        "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, amount_cents, use, "
        "applied_to_invoice_id) VALUES ($1, $2, 'debit', 600, 'partial_payment', $3)";

    PGconn *a = connect_raw(), *b = connect_raw();
    PQclear(PQexec(a, "BEGIN"));
    const char *pa[] = {I(firm), I(client), I(inv1)};
    PGresult *r = PQexecParams(a, DEBIT, 3, NULL, pa, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);

    /* b's debit (600 fits the balance of 1000 on its own) waits for a's lock
     * on the client row. */
    const char *pb[] = {I(firm), I(client), I(inv2)};
    assert_int_equal(PQsendQueryParams(b, DEBIT, 3, NULL, pb, NULL, NULL, 0), 1);
    const char *pid[] = {I(PQbackendPID(b))};
    int waiting = 0;
    for (int i = 0; i < 3000 && !waiting; i++) {
        waiting = (int)q("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 "
                         "AND wait_event_type = 'Lock'",
                         1, pid);
        if (!waiting)
            usleep(10000);
    }
    assert_int_equal(waiting, 1); /* it really is blocked behind a */

    r = PQexec(a, "COMMIT");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQgetResult(b);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(r), "rule 4 (credit balance)"));
    PQclear(r);
    while ((r = PQgetResult(b)) != NULL)
        PQclear(r);
    PQfinish(a);
    PQfinish(b);

    const char *pc[] = {I(client)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE client_id = $1 "
                       "AND entry_type = 'debit'",
                       1, pc),
                     1);
    assert_int_equal(balance(client), 400);
}

/* ---- two racing applications (threads, own connections) ----------------- */

typedef struct {
    int64_t invoice;
    pthread_barrier_t *go;
    db_status st;
    int64_t applied;
    char err[512];
} race_arg;

static void *race_apply(void *v)
{
    race_arg *r = v;
    char err[256];
    db_conn *c = db_connect(getenv("DATABASE_URL"), 0, err, sizeof err);
    pthread_barrier_wait(r->go);
    if (c == NULL) {
        r->st = DB_TRANSIENT;
        return NULL;
    }
    /* A serialization failure would be retried by a worker; here the
     * default READ COMMITTED makes the second wait and then see the first. */
    r->st = apply(c, r->invoice, 0, "2026-03-01", &r->applied, r->err, sizeof r->err);
    db_close(c);
    return NULL;
}

static void test_racing_applications(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    add_credit(client, 1000, "promotional", NULL);
    int64_t inv1 = invoice_new(firm, client, 800, "sent", "usd");
    int64_t inv2 = invoice_new(firm, client, 800, "sent", "usd");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    race_arg r1 = {.invoice = inv1, .go = &go}, r2 = {.invoice = inv2, .go = &go};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, race_apply, &r1);
    pthread_create(&t2, NULL, race_apply, &r2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&go);
    if (r1.st != DB_OK || r2.st != DB_OK)
        fail_msg("apply failed: %s / %s", r1.err, r2.err);
    /* Each alone could take 800; together they take exactly the 1000. */
    assert_int_equal(r1.applied + r2.applied, 1000);
    assert_true((r1.applied == 800 && r2.applied == 200) ||
                (r1.applied == 200 && r2.applied == 800));
    assert_int_equal(balance(client), 0);
    const char *p[] = {I(inv1), I(inv2)};
    assert_int_equal(
        q("SELECT sum(amount_paid_cents) FROM billing.invoices WHERE id IN ($1, $2)", 2, p), 1000);
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id IN ($1, $2) "
                       "AND status = 'paid'",
                       2, p),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id IN ($1, $2) "
                       "AND status = 'partial'",
                       2, p),
                     1);
    assert_entries_audited(firm);
}

/* ---- applying: partial, then paid --------------------------------------- */

static void test_apply_partial_then_paid(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    int64_t inv = invoice_new(firm, client, 10000, "sent", "usd");
    /* No credit: nothing applied, nothing written. */
    assert_int_equal(apply_ok(inv, 0, "2026-02-01"), 0);

    add_credit(client, 4000, "promotional", NULL);
    assert_int_equal(apply_ok(inv, 0, "2026-02-01"), 4000);
    const char *pi[] = {I(inv)};
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id = $1 AND status = 'partial' "
                       "AND amount_paid_cents = 4000 AND paid_date IS NULL",
                       1, pi),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger l JOIN billing.audit_events a "
                       "ON a.id = l.audit_event_id WHERE l.applied_to_invoice_id = $1 "
                       "AND l.entry_type = 'debit' AND l.use = 'partial_payment' "
                       "AND l.amount_cents = 4000 AND l.created_by = 'ops' "
                       "AND a.action = 'credit_applied' AND a.actor = 'ops' "
                       "AND (a.metadata->>'invoice_id')::bigint = $1 "
                       "AND (a.metadata->>'amount_cents')::bigint = 4000 "
                       "AND (a.metadata->>'client_id')::bigint = l.client_id "
                       "AND (a.metadata->>'entry_id')::bigint = l.id",
                       1, pi),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1 "
                       "AND source = 'credit' AND amount_cents = 4000",
                       1, pi),
                     1);

    /* --amount-cents caps it. */
    add_credit(client, 7000, "refund", NULL);
    assert_int_equal(apply_ok(inv, 1500, "2026-02-02"), 1500);
    assert_int_equal(q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1", 1, pi),
                     5500);

    /* The rest settles it: invoice_payment, paid, invoice.paid queued. */
    assert_int_equal(apply_ok(inv, 0, "2026-02-03"), 4500);
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id = $1 AND status = 'paid' "
                       "AND amount_paid_cents = 10000 AND paid_date = '2026-02-03'",
                       1, pi),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger "
                       "WHERE applied_to_invoice_id = $1 "
                       "AND use = 'invoice_payment' AND amount_cents = 4500",
                       1, pi),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1 "
                       "AND source = 'credit'",
                       1, pi),
                     3);
    assert_int_equal(q("SELECT count(*) FROM billing.outbox WHERE topic = 'invoices' "
                       "AND msg_key = $1::text AND payload->>'type' = 'invoice.paid' "
                       "AND payload->>'idempotency_key' = 'invoice.paid:' || $1 "
                       "AND payload->>'status' = 'paid'",
                       1, pi),
                     1);
    const char *pf[] = {I(firm), I(inv)};
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1 "
                       "AND action = 'invoice_paid' AND (metadata->>'invoice_id')::bigint = $2",
                       2, pf),
                     1);
    assert_int_equal(balance(client), 1000);

    /* Paid: nothing more is applied. */
    assert_int_equal(apply_ok(inv, 0, "2026-02-04"), 0);
    assert_int_equal(balance(client), 1000);
    assert_entries_audited(firm);
}

/* ---- refusals ----------------------------------------------------------- */

static void test_apply_refusals(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    add_credit(client, 5000, "promotional", NULL);
    char err[1024];
    int64_t applied;
    const char *refused[] = {"draft", "cancelled", "refunded", "charged_back", "disputed"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int64_t inv = invoice_new(firm, client, 1000, refused[i], "usd");
        assert_int_equal(apply(db, inv, 0, "2026-02-01", &applied, err, sizeof err), DB_PERMANENT);
        assert_non_null(strstr(err, refused[i]));
    }
    assert_int_equal(apply(db, 999999999999, 0, "2026-02-01", &applied, err, sizeof err),
                     DB_PERMANENT);
    assert_non_null(strstr(err, "no such invoice"));

    /* Credit is in the client's currency; an invoice in another is refused. */
    int64_t eur = invoice_new(firm, client, 1000, "sent", "eur");
    assert_int_equal(apply(db, eur, 0, "2026-02-01", &applied, err, sizeof err), DB_PERMANENT);
    assert_non_null(strstr(err, "currency"));
    assert_int_equal(balance(client), 5000);

    /* Failed and overdue invoices take credit. */
    int64_t failed = invoice_new(firm, client, 1000, "failed", "usd");
    int64_t overdue = invoice_new(firm, client, 1000, "overdue", "usd");
    assert_int_equal(apply_ok(failed, 0, "2026-02-01"), 1000);
    assert_int_equal(apply_ok(overdue, 400, "2026-02-01"), 400);
    assert_int_equal(balance(client), 3600);

    /* No credit at all: an invoice in another currency is simply not paid
     * by credit (an autopay charge must not be blocked by it). */
    int64_t poor = client_in(firm, "usd");
    int64_t eur2 = invoice_new(firm, poor, 1000, "sent", "eur");
    assert_int_equal(apply_ok(eur2, 0, "2026-02-01"), 0);
}

/* ---- inside the caller's transaction ------------------------------------ */

static void test_apply_inside_caller_transaction(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    add_credit(client, 3000, "promotional", NULL);
    int64_t inv = invoice_new(firm, client, 2000, "sent", "usd");
    char err[512];
    assert_int_equal(db_command(db, "BEGIN", 0, NULL, err, sizeof err), DB_OK);
    int64_t applied = 0;
    assert_int_equal(
        credit_apply_to_invoice(db, inv, 0, D("2026-02-01"), NULL, &applied, err, sizeof err),
        DB_OK);
    assert_int_equal(applied, 2000);
    /* Still the caller's open transaction: rolling it back undoes all. */
    assert_int_equal(PQtransactionStatus(db->pg), PQTRANS_INTRANS);
    assert_int_equal(db_command(db, "ROLLBACK", 0, NULL, err, sizeof err), DB_OK);
    const char *pi[] = {I(inv)};
    assert_int_equal(q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1", 1, pi), 0);
    assert_int_equal(q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1", 1, pi), 0);
    assert_int_equal(q("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text "
                       "AND payload->>'type' = 'invoice.paid'",
                       1, pi),
                     0);
    assert_int_equal(balance(client), 3000);

    /* And committed by the caller, it is all there. */
    assert_int_equal(db_command(db, "BEGIN", 0, NULL, err, sizeof err), DB_OK);
    assert_int_equal(
        credit_apply_to_invoice(db, inv, 0, D("2026-02-01"), NULL, &applied, err, sizeof err),
        DB_OK);
    assert_int_equal(db_command(db, "COMMIT", 0, NULL, err, sizeof err), DB_OK);
    assert_int_equal(q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1", 1, pi),
                     2000);
    assert_int_equal(balance(client), 1000);
}

/* ---- oldest credit first ------------------------------------------------ */

static void test_oldest_credit_first(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    /* The older credit expires: applying uses it first, so its expiry later
     * removes nothing. */
    int64_t c1 = client_in(firm, "usd");
    int64_t old1 = add_credit(c1, 5000, "promotional", "2026-06-30");
    int64_t new1 = add_credit(c1, 5000, "refund", NULL);
    int64_t inv1 = invoice_new(firm, c1, 5000, "sent", "usd");
    assert_int_equal(apply_ok(inv1, 0, "2026-06-15"), 5000);
    assert_int_equal(remaining(c1, old1), 0);
    assert_int_equal(remaining(c1, new1), 5000);

    /* The newer credit expires: applying uses the older one, and the newer
     * one's remainder expires in full. */
    int64_t c2 = client_in(firm, "usd");
    int64_t old2 = add_credit(c2, 5000, "refund", NULL);
    int64_t new2 = add_credit(c2, 5000, "promotional", "2026-06-30");
    int64_t inv2 = invoice_new(firm, c2, 3000, "sent", "usd");
    assert_int_equal(apply_ok(inv2, 0, "2026-06-15"), 3000);
    assert_int_equal(remaining(c2, old2), 2000);
    assert_int_equal(remaining(c2, new2), 5000);

    int64_t amount = 0;
    assert_int_equal(expire(firm, "2026-07-15", &amount), 1);
    assert_int_equal(amount, 5000);
    assert_int_equal(balance(c1), 5000);
    assert_int_equal(balance(c2), 2000);
    const char *p[] = {I(c2), I(new2)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE client_id = $1 "
                       "AND use = 'expired' AND expired_entry_id = $2 AND amount_cents = 5000",
                       2, p),
                     1);
    const char *p1[] = {I(c1)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE client_id = $1 "
                       "AND use = 'expired'",
                       1, p1),
                     0);
    assert_entries_audited(firm);
}

/* ---- expiry: the unused remainder, once --------------------------------- */

static void test_expiry_once(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    int64_t credit = add_credit(client, 3000, "promotional", "2026-03-31");
    add_credit(client, 700, "refund", NULL);
    int64_t inv = invoice_new(firm, client, 1000, "sent", "usd");
    assert_int_equal(apply_ok(inv, 0, "2026-03-15"), 1000);
    assert_int_equal(remaining(client, credit), 2000);

    /* Its last usable day: nothing expires yet. */
    assert_int_equal(expire(firm, "2026-03-31", NULL), 0);
    int64_t amount = 0;
    assert_int_equal(expire(firm, "2026-04-01", &amount), 1);
    assert_int_equal(amount, 2000);
    assert_int_equal(expire(firm, "2026-04-01", &amount), 0);
    assert_int_equal(amount, 0);
    assert_int_equal(expire(firm, "2027-01-01", NULL), 0);
    assert_int_equal(balance(client), 700);

    const char *p[] = {I(client), I(credit)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger l JOIN billing.audit_events a "
                       "ON a.id = l.audit_event_id WHERE l.client_id = $1 AND l.use = 'expired' "
                       "AND l.expired_entry_id = $2 AND l.amount_cents = 2000 "
                       "AND l.description LIKE '%credit entry ' || $2 || ' %' "
                       "AND a.action = 'credit_expired' "
                       "AND (a.metadata->>'credit_entry_id')::bigint = $2 "
                       "AND (a.metadata->>'amount_cents')::bigint = 2000",
                       2, p),
                     1);
    /* The database refuses expiring it again, whoever writes the row. */
    const char *pd[] = {I(firm), I(client), I(credit)};
    dbtest_refused(pg, "rule 4 (credit expiry)",
                   "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                   "amount_cents, use, expired_entry_id) "
                   "VALUES ($1, $2, 'debit', 1, 'expired', $3)",
                   3, pd);
    assert_entries_audited(firm);
}

/* ---- lapsed credit is not applied, even before `credit expire` ran ------- */

static void test_lapsed_credit_not_applied(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = client_in(firm, "usd");
    int64_t lapsed = add_credit(client, 3000, "promotional", "2026-03-31");
    add_credit(client, 2000, "refund", NULL);
    int64_t inv = invoice_new(firm, client, 10000, "sent", "usd");
    /* Applied on 04-10: only the 2000 that has not lapsed is available; the
     * lapsed 3000 is written off first (not consumed ahead of the other). */
    assert_int_equal(apply_ok(inv, 0, "2026-04-10"), 2000);
    assert_int_equal(balance(client), 0);
    const char *p[] = {I(client), I(lapsed)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE client_id = $1 "
                       "AND use = 'expired' AND expired_entry_id = $2 AND amount_cents = 3000",
                       2, p),
                     1);
    assert_int_equal(expire(firm, "2026-04-10", NULL), 0);
    const char *pi[] = {I(inv)};
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id = $1 AND status = 'partial' "
                       "AND amount_paid_cents = 2000",
                       1, pi),
                     1);
    assert_entries_audited(firm);
}

/* ---- firm scoping of expiry --------------------------------------------- */

static void test_expire_firm_scoped(void **state)
{
    (void)state;
    int64_t f1 = dbtest_firm(pg), f2 = dbtest_firm(pg);
    int64_t c1 = client_in(f1, "usd"), c2 = client_in(f2, "usd");
    add_credit(c1, 100, "promotional", "2026-01-31");
    add_credit(c2, 200, "promotional", "2026-01-31");
    int64_t amount = 0;
    assert_int_equal(expire(f1, "2026-02-01", &amount), 1);
    assert_int_equal(amount, 100);
    assert_int_equal(balance(c1), 0);
    assert_int_equal(balance(c2), 200);
    assert_int_equal(expire(f2, "2026-02-01", &amount), 1);
    assert_int_equal(balance(c2), 0);
}

/* ---- two racing expiries: the remainder is written off once ------------- */

typedef struct {
    int64_t firm;
    pthread_barrier_t *go;
    db_status st;
    int64_t entries;
    char err[512];
} expire_race_arg;

static void *race_expire(void *v)
{
    expire_race_arg *r = v;
    char err[256];
    db_conn *c = db_connect(getenv("DATABASE_URL"), 0, err, sizeof err);
    pthread_barrier_wait(r->go);
    if (c == NULL) {
        r->st = DB_TRANSIENT;
        return NULL;
    }
    expire_arg a = {.as_of = D("2026-05-01"), .firm = r->firm};
    r->st = db_run_tx(c, expire_fn, &a, r->err, sizeof r->err);
    r->entries = a.entries;
    db_close(c);
    return NULL;
}

static void test_racing_expiries(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t c1 = client_in(firm, "usd"), c2 = client_in(firm, "usd");
    add_credit(c1, 300, "promotional", "2026-04-15");
    add_credit(c2, 400, "promotional", "2026-04-15");
    add_credit(c2, 50, "refund", NULL);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    expire_race_arg r1 = {.firm = firm, .go = &go}, r2 = {.firm = firm, .go = &go};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, race_expire, &r1);
    pthread_create(&t2, NULL, race_expire, &r2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&go);
    if (r1.st != DB_OK || r2.st != DB_OK)
        fail_msg("expire failed: %s / %s", r1.err, r2.err);
    assert_int_equal(r1.entries + r2.entries, 2);
    assert_int_equal(balance(c1), 0);
    assert_int_equal(balance(c2), 50);
    const char *pf[] = {I(firm)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE firm_id = $1 "
                       "AND use = 'expired'",
                       1, pf),
                     2);
    assert_entries_audited(firm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_balance),
        cmocka_unit_test(test_goodwill_needs_reason_and_approver),
        cmocka_unit_test(test_debit_above_balance_refused),
        cmocka_unit_test(test_racing_debits),
        cmocka_unit_test(test_racing_applications),
        cmocka_unit_test(test_apply_partial_then_paid),
        cmocka_unit_test(test_apply_refusals),
        cmocka_unit_test(test_apply_inside_caller_transaction),
        cmocka_unit_test(test_oldest_credit_first),
        cmocka_unit_test(test_expiry_once),
        cmocka_unit_test(test_lapsed_credit_not_applied),
        cmocka_unit_test(test_expire_firm_scoped),
        cmocka_unit_test(test_racing_expiries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
