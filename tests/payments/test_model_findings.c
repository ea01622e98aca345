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
    return refund_apply(c, a->inv, a->firm, &a->ch, a->items, a->n, "evt_test", &out, err, errlen);
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

typedef struct {
    int64_t inv, firm;
    dispute_info d;
    stripe_event ev;
} dispute_tx;

static db_status tx_dispute(db_conn *c, void *arg, char *err, size_t errlen)
{
    dispute_tx *a = arg;
    dispute_apply_result out;
    return dispute_apply(c, a->inv, a->firm, &a->d, &a->ev, &out, err, errlen);
}

/* A charge.dispute.* event about the charge as Stripe sends it: opened
 * (needs_response) or closed (won / lost). */
static void dispute_now(int64_t inv, int64_t firm, const char *pi, const char *ch, const char *dp,
                        int64_t amount, const char *stripe_status, int64_t created)
{
    dispute_tx a = {.inv = inv, .firm = firm};
    snprintf(a.d.id, sizeof a.d.id, "%s", dp);
    snprintf(a.d.charge, sizeof a.d.charge, "%s", ch);
    snprintf(a.d.payment_intent, sizeof a.d.payment_intent, "%s", pi);
    snprintf(a.d.currency, sizeof a.d.currency, "usd");
    snprintf(a.d.reason, sizeof a.d.reason, "fraudulent");
    snprintf(a.d.stripe_status, sizeof a.d.stripe_status, "%s", stripe_status);
    assert_int_equal(dispute_map_status(stripe_status, &a.d.status, &a.d.resolution), 0);
    a.d.amount = amount;
    a.d.created = created;
    uniq(a.ev.id, sizeof a.ev.id, "evt_md");
    snprintf(a.ev.type, sizeof a.ev.type, "%s",
             a.d.status == DISPUTE_CLOSED ? "charge.dispute.closed" : "charge.dispute.created");
    a.ev.created = created;
    char err[512];
    if (db_run_tx(DB, tx_dispute, &a, err, sizeof err) != DB_OK)
        fail_msg("dispute: %s", err);
}

#define STATUS(inv) T("SELECT status FROM billing.invoices WHERE id = $1::bigint", inv)
#define PAID(inv) Q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1::bigint", inv)

/* Model finding 3 (LL_MODEL_SEED=2002 LL_MODEL_ONLY=280): an invoice paid
 * twice whose excess was refunded (out of the overpayment credit: 11.1,
 * the invoice stays paid) is then partly refunded: its refunded total
 * (excess included) reaches its total and refund_apply called it
 * `refunded`, a closed invoice, with 450 of its own 1300 still paid and
 * 850 due. Rule 7: partially refunded invoices are partial; "fully" is the
 * invoice's own money, none of it left. */
static void test_model_refund_after_excess_refund_is_partial(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = invoice(firm, client, 1300);
    char pi[64], ch[64], pi2[64], ch2[64], re[64], re2[64], re3[64];
    uniq(pi, sizeof pi, "pi_mi");
    uniq(ch, sizeof ch, "ch_mi");
    uniq(pi2, sizeof pi2, "pi_mj");
    uniq(ch2, sizeof ch2, "ch_mj");
    pay(inv, pi, ch, 1300);
    pay(inv, pi2, ch2, 1800); /* paid twice: all credit */
    refund_now(inv, firm, pi2, ch2, uniq(re, sizeof re, "re_mi"), 1800, "succeeded");
    assert_string_equal(STATUS(inv), "paid");
    refund_now(inv, firm, pi, ch, uniq(re2, sizeof re2, "re_mj"), 300, "succeeded");
    assert_int_equal(PAID(inv), 1000);
    assert_string_equal(STATUS(inv), "partial");
    /* a second refund of the same charge: both listed */
    refund_tx a = {.inv = inv, .firm = firm, .n = 2};
    snprintf(a.ch.id, sizeof a.ch.id, "%s", ch);
    snprintf(a.ch.payment_intent, sizeof a.ch.payment_intent, "%s", pi);
    snprintf(a.ch.currency, sizeof a.ch.currency, "usd");
    a.items[0] = (refund_info){.amount = 300};
    a.items[1] = (refund_info){.amount = 550};
    snprintf(a.items[0].id, sizeof a.items[0].id, "%s", re2);
    snprintf(a.items[1].id, sizeof a.items[1].id, "%s", uniq(re3, sizeof re3, "re_mk"));
    for (int i = 0; i < 2; i++) {
        snprintf(a.items[i].charge, sizeof a.items[i].charge, "%s", ch);
        snprintf(a.items[i].status, sizeof a.items[i].status, "succeeded");
    }
    char err[512];
    if (db_run_tx(DB, tx_refund, &a, err, sizeof err) != DB_OK)
        fail_msg("refund: %s", err);
    assert_int_equal(PAID(inv), 450);
    assert_string_equal(STATUS(inv), "partial");
}

/* Model finding 3, the same statement met in the other order (rule 7:
 * events may arrive out of order and end as in order): a refund that
 * Stripe made before the dispute but that the books meet after the
 * chargeback keeps the invoice charged back; one met while the dispute is
 * open keeps it disputed, and the won dispute then restores what the
 * refund made of it (partial), as in order. */
static void test_model_refund_met_after_a_dispute_keeps_its_status(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = invoice(firm, client, 1000);
    char pi[64], ch[64], re[64], dp[64];
    uniq(pi, sizeof pi, "pi_ml");
    uniq(ch, sizeof ch, "ch_ml");
    pay(inv, pi, ch, 1000);
    uniq(dp, sizeof dp, "dp_ml");
    dispute_now(inv, firm, pi, ch, dp, 600, "lost", 1796300000);
    assert_string_equal(STATUS(inv), "charged_back");
    assert_int_equal(PAID(inv), 400);
    refund_now(inv, firm, pi, ch, uniq(re, sizeof re, "re_ml"), 400, "succeeded");
    assert_int_equal(PAID(inv), 0);
    assert_string_equal(STATUS(inv), "charged_back");

    int64_t inv2 = invoice(firm, client, 1000);
    char pi2[64], ch2[64], re2[64], dp2[64];
    uniq(pi2, sizeof pi2, "pi_mm");
    uniq(ch2, sizeof ch2, "ch_mm");
    pay(inv2, pi2, ch2, 1000);
    uniq(dp2, sizeof dp2, "dp_mm");
    dispute_now(inv2, firm, pi2, ch2, dp2, 600, "needs_response", 1796300000);
    refund_now(inv2, firm, pi2, ch2, uniq(re2, sizeof re2, "re_mm"), 400, "succeeded");
    assert_int_equal(PAID(inv2), 600);
    assert_string_equal(STATUS(inv2), "disputed");
    dispute_now(inv2, firm, pi2, ch2, dp2, 600, "won", 1796300100);
    assert_string_equal(STATUS(inv2), "partial");
    assert_int_equal(PAID(inv2), 600);
}

/* Model finding 6 (LL_MODEL_SEED=20261212 LL_MODEL_ONLY=11444, found by
 * the long run under load: the autopay worker SIGKILLed, its webhook late):
 * a dispute lost before the books knew its payment. The dispute worker
 * found no payment to take the money back from and charged the invoice
 * back with nothing taken; the payment landing afterwards met a closed
 * invoice and became overpayment credit, so the client kept a 15800 credit
 * for money Stripe had already taken back. Rule 7: out of order ends as in
 * order; the payment lands and the dispute takes it back (sql/023). */
#define CREDIT(client)                                                                             \
    Q("SELECT coalesce(sum(CASE entry_type WHEN 'credit' THEN amount_cents"                        \
      " ELSE -amount_cents END), 0) FROM billing.credit_ledger WHERE client_id = $1::bigint",      \
      client)
static int64_t payment_col(const char *pi, const char *col)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM billing.payments WHERE stripe_payment_intent_id = $1",
             col);
    const char *p[] = {pi};
    return dbtest_ok(H.pg, sql, 1, p);
}

static void test_model_dispute_lost_before_its_payment_takes_it_back(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    /* the finding: opened and lost, then the payment's success */
    int64_t inv = invoice(firm, client, 15800);
    char pi[64], ch[64], dp[64];
    uniq(pi, sizeof pi, "pi_m6");
    uniq(ch, sizeof ch, "ch_m6");
    uniq(dp, sizeof dp, "dp_m6");
    dispute_now(inv, firm, pi, ch, dp, 15800, "needs_response", 1796300000);
    dispute_now(inv, firm, pi, ch, dp, 15800, "lost", 1796300100);
    assert_string_equal(STATUS(inv), "charged_back");
    pay(inv, pi, ch, 15800);
    assert_int_equal(PAID(inv), 0);
    assert_string_equal(STATUS(inv), "charged_back");
    assert_int_equal(CREDIT(client), 0);
    assert_int_equal(payment_col(pi, "amount_cents"), 15800);
    assert_int_equal(payment_col(pi, "back_invoice_cents"), 15800);
    assert_int_equal(verify_violations(firm, NULL), 0);

    /* the success names only the PaymentIntent, and it paid twice: in
     * order, 1000 lands, 500 is credit, and the lost dispute of 1500 takes
     * the credit first, then the invoice's 1000 */
    int64_t inv2 = invoice(firm, client, 1000);
    char pi2[64], ch2[64], dp2[64];
    uniq(pi2, sizeof pi2, "pi_m7");
    uniq(ch2, sizeof ch2, "ch_m7");
    uniq(dp2, sizeof dp2, "dp_m7");
    dispute_now(inv2, firm, pi2, ch2, dp2, 1500, "lost", 1796300000);
    pay(inv2, pi2, NULL, 1500);
    assert_int_equal(PAID(inv2), 0);
    assert_string_equal(STATUS(inv2), "charged_back");
    assert_int_equal(CREDIT(client), 0);
    assert_int_equal(payment_col(pi2, "amount_cents"), 1000);
    assert_int_equal(payment_col(pi2, "back_invoice_cents"), 1000);
    assert_int_equal(payment_col(pi2, "back_credit_cents"), 500);
    assert_int_equal(verify_violations(firm, NULL), 0);

    /* a dispute won before its payment leaves nothing waiting: the payment
     * lands as any other */
    int64_t inv3 = invoice(firm, client, 700);
    char pi3[64], ch3[64], dp3[64];
    uniq(pi3, sizeof pi3, "pi_m8");
    uniq(ch3, sizeof ch3, "ch_m8");
    uniq(dp3, sizeof dp3, "dp_m8");
    dispute_now(inv3, firm, pi3, ch3, dp3, 700, "won", 1796300000);
    pay(inv3, pi3, ch3, 700);
    assert_int_equal(PAID(inv3), 700);
    assert_string_equal(STATUS(inv3), "paid");
    assert_int_equal(CREDIT(client), 0);
}

static bool autopay_due(int64_t inv, const char *day)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT billing.charge_due('autopay', status, autopay_opt_in, autopay_status,"
             " autopay_next_charge_at, next_payment_retry_at, '%s'::date)"
             " FROM billing.invoices WHERE id = $1::bigint",
             day);
    return strcmp(T(sql, inv), "t") == 0;
}

/* Model finding 4 (LL_MODEL_SEED=2002 LL_MODEL_ONLY=36), fixed in
 * billing.land_money (sql/009 and 012): an
 * autopaid invoice refunded in full by an operator (two refunds), one of
 * whose refunds then fails, gets that refund's money back (rule 11.11) and
 * is partial; billing.land_money moves its autopay from `succeeded` back to
 * `scheduled`, so the next autopay tick charges the customer again for the
 * refund that stands (the model saw a second PaymentIntent of ours succeed:
 * verify's payment_once "charged successfully 2 times"). Credit applied to
 * a partly refunded autopaid invoice does the same. Money coming back after
 * a take-back must not re-arm autopay; only an attempt that just ended
 * (`processing`) goes back to `scheduled`. */
static void test_model_money_back_after_a_refund_does_not_charge_again(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = invoice(firm, client, 1000);
    char pi[64], ch[64], re1[64], re2[64];
    uniq(pi, sizeof pi, "pi_mn");
    uniq(ch, sizeof ch, "ch_mn");
    uniq(re1, sizeof re1, "re_mn");
    uniq(re2, sizeof re2, "re_mo");
    pay(inv, pi, ch, 1000);
    assert_string_equal(T("SELECT autopay_status FROM billing.invoices WHERE id = $1::bigint", inv),
                        "succeeded");
    refund_tx a = {.inv = inv, .firm = firm, .n = 2};
    snprintf(a.ch.id, sizeof a.ch.id, "%s", ch);
    snprintf(a.ch.payment_intent, sizeof a.ch.payment_intent, "%s", pi);
    snprintf(a.ch.currency, sizeof a.ch.currency, "usd");
    const char *ids[] = {re1, re2};
    int64_t amounts[] = {400, 600};
    for (int i = 0; i < 2; i++) {
        snprintf(a.items[i].id, sizeof a.items[i].id, "%s", ids[i]);
        snprintf(a.items[i].charge, sizeof a.items[i].charge, "%s", ch);
        snprintf(a.items[i].status, sizeof a.items[i].status, "succeeded");
        a.items[i].amount = amounts[i];
    }
    char err[512];
    assert_int_equal(db_run_tx(DB, tx_refund, &a, err, sizeof err), DB_OK);
    assert_string_equal(STATUS(inv), "refunded");
    snprintf(a.items[0].status, sizeof a.items[0].status, "failed");
    assert_int_equal(db_run_tx(DB, tx_refund, &a, err, sizeof err), DB_OK);
    assert_int_equal(PAID(inv), 400);
    assert_string_equal(STATUS(inv), "partial");
    assert_false(autopay_due(inv, "2026-12-20"));
}

/* Model finding 5 (LL_MODEL_SEED=20261207 LL_MODEL_HISTORIES=20000
 * LL_MODEL_BATCH=100 LL_MODEL_ONLY=6353), fixed in common/disputes.c
 * refund_apply: a paid invoice is partly refunded, then paid again by a
 * second PaymentIntent (the rest of it becomes overpayment credit); the
 * first charge's refund then fails while a new refund of that charge
 * succeeds, and Stripe lists both in one answer. The new refund takes from
 * the invoice, the failed one gives back to it until it is paid again, yet
 * the status was set from "the invoice gave money back" alone: `partial`
 * with amount_paid = total. The status follows the money after both. */
static void test_model_refund_and_failed_refund_together_leave_it_paid(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = invoice(firm, client, 1000);
    char pa[64], ca[64], pb[64], cb[64], re1[64], re2[64];
    uniq(pa, sizeof pa, "pi_ra");
    uniq(ca, sizeof ca, "ch_ra");
    uniq(pb, sizeof pb, "pi_rb");
    uniq(cb, sizeof cb, "ch_rb");
    uniq(re1, sizeof re1, "re_ra");
    uniq(re2, sizeof re2, "re_rb");
    pay(inv, pa, ca, 1000);
    refund_now(inv, firm, pa, ca, re1, 400, "succeeded");
    assert_string_equal(STATUS(inv), "partial");
    pay(inv, pb, cb, 1000);
    assert_int_equal(PAID(inv), 1000);
    assert_string_equal(STATUS(inv), "paid");
    refund_tx a = {.inv = inv, .firm = firm, .n = 2};
    snprintf(a.ch.id, sizeof a.ch.id, "%s", ca);
    snprintf(a.ch.payment_intent, sizeof a.ch.payment_intent, "%s", pa);
    snprintf(a.ch.currency, sizeof a.ch.currency, "usd");
    const char *ids[] = {re1, re2};
    const char *st[] = {"failed", "succeeded"};
    int64_t amounts[] = {400, 300};
    for (int i = 0; i < 2; i++) {
        snprintf(a.items[i].id, sizeof a.items[i].id, "%s", ids[i]);
        snprintf(a.items[i].charge, sizeof a.items[i].charge, "%s", ca);
        snprintf(a.items[i].status, sizeof a.items[i].status, "%s", st[i]);
        a.items[i].amount = amounts[i];
    }
    char err[512];
    assert_int_equal(db_run_tx(DB, tx_refund, &a, err, sizeof err), DB_OK);
    assert_int_equal(PAID(inv), 1000);
    assert_string_equal(STATUS(inv), "paid");
    /* 600 of B's excess, and 100 of the failed refund's 400 returned */
    assert_int_equal(Q("SELECT sum(amount_cents) FROM billing.credit_ledger WHERE client_id ="
                       " $1::bigint AND entry_type = 'credit'",
                       client),
                     700);
    assert_int_equal(verify_violations(firm, NULL), 0);
}

/* Model finding 7 (LL_MODEL_SEED=20261213 LL_MODEL_ONLY=8010, the long run
 * of 2026-12-08): money that lands on an invoice while a dispute is open.
 * 11100 paid, 9050 refunded (partial, then overdue), a dispute of the
 * remaining 2050 opened (the invoice disputed, "overdue" remembered), the
 * refund then failed (11.11: its 9050 comes back to the invoice, paid in
 * full again) and the dispute was won: the won dispute restored the
 * remembered status, so the books said overdue for an invoice with nothing
 * due. billing.land_money kept a disputed invoice disputed but left the
 * status it will return to as it was. Rule 7 (events out of order end as in
 * order; here the order itself was Stripe's): money landing while a dispute
 * is open changes the status the dispute will restore, as a refund does.
 * The same for a second payment landing on a disputed, partly paid
 * invoice. */
static void test_model_money_landing_while_disputed_is_remembered(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = invoice(firm, client, 11100);
    char pi[64], ch[64], re[64], dp[64];
    uniq(pi, sizeof pi, "pi_mn");
    uniq(ch, sizeof ch, "ch_mn");
    uniq(re, sizeof re, "re_mn");
    uniq(dp, sizeof dp, "dp_mn");
    pay(inv, pi, ch, 11100);
    refund_now(inv, firm, pi, ch, re, 9050, "succeeded");
    assert_string_equal(STATUS(inv), "partial");
    dispute_now(inv, firm, pi, ch, dp, 2050, "needs_response", 1796300000);
    assert_string_equal(STATUS(inv), "disputed");
    refund_now(inv, firm, pi, ch, re, 9050, "failed");
    assert_int_equal(PAID(inv), 11100);
    assert_string_equal(STATUS(inv), "disputed");
    dispute_now(inv, firm, pi, ch, dp, 2050, "won", 1796300100);
    assert_int_equal(PAID(inv), 11100);
    assert_string_equal(STATUS(inv), "paid");
    assert_int_equal(verify_violations(firm, NULL), 0);

    /* A second payment while the dispute of the first is open. */
    int64_t inv2 = invoice(firm, client, 1000);
    char pa[64], ca[64], pb[64], cb[64], dp2[64];
    uniq(pa, sizeof pa, "pi_mo");
    uniq(ca, sizeof ca, "ch_mo");
    uniq(pb, sizeof pb, "pi_mp");
    uniq(cb, sizeof cb, "ch_mp");
    uniq(dp2, sizeof dp2, "dp_mo");
    pay(inv2, pa, ca, 400);
    assert_string_equal(STATUS(inv2), "partial");
    dispute_now(inv2, firm, pa, ca, dp2, 400, "needs_response", 1796300000);
    pay(inv2, pb, cb, 600);
    assert_int_equal(PAID(inv2), 1000);
    assert_string_equal(STATUS(inv2), "disputed");
    dispute_now(inv2, firm, pa, ca, dp2, 400, "won", 1796300100);
    assert_string_equal(STATUS(inv2), "paid");
    assert_int_equal(verify_violations(firm, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_failed_refund_audit_sums_to_refunded),
        cmocka_unit_test(test_model_failed_refund_returned_as_credit_keeps_verify_clean),
        cmocka_unit_test(test_model_refund_after_excess_refund_is_partial),
        cmocka_unit_test(test_model_refund_met_after_a_dispute_keeps_its_status),
        cmocka_unit_test(test_model_money_back_after_a_refund_does_not_charge_again),
        cmocka_unit_test(test_model_refund_and_failed_refund_together_leave_it_paid),
        cmocka_unit_test(test_model_dispute_lost_before_its_payment_takes_it_back),
        cmocka_unit_test(test_model_money_landing_while_disputed_is_remembered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
