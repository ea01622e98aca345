/* test_invariants.c: the database itself enforces BILLING_RULES section 1 and
 * the credit ledger rules of section 4. For each rule, a write that breaks it
 * is refused with an error naming the rule, and a valid write passes.
 *
 * Needs DATABASE_URL pointing at a migrated database. Every test creates its
 * own firms (unique slugs) and unique external ids, so the suite can run any
 * number of times on the same database, also next to other test programs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/dbtest.h"

/* ---- helpers ------------------------------------------------------------ */

/* An id as a text parameter. Returns one of a ring of buffers, so several
 * calls can appear in one parameter list. */
static const char *I(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

/* A unique string with a prefix (for invoice numbers and Stripe ids). */
static const char *U(const char *prefix)
{
    static char ring[16][96];
    static unsigned next;
    char *b = ring[next++ % 16];
    snprintf(b, sizeof ring[0], "%s%s", prefix, dbtest_unique());
    return b;
}

static int64_t mk_engagement(PGconn *c, int64_t firm, int64_t client, const char *mode,
                             const char *fee, const char *rate)
{
    const char *p[] = {I(firm), I(client), mode, fee, rate};
    return dbtest_ok(c,
                     "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
                     "package_fee_cents, hourly_rate_cents, start_date) "
                     "VALUES ($1, $2, 'Advisory', $3, $4, $5, '2026-01-01') RETURNING id",
                     5, p);
}

static int64_t mk_dated_engagement(PGconn *c, int64_t firm, int64_t client, const char *start,
                                   const char *status)
{
    const char *p[] = {I(firm), I(client), start, status};
    return dbtest_ok(c,
                     "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
                     "package_fee_cents, start_date, status) "
                     "VALUES ($1, $2, 'Retainer', 'package', 100000, $3, $4) RETURNING id",
                     4, p);
}

/* A zero-amount manual invoice; eng 0 = no engagement given (auto-linked). */
static int64_t mk_invoice(PGconn *c, int64_t firm, int64_t client, int64_t eng)
{
    const char *p[] = {I(firm), I(client), eng ? I(eng) : NULL, U("INV-")};
    return dbtest_ok(c,
                     "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                     "invoice_number) VALUES ($1, $2, $3, $4) RETURNING id",
                     4, p);
}

/* An invoice with an engagement override and no engagement. */
static int64_t mk_override_invoice(PGconn *c, int64_t firm, int64_t client)
{
    const char *p[] = {I(firm), I(client), U("OVR-")};
    return dbtest_ok(c,
                     "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, "
                     "engagement_override, engagement_override_reason, engagement_override_by) "
                     "VALUES ($1, $2, $3, true, 'one-off advisory call', 'admin@firm.test') "
                     "RETURNING id",
                     3, p);
}

/* Adds a line and raises the invoice's subtotal and total by its amount in
 * one statement, so rule 1.4 holds when the statement commits. te_ids is a
 * bigint[] literal ("{1,2}") or NULL. Returns the line id. */
static const char *const ADD_LINE_SQL =
    "WITH l AS (INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
    "description, quantity, rate_cents, amount_cents, time_entry_ids) "
    "SELECT i.id, i.firm_id, $2, 'line', 1, $3::bigint, $3::bigint, "
    "coalesce($4::bigint[], '{}') FROM billing.invoices i WHERE i.id = $1 "
    "RETURNING id, invoice_id, amount_cents), "
    "u AS (UPDATE billing.invoices i SET subtotal_cents = i.subtotal_cents + l.amount_cents, "
    "total_cents = i.total_cents + l.amount_cents FROM l WHERE i.id = l.invoice_id) "
    "SELECT id FROM l";

static int64_t add_line(PGconn *c, int64_t inv, const char *type, int64_t amount,
                        const char *te_ids)
{
    const char *p[] = {I(inv), type, I(amount), te_ids};
    return dbtest_ok(c, ADD_LINE_SQL, 4, p);
}

static void add_line_refused(PGconn *c, const char *expect, int64_t inv, const char *type,
                             int64_t amount)
{
    const char *p[] = {I(inv), type, I(amount), NULL};
    dbtest_refused(c, expect, ADD_LINE_SQL, 4, p);
}

static int64_t mk_time_entry(PGconn *c, int64_t firm, int64_t eng, bool approved)
{
    const char *p[] = {I(firm), I(eng), approved ? "true" : "false"};
    return dbtest_ok(c,
                     "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, "
                     "hours, description, approved) "
                     "VALUES ($1, $2, 'ana', '2026-02-10', 1.50, 'review', $3) RETURNING id",
                     3, p);
}

static int64_t mk_credit(PGconn *c, int64_t firm, int64_t client, int64_t amount)
{
    const char *p[] = {I(firm), I(client), I(amount)};
    return dbtest_ok(c,
                     "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                     "amount_cents, source, description) "
                     "VALUES ($1, $2, 'credit', $3, 'promotional', 'welcome credit') RETURNING id",
                     3, p);
}

static const char *const DEBIT_SQL =
    "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, amount_cents, use, "
    "description) VALUES ($1, $2, 'debit', $3, 'expired', 'expiry') RETURNING id";

static int64_t balance(PGconn *c, int64_t client)
{
    const char *p[] = {I(client)};
    return dbtest_ok(c,
                     "SELECT coalesce(sum(CASE entry_type WHEN 'credit' THEN amount_cents "
                     "ELSE -amount_cents END), 0) FROM billing.credit_ledger WHERE client_id = $1",
                     1, p);
}

static int64_t mk_audit(PGconn *c, int64_t firm)
{
    const char *p[] = {firm ? I(firm) : NULL};
    return dbtest_ok(c,
                     "INSERT INTO billing.audit_events(firm_id, category, action, severity, "
                     "metadata) VALUES ($1, 'billing', 'test_event', 'INFO', '{\"k\":1}') "
                     "RETURNING id",
                     1, p);
}

/* ---- 1.1 / 1.3: one client of the invoice's firm; no cross-firm references */

static void test_rule_1_1_and_1_3_tenant_consistency(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t fa = dbtest_firm(c), fb = dbtest_firm(c);
    int64_t ca = dbtest_client(c, fa), cb = dbtest_client(c, fb);
    int64_t ea = mk_engagement(c, fa, ca, "package", "100000", NULL);
    int64_t eb = mk_engagement(c, fb, cb, "package", "100000", NULL);

    /* 1.1: an invoice has a client... */
    {
        const char *p[] = {I(fa), U("INV-")};
        dbtest_refused(c, "invoices_rule_1_1_has_client",
                       "INSERT INTO billing.invoices(firm_id, invoice_number, engagement_override, "
                       "engagement_override_reason, engagement_override_by) "
                       "VALUES ($1, $2, true, 'r', 'admin')",
                       2, p);
    }
    /* ...of its own firm (override set so only the client reference is at stake). */
    {
        const char *p[] = {I(fa), I(cb), U("INV-")};
        dbtest_refused(c, "invoices_rule_1_3_client_same_firm",
                       "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, "
                       "engagement_override, engagement_override_reason, engagement_override_by) "
                       "VALUES ($1, $2, $3, true, 'r', 'admin')",
                       3, p);
    }
    /* An engagement of another firm. */
    {
        const char *p[] = {I(fa), I(ca), I(eb), U("INV-")};
        dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm",
                       "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                       "invoice_number) VALUES ($1, $2, $3, $4)",
                       4, p);
    }
    /* The valid invoice. */
    int64_t inv = mk_invoice(c, fa, ca, ea);
    assert_true(inv > 0);
    /* Moving it to the other firm breaks the client reference. */
    {
        const char *p[] = {I(fb), I(inv)};
        dbtest_refused(c, "rule_1_", "UPDATE billing.invoices SET firm_id = $1 WHERE id = $2", 2,
                       p);
    }

    /* Engagement of a client of another firm. */
    {
        const char *p[] = {I(fa), I(cb)};
        dbtest_refused(c, "engagements_rule_1_3_client_same_firm",
                       "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
                       "package_fee_cents) VALUES ($1, $2, 'x', 'package', 1)",
                       2, p);
    }
    /* Time entry on another firm's engagement. */
    {
        const char *p[] = {I(fa), I(eb)};
        dbtest_refused(c, "time_entries_rule_1_3_engagement_same_firm",
                       "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, "
                       "hours) VALUES ($1, $2, 'ana', '2026-02-01', 1.00)",
                       2, p);
    }
    /* Line item, payment, attempt, refund, dispute of firm B on firm A's invoice. */
    {
        const char *p[] = {I(inv), I(fb)};
        dbtest_refused(c, "invoice_line_items_rule_1_3_invoice_same_firm",
                       "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                       "description, amount_cents) VALUES ($1, $2, 'adjustment', 'x', 0)",
                       2, p);
        dbtest_refused(c, "payments_rule_1_3_invoice_same_firm",
                       "INSERT INTO billing.payments(invoice_id, firm_id, amount_cents, source) "
                       "VALUES ($1, $2, 0, 'manual')",
                       2, p);
        const char *pa[] = {I(inv), I(fb), U("idem-")};
        dbtest_refused(
            c, "payment_attempts_rule_1_3_invoice_same_firm",
            "INSERT INTO billing.payment_attempts(invoice_id, firm_id, attempt_no, kind, "
            "idempotency_key, amount_cents) VALUES ($1, $2, 1, 'manual', $3, 0)",
            3, pa);
        const char *pr[] = {I(inv), I(fb), U("re_")};
        dbtest_refused(c, "refunds_rule_1_3_invoice_same_firm",
                       "INSERT INTO billing.refunds(invoice_id, firm_id, stripe_refund_id, "
                       "amount_cents) VALUES ($1, $2, $3, 0)",
                       3, pr);
        const char *pd[] = {I(inv), I(fb), U("dp_")};
        dbtest_refused(
            c, "payment_disputes_rule_1_3_invoice_same_firm",
            "INSERT INTO billing.payment_disputes(invoice_id, firm_id, stripe_dispute_id, "
            "amount_cents) VALUES ($1, $2, $3, 0)",
            3, pd);
    }
    /* Credit entry for another firm's client, or pointing at its audit event. */
    {
        const char *p[] = {I(fa), I(cb)};
        dbtest_refused(c, "credit_ledger_rule_1_3_client_same_firm",
                       "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                       "amount_cents, source) VALUES ($1, $2, 'credit', 100, 'promotional')",
                       2, p);
        int64_t ev_b = mk_audit(c, fb);
        const char *pe[] = {I(fa), I(ca), I(ev_b)};
        dbtest_refused(c, "credit_ledger_rule_1_3_audit_event_same_firm",
                       "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                       "amount_cents, source, audit_event_id) "
                       "VALUES ($1, $2, 'credit', 100, 'promotional', $3)",
                       3, pe);
        int64_t ev_a = mk_audit(c, fa);
        const char *pok[] = {I(fa), I(ca), I(ev_a)};
        dbtest_ok(c,
                  "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                  "amount_cents, source, audit_event_id) "
                  "VALUES ($1, $2, 'credit', 100, 'promotional', $3)",
                  3, pok);
    }
    /* Audit events: a firm that exists, or none (unmatched webhook). */
    {
        const char *p[] = {"-1"};
        dbtest_refused(c, "audit_events_rule_1_3_firm",
                       "INSERT INTO billing.audit_events(firm_id, action) VALUES ($1, 'x')", 1, p);
        assert_true(mk_audit(c, 0) > 0);
    }
    /* Same-firm children pass. */
    {
        const char *p[] = {I(inv), I(fa)};
        dbtest_ok(c,
                  "INSERT INTO billing.payments(invoice_id, firm_id, amount_cents, source) "
                  "VALUES ($1, $2, 0, 'manual')",
                  2, p);
    }
    PQfinish(c);
}

/* ---- 1.2: engagement link or override ---------------------------------- */

static void test_rule_1_2_engagement_link(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c);
    int64_t cx = dbtest_client(c, f), cy = dbtest_client(c, f), cz = dbtest_client(c, f);
    mk_dated_engagement(c, f, cx, "2025-01-01", "current");
    mk_dated_engagement(c, f, cx, "2026-03-01", "current");
    mk_dated_engagement(c, f, cx, "2026-06-01", "completed");
    /* Same latest start date, higher id: this is the current engagement. */
    int64_t want = mk_dated_engagement(c, f, cx, "2026-03-01", "current");
    int64_t ey = mk_dated_engagement(c, f, cy, "2026-01-01", "current");
    mk_dated_engagement(c, f, cz, "2026-01-01", "completed");

    /* An engagement of another client of the same firm. */
    {
        const char *p[] = {I(f), I(cx), I(ey), U("INV-")};
        dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm",
                       "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                       "invoice_number) VALUES ($1, $2, $3, $4)",
                       4, p);
    }
    /* Override needs a reason and the admin's name. */
    {
        const char *p[] = {I(f), I(cx), U("INV-")};
        dbtest_refused(c, "invoices_rule_1_2_override_needs_reason_and_admin",
                       "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, "
                       "engagement_override, engagement_override_by) "
                       "VALUES ($1, $2, $3, true, 'admin')",
                       3, p);
        dbtest_refused(c, "invoices_rule_1_2_override_needs_reason_and_admin",
                       "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, "
                       "engagement_override, engagement_override_reason) "
                       "VALUES ($1, $2, $3, true, 'one-off')",
                       3, p);
        dbtest_refused(c, "invoices_rule_1_2_override_needs_reason_and_admin",
                       "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, "
                       "engagement_override, engagement_override_reason, engagement_override_by) "
                       "VALUES ($1, $2, $3, true, '  ', 'admin')",
                       3, p);
    }
    /* A valid override keeps no engagement, even for a client that has none. */
    int64_t ovr = mk_override_invoice(c, f, cz);
    {
        const char *p[] = {I(ovr)};
        assert_null(
            dbtest_text(c, "SELECT engagement_id FROM billing.invoices WHERE id = $1", 1, p));
    }
    /* A manual invoice without an engagement is linked to the current one. */
    int64_t inv = mk_invoice(c, f, cx, 0);
    {
        const char *p[] = {I(inv)};
        assert_int_equal(
            dbtest_ok(c, "SELECT engagement_id FROM billing.invoices WHERE id = $1", 1, p), want);
    }
    /* No current engagement: refused. */
    {
        const char *p[] = {I(f), I(cz), U("INV-")};
        dbtest_refused(c, "rule 1.2 (engagement link)",
                       "INSERT INTO billing.invoices(firm_id, client_id, invoice_number) "
                       "VALUES ($1, $2, $3)",
                       3, p);
    }
    /* Unlinking later without an override: refused. */
    {
        const char *p[] = {I(inv)};
        dbtest_refused(c, "invoices_rule_1_2_engagement_or_override",
                       "UPDATE billing.invoices SET engagement_id = NULL WHERE id = $1", 1, p);
        dbtest_ok(c,
                  "UPDATE billing.invoices SET engagement_id = NULL, engagement_override = true, "
                  "engagement_override_reason = 'moved', engagement_override_by = 'admin' "
                  "WHERE id = $1",
                  1, p);
    }
    PQfinish(c);
}

/* ---- 1.4: amounts ------------------------------------------------------- */

static void test_rule_1_4_amounts(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f);
    int64_t e = mk_engagement(c, f, cl, "package", "100000", NULL);

    /* total = subtotal + tax. */
    {
        const char *p[] = {I(f), I(cl), I(e), U("INV-")};
        dbtest_refused(c, "invoices_rule_1_4_total_equals_subtotal_plus_tax",
                       "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                       "invoice_number, subtotal_cents, tax_cents, total_cents) "
                       "VALUES ($1, $2, $3, $4, 0, 100, 50)",
                       4, p);
        dbtest_refused(c, "invoices_rule_1_4_amounts_not_negative",
                       "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                       "invoice_number, subtotal_cents, tax_cents, total_cents) "
                       "VALUES ($1, $2, $3, $4, 200, -100, 100)",
                       4, p);
    }

    /* subtotal = sum of lines, checked at COMMIT. */
    const char *num_bad = U("INV-");
    char bad[96];
    snprintf(bad, sizeof bad, "%s", num_bad);
    {
        dbtest_ok(c, "BEGIN", 0, NULL);
        const char *p[] = {I(f), I(cl), I(e), bad};
        int64_t inv = dbtest_ok(c,
                                "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                                "invoice_number, subtotal_cents, tax_cents, total_cents) "
                                "VALUES ($1, $2, $3, $4, 1000, 0, 1000) RETURNING id",
                                4, p);
        const char *pl[] = {I(inv), I(f)};
        dbtest_ok(c,
                  "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                  "description, amount_cents) VALUES ($1, $2, 'package_fee', 'fee', 900)",
                  2, pl);
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)", "COMMIT", 0, NULL);
        const char *pn[] = {bad};
        assert_int_equal(
            dbtest_ok(c, "SELECT count(*) FROM billing.invoices WHERE invoice_number = $1", 1, pn),
            0);
    }
    /* The same, consistent, commits: 1000 + 500 lines, tax 150. */
    int64_t inv;
    {
        dbtest_ok(c, "BEGIN", 0, NULL);
        const char *p[] = {I(f), I(cl), I(e), U("INV-")};
        inv = dbtest_ok(c,
                        "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                        "invoice_number, subtotal_cents, tax_cents, total_cents) "
                        "VALUES ($1, $2, $3, $4, 1500, 150, 1650) RETURNING id",
                        4, p);
        const char *pl[] = {I(inv), I(f)};
        dbtest_ok(c,
                  "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                  "description, amount_cents) VALUES ($1, $2, 'package_fee', 'fee', 1000), "
                  "($1, $2, 'adjustment', 'extra', 500)",
                  2, pl);
        dbtest_ok(c, "COMMIT", 0, NULL);
    }
    /* Changing a side alone (autocommit: checked at the statement's end). */
    {
        const char *p[] = {I(inv)};
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)",
                       "UPDATE billing.invoices SET subtotal_cents = 1400, total_cents = 1550 "
                       "WHERE id = $1",
                       1, p);
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)",
                       "DELETE FROM billing.invoice_line_items WHERE invoice_id = $1 "
                       "AND line_type = 'adjustment'",
                       1, p);
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)",
                       "UPDATE billing.invoice_line_items SET amount_cents = 499 "
                       "WHERE invoice_id = $1 AND line_type = 'adjustment'",
                       1, p);
        dbtest_refused(c, "invoices_rule_1_4_total_equals_subtotal_plus_tax",
                       "UPDATE billing.invoices SET total_cents = 1651 WHERE id = $1", 1, p);
    }
    /* Lines are never negative. */
    add_line_refused(c, "invoice_line_items_rule_1_4_amounts_not_negative", inv, "adjustment",
                     -100);
    assert_true(add_line(c, inv, "adjustment", 100, NULL) > 0); /* now 1600 + 150 = 1750 */

    /* 0 <= amount_paid <= total. */
    {
        const char *p[] = {I(inv)};
        dbtest_refused(c, "invoices_rule_1_4_amount_paid_between_0_and_total",
                       "UPDATE billing.invoices SET amount_paid_cents = 1751 WHERE id = $1", 1, p);
        dbtest_refused(c, "invoices_rule_1_4_amount_paid_between_0_and_total",
                       "UPDATE billing.invoices SET amount_paid_cents = -1 WHERE id = $1", 1, p);
        dbtest_refused(c, "invoices_rule_1_4_amounts_not_negative",
                       "UPDATE billing.invoices SET refunded_cents = -1 WHERE id = $1", 1, p);
        dbtest_ok(c,
                  "UPDATE billing.invoices SET amount_paid_cents = 1750, status = 'paid' "
                  "WHERE id = $1",
                  1, p);
        assert_string_equal(dbtest_text(c,
                                        "SELECT subtotal_cents || '/' || tax_cents || '/' || "
                                        "total_cents FROM billing.invoices WHERE id = $1",
                                        1, p),
                            "1600/150/1750");
    }
    /* Other money columns are never negative either. */
    {
        const char *p[] = {I(inv), I(f)};
        dbtest_refused(c, "payments_rule_1_4_amount_not_negative",
                       "INSERT INTO billing.payments(invoice_id, firm_id, amount_cents, source) "
                       "VALUES ($1, $2, -5, 'manual')",
                       2, p);
        const char *pe[] = {I(f), I(cl)};
        dbtest_refused(c, "engagements_rule_1_4_amounts_not_negative",
                       "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
                       "package_fee_cents) VALUES ($1, $2, 'x', 'package', -1)",
                       2, pe);
    }
    PQfinish(c);
}

/* ---- 1.5: pricing mode -------------------------------------------------- */

static void test_rule_1_5_pricing_mode(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f);
    const char *ins = "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
                      "package_fee_cents, hourly_rate_cents) VALUES ($1, $2, 'x', $3, $4, $5)";
    {
        const char *p1[] = {I(f), I(cl), "package", NULL, "15000"};
        dbtest_refused(c, "engagements_rule_1_5_package_needs_fee", ins, 5, p1);
        const char *p2[] = {I(f), I(cl), "hourly", "100000", NULL};
        dbtest_refused(c, "engagements_rule_1_5_hourly_needs_rate", ins, 5, p2);
        const char *p3[] = {I(f), I(cl), "mixed", "100000", NULL};
        dbtest_refused(c, "engagements_rule_1_5_hourly_needs_rate", ins, 5, p3);
        const char *p4[] = {I(f), I(cl), "mixed", NULL, "15000"};
        dbtest_refused(c, "engagements_rule_1_5_package_needs_fee", ins, 5, p4);
    }
    int64_t ep = mk_engagement(c, f, cl, "package", "100000", NULL);
    int64_t eh = mk_engagement(c, f, cl, "hourly", NULL, "15000");
    int64_t em = mk_engagement(c, f, cl, "mixed", "100000", "15000");
    /* Removing the fee of a package engagement later. */
    {
        const char *p[] = {I(ep)};
        dbtest_refused(c, "engagements_rule_1_5_package_needs_fee",
                       "UPDATE billing.engagements SET package_fee_cents = NULL WHERE id = $1", 1,
                       p);
    }

    int64_t ip = mk_invoice(c, f, cl, ep);
    add_line_refused(c, "rule 1.5 (pricing mode)", ip, "hourly", 15000);
    assert_true(add_line(c, ip, "package_fee", 100000, NULL) > 0);
    assert_true(add_line(c, ip, "adjustment", 500, NULL) > 0);

    int64_t ih = mk_invoice(c, f, cl, eh);
    add_line_refused(c, "rule 1.5 (pricing mode)", ih, "package_fee", 100000);
    assert_true(add_line(c, ih, "hourly", 15000, NULL) > 0);
    assert_true(add_line(c, ih, "adjustment", 0, NULL) > 0);

    int64_t im = mk_invoice(c, f, cl, em);
    assert_true(add_line(c, im, "package_fee", 100000, NULL) > 0);
    assert_true(add_line(c, im, "hourly", 15000, NULL) > 0);

    /* Overridden, no engagement: any line type. */
    int64_t io = mk_override_invoice(c, f, cl);
    assert_true(add_line(c, io, "package_fee", 1000, NULL) > 0);
    assert_true(add_line(c, io, "hourly", 2000, NULL) > 0);

    /* A line retyped, an invoice relinked, an engagement repriced later. */
    {
        const char *p[] = {I(ip)};
        dbtest_refused(c, "rule 1.5 (pricing mode)",
                       "UPDATE billing.invoice_line_items SET line_type = 'hourly' "
                       "WHERE invoice_id = $1 AND line_type = 'package_fee'",
                       1, p);
        const char *pr[] = {I(eh), I(im)};
        dbtest_refused(c, "rule 1.5 (pricing mode)",
                       "UPDATE billing.invoices SET engagement_id = $1 WHERE id = $2", 2, pr);
        const char *pe[] = {I(em)};
        dbtest_refused(c, "rule 1.5 (pricing mode)",
                       "UPDATE billing.engagements SET pricing_mode = 'package' WHERE id = $1", 1,
                       pe);
        /* Repricing an engagement whose invoices still fit is fine. */
        const char *pp[] = {I(ep)};
        dbtest_ok(c,
                  "UPDATE billing.engagements SET pricing_mode = 'mixed', hourly_rate_cents = 9000 "
                  "WHERE id = $1",
                  1, pp);
    }
    PQfinish(c);
}

/* ---- 1.6: one auto-generated invoice per (engagement, period start) ----- */

static void test_rule_1_6_one_auto_invoice_per_period(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f);
    int64_t e = mk_engagement(c, f, cl, "package", "100000", NULL);
    const char *ins = "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                      "invoice_number, status, is_auto_generated, period_start, period_end) "
                      "VALUES ($1, $2, $3, $4, 'sent', $5, $6::date, "
                      "($6::date + interval '1 month' - interval '1 day')::date) RETURNING id";
    {
        const char *p[] = {I(f), I(cl), I(e), U("PKG-"), "true", "2026-03-01"};
        assert_true(dbtest_ok(c, ins, 6, p) > 0);
    }
    {
        const char *p[] = {I(f), I(cl), I(e), U("PKG-"), "true", "2026-03-01"};
        dbtest_refused(c, "invoices_rule_1_6_one_auto_invoice_per_engagement_period", ins, 6, p);
    }
    {
        const char *p[] = {I(f), I(cl), I(e), U("PKG-"), "true", "2026-04-01"};
        assert_true(dbtest_ok(c, ins, 6, p) > 0);
    }
    { /* A manual invoice for the same period is not auto-generated. */
        const char *p[] = {I(f), I(cl), I(e), U("MAN-"), "false", "2026-03-01"};
        assert_true(dbtest_ok(c, ins, 6, p) > 0);
    }
    { /* An auto-generated invoice must say its engagement and period. */
        const char *p[] = {I(f), I(cl), I(e), U("PKG-")};
        dbtest_refused(c, "invoices_rule_1_6_auto_invoice_needs_engagement_and_period",
                       "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                       "invoice_number, is_auto_generated) VALUES ($1, $2, $3, $4, true)",
                       4, p);
    }
    PQfinish(c);
}

/* ---- 1.7: append-only ledger and audit trail ----------------------------- */

static void test_rule_1_7_append_only(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f);
    int64_t ev = mk_audit(c, f);
    int64_t cr = mk_credit(c, f, cl, 1000);
    {
        const char *p[] = {I(ev)};
        dbtest_refused(c, "rule 1.7 (append-only)",
                       "UPDATE billing.audit_events SET severity = 'CRITICAL' WHERE id = $1", 1, p);
        dbtest_refused(c, "rule 1.7 (append-only)",
                       "DELETE FROM billing.audit_events WHERE id = $1", 1, p);
    }
    {
        const char *p[] = {I(cr)};
        dbtest_refused(c, "rule 1.7 (append-only)",
                       "UPDATE billing.credit_ledger SET amount_cents = 1 WHERE id = $1", 1, p);
        dbtest_refused(c, "rule 1.7 (append-only)",
                       "DELETE FROM billing.credit_ledger WHERE id = $1", 1, p);
    }
    /* TRUNCATE, inside a transaction so nothing could be lost. */
    dbtest_ok(c, "BEGIN", 0, NULL);
    dbtest_ok(c, "SET LOCAL lock_timeout = '10s'", 0, NULL);
    dbtest_refused(c, "rule 1.7 (append-only)", "TRUNCATE billing.credit_ledger", 0, NULL);
    dbtest_ok(c, "BEGIN", 0, NULL);
    dbtest_ok(c, "SET LOCAL lock_timeout = '10s'", 0, NULL);
    dbtest_refused(c, "rule 1.7 (append-only)", "TRUNCATE billing.audit_events CASCADE", 0, NULL);
    /* Both rows are still there, unchanged; a reversing entry is the way. */
    {
        const char *p[] = {I(cr), I(ev)};
        assert_int_equal(dbtest_ok(c,
                                   "SELECT (SELECT amount_cents FROM billing.credit_ledger "
                                   "WHERE id = $1) + (SELECT count(*) FROM billing.audit_events "
                                   "WHERE id = $2 AND severity = 'INFO')",
                                   2, p),
                         1001);
        const char *pd[] = {I(f), I(cl), I(1000)};
        dbtest_ok(c, DEBIT_SQL, 3, pd);
        assert_int_equal(balance(c, cl), 0);
    }
    PQfinish(c);
}

/* ---- 1.8: time entry approval and invoicing ------------------------------ */

static void test_rule_1_8_time_entries(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f), other = dbtest_client(c, f);
    int64_t e1 = mk_engagement(c, f, cl, "hourly", NULL, "15000");
    int64_t e2 = mk_engagement(c, f, cl, "hourly", NULL, "15000");
    int64_t i1 = mk_invoice(c, f, cl, e1), i1b = mk_invoice(c, f, cl, e1);
    int64_t i2 = mk_invoice(c, f, cl, e2);
    const char *set_inv = "UPDATE billing.time_entries SET invoice_id = $1 WHERE id = $2";

    int64_t t = mk_time_entry(c, f, e1, false);
    {
        const char *p[] = {I(t)};
        assert_string_equal(dbtest_text(c,
                                        "SELECT approved FROM billing.time_entries "
                                        "WHERE id = $1",
                                        1, p),
                            "f");
    }
    /* Not approved: cannot be invoiced (by update or directly on insert). */
    {
        const char *p[] = {I(i1), I(t)};
        dbtest_refused(c, "rule 1.8 (approval first)", set_inv, 2, p);
        const char *pi[] = {I(f), I(e1), I(i1)};
        dbtest_refused(c, "rule 1.8",
                       "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, "
                       "hours, invoice_id) VALUES ($1, $2, 'ana', '2026-02-01', 1.00, $3)",
                       3, pi);
    }
    {
        const char *p[] = {I(t)};
        dbtest_ok(c,
                  "UPDATE billing.time_entries SET approved = true, approved_by = 'lead', "
                  "approved_at = now() WHERE id = $1",
                  1, p);
    }
    /* Only on an invoice of its own engagement. */
    {
        const char *p[] = {I(i2), I(t)};
        dbtest_refused(c, "rule 1.8 (same engagement)", set_inv, 2, p);
        const char *ok[] = {I(i1), I(t)};
        dbtest_ok(c, set_inv, 2, ok);
    }
    /* Invoiced: approval locked, invoiced once, billed facts frozen, kept. */
    {
        const char *p[] = {I(t)};
        dbtest_refused(c, "rule 1.8 (approval locked)",
                       "UPDATE billing.time_entries SET approved = false WHERE id = $1", 1, p);
        const char *pm[] = {I(i1b), I(t)};
        dbtest_refused(c, "rule 1.8 (invoiced once)", set_inv, 2, pm);
        dbtest_refused(c, "rule 1.8 (invoiced once)",
                       "UPDATE billing.time_entries SET invoice_id = NULL WHERE id = $1", 1, p);
        dbtest_refused(c, "rule 1.8 (invoiced once)",
                       "UPDATE billing.time_entries SET hours = 9.00 WHERE id = $1", 1, p);
        dbtest_refused(c, "rule 1.8 (invoiced once)",
                       "DELETE FROM billing.time_entries WHERE id = $1", 1, p);
        /* Harmless edits still pass. */
        dbtest_ok(c,
                  "UPDATE billing.time_entries SET description = 'review (final)' "
                  "WHERE id = $1",
                  1, p);
    }
    /* An approved entry not yet invoiced can be unapproved. */
    int64_t t2 = mk_time_entry(c, f, e1, true);
    {
        const char *p[] = {I(t2)};
        dbtest_ok(c, "UPDATE billing.time_entries SET approved = false WHERE id = $1", 1, p);
        dbtest_ok(c, "UPDATE billing.time_entries SET approved = true WHERE id = $1", 1, p);
    }
    /* A line listing an entry that is not marked on its invoice: refused at
     * COMMIT; listing and marking in one transaction commits. */
    {
        char ids[48];
        snprintf(ids, sizeof ids, "{%lld}", (long long)t2);
        dbtest_ok(c, "BEGIN", 0, NULL);
        add_line(c, i1b, "hourly", 22500, ids);
        dbtest_refused(c, "rule 1.8 (invoiced once)", "COMMIT", 0, NULL);

        dbtest_ok(c, "BEGIN", 0, NULL);
        add_line(c, i1b, "hourly", 22500, ids);
        const char *p[] = {I(i1b), I(t2)};
        dbtest_ok(c, set_inv, 2, p);
        dbtest_ok(c, "COMMIT", 0, NULL);
        /* It is billed now: no second line on another invoice of e1. */
        dbtest_ok(c, "BEGIN", 0, NULL);
        add_line(c, i1, "hourly", 22500, ids);
        dbtest_refused(c, "rule 1.8 (invoiced once)", "COMMIT", 0, NULL);
    }
    /* Overridden invoices: same client only. */
    {
        int64_t t3 = mk_time_entry(c, f, e2, true);
        int64_t io = mk_override_invoice(c, f, cl);
        int64_t io_other = mk_override_invoice(c, f, other);
        const char *pbad[] = {I(io_other), I(t3)};
        dbtest_refused(c, "rule 1.8 (same engagement)", set_inv, 2, pbad);
        const char *pok[] = {I(io), I(t3)};
        dbtest_ok(c, set_inv, 2, pok);
    }
    PQfinish(c);
}

/* ---- section 4: credit ledger -------------------------------------------- */

static const char *const CREDIT_SQL =
    "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, amount_cents, source, "
    "use, reason, approved_by, description) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'test') RETURNING id";

/* Waits until the backend pid is blocked on a lock; false after ~10 s. c must
 * not be inside a transaction (pg_stat_activity is a per-transaction snapshot). */
static bool wait_until_blocked(PGconn *c, int pid)
{
    char p0[24];
    snprintf(p0, sizeof p0, "%d", pid);
    const char *p[] = {p0};
    for (int i = 0; i < 1000; i++) {
        if (dbtest_ok(c,
                      "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int "
                      "AND wait_event_type = 'Lock'",
                      1, p) > 0)
            return true;
        usleep(10000);
    }
    return false;
}

static void test_rule_4_credit_ledger(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f);
    char F[24], C[24];
    snprintf(F, sizeof F, "%lld", (long long)f);
    snprintf(C, sizeof C, "%lld", (long long)cl);
    {
        const char *p1[] = {F, C, "credit", "1000", "goodwill", NULL, NULL, "finance lead"};
        dbtest_refused(c, "credit_ledger_rule_4_goodwill_needs_reason_and_approver", CREDIT_SQL, 8,
                       p1);
        const char *p2[] = {F, C, "credit", "1000", "goodwill", NULL, "late delivery", NULL};
        dbtest_refused(c, "credit_ledger_rule_4_goodwill_needs_reason_and_approver", CREDIT_SQL, 8,
                       p2);
        const char *p3[] = {F, C, "credit", "1000", "correction", NULL, " ", "finance lead"};
        dbtest_refused(c, "credit_ledger_rule_4_goodwill_needs_reason_and_approver", CREDIT_SQL, 8,
                       p3);
        const char *p4[] = {F, C, "credit", "1000", "gift", NULL, NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_credit_needs_source", CREDIT_SQL, 8, p4);
        const char *p5[] = {F, C, "credit", "1000", NULL, NULL, NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_credit_needs_source", CREDIT_SQL, 8, p5);
        const char *p6[] = {F, C, "credit", "1000", "promotional", "expired", NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_credit_needs_source", CREDIT_SQL, 8, p6);
        const char *p7[] = {F, C, "credit", "0", "promotional", NULL, NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_amount_positive", CREDIT_SQL, 8, p7);
        const char *p8[] = {F, C, "refund", "10", "promotional", NULL, NULL, NULL};
        dbtest_refused(c, "credit_ledger_entry_type_valid", CREDIT_SQL, 8, p8);
        const char *ok[] = {F,          C,    "credit",        "1000",
                            "goodwill", NULL, "late delivery", "finance lead"};
        dbtest_ok(c, CREDIT_SQL, 8, ok);
    }
    assert_int_equal(balance(c, cl), 1000);
    { /* Debits name a use and no source (balance is enough for these). */
        const char *p1[] = {F, C, "debit", "10", "promotional", "expired", NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_debit_needs_use", CREDIT_SQL, 8, p1);
        const char *p2[] = {F, C, "debit", "10", NULL, NULL, NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_debit_needs_use", CREDIT_SQL, 8, p2);
        const char *p3[] = {F, C, "debit", "10", NULL, "gift", NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_debit_needs_use", CREDIT_SQL, 8, p3);
        const char *p4[] = {F, C, "debit", "10", NULL, "invoice_payment", NULL, NULL};
        dbtest_refused(c, "credit_ledger_rule_4_payment_debit_names_invoice", CREDIT_SQL, 8, p4);
    }
    /* The balance never goes negative. */
    {
        const char *d600[] = {F, C, I(600)};
        dbtest_ok(c, DEBIT_SQL, 3, d600);
        const char *d500[] = {F, C, I(500)};
        dbtest_refused(c, "rule 4 (credit balance)", DEBIT_SQL, 3, d500);
        const char *d400[] = {F, C, I(400)};
        dbtest_ok(c, DEBIT_SQL, 3, d400);
        const char *d1[] = {F, C, I(1)};
        dbtest_refused(c, "rule 4 (credit balance)", DEBIT_SQL, 3, d1);
        assert_int_equal(balance(c, cl), 0);
    }
    /* An invoice payment from credit names an invoice of the same client. */
    {
        int64_t e = mk_engagement(c, f, cl, "package", "100000", NULL);
        int64_t inv = mk_invoice(c, f, cl, e);
        int64_t cl2 = dbtest_client(c, f);
        mk_credit(c, f, cl2, 300);
        const char *pbad[] = {I(f), I(cl2), I(inv)};
        dbtest_refused(c, "credit_ledger_rule_1_3_applied_invoice_same_client",
                       "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                       "amount_cents, use, applied_to_invoice_id) "
                       "VALUES ($1, $2, 'debit', 100, 'invoice_payment', $3)",
                       3, pbad);
        mk_credit(c, f, cl, 300);
        const char *pok[] = {I(f), I(cl), I(inv)};
        dbtest_ok(c,
                  "INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type, "
                  "amount_cents, use, applied_to_invoice_id) "
                  "VALUES ($1, $2, 'debit', 300, 'invoice_payment', $3)",
                  3, pok);
        assert_int_equal(balance(c, cl), 0);
    }

    /* Two racing debits (READ COMMITTED): the second waits for the first and
     * then sees it. */
    PGconn *b = dbtest_connect();
    PGconn *w = dbtest_connect(); /* watches b (outside any transaction) */
    {
        int64_t rc = dbtest_client(c, f);
        mk_credit(c, f, rc, 500);
        const char *d300[] = {I(f), I(rc), I(300)};
        dbtest_ok(c, "BEGIN", 0, NULL);
        dbtest_ok(c, DEBIT_SQL, 3, d300);
        assert_int_equal(PQsendQueryParams(b, DEBIT_SQL, 3, NULL, d300, NULL, NULL, 0), 1);
        assert_true(wait_until_blocked(w, PQbackendPID(b)));
        dbtest_ok(c, "COMMIT", 0, NULL);
        PGresult *r = PQgetResult(b);
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        assert_non_null(strstr(PQresultErrorMessage(r), "rule 4 (credit balance)"));
        PQclear(r);
        while ((r = PQgetResult(b)) != NULL)
            PQclear(r);
        assert_int_equal(balance(c, rc), 200);
    }
    /* REPEATABLE READ: a snapshot taken before the other debit committed
     * cannot be used to overdraw; the second debit fails to serialize. */
    {
        int64_t rc = dbtest_client(c, f);
        mk_credit(c, f, rc, 500);
        const char *d300[] = {I(f), I(rc), I(300)};
        dbtest_ok(b, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL);
        assert_int_equal(balance(b, rc), 500); /* snapshot taken */
        dbtest_ok(c, DEBIT_SQL, 3, d300);
        dbtest_refused(b, "could not serialize", DEBIT_SQL, 3, d300);
        assert_int_equal(balance(c, rc), 200);
    }
    PQfinish(w);
    PQfinish(b);
    PQfinish(c);
}

/* ---- status and kind columns are checked --------------------------------- */

static void test_status_values_checked(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f);
    int64_t e = mk_engagement(c, f, cl, "package", "100000", NULL);
    int64_t inv = mk_invoice(c, f, cl, e);
    const char *P[] = {I(inv)};
    /* ('void' became a status with the invoice lifecycle, sql/012.) */
    dbtest_refused(c, "invoices_status_valid",
                   "UPDATE billing.invoices SET status = 'voided' WHERE id = $1", 1, P);
    dbtest_refused(c, "invoices_autopay_status_valid",
                   "UPDATE billing.invoices SET autopay_status = 'queued' WHERE id = $1", 1, P);
    dbtest_refused(c, "invoices_autopay_cadence_valid",
                   "UPDATE billing.invoices SET autopay_cadence = 'weekly' WHERE id = $1", 1, P);
    dbtest_refused(c, "invoices_status_before_dispute_valid",
                   "UPDATE billing.invoices SET status_before_dispute = 'gone' WHERE id = $1", 1,
                   P);
    dbtest_ok(c,
              "UPDATE billing.invoices SET status = 'disputed', status_before_dispute = 'paid', "
              "autopay_status = 'cancelled', autopay_cadence = 'on_due' WHERE id = $1",
              1, P);

    const char *PC[] = {I(cl)};
    dbtest_refused(c, "clients_status_valid",
                   "UPDATE billing.clients SET status = 'deleted' WHERE id = $1", 1, PC);
    dbtest_ok(c, "UPDATE billing.clients SET status = 'inactive' WHERE id = $1", 1, PC);

    const char *PE[] = {I(e)};
    dbtest_refused(c, "engagements_status_valid",
                   "UPDATE billing.engagements SET status = 'paused' WHERE id = $1", 1, PE);
    dbtest_refused(c, "engagements_package_fee_schedule_valid",
                   "UPDATE billing.engagements SET package_fee_schedule = 'weekly' WHERE id = $1",
                   1, PE);
    dbtest_refused(c, "engagements_autopay_cadence_valid",
                   "UPDATE billing.engagements SET autopay_cadence = 'daily' WHERE id = $1", 1, PE);
    dbtest_refused(c, "engagements_pricing_mode_valid",
                   "UPDATE billing.engagements SET pricing_mode = 'flat' WHERE id = $1", 1, PE);

    const char *PL[] = {I(inv), I(f)};
    dbtest_refused(c, "invoice_line_items_line_type_valid",
                   "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                   "description, amount_cents) VALUES ($1, $2, 'discount', 'x', 0)",
                   2, PL);
    dbtest_refused(c, "payments_source_valid",
                   "INSERT INTO billing.payments(invoice_id, firm_id, amount_cents, source) "
                   "VALUES ($1, $2, 0, 'cash')",
                   2, PL);
    {
        const char *p[] = {I(inv), I(f), U("idem-"), "cron", "processing"};
        const char *sql = "INSERT INTO billing.payment_attempts(invoice_id, firm_id, attempt_no, "
                          "kind, idempotency_key, amount_cents, status) "
                          "VALUES ($1, $2, 1, $4, $3, 100, $5)";
        dbtest_refused(c, "payment_attempts_kind_valid", sql, 5, p);
        const char *p2[] = {I(inv), I(f), U("idem-"), "autopay", "pending"};
        dbtest_refused(c, "payment_attempts_status_valid", sql, 5, p2);
        const char *p3[] = {I(inv), I(f), U("idem-"), "autopay", "transient_error"};
        dbtest_ok(c, sql, 5, p3);
    }
    {
        const char *sql = "INSERT INTO billing.payment_disputes(invoice_id, firm_id, "
                          "stripe_dispute_id, amount_cents, status, resolution) "
                          "VALUES ($1, $2, $3, 100, $4, $5)";
        const char *p1[] = {I(inv), I(f), U("dp_"), "won", NULL};
        dbtest_refused(c, "payment_disputes_status_valid", sql, 5, p1);
        const char *p2[] = {I(inv), I(f), U("dp_"), "closed", "draw"};
        dbtest_refused(c, "payment_disputes_resolution_valid", sql, 5, p2);
        const char *p3[] = {I(inv), I(f), U("dp_"), "closed", "lost"};
        dbtest_ok(c, sql, 5, p3);
    }
    {
        const char *p[] = {I(f)};
        dbtest_refused(c, "audit_events_severity_valid",
                       "INSERT INTO billing.audit_events(firm_id, action, severity) "
                       "VALUES ($1, 'x', 'DEBUG')",
                       1, p);
    }
    dbtest_refused(c, "scheduler_state_kind_valid",
                   "INSERT INTO billing.scheduler_state(kind) VALUES ('billing')", 0, NULL);
    PQfinish(c);
}

/* ---- unique numbers and external ids ------------------------------------- */

static void test_unique_numbers_and_external_ids(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t fa = dbtest_firm(c), fb = dbtest_firm(c);
    int64_t ca = dbtest_client(c, fa), cb = dbtest_client(c, fb);
    int64_t ea = mk_engagement(c, fa, ca, "package", "100000", NULL);
    int64_t eb = mk_engagement(c, fb, cb, "package", "100000", NULL);
    char num[96];
    snprintf(num, sizeof num, "%s", U("INV-"));
    const char *ins = "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                      "invoice_number) VALUES ($1, $2, $3, $4) RETURNING id";
    const char *p1[] = {I(fa), I(ca), I(ea), num};
    int64_t inv = dbtest_ok(c, ins, 4, p1);
    dbtest_refused(c, "invoices_invoice_number_unique_per_firm", ins, 4, p1);
    const char *p2[] = {I(fb), I(cb), I(eb), num};
    dbtest_ok(c, ins, 4, p2); /* the same number in another firm */

    char pi[96], re[96], dp[96], key[96];
    snprintf(pi, sizeof pi, "%s", U("pi_"));
    snprintf(re, sizeof re, "%s", U("re_"));
    snprintf(dp, sizeof dp, "%s", U("dp_"));
    snprintf(key, sizeof key, "%s", U("invoice-attempt-"));
    const char *pp[] = {I(inv), I(fa), pi};
    const char *pay = "INSERT INTO billing.payments(invoice_id, firm_id, amount_cents, source, "
                      "stripe_payment_intent_id) VALUES ($1, $2, 0, 'stripe', $3)";
    dbtest_ok(c, pay, 3, pp);
    dbtest_refused(c, "payments_stripe_payment_intent_id_unique", pay, 3, pp);
    dbtest_refused(c, "payments_stripe_needs_payment_intent",
                   "INSERT INTO billing.payments(invoice_id, firm_id, amount_cents, source) "
                   "VALUES ($1, $2, 0, 'stripe')",
                   2, pp);
    /* Credit and manual payments carry no PaymentIntent: many may. */
    for (int i = 0; i < 2; i++)
        dbtest_ok(c,
                  "INSERT INTO billing.payments(invoice_id, firm_id, amount_cents, source) "
                  "VALUES ($1, $2, 0, 'credit')",
                  2, pp);

    const char *pr[] = {I(inv), I(fa), re};
    const char *ref = "INSERT INTO billing.refunds(invoice_id, firm_id, stripe_refund_id, "
                      "amount_cents) VALUES ($1, $2, $3, 0)";
    dbtest_ok(c, ref, 3, pr);
    dbtest_refused(c, "refunds_stripe_refund_id_unique", ref, 3, pr);

    const char *pd[] = {I(inv), I(fa), dp};
    const char *dis = "INSERT INTO billing.payment_disputes(invoice_id, firm_id, "
                      "stripe_dispute_id, amount_cents) VALUES ($1, $2, $3, 0)";
    dbtest_ok(c, dis, 3, pd);
    dbtest_refused(c, "payment_disputes_stripe_dispute_id_unique", dis, 3, pd);

    /* Only an issued invoice is charged (rule 12.3, test_lifecycle). */
    dbtest_ok(c, "UPDATE billing.invoices SET status = 'sent' WHERE id = $1 RETURNING id", 1, pp);
    const char *pa[] = {I(inv), I(fa), key};
    const char *att = "INSERT INTO billing.payment_attempts(invoice_id, firm_id, attempt_no, "
                      "kind, idempotency_key, amount_cents) VALUES ($1, $2, 1, 'autopay', $3, 0)";
    dbtest_ok(c, att, 3, pa);
    dbtest_refused(c, "payment_attempts_idempotency_key_unique", att, 3, pa);
    PQfinish(c);
}

/* ---- 007: the same rules, checked per statement ---------------------------
 * 007_invoicing_speed.sql checks the INSERT paths of rules 1.4, 1.5 and 1.8
 * once per statement (transition tables) and queues only what is not
 * consistent yet for COMMIT. These cases write several rows per statement,
 * mix good and bad rows, and try to get around the COMMIT-time queue. */

/* One statement: an invoice (subtotal, tax, total) with its lines (amounts
 * given as a bigint[] literal, all of line type $5). Returns the invoice id. */
static const char *const INVOICE_WITH_LINES_SQL =
    "WITH i AS (INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
    "invoice_number, subtotal_cents, tax_cents, total_cents) "
    "VALUES ($1, $2, $3, $4, $6::bigint, 0, $6::bigint) RETURNING id, firm_id), "
    "l AS (INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
    "description, amount_cents) SELECT i.id, i.firm_id, $5, 'line', a "
    "FROM i, unnest($7::bigint[]) a RETURNING 1) "
    "SELECT id FROM i, (SELECT count(*) FROM l) n";

static void test_rules_checked_per_statement(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    int64_t f = dbtest_firm(c), cl = dbtest_client(c, f), other = dbtest_client(c, f);
    int64_t ep = mk_engagement(c, f, cl, "package", "100000", NULL);
    int64_t eh = mk_engagement(c, f, cl, "hourly", NULL, "15000");
    const char *n0 = "SELECT count(*) FROM billing.deferred_checks";

    /* 1.4: invoice and lines in one statement, consistent: nothing queued. */
    {
        const char *p[] = {I(f), I(cl), I(ep), U("INV-"), "package_fee", "1500", "{1000,500}"};
        assert_true(dbtest_ok(c, INVOICE_WITH_LINES_SQL, 7, p) > 0);
        assert_int_equal(dbtest_ok(c, n0, 0, NULL), 0);
    }
    /* ...inconsistent: refused when the statement commits. */
    {
        const char *p[] = {I(f), I(cl), I(ep), U("INV-"), "package_fee", "1500", "{1000,499}"};
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)", INVOICE_WITH_LINES_SQL, 7, p);
    }
    /* Several invoices in one INSERT, one of them with a subtotal and no
     * line: refused at COMMIT, none of them written. */
    {
        char a[96], b[96];
        snprintf(a, sizeof a, "%s", U("INV-"));
        snprintf(b, sizeof b, "%s", U("INV-"));
        const char *p[] = {I(f), I(cl), I(ep), a, b};
        dbtest_ok(c, "BEGIN", 0, NULL);
        dbtest_ok(c,
                  "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, invoice_number, "
                  "subtotal_cents, total_cents) VALUES ($1, $2, $3, $4, 0, 0), "
                  "($1, $2, $3, $5, 700, 700)",
                  5, p);
        assert_int_equal(dbtest_ok(c, n0, 0, NULL), 1); /* only the second is queued */
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)", "COMMIT", 0, NULL);
        const char *pn[] = {a, b};
        assert_int_equal(dbtest_ok(c,
                                   "SELECT count(*) FROM billing.invoices "
                                   "WHERE invoice_number IN ($1, $2)",
                                   2, pn),
                         0);
    }
    /* The queue cannot be emptied or rewritten to skip the check. */
    {
        const char *ins = "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                          "invoice_number, subtotal_cents, total_cents) "
                          "VALUES ($1, $2, $3, $4, 900, 900) RETURNING id";
        const char *p[] = {I(f), I(cl), I(ep), U("INV-")};
        dbtest_ok(c, "BEGIN", 0, NULL);
        dbtest_ok(c, ins, 4, p);
        dbtest_ok(c, "DELETE FROM billing.deferred_checks", 0, NULL);
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)", "COMMIT", 0, NULL);

        const char *p2[] = {I(f), I(cl), I(ep), U("INV-")};
        int64_t good = mk_invoice(c, f, cl, ep); /* subtotal 0, no line: fine */
        dbtest_ok(c, "BEGIN", 0, NULL);
        dbtest_ok(c, ins, 4, p2);
        const char *pg[] = {I(good)};
        dbtest_ok(c, "UPDATE billing.deferred_checks SET ref_id = $1", 1, pg);
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)", "COMMIT", 0, NULL);
    }
    /* SET CONSTRAINTS ALL IMMEDIATE checks at the end of each statement. */
    {
        const char *p[] = {I(f), I(cl), I(ep), U("INV-")};
        dbtest_ok(c, "BEGIN", 0, NULL);
        dbtest_ok(c, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL);
        dbtest_refused(c, "rule 1.4 (subtotal = sum of lines)",
                       "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                       "invoice_number, subtotal_cents, total_cents) "
                       "VALUES ($1, $2, $3, $4, 900, 900)",
                       4, p);
    }
    /* Lines added to an invoice in later statements, fixed up before COMMIT. */
    {
        dbtest_ok(c, "BEGIN", 0, NULL);
        const char *p[] = {I(f), I(cl), I(ep), U("INV-")};
        int64_t inv = dbtest_ok(c,
                                "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                                "invoice_number, subtotal_cents, total_cents) "
                                "VALUES ($1, $2, $3, $4, 300, 300) RETURNING id",
                                4, p);
        const char *pl[] = {I(inv), I(f)};
        dbtest_ok(c,
                  "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                  "description, amount_cents) VALUES ($1, $2, 'package_fee', 'a', 100)",
                  2, pl);
        dbtest_ok(c,
                  "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                  "description, amount_cents) VALUES ($1, $2, 'adjustment', 'b', 200)",
                  2, pl);
        dbtest_ok(c, "COMMIT", 0, NULL);
        assert_int_equal(dbtest_ok(c, n0, 0, NULL), 0);
    }

    /* 1.5: one bad line among good ones in one INSERT. */
    {
        int64_t inv = mk_invoice(c, f, cl, ep);
        const char *p[] = {I(inv), I(f)};
        dbtest_refused(c, "rule 1.5 (pricing mode)",
                       "WITH l AS (INSERT INTO billing.invoice_line_items(invoice_id, firm_id, "
                       "line_type, description, amount_cents) VALUES "
                       "($1, $2, 'package_fee', 'a', 10), ($1, $2, 'adjustment', 'b', 0), "
                       "($1, $2, 'hourly', 'c', 5) RETURNING amount_cents) "
                       "UPDATE billing.invoices SET subtotal_cents = (SELECT sum(amount_cents) "
                       "FROM l), total_cents = (SELECT sum(amount_cents) FROM l) WHERE id = $1",
                       2, p);
    }

    /* 1.8: time entries written several at a time. */
    int64_t ih = mk_invoice(c, f, cl, eh), ip = mk_invoice(c, f, cl, ep);
    int64_t t1 = mk_time_entry(c, f, eh, true), t2 = mk_time_entry(c, f, eh, true);
    int64_t t3 = mk_time_entry(c, f, ep, true);
    {
        /* put on an invoice of another engagement, among good ones */
        const char *p[] = {I(ih), I(ip), I(t1), I(t2), I(t3)};
        dbtest_refused(c, "rule 1.8 (same engagement)",
                       "UPDATE billing.time_entries t SET invoice_id = CASE WHEN t.id = $5 "
                       "THEN $1::bigint ELSE $2::bigint END WHERE t.id IN ($3, $4, $5)",
                       5, p);
        /* unapproved, among approved ones */
        int64_t t4 = mk_time_entry(c, f, eh, false);
        const char *pu[] = {I(ih), I(t1), I(t4)};
        dbtest_refused(c, "rule 1.8 (approval first)",
                       "UPDATE billing.time_entries SET invoice_id = $1 WHERE id IN ($2, $3)", 3,
                       pu);
        /* inserted already on an invoice of another engagement / client */
        const char *pi[] = {I(f), I(eh), I(ip)};
        dbtest_refused(c, "rule 1.8 (same engagement)",
                       "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, "
                       "hours, approved, invoice_id) VALUES ($1, $2, 'ana', '2026-02-01', 1.00, "
                       "true, NULL), ($1, $2, 'bob', '2026-02-01', 1.00, true, $3)",
                       3, pi);
        int64_t io_other = mk_override_invoice(c, f, other);
        const char *po[] = {I(f), I(eh), I(io_other)};
        dbtest_refused(c, "rule 1.8 (same engagement)",
                       "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, "
                       "hours, approved, invoice_id) VALUES ($1, $2, 'ana', '2026-02-01', 1.00, "
                       "true, $3)",
                       3, po);
        /* the good ones alone pass, and are then locked */
        const char *pg[] = {I(ih), I(t1), I(t2)};
        dbtest_ok(c, "UPDATE billing.time_entries SET invoice_id = $1 WHERE id IN ($2, $3)", 3, pg);
        const char *pl[] = {I(t1), I(t2)};
        dbtest_refused(c, "rule 1.8 (approval locked)",
                       "UPDATE billing.time_entries SET approved = false WHERE id IN ($1, $2)", 2,
                       pl);
        dbtest_refused(c, "rule 1.8 (invoiced once)",
                       "DELETE FROM billing.time_entries WHERE id IN ($1, $2)", 2, pl);
    }
    /* A line listing entries, with the entries marked in the same statement:
     * nothing queued; listing another firm's entry: refused at COMMIT. */
    {
        int64_t inv = mk_invoice(c, f, cl, eh);
        int64_t t5 = mk_time_entry(c, f, eh, true), t6 = mk_time_entry(c, f, eh, true);
        char ids[64];
        snprintf(ids, sizeof ids, "{%lld,%lld}", (long long)t5, (long long)t6);
        const char *p[] = {I(inv), ids};
        dbtest_ok(c,
                  "WITH l AS (INSERT INTO billing.invoice_line_items(invoice_id, firm_id, "
                  "line_type, description, amount_cents, time_entry_ids) "
                  "SELECT i.id, i.firm_id, 'hourly', 'h', 300, $2::bigint[] "
                  "FROM billing.invoices i WHERE i.id = $1 RETURNING invoice_id), "
                  "t AS (UPDATE billing.time_entries SET invoice_id = $1 "
                  "WHERE id = ANY ($2::bigint[]) RETURNING 1), "
                  "u AS (UPDATE billing.invoices SET subtotal_cents = 300, total_cents = 300 "
                  "WHERE id = $1 RETURNING 1) "
                  "SELECT (SELECT count(*) FROM l) + (SELECT count(*) FROM t) "
                  "+ (SELECT count(*) FROM u)",
                  2, p);
        assert_int_equal(dbtest_ok(c, n0, 0, NULL), 0);

        int64_t fx = dbtest_firm(c), cx = dbtest_client(c, fx);
        int64_t ex = mk_engagement(c, fx, cx, "hourly", NULL, "15000");
        int64_t tx = mk_time_entry(c, fx, ex, true);
        int64_t inv2 = mk_invoice(c, f, cl, eh);
        char xid[32];
        snprintf(xid, sizeof xid, "{%lld}", (long long)tx);
        dbtest_ok(c, "BEGIN", 0, NULL);
        add_line(c, inv2, "hourly", 100, xid);
        dbtest_refused(c, "rule 1.3 (tenant)", "COMMIT", 0, NULL);
    }
    assert_int_equal(dbtest_ok(c, n0, 0, NULL), 0);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_1_1_and_1_3_tenant_consistency),
        cmocka_unit_test(test_rule_1_2_engagement_link),
        cmocka_unit_test(test_rule_1_4_amounts),
        cmocka_unit_test(test_rule_1_5_pricing_mode),
        cmocka_unit_test(test_rule_1_6_one_auto_invoice_per_period),
        cmocka_unit_test(test_rule_1_7_append_only),
        cmocka_unit_test(test_rule_1_8_time_entries),
        cmocka_unit_test(test_rule_4_credit_ledger),
        cmocka_unit_test(test_status_values_checked),
        cmocka_unit_test(test_unique_numbers_and_external_ids),
        cmocka_unit_test(test_rules_checked_per_statement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
