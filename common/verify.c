/* verify.c: the reconciliation check (verify.h): one SQL query per check,
 * each returning the violating rows as (firm_id, table, id, detail), run in
 * one read-only REPEATABLE READ transaction so that every check reads the
 * same snapshot while workers keep writing.
 *
 * Every query takes $1 = the firm to check (NULL = all firms); a reference
 * across firms is kept when either side is that firm. The queries read the
 * tables as they are: the database's own constraints and triggers are not
 * assumed to have held (a writer with triggers disabled, a restore, a
 * migration gone wrong), which is why checks that a constraint already
 * enforces (one payments row per PaymentIntent, one auto invoice per
 * engagement and period start) are still here.
 *
 * What each check may assume about the writers (common/payments.c,
 * credit.c, disputes.c, invoicing.c, billingctl) is stated in
 * docs/RELIABILITY.md; comments below say only why a query looks the way it
 * does. */
#include "ledgerline/verify.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The SQL below is laid out by hand (one clause per line). */
/* clang-format off */
/* $1 is the firm (NULL = every firm). */
#define VF(alias) "($1::bigint IS NULL OR " alias ".firm_id = $1::bigint)"
/* A metadata value that is an id (audit metadata is free-form jsonb). */
#define VID(expr) "CASE WHEN (" expr ") ~ '^[0-9]{1,18}$' THEN (" expr ")::bigint END"

/* ---- 1. subtotal = sum of line items (rule 1.4) ---------------------------- */
static const char verify_line_items_sql[] =
    "SELECT i.firm_id, 'invoices', i.id,"
    " format('invoice %s (%s): subtotal_cents %s but its %s line item(s) sum to %s',"
    "  i.id, i.invoice_number, i.subtotal_cents, coalesce(l.n, 0), coalesce(l.s, 0))"
    " FROM billing.invoices i"
    " LEFT JOIN (SELECT invoice_id, count(*) AS n, sum(amount_cents) AS s"
    "  FROM billing.invoice_line_items GROUP BY invoice_id) l ON l.invoice_id = i.id"
    " WHERE " VF("i") " AND i.subtotal_cents <> coalesce(l.s, 0)";

/* ---- 2. total = subtotal + tax; amounts in range (rule 1.4) ---------------- */
static const char verify_total_sql[] =
    "SELECT i.firm_id, 'invoices', i.id,"
    " format('invoice %s (%s): total_cents %s <> subtotal_cents %s + tax_cents %s',"
    "  i.id, i.invoice_number, i.total_cents, i.subtotal_cents, i.tax_cents)"
    " FROM billing.invoices i"
    " WHERE " VF("i") " AND i.total_cents <> i.subtotal_cents + i.tax_cents"
    " UNION ALL"
    " SELECT i.firm_id, 'invoices', i.id,"
    " format('invoice %s (%s): amounts out of range: subtotal %s, tax %s, total %s, refunded %s,"
    " amount_paid %s, credited %s (want all >= 0 and amount_paid + credited <= total)',"
    "  i.id, i.invoice_number, i.subtotal_cents, i.tax_cents, i.total_cents, i.refunded_cents,"
    "  i.amount_paid_cents, i.credited_cents)"
    " FROM billing.invoices i"
    " WHERE " VF("i") " AND (i.subtotal_cents < 0 OR i.tax_cents < 0 OR i.total_cents < 0"
    "  OR i.refunded_cents < 0 OR i.amount_paid_cents < 0 OR i.credited_cents < 0"
    "  OR i.amount_paid_cents + i.credited_cents > i.total_cents)"
    " UNION ALL"
    " SELECT l.firm_id, 'invoice_line_items', l.id,"
    " format('line %s of invoice %s: negative amount_cents %s, rate_cents %s or quantity %s',"
    "  l.id, l.invoice_id, l.amount_cents, l.rate_cents, l.quantity)"
    " FROM billing.invoice_line_items l"
    " WHERE " VF("l") " AND (l.amount_cents < 0 OR l.rate_cents < 0 OR l.quantity < 0)";

/* ---- 3. amount_paid against the money records ----------------------------
 * P = sum(payments.amount_cents) (a payments row holds the amount APPLIED:
 * Stripe or credit; overpayments went to credit), R = invoices.refunded_cents
 * (refunded total, >= what the refunds rows still count: rule 11.11; part
 * of it may have come out of credit, rule 11.1), L = the amounts of the
 * invoice's lost disputes, B = sum(payments.back_invoice_cents) (what
 * take-backs took from the invoice and gave back to it: rule 11.1, 11.11).
 * amount_paid grows by a payments row or by a failed refund's money coming
 * back (at most what its take-back took, the rest is credit once the
 * invoice is paid by other money meanwhile), and shrinks, clamped at 0, by
 * a refund increase or a lost dispute, so
 *   P - max(R + L, B) <= amount_paid <= P      (equality when R = L = B = 0).
 * Both bounds are checked; the clamp at zero makes the lower one an
 * inequality. */
static const char verify_amount_paid_sql[] =
    "WITH p AS (SELECT invoice_id, sum(amount_cents) AS s, count(*) AS n,"
    "  sum(back_invoice_cents) AS back FROM billing.payments GROUP BY invoice_id),"
    " r AS (SELECT invoice_id, sum(CASE WHEN status IN ('failed', 'canceled') THEN 0"
    "  ELSE amount_cents END) AS s FROM billing.refunds GROUP BY invoice_id),"
    " d AS (SELECT invoice_id, sum(amount_cents) AS s FROM billing.payment_disputes"
    "  WHERE status = 'closed' AND resolution = 'lost' GROUP BY invoice_id),"
    " m AS (SELECT i.firm_id, i.id, i.invoice_number, i.amount_paid_cents AS paid,"
    "  i.refunded_cents AS refunded, coalesce(p.s, 0) AS payments, coalesce(p.n, 0) AS npay,"
    "  coalesce(r.s, 0) AS refund_rows, coalesce(d.s, 0) AS lost, coalesce(p.back, 0) AS back"
    "  FROM billing.invoices i LEFT JOIN p ON p.invoice_id = i.id"
    "  LEFT JOIN r ON r.invoice_id = i.id LEFT JOIN d ON d.invoice_id = i.id"
    "  WHERE " VF("i") ")"
    " SELECT firm_id, 'invoices', id,"
    " format('invoice %s (%s): amount_paid_cents %s exceeds the %s cents of its %s payment(s)',"
    "  id, invoice_number, paid, payments, npay)"
    " FROM m WHERE paid > payments"
    " UNION ALL"
    " SELECT firm_id, 'invoices', id,"
    " format('invoice %s (%s): amount_paid_cents %s is below payments %s - max(refunded %s +"
    " lost disputes %s, taken back %s) = %s', id, invoice_number, paid, payments, refunded,"
    "  lost, back, payments - greatest(refunded + lost, back))"
    " FROM m WHERE paid < payments - greatest(refunded + lost, back)"
    " UNION ALL"
    " SELECT firm_id, 'invoices', id,"
    " format('invoice %s (%s): refunded_cents %s is below the %s cents of its recorded refunds',"
    "  id, invoice_number, refunded, refund_rows)"
    " FROM m WHERE refunded < refund_rows";

/* ---- 4. no payment applied twice -------------------------------------------
 * One payments row per PaymentIntent and one attempt per PaymentIntent
 * (both unique in the schema, checked anyway); an attempt that succeeded has
 * the payments row of its intent on its invoice, and a Stripe payment whose
 * intent we attempted has that attempt succeeded (payments.c marks both in
 * one statement); at most one of our own charges succeeded per invoice (a
 * second is a double charge). */
static const char verify_payment_once_sql[] =
    "SELECT min(p.firm_id), 'payments', min(p.id),"
    " format('PaymentIntent %s is applied %s times (payments %s)', p.stripe_payment_intent_id,"
    "  count(*), string_agg(p.id::text, ',' ORDER BY p.id))"
    " FROM billing.payments p WHERE p.stripe_payment_intent_id IS NOT NULL AND " VF("p")
    " GROUP BY p.stripe_payment_intent_id HAVING count(*) > 1"
    " UNION ALL"
    " SELECT min(a.firm_id), 'payment_attempts', min(a.id),"
    " format('PaymentIntent %s belongs to %s attempts (%s)', a.stripe_payment_intent_id,"
    "  count(*), string_agg(a.id::text, ',' ORDER BY a.id))"
    " FROM billing.payment_attempts a WHERE a.stripe_payment_intent_id IS NOT NULL AND " VF("a")
    " GROUP BY a.stripe_payment_intent_id HAVING count(*) > 1"
    " UNION ALL"
    " SELECT a.firm_id, 'payment_attempts', a.id,"
    " format('attempt %s of invoice %s succeeded (PaymentIntent %s) but %s', a.id, a.invoice_id,"
    "  coalesce(a.stripe_payment_intent_id, 'none'), CASE WHEN p.id IS NULL"
    "  THEN 'no payment records its money'"
    "  ELSE format('its payment %s is on invoice %s', p.id, p.invoice_id) END)"
    " FROM billing.payment_attempts a LEFT JOIN billing.payments p"
    "  ON p.stripe_payment_intent_id = a.stripe_payment_intent_id"
    " WHERE " VF("a") " AND a.status = 'succeeded'"
    "  AND (p.id IS NULL OR p.invoice_id <> a.invoice_id)"
    " UNION ALL"
    " SELECT p.firm_id, 'payments', p.id,"
    " format('payment %s of invoice %s applied PaymentIntent %s, but its attempt %s is %s',"
    "  p.id, p.invoice_id, p.stripe_payment_intent_id, a.id, a.status)"
    " FROM billing.payments p JOIN billing.payment_attempts a"
    "  ON a.stripe_payment_intent_id = p.stripe_payment_intent_id"
    " WHERE " VF("p") " AND p.source = 'stripe' AND a.status <> 'succeeded'"
    " UNION ALL"
    " SELECT min(a.firm_id), 'invoices', a.invoice_id,"
    " format('invoice %s was charged successfully %s times (attempts %s)', a.invoice_id,"
    "  count(*), string_agg(a.id::text, ',' ORDER BY a.id))"
    " FROM billing.payment_attempts a WHERE a.status = 'succeeded' AND " VF("a")
    " GROUP BY a.invoice_id HAVING count(*) > 1";

/* ---- 5. credit ledger (section 4) -------------------------------------------
 * The balance (credits - debits) never goes negative, read entry by entry
 * in (created_at, id) order (credit.c stamps entries with clock_timestamp()
 * under the client's row lock, so that is the order they were written);
 * an expired debit removes at most what its credit carried; the credit
 * payments of an invoice equal the ledger debits applied to it; and per firm
 * and currency the firm's ledger sums to its clients' balances (the
 * `report credits` reconciliation). */
static const char verify_credit_sql[] =
    "WITH run AS (SELECT l.firm_id, l.client_id, l.id, sum(CASE l.entry_type WHEN 'credit'"
    "   THEN l.amount_cents ELSE -l.amount_cents END) OVER (PARTITION BY l.client_id"
    "   ORDER BY l.created_at, l.id ROWS UNBOUNDED PRECEDING) AS bal"
    "  FROM billing.credit_ledger l WHERE " VF("l") "),"
    " neg AS (SELECT DISTINCT ON (client_id) firm_id, client_id, id, bal FROM run"
    "  WHERE bal < 0 ORDER BY client_id, id)"
    " SELECT n.firm_id, 'clients', n.client_id,"
    " format('client %s: credit balance goes negative (%s cents) at ledger entry %s; final"
    " balance %s', n.client_id, n.bal, n.id, (SELECT sum(CASE entry_type WHEN 'credit'"
    "  THEN amount_cents ELSE -amount_cents END) FROM billing.credit_ledger"
    "  WHERE client_id = n.client_id))"
    " FROM neg n"
    " UNION ALL"
    " SELECT c.firm_id, 'credit_ledger', c.id,"
    " format('credit entry %s (%s cents) has %s cents expired by entries %s', c.id,"
    "  c.amount_cents, x.s, x.ids)"
    " FROM billing.credit_ledger c JOIN (SELECT expired_entry_id, sum(amount_cents) AS s,"
    "  string_agg(id::text, ',' ORDER BY id) AS ids FROM billing.credit_ledger"
    "  WHERE expired_entry_id IS NOT NULL GROUP BY expired_entry_id) x"
    "  ON x.expired_entry_id = c.id"
    " WHERE " VF("c") " AND (x.s > c.amount_cents OR c.entry_type <> 'credit')"
    " UNION ALL"
    " SELECT i.firm_id, 'invoices', i.id,"
    " format('invoice %s (%s): credit payments sum to %s cents but ledger debits applied to it"
    " sum to %s', i.id, i.invoice_number, coalesce(cp.s, 0), coalesce(cd.s, 0))"
    " FROM billing.invoices i"
    " LEFT JOIN (SELECT invoice_id, sum(amount_cents) AS s FROM billing.payments"
    "  WHERE source = 'credit' GROUP BY invoice_id) cp ON cp.invoice_id = i.id"
    " LEFT JOIN (SELECT applied_to_invoice_id, sum(amount_cents) AS s FROM billing.credit_ledger"
    "  WHERE entry_type = 'debit' AND use IN ('invoice_payment', 'partial_payment')"
    "  GROUP BY applied_to_invoice_id) cd ON cd.applied_to_invoice_id = i.id"
    " WHERE " VF("i") " AND coalesce(cp.s, 0) <> coalesce(cd.s, 0)"
    " UNION ALL"
    " SELECT coalesce(a.firm_id, b.firm_id), 'firms', coalesce(a.firm_id, b.firm_id),"
    " format('firm %s (%s): its ledger entries sum to %s cents but its clients'' balances sum"
    " to %s', coalesce(a.firm_id, b.firm_id), coalesce(a.currency, b.currency),"
    "  coalesce(a.s, 0), coalesce(b.s, 0))"
    " FROM (SELECT l.firm_id, c.currency, sum(CASE l.entry_type WHEN 'credit'"
    "  THEN l.amount_cents ELSE -l.amount_cents END) AS s FROM billing.credit_ledger l"
    "  JOIN billing.clients c ON c.id = l.client_id WHERE " VF("l") " GROUP BY l.firm_id,"
    "  c.currency) a"
    " FULL JOIN (SELECT c.firm_id, c.currency, sum(CASE l.entry_type WHEN 'credit'"
    "  THEN l.amount_cents ELSE -l.amount_cents END) AS s FROM billing.clients c"
    "  JOIN billing.credit_ledger l ON l.client_id = c.id WHERE " VF("c") " GROUP BY c.firm_id,"
    "  c.currency) b ON b.firm_id = a.firm_id AND b.currency = a.currency"
    " WHERE coalesce(a.s, 0) <> coalesce(b.s, 0)";

/* ---- 6. audit events (section 9) ---------------------------------------------
 * What the writers record, one event each: an invoice's creation
 * (invoice_created by billingctl, package_/hourly_invoice_auto_generated by
 * invoicing.c); each Stripe payment (invoice_autopaid or payment_received
 * naming the payment id); each credit ledger entry (its audit_event_id, of
 * the action of its kind); each counted payment failure (payment_failed:
 * payments.c bumps payment_retry_count once per failure it records, with
 * one event naming a distinct failed attempt); each dispute opened, won or
 * lost; and every refund change (invoice_refunded refund_cents sum to the
 * invoice's refunded_cents; a refund that failed or was canceled after it
 * was counted writes a negative one, rule 11.11). */
static const char verify_audit_sql[] =
    "WITH ae AS (SELECT a.id, a.firm_id, a.action, " VID("a.metadata->>'invoice_id'") " AS inv,"
    "  " VID("a.metadata->>'payment_id'") " AS pay, " VID("a.metadata->>'attempt_id'") " AS att,"
    "  " VID("a.metadata->>'dispute_id'") " AS dsp, a.metadata"
    "  FROM billing.audit_events a WHERE a.action IN ('invoice_created',"
    "  'package_invoice_auto_generated', 'hourly_invoice_auto_generated', 'invoice_autopaid',"
    "  'payment_received', 'payment_failed', 'payment_disputed', 'dispute_won', 'dispute_lost',"
    "  'invoice_refunded') AND " VF("a") "),"
    " cr AS (SELECT inv, firm_id, count(*) AS n, string_agg(DISTINCT action, ',') AS actions"
    "  FROM ae WHERE action IN ('invoice_created', 'package_invoice_auto_generated',"
    "  'hourly_invoice_auto_generated') GROUP BY inv, firm_id),"
    " pf AS (SELECT inv, firm_id, count(*) AS n, count(DISTINCT att) AS atts FROM ae"
    "  WHERE action = 'payment_failed' GROUP BY inv, firm_id),"
    " rf AS (SELECT inv, firm_id, sum(CASE WHEN metadata->>'refund_cents' ~ '^-?[0-9]{1,18}$'"
    "  THEN (metadata->>'refund_cents')::bigint ELSE 0 END) AS s FROM ae"
    "  WHERE action = 'invoice_refunded' GROUP BY inv, firm_id)"
    " SELECT i.firm_id, 'invoices', i.id,"
    " format('invoice %s (%s): %s creation audit event(s) (%s); want exactly one %s', i.id,"
    "  i.invoice_number, coalesce(cr.n, 0), coalesce(cr.actions, 'none'),"
    "  CASE WHEN NOT i.is_auto_generated THEN 'invoice_created'"
    "   WHEN i.invoice_number LIKE 'HRS-%' THEN 'hourly_invoice_auto_generated'"
    "   ELSE 'package_invoice_auto_generated' END)"
    " FROM billing.invoices i LEFT JOIN cr ON cr.inv = i.id AND cr.firm_id = i.firm_id"
    " WHERE " VF("i") " AND (coalesce(cr.n, 0) <> 1 OR cr.actions <> CASE"
    "  WHEN NOT i.is_auto_generated THEN 'invoice_created'"
    "  WHEN i.invoice_number LIKE 'HRS-%' THEN 'hourly_invoice_auto_generated'"
    "  ELSE 'package_invoice_auto_generated' END)"
    " UNION ALL"
    " SELECT p.firm_id, 'payments', p.id,"
    " format('Stripe payment %s of invoice %s (PaymentIntent %s) has %s invoice_autopaid /"
    " payment_received audit event(s); want exactly one', p.id, p.invoice_id,"
    "  p.stripe_payment_intent_id, count(ae.id))"
    " FROM billing.payments p LEFT JOIN ae ON ae.pay = p.id AND ae.firm_id = p.firm_id"
    "  AND ae.action IN ('invoice_autopaid', 'payment_received')"
    " WHERE " VF("p") " AND p.source = 'stripe'"
    " GROUP BY p.id HAVING count(ae.id) <> 1"
    " UNION ALL"
    " SELECT l.firm_id, 'credit_ledger', l.id,"
    " format('credit ledger entry %s (%s %s): audit event %s is %s; want %s naming the entry',"
    "  l.id, l.entry_type, coalesce(l.source, l.use), coalesce(l.audit_event_id::text, 'none'),"
    "  coalesce(a.action || ' for entry ' || coalesce(a.metadata->>'entry_id', '?'), 'missing'),"
    "  CASE WHEN l.entry_type = 'credit' THEN 'credit_created'"
    "   WHEN l.use = 'expired' THEN 'credit_expired' ELSE 'credit_applied' END)"
    " FROM billing.credit_ledger l LEFT JOIN billing.audit_events a ON a.id = l.audit_event_id"
    " WHERE " VF("l") " AND (a.id IS NULL OR a.firm_id IS DISTINCT FROM l.firm_id"
    "   OR a.metadata->>'entry_id' IS DISTINCT FROM l.id::text"
    "   OR (l.use IS DISTINCT FROM 'refunded' AND a.action <> CASE"
    "    WHEN l.entry_type = 'credit' THEN 'credit_created'"
    "    WHEN l.use = 'expired' THEN 'credit_expired' ELSE 'credit_applied' END))"
    " UNION ALL"
    " SELECT i.firm_id, 'invoices', i.id,"
    " format('invoice %s (%s): payment_retry_count %s but %s payment_failed audit event(s)"
    " naming %s distinct attempt(s)', i.id, i.invoice_number, i.payment_retry_count,"
    "  coalesce(pf.n, 0), coalesce(pf.atts, 0))"
    " FROM billing.invoices i LEFT JOIN pf ON pf.inv = i.id AND pf.firm_id = i.firm_id"
    " WHERE " VF("i") " AND (coalesce(pf.n, 0) <> i.payment_retry_count"
    "  OR coalesce(pf.atts, 0) <> coalesce(pf.n, 0))"
    " UNION ALL"
    " SELECT ae.firm_id, 'audit_events', ae.id,"
    " format('payment_failed audit event %s of invoice %s names attempt %s, which is %s',"
    "  ae.id, ae.inv, coalesce(ae.att::text, 'none'), CASE WHEN a.id IS NULL THEN 'missing'"
    "  ELSE format('%s on invoice %s', a.status, a.invoice_id) END)"
    " FROM ae LEFT JOIN billing.payment_attempts a ON a.id = ae.att"
    " WHERE ae.action = 'payment_failed'"
    "  AND (a.id IS NULL OR a.status <> 'failed' OR a.invoice_id IS DISTINCT FROM ae.inv)"
    " UNION ALL"
    " SELECT d.firm_id, 'payment_disputes', d.id,"
    " format('dispute %s (%s, %s%s) of invoice %s has %s payment_disputed and %s %s audit"
    " event(s); want one of each', d.id, d.stripe_dispute_id, d.status,"
    "  coalesce(' ' || d.resolution, ''), d.invoice_id,"
    "  count(ae.id) FILTER (WHERE ae.action = 'payment_disputed'),"
    "  count(ae.id) FILTER (WHERE ae.action = 'dispute_' || d.resolution),"
    "  coalesce('dispute_' || d.resolution, 'settlement'))"
    " FROM billing.payment_disputes d LEFT JOIN ae ON ae.dsp = d.id AND ae.firm_id = d.firm_id"
    " WHERE " VF("d")
    " GROUP BY d.id HAVING count(ae.id) FILTER (WHERE ae.action = 'payment_disputed') <> 1"
    "  OR count(ae.id) FILTER (WHERE ae.action IN ('dispute_won', 'dispute_lost'))"
    "   <> CASE WHEN d.status = 'closed' THEN 1 ELSE 0 END"
    "  OR (d.status = 'closed' AND count(ae.id) FILTER (WHERE ae.action = 'dispute_' ||"
    "   d.resolution) <> 1)"
    " UNION ALL"
    " SELECT i.firm_id, 'invoices', i.id,"
    " format('invoice %s (%s): refunded_cents %s but invoice_refunded audit events record %s',"
    "  i.id, i.invoice_number, i.refunded_cents, coalesce(rf.s, 0))"
    " FROM billing.invoices i LEFT JOIN rf ON rf.inv = i.id AND rf.firm_id = i.firm_id"
    " WHERE " VF("i") " AND i.refunded_cents <> coalesce(rf.s, 0)";

/* ---- 7. no reference across firms (rule 1.3) ---------------------------------
 * Every reference between firm-owned rows, including the ones that are not
 * foreign keys (a line's time_entry_ids, ids inside audit metadata and
 * outbox payloads). A missing parent is reported too: with foreign keys
 * bypassed it is the same kind of damage. */
#define VT(ctab, clabel, col, ptab, plabel)                                                     \
    " SELECT x.firm_id, '" ctab "', x.id, format('" clabel " %s of firm %s: " plabel           \
    " %s is %s', x.id, x.firm_id, x." col ", CASE WHEN y.id IS NULL THEN 'missing'"           \
    " ELSE 'of firm ' || y.firm_id END)"                                                        \
    " FROM billing." ctab " x LEFT JOIN billing." ptab " y ON y.id = x." col                   \
    " WHERE x." col " IS NOT NULL AND (" VF("x") " OR " VF("y") ")"                            \
    " AND y.firm_id IS DISTINCT FROM x.firm_id"
/* The same client where the schema's composite key includes client_id. */
#define VC(ctab, clabel, col, ptab, plabel)                                                     \
    " SELECT x.firm_id, '" ctab "', x.id, format('" clabel " %s of client %s: " plabel         \
    " %s belongs to client %s', x.id, x.client_id, x." col ", y.client_id)"                   \
    " FROM billing." ctab " x JOIN billing." ptab " y ON y.id = x." col                        \
    " WHERE " VF("x") " AND y.client_id <> x.client_id"
/* An id inside jsonb (audit metadata, outbox payload) naming another firm's row. */
#define VJ(ctab, clabel, json, key, ptab, plabel)                                               \
    " SELECT x.firm_id, '" ctab "', x.id, format('" clabel " %s of firm %s names " plabel      \
    " %s of firm %s', x.id, x.firm_id, y.id, y.firm_id)"                                       \
    " FROM billing." ctab " x JOIN billing." ptab " y ON y.id = " VID("x." json "->>'" key "'") \
    " WHERE x.firm_id IS NOT NULL AND (" VF("x") " OR " VF("y") ")"                            \
    " AND y.firm_id <> x.firm_id"

static const char verify_tenant_sql[] =
    VT("engagements", "engagement", "client_id", "clients", "client")
    " UNION ALL" VT("engagements", "engagement", "parent_engagement_id", "engagements",
                    "parent engagement")
    " UNION ALL" VC("engagements", "engagement", "parent_engagement_id", "engagements",
                    "parent engagement")
    " UNION ALL" VT("invoices", "invoice", "client_id", "clients", "client")
    " UNION ALL" VT("invoices", "invoice", "engagement_id", "engagements", "engagement")
    " UNION ALL" VC("invoices", "invoice", "engagement_id", "engagements", "engagement")
    " UNION ALL" VT("invoice_line_items", "line", "invoice_id", "invoices", "invoice")
    " UNION ALL" VT("time_entries", "time entry", "engagement_id", "engagements", "engagement")
    " UNION ALL" VT("time_entries", "time entry", "invoice_id", "invoices", "invoice")
    " UNION ALL" VT("payment_attempts", "payment attempt", "invoice_id", "invoices", "invoice")
    " UNION ALL" VT("payments", "payment", "invoice_id", "invoices", "invoice")
    " UNION ALL" VT("refunds", "refund", "invoice_id", "invoices", "invoice")
    " UNION ALL" VT("payment_disputes", "dispute", "invoice_id", "invoices", "invoice")
    " UNION ALL" VT("credit_ledger", "credit entry", "client_id", "clients", "client")
    " UNION ALL" VT("credit_ledger", "credit entry", "source_invoice_id", "invoices",
                    "source invoice")
    " UNION ALL" VC("credit_ledger", "credit entry", "source_invoice_id", "invoices",
                    "source invoice")
    " UNION ALL" VT("credit_ledger", "credit entry", "applied_to_invoice_id", "invoices",
                    "invoice applied to")
    " UNION ALL" VC("credit_ledger", "credit entry", "applied_to_invoice_id", "invoices",
                    "invoice applied to")
    " UNION ALL" VT("credit_ledger", "credit entry", "audit_event_id", "audit_events",
                    "audit event")
    " UNION ALL" VT("credit_ledger", "credit entry", "expired_entry_id", "credit_ledger",
                    "expired credit entry")
    " UNION ALL" VJ("audit_events", "audit event", "metadata", "invoice_id", "invoices",
                    "invoice")
    " UNION ALL" VJ("audit_events", "audit event", "metadata", "client_id", "clients", "client")
    " UNION ALL" VJ("outbox", "outbox event", "payload", "invoice_id", "invoices", "invoice")
    " UNION ALL"
    " SELECT l.firm_id, 'invoice_line_items', l.id,"
    " format('line %s of invoice %s (firm %s) lists time entry %s, which is %s', l.id,"
    "  l.invoice_id, l.firm_id, x.te, CASE WHEN t.id IS NULL THEN 'missing'"
    "  ELSE 'of firm ' || t.firm_id END)"
    " FROM billing.invoice_line_items l CROSS JOIN LATERAL unnest(l.time_entry_ids) x(te)"
    " LEFT JOIN billing.time_entries t ON t.id = x.te"
    " WHERE cardinality(l.time_entry_ids) > 0 AND (" VF("l") " OR " VF("t") ")"
    "  AND t.firm_id IS DISTINCT FROM l.firm_id";

/* ---- 8. time entries (rule 1.8, section 3) -----------------------------------
 * An invoiced entry is approved and listed by exactly one line, a line of
 * the invoice it is marked on; an entry listed by a line is marked invoiced
 * on that line's invoice. Lines of a void invoice keep their list as a
 * record, but bill nothing: their entries were released (sql/013). */
static const char verify_time_sql[] =
    "WITH li AS (SELECT l.id AS line_id, l.invoice_id, x.te"
    "  FROM billing.invoice_line_items l CROSS JOIN LATERAL unnest(l.time_entry_ids) x(te)"
    "  WHERE cardinality(l.time_entry_ids) > 0 AND NOT EXISTS (SELECT 1 FROM billing.invoices v"
    "   WHERE v.id = l.invoice_id AND v.status = 'void')),"
    " per AS (SELECT li.te, count(*) AS n, string_agg(format('line %s of invoice %s',"
    "  li.line_id, li.invoice_id), ', ' ORDER BY li.line_id) AS lines,"
    "  bool_and(li.invoice_id IS NOT DISTINCT FROM t.invoice_id) AS same"
    "  FROM li LEFT JOIN billing.time_entries t ON t.id = li.te GROUP BY li.te)"
    " SELECT t.firm_id, 'time_entries', t.id,"
    " format('time entry %s is invoiced on %s but not approved', t.id, t.invoice_id)"
    " FROM billing.time_entries t WHERE " VF("t") " AND t.invoice_id IS NOT NULL"
    "  AND NOT t.approved"
    " UNION ALL"
    " SELECT t.firm_id, 'time_entries', t.id,"
    " format('time entry %s (invoice %s) is listed by %s line(s)%s; want exactly one line of"
    " invoice %s', t.id, coalesce(t.invoice_id::text, 'none'), coalesce(per.n, 0),"
    "  coalesce(': ' || per.lines, ''), coalesce(t.invoice_id::text, 'none'))"
    " FROM billing.time_entries t LEFT JOIN per ON per.te = t.id"
    " WHERE " VF("t") " AND ((t.invoice_id IS NOT NULL AND coalesce(per.n, 0) <> 1)"
    "  OR (per.n IS NOT NULL AND NOT per.same))";

/* ---- 9. one auto invoice per engagement and period (rule 1.6) ----------------
 * The same period start twice (the unique index's rule), and periods of one
 * engagement that overlap (the same days billed twice under another start). */
static const char verify_auto_sql[] =
    "SELECT min(i.firm_id), 'invoices', min(i.id),"
    " format('engagement %s has %s auto invoices for the period starting %s (%s)',"
    "  i.engagement_id, count(*), i.period_start, string_agg(i.id::text, ',' ORDER BY i.id))"
    " FROM billing.invoices i WHERE i.is_auto_generated AND " VF("i")
    " GROUP BY i.engagement_id, i.period_start HAVING count(*) > 1"
    " UNION ALL"
    " SELECT b.firm_id, 'invoices', b.id,"
    " format('auto invoice %s (%s, %s..%s) overlaps auto invoice %s (%s, %s..%s) of engagement %s',"
    "  b.id, b.invoice_number, b.period_start, coalesce(b.period_end, b.period_start), a.id,"
    "  a.invoice_number, a.period_start, coalesce(a.period_end, a.period_start), a.engagement_id)"
    " FROM billing.invoices a JOIN billing.invoices b ON b.engagement_id = a.engagement_id"
    "  AND b.id > a.id AND b.is_auto_generated AND b.period_start <> a.period_start"
    "  AND daterange(a.period_start, coalesce(a.period_end, a.period_start), '[]')"
    "   && daterange(b.period_start, coalesce(b.period_end, b.period_start), '[]')"
    " WHERE a.is_auto_generated AND (" VF("a") " OR " VF("b") ")";

/* clang-format on */

/* ------------------------------------------------------------------------ */

static const char *const verify_sql[VERIFY_NCHECKS] = {
    [VERIFY_LINE_ITEMS_SUM] = verify_line_items_sql,
    [VERIFY_TOTAL] = verify_total_sql,
    [VERIFY_AMOUNT_PAID] = verify_amount_paid_sql,
    [VERIFY_PAYMENT_ONCE] = verify_payment_once_sql,
    [VERIFY_CREDIT_LEDGER] = verify_credit_sql,
    [VERIFY_AUDIT] = verify_audit_sql,
    [VERIFY_TENANT] = verify_tenant_sql,
    [VERIFY_TIME_ENTRIES] = verify_time_sql,
    [VERIFY_AUTO_INVOICE] = verify_auto_sql,
};

static const char *const verify_names[VERIFY_NCHECKS] = {
    [VERIFY_LINE_ITEMS_SUM] = "line_items_sum",
    [VERIFY_TOTAL] = "total",
    [VERIFY_AMOUNT_PAID] = "amount_paid",
    [VERIFY_PAYMENT_ONCE] = "payment_once",
    [VERIFY_CREDIT_LEDGER] = "credit_ledger",
    [VERIFY_AUDIT] = "audit",
    [VERIFY_TENANT] = "tenant",
    [VERIFY_TIME_ENTRIES] = "time_entries",
    [VERIFY_AUTO_INVOICE] = "auto_invoice",
};

const char *verify_check_name(verify_check c)
{
    return (unsigned)c < VERIFY_NCHECKS ? verify_names[c] : "unknown";
}

typedef struct {
    int64_t firm_id;
    verify_fn fn;
    void *arg;
    int64_t max_per_check;
    verify_summary *out;
} verify_ctx;

/* Every check wrapped the same way: the total count on each row (so a
 * capped listing still counts everything) and a stable order. */
#define VERIFY_WRAP_HEAD "SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER () FROM ("
#define VERIFY_WRAP_TAIL                                                                           \
    ") v(firm_id, tbl, id, detail) ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail"          \
    " LIMIT $2::bigint"

static db_status verify_checks(db_conn *c, verify_ctx *x, char *err, size_t errlen)
{
    db_status st = DB_OK;
    char firm[24], cap[24];
    const char *p[] = {x->firm_id > 0 ? db_i64(x->firm_id, firm, sizeof firm) : NULL,
                       x->max_per_check > 0 ? db_i64(x->max_per_check, cap, sizeof cap) : NULL};
    if (x->firm_id > 0 && (st = db_require_firm(c, x->firm_id, err, errlen)) != DB_OK)
        return st;
    memset(x->out, 0, sizeof *x->out);
    for (int k = 0; k < VERIFY_NCHECKS; k++) {
        size_t n = sizeof VERIFY_WRAP_HEAD + strlen(verify_sql[k]) + sizeof VERIFY_WRAP_TAIL;
        char *sql = malloc(n);
        if (sql == NULL) {
            snprintf(err, errlen, "out of memory");
            return DB_TRANSIENT;
        }
        snprintf(sql, n, "%s%s%s", VERIFY_WRAP_HEAD, verify_sql[k], VERIFY_WRAP_TAIL);
        PGresult *r = db_exec(c, sql, 2, p, &st, err, errlen);
        free(sql);
        if (r == NULL) {
            size_t used = strlen(err);
            if (used + 1 < errlen)
                snprintf(err + used, errlen - used, " (check %s)", verify_names[k]);
            return st;
        }
        int rows = PQntuples(r);
        int64_t total = rows > 0 ? strtoll(PQgetvalue(r, 0, 4), NULL, 10) : 0;
        x->out->per_check[k] = total;
        x->out->violations += total;
        for (int i = 0; i < rows && x->fn != NULL; i++) {
            verify_violation v = {
                .check = (verify_check)k,
                .check_name = verify_names[k],
                .firm_id = PQgetisnull(r, i, 0) ? 0 : strtoll(PQgetvalue(r, i, 0), NULL, 10),
                .table = PQgetvalue(r, i, 1),
                .id = PQgetisnull(r, i, 2) ? 0 : strtoll(PQgetvalue(r, i, 2), NULL, 10),
                .detail = PQgetvalue(r, i, 3),
            };
            x->fn(&v, x->arg);
            x->out->reported++;
        }
        PQclear(r);
    }
    return DB_OK;
}

static db_status verify_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    /* One snapshot for every check; never a write. */
    db_status st = db_command(c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0,
                              NULL, err, errlen);
    return st == DB_OK ? verify_checks(c, varg, err, errlen) : st;
}

/* Checks the arguments and runs the checks, in the caller's transaction
 * (in_tx) or in a read-only snapshot of their own. */
static db_status verify_start(db_conn *c, bool in_tx, int64_t firm_id, verify_fn fn, void *arg,
                              int64_t max_per_check, verify_summary *out, char *err, size_t errlen)
{
    verify_summary scratch;
    if (out == NULL)
        out = &scratch;
    memset(out, 0, sizeof *out);
    if (c == NULL || firm_id < 0 || max_per_check < 0) {
        snprintf(err, errlen, "verify: bad arguments (firm id and limit must not be negative)");
        return DB_PERMANENT;
    }
    verify_ctx x = {
        .firm_id = firm_id, .fn = fn, .arg = arg, .max_per_check = max_per_check, .out = out};
    db_status st =
        in_tx ? verify_checks(c, &x, err, errlen) : db_run_tx(c, verify_tx, &x, err, errlen);
    if (st != DB_OK)
        memset(out, 0, sizeof *out); /* no partial counts: the run did not finish */
    return st;
}

db_status verify_run_in(db_conn *c, int64_t firm_id, verify_fn fn, void *arg, int64_t max_per_check,
                        verify_summary *out, char *err, size_t errlen)
{
    return verify_start(c, true, firm_id, fn, arg, max_per_check, out, err, errlen);
}

db_status verify_run(db_conn *c, int64_t firm_id, verify_fn fn, void *arg, int64_t max_per_check,
                     verify_summary *out, char *err, size_t errlen)
{
    return verify_start(c, false, firm_id, fn, arg, max_per_check, out, err, errlen);
}
