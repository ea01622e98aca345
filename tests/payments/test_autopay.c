/* test_autopay.c: the autopay worker as a real process against the Stripe
 * stand-in (BILLING_RULES sections 4, 5 and 6; issue "Stripe client and
 * autopay worker"). Credit ledger refusals (goodwill without a reason, a
 * debit above the balance, two racing debits) are proven in tests/credit/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "payh.h"
#include "support/ctltest.h"
#include "support/dbtest.h"
#include "support/invworker.h"

static payh H;

static int setup(void **state)
{
    (void)state;
    payh_start(&H, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    payh_stop(&H);
    return 0;
}

#define Q(sql, id) payh_i64(&H, sql, id)
#define T(sql, id) payh_text(&H, sql, id)
#define STATUS(inv) T("SELECT status FROM billing.invoices WHERE id = $1::bigint", inv)

/* Requests the stand-in recorded for one invoice's PaymentIntents. */
static int64_t pi_requests(int64_t invoice)
{
    json_t *reqs = standin_get(H.stripe, "/__standin/requests");
    int64_t n = 0;
    size_t i;
    json_t *r;
    char want[24];
    snprintf(want, sizeof want, "%lld", (long long)invoice);
    json_array_foreach(reqs, i, r)
    {
        const char *path = json_string_value(json_object_get(r, "path"));
        const char *inv = json_string_value(
            json_object_get(json_object_get(r, "params"), "metadata[invoice_id]"));
        if (path && strcmp(path, "/v1/payment_intents") == 0 && inv && strcmp(inv, want) == 0)
            n++;
    }
    json_decref(reqs);
    return n;
}

/* The amount param of the last PaymentIntent request for an invoice. */
static int64_t pi_amount(int64_t invoice)
{
    json_t *reqs = standin_get(H.stripe, "/__standin/requests");
    int64_t amount = -1;
    size_t i;
    json_t *r;
    char want[24];
    snprintf(want, sizeof want, "%lld", (long long)invoice);
    json_array_foreach(reqs, i, r)
    {
        json_t *params = json_object_get(r, "params");
        const char *inv = json_string_value(json_object_get(params, "metadata[invoice_id]"));
        if (inv && strcmp(inv, want) == 0)
            amount = strtoll(json_string_value(json_object_get(params, "amount")), NULL, 10);
    }
    json_decref(reqs);
    return amount;
}

static int64_t audits(int64_t invoice, const char *action)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM billing.audit_events WHERE action = '%s'"
             " AND metadata->>'invoice_id' = $1::text",
             action);
    return Q(sql, invoice);
}

static void test_success_on_issue(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 12500, "2026-12-01", "2026-12-31", "on_issue");
    payh_issue(&H, inv, true);
    assert_string_equal(STATUS(inv), "paid");
    assert_int_equal(Q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1::bigint", inv),
                     12500);
    assert_string_equal(T("SELECT autopay_status FROM billing.invoices WHERE id = $1::bigint", inv),
                        "succeeded");
    assert_string_equal(T("SELECT paid_date FROM billing.invoices WHERE id = $1::bigint", inv),
                        "2026-12-01");
    assert_int_equal(Q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::bigint"
                       " AND source = 'stripe' AND amount_cents = 12500"
                       " AND stripe_payment_intent_id LIKE 'pi_%'",
                       inv),
                     1);
    char key[64];
    snprintf(key, sizeof key, "autopay:%lld:1", (long long)inv);
    assert_string_equal(T("SELECT idempotency_key FROM billing.payment_attempts"
                          " WHERE invoice_id = $1::bigint AND status = 'succeeded'",
                          inv),
                        key);
    assert_int_equal(audits(inv, "invoice_autopaid"), 1);
    assert_true(payh_wait(&H,
                          "SELECT count(*) = 1 FROM billing.outbox WHERE msg_key = $1::text"
                          " AND payload->>'type' = 'invoice.paid'",
                          inv));
    assert_int_equal(pi_requests(inv), 1);
    /* The same event again: nothing new. */
    payh_issue(&H, inv, false);
    payh_tick(&H, TICK_AUTOPAY, "2026-12-02", firm);
    assert_int_equal(pi_requests(inv), 1);
    assert_int_equal(Q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::bigint", inv),
                     1);
}

static void test_decline_is_a_failure(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_chargeDeclinedInsufficientFunds", true);
    int64_t inv = payh_invoice(&H, firm, client, 2500, "2026-12-01", "2026-12-31", "on_issue");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", firm);
    assert_string_equal(STATUS(inv), "failed");
    assert_string_equal(T("SELECT payment_failure_code FROM billing.invoices "
                          "WHERE id = $1::bigint",
                          inv),
                        "insufficient_funds");
    assert_int_equal(Q("SELECT payment_retry_count FROM billing.invoices WHERE "
                       "id = $1::bigint",
                       inv),
                     1);
    assert_string_equal(T("SELECT to_char(next_payment_retry_at AT TIME ZONE 'UTC',"
                          " 'YYYY-MM-DD') FROM billing.invoices WHERE id = $1::bigint",
                          inv),
                        "2026-12-04");
    assert_true(strlen(T("SELECT payment_failure_reason FROM billing.invoices"
                         " WHERE id = $1::bigint",
                         inv)) > 0);
    assert_int_equal(audits(inv, "payment_failed"), 1);
    assert_int_equal(audits(inv, "payment_retry_scheduled"), 1);
    assert_string_equal(T("SELECT severity FROM billing.audit_events WHERE "
                          "action = 'payment_failed'"
                          " AND metadata->>'invoice_id' = $1::text",
                          inv),
                        "WARNING");
    assert_int_equal(Q("SELECT count(*) FROM billing.payment_attempts WHERE invoice_id = "
                       "$1::bigint"
                       " AND status = 'failed' AND stripe_payment_intent_id LIKE 'pi_%'",
                       inv),
                     1);
    assert_int_equal(Q("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::text"
                       " AND payload->>'idempotency_key' = 'invoice.payment_failed:' || "
                       "$1::text || ':1'",
                       inv),
                     1);
    assert_int_equal(Q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::bigint", inv),
                     0);
}

static void test_authentication_required_is_hard(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_authenticationRequired", true);
    int64_t inv = payh_invoice(&H, firm, client, 4000, "2026-12-01", "2026-12-31", "on_issue");
    payh_issue(&H, inv, true);
    assert_string_equal(STATUS(inv), "failed");
    assert_string_equal(T("SELECT payment_failure_code FROM billing.invoices "
                          "WHERE id = $1::bigint",
                          inv),
                        "authentication_required");
    assert_int_equal(Q("SELECT count(*) FROM billing.invoices WHERE id = $1::bigint"
                       " AND next_payment_retry_at IS NULL",
                       inv),
                     1);
    assert_int_equal(audits(inv, "payment_retry_skipped"), 1);
    assert_string_equal(T("SELECT payload->>'customer_action_required' FROM billing.outbox"
                          " WHERE msg_key = $1::text AND payload->>'type' = "
                          "'invoice.payment_failed'",
                          inv),
                        "true");
}

static void test_processing_then_webhook(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_standin_processing", true);
    int64_t inv = payh_invoice(&H, firm, client, 9900, "2026-12-01", "2026-12-31", "on_issue");
    payh_issue(&H, inv, true);
    assert_string_equal(STATUS(inv), "sent");
    assert_string_equal(T("SELECT autopay_status FROM billing.invoices WHERE id = $1::bigint", inv),
                        "processing");
    char pi[128];
    snprintf(pi, sizeof pi, "%s",
             T("SELECT stripe_payment_intent_id FROM billing.payment_attempts"
               " WHERE invoice_id = $1::bigint AND status = 'processing'",
               inv));
    assert_true(strncmp(pi, "pi_", 3) == 0);
    /* Another tick does not start a second attempt while it processes. */
    payh_tick(&H, TICK_AUTOPAY, "2026-12-02", firm);
    assert_int_equal(pi_requests(inv), 1);
    char body[256];
    snprintf(body, sizeof body, "{\"payment_intent\":\"%s\",\"outcome\":\"succeeded\"}", pi);
    json_t *ev = standin_post(H.stripe, "/__standin/complete", body);
    char *event = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    payh_stripe_event(&H, event, pi, H.group_autopay);
    free(event);
    assert_string_equal(STATUS(inv), "paid");
    assert_int_equal(Q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::bigint"
                       " AND amount_cents = 9900",
                       inv),
                     1);
    assert_int_equal(Q("SELECT count(*) FROM billing.payment_attempts WHERE "
                       "invoice_id = $1::bigint"
                       " AND status = 'succeeded'",
                       inv),
                     1);
}

static void test_missing_method_without_stripe(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, NULL, true);
    int64_t inv = payh_invoice(&H, firm, client, 1000, "2026-12-01", "2026-12-31", "on_issue");
    int64_t before = standin_stat(H.stripe, "requests");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", firm);
    assert_string_equal(STATUS(inv), "failed");
    assert_string_equal(T("SELECT payment_failure_code FROM billing.invoices "
                          "WHERE id = $1::bigint",
                          inv),
                        "payment_method_missing");
    assert_int_equal(Q("SELECT count(*) FROM billing.invoices WHERE id = $1::bigint"
                       " AND next_payment_retry_at IS NULL",
                       inv),
                     1);
    assert_int_equal(standin_stat(H.stripe, "requests"), before);
}

static void test_client_autopay_off_cancels(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 1000, "2026-12-01", "2026-12-31", "on_due");
    char c[24];
    snprintf(c, sizeof c, "%lld", (long long)client);
    const char *p[] = {c};
    dbtest_ok(H.pg,
              "UPDATE billing.clients SET autopay_enabled = false WHERE id = "
              "$1::bigint",
              1, p);
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", firm);
    assert_string_equal(T("SELECT autopay_status FROM billing.invoices WHERE id = $1::bigint", inv),
                        "cancelled");
    assert_string_equal(T("SELECT autopay_opt_in FROM billing.invoices WHERE id = $1::bigint", inv),
                        "f");
    assert_int_equal(audits(inv, "autopay_cancelled"), 1);
    payh_tick(&H, TICK_AUTOPAY, "2026-12-31", firm);
    assert_int_equal(pi_requests(inv), 0);
    assert_string_equal(STATUS(inv), "sent");
}

static void test_on_due_waits_for_due_date(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 3000, "2026-12-01", "2026-12-31", "on_due");
    payh_issue(&H, inv, true); /* not due on issue */
    payh_tick(&H, TICK_AUTOPAY, "2026-12-30", firm);
    assert_int_equal(pi_requests(inv), 0);
    assert_string_equal(STATUS(inv), "sent");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-31", firm);
    assert_string_equal(STATUS(inv), "paid");
    assert_int_equal(pi_requests(inv), 1);
}

static void credit(int64_t firm, int64_t client, int64_t cents)
{
    char f[24], c[24], a[24];
    snprintf(f, sizeof f, "%lld", (long long)firm);
    snprintf(c, sizeof c, "%lld", (long long)client);
    snprintf(a, sizeof a, "%lld", (long long)cents);
    const char *p[] = {f, c, a};
    dbtest_ok(H.pg,
              "INSERT INTO billing.credit_ledger (firm_id, client_id, "
              "entry_type, amount_cents,"
              " source, description) VALUES ($1::bigint, $2::bigint, 'credit', "
              "$3::bigint,"
              " 'promotional', 'test credit') RETURNING id",
              3, p);
}

static void test_credit_covers_part_then_all(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    credit(firm, client, 3000);
    int64_t part = payh_invoice(&H, firm, client, 10000, "2026-12-01", "2026-12-31", "on_issue");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", firm);
    assert_string_equal(STATUS(part), "paid");
    assert_int_equal(pi_amount(part), 7000); /* only the remainder was charged */
    assert_int_equal(Q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::bigint"
                       " AND source = 'credit' AND amount_cents = 3000",
                       part),
                     1);
    assert_int_equal(Q("SELECT count(*) FROM billing.credit_ledger WHERE "
                       "applied_to_invoice_id ="
                       " $1::bigint AND entry_type = 'debit' AND amount_cents = 3000",
                       part),
                     1);

    credit(firm, client, 5000);
    int64_t all = payh_invoice(&H, firm, client, 4000, "2026-12-01", "2026-12-31", "on_issue");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-02", firm);
    assert_string_equal(STATUS(all), "paid");
    assert_int_equal(pi_requests(all), 0); /* paid without Stripe */
    assert_string_equal(T("SELECT autopay_status FROM billing.invoices WHERE id = $1::bigint", all),
                        "succeeded");
}

static void test_overpayment_becomes_credit(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", false);
    int64_t inv = payh_invoice(&H, firm, client, 1000, "2026-12-01", "2026-12-31", "on_issue");
    /* Created elsewhere (rule 11.9: read back from Stripe before applying). */
    char pi[64], ch[64];
    payh_foreign_pi(&H, firm, inv, 1500, "pm_card_visa", pi, ch);
    char *ev = payh_fixture_event("payment_intent.succeeded.json", pi, ch, inv, 1500);
    payh_stripe_event(&H, ev, pi, H.group_autopay);
    free(ev);
    assert_string_equal(STATUS(inv), "paid");
    assert_int_equal(Q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1::bigint", inv),
                     1000);
    assert_int_equal(Q("SELECT sum(amount_cents) FROM billing.credit_ledger WHERE client_id ="
                       " (SELECT client_id FROM billing.invoices WHERE id = $1::bigint)"
                       " AND source = 'overpayment' AND source_invoice_id = $1::bigint",
                       inv),
                     500);
}

static void test_500_then_success_same_key(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_standin_500_then_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 2000, "2026-12-01", "2026-12-31", "on_issue");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", firm);
    assert_string_equal(STATUS(inv), "paid");
    assert_int_equal(pi_requests(inv), 2);
    assert_int_equal(Q("SELECT count(*) FROM billing.payment_attempts WHERE "
                       "invoice_id = $1::bigint",
                       inv),
                     1);
    assert_int_equal(Q("SELECT payment_retry_count FROM billing.invoices WHERE "
                       "id = $1::bigint",
                       inv),
                     0);
    assert_int_equal(audits(inv, "payment_failed"), 0);
    /* Both requests carried the attempt's key. */
    json_t *reqs = standin_get(H.stripe, "/__standin/requests");
    size_t i;
    json_t *r;
    int same = 0;
    char key[64];
    snprintf(key, sizeof key, "autopay:%lld:1", (long long)inv);
    json_array_foreach(reqs, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "idempotency_key"));
        same += k && strcmp(k, key) == 0;
    }
    json_decref(reqs);
    assert_int_equal(same, 2);
}

static void test_429_honoured(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 2100, "2026-12-01", "2026-12-31", "on_issue");
    json_decref(standin_post(H.stripe, "/__standin/fail", "{\"status\":429,\"count\":2}"));
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", firm);
    assert_string_equal(STATUS(inv), "paid");
    assert_int_equal(Q("SELECT count(*) FROM billing.payment_attempts WHERE "
                       "invoice_id = $1::bigint",
                       inv),
                     1);
    assert_int_equal(audits(inv, "payment_failed"), 0);
    assert_int_equal(pi_requests(inv), 3); /* two 429s, then the charge */
}

static void test_success_reported_three_ways(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 1099, "2026-12-01", "2026-12-31", "on_issue");
    payh_issue(&H, inv, true);
    char pi[128], ch[128];
    snprintf(pi, sizeof pi, "%s",
             T("SELECT stripe_payment_intent_id FROM billing.invoices WHERE id = "
               "$1::bigint",
               inv));
    snprintf(ch, sizeof ch, "%s",
             T("SELECT stripe_charge_id FROM billing.invoices WHERE id = $1::bigint", inv));
    char *e1 = payh_fixture_event("payment_intent.succeeded.json", pi, ch, inv, 1099);
    char *e2 = payh_fixture_event("invoice.payment_succeeded.json", pi, ch, inv, 1099);
    payh_stripe_event(&H, e1, pi, H.group_autopay);
    payh_stripe_event(&H, e2, pi, H.group_autopay);
    payh_stripe_event(&H, e1, pi, NULL); /* a duplicate delivery */
    payh_stripe_event(&H, e2, pi, H.group_autopay);
    free(e1);
    free(e2);
    assert_int_equal(Q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::bigint", inv),
                     1);
    assert_int_equal(Q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1::bigint", inv),
                     1099);
    assert_int_equal(Q("SELECT count(*) FROM billing.credit_ledger WHERE source_invoice_id ="
                       " $1::bigint",
                       inv),
                     0);
}

/* SIGKILL while the charge is at Stripe (between the call and the commit):
 * the restarted worker replays the same key; one charge, one payment. */
static void test_killed_between_call_and_commit(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 5100, "2026-12-01", "2026-12-31", "on_issue");
    json_decref(standin_post(H.stripe, "/__standin/latency", "{\"ms\":3000}"));
    int64_t created = standin_stat(H.stripe, "payment_intents_created");
    payh_issue(&H, inv, false);
    for (int i = 0; i < 300 && pi_requests(inv) == 0; i++)
        payh_sleep_ms(50);
    assert_int_equal(pi_requests(inv), 1);
    payh_kill_autopay(&H); /* the stand-in is still executing the charge */
    json_decref(standin_post(H.stripe, "/__standin/latency", "{\"ms\":0}"));
    payh_sleep_ms(3500);
    assert_string_equal(T("SELECT status FROM billing.payment_attempts WHERE "
                          "invoice_id = $1::bigint",
                          inv),
                        "processing");
    payh_start_autopay(&H);
    assert_true(
        payh_wait(&H, "SELECT status = 'paid' FROM billing.invoices WHERE id = $1::bigint", inv));
    assert_int_equal(standin_stat(H.stripe, "payment_intents_created"), created + 1);
    assert_int_equal(Q("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::bigint", inv),
                     1);
    assert_int_equal(Q("SELECT count(*) FROM billing.payment_attempts WHERE "
                       "invoice_id = $1::bigint",
                       inv),
                     1);
}

/* Tenant isolation of the worker paths: a firm-scoped tick charges, cancels
 * and marks overdue only that firm's invoices. */
static void test_firm_scoped_ticks_touch_one_firm(void **state)
{
    (void)state;
    int64_t a = dbtest_firm(H.pg), b = dbtest_firm(H.pg);
    int64_t ca = payh_client(&H, a, "pm_card_visa", true);
    int64_t cb = payh_client(&H, b, "pm_card_visa", true);
    int64_t ia = payh_invoice(&H, a, ca, 1500, "2026-12-01", "2026-12-31", "on_issue");
    int64_t ib = payh_invoice(&H, b, cb, 1600, "2026-12-01", "2026-12-31", "on_issue");
    int64_t nb = payh_client(&H, b, NULL, false);
    int64_t ob = payh_invoice(&H, b, nb, 1700, "2026-11-01", "2026-11-15", "on_issue");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", a);
    payh_tick(&H, TICK_RETRY, "2026-12-01", a);
    assert_string_equal(STATUS(ia), "paid");
    assert_string_equal(STATUS(ib), "sent");
    assert_int_equal(pi_requests(ib), 0);
    assert_string_equal(STATUS(ob), "sent"); /* past due, but firm b's tick has not run */
    payh_tick(&H, TICK_RETRY, "2026-12-01", b);
    assert_string_equal(STATUS(ob), "overdue");
    payh_tick(&H, TICK_AUTOPAY, "2026-12-01", b);
    assert_string_equal(STATUS(ib), "paid");
}

/* Issue 16's review flow through the real billing-autopay-worker: a draft
 * is never charged by a tick; `billingctl invoice issue` numbers it and
 * publishes invoice.issued (the outbox, relayed by the worker), on which the
 * worker charges an on_issue invoice at once, without a tick, exactly its
 * issued total. Re-issuing is idempotent and charges nothing more. */
static void test_draft_charged_when_issued(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 4200, "2026-10-05", "2026-11-04", "on_issue");
    Q("UPDATE billing.invoices SET status = 'draft' WHERE id = $1::bigint RETURNING 1", inv);
    payh_tick(&H, TICK_AUTOPAY, "2026-10-05", firm);
    assert_string_equal(STATUS(inv), "draft");
    assert_int_equal(pi_requests(inv), 0);
    assert_int_equal(
        Q("SELECT count(*) FROM billing.payment_attempts WHERE invoice_id = $1::bigint", inv), 0);

    char out[4096], err[4096], id[24];
    snprintf(id, sizeof id, "%lld", (long long)inv);
    for (int run = 0; run < 2; run++)
        assert_int_equal(ctltest(out, sizeof out, err, sizeof err, NULL, "invoice", "issue", id,
                                 "--date", "2026-10-06", "--by", "J. Partner", NULL),
                         0);
    assert_true(
        payh_wait(&H, "SELECT status = 'paid' FROM billing.invoices WHERE id = $1::bigint", inv));
    assert_int_equal(pi_requests(inv), 1);
    assert_int_equal(pi_amount(inv), 4200);
    assert_int_equal(
        Q("SELECT count(*) FROM billing.invoices WHERE id = $1::bigint AND legal_number IS NOT NULL"
          " AND issue_date = '2026-10-06'",
          inv),
        1);
    assert_string_equal(T("SELECT string_agg(kind || ':' || status, ',') FROM"
                          " billing.payment_attempts WHERE invoice_id = $1::bigint",
                          inv),
                        "autopay:succeeded");
    assert_int_equal(
        Q("SELECT sum(amount_cents) FROM billing.payments WHERE invoice_id = $1::bigint", inv),
        4200);
}

/* Issue 16's review flow end to end through the real workers: scheduled
 * invoicing (billing-invoicing-worker) makes a draft for a firm that
 * reviews before issuing; an autopay tick leaves it alone; the partner
 * writes the hours down (`billingctl invoice adjust`) and issues it; the
 * autopay worker charges the adjusted total once, and the time entries stay
 * on the invoice. (The invoicing worker is stopped before the issue: each
 * worker's relay publishes the shared outbox to its own topic prefix.) */
static void test_review_flow_through_the_workers(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(H.pg);
    Q("INSERT INTO billing.firm_settings(firm_id, review_before_issue) VALUES ($1::bigint, true)"
      " ON CONFLICT (firm_id) DO UPDATE SET review_before_issue = true RETURNING 1",
      firm);
    int64_t client = payh_client(&H, firm, "pm_card_visa", true);
    char f[24], c[24];
    snprintf(f, sizeof f, "%lld", (long long)firm);
    snprintf(c, sizeof c, "%lld", (long long)client);
    const char *pe[] = {f, c};
    int64_t eng = dbtest_ok(H.pg,
                            "INSERT INTO billing.engagements(firm_id, client_id, title,"
                            " pricing_mode, hourly_rate_cents, start_date, payment_terms_days,"
                            " autopay_cadence) VALUES ($1::bigint, $2::bigint, 'Advisory',"
                            " 'hourly', 20000, '2026-01-01', 15, 'on_issue') RETURNING id",
                            2, pe);
    char e[24];
    snprintf(e, sizeof e, "%lld", (long long)eng);
    const char *pt[] = {f, e};
    for (int i = 0; i < 2; i++)
        dbtest_ok(H.pg,
                  "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date,"
                  " hours, approved, approved_by, approved_at) VALUES ($1::bigint, $2::bigint,"
                  " 'ann', '2026-02-10', 2.50, true, 'pat', now()) RETURNING id",
                  2, pt);

    invworker *iw = invworker_start(LL_INVOICING_WORKER_BIN, "rvw", H.pg, 1);
    invworker_tick(iw, firm, "2026-03-01");
    assert_int_equal(invworker_stop(iw), 0);
    int64_t inv = Q("SELECT id FROM billing.invoices WHERE engagement_id = $1::bigint", eng);
    assert_string_equal(STATUS(inv), "draft");
    assert_int_equal(Q("SELECT total_cents FROM billing.invoices WHERE id = $1::bigint", inv),
                     100000);
    payh_tick(&H, TICK_AUTOPAY, "2026-03-01", firm);
    assert_int_equal(pi_requests(inv), 0);

    char out[4096], err[4096], id[24], line[24];
    snprintf(id, sizeof id, "%lld", (long long)inv);
    snprintf(line, sizeof line, "%lld",
             (long long)Q("SELECT id FROM billing.invoice_line_items WHERE invoice_id = $1::bigint"
                          " AND line_type = 'hourly'",
                          inv));
    assert_int_equal(ctltest(out, sizeof out, err, sizeof err, NULL, "invoice", "adjust", id,
                             "--line", line, "--quantity", "4.25", "--reason", "junior time",
                             "--by", "partner", NULL),
                     0);
    assert_int_equal(ctltest(out, sizeof out, err, sizeof err, NULL, "invoice", "issue", id,
                             "--date", "2026-03-02", "--by", "partner", NULL),
                     0);
    assert_true(
        payh_wait(&H, "SELECT status = 'paid' FROM billing.invoices WHERE id = $1::bigint", inv));
    assert_int_equal(pi_requests(inv), 1);
    assert_int_equal(pi_amount(inv), 85000);
    assert_int_equal(
        Q("SELECT sum(amount_cents) FROM billing.payments WHERE invoice_id = $1::bigint", inv),
        85000);
    assert_int_equal(Q("SELECT count(*) FROM billing.invoices WHERE id = $1::bigint"
                       " AND legal_number IS NOT NULL AND total_cents = 85000",
                       inv),
                     1);
    assert_int_equal(
        Q("SELECT count(*) FROM billing.time_entries WHERE invoice_id = $1::bigint", inv), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_on_issue),
        cmocka_unit_test(test_decline_is_a_failure),
        cmocka_unit_test(test_authentication_required_is_hard),
        cmocka_unit_test(test_processing_then_webhook),
        cmocka_unit_test(test_missing_method_without_stripe),
        cmocka_unit_test(test_client_autopay_off_cancels),
        cmocka_unit_test(test_on_due_waits_for_due_date),
        cmocka_unit_test(test_credit_covers_part_then_all),
        cmocka_unit_test(test_overpayment_becomes_credit),
        cmocka_unit_test(test_500_then_success_same_key),
        cmocka_unit_test(test_429_honoured),
        cmocka_unit_test(test_success_reported_three_ways),
        cmocka_unit_test(test_killed_between_call_and_commit),
        cmocka_unit_test(test_firm_scoped_ticks_touch_one_firm),
        cmocka_unit_test(test_draft_charged_when_issued),
        cmocka_unit_test(test_review_flow_through_the_workers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
