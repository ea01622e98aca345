/* test_model_findings.c: one named regression test per defect the
 * randomized model test (tests/model/, issue 14) found, each with the seed
 * and history that found it (docs/RELIABILITY.md, "The model test"). The
 * money rules are called in-process inside a transaction, exactly as the
 * workers call them; each test failed on the code before its fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ledgerline/db.h"
#include "ledgerline/disputes.h"
#include "ledgerline/payments.h"
#include "ledgerline/verify.h"
#include "payh.h"
#include "support/dbtest.h"

static payh H;
static db_conn *DB;

#define Q(sql, id) payh_i64(&H, sql, id)
#define T(sql, id) payh_text(&H, sql, id)

static int setup(void **state)
{
    (void)state;
    memset(&H, 0, sizeof H);
    H.pg = dbtest_connect();
    char err[256];
    DB = db_connect(getenv("DATABASE_URL"), 10000, err, sizeof err);
    if (DB == NULL)
        fail_msg("database: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_close(DB);
    PQfinish(H.pg);
    return 0;
}

static char *uniq(char *buf, size_t n, const char *prefix)
{
    snprintf(buf, n, "%s%s", prefix, dbtest_unique());
    for (char *p = buf; *p; p++)
        if (*p == '-')
            *p = 'x';
    return buf;
}

/* A sent invoice as billingctl invoice create leaves it (with its
 * invoice_created audit event, so that verify has nothing else to say). */
static int64_t invoice(int64_t firm, int64_t client, int64_t total)
{
    int64_t inv = payh_invoice(&H, firm, client, total, "2026-12-01", "2026-12-31", "on_issue");
    char f[24], i[24];
    snprintf(f, sizeof f, "%lld", (long long)firm);
    snprintf(i, sizeof i, "%lld", (long long)inv);
    const char *p[] = {f, i};
    dbtest_ok(H.pg,
              "SELECT billing.audit($1::bigint, 'invoice_created', 'INFO', 'test',"
              " jsonb_build_object('invoice_id', $2::bigint)) AS id",
              2, p);
    return inv;
}

typedef struct {
    payments_money m;
    payments_money_result r;
} pay_tx;

static db_status tx_pay(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_tx *a = arg;
    return payments_apply_success(c, &a->m, &a->r, err, errlen);
}

static void pay(int64_t inv, const char *pi, const char *ch, int64_t amount)
{
    pay_tx a = {.m = {.invoice_id = inv,
                      .payment_intent = pi,
                      .charge = ch,
                      .amount_cents = amount,
                      .currency = "usd"}};
    date_parse("2026-12-01", &a.m.on);
    char err[512];
    if (db_run_tx(DB, tx_pay, &a, err, sizeof err) != DB_OK || a.r != PAYMENTS_MONEY_APPLIED)
        fail_msg("payment: %s", err);
}

typedef struct {
    int64_t inv, firm;
    refund_charge ch;
    refund_info items[4];
    size_t n;
} refund_tx;

static db_status tx_refund(db_conn *c, void *arg, char *err, size_t errlen)
{
    refund_tx *a = arg;
    refund_apply_result out;
    return refund_apply(c, a->inv, a->firm, &a->ch, a->items, a->n, "evt_test", &out, err,
                        errlen);
}

/* The charge's refunds as Stripe lists them now: one refund id, amount and
 * status. */
static void refund_now(int64_t inv, int64_t firm, const char *pi, const char *ch, const char *re,
                       int64_t amount, const char *status)
{
    refund_tx a = {.inv = inv, .firm = firm, .n = 1};
    snprintf(a.ch.id, sizeof a.ch.id, "%s", ch);
    snprintf(a.ch.payment_intent, sizeof a.ch.payment_intent, "%s", pi);
    snprintf(a.ch.currency, sizeof a.ch.currency, "usd");
    snprintf(a.items[0].id, sizeof a.items[0].id, "%s", re);
    snprintf(a.items[0].charge, sizeof a.items[0].charge, "%s", ch);
    snprintf(a.items[0].status, sizeof a.items[0].status, "%s", status);
    a.items[0].amount = amount;
    char err[512];
    if (db_run_tx(DB, tx_refund, &a, err, sizeof err) != DB_OK)
        fail_msg("refund: %s", err);
}

static int64_t verify_violations(int64_t firm, const char *check_detail)
{
    verify_summary s;
    char err[512];
    if (verify_run(DB, firm, NULL, NULL, 0, &s, err, sizeof err) != DB_OK)
        fail_msg("verify: %s", err);
    (void)check_detail;
    return s.violations;
}

/* Model finding 1 (LL_MODEL_SEED=14 LL_MODEL_ONLY=71): a refund that
 * failed after it was counted (rule 11.11) writes invoice_refunded with a
 * negative refund_cents; billingctl verify summed only the non-negative
 * ones and reported "refunded_cents 0 but invoice_refunded audit events
 * record 1000" for books that are right. */
static void test_model_failed_refund_audit_sums_to_refunded(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = invoice(firm, client, 1000);
    char pi[64], ch[64], re[64];
    uniq(pi, sizeof pi, "pi_mf");
    uniq(ch, sizeof ch, "ch_mf");
    uniq(re, sizeof re, "re_mf");
    pay(inv, pi, ch, 1000);
    refund_now(inv, firm, pi, ch, re, 1000, "succeeded");
    assert_string_equal(T("SELECT status FROM billing.invoices WHERE id = $1::bigint", inv),
                        "refunded");
    refund_now(inv, firm, pi, ch, re, 1000, "failed");
    assert_string_equal(T("SELECT status FROM billing.invoices WHERE id = $1::bigint", inv),
                        "paid");
    assert_int_equal(Q("SELECT refunded_cents FROM billing.invoices WHERE id = $1::bigint", inv),
                     0);
    assert_int_equal(Q("SELECT sum((metadata->>'refund_cents')::bigint) FROM billing.audit_events"
                       " WHERE action = 'invoice_refunded' AND metadata->>'invoice_id' ="
                       " $1::text",
                       inv),
                     0);
    assert_int_equal(verify_violations(firm, "audit"), 0);
}

/* Model finding 2 (LL_MODEL_SEED=1001 LL_MODEL_ONLY=36): a refund of 400
 * is counted, another payment then pays the 400 due, and the refund fails:
 * its money comes back as credit, the invoice being paid already (rule
 * 11.11). The books are right (Stripe holds 1000 + 500 for the invoice; the
 * books 1000 paid + 500 credit), but verify's lower bound
 * P - refunded - lost <= amount_paid assumed a failed refund always puts
 * its money back on the invoice, and reported "amount_paid_cents 1000 is
 * below payments 1400 - refunded 0 - lost disputes 0". */
static void test_model_failed_refund_returned_as_credit_keeps_verify_clean(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = invoice(firm, client, 1000);
    char pi[64], ch[64], re[64], pi2[64], ch2[64];
    uniq(pi, sizeof pi, "pi_mg");
    uniq(ch, sizeof ch, "ch_mg");
    uniq(re, sizeof re, "re_mg");
    uniq(pi2, sizeof pi2, "pi_mh");
    uniq(ch2, sizeof ch2, "ch_mh");
    pay(inv, pi, ch, 1000);
    refund_now(inv, firm, pi, ch, re, 400, "succeeded");
    assert_int_equal(Q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1::bigint", inv),
                     600);
    pay(inv, pi2, ch2, 500); /* 400 due, 100 credit */
    refund_now(inv, firm, pi, ch, re, 400, "failed");
    assert_int_equal(Q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1::bigint", inv),
                     1000);
    assert_int_equal(Q("SELECT sum(CASE entry_type WHEN 'credit' THEN amount_cents"
                       " ELSE -amount_cents END) FROM billing.credit_ledger"
                       " WHERE client_id = $1::bigint",
                       client),
                     500);
    assert_int_equal(verify_violations(firm, "amount_paid"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_failed_refund_audit_sums_to_refunded),
        cmocka_unit_test(test_model_failed_refund_returned_as_credit_keeps_verify_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
