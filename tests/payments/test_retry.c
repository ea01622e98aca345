/* test_retry.c: billing-retry-worker (BILLING_RULES section 6, the failures
 * report of section 10) as real processes against the Stripe stand-in, the
 * dev broker and PostgreSQL, through the payh harness.
 *
 * Time moves only by ticks: each test publishes autopay and retry ticks for
 * its own firm on chosen business dates and asserts what the database and
 * the stand-in hold afterwards (statuses, counts, keys, amounts, audit rows,
 * outbox events, PaymentIntent requests). One harness serves the program;
 * the custom-schedule test starts a second one beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <jansson.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/log.h"
#include "payh.h"
#include "support/dbtest.h"

static payh H;

#define I64(v) db_i64((v), (char[24]){0}, 24)

/* ---- helpers ------------------------------------------------------------ */

/* base + n days as YYYY-MM-DD into out. */
static const char *dplus(char out[16], const char *base, int n)
{
    civil_date d;
    assert_true(date_parse(base, &d));
    return date_format(date_add_days(d, n), out, 16);
}

/* First column of the first row of a two-parameter query ($1 bigint, $2 text). */
static int64_t q2(const char *sql, int64_t id, const char *text)
{
    const char *p[] = {I64(id), text};
    return dbtest_ok(H.pg, sql, 2, p);
}

static const char *inv_status(payh *h, int64_t invoice)
{
    return payh_text(h, "SELECT status FROM billing.invoices WHERE id = $1::bigint", invoice);
}

static int64_t retry_count(payh *h, int64_t invoice)
{
    return payh_i64(h, "SELECT payment_retry_count FROM billing.invoices WHERE id = $1::bigint",
                    invoice);
}

/* next_payment_retry_at as a UTC date, "" when NULL. */
static const char *next_retry(payh *h, int64_t invoice)
{
    return payh_text(h,
                     "SELECT to_char(next_payment_retry_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
                     " FROM billing.invoices WHERE id = $1::bigint",
                     invoice);
}

static int64_t attempts(payh *h, int64_t invoice)
{
    return payh_i64(
        h, "SELECT count(*) FROM billing.payment_attempts WHERE invoice_id = $1::bigint", invoice);
}

/* Audit events of one action about one invoice. */
static int64_t audits(int64_t invoice, const char *action)
{
    return q2("SELECT count(*) FROM billing.audit_events WHERE action = $2"
              " AND metadata->>'invoice_id' = $1::bigint::text",
              invoice, action);
}

/* Outbox events of one type about one invoice. */
static int64_t events(int64_t invoice, const char *type)
{
    return q2("SELECT count(*) FROM billing.outbox WHERE topic = 'invoices'"
              " AND msg_key = $1::bigint::text AND payload->>'type' = $2",
              invoice, type);
}

/* POST /v1/payment_intents requests the stand-in received for an invoice
 * (its metadata[invoice_id]); creations = those that were executed (not a
 * replay of a key, not refused as in flight) and made a PaymentIntent. */
typedef struct {
    int64_t requests, creations;
} pi_counts;

static pi_counts pi_requests(standin *s, int64_t invoice)
{
    pi_counts n = {0, 0};
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)invoice);
    json_t *all = standin_get(s, "/__standin/requests");
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "method")), "POST") != 0 ||
            strcmp(json_string_value(json_object_get(r, "path")), "/v1/payment_intents") != 0)
            continue;
        const char *inv = json_string_value(
            json_object_get(json_object_get(r, "params"), "metadata[invoice_id]"));
        if (inv == NULL || strcmp(inv, id) != 0)
            continue;
        n.requests++;
        json_int_t status = json_integer_value(json_object_get(r, "status"));
        if (!json_is_true(json_object_get(r, "replayed")) && (status == 200 || status == 402))
            n.creations++;
    }
    json_decref(all);
    return n;
}

/* The attempts' idempotency keys in attempt order, comma-separated. */
static const char *attempt_keys(payh *h, int64_t invoice)
{
    return payh_text(h,
                     "SELECT string_agg(idempotency_key || '=' || status, ',' ORDER BY attempt_no)"
                     " FROM billing.payment_attempts WHERE invoice_id = $1::bigint",
                     invoice);
}

static void expect_keys(payh *h, int64_t invoice, const char *const *parts, size_t n)
{
    char want[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(want + len, sizeof want - len, "%s%s", i ? "," : "", parts[i]);
    assert_string_equal(attempt_keys(h, invoice), want);
}

/* Runs billingctl with DATABASE_URL of the environment; stdout into out. */
static int ctl(char *out, size_t outsz, const char *const *argv)
{
    char cmd[2048];
    size_t len = (size_t)snprintf(cmd, sizeof cmd, "%s", LL_BILLINGCTL_BIN);
    for (size_t i = 0; argv[i] != NULL; i++)
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, " '%s'", argv[i]);
    snprintf(cmd + len, sizeof cmd - len, " 2>/dev/null");
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, outsz - 1, f);
    out[got] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A firm-wide fingerprint of everything a dry run must not write. */
static const char *firm_state(int64_t firm)
{
    return payh_text(
        &H,
        "SELECT (SELECT count(*) FROM billing.payment_attempts WHERE firm_id = $1::bigint) || '/'"
        " || (SELECT count(*) FROM billing.audit_events WHERE firm_id = $1::bigint) || '/'"
        " || (SELECT count(*) FROM billing.outbox WHERE firm_id = $1::bigint) || '/'"
        " || (SELECT string_agg(id || ':' || status || ':' || payment_retry_count || ':'"
        "      || coalesce(next_payment_retry_at::text, '-'), ',' ORDER BY id)"
        "     FROM billing.invoices WHERE firm_id = $1::bigint)",
        firm);
}

/* ---- setup -------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    const char *b = getenv("KAFKA_BROKERS");
    if (b == NULL || *b == '\0' || getenv("DATABASE_URL") == NULL) {
        fprintf(stderr, "KAFKA_BROKERS/DATABASE_URL are not set: run through tests/run.sh\n");
        return -1;
    }
    log_init("test_retry");
    log_set_level(LL_LOG_WARN);
    payh_start(&H, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    payh_stop(&H);
    return 0;
}

/* ---- 1. a card that keeps failing --------------------------------------- */

static void test_soft_decline_schedule_then_overdue(void **state)
{
    (void)state;
    const char *D = "2026-03-02";
    char d[16];
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_chargeDeclinedInsufficientFunds", true);
    int64_t inv = payh_invoice(&H, firm, client, 12500, D, dplus(d, D, 30), "on_issue");

    payh_tick(&H, TICK_AUTOPAY, D, firm);
    assert_string_equal(inv_status(&H, inv), "failed");
    assert_int_equal(retry_count(&H, inv), 1);
    assert_string_equal(payh_text(&H,
                                  "SELECT payment_failure_code FROM billing.invoices"
                                  " WHERE id = $1::bigint",
                                  inv),
                        "insufficient_funds");
    assert_string_equal(payh_text(&H,
                                  "SELECT to_char(payment_failed_at AT TIME ZONE 'UTC',"
                                  " 'YYYY-MM-DD') FROM billing.invoices WHERE id = $1::bigint",
                                  inv),
                        D);
    assert_string_equal(next_retry(&H, inv), dplus(d, D, 3));
    assert_int_equal(audits(inv, "payment_failed"), 1);
    assert_int_equal(audits(inv, "payment_retry_scheduled"), 1);
    assert_int_equal(events(inv, "invoice.payment_failed"), 1);
    assert_string_equal(payh_text(&H,
                                  "SELECT payload->>'customer_action_required'"
                                  " FROM billing.outbox WHERE msg_key = $1::bigint::text"
                                  " AND payload->>'type' = 'invoice.payment_failed'",
                                  inv),
                        "false");

    /* One day early: nothing. */
    payh_tick(&H, TICK_RETRY, dplus(d, D, 2), firm);
    assert_int_equal(retry_count(&H, inv), 1);
    assert_int_equal(pi_requests(H.stripe, inv).requests, 1);

    payh_tick(&H, TICK_RETRY, dplus(d, D, 3), firm);
    assert_string_equal(inv_status(&H, inv), "failed");
    assert_int_equal(retry_count(&H, inv), 2);
    assert_string_equal(next_retry(&H, inv), dplus(d, D, 10));

    payh_tick(&H, TICK_RETRY, dplus(d, D, 9), firm);
    assert_int_equal(retry_count(&H, inv), 2);
    assert_int_equal(pi_requests(H.stripe, inv).requests, 2);

    payh_tick(&H, TICK_RETRY, dplus(d, D, 10), firm);
    assert_int_equal(retry_count(&H, inv), 3);
    assert_string_equal(next_retry(&H, inv), dplus(d, D, 24));

    payh_tick(&H, TICK_RETRY, dplus(d, D, 24), firm);
    assert_string_equal(inv_status(&H, inv), "overdue");
    assert_int_equal(retry_count(&H, inv), 4);
    assert_string_equal(next_retry(&H, inv), "");
    assert_int_equal(audits(inv, "payment_failed"), 4);
    assert_int_equal(audits(inv, "payment_retry_scheduled"), 3);
    assert_int_equal(audits(inv, "payment_retry_exhausted"), 1);
    assert_string_equal(payh_text(&H,
                                  "SELECT severity FROM billing.audit_events"
                                  " WHERE action = 'payment_retry_exhausted'"
                                  " AND metadata->>'invoice_id' = $1::bigint::text",
                                  inv),
                        "WARNING");
    assert_int_equal(events(inv, "invoice.payment_failed"), 4);
    assert_int_equal(q2("SELECT count(*) FROM billing.outbox WHERE msg_key = $1::bigint::text"
                        " AND payload->>'idempotency_key' = $2 || $1::bigint::text || ':4'",
                        inv, "invoice.payment_failed:"),
                     1);
    assert_int_equal(events(inv, "invoice.overdue"), 1);

    /* Retries stopped. */
    payh_tick(&H, TICK_RETRY, dplus(d, D, 40), firm);
    assert_string_equal(inv_status(&H, inv), "overdue");
    assert_int_equal(retry_count(&H, inv), 4);
    assert_int_equal(events(inv, "invoice.overdue"), 1);
    pi_counts n = pi_requests(H.stripe, inv);
    assert_int_equal(n.requests, 4);
    assert_int_equal(n.creations, 4);
    char k1[64], k2[64], k3[64], k4[64];
    snprintf(k1, sizeof k1, "autopay:%lld:1=failed", (long long)inv);
    snprintf(k2, sizeof k2, "retry:%lld:2=failed", (long long)inv);
    snprintf(k3, sizeof k3, "retry:%lld:3=failed", (long long)inv);
    snprintf(k4, sizeof k4, "retry:%lld:4=failed", (long long)inv);
    const char *keys[] = {k1, k2, k3, k4};
    expect_keys(&H, inv, keys, 4);
}

/* ---- 2. success on the second retry ------------------------------------- */

static void test_success_on_second_retry(void **state)
{
    (void)state;
    const char *D = "2026-03-02";
    char d[16];
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_standin_declines_2_then_visa", true);
    int64_t inv = payh_invoice(&H, firm, client, 4200, D, dplus(d, D, 30), "on_issue");

    payh_tick(&H, TICK_AUTOPAY, D, firm);
    assert_int_equal(retry_count(&H, inv), 1);
    payh_tick(&H, TICK_RETRY, dplus(d, D, 3), firm);
    assert_int_equal(retry_count(&H, inv), 2);
    assert_string_equal(next_retry(&H, inv), dplus(d, D, 10));
    payh_tick(&H, TICK_RETRY, dplus(d, D, 10), firm);

    assert_string_equal(inv_status(&H, inv), "paid");
    assert_int_equal(retry_count(&H, inv), 2);
    assert_int_equal(payh_i64(&H,
                              "SELECT amount_paid_cents FROM billing.invoices"
                              " WHERE id = $1::bigint",
                              inv),
                     4200);
    assert_string_equal(next_retry(&H, inv), "");
    assert_int_equal(payh_i64(&H,
                              "SELECT count(*) FROM billing.payments"
                              " WHERE invoice_id = $1::bigint AND source = 'stripe'"
                              " AND amount_cents = 4200",
                              inv),
                     1);
    assert_int_equal(events(inv, "invoice.paid"), 1);
    char k1[64], k2[64], k3[64];
    snprintf(k1, sizeof k1, "autopay:%lld:1=failed", (long long)inv);
    snprintf(k2, sizeof k2, "retry:%lld:2=failed", (long long)inv);
    snprintf(k3, sizeof k3, "retry:%lld:3=succeeded", (long long)inv);
    const char *keys[] = {k1, k2, k3};
    expect_keys(&H, inv, keys, 3);
    assert_int_equal(pi_requests(H.stripe, inv).creations, 3);

    /* Paid: a later tick does nothing. */
    payh_tick(&H, TICK_RETRY, dplus(d, D, 24), firm);
    assert_string_equal(inv_status(&H, inv), "paid");
    assert_int_equal(pi_requests(H.stripe, inv).requests, 3);
}

/* ---- 3. RETRY_SCHEDULE_DAYS=1,2 ------------------------------------------ */

static void test_custom_schedule(void **state)
{
    (void)state;
    payh h2;
    payh_start(&h2, "1,2");
    const char *D = "2026-03-02";
    char d[16];
    int64_t firm = dbtest_firm(h2.pg);
    int64_t client = payh_client(&h2, firm, "pm_card_chargeDeclinedInsufficientFunds", true);
    int64_t inv = payh_invoice(&h2, firm, client, 9900, D, dplus(d, D, 30), "on_issue");

    payh_tick(&h2, TICK_AUTOPAY, D, firm);
    assert_int_equal(retry_count(&h2, inv), 1);
    assert_string_equal(next_retry(&h2, inv), dplus(d, D, 1));
    payh_tick(&h2, TICK_RETRY, dplus(d, D, 1), firm);
    assert_int_equal(retry_count(&h2, inv), 2);
    assert_string_equal(next_retry(&h2, inv), dplus(d, D, 3));
    payh_tick(&h2, TICK_RETRY, dplus(d, D, 2), firm);
    assert_int_equal(retry_count(&h2, inv), 2);
    payh_tick(&h2, TICK_RETRY, dplus(d, D, 3), firm);
    assert_string_equal(inv_status(&h2, inv), "overdue");
    assert_int_equal(retry_count(&h2, inv), 3);
    assert_string_equal(next_retry(&h2, inv), "");
    assert_int_equal(audits(inv, "payment_retry_exhausted"), 1);
    payh_tick(&h2, TICK_RETRY, dplus(d, D, 20), firm);
    pi_counts n = pi_requests(h2.stripe, inv);
    assert_int_equal(n.requests, 3);
    assert_int_equal(n.creations, 3);
    assert_int_equal(attempts(&h2, inv), 3);
    payh_stop(&h2);
}

/* ---- 4. hard declines ---------------------------------------------------- */

static void test_hard_declines(void **state)
{
    (void)state;
    static const struct {
        const char *pm, *code;
    } cases[] = {
        {"pm_card_chargeDeclinedLostCard", "lost_card"},
        {"pm_card_chargeDeclinedStolenCard", "stolen_card"},
        {"pm_card_chargeDeclinedFraudulent", "fraudulent"},
        {"pm_card_chargeDeclinedExpiredCard", "expired_card"},
        {"pm_card_chargeDeclinedPickupCard", "pickup_card"},
        {"pm_card_chargeDeclinedCardNotSupported", "card_not_supported"},
        {"pm_card_chargeDeclinedIncorrectNumber", "incorrect_number"},
        {"pm_card_chargeDeclinedInvalidAccount", "invalid_account"},
        {"pm_card_authenticationRequired", "authentication_required"},
        {NULL, "payment_method_missing"},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    const char *D = "2026-04-01";
    char d[16];
    int64_t firm = dbtest_firm(H.pg);
    int64_t inv[N];
    for (size_t i = 0; i < N; i++) {
        int64_t client = payh_client(&H, firm, cases[i].pm, true);
        inv[i] = payh_invoice(&H, firm, client, 1000 + (int64_t)i, D, dplus(d, D, 14), "on_issue");
    }
    payh_tick(&H, TICK_AUTOPAY, D, firm);
    for (size_t i = 0; i < N; i++) {
        print_message("hard decline %s\n", cases[i].code);
        assert_string_equal(inv_status(&H, inv[i]), "failed");
        assert_string_equal(payh_text(&H,
                                      "SELECT payment_failure_code FROM billing.invoices"
                                      " WHERE id = $1::bigint",
                                      inv[i]),
                            cases[i].code);
        assert_int_equal(retry_count(&H, inv[i]), 1);
        assert_string_equal(next_retry(&H, inv[i]), "");
        assert_int_equal(audits(inv[i], "payment_failed"), 1);
        assert_int_equal(audits(inv[i], "payment_retry_scheduled"), 0);
        assert_int_equal(q2("SELECT count(*) FROM billing.audit_events"
                            " WHERE action = 'payment_retry_skipped'"
                            " AND metadata->>'invoice_id' = $1::bigint::text"
                            " AND metadata->>'failure_code' = $2",
                            inv[i], cases[i].code),
                         1);
        assert_int_equal(events(inv[i], "invoice.payment_failed"), 1);
        assert_string_equal(payh_text(&H,
                                      "SELECT payload->>'customer_action_required'"
                                      " FROM billing.outbox WHERE msg_key = $1::bigint::text"
                                      " AND payload->>'type' = 'invoice.payment_failed'",
                                      inv[i]),
                            "true");
        assert_int_equal(q2("SELECT count(*) FROM billing.payment_attempts"
                            " WHERE invoice_id = $1::bigint AND status = 'failed'"
                            " AND failure_code = $2",
                            inv[i], cases[i].code),
                         1);
        assert_int_equal(pi_requests(H.stripe, inv[i]).requests, cases[i].pm ? 1 : 0);
    }

    /* 30 days later: nothing charged; past the due date and in no retry
     * cycle, each is now overdue (once). */
    payh_tick(&H, TICK_RETRY, dplus(d, D, 30), firm);
    payh_tick(&H, TICK_AUTOPAY, dplus(d, D, 30), firm);
    for (size_t i = 0; i < N; i++) {
        print_message("hard decline %s, 30 days later\n", cases[i].code);
        assert_int_equal(pi_requests(H.stripe, inv[i]).requests, cases[i].pm ? 1 : 0);
        assert_int_equal(attempts(&H, inv[i]), 1);
        assert_int_equal(retry_count(&H, inv[i]), 1);
        assert_string_equal(inv_status(&H, inv[i]), "overdue");
        assert_int_equal(audits(inv[i], "invoice_overdue"), 1);
    }
}

/* ---- 5. one count per failure ------------------------------------------- */

static void test_failure_counted_once(void **state)
{
    (void)state;
    const char *D = "2026-05-04";
    char d[16], pi[128], ch[64];
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_card_chargeDeclinedInsufficientFunds", true);
    int64_t inv = payh_invoice(&H, firm, client, 2500, D, dplus(d, D, 30), "on_issue");

    payh_tick(&H, TICK_AUTOPAY, D, firm);
    assert_int_equal(retry_count(&H, inv), 1);
    snprintf(pi, sizeof pi, "%s",
             payh_text(&H,
                       "SELECT stripe_payment_intent_id FROM billing.payment_attempts"
                       " WHERE invoice_id = $1::bigint",
                       inv));
    assert_true(strncmp(pi, "pi_", 3) == 0);
    snprintf(ch, sizeof ch, "ch_test%lld", (long long)inv);

    /* The webhook of the same decline, the same webhook again (same event
     * id), then Stripe's invoice.payment_failed for the same intent: the
     * last one is on the same partition (key = PaymentIntent), so once it is
     * recorded the duplicate before it was handled too. */
    char *wh = payh_fixture_event("payment_intent.payment_failed.json", pi, ch, inv, 2500);
    payh_stripe_event(&H, wh, pi, H.group_retry);
    payh_stripe_event(&H, wh, pi, NULL);
    char *ip = payh_fixture_event("invoice.payment_failed.json", pi, ch, inv, 2500);
    payh_stripe_event(&H, ip, pi, H.group_retry);
    free(wh);
    free(ip);

    assert_string_equal(inv_status(&H, inv), "failed");
    assert_int_equal(retry_count(&H, inv), 1);
    assert_string_equal(next_retry(&H, inv), dplus(d, D, 3));
    assert_int_equal(attempts(&H, inv), 1);
    assert_int_equal(audits(inv, "payment_failed"), 1);
    assert_int_equal(audits(inv, "payment_retry_scheduled"), 1);
    assert_int_equal(events(inv, "invoice.payment_failed"), 1);
    assert_int_equal(q2("SELECT count(*) FROM billing.payment_attempts"
                        " WHERE invoice_id = $1::bigint AND stripe_payment_intent_id = $2"
                        " AND status = 'failed'",
                        inv, pi),
                     1);

    /* An asynchronous failure of a processing payment is a new failure. */
    int64_t c2 = payh_client(&H, firm, "pm_standin_processing", true);
    int64_t inv2 = payh_invoice(&H, firm, c2, 3300, dplus(d, D, 1), dplus(d, D, 30), "on_issue");
    payh_tick(&H, TICK_AUTOPAY, dplus(d, D, 1), firm);
    assert_int_equal(attempts(&H, inv2), 1);
    assert_string_equal(payh_text(&H,
                                  "SELECT autopay_status FROM billing.invoices"
                                  " WHERE id = $1::bigint",
                                  inv2),
                        "processing");
    assert_string_equal(inv_status(&H, inv2), "sent");
    char pi2[128];
    snprintf(pi2, sizeof pi2, "%s",
             payh_text(&H,
                       "SELECT stripe_payment_intent_id FROM billing.payment_attempts"
                       " WHERE invoice_id = $1::bigint AND status = 'processing'",
                       inv2));
    assert_true(strncmp(pi2, "pi_", 3) == 0);
    char req[256];
    snprintf(req, sizeof req, "{\"payment_intent\":\"%s\",\"outcome\":\"failed\"}", pi2);
    json_t *evt = standin_post(H.stripe, "/__standin/complete", req);
    assert_string_equal(json_string_value(json_object_get(evt, "type")),
                        "payment_intent.payment_failed");
    char *body = json_dumps(evt, JSON_COMPACT);
    json_decref(evt);
    payh_stripe_event(&H, body, pi2, H.group_retry);
    free(body);

    assert_string_equal(inv_status(&H, inv2), "failed");
    assert_int_equal(retry_count(&H, inv2), 1);
    assert_string_not_equal(next_retry(&H, inv2), "");
    assert_int_equal(attempts(&H, inv2), 1);
    assert_int_equal(q2("SELECT count(*) FROM billing.payment_attempts"
                        " WHERE invoice_id = $1::bigint AND stripe_payment_intent_id = $2"
                        " AND status = 'failed' AND failure_code IS NOT NULL",
                        inv2, pi2),
                     1);
    assert_int_equal(audits(inv2, "payment_failed"), 1);
    assert_int_equal(audits(inv2, "payment_retry_scheduled"), 1);
    assert_int_equal(events(inv2, "invoice.payment_failed"), 1);
    assert_int_equal(pi_requests(H.stripe, inv2).creations, 1);
}

/* ---- 6. overdue without autopay ------------------------------------------ */
/* Sent and partial invoices past their due date, not in a retry cycle,
 * become overdue on the first business date after it, once. */

static void test_overdue_once(void **state)
{
    (void)state;
    const char *due = "2026-06-15";
    char d[16];
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, NULL, false);
    int64_t inv = payh_invoice(&H, firm, client, 7700, dplus(d, due, -30), due, "on_issue");
    /* A paid invoice past its due date stays paid. */
    int64_t paid = payh_invoice(&H, firm, client, 100, dplus(d, due, -30), due, "on_issue");
    const char *pp[] = {I64(paid)};
    dbtest_ok(H.pg,
              "WITH p AS (INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source)"
              " SELECT firm_id, id, 100, 'manual' FROM billing.invoices WHERE id = $1::bigint)"
              " UPDATE billing.invoices SET status = 'paid', amount_paid_cents = 100,"
              " paid_date = issue_date WHERE id = $1::bigint",
              1, pp);

    /* A partly paid one becomes overdue as well. */
    int64_t part = payh_invoice(&H, firm, client, 5000, dplus(d, due, -30), due, "on_issue");
    const char *pq[] = {I64(part)};
    dbtest_ok(H.pg,
              "WITH p AS (INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source)"
              " SELECT firm_id, id, 2000, 'manual' FROM billing.invoices WHERE id = $1::bigint)"
              " UPDATE billing.invoices SET status = 'partial', amount_paid_cents = 2000"
              " WHERE id = $1::bigint",
              1, pq);

    payh_tick(&H, TICK_RETRY, due, firm);
    assert_string_equal(inv_status(&H, inv), "sent");
    assert_string_equal(inv_status(&H, part), "partial");
    assert_int_equal(audits(inv, "invoice_overdue"), 0);

    payh_tick(&H, TICK_RETRY, dplus(d, due, 1), firm);
    assert_string_equal(inv_status(&H, inv), "overdue");
    assert_int_equal(audits(inv, "invoice_overdue"), 1);
    assert_int_equal(events(inv, "invoice.overdue"), 1);
    assert_string_equal(payh_text(&H,
                                  "SELECT severity FROM billing.audit_events"
                                  " WHERE action = 'invoice_overdue'"
                                  " AND metadata->>'invoice_id' = $1::bigint::text",
                                  inv),
                        "WARNING");
    assert_string_equal(inv_status(&H, paid), "paid");
    assert_string_equal(inv_status(&H, part), "overdue");
    assert_int_equal(audits(part, "invoice_overdue"), 1);
    assert_string_equal(payh_text(&H,
                                  "SELECT metadata->>'balance_due_cents'"
                                  " FROM billing.audit_events WHERE action = 'invoice_overdue'"
                                  " AND metadata->>'invoice_id' = $1::bigint::text",
                                  part),
                        "3000");

    payh_tick(&H, TICK_RETRY, dplus(d, due, 8), firm);
    assert_string_equal(inv_status(&H, inv), "overdue");
    assert_int_equal(audits(inv, "invoice_overdue"), 1);
    assert_int_equal(events(inv, "invoice.overdue"), 1);
    assert_int_equal(attempts(&H, inv), 0);
    assert_int_equal(audits(paid, "invoice_overdue"), 0);
    assert_int_equal(audits(part, "invoice_overdue"), 1);
    assert_int_equal(events(part, "invoice.overdue"), 1);
}

/* ---- 7. two retry workers ------------------------------------------------ */

static void test_two_retry_workers(void **state)
{
    (void)state;
    enum { N = 20 };
    int assigned = payh_retry_log_count(&H, "partitions assigned");
    payh_start_retry2(&H);
    const char *D = "2026-07-01";
    char d[16], r[16];
    int64_t firm = dbtest_firm(H.pg);
    int64_t client = payh_client(&H, firm, "pm_standin_declines_1_then_visa", true);
    int64_t inv[N];
    for (int i = 0; i < N; i++)
        inv[i] = payh_invoice(&H, firm, client, 1500 + i, D, dplus(d, D, 30), "on_issue");
    payh_tick(&H, TICK_AUTOPAY, D, firm);
    for (int i = 0; i < N; i++)
        assert_int_equal(retry_count(&H, inv[i]), 1);

    /* The same retry tick split two ways (1 and 12 shards: other keys, so
     * both are applied; 12 shards land on both workers' partitions) and one
     * split sent twice: the two workers select the same invoices at once. */
    dplus(r, D, 3);
    /* Both instances hold partitions once the rebalance their joining
     * caused has settled (each logs its new assignment). */
    for (int i = 0; i < 600 && payh_retry_log_count(&H, "partitions assigned") < assigned + 2; i++)
        payh_sleep_ms(100);
    assert_true(payh_retry_log_count(&H, "partitions assigned") >= assigned + 2);
    /* Stripe answers slowly, so the workers' charges overlap in time. */
    json_decref(standin_post(H.stripe, "/__standin/latency", "{\"ms\":300}"));
    payh_tick_publish(&H, TICK_RETRY, r, firm, 1);
    payh_tick_publish(&H, TICK_RETRY, r, firm, 12);
    payh_tick_publish(&H, TICK_RETRY, r, firm, 12);
    payh_tick_wait(&H, TICK_RETRY, r, firm, 1);
    payh_tick_wait(&H, TICK_RETRY, r, firm, 12);
    json_decref(standin_post(H.stripe, "/__standin/latency", "{\"ms\":0}"));

    for (int i = 0; i < N; i++) {
        assert_string_equal(inv_status(&H, inv[i]), "paid");
        assert_int_equal(payh_i64(&H,
                                  "SELECT amount_paid_cents - total_cents"
                                  " FROM billing.invoices WHERE id = $1::bigint",
                                  inv[i]),
                         0);
        assert_int_equal(payh_i64(&H,
                                  "SELECT count(*) FROM billing.payments"
                                  " WHERE invoice_id = $1::bigint",
                                  inv[i]),
                         1);
        assert_int_equal(attempts(&H, inv[i]), 2);
        assert_int_equal(payh_i64(&H,
                                  "SELECT count(DISTINCT idempotency_key)"
                                  " FROM billing.payment_attempts"
                                  " WHERE invoice_id = $1::bigint",
                                  inv[i]),
                         2);
        pi_counts n = pi_requests(H.stripe, inv[i]);
        assert_int_equal(n.creations, 2); /* the autopay decline and one retry */
    }
    /* What the concurrency looked like (a figure, not an assertion). */
    int64_t replays = 0;
    for (int i = 0; i < N; i++) {
        pi_counts n = pi_requests(H.stripe, inv[i]);
        replays += n.requests - n.creations;
    }
    print_message("two retry workers: %d invoices, %lld requests replayed or refused as"
                  " in flight (overlapping work), %lld PaymentIntent requests in this harness\n",
                  N, (long long)replays,
                  (long long)standin_count(H.stripe, "POST", "/v1/payment_intents"));
    /* No second charge hidden as an overpayment credit. */
    assert_int_equal(payh_i64(&H,
                              "SELECT count(*) FROM billing.credit_ledger"
                              " WHERE client_id = $1::bigint",
                              client),
                     0);
}

/* ---- 8. billingctl: report failures, retry run --dry-run ----------------- */

static json_t *ctl_json(const char *const *argv, int want_rc)
{
    static char out[65536];
    int rc = ctl(out, sizeof out, argv);
    if (rc != want_rc)
        fail_msg("billingctl %s %s: exit %d, want %d; output: %s", argv[0], argv[1], rc, want_rc,
                 out);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (j == NULL)
        fail_msg("billingctl printed no JSON (%s): %s", je.text, out);
    return j;
}

static const json_t *by_code(const json_t *report, const char *code)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(report, "by_code"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "failure_code")), code) == 0)
            return r;
    }
    return NULL;
}

static void test_billingctl_report_and_dry_run(void **state)
{
    (void)state;
    const char *D = "2026-08-03";
    char d[16], d1[16], d3[16], d4[16], d5[16];
    dplus(d1, D, 1);
    dplus(d3, D, 3);
    dplus(d4, D, 4);
    dplus(d5, D, 5);
    int64_t firm = dbtest_firm(H.pg);
    char firm_s[24];
    snprintf(firm_s, sizeof firm_s, "%lld", (long long)firm);
    int64_t soft = payh_client(&H, firm, "pm_card_chargeDeclinedInsufficientFunds", true);
    int64_t lost = payh_client(&H, firm, "pm_card_chargeDeclinedLostCard", true);
    int64_t manual = payh_client(&H, firm, NULL, false);
    int64_t a = payh_invoice(&H, firm, soft, 1000, D, dplus(d, D, 30), "on_issue");
    int64_t b = payh_invoice(&H, firm, soft, 2000, D, dplus(d, D, 30), "on_issue");
    int64_t c = payh_invoice(&H, firm, lost, 500, D, dplus(d, D, 30), "on_issue");
    int64_t e = payh_invoice(&H, firm, soft, 700, d5, dplus(d, D, 35), "on_issue");
    int64_t g = payh_invoice(&H, firm, manual, 3000, dplus(d, D, -29), d1, "on_issue");
    payh_tick(&H, TICK_AUTOPAY, D, firm);
    payh_tick(&H, TICK_AUTOPAY, d5, firm);
    assert_int_equal(
        retry_count(&H, a) + retry_count(&H, b) + retry_count(&H, c) + retry_count(&H, e), 4);

    const char *r1[] = {"report", "failures", "--firm-id", firm_s,   "--from",
                        D,        "--to",     D,           "--json", NULL};
    json_t *j = ctl_json(r1, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "failure_count")), 3);
    assert_int_equal(json_array_size(json_object_get(j, "by_code")), 2);
    const json_t *row = by_code(j, "insufficient_funds");
    assert_non_null(row);
    assert_int_equal(json_integer_value(json_object_get(row, "count")), 2);
    assert_int_equal(json_integer_value(json_object_get(row, "amount_cents")), 3000);
    row = by_code(j, "lost_card");
    assert_non_null(row);
    assert_int_equal(json_integer_value(json_object_get(row, "count")), 1);
    assert_int_equal(json_integer_value(json_object_get(row, "amount_cents")), 500);
    json_decref(j);

    const char *r2[] = {"--json", "report", "failures", "--firm-id", firm_s,
                        "--from", D,        "--to",     d5,          NULL};
    j = ctl_json(r2, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "failure_count")), 4);
    row = by_code(j, "insufficient_funds");
    assert_non_null(row);
    assert_int_equal(json_integer_value(json_object_get(row, "count")), 3);
    assert_int_equal(json_integer_value(json_object_get(row, "amount_cents")), 3700);
    json_decref(j);

    const char *r3[] = {"report", "failures", "--firm-id", firm_s,   "--from",
                        d1,       "--to",     d4,          "--json", NULL};
    j = ctl_json(r3, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "failure_count")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "by_code")), 0);
    json_decref(j);

    char out[1024];
    const char *bad[] = {"report", "failures", "--firm-id", firm_s, "--from", d5, "--to", D, NULL};
    assert_int_equal(ctl(out, sizeof out, bad), 2);

    /* Dry run as of D+3: a and b would be retried (attempt 2), g would
     * become overdue; nothing is written and nothing is charged. */
    char before[1024];
    snprintf(before, sizeof before, "%s", firm_state(firm));
    int64_t requests = standin_count(H.stripe, NULL, NULL);
    const char *dry[] = {"retry", "run",       "--date", d3,  "--firm-id",
                         firm_s,  "--dry-run", "--json", NULL};
    j = ctl_json(dry, 0);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 3);
    const int64_t want_id[] = {a, b, g};
    const char *want_action[] = {"charge", "charge", "overdue"};
    const int64_t want_total[] = {1000, 2000, 3000};
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(j, i);
        assert_int_equal(json_integer_value(json_object_get(x, "invoice_id")), want_id[i]);
        assert_string_equal(json_string_value(json_object_get(x, "action")), want_action[i]);
        assert_int_equal(json_integer_value(json_object_get(x, "total_cents")), want_total[i]);
        assert_non_null(json_string_value(json_object_get(x, "invoice_number")));
        assert_true(json_integer_value(json_object_get(x, "engagement_id")) > 0);
        if (i < 2)
            assert_int_equal(json_integer_value(json_object_get(x, "attempt_no")), 2);
    }
    json_decref(j);
    assert_string_equal(firm_state(firm), before);
    assert_int_equal(standin_count(H.stripe, NULL, NULL), requests);
    assert_string_equal(inv_status(&H, g), "sent");

    const char *baddate[] = {"retry", "run", "--date", "2026-13-01", "--dry-run", NULL};
    assert_int_equal(ctl(out, sizeof out, baddate), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_decline_schedule_then_overdue),
        cmocka_unit_test(test_success_on_second_retry),
        cmocka_unit_test(test_custom_schedule),
        cmocka_unit_test(test_hard_declines),
        cmocka_unit_test(test_failure_counted_once),
        cmocka_unit_test(test_overdue_once),
        cmocka_unit_test(test_billingctl_report_and_dry_run),
        cmocka_unit_test(test_two_retry_workers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
