/* test_isolation.c: tenant isolation (BILLING_RULES 1.3, issue 9). Every
 * billingctl command that takes ids, given ids of another firm, refuses
 * where a firm is implied (a client of one firm with an engagement or
 * invoice of another) and otherwise touches only the rows it names: each
 * case compares a digest of every row of both firms before and after.
 * Reports scoped with --firm-id show nothing of another firm. Direct writes
 * that reference another firm's rows are refused by the database with an
 * error naming the rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "support/dbtest.h"
#include "support/standin.h"
#include "vtest.h"

static vt_firm A, B;
static int64_t b_dispute, b_big_invoice;
static standin *stripe;
static char env_key[64], env_base[160];
static const char *stripe_env[3];

static void snapshot(char a[33], char b[33])
{
    vt_digest(A.firm, a);
    vt_digest(B.firm, b);
}

/* Both firms exactly as they were. */
static void assert_untouched(const char a[33], const char b[33])
{
    char a2[33], b2[33];
    snapshot(a2, b2);
    assert_string_equal(a, a2);
    assert_string_equal(b, b2);
}

static int ctl(const char *const *argv)
{
    return vt_ctl_env(stripe_env, argv);
}

static int setup(void **state)
{
    (void)state;
    vt_seed(&A, true);
    vt_seed(&B, true);
    stripe = standin_start(NULL);
    snprintf(env_key, sizeof env_key, "STRIPE_SECRET_KEY=sk_test_Isolation0123456789ab");
    snprintf(env_base, sizeof env_base, "STRIPE_API_BASE=%s", standin_url(stripe));
    stripe_env[0] = env_key;
    stripe_env[1] = env_base;
    stripe_env[2] = NULL;
    /* Firm B has credit, a big invoice, a failed charge and a dispute; A has
     * none of these, so any of B's figures in A's reports is a leak. */
    assert_int_equal(vt_ctl("--json", "credit", "add", "--client", vt_i(B.client), "--amount-cents",
                            "5000", "--source", "promotional", "--description", "B promo", NULL),
                     0);
    assert_int_equal(vt_ctl("--json", "invoice", "create", "--client", vt_i(B.client),
                            "--engagement", vt_i(B.engagement), "--line",
                            "adjustment:1:777777:B big", "--date", "2026-02-01", NULL),
                     0);
    b_big_invoice = vt_q("SELECT max(id) FROM billing.invoices WHERE firm_id = $1", 1,
                         (const char *[]){vt_i(B.firm)});
    char pi[80], dp[80];
    snprintf(pi, sizeof pi, "pi_iso_%s", dbtest_unique());
    snprintf(dp, sizeof dp, "dp_iso%ld%lld", (long)getpid(), (long long)B.invoice);
    vt_q("INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind,"
         " idempotency_key, amount_cents, stripe_payment_intent_id, status, failure_code,"
         " failed_at) VALUES ($1::bigint, $2::bigint, 1, 'autopay', 'iso:' || $3, 654321, $3,"
         " 'failed', 'card_declined', '2026-02-02T00:00:00Z')",
         3, (const char *[]){vt_i(B.firm), vt_i(B.invoice), pi});
    b_dispute = vt_q("INSERT INTO billing.payment_disputes (firm_id, invoice_id, status, reason,"
                     " amount_cents, stripe_dispute_id, opened_at) VALUES ($1, $2, 'opened',"
                     " 'fraudulent', 43210, $3, now()) RETURNING id",
                     3, (const char *[]){vt_i(B.firm), vt_i(B.invoice), dp});
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    standin_stop(stripe);
    return 0;
}

static void test_invoice_commands(void **state)
{
    (void)state;
    char a[33], b[33];
    snapshot(a, b);
    /* invoice show: reads, whoever's invoice it is. */
    assert_int_equal(vt_ctl("--json", "invoice", "show", vt_i(B.invoice), NULL), 0);
    assert_non_null(strstr(vt_out, "\"firm_id\""));
    assert_int_equal(vt_ctl("invoice", "show", "999999999999", NULL), 1);
    assert_untouched(a, b);
    /* invoice create: A's client with B's engagement, and the reverse. */
    assert_int_equal(vt_ctl("invoice", "create", "--client", vt_i(A.client), "--engagement",
                            vt_i(B.engagement), "--line", "adjustment:1:100:x", NULL),
                     1);
    assert_non_null(strstr(vt_err, "is not an engagement of client"));
    assert_int_equal(vt_ctl("invoice", "create", "--client", vt_i(B.client), "--engagement",
                            vt_i(A.engagement), "--line", "package_fee:1:100:x", NULL),
                     1);
    assert_untouched(a, b);
}

static void test_time_and_engagement(void **state)
{
    (void)state;
    char a[33], b[33];
    snapshot(a, b);
    /* All or nothing: one unknown id refuses the whole command. */
    assert_int_equal(
        vt_ctl("time", "approve", vt_i(B.entry_open), "999999999999", "--by", "x", NULL), 1);
    assert_untouched(a, b);
    /* B's billed entry cannot be revoked. */
    assert_int_equal(vt_ctl("time", "revoke", vt_i(B.entry_billed), NULL), 1);
    assert_non_null(strstr(vt_err, "rule 1.8"));
    assert_untouched(a, b);
    /* Approving A's entry touches nothing of B. */
    assert_int_equal(vt_ctl("time", "approve", vt_i(A.entry_open), "--by", "lead", NULL), 0);
    char b2[33];
    assert_string_equal(vt_digest(B.firm, b2), b);
    assert_int_equal(vt_q("SELECT approved::int FROM billing.time_entries WHERE id = $1", 1,
                          (const char *[]){vt_i(A.entry_open)}),
                     1);
    /* Renewing A's engagement: a new engagement of A's firm and client. */
    assert_int_equal(
        vt_ctl("--json", "engagement", "renew", vt_i(A.engagement), "--start", "2027-01-01", NULL),
        0);
    json_t *j = json_loads(vt_out, 0, NULL);
    assert_non_null(j);
    int64_t neweng = json_integer_value(json_object_get(j, "engagement_id"));
    json_decref(j);
    assert_int_equal(vt_q("SELECT firm_id FROM billing.engagements WHERE id = $1", 1,
                          (const char *[]){vt_i(neweng)}),
                     A.firm);
    assert_int_equal(vt_q("SELECT client_id FROM billing.engagements WHERE id = $1", 1,
                          (const char *[]){vt_i(neweng)}),
                     A.client);
    assert_string_equal(vt_digest(B.firm, b2), b);
}

static void test_credit_commands(void **state)
{
    (void)state;
    char a[33], b[33];
    snapshot(a, b);
    /* An overpayment credit of A's client naming B's invoice. */
    assert_int_equal(vt_ctl("credit", "add", "--client", vt_i(A.client), "--amount-cents", "100",
                            "--source", "overpayment", "--description", "x", "--source-invoice",
                            vt_i(B.invoice), NULL),
                     1);
    assert_untouched(a, b);
    /* A's invoice never draws on B's client's credit. */
    assert_int_equal(vt_ctl("credit", "apply", "--invoice", vt_i(A.invoice), NULL), 1);
    assert_non_null(strstr(vt_err, "no available credit"));
    assert_untouched(a, b);
    /* Balances are per client. */
    assert_int_equal(vt_ctl("--json", "credit", "balance", "--client", vt_i(A.client), NULL), 0);
    assert_non_null(strstr(vt_out, "\"balance_cents\":0"));
    assert_int_equal(vt_ctl("--json", "credit", "balance", "--client", vt_i(B.client), NULL), 0);
    assert_non_null(strstr(vt_out, "\"balance_cents\":5000"));
    assert_untouched(a, b);
}

static void test_refund_and_dispute(void **state)
{
    (void)state;
    char a[33], b[33];
    snapshot(a, b);
    /* B's invoice has no Stripe payment: refused before Stripe is called. */
    assert_int_equal(
        ctl((const char *[]){"refund", vt_i(B.invoice), "--reason", "x", "--by", "op", NULL}), 1);
    assert_int_equal(
        ctl((const char *[]){"refund", "999999999999", "--reason", "x", "--by", "op", NULL}), 1);
    assert_int_equal(standin_count(stripe, "POST", "/v1/refunds"), 0);
    assert_untouched(a, b);
    /* Evidence for B's dispute changes B's dispute only. */
    char path[] = "/tmp/vt-evidence-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"customer_name\":\"Client Co\",\"service_date\":\"2026-01-10\"}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    assert_int_equal(
        ctl((const char *[]){"dispute", "evidence", "999999999999", "--file", path, NULL}), 1);
    assert_untouched(a, b);
    int rc = ctl((const char *[]){"dispute", "evidence", vt_i(b_dispute), "--file", path, "--by",
                                  "op", NULL});
    if (rc != 0)
        fail_msg("dispute evidence: %d: %s", rc, vt_err);
    unlink(path);
    char a2[33];
    assert_string_equal(vt_digest(A.firm, a2), a);
    assert_string_equal(vt_qt("SELECT status FROM billing.payment_disputes WHERE id = $1", 1,
                              (const char *[]){vt_i(b_dispute)}),
                        "under_review");
}

static void test_reports_scoped(void **state)
{
    (void)state;
    char a[33], b[33];
    snapshot(a, b);
    const char *fa = vt_i(A.firm);
    assert_int_equal(vt_ctl("--json", "report", "revenue", "--firm-id", fa, "--from", "2026-01-01",
                            "--to", "2026-12-31", NULL),
                     0);
    assert_null(strstr(vt_out, "777777"));
    assert_int_equal(vt_ctl("--json", "report", "failures", "--firm-id", fa, "--from", "2026-01-01",
                            "--to", "2026-12-31", NULL),
                     0);
    assert_null(strstr(vt_out, "654321"));
    assert_null(strstr(vt_out, "card_declined"));
    assert_int_equal(vt_ctl("--json", "report", "disputes", "--firm-id", fa, NULL), 0);
    assert_null(strstr(vt_out, "43210"));
    assert_non_null(strstr(vt_out, "\"total\": 0") ? strstr(vt_out, "\"total\": 0")
                                                   : strstr(vt_out, "\"total\":0"));
    assert_int_equal(vt_ctl("--json", "report", "credits", "--firm-id", fa, NULL), 0);
    assert_null(strstr(vt_out, "5000"));
    /* The same reports of B do show B's figures (the leak test can fail). */
    assert_int_equal(vt_ctl("--json", "report", "revenue", "--firm-id", vt_i(B.firm), "--from",
                            "2026-01-01", "--to", "2026-12-31", NULL),
                     0);
    assert_non_null(strstr(vt_out, "777777"));
    assert_int_equal(vt_ctl("--json", "report", "disputes", "--firm-id", vt_i(B.firm), NULL), 0);
    assert_non_null(strstr(vt_out, "43210"));
    assert_untouched(a, b);
}

static void test_database_refuses_cross_firm_writes(void **state)
{
    (void)state;
    PGconn *pg = vt_db()->pg;
    char a[33], b[33];
    snapshot(a, b);
    const char *fa = vt_i(A.firm), *bc = vt_i(B.client), *be = vt_i(B.engagement),
               *bi = vt_i(B.invoice), *ac = vt_i(A.client), *ae = vt_i(A.engagement);
    dbtest_refused(pg, "engagements_rule_1_3_client_same_firm",
                   "INSERT INTO billing.engagements (firm_id, client_id, title, pricing_mode,"
                   " package_fee_cents) VALUES ($1, $2, 't', 'package', 1)",
                   2, (const char *[]){fa, bc});
    dbtest_refused(pg, "invoices_rule_1_3_client_same_firm",
                   "INSERT INTO billing.invoices (firm_id, client_id, engagement_override,"
                   " engagement_override_reason, engagement_override_by, invoice_number)"
                   " VALUES ($1, $2, true, 'r', 'admin', 'X-1')",
                   2, (const char *[]){fa, bc});
    dbtest_refused(pg, "invoices_rule_1_2_engagement_same_client_and_firm",
                   "INSERT INTO billing.invoices (firm_id, client_id, engagement_id,"
                   " invoice_number) VALUES ($1, $2, $3, 'X-2')",
                   3, (const char *[]){fa, ac, be});
    dbtest_refused(pg, "time_entries_rule_1_3_engagement_same_firm",
                   "INSERT INTO billing.time_entries (firm_id, engagement_id, staff, work_date,"
                   " hours) VALUES ($1, $2, 's', '2026-01-01', 1)",
                   2, (const char *[]){fa, be});
    dbtest_refused(pg, "time_entries_rule_1_3_invoice_same_firm",
                   "UPDATE billing.time_entries SET invoice_id = $2 WHERE id = $1", 2,
                   (const char *[]){vt_i(A.entry_open), bi});
    dbtest_refused(pg, "invoice_line_items_rule_1_3_invoice_same_firm",
                   "INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type,"
                   " amount_cents) VALUES ($2, $1, 'adjustment', 0)",
                   2, (const char *[]){fa, bi});
    dbtest_refused(pg, "rule 1.3 (tenant)",
                   "INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type,"
                   " amount_cents, time_entry_ids) VALUES ($2, $1, 'adjustment', 0,"
                   " ARRAY[$3::bigint])",
                   3, (const char *[]){fa, vt_i(A.invoice), vt_i(B.entry_open)});
    dbtest_refused(pg, "payment_attempts_rule_1_3_invoice_same_firm",
                   "INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind,"
                   " idempotency_key, amount_cents) VALUES ($1::bigint, $2::bigint, 99, 'manual', "
                   "'x-' || $2::bigint, 1)",
                   2, (const char *[]){fa, bi});
    dbtest_refused(pg, "payments_rule_1_3_invoice_same_firm",
                   "INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source)"
                   " VALUES ($1, $2, 1, 'manual')",
                   2, (const char *[]){fa, bi});
    dbtest_refused(pg, "refunds_rule_1_3_invoice_same_firm",
                   "INSERT INTO billing.refunds (firm_id, invoice_id, stripe_refund_id,"
                   " amount_cents) VALUES ($1::bigint, $2::bigint, 're_x_' || $2::bigint, 1)",
                   2, (const char *[]){fa, bi});
    dbtest_refused(pg, "payment_disputes_rule_1_3_invoice_same_firm",
                   "INSERT INTO billing.payment_disputes (firm_id, invoice_id, stripe_dispute_id)"
                   " VALUES ($1::bigint, $2::bigint, 'dp_x_' || $2::bigint)",
                   2, (const char *[]){fa, bi});
    dbtest_refused(pg, "credit_ledger_rule_1_3_client_same_firm",
                   "INSERT INTO billing.credit_ledger (firm_id, client_id, entry_type,"
                   " amount_cents, source) VALUES ($1, $2, 'credit', 1, 'promotional')",
                   2, (const char *[]){fa, bc});
    dbtest_refused(pg, "credit_ledger_rule_1_3_applied_invoice_same_client",
                   "INSERT INTO billing.credit_ledger (firm_id, client_id, entry_type,"
                   " amount_cents, source, applied_to_invoice_id)"
                   " VALUES ($1, $2, 'credit', 1, 'promotional', $3)",
                   3, (const char *[]){fa, ac, bi});
    int64_t b_audit = vt_q("SELECT max(id) FROM billing.audit_events WHERE firm_id = $1", 1,
                           (const char *[]){vt_i(B.firm)});
    dbtest_refused(pg, "credit_ledger_rule_1_3_audit_event_same_firm",
                   "INSERT INTO billing.credit_ledger (firm_id, client_id, entry_type,"
                   " amount_cents, source, audit_event_id)"
                   " VALUES ($1, $2, 'credit', 1, 'promotional', $3)",
                   3, (const char *[]){fa, ac, vt_i(b_audit)});
    dbtest_refused(pg, "engagements_rule_1_3_parent_same_client",
                   "INSERT INTO billing.engagements (firm_id, client_id, title, pricing_mode,"
                   " package_fee_cents, parent_engagement_id) VALUES ($1, $2, 't', 'package', 1,"
                   " $3)",
                   3, (const char *[]){fa, ac, be});
    dbtest_refused(pg, "audit_events_rule_1_3_firm",
                   "INSERT INTO billing.audit_events (firm_id, action) VALUES (999999999999, 'x')",
                   0, NULL);
    (void)ae;
    assert_untouched(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoice_commands),
        cmocka_unit_test(test_time_and_engagement),
        cmocka_unit_test(test_credit_commands),
        cmocka_unit_test(test_refund_and_dispute),
        cmocka_unit_test(test_reports_scoped),
        cmocka_unit_test(test_database_refuses_cross_firm_writes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
