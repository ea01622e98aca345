/* test_reconcile.c: `billingctl reconcile` (rule 11.14) against the Stripe
 * stand-in: books that agree, then one difference of each kind, each
 * reported with its Stripe id, invoice and both amounts; exit 0 / 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/db.h"
#include "ledgerline/disputes.h"
#include "ledgerline/payments.h"
#include "ledgerline/stripe.h"
#include "payh.h"
#include "support/ctltest.h"
#include "support/dbtest.h"

static payh H;
static db_conn *DB;

static int setup(void **state)
{
    (void)state;
    payh_start(&H, NULL);
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
    payh_stop(&H);
    return 0;
}

typedef struct {
    int64_t inv, firm;
    const refund_charge *ch;
    const refund_info *item;
} refund_tx;

static db_status tx_refund(db_conn *c, void *arg, char *err, size_t errlen)
{
    refund_tx *a = arg;
    refund_apply_result out;
    return refund_apply(c, a->inv, a->firm, a->ch, a->item, 1, "evt_reconcile", &out, err, errlen);
}

/* A refund of charge ch (intent pi) in the books, as the dispute worker
 * records its webhook. */
static void books_refund(int64_t firm, int64_t inv, const char *pi, const char *ch,
                         const refund_info *r)
{
    refund_charge c = {0};
    snprintf(c.id, sizeof c.id, "%s", ch);
    snprintf(c.payment_intent, sizeof c.payment_intent, "%s", pi);
    snprintf(c.currency, sizeof c.currency, "usd");
    refund_tx rt = {.inv = inv, .firm = firm, .ch = &c, .item = r};
    char err[512];
    assert_int_equal(db_run_tx(DB, tx_refund, &rt, err, sizeof err), DB_OK);
}

/* Money Stripe really received for the invoice, in the books as the
 * workers record it. */
static void paid_at_stripe(int64_t firm, int64_t inv, int64_t amount, char *pi, char *ch)
{
    payh_foreign_pi(&H, firm, inv, amount, "pm_card_visa", pi, ch);
    payh_pay_books(inv, pi, ch, amount, "usd");
}

/* billingctl reconcile --json for the firm over a wide window; the parsed
 * answer (caller decrefs) and the exit status. */
static json_t *reconcile(int64_t firm, int *rc)
{
    char out[65536], err[8192], f[24], url[256];
    snprintf(f, sizeof f, "%lld", (long long)firm);
    snprintf(url, sizeof url, "STRIPE_API_BASE=%s", standin_url(H.stripe));
    const char *env[] = {url, "STRIPE_SECRET_KEY=sk_test_ReconcileTests0000001", NULL};
    const char *argv[] = {"--json",     "reconcile", "--from", "2020-01-01", "--to",
                          "2099-12-31", "--firm-id", f,        NULL};
    *rc = ctltest_argv(out, sizeof out, err, sizeof err, env, argv);
    json_t *j = json_loads(out, 0, NULL);
    if (j == NULL)
        fail_msg("reconcile printed no JSON (exit %d): %s / %s", *rc, out, err);
    return j;
}

/* The difference of kind for stripe_id, or NULL. */
static json_t *difference(json_t *answer, const char *kind, const char *stripe_id)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(answer, "differences"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "kind")), kind) == 0 &&
            strcmp(json_string_value(json_object_get(d, "stripe_id")), stripe_id) == 0)
            return d;
    }
    return NULL;
}

static int64_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void test_books_agree(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = payh_invoice(&H, firm, client, 1000, "2026-12-01", "2026-12-31", "on_issue");
    char pi[64], ch[64];
    paid_at_stripe(firm, inv, 1200, pi, ch); /* an overpayment: books hold what Stripe received */
    int rc;
    json_t *j = reconcile(firm, &rc);
    assert_int_equal(rc, 0);
    assert_true(json_is_true(json_object_get(j, "agree")));
    assert_int_equal(jint(j, "payment_intents"), 1);
    json_decref(j);
}

/* One firm's reconcile skips another firm's PaymentIntents by their
 * metadata without a query; one the books hold as this firm's all the same
 * (metadata naming firm A, the payment on firm B's invoice) is still
 * compared, by id, from the books' side: B's reconcile reports it. */
static void test_other_firms_intent_held_here_is_compared(void **state)
{
    (void)state;
    int64_t a = dbtest_firm(H.pg), b = dbtest_firm(H.pg);
    int64_t ca = payh_client(&H, a, "pm_card_visa", false);
    int64_t cb = payh_client(&H, b, "pm_card_visa", false);
    int64_t ia = payh_invoice(&H, a, ca, 1000, "2026-12-01", "2026-12-31", "on_issue");
    int64_t ib = payh_invoice(&H, b, cb, 1000, "2026-12-01", "2026-12-31", "on_issue");
    char pi[64], ch[64];
    payh_foreign_pi(&H, a, ia, 800, "pm_card_visa", pi, ch); /* metadata: firm a, invoice ia */
    payh_pay_books(ib, pi, ch, 750, "usd");                  /* the books: firm b's invoice */
    int rc;
    json_t *j = reconcile(b, &rc);
    assert_int_equal(rc, 1);
    json_t *d = difference(j, "amount_differs", pi);
    assert_non_null(d);
    assert_int_equal(jint(d, "firm_id"), b);
    assert_int_equal(jint(d, "books_amount"), 750);
    assert_int_equal(jint(d, "stripe_amount"), 800);
    json_decref(j);
}

static void test_each_difference_reported(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = payh_invoice(&H, firm, client, 5000, "2026-12-01", "2026-12-31", "on_issue");
    /* 1. Stripe holds money the books do not. */
    char pi1[64], ch1[64];
    payh_foreign_pi(&H, firm, inv, 700, "pm_card_visa", pi1, ch1);
    /* 2. The books hold a payment Stripe does not. */
    char ghost[64];
    snprintf(ghost, sizeof ghost, "pi_GhOsT%lld", (long long)inv);
    payh_pay_books(inv, ghost, NULL, 300, "usd");
    char err[512];
    /* 3. Amounts differ. */
    char pi3[64], ch3[64];
    paid_at_stripe(firm, inv, 900, pi3, ch3);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE billing.payments SET received_cents = 901 WHERE stripe_payment_intent_id ="
             " '%s' AND $1::bigint > 0 RETURNING 1",
             pi3);
    payh_i64(&H, sql, 1);
    /* 4. A refund Stripe made that the books never heard of. */
    stripe_config cfg = {.secret_key = "sk_test_ReconcileTests0000001",
                         .api_base = standin_url(H.stripe),
                         .max_rps = 25};
    stripe_client *sc = stripe_client_new(&cfg, err, sizeof err);
    assert_non_null(sc);
    stripe_form *f = stripe_form_refund(pi3, NULL, 200, "requested_by_customer", inv);
    char key[96];
    snprintf(key, sizeof key, "reconcile-refund-%s", dbtest_unique());
    stripe_call call = {.method = "POST", .path = "/v1/refunds", .form = f, .idempotency_key = key};
    assert_int_equal(stripe_perform(sc, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_OK);
    char re[64];
    snprintf(re, sizeof re, "%.63s", call.result.object_id);
    stripe_result_free(&call.result);
    stripe_form_free(f);
    stripe_client_free(sc);
    /* 5. A dispute lost at Stripe that the books do not hold. */
    json_t *dp = standin_dispute_open(H.stripe, pi3, 0, NULL);
    const char *dpid = json_string_value(
        json_object_get(json_object_get(json_object_get(dp, "data"), "object"), "id"));
    char dispute[64];
    snprintf(dispute, sizeof dispute, "%s", dpid);
    json_decref(dp);
    json_decref(standin_dispute_close(H.stripe, dispute, "lost"));

    int rc;
    json_t *j = reconcile(firm, &rc);
    assert_int_equal(rc, 1);
    assert_false(json_is_true(json_object_get(j, "agree")));
    json_t *d = difference(j, "missing_in_books", pi1);
    assert_non_null(d);
    assert_int_equal(jint(d, "stripe_amount"), 700);
    assert_true(json_is_null(json_object_get(d, "books_amount")));
    assert_int_equal(jint(d, "invoice_id"), inv);
    d = difference(j, "missing_at_stripe", ghost);
    assert_non_null(d);
    assert_int_equal(jint(d, "books_amount"), 300);
    d = difference(j, "amount_differs", pi3);
    assert_non_null(d);
    assert_int_equal(jint(d, "books_amount"), 901);
    assert_int_equal(jint(d, "stripe_amount"), 900);
    d = difference(j, "missing_in_books", re);
    assert_non_null(d);
    assert_int_equal(jint(d, "stripe_amount"), 200);
    assert_non_null(difference(j, "missing_in_books", dispute));
    assert_int_equal(json_array_size(json_object_get(j, "differences")), 5);
    json_decref(j);

    /* Another firm's books are not this firm's differences. */
    int64_t other = dbtest_firm(H.pg);
    j = reconcile(other, &rc);
    assert_int_equal(rc, 0);
    json_decref(j);
}

/* A refund the books count that Stripe says failed (rule 11.11). */
static void test_failed_refund_still_counted_is_a_status_difference(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = payh_invoice(&H, firm, client, 1000, "2026-12-01", "2026-12-31", "on_issue");
    char pi[64], ch[64], err[512];
    paid_at_stripe(firm, inv, 1000, pi, ch);
    standin_refund_default(H.stripe, "pending");
    stripe_config cfg = {.secret_key = "sk_test_ReconcileTests0000001",
                         .api_base = standin_url(H.stripe),
                         .max_rps = 25};
    stripe_client *sc = stripe_client_new(&cfg, err, sizeof err);
    stripe_form *f = stripe_form_refund(pi, NULL, 400, NULL, inv);
    char key[96];
    snprintf(key, sizeof key, "reconcile-refund-%s", dbtest_unique());
    stripe_call call = {.method = "POST", .path = "/v1/refunds", .form = f, .idempotency_key = key};
    assert_int_equal(stripe_perform(sc, &call, err, sizeof err), 0);
    refund_info r = {.amount = 400};
    snprintf(r.id, sizeof r.id, "%s", call.result.object_id);
    snprintf(r.charge, sizeof r.charge, "%s", ch);
    snprintf(r.status, sizeof r.status, "pending");
    stripe_result_free(&call.result);
    stripe_form_free(f);
    stripe_client_free(sc);
    standin_refund_default(H.stripe, "succeeded");
    /* the books record it while pending */
    books_refund(firm, inv, pi, ch, &r);
    int rc;
    json_t *j = reconcile(firm, &rc);
    assert_int_equal(rc, 0);
    json_decref(j);
    json_decref(standin_refund_update(H.stripe, r.id, "failed"));
    j = reconcile(firm, &rc);
    assert_int_equal(rc, 1);
    json_t *d = difference(j, "status_differs", r.id);
    assert_non_null(d);
    assert_int_equal(jint(d, "books_amount"), 400);
    assert_int_equal(jint(d, "stripe_amount"), 0);
    json_decref(j);
}

/* Issue 16: reconciliation counts credit notes. A note's refund part must
 * be at Stripe: the refunds carrying its metadata[credit_note_id] add up to
 * its refunded_cents. When that refund fails, the client is still owed the
 * money, and reconcile says so with the note's legal number, also after the
 * books recorded the failure. */
static void test_credit_note_refund_reconciled(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = payh_invoice(&H, firm, client, 1000, "2026-12-01", "2026-12-31", "on_issue");
    payh_i64(&H,
             "UPDATE billing.invoices SET issued_at = now(), legal_number = 'RC-' || id"
             " WHERE id = $1::bigint RETURNING 1",
             inv);
    char pi[64], ch[64], err[8192], out[8192], url[256], id[24];
    paid_at_stripe(firm, inv, 1000, pi, ch);
    snprintf(url, sizeof url, "STRIPE_API_BASE=%s", standin_url(H.stripe));
    snprintf(id, sizeof id, "%lld", (long long)inv);
    const char *env[] = {url, "STRIPE_SECRET_KEY=sk_test_ReconcileTests0000001", NULL};
    const char *argv[] = {"--json",   "credit-note",        "create", "--invoice",
                          id,         "--amount-cents",     "400",    "--refund",
                          "--reason", "hours billed twice", "--by",   "fin",
                          NULL};
    assert_int_equal(ctltest_argv(out, sizeof out, err, sizeof err, env, argv), 0);
    json_t *note = json_loads(out, 0, NULL);
    assert_non_null(note);
    char legal[64];
    snprintf(legal, sizeof legal, "%s", json_string_value(json_object_get(note, "legal_number")));
    assert_int_equal(json_integer_value(json_object_get(note, "refunded_cents")), 400);
    json_decref(note);
    /* The refund in the books, as the dispute worker records its webhook. */
    json_t *all = standin_refunds(H.stripe);
    json_t *last = json_array_get(all, json_array_size(all) - 1);
    refund_info r = {.amount = 400};
    snprintf(r.id, sizeof r.id, "%s", json_string_value(json_object_get(last, "id")));
    snprintf(r.charge, sizeof r.charge, "%s", ch);
    snprintf(r.status, sizeof r.status, "succeeded");
    json_decref(all);
    books_refund(firm, inv, pi, ch, &r);
    int rc;
    json_t *j = reconcile(firm, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(jint(j, "credit_notes"), 1);
    json_decref(j);

    json_decref(standin_refund_update(H.stripe, r.id, "failed"));
    snprintf(r.status, sizeof r.status, "failed");
    books_refund(firm, inv, pi, ch, &r);
    j = reconcile(firm, &rc);
    assert_int_equal(rc, 1);
    assert_null(difference(j, "status_differs", r.id)); /* the books know it failed */
    json_t *d = difference(j, "amount_differs", legal);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "object")), "credit_note");
    assert_int_equal(jint(d, "invoice_id"), inv);
    assert_int_equal(jint(d, "books_amount"), 400);
    assert_int_equal(jint(d, "stripe_amount"), 0);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_books_agree),
        cmocka_unit_test(test_each_difference_reported),
        cmocka_unit_test(test_other_firms_intent_held_here_is_compared),
        cmocka_unit_test(test_failed_refund_still_counted_is_a_status_difference),
        cmocka_unit_test(test_credit_note_refund_reconciled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
