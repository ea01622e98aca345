/* test_billingctl_ops.c: billingctl's time, engagement, invoice and report
 * commands run as a real process (LL_BILLINGCTL_BIN) against the real
 * database (DATABASE_URL). Each test seeds its own firm, so the suite can run
 * any number of times on one database. Checks exit statuses (0 ok, 1
 * refused, 2 usage), --json output and the rows written. */
#include <fcntl.h>
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

static const char *I(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

#define ctl(...) ctltest(out, sizeof out, errout, sizeof errout, NULL, __VA_ARGS__)

static int64_t json_id(const char *key)
{
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (j == NULL)
        fail_msg("not JSON: %s", out);
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v))
        fail_msg("no %s in %s", key, out);
    int64_t id = (int64_t)json_integer_value(v);
    json_decref(j);
    return id;
}

static int64_t q(const char *sql, int n, const char *const *p)
{
    return dbtest_ok(db, sql, n, p);
}

static const char *qt(const char *sql, int n, const char *const *p)
{
    return dbtest_text(db, sql, n, p);
}

static int64_t mk_engagement(int64_t firm, int64_t client, const char *mode, const char *fee,
                             const char *rate, const char *start, const char *end,
                             const char *status)
{
    const char *p[] = {I(firm), I(client), mode, fee, rate, start, end, status};
    return q("INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
             "package_fee_cents, hourly_rate_cents, start_date, end_date, status, "
             "payment_terms_days) VALUES ($1, $2, 'Advisory', $3, $4, $5, $6, $7, $8, 15) "
             "RETURNING id",
             8, p);
}

static int64_t mk_entry(int64_t firm, int64_t eng, const char *hours)
{
    const char *p[] = {I(firm), I(eng), hours};
    return q("INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, hours) "
             "VALUES ($1, $2, 'ann', '2026-02-03', $3) RETURNING id",
             3, p);
}

/* ---- time approve / revoke ---------------------------------------------- */

static void test_time_approve_revoke(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = dbtest_client(db, firm);
    int64_t eng =
        mk_engagement(firm, client, "hourly", NULL, "15000", "2026-01-01", NULL, "current");
    int64_t e1 = mk_entry(firm, eng, "1.50"), e2 = mk_entry(firm, eng, "2.00");

    assert_int_equal(ctl("--json", "time", "approve", I(e1), I(e2), "--by", "pat", NULL), 0);
    const char *p2[] = {I(e1), I(e2)};
    assert_int_equal(q("SELECT count(*) FROM billing.time_entries WHERE id IN ($1, $2) "
                       "AND approved AND approved_by = 'pat' AND approved_at IS NOT NULL",
                       2, p2),
                     2);
    const char *pf[] = {I(firm)};
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1 "
                       "AND action = 'time_entries_approved' AND actor = 'pat'",
                       1, pf),
                     1);

    assert_int_equal(ctl("time", "revoke", I(e2), NULL), 0);
    const char *pe2[] = {I(e2)};
    assert_int_equal(q("SELECT count(*) FROM billing.time_entries WHERE id = $1 AND NOT approved "
                       "AND approved_by IS NULL",
                       1, pe2),
                     0 + 1);

    /* An unknown id anywhere in the list: nothing changes (exit 1). */
    assert_int_equal(ctl("time", "approve", I(e2), "999999999999", "--by", "pat", NULL), 1);
    assert_non_null(strstr(errout, "no such time entry"));
    assert_int_equal(
        q("SELECT count(*) FROM billing.time_entries WHERE id = $1 AND approved", 1, pe2), 0);

    /* Invoiced entry: revoking is refused by the database (rule 1.8). */
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--line",
                         "hourly:1.5:15000:Consulting", "--date", "2026-03-01", NULL),
                     0);
    int64_t inv = json_id("invoice_id");
    const char *pi[] = {I(inv), I(e1)};
    q("UPDATE billing.time_entries SET invoice_id = $1 WHERE id = $2", 2, pi);
    const char *pe1[] = {I(e1)};
    assert_int_equal(ctl("time", "revoke", I(e1), NULL), 1);
    assert_non_null(strstr(errout, "rule 1.8"));
    assert_non_null(strstr(errout, "cannot be revoked"));
    assert_int_equal(
        q("SELECT count(*) FROM billing.time_entries WHERE id = $1 AND approved", 1, pe1), 1);

    /* Usage errors. */
    assert_int_equal(ctl("time", "approve", I(e1), NULL), 2);       /* no --by */
    assert_int_equal(ctl("time", "approve", "--by", "x", NULL), 2); /* no id */
    assert_int_equal(ctl("time", "approve", "0", "--by", "x", NULL), 2);
    assert_int_equal(ctl("time", "revoke", "12abc", NULL), 2);
}

/* ---- engagement renew --------------------------------------------------- */

static void test_engagement_renew(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = dbtest_client(db, firm);
    int64_t old = mk_engagement(firm, client, "package", "100000", NULL, "2026-01-01", "2026-12-31",
                                "current");
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--engagement",
                         I(old), "--line", "package_fee:1:100000:January", "--date", "2026-01-01",
                         NULL),
                     0);
    int64_t inv = json_id("invoice_id");

    assert_int_equal(ctl("engagement", "renew", I(old), "--package-fee-cents", "120000", "--json",
                         "--by", "lee", NULL),
                     0);
    int64_t neu = json_id("engagement_id");
    assert_true(neu != old);
    const char *pn[] = {I(neu), I(old)};
    assert_int_equal(q("SELECT count(*) FROM billing.engagements WHERE id = $1 "
                       "AND parent_engagement_id = $2 AND version = 2 AND status = 'current' "
                       "AND start_date = '2027-01-01' AND end_date = '2027-12-31' "
                       "AND package_fee_cents = 120000 AND pricing_mode = 'package' "
                       "AND payment_terms_days = 15",
                       2, pn),
                     1);
    const char *po[] = {I(old)};
    assert_string_equal(qt("SELECT status FROM billing.engagements WHERE id = $1", 1, po),
                        "completed");
    const char *pa[] = {I(firm), I(old), I(neu)};
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1 "
                       "AND action = 'engagement_renewed' AND actor = 'lee' "
                       "AND (metadata->>'old_engagement_id')::bigint = $2 "
                       "AND (metadata->>'new_engagement_id')::bigint = $3 "
                       "AND (metadata->>'old_package_fee_cents')::bigint = 100000 "
                       "AND (metadata->>'new_package_fee_cents')::bigint = 120000",
                       3, pa),
                     1);
    /* The old invoice is untouched. */
    const char *pi[] = {I(inv), I(old)};
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id = $1 "
                       "AND engagement_id = $2 AND total_cents = 100000",
                       2, pi),
                     1);
    /* A manual invoice now links to the new engagement. */
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--line",
                         "package_fee:1:120000:January 2027", "--date", "2027-01-01", NULL),
                     0);
    const char *pl[] = {I(json_id("invoice_id"))};
    assert_int_equal(q("SELECT engagement_id FROM billing.invoices WHERE id = $1", 1, pl), neu);

    /* Renewing the completed one again is refused. */
    assert_int_equal(ctl("engagement", "renew", I(old), NULL), 1);
    assert_non_null(strstr(errout, "not current"));

    /* Leap day: a renewal starting 2028-02-29 ends 2029-02-28. */
    int64_t leap =
        mk_engagement(firm, client, "package", "5000", NULL, "2027-03-01", "2028-02-28", "current");
    assert_int_equal(ctl("--json", "engagement", "renew", I(leap), NULL), 0);
    const char *pleap[] = {I(json_id("engagement_id"))};
    assert_string_equal(qt("SELECT start_date || ' ' || end_date FROM billing.engagements "
                           "WHERE id = $1",
                           1, pleap),
                        "2028-02-29 2029-02-28");

    /* No end date and no --start: refused; with --start it works. */
    int64_t open =
        mk_engagement(firm, client, "package", "5000", NULL, "2026-01-01", NULL, "current");
    assert_int_equal(ctl("engagement", "renew", I(open), NULL), 1);
    assert_non_null(strstr(errout, "--start"));
    assert_int_equal(ctl("--json", "engagement", "renew", I(open), "--start", "2026-07-01", "--end",
                         "2026-12-31", "--hourly-rate-cents", "100", NULL),
                     0);

    assert_int_equal(ctl("engagement", "renew", "abc", NULL), 2);
    assert_int_equal(ctl("engagement", "renew", I(open), "--start", "2026-02-30", NULL), 2);
    assert_int_equal(ctl("engagement", "renew", I(open), "--package-fee-cents", "1.5", NULL), 2);
    assert_int_equal(ctl("engagement", "renew", I(open), "--package-fee-cents", "-5", NULL), 2);
}

/* ---- invoice create / show ---------------------------------------------- */

static void test_invoice_create_auto_link(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = dbtest_client(db, firm);
    const char *pc[] = {I(client)};
    q("UPDATE billing.clients SET tax_rate_bp = 825 WHERE id = $1", 1, pc);
    int64_t eng =
        mk_engagement(firm, client, "mixed", "100000", "15000", "2026-01-01", NULL, "current");
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--line",
                         "package_fee:1:100000:Retainer: March: phase 1", "--line",
                         "hourly:1.5:15001:Work", "--date", "2026-03-01", "--by", "ops", NULL),
                     0);
    int64_t inv = json_id("invoice_id");
    char number[64];
    json_t *j = json_loads(out, 0, NULL);
    snprintf(number, sizeof number, "%s", json_string_value(json_object_get(j, "invoice_number")));
    json_decref(j);
    char want[64];
    snprintf(want, sizeof want, "INV-%lld-000001", (long long)firm);
    assert_string_equal(number, want);

    const char *pi[] = {I(inv), I(eng)};
    /* 1.5 x 15001 = 22501.5 -> 22502; subtotal 122502; tax 8.25% = 10106.4 -> 10106. */
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id = $1 AND engagement_id = $2 "
                       "AND status = 'sent' AND subtotal_cents = 122502 AND tax_cents = 10106 "
                       "AND total_cents = 132608 AND issue_date = '2026-03-01' "
                       "AND due_date = '2026-03-16' AND NOT is_auto_generated "
                       "AND NOT engagement_override",
                       2, pi),
                     1);
    const char *pinv[] = {I(inv)};
    assert_string_equal(qt("SELECT string_agg(line_type || '|' || quantity || '|' || rate_cents "
                           "|| '|' || amount_cents || '|' || description, ';' ORDER BY id) "
                           "FROM billing.invoice_line_items WHERE invoice_id = $1",
                           1, pinv),
                        "package_fee|1.00|100000|100000|Retainer: March: phase 1;"
                        "hourly|1.50|15001|22502|Work");
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE action = 'invoice_created' "
                       "AND actor = 'ops' AND (metadata->>'invoice_id')::bigint = $1",
                       1, pinv),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.outbox WHERE topic = 'invoices' "
                       "AND msg_key = $1::text AND payload->>'type' = 'invoice.issued' "
                       "AND payload->>'idempotency_key' = 'invoice.issued:' || $1 "
                       "AND (payload->>'total_cents')::bigint = 132608",
                       1, pinv),
                     1);
    /* the contract's invoice.issued names the legal number (one producer:
     * billing.invoice_event) */
    assert_int_equal(q("SELECT count(*) FROM billing.outbox o JOIN billing.invoices i"
                       " ON i.id = $1::bigint AND o.msg_key = $1::text WHERE o.topic = 'invoices'"
                       " AND i.legal_number IS NOT NULL"
                       " AND o.payload->>'legal_number' = i.legal_number"
                       " AND (o.payload->>'amount_paid_cents')::bigint = 0",
                       1, pinv),
                     1);

    /* A second invoice takes the next number. */
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--line",
                         "adjustment:2:250:Courier", NULL),
                     0);
    j = json_loads(out, 0, NULL);
    snprintf(want, sizeof want, "INV-%lld-000002", (long long)firm);
    assert_string_equal(json_string_value(json_object_get(j, "invoice_number")), want);
    json_decref(j);

    /* invoice show --json */
    const char *pp[] = {I(firm), I(inv)};
    q("INSERT INTO billing.payments(firm_id, invoice_id, amount_cents, source) "
      "VALUES ($1, $2, 5000, 'manual')",
      2, pp);
    assert_int_equal(ctl("invoice", "show", I(inv), "--json", NULL), 0);
    j = json_loads(out, 0, NULL);
    assert_non_null(j);
    json_t *h = json_object_get(j, "invoice");
    assert_string_equal(json_string_value(json_object_get(h, "invoice_number")), number);
    assert_int_equal(json_integer_value(json_object_get(h, "total_cents")), 132608);
    assert_int_equal(json_integer_value(json_object_get(h, "engagement_id")), eng);
    json_t *lines = json_object_get(j, "lines");
    assert_int_equal(json_array_size(lines), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "description")),
                        "Retainer: March: phase 1");
    json_t *pays = json_object_get(j, "payments");
    assert_int_equal(json_array_size(pays), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pays, 0), "amount_cents")),
                     5000);
    json_decref(j);
    assert_int_equal(ctl("invoice", "show", I(inv), NULL), 0);
    assert_non_null(strstr(out, "Retainer: March: phase 1"));
    assert_int_equal(ctl("invoice", "show", "999999999999", NULL), 1);
    assert_int_equal(ctl("invoice", "show", "x", NULL), 2);

    /* A line type the engagement's pricing mode does not allow: refused. */
    int64_t c2 = dbtest_client(db, firm);
    mk_engagement(firm, c2, "package", "100", NULL, "2026-01-01", NULL, "current");
    assert_int_equal(ctl("invoice", "create", "--client", I(c2), "--line", "hourly:1:100:x", NULL),
                     1);
    assert_non_null(strstr(errout, "rule 1.5"));
}

static void test_invoice_create_override_and_refusal(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = dbtest_client(db, firm);
    /* Only a completed engagement: no current one to link to. */
    mk_engagement(firm, client, "package", "100", NULL, "2025-01-01", "2025-12-31", "completed");
    const char *pc[] = {I(client)};
    assert_int_equal(
        ctl("invoice", "create", "--client", I(client), "--line", "adjustment:1:500:Setup", NULL),
        1);
    assert_non_null(strstr(errout, "rule 1.2"));
    assert_null(strstr(errout, "CONTEXT"));
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE client_id = $1", 1, pc), 0);

    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--override-reason",
                         "one-off workshop", "--override-by", "admin:kim", "--line",
                         "adjustment:3:1000:Workshop: day 1", "--date", "2026-04-10", NULL),
                     0);
    const char *pi[] = {I(json_id("invoice_id"))};
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE id = $1 AND engagement_id IS "
                       "NULL AND engagement_override AND engagement_override_reason = "
                       "'one-off workshop' AND engagement_override_by = 'admin:kim' "
                       "AND total_cents = 3000 AND due_date = '2026-05-10'",
                       1, pi),
                     1);
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE action = 'invoice_created' "
                       "AND actor = 'admin:kim' AND (metadata->>'invoice_id')::bigint = $1",
                       1, pi),
                     1);

    /* Usage errors: exit 2, nothing written. */
    assert_int_equal(ctl("invoice", "create", "--line", "adjustment:1:1:x", NULL), 2);
    assert_int_equal(ctl("invoice", "create", "--client", I(client), NULL), 2);
    assert_int_equal(ctl("invoice", "create", "--client", "-3", "--line", "adjustment:1:1:x", NULL),
                     2);
    assert_int_equal(
        ctl("invoice", "create", "--client", I(client), "--line", "adjustment:1:1", NULL), 2);
    assert_int_equal(
        ctl("invoice", "create", "--client", I(client), "--line", "adjustment:1.234:1:x", NULL), 2);
    assert_int_equal(
        ctl("invoice", "create", "--client", I(client), "--line", "adjustment:1:1.5:x", NULL), 2);
    assert_int_equal(ctl("invoice", "create", "--client", I(client), "--line", "misc:1:1:x", NULL),
                     2);
    assert_int_equal(ctl("invoice", "create", "--client", I(client), "--override-reason", "r",
                         "--line", "adjustment:1:1:x", NULL),
                     2);
    assert_int_equal(ctl("invoice", "create", "--client", I(client), "--engagement", "1",
                         "--override-reason", "r", "--override-by", "b", "--line",
                         "adjustment:1:1:x", NULL),
                     2);
    assert_int_equal(ctl("invoice", "create", "--client", I(client), "--date", "2026-13-01",
                         "--line", "adjustment:1:1:x", NULL),
                     2);
    assert_int_equal(q("SELECT count(*) FROM billing.invoices WHERE client_id = $1", 1, pc), 1);
}

/* ---- report revenue ----------------------------------------------------- */

static json_t *currency_row(json_t *root, const char *cur)
{
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(root, "currencies"), i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "currency")), cur) == 0)
            return row;
    }
    fail_msg("no %s row in %s", cur, out);
    return NULL;
}

static long long ji(json_t *o, const char *a, const char *b)
{
    return (long long)json_integer_value(json_object_get(json_object_get(o, a), b));
}

/* Rule 11.13: a manual invoice in kwd has every amount rounded half up to a
 * multiple of 10 fils, once from the exact value; the same lines in usd are
 * rounded to the cent. */
static void test_invoice_create_three_decimals(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db);
    int64_t kwd = dbtest_client(db, firm), usd = dbtest_client(db, firm);
    const char *pk[] = {I(kwd)}, *pu[] = {I(usd)};
    q("UPDATE billing.clients SET currency = 'kwd', tax_rate_bp = 825 WHERE id = $1", 1, pk);
    q("UPDATE billing.clients SET tax_rate_bp = 825 WHERE id = $1", 1, pu);
    mk_engagement(firm, kwd, "mixed", "100005", "1003", "2026-01-01", NULL, "current");
    mk_engagement(firm, usd, "mixed", "100005", "1003", "2026-01-01", NULL, "current");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ctl("--json", "invoice", "create", "--client", I(i == 0 ? kwd : usd),
                             "--line", "hourly:1.5:1003:Work", "--line", "package_fee:1:100005:Fee",
                             "--line", "adjustment:0.5:2009:Courier", "--date", "2026-03-01", NULL),
                         0);
        const char *pi[] = {I(json_id("invoice_id"))};
        if (i == 0) {
            /* kwd: 1.5 x 1003 = 1504.5 -> 1500 (not 1505 -> 1510); 100005 ->
             * 100010; 0.5 x 2009 = 1004.5 -> 1000; subtotal 102510; tax
             * 8.25% = 8457.075 -> 8460; total 110970. */
            assert_string_equal(qt("SELECT string_agg(amount_cents::text, ',' ORDER BY id) "
                                   "FROM billing.invoice_line_items WHERE invoice_id = $1",
                                   1, pi),
                                "1500,100010,1000");
            assert_string_equal(qt("SELECT currency || ' ' || subtotal_cents || ' ' || tax_cents "
                                   "|| ' ' || total_cents FROM billing.invoices WHERE id = $1",
                                   1, pi),
                                "kwd 102510 8460 110970");
        } else {
            /* usd: 1505, 100005, 1005; subtotal 102515; tax 8457.4875 -> 8457. */
            assert_string_equal(qt("SELECT string_agg(amount_cents::text, ',' ORDER BY id) "
                                   "FROM billing.invoice_line_items WHERE invoice_id = $1",
                                   1, pi),
                                "1505,100005,1005");
            assert_string_equal(qt("SELECT currency || ' ' || subtotal_cents || ' ' || tax_cents "
                                   "|| ' ' || total_cents FROM billing.invoices WHERE id = $1",
                                   1, pi),
                                "usd 102515 8457 110972");
        }
    }
}

static void test_report_revenue(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(db), client = dbtest_client(db, firm);
    int64_t other = dbtest_client(db, firm);
    mk_engagement(firm, client, "mixed", "100000", "25000", "2026-01-01", NULL, "current");
    /* A: 100000 package + 50000 hourly, issued in range. */
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--line",
                         "package_fee:1:100000:May", "--line", "hourly:2:25000:Hours", "--date",
                         "2026-05-10", NULL),
                     0);
    int64_t a = json_id("invoice_id");
    /* D: 100 package + 201 hourly, issued in range. */
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--line",
                         "package_fee:1:100:Small", "--line", "hourly:1:201:Small hours", "--date",
                         "2026-06-01", NULL),
                     0);
    int64_t d = json_id("invoice_id");
    /* B: adjustment 1000 (override), issued in range. */
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(other), "--override-reason",
                         "misc", "--override-by", "adm", "--line", "adjustment:1:1000:Fix",
                         "--date", "2026-06-30", NULL),
                     0);
    int64_t b = json_id("invoice_id");
    /* C: issued after the range. */
    assert_int_equal(ctl("--json", "invoice", "create", "--client", I(client), "--line",
                         "package_fee:1:7777:July", "--date", "2026-07-01", NULL),
                     0);
    /* Payments: 75000 on A in range (split 50000 / 25000); 100 on D in
     * range (33.2 / 66.8 -> 33 / 66, remaining cent to hourly, the larger);
     * 1000 on B after the range; 300 credit on A in range. */
    const char *pa[] = {I(firm), I(a), I(d), I(b)};
    q("INSERT INTO billing.payments(firm_id, invoice_id, amount_cents, source, received_at) "
      "VALUES ($1, $2, 75000, 'manual', '2026-06-15T12:00:00Z'), "
      "($1, $3, 100, 'manual', '2026-06-30T23:59:59Z'), "
      "($1, $4, 1000, 'manual', '2026-07-01T00:00:00Z'), "
      "($1, $2, 300, 'credit', '2026-06-16T00:00:00Z')",
      4, pa);

    assert_int_equal(ctl("--json", "report", "revenue", "--firm-id", I(firm), "--from",
                         "2026-05-01", "--to", "2026-06-30", NULL),
                     0);
    json_t *root = json_loads(out, 0, NULL);
    assert_non_null(root);
    json_t *usd = currency_row(root, "usd");
    assert_int_equal(ji(usd, "invoiced", "invoice_count"), 3);
    assert_int_equal(ji(usd, "invoiced", "package_cents"), 100100);
    assert_int_equal(ji(usd, "invoiced", "hourly_cents"), 50201);
    assert_int_equal(ji(usd, "invoiced", "adjustment_cents"), 1000);
    assert_int_equal(ji(usd, "invoiced", "tax_cents"), 0);
    assert_int_equal(ji(usd, "invoiced", "total_cents"), 151301);
    assert_int_equal(ji(usd, "collected", "payment_count"), 2);
    assert_int_equal(ji(usd, "collected", "package_cents"), 50033);
    assert_int_equal(ji(usd, "collected", "hourly_cents"), 25067);
    assert_int_equal(ji(usd, "collected", "adjustment_cents"), 0);
    assert_int_equal(ji(usd, "collected", "total_cents"), 75100);
    assert_int_equal(json_integer_value(json_object_get(usd, "credit_applied_cents")), 300);
    json_decref(root);

    assert_int_equal(ctl("report", "revenue", "--firm-id", I(firm), "--from", "2026-05-01", "--to",
                         "2026-06-30", NULL),
                     0);
    assert_non_null(strstr(out, "invoiced"));
    assert_int_equal(ctl("report", "revenue", "--firm-id", I(firm), "--from", "2026-07-01", "--to",
                         "2026-06-30", NULL),
                     2);
    assert_int_equal(ctl("report", "revenue", "--from", "2026-07-01", "--to", "2026-07-30", NULL),
                     2);
    assert_int_equal(ctl("report", "revenue", "--firm-id", "999999999999", "--from", "2026-07-01",
                         "--to", "2026-07-30", NULL),
                     1);
}

int main(void)
{
    db = dbtest_connect();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_approve_revoke),
        cmocka_unit_test(test_engagement_renew),
        cmocka_unit_test(test_invoice_create_auto_link),
        cmocka_unit_test(test_invoice_create_override_and_refusal),
        cmocka_unit_test(test_invoice_create_three_decimals),
        cmocka_unit_test(test_report_revenue),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(db);
    return rc;
}
