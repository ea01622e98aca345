/* test_verify.c: the reconciliation check (common/verify.c, `billingctl
 * verify`). A firm written only by the system's own writers (invoicing,
 * payments, failures, credit, refunds, disputes) is clean; each check fires
 * when its invariant is broken on purpose in a scratch firm (with triggers
 * off via session_replication_role = replica where a trigger guards it, and
 * with the constraint dropped inside a rolled-back transaction where a
 * CHECK or unique index guards it); --firm-id scopes the run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/credit.h"
#include "ledgerline/date.h"
#include "ledgerline/disputes.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/payments.h"
#include "ledgerline/verify.h"
#include "support/dbtest.h"
#include "vtest.h"

/* ---- collecting violations ----------------------------------------------- */

typedef struct {
    verify_check want;
    const char *table; /* NULL: any */
    int64_t id;        /* 0: any */
    int hits, total;
} vt_collect;

static void vt_on_violation(const verify_violation *v, void *arg)
{
    vt_collect *c = arg;
    c->total++;
    if (v->check == c->want && (c->table == NULL || strcmp(v->table, c->table) == 0) &&
        (c->id == 0 || v->id == c->id))
        c->hits++;
    fprintf(stderr, "  violation %s firm %lld %s %lld: %s\n", v->check_name, (long long)v->firm_id,
            v->table, (long long)v->id, v->detail);
}

static verify_summary run_verify(int64_t firm, vt_collect *c, bool in_tx)
{
    verify_summary s;
    char err[1024];
    db_status st = in_tx ? verify_run_in(vt_db(), firm, vt_on_violation, c, 0, &s, err, sizeof err)
                         : verify_run(vt_db(), firm, vt_on_violation, c, 0, &s, err, sizeof err);
    if (st != DB_OK)
        fail_msg("verify failed: %s", err);
    return s;
}

static void assert_clean(int64_t firm)
{
    vt_collect c = {.want = VERIFY_NCHECKS};
    verify_summary s = run_verify(firm, &c, false);
    if (s.violations != 0)
        fail_msg("firm %lld: expected a clean verify, got %lld violation(s)", (long long)firm,
                 (long long)s.violations);
}

/* The check `want` reports the row (table, id) of firm. */
static void expect_violation(int64_t firm, verify_check want, const char *table, int64_t id,
                             bool in_tx)
{
    vt_collect c = {.want = want, .table = table, .id = id};
    verify_summary s = run_verify(firm, &c, in_tx);
    if (c.hits == 0)
        fail_msg("check %s did not report %s %lld of firm %lld (%lld violation(s) in all)",
                 verify_check_name(want), table ? table : "*", (long long)id, (long long)firm,
                 (long long)s.violations);
    assert_true(s.per_check[want] >= 1);
}

static void sql(const char *text, int n, const char *const *p)
{
    (void)vt_q(text, n, p);
}

static void replica_on(void)
{
    sql("SET session_replication_role = replica", 0, NULL);
}

static void replica_off(void)
{
    sql("RESET session_replication_role", 0, NULL);
}

static void tx_begin(void)
{
    sql("BEGIN", 0, NULL);
    sql("SET LOCAL lock_timeout = '20s'", 0, NULL);
}

static void tx_rollback(void)
{
    sql("ROLLBACK", 0, NULL);
}

/* ---- a firm written by the system's own writers ------------------------- */

static int64_t clean_firm;

typedef struct {
    int64_t invoice, attempt;
    const char *pi, *ch;
    int64_t amount;
} pay_arg;

static db_status tx_pay(db_conn *c, void *varg, char *err, size_t errlen)
{
    pay_arg *a = varg;
    civil_date on;
    date_parse("2026-01-05", &on);
    payments_money m = {.invoice_id = a->invoice,
                        .attempt_id = a->attempt,
                        .payment_intent = a->pi,
                        .charge = a->ch,
                        .amount_cents = a->amount,
                        .on = on};
    payments_money_result r = PAYMENTS_MONEY_ALREADY;
    db_status st = payments_apply_success(c, &m, &r, err, errlen);
    assert_true(st != DB_OK || r == PAYMENTS_MONEY_APPLIED);
    return st;
}

typedef struct {
    int64_t invoice;
    const char *pi;
    bool recorded;
} fail_arg;

static db_status tx_fail(db_conn *c, void *varg, char *err, size_t errlen)
{
    fail_arg *a = varg;
    payments_ctx ctx = {.nretry = 3, .retry_days = {3, 7, 14}};
    payments_failure f = {.invoice_id = a->invoice,
                          .payment_intent = a->pi,
                          .code = "insufficient_funds",
                          .message = "Your card has insufficient funds.",
                          .failed_at = "2026-02-05T00:00:00Z"};
    return payments_record_failure(c, &ctx, &f, &a->recorded, err, errlen);
}

typedef struct {
    int64_t client, invoice;
} credit_arg;

static db_status tx_credit(db_conn *c, void *varg, char *err, size_t errlen)
{
    credit_arg *a = varg;
    credit_add_params good = {.client_id = a->client,
                              .amount_cents = 2500,
                              .source = "goodwill",
                              .description = "Apology for the late report",
                              .reason = "late deliverable",
                              .approved_by = "partner"};
    int64_t id = 0;
    db_status st = credit_add(c, &good, &id, err, errlen);
    if (st != DB_OK)
        return st;
    credit_add_params promo = {.client_id = a->client,
                               .amount_cents = 300,
                               .source = "promotional",
                               .description = "Spring promotion",
                               .has_expiry = true};
    date_parse("2026-03-01", &promo.expires_at);
    st = credit_add(c, &promo, &id, err, errlen);
    if (st != DB_OK)
        return st;
    civil_date on;
    date_parse("2026-03-10", &on);
    int64_t applied = 0;
    st = credit_apply_to_invoice(c, a->invoice, 0, on, "clerk", &applied, err, errlen);
    assert_true(st != DB_OK || applied > 0);
    return st;
}

typedef struct {
    int64_t invoice, firm;
    const char *ch, *pi, *re;
    int64_t amount, refunded;
} refund_arg;

static db_status tx_refund(db_conn *c, void *varg, char *err, size_t errlen)
{
    refund_arg *a = varg;
    refund_charge ch = {.amount = a->amount, .amount_refunded = a->refunded};
    snprintf(ch.id, sizeof ch.id, "%s", a->ch);
    snprintf(ch.payment_intent, sizeof ch.payment_intent, "%s", a->pi);
    snprintf(ch.currency, sizeof ch.currency, "usd");
    refund_info r = {.amount = a->refunded};
    snprintf(r.id, sizeof r.id, "%s", a->re);
    snprintf(r.charge, sizeof r.charge, "%s", a->ch);
    snprintf(r.status, sizeof r.status, "succeeded");
    refund_apply_result out;
    char evt[96];
    snprintf(evt, sizeof evt, "evt_%s", a->re);
    return refund_apply(c, a->invoice, a->firm, &ch, &r, 1, evt, &out, err, errlen);
}

typedef struct {
    int64_t invoice, firm, amount;
    const char *dp, *ch, *stripe_status, *type;
    int64_t created;
} dispute_arg;

static db_status tx_dispute(db_conn *c, void *varg, char *err, size_t errlen)
{
    dispute_arg *a = varg;
    dispute_info d = {.amount = a->amount, .created = 1767225600};
    snprintf(d.id, sizeof d.id, "%s", a->dp);
    snprintf(d.charge, sizeof d.charge, "%s", a->ch);
    snprintf(d.currency, sizeof d.currency, "usd");
    snprintf(d.reason, sizeof d.reason, "fraudulent");
    snprintf(d.stripe_status, sizeof d.stripe_status, "%s", a->stripe_status);
    if (dispute_map_status(a->stripe_status, &d.status, &d.resolution) != 0)
        fail_msg("bad status %s", a->stripe_status);
    stripe_event ev = {.created = a->created};
    snprintf(ev.id, sizeof ev.id, "evt_%s_%lld", a->dp, (long long)a->created);
    snprintf(ev.type, sizeof ev.type, "%s", a->type);
    dispute_apply_result out;
    return dispute_apply(c, a->invoice, a->firm, &d, &ev, &out, err, errlen);
}

static void must(db_status st, const char *what, const char *err)
{
    if (st != DB_OK)
        fail_msg("%s: %s (%s)", what, err, db_status_name(st));
}

static int64_t invoice_of(int64_t engagement, const char *period_start)
{
    const char *p[] = {vt_i(engagement), period_start};
    return vt_q("SELECT id FROM billing.invoices WHERE engagement_id = $1 AND period_start = $2", 2,
                p);
}

static void test_clean_firm_of_real_writers(void **state)
{
    (void)state;
    db_conn *c = vt_db();
    char err[1024], u[48];
    snprintf(u, sizeof u, "%s", dbtest_unique());
    for (char *p = u; *p; p++)
        if (*p == '-')
            *p = '_';
    int64_t firm = clean_firm = dbtest_firm(c->pg);
    int64_t client = dbtest_client(c->pg, firm);
    sql("UPDATE billing.clients SET tax_rate_bp = 825 WHERE id = $1", 1,
        (const char *[]){vt_i(client)});
    const char *pe[] = {vt_i(firm), vt_i(client)};
    int64_t eng = vt_q("INSERT INTO billing.engagements (firm_id, client_id, title, pricing_mode,"
                       " package_fee_cents, hourly_rate_cents, start_date)"
                       " VALUES ($1, $2, 'Retainer', 'mixed', 10000, 15000, '2026-01-01')"
                       " RETURNING id",
                       2, pe);
    const char *pt[] = {vt_i(firm), vt_i(eng)};
    sql("INSERT INTO billing.time_entries (firm_id, engagement_id, staff, work_date, hours,"
        " hourly_rate_cents, approved, approved_by, approved_at) VALUES"
        " ($1, $2, 'ann', '2026-01-10', 1.50, NULL, true, 'lead', now()),"
        " ($1, $2, 'bob', '2026-01-20', 2.25, 20000, true, 'lead', now()),"
        " ($1, $2, 'cid', '2026-01-21', 3.00, NULL, false, NULL, NULL)",
        2, pt);

    /* Invoicing on three business dates (one twice: nothing new). */
    const char *days[] = {"2026-01-05", "2026-02-05", "2026-02-05", "2026-03-05"};
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
        invoicing_params ip = {.shard = 0, .shards = 1, .firm_id = firm};
        date_parse(days[i], &ip.business_date);
        invoicing_stats is;
        must(invoicing_run(c, &ip, &is, err, sizeof err), "invoicing", err);
    }
    int64_t jan = invoice_of(eng, "2026-01-01"), feb = invoice_of(eng, "2026-02-01"),
            mar = invoice_of(eng, "2026-03-01");
    assert_true(jan > 0 && feb > 0 && mar > 0);
    const char *pf[] = {vt_i(firm)};
    assert_int_equal(vt_q("SELECT count(*) FROM billing.invoices WHERE firm_id = $1", 1, pf), 3);
    assert_int_equal(vt_q("SELECT count(*) FROM billing.time_entries WHERE firm_id = $1"
                          " AND invoice_id IS NOT NULL",
                          1, pf),
                     2);
    int64_t jan_total = vt_q("SELECT total_cents FROM billing.invoices WHERE id = $1", 1,
                             (const char *[]){vt_i(jan)});
    int64_t feb_total = vt_q("SELECT total_cents FROM billing.invoices WHERE id = $1", 1,
                             (const char *[]){vt_i(feb)});

    /* January: our autopay charge (an attempt), paid. */
    char pi1[96], ch1[96], pi2[96], pi3[96], ch3[96], re1[96], dp1[96], dp2[96];
    snprintf(pi1, sizeof pi1, "pi_%s_1", u);
    snprintf(ch1, sizeof ch1, "ch_%s_1", u);
    snprintf(pi2, sizeof pi2, "pi_%s_2", u);
    snprintf(pi3, sizeof pi3, "pi_%s_3", u);
    snprintf(ch3, sizeof ch3, "ch_%s_3", u);
    snprintf(re1, sizeof re1, "re_%s_1", u);
    snprintf(dp1, sizeof dp1, "dp_%s_1", u);
    snprintf(dp2, sizeof dp2, "dp_%s_2", u);
    const char *pa[] = {vt_i(jan), pi1, vt_i(jan_total)};
    sql("INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind,"
        " idempotency_key, amount_cents, stripe_payment_intent_id, status)"
        " SELECT firm_id, id, 1, 'autopay', 'autopay:' || id || ':1', $3, $2, 'processing'"
        " FROM billing.invoices WHERE id = $1",
        3, pa);
    pay_arg p1 = {.invoice = jan, .pi = pi1, .ch = ch1, .amount = jan_total};
    must(db_run_tx(c, tx_pay, &p1, err, sizeof err), "pay january", err);

    /* February: a decline reported twice (counts once), then a payment
     * from a webhook 700 cents above the balance (credit). */
    fail_arg f1 = {.invoice = feb, .pi = pi2};
    must(db_run_tx(c, tx_fail, &f1, err, sizeof err), "failure", err);
    assert_true(f1.recorded);
    fail_arg f2 = {.invoice = feb, .pi = pi2};
    must(db_run_tx(c, tx_fail, &f2, err, sizeof err), "failure again", err);
    assert_false(f2.recorded);
    pay_arg p3 = {.invoice = feb, .pi = pi3, .ch = ch3, .amount = feb_total + 700};
    must(db_run_tx(c, tx_pay, &p3, err, sizeof err), "pay february", err);

    /* March: goodwill and an expiring promotion; the promotion lapses, the
     * rest pays part of March. */
    credit_arg ca = {.client = client, .invoice = mar};
    must(db_run_tx(c, tx_credit, &ca, err, sizeof err), "credit", err);

    /* A partial refund of January, a won dispute on January and a lost
     * one on February. */
    refund_arg ra = {.invoice = jan,
                     .firm = firm,
                     .ch = ch1,
                     .pi = pi1,
                     .re = re1,
                     .amount = jan_total,
                     .refunded = 1500};
    must(db_run_tx(c, tx_refund, &ra, err, sizeof err), "refund", err);
    dispute_arg d1 = {.invoice = jan,
                      .firm = firm,
                      .amount = 1000,
                      .dp = dp1,
                      .ch = ch1,
                      .stripe_status = "needs_response",
                      .type = "charge.dispute.created",
                      .created = 1767300000};
    must(db_run_tx(c, tx_dispute, &d1, err, sizeof err), "dispute opened", err);
    d1.stripe_status = "won";
    d1.type = "charge.dispute.closed";
    d1.created = 1767400000;
    must(db_run_tx(c, tx_dispute, &d1, err, sizeof err), "dispute won", err);
    dispute_arg d2 = {.invoice = feb,
                      .firm = firm,
                      .amount = 4000,
                      .dp = dp2,
                      .ch = ch3,
                      .stripe_status = "lost",
                      .type = "charge.dispute.closed",
                      .created = 1767500000};
    must(db_run_tx(c, tx_dispute, &d2, err, sizeof err), "dispute lost", err);
    must(db_run_tx(c, tx_dispute, &d2, err, sizeof err), "dispute lost again", err);

    /* What the money looks like now: January refunded 1500, February
     * charged back 4000, March partly paid by credit. */
    assert_int_equal(vt_q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1", 1,
                          (const char *[]){vt_i(jan)}),
                     jan_total - 1500);
    assert_int_equal(vt_q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1", 1,
                          (const char *[]){vt_i(feb)}),
                     feb_total - 4000);
    assert_int_equal(vt_q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1", 1,
                          (const char *[]){vt_i(mar)}),
                     700 + 2500);
    assert_int_equal(vt_q("SELECT count(*) FROM billing.credit_ledger WHERE firm_id = $1"
                          " AND use = 'expired'",
                          1, pf),
                     1);

    assert_clean(firm);
    /* The credits report agrees (its outstanding balance is the clients'). */
    assert_int_equal(vt_ctl("--json", "report", "credits", "--firm-id", vt_i(firm), "--date",
                            "2026-03-10", NULL),
                     0);
    /* And the command says so. */
    assert_int_equal(vt_ctl("verify", "--firm-id", vt_i(firm), NULL), 0);
    assert_non_null(strstr(vt_out, "clean"));
}

/* ---- each check fires ----------------------------------------------------- */

static vt_firm seeded(void)
{
    vt_firm f;
    vt_seed(&f, true);
    assert_clean(f.firm);
    return f;
}

static void test_line_items_sum(void **state)
{
    (void)state;
    vt_firm f = seeded();
    replica_on(); /* rule 1.4's deferred trigger would refuse it */
    sql("INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type, description,"
        " quantity, rate_cents, amount_cents) VALUES ($1, $2, 'adjustment', 'stray', 1, 500, 500)",
        2, (const char *[]){vt_i(f.invoice), vt_i(f.firm)});
    replica_off();
    expect_violation(f.firm, VERIFY_LINE_ITEMS_SUM, "invoices", f.invoice, false);
}

static void test_total(void **state)
{
    (void)state;
    vt_firm f = seeded();
    const char *p[] = {vt_i(f.invoice)};
    tx_begin();
    sql("ALTER TABLE billing.invoices DROP CONSTRAINT"
        " invoices_rule_1_4_total_equals_subtotal_plus_tax",
        0, NULL);
    sql("UPDATE billing.invoices SET total_cents = total_cents + 1 WHERE id = $1", 1, p);
    expect_violation(f.firm, VERIFY_TOTAL, "invoices", f.invoice, true);
    tx_rollback();
    tx_begin();
    sql("ALTER TABLE billing.invoices DROP CONSTRAINT"
        " invoices_rule_1_4_amount_paid_between_0_and_total",
        0, NULL);
    sql("UPDATE billing.invoices SET amount_paid_cents = total_cents + 5 WHERE id = $1", 1, p);
    expect_violation(f.firm, VERIFY_TOTAL, "invoices", f.invoice, true);
    tx_rollback();
    assert_clean(f.firm);
}

static void test_amount_paid(void **state)
{
    (void)state;
    vt_firm f = seeded();
    /* Paid without money behind it. */
    sql("UPDATE billing.invoices SET amount_paid_cents = 2500, status = 'partial' WHERE id = $1", 1,
        (const char *[]){vt_i(f.invoice)});
    expect_violation(f.firm, VERIFY_AMOUNT_PAID, "invoices", f.invoice, false);
    /* Money recorded but not applied. */
    vt_firm g = seeded();
    sql("INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source)"
        " VALUES ($1, $2, 3000, 'manual')",
        2, (const char *[]){vt_i(g.firm), vt_i(g.invoice)});
    expect_violation(g.firm, VERIFY_AMOUNT_PAID, "invoices", g.invoice, false);
    /* A refunded total below the refunds recorded. */
    vt_firm h = seeded();
    char re[80];
    snprintf(re, sizeof re, "re_%s", dbtest_unique());
    sql("INSERT INTO billing.refunds (firm_id, invoice_id, stripe_refund_id, amount_cents)"
        " VALUES ($1, $2, $3, 100)",
        3, (const char *[]){vt_i(h.firm), vt_i(h.invoice), re});
    expect_violation(h.firm, VERIFY_AMOUNT_PAID, "invoices", h.invoice, false);
}

static void test_payment_once(void **state)
{
    (void)state;
    vt_firm f = seeded();
    char pi[80], pi2[80];
    snprintf(pi, sizeof pi, "pi_%s_a", dbtest_unique());
    snprintf(pi2, sizeof pi2, "pi_%s_b", dbtest_unique());
    /* A charge that succeeded without its money being recorded. */
    int64_t att = vt_q("INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no,"
                       " kind, idempotency_key, amount_cents, stripe_payment_intent_id, status)"
                       " VALUES ($1::bigint, $2::bigint, 1, 'autopay', 'autopay:' || $2::bigint || "
                       "':1:' || $3, 10000, $3,"
                       " 'succeeded') RETURNING id",
                       3, (const char *[]){vt_i(f.firm), vt_i(f.invoice), pi});
    expect_violation(f.firm, VERIFY_PAYMENT_ONCE, "payment_attempts", att, false);
    /* A second successful charge of the same invoice: a double charge. */
    sql("INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind,"
        " idempotency_key, amount_cents, stripe_payment_intent_id, status)"
        " VALUES ($1::bigint, $2::bigint, 2, 'retry', 'retry:' || $2::bigint || ':2:' || $3, "
        "10000, $3, 'succeeded')",
        3, (const char *[]){vt_i(f.firm), vt_i(f.invoice), pi2});
    expect_violation(f.firm, VERIFY_PAYMENT_ONCE, "invoices", f.invoice, false);
    /* One PaymentIntent applied twice (the unique constraint dropped). */
    vt_firm g = seeded();
    tx_begin();
    sql("ALTER TABLE billing.payments DROP CONSTRAINT payments_stripe_payment_intent_id_unique", 0,
        NULL);
    int64_t p1 = vt_q("INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source,"
                      " stripe_payment_intent_id) VALUES ($1, $2, 0, 'stripe', $3),"
                      " ($1, $2, 0, 'stripe', $3) RETURNING id",
                      3, (const char *[]){vt_i(g.firm), vt_i(g.invoice), pi});
    expect_violation(g.firm, VERIFY_PAYMENT_ONCE, "payments", p1, true);
    tx_rollback();
    assert_clean(g.firm);
}

static void test_credit_ledger(void **state)
{
    (void)state;
    vt_firm f = seeded();
    /* A debit the balance trigger would refuse. */
    replica_on();
    sql("INSERT INTO billing.credit_ledger (firm_id, client_id, entry_type, amount_cents, use,"
        " description, created_at) VALUES ($1, $2, 'debit', 100, 'expired', 'write-off',"
        " clock_timestamp())",
        2, (const char *[]){vt_i(f.firm), vt_i(f.client)});
    replica_off();
    expect_violation(f.firm, VERIFY_CREDIT_LEDGER, "clients", f.client, false);
    /* A credit payment without its ledger debit. */
    vt_firm g = seeded();
    sql("WITH p AS (INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source)"
        " VALUES ($1, $2, 400, 'credit'))"
        " UPDATE billing.invoices SET amount_paid_cents = 400, status = 'partial' WHERE id = $2",
        2, (const char *[]){vt_i(g.firm), vt_i(g.invoice)});
    expect_violation(g.firm, VERIFY_CREDIT_LEDGER, "invoices", g.invoice, false);
}

static void test_audit(void **state)
{
    (void)state;
    vt_firm f = seeded();
    /* The creation event written twice (a message applied twice). */
    sql("SELECT billing.audit($1, 'invoice_created', 'INFO', NULL,"
        " jsonb_build_object('invoice_id', $2::bigint))",
        2, (const char *[]){vt_i(f.firm), vt_i(f.invoice)});
    expect_violation(f.firm, VERIFY_AUDIT, "invoices", f.invoice, false);
    /* A Stripe payment without its payment_received event. */
    vt_firm g = seeded();
    char pi[80];
    snprintf(pi, sizeof pi, "pi_%s_c", dbtest_unique());
    int64_t pay = vt_q("WITH p AS (INSERT INTO billing.payments (firm_id, invoice_id,"
                       " amount_cents, source, stripe_payment_intent_id)"
                       " VALUES ($1, $2, 10000, 'stripe', $3) RETURNING id),"
                       " i AS (UPDATE billing.invoices SET amount_paid_cents = 10000,"
                       " status = 'paid' WHERE id = $2) SELECT id FROM p",
                       3, (const char *[]){vt_i(g.firm), vt_i(g.invoice), pi});
    expect_violation(g.firm, VERIFY_AUDIT, "payments", pay, false);
    /* A failure counted without its payment_failed event. */
    vt_firm h = seeded();
    sql("UPDATE billing.invoices SET payment_retry_count = 1, status = 'failed' WHERE id = $1", 1,
        (const char *[]){vt_i(h.invoice)});
    expect_violation(h.firm, VERIFY_AUDIT, "invoices", h.invoice, false);
}

static vt_firm tenant_a, tenant_b, tenant_c;
static int64_t tenant_payment, tenant_audit;

static void test_tenant(void **state)
{
    (void)state;
    tenant_a = seeded();
    tenant_b = seeded();
    /* A payment of firm A on firm B's invoice: the foreign key would refuse. */
    replica_on();
    tenant_payment = vt_q("INSERT INTO billing.payments (firm_id, invoice_id, amount_cents,"
                          " source) VALUES ($1, $2, 0, 'manual') RETURNING id",
                          2, (const char *[]){vt_i(tenant_a.firm), vt_i(tenant_b.invoice)});
    replica_off();
    expect_violation(tenant_a.firm, VERIFY_TENANT, "payments", tenant_payment, false);
    /* Seen from the other side too. */
    expect_violation(tenant_b.firm, VERIFY_TENANT, "payments", tenant_payment, false);
    /* An audit event of firm A naming firm B's invoice (no key guards it). */
    tenant_audit = vt_q("SELECT billing.audit($1, 'note', 'INFO', NULL,"
                        " jsonb_build_object('invoice_id', $2::bigint))",
                        2, (const char *[]){vt_i(tenant_a.firm), vt_i(tenant_b.invoice)});
    expect_violation(tenant_a.firm, VERIFY_TENANT, "audit_events", tenant_audit, false);
    /* A line of firm A's invoice listing firm B's time entry. */
    vt_firm c = tenant_c = seeded();
    replica_on();
    int64_t line =
        vt_q("INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type,"
             " description, quantity, rate_cents, amount_cents, time_entry_ids)"
             " VALUES ($1, $2, 'adjustment', 'x', 1, 0, 0, ARRAY[$3::bigint])"
             " RETURNING id",
             3, (const char *[]){vt_i(c.invoice), vt_i(c.firm), vt_i(tenant_b.entry_open)});
    replica_off();
    expect_violation(c.firm, VERIFY_TENANT, "invoice_line_items", line, false);
}

static void test_time_entries(void **state)
{
    (void)state;
    vt_firm f = seeded();
    /* Approved, then marked invoiced without being on any line. */
    const char *p[] = {vt_i(f.entry_open), vt_i(f.invoice)};
    sql("UPDATE billing.time_entries SET approved = true, approved_by = 'x', approved_at = now()"
        " WHERE id = $1",
        1, p);
    replica_on();
    sql("UPDATE billing.time_entries SET invoice_id = $2 WHERE id = $1", 2, p);
    replica_off();
    expect_violation(f.firm, VERIFY_TIME_ENTRIES, "time_entries", f.entry_open, false);
    /* Billed but not approved (the CHECK dropped, the trigger off). */
    vt_firm g = seeded();
    tx_begin();
    sql("ALTER TABLE billing.time_entries DROP CONSTRAINT"
        " time_entries_rule_1_8_invoiced_only_when_approved",
        0, NULL);
    sql("SET LOCAL session_replication_role = replica", 0, NULL);
    sql("UPDATE billing.time_entries SET approved = false WHERE id = $1", 1,
        (const char *[]){vt_i(g.entry_billed)});
    expect_violation(g.firm, VERIFY_TIME_ENTRIES, "time_entries", g.entry_billed, true);
    tx_rollback();
    /* One entry listed on two invoices' lines. */
    vt_firm h = seeded();
    replica_on();
    sql("INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type, description,"
        " quantity, rate_cents, amount_cents, time_entry_ids)"
        " VALUES ($1, $2, 'adjustment', 'again', 1, 0, 0, ARRAY[$3::bigint])",
        3, (const char *[]){vt_i(h.invoice), vt_i(h.firm), vt_i(h.entry_billed)});
    replica_off();
    expect_violation(h.firm, VERIFY_TIME_ENTRIES, "time_entries", h.entry_billed, false);
    assert_clean(g.firm);
}

static void test_auto_invoice(void **state)
{
    (void)state;
    vt_firm f = seeded();
    const char *p[] = {vt_i(f.firm), vt_i(f.client), vt_i(f.engagement)};
    /* Two periods of one engagement that overlap (the same days twice). */
    int64_t second = vt_q(
        "INSERT INTO billing.invoices (firm_id, client_id, engagement_id, invoice_number, status,"
        " issue_date, due_date, period_start, period_end, is_auto_generated)"
        " VALUES ($1::bigint, $2::bigint, $3::bigint, 'PKG-' || $3::bigint || '-2026-04-01', "
        "'sent', '2026-04-01', '2026-05-01',"
        "  '2026-04-01', '2026-04-30', true),"
        " ($1, $2, $3, 'PKG-' || $3::bigint || '-2026-04-15', 'sent', '2026-04-15', '2026-05-15',"
        "  '2026-04-15', '2026-05-14', true) RETURNING id",
        3, p);
    (void)second;
    expect_violation(f.firm, VERIFY_AUTO_INVOICE, "invoices", 0, false);
    /* The same period start twice (the unique index dropped). */
    vt_firm g = seeded();
    const char *pg[] = {vt_i(g.firm), vt_i(g.client), vt_i(g.engagement)};
    tx_begin();
    sql("DROP INDEX billing.invoices_rule_1_6_one_auto_invoice_per_engagement_period", 0, NULL);
    sql("INSERT INTO billing.invoices (firm_id, client_id, engagement_id, invoice_number, status,"
        " issue_date, due_date, period_start, period_end, is_auto_generated)"
        " VALUES ($1, $2, $3, 'PKG-A', 'sent', '2026-04-01', '2026-05-01', '2026-04-01',"
        "  '2026-04-30', true),"
        " ($1, $2, $3, 'PKG-B', 'sent', '2026-04-01', '2026-05-01', '2026-04-01',"
        "  '2026-04-30', true)",
        3, pg);
    expect_violation(g.firm, VERIFY_AUTO_INVOICE, "invoices", 0, true);
    tx_rollback();
    assert_clean(g.firm);
}

/* ---- scoping and the command ---------------------------------------------- */

static void test_firm_scope_and_cli(void **state)
{
    (void)state;
    /* The clean firm stays clean whatever the other firms hold. */
    assert_clean(clean_firm);
    assert_int_equal(vt_ctl("verify", "--firm-id", vt_i(clean_firm), NULL), 0);
    assert_non_null(strstr(vt_out, "clean"));
    assert_null(strstr(vt_out, "VIOLATION"));

    /* Firm A: the cross-firm payment and audit event, with their ids. */
    assert_int_equal(vt_ctl("verify", "--firm-id", vt_i(tenant_a.firm), NULL), 1);
    char needle[64];
    snprintf(needle, sizeof needle, "payments %lld:", (long long)tenant_payment);
    assert_non_null(strstr(vt_out, needle));
    snprintf(needle, sizeof needle, "audit_events %lld:", (long long)tenant_audit);
    assert_non_null(strstr(vt_out, needle));
    assert_non_null(strstr(vt_out, "VIOLATION tenant"));

    assert_int_equal(vt_ctl("--json", "verify", "--firm-id", vt_i(tenant_b.firm), NULL), 1);
    json_error_t je;
    json_t *j = json_loads(vt_out, 0, &je);
    assert_non_null(j);
    assert_true(json_is_false(json_object_get(j, "clean")));
    assert_int_equal(json_integer_value(json_object_get(j, "firm_id")), tenant_b.firm);
    assert_true(json_integer_value(json_object_get(json_object_get(j, "checks"), "tenant")) >= 1);
    bool seen = false;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "details"), i, v)
    {
        if (json_integer_value(json_object_get(v, "id")) == tenant_payment &&
            strcmp(json_string_value(json_object_get(v, "table")), "payments") == 0)
            seen = true;
        /* Only rows of firm B or rows of A and C that point at firm B. */
        int64_t f = json_integer_value(json_object_get(v, "firm_id"));
        assert_true(f == tenant_b.firm || f == tenant_a.firm || f == tenant_c.firm);
    }
    assert_true(seen);
    json_decref(j);

    /* The whole database counts at least what the firms do. */
    verify_summary all, a;
    char err[512];
    assert_int_equal(verify_run(vt_db(), 0, NULL, NULL, 0, &all, err, sizeof err), DB_OK);
    assert_int_equal(verify_run(vt_db(), tenant_a.firm, NULL, NULL, 0, &a, err, sizeof err), DB_OK);
    assert_true(all.violations >= a.violations && a.violations >= 2);
    /* --limit caps the listing, not the count. */
    assert_int_equal(vt_ctl("verify", "--limit", "1", NULL), 1);

    /* Usage and refusals. */
    assert_int_equal(vt_ctl("verify", "--firm-id", "abc", NULL), 2);
    assert_int_equal(vt_ctl("verify", "--bogus", NULL), 2);
    assert_int_equal(vt_ctl("verify", "--firm-id", "999999999999", NULL), 1);
    assert_non_null(strstr(vt_err, "no such firm"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_firm_of_real_writers),
        cmocka_unit_test(test_line_items_sum),
        cmocka_unit_test(test_total),
        cmocka_unit_test(test_amount_paid),
        cmocka_unit_test(test_payment_once),
        cmocka_unit_test(test_credit_ledger),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_tenant),
        cmocka_unit_test(test_time_entries),
        cmocka_unit_test(test_auto_invoice),
        cmocka_unit_test(test_firm_scope_and_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
