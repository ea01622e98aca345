/* test_credit_cli.c: `billingctl credit ...` and `billingctl report credits`
 * run as a real process (LL_BILLINGCTL_BIN) against the real database
 * (DATABASE_URL). Each test seeds its own firm and scopes expiry to it, so
 * the suite can run any number of times on one database. Checks exit
 * statuses (0 ok, 1 refused, 2 usage), --json output and the rows written. */
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

#include "support/ctltest.h"
#include "support/dbtest.h"

static PGconn *db;
static char out[65536], errout[65536];
static const char *url_override; /* DATABASE_URL for the child, NULL = inherited */

static const char *I(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

#define ctl(...) ctltest(out, sizeof out, errout, sizeof errout, url_override, __VA_ARGS__)

static json_t *out_json(void)
{
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (j == NULL)
        fail_msg("not JSON: %s", out);
    return j;
}

static int64_t jget(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("no integer %s", key);
    return (int64_t)json_integer_value(v);
}

static int64_t json_id(const char *key)
{
    json_t *j = out_json();
    int64_t v = jget(j, key);
    json_decref(j);
    return v;
}

static int64_t q(const char *sql, int n, const char *const *p)
{
    return dbtest_ok(db, sql, n, p);
}

static int64_t client_in(int64_t firm, const char *currency)
{
    const char *p[] = {I(firm), currency};
    return q("INSERT INTO billing.clients(firm_id, company_name, currency) "
             "VALUES ($1, 'Client', $2) RETURNING id",
             2, p);
}

static int64_t invoice_new(int64_t firm, int64_t client, int64_t total, const char *status)
{
    char number[96];
    snprintf(number, sizeof number, "T-%s", dbtest_unique());
    const char *p[] = {I(firm), I(client), number, status, I(total)};
    return q("WITH i AS (INSERT INTO billing.invoices(firm_id, client_id, engagement_override, "
             "  engagement_override_reason, engagement_override_by, invoice_number, status, "
             "  subtotal_cents, total_cents, issue_date, due_date) "
             "  VALUES ($1, $2, true, 'test', 'tester', $3, $4, $5::bigint, $5::bigint, "
             "  '2026-01-01', '2026-01-31') RETURNING id, firm_id), "
             "l AS (INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
             "  description, quantity, rate_cents, amount_cents) "
             "  SELECT id, firm_id, 'adjustment', 'Work', 1, $5::bigint, $5::bigint FROM i) "
             "SELECT id FROM i",
             5, p);
}

static int64_t ledger_rows(int64_t client)
{
    const char *p[] = {I(client)};
    return q("SELECT count(*) FROM billing.credit_ledger WHERE client_id = $1", 1, p);
}

/* ---- credit add / balance ----------------------------------------------- */

static void test_cli_add_and_balance(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = client_in(firm, "usd");
    assert_int_equal(ctl("--json", "credit", "add", "--client", I(client), "--amount-cents", "2500",
                         "--source", "promotional", "--description", "Launch offer", "--created-by",
                         "sam", "--expires", "2026-12-31", NULL),
                     0);
    int64_t e1 = json_id("entry_id");
    const char *p1[] = {I(e1), I(client)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger l JOIN billing.audit_events a "
                       "ON a.id = l.audit_event_id WHERE l.id = $1 AND l.client_id = $2 "
                       "AND l.entry_type = 'credit' AND l.source = 'promotional' "
                       "AND l.amount_cents = 2500 AND l.description = 'Launch offer' "
                       "AND l.created_by = 'sam' AND l.expires_at = '2026-12-31' "
                       "AND a.action = 'credit_created' AND a.actor = 'sam' "
                       "AND (a.metadata->>'entry_id')::bigint = l.id",
                       2, p1),
                     1);
    /* Plain output: the id alone. */
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "1000",
                         "--source", "correction", "--description", "Fix", "--reason",
                         "double billed", "--approved-by", "lee", NULL),
                     0);
    int64_t e2 = strtoll(out, NULL, 10);
    assert_true(e2 > e1);

    assert_int_equal(ctl("--json", "credit", "balance", "--client", I(client), NULL), 0);
    json_t *j = out_json();
    assert_int_equal(jget(j, "client_id"), client);
    assert_int_equal(jget(j, "balance_cents"), 3500);
    assert_string_equal(json_string_value(json_object_get(j, "currency")), "usd");
    json_decref(j);
    assert_int_equal(ctl("credit", "balance", "--client", I(client), NULL), 0);
    assert_non_null(strstr(out, "3500"));

    /* Overpayment names the invoice overpaid. */
    int64_t inv = invoice_new(firm, client, 1000, "paid");
    assert_int_equal(ctl("--json", "credit", "add", "--client", I(client), "--amount-cents", "75",
                         "--source", "overpayment", "--description", "Cheque above balance",
                         "--source-invoice", I(inv), NULL),
                     0);
    const char *po[] = {I(json_id("entry_id")), I(inv)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE id = $1 "
                       "AND source_invoice_id = $2",
                       2, po),
                     1);

    /* Refusals and usage errors. */
    assert_int_equal(ctl("credit", "balance", "--client", "999999999999", NULL), 1);
    assert_non_null(strstr(errout, "no such client"));
    assert_int_equal(ctl("credit", "add", "--client", "999999999999", "--amount-cents", "1",
                         "--source", "promotional", "--description", "x", NULL),
                     1);
    assert_int_equal(ctl("credit", "add", "--amount-cents", "1", "--source", "promotional",
                         "--description", "x", NULL),
                     2);
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "0", "--source",
                         "promotional", "--description", "x", NULL),
                     2);
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "-5", "--source",
                         "promotional", "--description", "x", NULL),
                     2);
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "5", "--source",
                         "gift", "--description", "x", NULL),
                     2);
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "5", "--source",
                         "promotional", NULL),
                     2);
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "5", "--source",
                         "promotional", "--description", "x", "--expires", "2026-02-30", NULL),
                     2);
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "5", "--source",
                         "overpayment", "--description", "x", NULL),
                     2);
    assert_int_equal(ctl("credit", "balance", NULL), 2);
    assert_int_equal(ledger_rows(client), 3);
}

/* ---- goodwill without reason or approver -------------------------------- */

static void test_cli_goodwill_refused(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = client_in(firm, "usd");
    /* Refused before the database is touched: even with a database that
     * cannot be reached, the answer is the rule, not a connection error. */
    url_override = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1";
    int rc = ctl("credit", "add", "--client", I(client), "--amount-cents", "500", "--source",
                 "goodwill", "--description", "Sorry", "--approved-by", "lee", NULL);
    url_override = NULL;
    assert_int_equal(rc, 1);
    assert_non_null(strstr(errout, "rule 4"));
    assert_non_null(strstr(errout, "--reason"));
    assert_null(strstr(errout, "connect"));

    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "500",
                         "--source", "goodwill", "--description", "Sorry", "--reason",
                         "late delivery", NULL),
                     1);
    assert_non_null(strstr(errout, "--approved-by"));
    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "500",
                         "--source", "correction", "--description", "Fix", NULL),
                     1);
    assert_int_equal(ledger_rows(client), 0);
    const char *pf[] = {I(firm)};
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1", 1, pf), 0);

    assert_int_equal(ctl("--json", "credit", "add", "--client", I(client), "--amount-cents", "500",
                         "--source", "goodwill", "--description", "Sorry", "--reason",
                         "late delivery", "--approved-by", "lee", NULL),
                     0);
    assert_int_equal(ledger_rows(client), 1);
}

/* ---- credit apply ------------------------------------------------------- */

static void test_cli_apply(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = client_in(firm, "usd");
    int64_t inv = invoice_new(firm, client, 6000, "sent");
    assert_int_equal(ctl("credit", "apply", "--invoice", I(inv), NULL), 1);
    assert_non_null(strstr(errout, "no available credit"));

    assert_int_equal(ctl("credit", "add", "--client", I(client), "--amount-cents", "8000",
                         "--source", "refund", "--description", "Refund as credit", NULL),
                     0);
    assert_int_equal(ctl("--json", "credit", "apply", "--invoice", I(inv), "--amount-cents", "1000",
                         "--created-by", "kim", NULL),
                     0);
    json_t *j = out_json();
    assert_int_equal(jget(j, "applied_cents"), 1000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "partial");
    assert_int_equal(jget(j, "balance_due_cents"), 5000);
    json_decref(j);

    assert_int_equal(ctl("credit", "apply", "--invoice", I(inv), "--date", "2026-11-02", NULL), 0);
    assert_non_null(strstr(out, "applied 5000"));
    assert_non_null(strstr(out, "paid"));
    const char *pi[] = {I(inv)};
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id = $1 AND status = 'paid' "
                       "AND amount_paid_cents = 6000 AND paid_date = '2026-11-02'",
                       1, pi),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1 "
                       "AND source = 'credit'",
                       1, pi),
                     2);
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger l JOIN billing.audit_events a "
                       "ON a.id = l.audit_event_id WHERE l.applied_to_invoice_id = $1 "
                       "AND a.action = 'credit_applied' AND (l.use = 'partial_payment' "
                       "AND l.amount_cents = 1000 AND a.actor = 'kim' OR l.use = "
                       "'invoice_payment' AND l.amount_cents = 5000 AND a.actor IS NULL)",
                       1, pi),
                     2);
    assert_int_equal(q("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text "
                       "AND payload->>'type' = 'invoice.paid'",
                       1, pi),
                     1);

    /* Paid: nothing left to apply, nothing written. */
    int64_t rows = ledger_rows(client);
    assert_int_equal(ctl("credit", "apply", "--invoice", I(inv), NULL), 1);
    assert_non_null(strstr(errout, "no balance due"));
    assert_int_equal(ledger_rows(client), rows);

    int64_t draft = invoice_new(firm, client, 500, "draft");
    assert_int_equal(ctl("credit", "apply", "--invoice", I(draft), NULL), 1);
    assert_non_null(strstr(errout, "draft"));
    assert_int_equal(ctl("credit", "apply", "--invoice", "999999999999", NULL), 1);
    assert_int_equal(ctl("credit", "apply", NULL), 2);
    assert_int_equal(ctl("credit", "apply", "--invoice", I(inv), "--amount-cents", "0", NULL), 2);
    assert_int_equal(ctl("credit", "apply", "--invoice", I(inv), "--date", "tomorrow", NULL), 2);

    assert_int_equal(ctl("--json", "credit", "balance", "--client", I(client), NULL), 0);
    assert_int_equal(json_id("balance_cents"), 2000);
}

/* ---- credit expire ------------------------------------------------------ */

static void test_cli_expire(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = client_in(firm, "usd");
    assert_int_equal(ctl("--json", "credit", "add", "--client", I(client), "--amount-cents", "1200",
                         "--source", "promotional", "--description", "Trial", "--expires",
                         "2026-01-31", NULL),
                     0);
    int64_t credit = json_id("entry_id");
    assert_int_equal(
        ctl("--json", "credit", "expire", "--date", "2026-01-31", "--firm-id", I(firm), NULL), 0);
    assert_int_equal(json_id("entries"), 0);
    assert_int_equal(
        ctl("--json", "credit", "expire", "--date", "2026-02-01", "--firm-id", I(firm), NULL), 0);
    json_t *j = out_json();
    assert_int_equal(jget(j, "entries"), 1);
    assert_int_equal(jget(j, "amount_cents"), 1200);
    json_decref(j);
    assert_int_equal(ctl("credit", "expire", "--date", "2026-02-01", "--firm-id", I(firm), NULL),
                     0);
    assert_non_null(strstr(out, "expired 0"));
    const char *p[] = {I(client), I(credit)};
    assert_int_equal(q("SELECT count(*) FROM billing.credit_ledger WHERE client_id = $1 "
                       "AND use = 'expired' AND expired_entry_id = $2 AND amount_cents = 1200 "
                       "AND audit_event_id IS NOT NULL",
                       2, p),
                     1);
    assert_int_equal(ctl("credit", "expire", "--date", "2026-13-01", NULL), 2);
    assert_int_equal(ctl("credit", "expire", "--firm-id", "x", NULL), 2);
}

/* ---- report credits ----------------------------------------------------- */

/* A credit written directly at noon UTC `days_ago` days before today (with
 * its audit event), to give the report an opening balance. */
static void backdated_credit(int64_t firm, int64_t client, int64_t cents, int days_ago,
                             const char *expires)
{
    const char *p[] = {I(firm), I(client), I(cents), I(days_ago), expires};
    q("INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, amount_cents, source, "
      "description, expires_at, created_at, audit_event_id) "
      "VALUES ($1, $2, 'credit', $3, 'promotional', 'Earlier credit', $5::date, "
      "  (((now() AT TIME ZONE 'UTC')::date - $4::int)::timestamp + interval '12 hours') "
      "  AT TIME ZONE 'UTC', "
      "  billing.audit($1, 'credit_created', 'INFO', NULL, '{}'::jsonb))",
      5, p);
}

static json_t *currency_of(json_t *report, const char *code)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(report, "currencies"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "currency")), code) == 0)
            return c;
    }
    fail_msg("no currency %s in %s", code, out);
    return NULL;
}

static void test_cli_report_credits(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db);
    int64_t a = client_in(firm, "usd"), b = client_in(firm, "usd"), c = client_in(firm, "eur");
    char today[11], yesterday[11];
    snprintf(today, sizeof today, "%s",
             dbtest_text(db, "SELECT ((now() AT TIME ZONE 'UTC')::date)::text", 0, NULL));
    snprintf(yesterday, sizeof yesterday, "%s",
             dbtest_text(db, "SELECT ((now() AT TIME ZONE 'UTC')::date - 1)::text", 0, NULL));

    /* Before today: a 10000 (yesterday), b 4000 lapsing yesterday (two days ago). */
    backdated_credit(firm, a, 10000, 1, NULL);
    backdated_credit(firm, b, 4000, 2, yesterday);
    /* Today: a +5000, 3000 applied to a's invoice; b's 4000 expires; c +900 eur. */
    assert_int_equal(ctl("credit", "add", "--client", I(a), "--amount-cents", "5000", "--source",
                         "refund", "--description", "Refund", NULL),
                     0);
    int64_t inv = invoice_new(firm, a, 3000, "sent");
    assert_int_equal(ctl("credit", "apply", "--invoice", I(inv), "--date", today, NULL), 0);
    assert_int_equal(ctl("--json", "credit", "expire", "--date", today, "--firm-id", I(firm), NULL),
                     0);
    assert_int_equal(json_id("amount_cents"), 4000);
    assert_int_equal(ctl("credit", "add", "--client", I(c), "--amount-cents", "900", "--source",
                         "promotional", "--description", "Promo", NULL),
                     0);

    assert_int_equal(
        ctl("--json", "report", "credits", "--firm-id", I(firm), "--date", today, NULL), 0);
    json_t *r = out_json();
    assert_int_equal(jget(r, "firm_id"), firm);
    assert_string_equal(json_string_value(json_object_get(r, "date")), today);
    assert_true(json_is_true(json_object_get(r, "balanced")));
    assert_int_equal(json_array_size(json_object_get(r, "currencies")), 2);
    json_t *usd = currency_of(r, "usd");
    assert_int_equal(jget(usd, "credits_issued_count"), 1);
    assert_int_equal(jget(usd, "credits_issued_cents"), 5000);
    assert_int_equal(jget(usd, "credits_applied_count"), 1);
    assert_int_equal(jget(usd, "credits_applied_cents"), 3000);
    assert_int_equal(jget(usd, "credits_expired_count"), 1);
    assert_int_equal(jget(usd, "credits_expired_cents"), 4000);
    assert_int_equal(jget(usd, "credits_refunded_cents"), 0);
    assert_int_equal(jget(usd, "net_change_cents"), -2000);
    assert_int_equal(jget(usd, "opening_balance_cents"), 14000);
    assert_int_equal(jget(usd, "outstanding_balance_cents"), 12000);
    assert_int_equal(jget(usd, "clients_balance_sum_cents"), 12000);
    assert_int_equal(jget(usd, "clients_with_balance"), 1);
    assert_true(json_is_true(json_object_get(usd, "balanced")));
    json_t *eur = currency_of(r, "eur");
    assert_int_equal(jget(eur, "credits_issued_cents"), 900);
    assert_int_equal(jget(eur, "net_change_cents"), 900);
    assert_int_equal(jget(eur, "opening_balance_cents"), 0);
    assert_int_equal(jget(eur, "outstanding_balance_cents"), 900);
    json_decref(r);

    /* The outstanding balance is the sum of the clients' balances now. */
    int64_t sum = 0;
    const int64_t usd_clients[] = {a, b};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ctl("--json", "credit", "balance", "--client", I(usd_clients[i]), NULL),
                         0);
        sum += json_id("balance_cents");
    }
    assert_int_equal(sum, 12000);

    /* Yesterday: a's 10000 issued, b's 4000 was the opening balance. */
    assert_int_equal(
        ctl("--json", "report", "credits", "--firm-id", I(firm), "--date", yesterday, NULL), 0);
    r = out_json();
    usd = currency_of(r, "usd");
    assert_int_equal(jget(usd, "credits_issued_cents"), 10000);
    assert_int_equal(jget(usd, "credits_applied_cents"), 0);
    assert_int_equal(jget(usd, "opening_balance_cents"), 4000);
    assert_int_equal(jget(usd, "outstanding_balance_cents"), 14000);
    assert_int_equal(jget(usd, "clients_balance_sum_cents"), 14000);
    assert_int_equal(jget(currency_of(r, "eur"), "outstanding_balance_cents"), 0);
    json_decref(r);

    /* Table (default date: today). */
    assert_int_equal(ctl("report", "credits", "--firm-id", I(firm), NULL), 0);
    assert_non_null(strstr(out, today));
    assert_non_null(strstr(out, "check usd: outstanding 12000 = sum of clients' balances 12000"));
    assert_non_null(strstr(out, "ok"));
    assert_null(strstr(out, "MISMATCH"));

    assert_int_equal(ctl("report", "credits", "--firm-id", "999999999999", NULL), 1);
    assert_non_null(strstr(errout, "no such firm"));
    assert_int_equal(ctl("report", "credits", NULL), 2);
    assert_int_equal(ctl("report", "credits", "--firm-id", I(firm), "--date", "2026/01/01", NULL),
                     2);
}

static int setup(void **state)
{
    (void)state;
    db = dbtest_connect();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(db);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_add_and_balance), cmocka_unit_test(test_cli_goodwill_refused),
        cmocka_unit_test(test_cli_apply),           cmocka_unit_test(test_cli_expire),
        cmocka_unit_test(test_cli_report_credits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
