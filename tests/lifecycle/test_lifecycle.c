/* test_lifecycle.c: the invoice lifecycle (docs/INVOICES.md, sql/012 and
 * sql/013): every database rule refused for a direct writer with its rule in
 * the message; gapless legal numbers (scheduled invoicing in its set-based
 * batch, racing issuers in separate processes, rolled-back issues, a new
 * year, two firms); review drafts; billingctl firm settings, invoice adjust,
 * invoice issue and invoice void with their rows, statuses, amounts, audit
 * events, outbox events and exit statuses. Each test makes its own firm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/db.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/log.h"
#include "ledgerline/payments.h"
#include "ledgerline/stripe.h"
#include "support/ctltest.h"
#include "support/dbtest.h"
#include "support/standin.h"

static PGconn *pg;
static db_conn *db;
static char out[65536], errout[65536];

#define ctl(...) ctltest(out, sizeof out, errout, sizeof errout, NULL, __VA_ARGS__)

static const char *I(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

static int setup(void **state)
{
    (void)state;
    log_init("test_lifecycle");
    pg = dbtest_connect();
    char err[512];
    db = db_connect(getenv("DATABASE_URL"), 0, err, sizeof err);
    if (db == NULL) {
        fprintf(stderr, "connect: %s\n", err);
        return -1;
    }
    return 0;
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

static const char *qt(const char *sql, int n, const char *const *p)
{
    return dbtest_text(pg, sql, n, p);
}

static int64_t q1(const char *sql, int64_t id)
{
    const char *p[] = {I(id)};
    return q(sql, 1, p);
}

static int64_t firm_with_prefix(const char *prefix)
{
    int64_t f = dbtest_firm(pg);
    if (prefix != NULL) {
        const char *p[] = {I(f), prefix};
        q("INSERT INTO billing.firm_settings(firm_id, number_prefix) VALUES ($1, $2)", 2, p);
    }
    return f;
}

static int64_t client_new(int64_t firm, int tax_bp, bool autopay)
{
    const char *p[] = {I(firm), I(tax_bp), autopay ? "true" : "false"};
    return q("INSERT INTO billing.clients(firm_id, company_name, tax_rate_bp, autopay_enabled,"
             " autopay_payment_method_id) VALUES ($1, 'Client', $2, $3,"
             " CASE WHEN $3::boolean THEN 'pm_card_visa' END) RETURNING id",
             3, p);
}

static int64_t eng_new(int64_t firm, int64_t client, const char *mode, const char *fee,
                       const char *rate)
{
    const char *p[] = {I(firm), I(client), mode, fee, rate};
    return q("INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode,"
             " package_fee_cents, package_fee_schedule, hourly_rate_cents, start_date,"
             " payment_terms_days) VALUES ($1, $2, 'Advisory', $3, $4, 'monthly', $5,"
             " '2026-01-01', 15) RETURNING id",
             5, p);
}

static int64_t entry_new(int64_t firm, int64_t eng, const char *date, const char *hours)
{
    const char *p[] = {I(firm), I(eng), date, hours};
    return q("INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, hours,"
             " approved, approved_by, approved_at) VALUES ($1, $2, 'ann', $3, $4, true, 'pat',"
             " now()) RETURNING id",
             4, p);
}

static void tick(int64_t firm, const char *date)
{
    invoicing_params p = {.shard = 0, .shards = 1, .firm_id = firm};
    assert_true(date_parse(date, &p.business_date));
    invoicing_stats st;
    char err[1024];
    if (invoicing_run(db, &p, &st, err, sizeof err) != DB_OK)
        fail_msg("invoicing_run: %s", err);
}

/* A package invoice issued by scheduled invoicing (a legal number). */
static int64_t issued_invoice(int64_t firm, int64_t *client_out)
{
    int64_t cl = client_new(firm, 1000, false);
    int64_t e = eng_new(firm, cl, "package", "100000", NULL);
    tick(firm, "2026-03-01");
    if (client_out)
        *client_out = cl;
    return q1("SELECT id FROM billing.invoices WHERE engagement_id = $1", e);
}

/* ---- 12.1 .. 12.5 and 1.4 for a direct writer ---------------------------------- */

static void test_database_rules_for_direct_writers(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("ACME"), cl;
    int64_t inv = issued_invoice(f, &cl);
    const char *pi[] = {I(inv)};
    assert_string_equal(qt("SELECT legal_number FROM billing.invoices WHERE id = $1", 1, pi),
                        "ACME-2026-000001");

    /* 12.1: set once, never changed or removed. */
    dbtest_refused(pg, "rule 12.1 (legal number)",
                   "UPDATE billing.invoices SET legal_number = 'ACME-2026-000099' WHERE id = $1", 1,
                   pi);
    dbtest_refused(pg, "rule 12.1 (legal number)",
                   "UPDATE billing.invoices SET legal_number = NULL WHERE id = $1", 1, pi);
    /* 12.1: unique per firm; another firm may use the same text. */
    int64_t draft = q("INSERT INTO billing.invoices(firm_id, client_id, invoice_number,"
                      " engagement_override, engagement_override_reason, engagement_override_by)"
                      " SELECT firm_id, client_id, 'INV-d-' || id, true, 'test', 'pat'"
                      " FROM billing.invoices WHERE id = $1 RETURNING id",
                      1, pi);
    const char *pd[] = {I(draft)};
    dbtest_refused(pg, "invoices_rule_12_1_no_legal_number_on_draft",
                   "UPDATE billing.invoices SET legal_number = 'ACME-2026-000777' WHERE id = $1", 1,
                   pd);
    dbtest_refused(pg, "invoices_rule_12_1_legal_number_unique_per_firm",
                   "UPDATE billing.invoices SET status = 'sent', legal_number = 'ACME-2026-000001'"
                   " WHERE id = $1",
                   1, pd);
    /* 12.3: a draft is never charged: no attempt is recorded for one ... */
    static const char ATTEMPT_SQL[] =
        "INSERT INTO billing.payment_attempts(firm_id, invoice_id, attempt_no, kind,"
        " idempotency_key, amount_cents) SELECT firm_id, id, 1, 'autopay',"
        " 'rule-12-3-' || id, 100 FROM billing.invoices WHERE id = $1";
    dbtest_refused(pg, "rule 12.3 (drafts and void invoices are never charged)", ATTEMPT_SQL, 1,
                   pd);
    /* ... nor for a void one, while an issued one is. */
    int64_t other = issued_invoice(f, NULL);
    const char *po[] = {I(other)};
    q("UPDATE billing.invoices SET status = 'void', voided_at = now(), voided_by = 'pat',"
      " void_reason = 'billed twice' WHERE id = $1 RETURNING 1",
      1, po);
    dbtest_refused(pg, "rule 12.3 (drafts and void invoices are never charged)", ATTEMPT_SQL, 1,
                   po);
    q("INSERT INTO billing.payment_attempts(firm_id, invoice_id, attempt_no, kind,"
      " idempotency_key, amount_cents, status) SELECT firm_id, id, 1, 'autopay',"
      " 'rule-12-3-' || id, 100, 'failed' FROM billing.invoices WHERE id = $1 RETURNING id",
      1, pi);
    /* 12.2: an issued invoice's amounts and identity never change ... */
    dbtest_refused(pg, "rule 12.2 (issued invoices are immutable)",
                   "UPDATE billing.invoices SET total_cents = total_cents + 1,"
                   " subtotal_cents = subtotal_cents + 1 WHERE id = $1",
                   1, pi);
    dbtest_refused(pg, "rule 12.2 (issued invoices are immutable)",
                   "UPDATE billing.invoices SET due_date = due_date + 1 WHERE id = $1", 1, pi);
    /* ... nor do its lines (insert, update, delete) ... */
    dbtest_refused(pg, "rule 12.2 (issued invoices are immutable)",
                   "UPDATE billing.invoice_line_items SET description = 'x' WHERE invoice_id = $1",
                   1, pi);
    dbtest_refused(pg, "rule 12.2 (issued invoices are immutable)",
                   "DELETE FROM billing.invoice_line_items WHERE invoice_id = $1", 1, pi);
    dbtest_refused(pg, "rule 12.2 (issued invoices are immutable)",
                   "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type,"
                   " description, amount_cents) SELECT id, firm_id, 'package_fee', 'more', 0"
                   " FROM billing.invoices WHERE id = $1",
                   1, pi);
    /* ... and it never goes back to draft. */
    dbtest_refused(pg, "invoices_rule_12_1_no_legal_number_on_draft",
                   "UPDATE billing.invoices SET status = 'draft' WHERE id = $1", 1, pi);
    /* Its payment and status fields still change. */
    q("UPDATE billing.invoices SET status = 'overdue' WHERE id = $1 RETURNING 1", 1, pi);

    /* 1.4 with credited_cents: amount_paid + credited <= total. */
    dbtest_refused(pg, "invoices_rule_1_4_amount_paid_between_0_and_total",
                   "UPDATE billing.invoices SET credited_cents = 1, amount_paid_cents = total_cents"
                   " WHERE id = $1",
                   1, pi);
    dbtest_refused(pg, "invoices_rule_1_4_amount_paid_between_0_and_total",
                   "UPDATE billing.invoices SET credited_cents = -1 WHERE id = $1", 1, pi);

    /* 12.5: void needs who, when and why, and nothing paid. */
    dbtest_refused(pg, "invoices_rule_12_5_void_has_who_when_why",
                   "UPDATE billing.invoices SET status = 'void' WHERE id = $1", 1, pi);
    dbtest_refused(pg, "invoices_rule_12_5_void_has_nothing_paid",
                   "UPDATE billing.invoices SET status = 'void', voided_at = now(),"
                   " voided_by = 'pat', void_reason = 'x', amount_paid_cents = 1 WHERE id = $1",
                   1, pi);

    /* 12.4: credit notes add up, never exceed the total, never on a draft. */
    const char *pc[] = {I(inv), "110000"};
    dbtest_refused(pg, "rule 12.4 (credit notes)",
                   "INSERT INTO billing.credit_notes(firm_id, client_id, invoice_id, legal_number,"
                   " reason, subtotal_cents, tax_cents, total_cents, applied_to_due_cents,"
                   " created_by) SELECT firm_id, client_id, id, 'ACME-CN-2026-000001', 'r',"
                   " $2::bigint, 1, $2::bigint + 1, $2::bigint + 1, 'pat'"
                   " FROM billing.invoices WHERE id = $1",
                   2, pc);
    dbtest_refused(pg, "credit_notes_rule_12_4_amounts_add_up",
                   "INSERT INTO billing.credit_notes(firm_id, client_id, invoice_id, legal_number,"
                   " reason, subtotal_cents, tax_cents, total_cents, applied_to_due_cents,"
                   " created_by) SELECT firm_id, client_id, id, 'ACME-CN-2026-000001', 'r',"
                   " 100, 10, 110, 100, 'pat' FROM billing.invoices WHERE id = $1",
                   1, pi);
    dbtest_refused(pg, "rule 12.4 (credit notes)",
                   "INSERT INTO billing.credit_notes(firm_id, client_id, invoice_id, legal_number,"
                   " reason, subtotal_cents, tax_cents, total_cents, applied_to_due_cents,"
                   " created_by) SELECT firm_id, client_id, id, 'ACME-CN-2026-000001', 'r',"
                   " 100, 10, 110, 110, 'pat' FROM billing.invoices WHERE id = $1",
                   1, pd);
    /* A note within the total is accepted, and is append-only (1.7). */
    int64_t cn = q("INSERT INTO billing.credit_notes(firm_id, client_id, invoice_id, legal_number,"
                   " reason, subtotal_cents, tax_cents, total_cents, applied_to_due_cents,"
                   " created_by) SELECT firm_id, client_id, id, 'ACME-CN-2026-000001', 'r',"
                   " 100000, 10000, 110000, 110000, 'pat' FROM billing.invoices WHERE id = $1"
                   " RETURNING id",
                   1, pi);
    const char *pcn[] = {I(cn)};
    dbtest_refused(pg, "rule 1.7 (append-only)",
                   "UPDATE billing.credit_notes SET reason = 'y' WHERE id = $1", 1, pcn);
    dbtest_refused(pg, "rule 12.4 (credit notes)",
                   "INSERT INTO billing.credit_notes(firm_id, client_id, invoice_id, legal_number,"
                   " reason, subtotal_cents, tax_cents, total_cents, applied_to_due_cents,"
                   " created_by) SELECT firm_id, client_id, id, 'ACME-CN-2026-000002', 'r',"
                   " 1, 0, 1, 1, 'pat' FROM billing.invoices WHERE id = $1",
                   1, pi);
    /* 4: credit_note is a credit source. */
    const char *pl[] = {I(f), I(cl)};
    q("INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, amount_cents, source,"
      " description) VALUES ($1, $2, 'credit', 5, 'credit_note', 'cn') RETURNING id",
      2, pl);
}

/* ---- numbering in scheduled invoicing; review drafts ------------------------------ */

static void test_scheduled_invoicing_numbers_gapless(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("NUM");
    int64_t cl = client_new(f, 0, false);
    for (int i = 0; i < 5; i++)
        eng_new(f, cl, "package", "5000", NULL);
    invoicing_params p = {.shard = 0, .shards = 1, .firm_id = f, .batch_size = 2};
    assert_true(date_parse("2026-04-01", &p.business_date));
    invoicing_stats st;
    char err[1024];
    assert_int_equal(invoicing_run(db, &p, &st, err, sizeof err), DB_OK);
    assert_int_equal(st.invoices, 5);
    const char *pf[] = {I(f)};
    assert_string_equal(qt("SELECT string_agg(legal_number, ',' ORDER BY id)"
                           " FROM billing.invoices WHERE firm_id = $1",
                           1, pf),
                        "NUM-2026-000001,NUM-2026-000002,NUM-2026-000003,NUM-2026-000004,"
                        "NUM-2026-000005");
    /* Issued: issued_at set, invoice.issued carries the legal number. */
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE firm_id = $1"
                       " AND status = 'sent' AND issued_at IS NOT NULL",
                       1, pf),
                     5);
    assert_int_equal(q("SELECT count(*) FROM billing.outbox o JOIN billing.invoices i"
                       " ON i.id::text = o.msg_key WHERE i.firm_id = $1"
                       " AND o.payload->>'type' = 'invoice.issued'"
                       " AND o.payload->>'legal_number' = i.legal_number",
                       1, pf),
                     5);
    /* Running again numbers nothing more; the next year starts at 000001. */
    assert_int_equal(invoicing_run(db, &p, &st, err, sizeof err), DB_OK);
    assert_int_equal(st.invoices, 0);
    assert_true(date_parse("2027-01-01", &p.business_date));
    assert_int_equal(invoicing_run(db, &p, &st, err, sizeof err), DB_OK);
    assert_int_equal(st.invoices, 5);
    assert_string_equal(
        qt("SELECT min(legal_number) || '..' || max(legal_number)"
           " FROM billing.invoices WHERE firm_id = $1 AND issue_date = '2027-01-01'",
           1, pf),
        "NUM-2027-000001..NUM-2027-000005");
    /* A second firm has counters of its own; the default prefix is the slug. */
    int64_t f2 = dbtest_firm(pg);
    eng_new(f2, client_new(f2, 0, false), "package", "5000", NULL);
    tick(f2, "2026-04-01");
    const char *pf2[] = {I(f2)};
    assert_string_equal(qt("SELECT legal_number = upper(f.slug) || '-2026-000001'"
                           " FROM billing.invoices i JOIN billing.firms f ON f.id = i.firm_id"
                           " WHERE i.firm_id = $1",
                           1, pf2),
                        "t");
}

static void test_review_before_issue_makes_drafts(void **state)
{
    (void)state;
    int64_t f = dbtest_firm(pg);
    assert_int_equal(ctl("--json", "firm", "settings", I(f), "--review-before-issue", "on",
                         "--number-prefix", "REV", "--legal-name", "Review LLP", "--reminder-days",
                         "-3,7", NULL),
                     0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "review_before_issue")));
    assert_string_equal(json_string_value(json_object_get(j, "number_prefix")), "REV");
    json_decref(j);
    const char *pf[] = {I(f)};
    assert_string_equal(qt("SELECT reminder_days::text || legal_name FROM billing.firm_settings"
                           " WHERE firm_id = $1",
                           1, pf),
                        "{-3,7}Review LLP");
    /* Changing one setting keeps the others. */
    assert_int_equal(ctl("firm", "settings", I(f), "--reminders", "off", NULL), 0);
    assert_string_equal(qt("SELECT review_before_issue::text || reminders_enabled::text"
                           " FROM billing.firm_settings WHERE firm_id = $1",
                           1, pf),
                        "truefalse");
    assert_int_equal(ctl("firm", "settings", I(f), "--reminders", "maybe", NULL), 2);
    assert_int_equal(ctl("firm", "settings", I(f), "--reminder-days", "1,,2", NULL), 2);
    assert_int_equal(ctl("firm", "settings", "999999999", "--reminders", "on", NULL), 1);
    assert_int_equal(ctl("firm", "settings", I(f), "--number-prefix", "bad prefix!", NULL), 1);
    assert_non_null(strstr(errout, "firm_settings_number_prefix_shape"));

    int64_t cl = client_new(f, 1000, true);
    int64_t e = eng_new(f, cl, "hourly", NULL, "20000");
    int64_t t1 = entry_new(f, e, "2026-02-10", "3.00");
    entry_new(f, e, "2026-02-11", "2.00");
    tick(f, "2026-03-01");
    const char *pe[] = {I(e)};
    /* A draft: totals as usual, no number, no issue date, not scheduled. */
    assert_string_equal(qt("SELECT status || ' ' || coalesce(legal_number, '-') || ' '"
                           " || coalesce(issue_date::text, '-') || ' ' || total_cents || ' '"
                           " || autopay_status FROM billing.invoices WHERE engagement_id = $1",
                           1, pe),
                        "draft - - 110000 idle");
    int64_t inv = q("SELECT id FROM billing.invoices WHERE engagement_id = $1", 1, pe);
    assert_int_equal(q1("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text", inv), 0);
    assert_int_equal(q1("SELECT count(*) FROM billing.legal_number_counters WHERE firm_id = $1", f),
                     0);
    /* Drafts are never charged. */
    assert_int_equal(q1("SELECT count(*) FROM billing.invoices i WHERE i.id = $1 AND"
                        " billing.charge_due('autopay', i.status, true, 'scheduled',"
                        " now() - interval '1 day', NULL, current_date)",
                        inv),
                     0);
    (void)t1;
}

/* ---- racing issuers ----------------------------------------------------------------- */

#define RACE_PROCS 8
#define RACE_DRAFTS 2000

static void test_racing_issuers_gapless(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("RACE");
    int64_t cl = client_new(f, 0, false);
    int64_t e = eng_new(f, cl, "package", "1000", NULL);
    const char *pm[] = {I(f), I(cl), I(e), I(RACE_DRAFTS)};
    q("INSERT INTO billing.invoices(firm_id, client_id, engagement_id, invoice_number,"
      " status, currency) SELECT $1::bigint, $2::bigint, $3::bigint, 'RACE-' || $1::text || '-' || g,"
      " 'draft', 'usd'"
      " FROM generate_series(1, $4::int) g",
      4, pm);
    fflush(NULL);
    pid_t kids[RACE_PROCS];
    for (int k = 0; k < RACE_PROCS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            PGconn *c = PQconnectdb(getenv("DATABASE_URL"));
            if (PQstatus(c) != CONNECTION_OK)
                _exit(3);
            /* Each process issues the drafts of its stripe, one transaction each;
             * every third one it rolls back on purpose after issuing. */
            int n = 0;
            for (int i = k; i < RACE_DRAFTS; i += RACE_PROCS) {
                char sql[512];
                snprintf(sql, sizeof sql,
                         "BEGIN; SELECT billing.issue_invoice(id, '2026-05-0%d', 'racer') FROM"
                         " billing.invoices WHERE firm_id = %lld AND invoice_number ="
                         " 'RACE-%lld-%d'; %s",
                         1 + i % 2, (long long)f, (long long)f, i + 1,
                         (n++ % 3 == 2) ? "ROLLBACK" : "COMMIT");
                PGresult *r = PQexec(c, sql);
                if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                    fprintf(stderr, "racer: %s\n", PQresultErrorMessage(r));
                    _exit(4);
                }
                PQclear(r);
            }
            PQfinish(c);
            _exit(0);
        }
    }
    for (int k = 0; k < RACE_PROCS; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* The rolled-back ones are drafts again; issue them now, in one go. */
    const char *pf[] = {I(f)};
    q("SELECT count(billing.issue_invoice(id, '2026-05-03', 'late')) FROM"
      " (SELECT id FROM billing.invoices WHERE firm_id = $1 AND status = 'draft' ORDER BY id) d",
      1, pf);
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE firm_id = $1"
                       " AND legal_number IS NOT NULL",
                       1, pf),
                     RACE_DRAFTS);
    /* Numbers 1..N exactly: no gap, no repeat. */
    assert_int_equal(q("SELECT count(*) FROM (SELECT row_number() OVER (ORDER BY n) AS r, n"
                       " FROM (SELECT substring(legal_number from '[0-9]+$')::int AS n"
                       " FROM billing.invoices WHERE firm_id = $1) x) y WHERE r = n",
                       1, pf),
                     RACE_DRAFTS);
    assert_int_equal(q("SELECT last_value FROM billing.legal_number_counters"
                       " WHERE firm_id = $1 AND series = 'invoice' AND year = 2026",
                       1, pf),
                     RACE_DRAFTS);
}

/* ---- adjust and issue --------------------------------------------------------------- */

static void test_adjust_and_issue(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("ADJ");
    const char *pf[] = {I(f)};
    q("UPDATE billing.firm_settings SET review_before_issue = true WHERE firm_id = $1"
      " RETURNING 1",
      1, pf);
    int64_t cl = client_new(f, 1000, true);
    int64_t e = eng_new(f, cl, "mixed", "50000", "20000");
    int64_t t1 = entry_new(f, e, "2026-02-10", "3.00");
    int64_t t2 = entry_new(f, e, "2026-02-11", "2.00");
    tick(f, "2026-03-01");
    const char *pe[] = {I(e)};
    int64_t inv = q("SELECT id FROM billing.invoices WHERE engagement_id = $1", 1, pe);
    int64_t line = q1("SELECT id FROM billing.invoice_line_items WHERE invoice_id = $1"
                      " AND line_type = 'hourly'",
                      inv);
    int64_t pkg = q1("SELECT id FROM billing.invoice_line_items WHERE invoice_id = $1"
                     " AND line_type = 'package_fee'",
                     inv);
    /* 50000 + 5h x 20000 = 150000, tax 10% = 15000. */
    assert_int_equal(q1("SELECT total_cents FROM billing.invoices WHERE id = $1", inv), 165000);

    /* Write the hours down to 4.25: 85000; subtotal 135000, tax 13500. */
    assert_int_equal(ctl("--json", "invoice", "adjust", I(inv), "--line", I(line), "--quantity",
                         "4.25", "--reason", "junior time", "--by", "partner", NULL),
                     0);
    assert_non_null(strstr(out, "\"total_cents\":148500"));
    const char *pl[] = {I(line)};
    assert_string_equal(qt("SELECT quantity || ' ' || amount_cents || ' ' || original_quantity"
                           " || ' ' || original_amount_cents || ' ' || adjusted_by || ' '"
                           " || adjustment_reason FROM billing.invoice_line_items WHERE id = $1",
                           1, pl),
                        "4.25 85000 5.00 100000 partner junior time");
    /* A second adjustment keeps the first originals. */
    assert_int_equal(ctl("invoice", "adjust", I(inv), "--line", I(line), "--amount-cents", "90000",
                         "--reason", "agreed", "--by", "partner", NULL),
                     0);
    assert_string_equal(qt("SELECT subtotal_cents || ' ' || tax_cents || ' ' || total_cents"
                           " FROM billing.invoices i WHERE id = (SELECT invoice_id FROM"
                           " billing.invoice_line_items WHERE id = $1)",
                           1, pl),
                        "140000 14000 154000");
    assert_string_equal(qt("SELECT original_quantity || ' ' || original_amount_cents"
                           " FROM billing.invoice_line_items WHERE id = $1",
                           1, pl),
                        "5.00 100000");
    assert_int_equal(q1("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1"
                        " AND action = 'invoice_line_adjusted' AND actor = 'partner'",
                        f),
                     2);
    /* Package lines are not adjusted; usage errors are exit 2. */
    assert_int_equal(ctl("invoice", "adjust", I(inv), "--line", I(pkg), "--amount-cents", "1",
                         "--reason", "r", "--by", "p", NULL),
                     1);
    assert_non_null(strstr(errout, "only hourly lines"));
    assert_int_equal(ctl("invoice", "adjust", I(inv), "--line", I(line), "--quantity", "1.234",
                         "--reason", "r", "--by", "p", NULL),
                     2);
    assert_int_equal(
        ctl("invoice", "adjust", I(inv), "--line", I(line), "--reason", "r", "--by", "p", NULL), 2);

    /* Issue: number, dates from --date, autopay scheduled for on_issue, audit, event. */
    assert_int_equal(
        ctl("--json", "invoice", "issue", I(inv), "--date", "2026-03-04", "--by", "partner", NULL),
        0);
    char want[128];
    snprintf(want, sizeof want, "{\"invoice_id\":%lld,\"legal_number\":\"ADJ-2026-000001\"}\n",
             (long long)inv);
    assert_string_equal(out, want);
    const char *pi[] = {I(inv)};
    assert_string_equal(qt("SELECT status || ' ' || issue_date || ' ' || due_date || ' '"
                           " || issued_by || ' ' || autopay_status || ' '"
                           " || (autopay_next_charge_at = '2026-03-04 00:00+00')"
                           " FROM billing.invoices WHERE id = $1",
                           1, pi),
                        "sent 2026-03-04 2026-03-19 partner scheduled true");
    assert_int_equal(q1("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1"
                        " AND action = 'invoice_issued' AND metadata->>'legal_number' ="
                        " 'ADJ-2026-000001'",
                        f),
                     1);
    assert_int_equal(q1("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text"
                        " AND payload->>'type' = 'invoice.issued'"
                        " AND payload->>'idempotency_key' = 'invoice.issued:' || $1"
                        " AND payload->>'legal_number' = 'ADJ-2026-000001'"
                        " AND (payload->>'total_cents')::bigint = 154000",
                        inv),
                     1);
    /* Now charged: due for autopay on the issue day. */
    assert_int_equal(q1("SELECT count(*) FROM billing.invoices i WHERE i.id = $1 AND"
                        " billing.charge_due('autopay', i.status, i.autopay_opt_in,"
                        " i.autopay_status, i.autopay_next_charge_at, NULL, '2026-03-04')",
                        inv),
                     1);
    /* Issuing twice is issuing once: same number, no second event. */
    assert_int_equal(ctl("invoice", "issue", I(inv), "--by", "partner", NULL), 0);
    assert_non_null(strstr(out, "already issued as ADJ-2026-000001"));
    assert_int_equal(q1("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text", inv), 1);
    /* Issued lines are fixed now; the adjusted hours' entries stay invoiced. */
    assert_int_equal(ctl("invoice", "adjust", I(inv), "--line", I(line), "--amount-cents", "1",
                         "--reason", "r", "--by", "p", NULL),
                     1);
    assert_non_null(strstr(errout, "rule 12.2"));
    const char *pt[] = {I(t1), I(t2), I(inv)};
    assert_int_equal(q("SELECT count(*) FROM billing.time_entries WHERE id IN ($1, $2)"
                       " AND invoice_id = $3",
                       3, pt),
                     2);
    assert_int_equal(ctl("invoice", "issue", "999999999", "--by", "p", NULL), 1);
    assert_int_equal(ctl("invoice", "issue", I(inv), NULL), 2);
}

/* ---- void -------------------------------------------------------------------------- */

static void test_void(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("VOID");
    int64_t cl = client_new(f, 0, true);
    int64_t e = eng_new(f, cl, "hourly", NULL, "10000");
    int64_t t1 = entry_new(f, e, "2026-02-10", "3.00");
    tick(f, "2026-03-01");
    const char *pe[] = {I(e)};
    int64_t inv = q("SELECT id FROM billing.invoices WHERE engagement_id = $1", 1, pe);
    const char *pi[] = {I(inv)};
    assert_string_equal(qt("SELECT legal_number || ' ' || autopay_status FROM billing.invoices"
                           " WHERE id = $1",
                           1, pi),
                        "VOID-2026-000001 scheduled");

    /* A charge in flight: refused, nothing changes. */
    const char *pa[] = {I(inv), I(f)};
    int64_t att = q("INSERT INTO billing.payment_attempts(invoice_id, firm_id, attempt_no, kind,"
                    " idempotency_key, amount_cents) VALUES ($1::bigint, $2::bigint, 1,"
                    " 'autopay', 'void-test-' || $1::text, 30000) RETURNING id",
                    2, pa);
    assert_int_equal(
        ctl("invoice", "void", I(inv), "--reason", "wrong client", "--by", "fin", NULL), 1);
    assert_non_null(strstr(errout, "a charge is in flight"));
    assert_string_equal(qt("SELECT status FROM billing.invoices WHERE id = $1", 1, pi), "sent");
    const char *pat[] = {I(att)};
    q("UPDATE billing.payment_attempts SET status = 'failed' WHERE id = $1 RETURNING 1", 1, pat);

    assert_int_equal(
        ctl("--json", "invoice", "void", I(inv), "--reason", "wrong client", "--by", "fin", NULL),
        0);
    assert_non_null(strstr(out, "\"time_entries_released\":1"));
    assert_string_equal(qt("SELECT status || ' ' || legal_number || ' ' || voided_by || ' '"
                           " || void_reason || ' ' || autopay_status FROM billing.invoices"
                           " WHERE id = $1",
                           1, pi),
                        "void VOID-2026-000001 fin wrong client cancelled");
    assert_int_equal(q1("SELECT count(*) FROM billing.time_entries WHERE id = $1"
                        " AND invoice_id IS NULL",
                        t1),
                     1);
    assert_int_equal(q1("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1"
                        " AND action = 'invoice_voided'",
                        f),
                     1);
    assert_int_equal(q1("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text"
                        " AND payload->>'type' = 'invoice.voided'"
                        " AND payload->>'legal_number' = 'VOID-2026-000001'",
                        inv),
                     1);
    /* Twice is once. */
    assert_int_equal(ctl("invoice", "void", I(inv), "--reason", "again", "--by", "fin", NULL), 0);
    assert_non_null(strstr(out, "already void"));
    /* Void invoices are never charged; money for them is credit (invoice_closed). */
    assert_int_equal(q1("SELECT count(*) FROM billing.invoices i WHERE i.id = $1 AND"
                        " billing.charge_due('autopay', i.status, true, 'scheduled',"
                        " now() - interval '1 day', NULL, current_date)",
                        inv),
                     0);

    /* The next tick bills the released entry, with the next number. */
    tick(f, "2026-04-01");
    assert_string_equal(qt("SELECT i.legal_number || ' ' || i.total_cents FROM"
                           " billing.time_entries t JOIN billing.invoices i ON i.id = t.invoice_id"
                           " WHERE t.id = $1",
                           1, (const char *const[]){I(t1)}),
                        "VOID-2026-000002 30000");

    /* verify finds nothing wrong with a void invoice's kept lines. */
    assert_int_equal(ctl("verify", "--firm-id", I(f), NULL), 0);

    /* Paid: refused with a clear message. */
    int64_t inv2 = q("SELECT invoice_id FROM billing.time_entries WHERE id = $1", 1,
                     (const char *const[]){I(t1)});
    q("UPDATE billing.invoices SET amount_paid_cents = 100, status = 'partial' WHERE id = $1"
      " RETURNING 1",
      1, (const char *const[]){I(inv2)});
    assert_int_equal(ctl("invoice", "void", I(inv2), "--reason", "x", "--by", "fin", NULL), 1);
    assert_non_null(strstr(errout, "cannot void invoice"));
    assert_non_null(strstr(errout, "100 cents are paid"));
    assert_int_equal(ctl("invoice", "void", I(inv2), "--by", "fin", NULL), 2);

    /* Voiding a draft consumes no number. */
    int64_t f2 = firm_with_prefix("VD");
    q("UPDATE billing.firm_settings SET review_before_issue = true WHERE firm_id = $1 RETURNING 1",
      1, (const char *const[]){I(f2)});
    int64_t e2 = eng_new(f2, client_new(f2, 0, false), "package", "1000", NULL);
    tick(f2, "2026-03-01");
    int64_t d = q("SELECT id FROM billing.invoices WHERE engagement_id = $1", 1,
                  (const char *const[]){I(e2)});
    assert_int_equal(ctl("invoice", "void", I(d), "--reason", "not needed", "--by", "fin", NULL),
                     0);
    assert_int_equal(q1("SELECT count(*) FROM billing.invoices WHERE id = $1 AND status = 'void'"
                        " AND legal_number IS NULL",
                        d),
                     1);
    assert_int_equal(q1("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text", d), 0);
    assert_int_equal(ctl("invoice", "issue", I(d), "--by", "fin", NULL), 1);
}

/* ---- credit notes --------------------------------------------------------------------- */

static int64_t json_int(const char *key)
{
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (j == NULL)
        fail_msg("not JSON: %s", out);
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v))
        fail_msg("no %s in %s", key, out);
    int64_t x = (int64_t)json_integer_value(v);
    json_decref(j);
    return x;
}

static void test_credit_note_on_unpaid_invoice(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("CN"), cl;
    int64_t inv = issued_invoice(f, &cl); /* 100000 + 10% tax = 110000 */
    const char *pi[] = {I(inv)};
    /* A note of 11000, tax included: 10000 + 1000 tax, all off the balance due. */
    assert_int_equal(ctl("--json", "credit-note", "create", "--invoice", I(inv), "--amount-cents",
                         "11000", "--reason", "discount agreed", "--by", "fin", NULL),
                     0);
    int64_t cn = json_int("credit_note_id");
    char want[256];
    int year = atoi(qt("SELECT extract(year FROM current_date)::int", 0, NULL));
    snprintf(want, sizeof want,
             "{\"credit_note_id\":%lld,\"legal_number\":\"CN-CN-%d-000001\","
             "\"applied_to_due_cents\":11000,\"refunded_cents\":0,\"credited_cents\":0}\n",
             (long long)cn, year);
    assert_string_equal(out, want);
    const char *pc[] = {I(cn)};
    assert_string_equal(qt("SELECT subtotal_cents || ' ' || tax_cents || ' ' || total_cents"
                           " || ' ' || (SELECT string_agg(amount_cents::text, ',') FROM"
                           " billing.credit_note_lines WHERE credit_note_id = n.id)"
                           " FROM billing.credit_notes n WHERE id = $1",
                           1, pc),
                        "10000 1000 11000 10000");
    /* The balance due is what autopay charges now (payments.c: billing.balance_due). */
    assert_string_equal(qt("SELECT status || ' ' || credited_cents || ' '"
                           " || billing.balance_due(total_cents, amount_paid_cents, credited_cents)"
                           " FROM billing.invoices WHERE id = $1",
                           1, pi),
                        "sent 11000 99000");
    assert_int_equal(q1("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text"
                        " AND payload->>'type' = 'invoice.credited'"
                        " AND payload->>'idempotency_key' = 'invoice.credited:' || $1::text || ':'"
                        " || (payload->>'credit_note_id')",
                        inv),
                     1);
    assert_int_equal(q1("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1"
                        " AND action = 'credit_note_issued' AND actor = 'fin'",
                        f),
                     1);
    /* Re-run: the same note, nothing more. */
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "11000",
                         "--reason", "discount agreed", "--by", "fin", NULL),
                     0);
    assert_non_null(strstr(out, "earlier run"));
    assert_int_equal(q1("SELECT count(*) FROM billing.credit_notes WHERE invoice_id = $1", inv), 1);
    /* Over what is left: refused, naming the rule. */
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "99001",
                         "--reason", "too much", "--by", "fin", NULL),
                     1);
    assert_non_null(strstr(errout, "rule 12.4"));
    /* The rest of the balance: the invoice is paid. */
    assert_int_equal(ctl("--json", "credit-note", "create", "--invoice", I(inv), "--amount-cents",
                         "99000", "--reason", "write-off", "--by", "fin", NULL),
                     0);
    assert_string_equal(qt("SELECT status || ' ' || credited_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, pi),
                        "paid 110000");
    /* invoice show: legal number, credits, balance due, the notes. */
    assert_int_equal(ctl("--json", "invoice", "show", I(inv), NULL), 0);
    json_t *shown = json_loads(out, 0, NULL);
    assert_non_null(shown);
    json_t *si = json_object_get(shown, "invoice");
    assert_string_equal(json_string_value(json_object_get(si, "legal_number")), "CN-2026-000001");
    assert_int_equal(json_integer_value(json_object_get(si, "credited_cents")), 110000);
    assert_int_equal(json_integer_value(json_object_get(si, "balance_due_cents")), 0);
    assert_int_equal(json_array_size(json_object_get(shown, "credit_notes")), 2);
    json_decref(shown);
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "0",
                         "--reason", "x", "--by", "fin", NULL),
                     2);
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "5",
                         "--reason", "x", NULL),
                     2);
}

static void test_credit_note_by_lines_to_credit(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("CL");
    int64_t cl = client_new(f, 1000, false);
    int64_t e = eng_new(f, cl, "mixed", "50000", "20000");
    entry_new(f, e, "2026-02-10", "2.00");
    tick(f, "2026-03-01"); /* 50000 + 40000, tax 9000: 99000 */
    int64_t inv = q1("SELECT id FROM billing.invoices WHERE engagement_id = $1", e);
    int64_t pkg = q1("SELECT id FROM billing.invoice_line_items WHERE invoice_id = $1"
                     " AND line_type = 'package_fee'",
                     inv);
    int64_t hrs = q1("SELECT id FROM billing.invoice_line_items WHERE invoice_id = $1"
                     " AND line_type = 'hourly'",
                     inv);
    /* Paid in full, not through Stripe: the note's default is client credit. */
    q("UPDATE billing.invoices SET amount_paid_cents = total_cents, status = 'paid' WHERE id = $1"
      " RETURNING 1",
      1, (const char *const[]){I(inv)});
    char l1[48], l2[48];
    snprintf(l1, sizeof l1, "%lld:5000", (long long)pkg);
    snprintf(l2, sizeof l2, "%lld:2000", (long long)hrs);
    assert_int_equal(ctl("--json", "credit-note", "create", "--invoice", I(inv), "--line", l1,
                         "--line", l2, "--reason", "service credit", "--by", "fin", NULL),
                     0);
    /* 7000 + 700 tax, nothing due: all of it to the client's credit. */
    assert_int_equal(json_int("applied_to_due_cents"), 0);
    assert_int_equal(json_int("credited_cents"), 7700);
    assert_int_equal(json_int("refunded_cents"), 0);
    assert_int_equal(
        q1("SELECT coalesce(sum(amount_cents), 0) FROM billing.credit_ledger"
           " WHERE client_id = $1 AND source = 'credit_note' AND entry_type = 'credit'",
           cl),
        7700);
    /* The credit report counts the note's credit as issued today, balanced. */
    assert_int_equal(ctl("--json", "report", "credits", "--firm-id", I(f), NULL), 0);
    json_t *rep = json_loads(out, 0, NULL);
    assert_non_null(rep);
    assert_true(json_is_true(json_object_get(rep, "balanced")));
    json_t *cur = json_array_get(json_object_get(rep, "currencies"), 0);
    assert_int_equal(json_array_size(json_object_get(rep, "currencies")), 1);
    assert_int_equal(json_integer_value(json_object_get(cur, "credits_issued_cents")), 7700);
    assert_int_equal(json_integer_value(json_object_get(cur, "outstanding_balance_cents")), 7700);
    json_decref(rep);
    /* A line is never credited above what is left of it. */
    snprintf(l1, sizeof l1, "%lld:45001", (long long)pkg);
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--line", l1, "--reason",
                         "again", "--by", "fin", NULL),
                     1);
    assert_non_null(strstr(errout, "rule 12.4"));
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--line", "abc", "--reason",
                         "again", "--by", "fin", NULL),
                     2);
    /* --refund without a Stripe payment: refused, nothing written. */
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "100",
                         "--refund", "--reason", "r", "--by", "fin", NULL),
                     1);
    assert_int_equal(q1("SELECT count(*) FROM billing.credit_notes WHERE invoice_id = $1", inv), 1);
    /* A draft takes no credit note. */
    int64_t f2 = firm_with_prefix("CD");
    q("UPDATE billing.firm_settings SET review_before_issue = true WHERE firm_id = $1 RETURNING 1",
      1, (const char *const[]){I(f2)});
    int64_t e2 = eng_new(f2, client_new(f2, 0, false), "package", "1000", NULL);
    tick(f2, "2026-03-01");
    int64_t d = q1("SELECT id FROM billing.invoices WHERE engagement_id = $1", e2);
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(d), "--amount-cents", "100",
                         "--reason", "r", "--by", "fin", NULL),
                     1);
    assert_non_null(strstr(errout, "rule 12.4"));
}

/* Paid through Stripe: the part above the balance due is refunded at the
 * stand-in, once, even when the command is run again. */
static void test_credit_note_refund_through_stripe(void **state)
{
    (void)state;
    standin *sd = standin_start(NULL);
    setenv("STRIPE_SECRET_KEY", "sk_test_LifecycleTests00000001", 1);
    setenv("STRIPE_API_BASE", standin_url(sd), 1);
    int64_t f = firm_with_prefix("RF");
    int64_t cl = client_new(f, 1000, false);
    int64_t e = eng_new(f, cl, "package", "1000", NULL);
    tick(f, "2026-03-01"); /* 1100 */
    int64_t inv = q1("SELECT id FROM billing.invoices WHERE engagement_id = $1", e);
    stripe_config cfg = {
        .secret_key = "sk_test_LifecycleTests00000001", .api_base = standin_url(sd), .max_rps = 25};
    char err[256], key[64];
    stripe_client *sc = stripe_client_new(&cfg, err, sizeof err);
    assert_non_null(sc);
    snprintf(key, sizeof key, "lc-test-pi-%ld", (long)getpid());
    stripe_form *form = stripe_form_payment_intent(1100, "usd", NULL, "pm_card_visa", inv, f, key);
    stripe_call call = {
        .method = "POST", .path = "/v1/payment_intents", .form = form, .idempotency_key = key};
    assert_int_equal(stripe_perform(sc, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_OK);
    const char *pp[] = {I(inv), call.result.object_id, call.result.latest_charge};
    q("UPDATE billing.invoices SET amount_paid_cents = 1100, status = 'paid',"
      " stripe_payment_intent_id = $2, stripe_charge_id = $3 WHERE id = $1::bigint RETURNING 1",
      3, pp);
    stripe_result_free(&call.result);
    stripe_form_free(form);
    stripe_client_free(sc);

    int64_t before = standin_stat(sd, "refunds_created");
    assert_int_equal(ctl("--json", "credit-note", "create", "--invoice", I(inv), "--amount-cents",
                         "550", "--reason", "half refund", "--by", "fin", NULL),
                     0);
    assert_int_equal(json_int("refunded_cents"), 550);
    assert_int_equal(json_int("applied_to_due_cents"), 0);
    assert_int_equal(standin_stat(sd, "refunds_created"), before + 1);
    json_t *refunds = standin_refunds(sd);
    json_t *last = json_array_get(refunds, json_array_size(refunds) - 1);
    assert_int_equal(json_integer_value(json_object_get(last, "amount")), 550);
    json_decref(refunds);
    /* Run again: the same note, the same idempotency key, no second refund. */
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "550",
                         "--reason", "half refund", "--by", "fin", NULL),
                     0);
    assert_int_equal(standin_stat(sd, "refunds_created"), before + 1);
    assert_int_equal(q1("SELECT count(*) FROM billing.credit_notes WHERE invoice_id = $1", inv), 1);
    assert_int_equal(q1("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1"
                        " AND action = 'refund_requested' AND metadata ? 'credit_note_id'",
                        f),
                     1);
    /* More than was paid and not refunded: refused. */
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "551",
                         "--refund", "--reason", "too much", "--by", "fin", NULL),
                     1);
    assert_non_null(strstr(errout, "rule 12.4"));
    standin_stop(sd);
}

/* The refund of a credit note, byte for byte as common/refund_requests.c
 * sends it: the key "credit-note-<note id>-<PaymentIntent>", the amount and
 * the metadata at Stripe, and the audit that names the note. */
static void test_credit_note_refund_key(void **state)
{
    (void)state;
    standin *sd = standin_start(NULL);
    setenv("STRIPE_SECRET_KEY", "sk_test_LifecycleTests00000001", 1);
    setenv("STRIPE_API_BASE", standin_url(sd), 1);
    int64_t f = firm_with_prefix("RK");
    int64_t cl = client_new(f, 1000, false);
    int64_t e = eng_new(f, cl, "package", "1000", NULL);
    tick(f, "2026-03-01"); /* 1100 */
    int64_t inv = q1("SELECT id FROM billing.invoices WHERE engagement_id = $1", e);
    stripe_config cfg = {
        .secret_key = "sk_test_LifecycleTests00000001", .api_base = standin_url(sd), .max_rps = 25};
    char err[256], key[64], pi[STRIPE_ID_MAX];
    stripe_client *sc = stripe_client_new(&cfg, err, sizeof err);
    assert_non_null(sc);
    snprintf(key, sizeof key, "lc-test-pi-key-%ld", (long)getpid());
    stripe_form *form = stripe_form_payment_intent(1100, "usd", NULL, "pm_card_visa", inv, f, key);
    stripe_call call = {
        .method = "POST", .path = "/v1/payment_intents", .form = form, .idempotency_key = key};
    assert_int_equal(stripe_perform(sc, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_OK);
    snprintf(pi, sizeof pi, "%s", call.result.object_id);
    const char *pp[] = {I(inv), call.result.object_id, call.result.latest_charge};
    q("UPDATE billing.invoices SET amount_paid_cents = 1100, status = 'paid',"
      " stripe_payment_intent_id = $2, stripe_charge_id = $3 WHERE id = $1::bigint RETURNING 1",
      3, pp);
    stripe_result_free(&call.result);
    stripe_form_free(form);
    stripe_client_free(sc);

    assert_int_equal(ctl("--json", "credit-note", "create", "--invoice", I(inv), "--amount-cents",
                         "330", "--refund", "--reason", "partly refunded", "--by", "fin", NULL),
                     0);
    int64_t note = json_int("credit_note_id");
    assert_int_equal(json_int("refunded_cents"), 330);
    char want[256];
    snprintf(want, sizeof want, "credit-note-%lld-%s|330|%lld", (long long)note, pi,
             (long long)note);
    const char *pf[] = {I(f)};
    assert_string_equal(qt("SELECT (metadata->>'idempotency_key') || '|' ||"
                           " (metadata->>'amount_cents') || '|' || (metadata->>'credit_note_id')"
                           " FROM billing.audit_events WHERE firm_id = $1"
                           " AND action = 'refund_requested'",
                           1, pf),
                        want);
    /* a credit note's audit records neither reason nor currency */
    assert_int_equal(q1("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1"
                        " AND action = 'refund_requested'"
                        " AND (metadata ? 'reason' OR metadata ? 'currency')",
                        f),
                     0);
    json_t *refunds = standin_refunds(sd);
    json_t *last = json_array_get(refunds, json_array_size(refunds) - 1);
    assert_int_equal(json_integer_value(json_object_get(last, "amount")), 330);
    json_t *md = json_object_get(last, "metadata");
    char note_text[24];
    snprintf(note_text, sizeof note_text, "%lld", (long long)note);
    assert_string_equal(json_string_value(json_object_get(md, "credit_note_id")), note_text);
    assert_string_equal(json_string_value(json_object_get(md, "refund_reason")), "partly refunded");
    assert_string_equal(json_string_value(json_object_get(md, "requested_by")), "fin");
    json_decref(refunds);
    standin_stop(sd);
}

/* ---- reports: wip and aging ------------------------------------------------------------ */

static void test_report_wip_and_aging(void **state)
{
    (void)state;
    int64_t f = firm_with_prefix("RPT");
    int64_t cl = client_new(f, 1000, false);
    int64_t e = eng_new(f, cl, "hourly", NULL, "15000");
    /* Billed by the tick (before March): not WIP. */
    entry_new(f, e, "2026-02-10", "2.00");
    tick(f, "2026-03-01"); /* 30000 + 3000 tax, due 2026-03-16 */
    /* WIP: approved 1.5h at 15000 + 0.25h at an entry rate of 10001 (rounded per
     * rate: 2500.25 -> 2500); unapproved 3h; a later entry is outside the date. */
    entry_new(f, e, "2026-03-05", "1.50");
    int64_t r = entry_new(f, e, "2026-03-06", "0.25");
    q("UPDATE billing.time_entries SET hourly_rate_cents = 10001 WHERE id = $1 RETURNING 1", 1,
      (const char *const[]){I(r)});
    int64_t u = entry_new(f, e, "2026-03-07", "3.00");
    q("UPDATE billing.time_entries SET approved = false, approved_by = NULL, approved_at = NULL"
      " WHERE id = $1 RETURNING 1",
      1, (const char *const[]){I(u)});
    entry_new(f, e, "2026-04-02", "9.00");
    assert_int_equal(
        ctl("--json", "report", "wip", "--firm-id", I(f), "--date", "2026-03-31", NULL), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 1);
    json_t *w = json_array_get(rows, 0);
    assert_int_equal(json_integer_value(json_object_get(w, "engagement_id")), e);
    assert_string_equal(json_string_value(json_object_get(w, "approved_hours")), "1.75");
    assert_int_equal(json_integer_value(json_object_get(w, "approved_cents")), 22500 + 2500);
    assert_string_equal(json_string_value(json_object_get(w, "unapproved_hours")), "3.00");
    assert_int_equal(json_integer_value(json_object_get(w, "unapproved_cents")), 45000);
    assert_int_equal(json_integer_value(json_object_get(w, "entries")), 3);
    json_decref(j);
    assert_int_equal(ctl("report", "wip", "--firm-id", I(f), NULL), 0);
    assert_non_null(strstr(out, "work in progress"));

    /* Aging on 2026-05-01: the March invoice (due 03-16) is 46 days late;
     * a manual invoice issued 04-20 (due 05-20) is current; a credit note
     * reduces the late one; a void invoice does not count. */
    int64_t inv = q1("SELECT id FROM billing.invoices WHERE engagement_id = $1", e);
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "3300",
                         "--reason", "goodwill", "--by", "fin", NULL),
                     0);
    assert_int_equal(ctl("invoice", "create", "--client", I(cl), "--engagement", I(e), "--line",
                         "hourly:1:10000:Extra", "--date", "2026-04-20", NULL),
                     0);
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(cl), "--engagement", I(e),
                         "--line", "hourly:1:5000:Mistake", "--date", "2026-04-21", NULL),
                     0);
    int64_t bad = json_int("invoice_id");
    assert_int_equal(ctl("invoice", "void", I(bad), "--reason", "mistake", "--by", "fin", NULL), 0);
    assert_int_equal(
        ctl("--json", "report", "aging", "--firm-id", I(f), "--date", "2026-05-01", NULL), 0);
    j = json_loads(out, 0, NULL);
    assert_non_null(j);
    rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 1);
    json_t *a = json_array_get(rows, 0);
    assert_int_equal(json_integer_value(json_object_get(a, "client_id")), cl);
    assert_int_equal(json_integer_value(json_object_get(a, "current_cents")), 11000);
    assert_int_equal(json_integer_value(json_object_get(a, "days_1_30_cents")), 0);
    assert_int_equal(json_integer_value(json_object_get(a, "days_31_60_cents")), 29700);
    assert_int_equal(json_integer_value(json_object_get(a, "days_61_90_cents")), 0);
    assert_int_equal(json_integer_value(json_object_get(a, "days_90_plus_cents")), 0);
    assert_int_equal(json_integer_value(json_object_get(a, "total_cents")), 40700);
    assert_int_equal(json_integer_value(json_object_get(a, "invoices")), 2);
    json_decref(j);
    /* 2026-07-01: 107 days late -> 90+; the April one 57 days -> 31-60. */
    assert_int_equal(
        ctl("--json", "report", "aging", "--firm-id", I(f), "--date", "2026-07-01", NULL), 0);
    assert_non_null(strstr(out, "\"days_90_plus_cents\":29700"));
    assert_non_null(strstr(out, "\"days_31_60_cents\":11000"));
    /* The manual invoices took the next legal numbers. */
    assert_int_equal(q1("SELECT count(*) FROM billing.invoices WHERE firm_id = $1"
                        " AND legal_number IN ('RPT-2026-000002', 'RPT-2026-000003')",
                        f),
                     2);
    /* report revenue counts the credit note and leaves the void invoice out. */
    char today[16];
    snprintf(today, sizeof today, "%s", qt("SELECT current_date::text", 0, NULL));
    assert_int_equal(ctl("--json", "report", "revenue", "--firm-id", I(f), "--from", "2026-01-01",
                         "--to", today, NULL),
                     0);
    assert_non_null(strstr(out, "\"credit_notes\": {\"count\": 1, \"tax_cents\": 300, "
                                "\"total_cents\": 3300, \"credited_cents\": 0, "
                                "\"refunded_cents\": 0, \"applied_to_due_cents\": 3300}"));
    assert_non_null(strstr(out, "\"invoice_count\": 2,")); /* the void one is not counted */
    assert_int_equal(ctl("report", "aging", "--firm-id", I(f), NULL), 2);
    assert_int_equal(ctl("report", "wip", NULL), 2);
}

/* Review end to end with the autopay code (payments_charge, in process)
 * against the stand-in: a draft is not charged; adjusted, issued and
 * partly credited, autopay charges exactly the balance due. */
static void test_review_flow_charged_after_issue(void **state)
{
    (void)state;
    standin *sd = standin_start(NULL);
    int64_t f = firm_with_prefix("FLOW");
    q("UPDATE billing.firm_settings SET review_before_issue = true WHERE firm_id = $1 RETURNING 1",
      1, (const char *const[]){I(f)});
    int64_t cl = q("INSERT INTO billing.clients(firm_id, company_name, primary_contact_email,"
                   " tax_rate_bp, autopay_enabled, autopay_payment_method_id, stripe_customer_id)"
                   " VALUES ($1::bigint, 'Client', 'c@example.com', 1000, true, 'pm_card_visa',"
                   " 'cus_QXg1o8vcGmoR32') RETURNING id",
                   1, (const char *const[]){I(f)});
    int64_t e = eng_new(f, cl, "hourly", NULL, "20000");
    int64_t t1 = entry_new(f, e, "2026-02-10", "5.00");
    tick(f, "2026-03-01");
    int64_t inv = q1("SELECT id FROM billing.invoices WHERE engagement_id = $1", e);
    int64_t line = q1("SELECT id FROM billing.invoice_line_items WHERE invoice_id = $1", inv);

    stripe_config cfg = {
        .secret_key = "sk_test_LifecycleTests00000001", .api_base = standin_url(sd), .max_rps = 25};
    char err[512];
    payments_ctx ctx = {.db = db, .stripe = stripe_client_new(&cfg, err, sizeof err)};
    assert_non_null(ctx.stripe);
    payments_schedule_from_env(&ctx);
    civil_date day;
    assert_true(date_parse("2026-03-04", &day));
    payments_stats st = {0};
    assert_int_equal(payments_charge(&ctx, PAYMENTS_AUTOPAY, &inv, 1, day, &st, err, sizeof err),
                     DB_OK);
    assert_int_equal(st.charged, 0);
    assert_int_equal(standin_stat(sd, "payment_intents_created"), 0);

    /* 5h -> 4h: 80000 + 8000 tax; issue; 8800 off by a credit note. */
    assert_int_equal(ctl("invoice", "adjust", I(inv), "--line", I(line), "--quantity", "4",
                         "--reason", "write-down", "--by", "partner", NULL),
                     0);
    assert_int_equal(
        ctl("invoice", "issue", I(inv), "--date", "2026-03-04", "--by", "partner", NULL), 0);
    assert_int_equal(ctl("credit-note", "create", "--invoice", I(inv), "--amount-cents", "8800",
                         "--credit", "--reason", "goodwill", "--by", "fin", NULL),
                     0);
    memset(&st, 0, sizeof st);
    assert_int_equal(payments_charge(&ctx, PAYMENTS_AUTOPAY, &inv, 1, day, &st, err, sizeof err),
                     DB_OK);
    assert_int_equal(st.succeeded, 1);
    json_t *pis = standin_payment_intents(sd);
    assert_int_equal(json_array_size(pis), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pis, 0), "amount")),
                     88000 - 8800);
    json_decref(pis);
    assert_string_equal(qt("SELECT status || ' ' || amount_paid_cents || ' ' || credited_cents"
                           " FROM billing.invoices WHERE id = $1",
                           1, (const char *const[]){I(inv)}),
                        "paid 79200 8800");
    /* The adjusted hours' entry stays invoiced. */
    assert_int_equal(q1("SELECT invoice_id FROM billing.time_entries WHERE id = $1", t1), inv);
    stripe_client_free(ctx.stripe);
    standin_stop(sd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_database_rules_for_direct_writers),
        cmocka_unit_test(test_scheduled_invoicing_numbers_gapless),
        cmocka_unit_test(test_review_before_issue_makes_drafts),
        cmocka_unit_test(test_racing_issuers_gapless),
        cmocka_unit_test(test_adjust_and_issue),
        cmocka_unit_test(test_void),
        cmocka_unit_test(test_credit_note_on_unpaid_invoice),
        cmocka_unit_test(test_credit_note_by_lines_to_credit),
        cmocka_unit_test(test_report_wip_and_aging),
        cmocka_unit_test(test_review_flow_charged_after_issue),
        cmocka_unit_test(test_credit_note_refund_through_stripe),
        cmocka_unit_test(test_credit_note_refund_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
