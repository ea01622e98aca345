-- report_revenue.sql (common/reports.c): `report revenue` (BILLING_RULES
-- section 10; definitions in docs/REPORTS.md) as one JSON document, per
-- currency. Invoiced: invoices issued in [from, to] (not draft, cancelled or
-- void), line amounts by type, tax and total. Collected: payments received
-- in [from, to] (UTC days), each split over its invoice's package / hourly /
-- adjustment / tax amounts in proportion (floor each part; the remaining
-- cents go to the invoice's largest part); credit applications, refunds and
-- credit notes are reported apart.
-- $1: the firm id; $2, $3: from and to (dates, inclusive).
WITH
lo AS (SELECT ($2::date)::timestamp AT TIME ZONE 'UTC' AS t),
hi AS (SELECT ($3::date + 1)::timestamp AT TIME ZONE 'UTC' AS t),
inv AS (SELECT i.id, i.currency, i.status, i.issue_date, i.tax_cents, i.total_cents,
  coalesce(sum(l.amount_cents) FILTER (WHERE l.line_type = 'package_fee'), 0) AS pkg,
  coalesce(sum(l.amount_cents) FILTER (WHERE l.line_type = 'hourly'), 0) AS hrs,
  coalesce(sum(l.amount_cents) FILTER (WHERE l.line_type = 'adjustment'), 0) AS adj
  FROM billing.invoices i LEFT JOIN billing.invoice_line_items l ON l.invoice_id = i.id
  WHERE i.firm_id = $1 AND ((i.issue_date BETWEEN $2::date AND $3::date) OR EXISTS (
    SELECT 1 FROM billing.payments p, lo, hi WHERE p.invoice_id = i.id
    AND p.received_at >= lo.t AND p.received_at < hi.t))
  GROUP BY i.id),
invoiced AS (SELECT currency, count(*) AS n, sum(pkg) AS pkg, sum(hrs) AS hrs,
  sum(adj) AS adj, sum(tax_cents) AS tax, sum(total_cents) AS total FROM inv
  WHERE issue_date BETWEEN $2::date AND $3::date AND status NOT IN ('draft', 'cancelled', 'void')
  GROUP BY currency),
pay AS (SELECT p.amount_cents AS a, p.source, inv.*,
  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.pkg /
    inv.total_cents)::bigint ELSE 0 END AS fp,
  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.hrs /
    inv.total_cents)::bigint ELSE 0 END AS fh,
  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.adj /
    inv.total_cents)::bigint ELSE 0 END AS fa,
  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.tax_cents /
    inv.total_cents)::bigint ELSE 0 END AS ft,
  CASE WHEN inv.pkg >= inv.hrs AND inv.pkg >= inv.adj AND inv.pkg >= inv.tax_cents THEN 'p'
    WHEN inv.hrs >= inv.adj AND inv.hrs >= inv.tax_cents THEN 'h'
    WHEN inv.adj >= inv.tax_cents THEN 'a' ELSE 't' END AS big
  FROM billing.payments p JOIN inv ON inv.id = p.invoice_id, lo, hi
  WHERE p.firm_id = $1 AND p.received_at >= lo.t AND p.received_at < hi.t),
alloc AS (SELECT currency, source, a, a - (fp + fh + fa + ft) AS rem, fp, fh, fa, ft, big
  FROM pay),
collected AS (SELECT currency,
  count(*) FILTER (WHERE source <> 'credit') AS n,
  coalesce(sum(fp + CASE WHEN big = 'p' THEN rem ELSE 0 END)
    FILTER (WHERE source <> 'credit'), 0) AS pkg,
  coalesce(sum(fh + CASE WHEN big = 'h' THEN rem ELSE 0 END)
    FILTER (WHERE source <> 'credit'), 0) AS hrs,
  coalesce(sum(fa + CASE WHEN big = 'a' THEN rem ELSE 0 END)
    FILTER (WHERE source <> 'credit'), 0) AS adj,
  coalesce(sum(ft + CASE WHEN big = 't' THEN rem ELSE 0 END)
    FILTER (WHERE source <> 'credit'), 0) AS tax,
  coalesce(sum(a) FILTER (WHERE source <> 'credit'), 0) AS total,
  coalesce(sum(a) FILTER (WHERE source = 'credit'), 0) AS credit
  FROM alloc GROUP BY currency),
refunded AS (SELECT i.currency, sum(r.amount_cents) AS total
  FROM billing.refunds r JOIN billing.invoices i ON i.id = r.invoice_id, lo, hi
  WHERE r.firm_id = $1 AND r.created_at >= lo.t AND r.created_at < hi.t
  GROUP BY i.currency),
-- Credit notes issued in [from, to] (docs/INVOICES.md): their totals, tax and how they were
-- settled.
cn AS (SELECT i.currency, count(*) AS n, sum(n.total_cents) AS total,
  sum(n.tax_cents) AS tax, sum(n.applied_to_due_cents) AS due,
  sum(n.refunded_cents) AS refund, sum(n.credited_cents) AS credit
  FROM billing.credit_notes n JOIN billing.invoices i ON i.id = n.invoice_id, lo, hi
  WHERE n.firm_id = $1 AND n.created_at >= lo.t AND n.created_at < hi.t
  GROUP BY i.currency),
cur AS (SELECT currency FROM invoiced UNION SELECT currency FROM collected
  UNION SELECT currency FROM refunded UNION SELECT currency FROM cn)
SELECT jsonb_build_object('firm_id', $1::bigint, 'from', $2::text, 'to', $3::text,
  'currencies', coalesce(jsonb_agg(jsonb_build_object('currency', cur.currency,
  'invoiced', jsonb_build_object('invoice_count', coalesce(iv.n, 0),
    'package_cents', coalesce(iv.pkg, 0), 'hourly_cents', coalesce(iv.hrs, 0),
    'adjustment_cents', coalesce(iv.adj, 0), 'tax_cents', coalesce(iv.tax, 0),
    'total_cents', coalesce(iv.total, 0)),
  'collected', jsonb_build_object('payment_count', coalesce(co.n, 0),
    'package_cents', coalesce(co.pkg, 0), 'hourly_cents', coalesce(co.hrs, 0),
    'adjustment_cents', coalesce(co.adj, 0), 'tax_cents', coalesce(co.tax, 0),
    'total_cents', coalesce(co.total, 0)),
  'credit_applied_cents', coalesce(co.credit, 0),
  'refunded_cents', coalesce(rf.total, 0),
  'credit_notes', jsonb_build_object('count', coalesce(cn.n, 0),
    'total_cents', coalesce(cn.total, 0), 'tax_cents', coalesce(cn.tax, 0),
    'applied_to_due_cents', coalesce(cn.due, 0), 'refunded_cents', coalesce(cn.refund, 0),
    'credited_cents', coalesce(cn.credit, 0))) ORDER BY cur.currency), '[]'::jsonb))::text
FROM cur LEFT JOIN invoiced iv USING (currency) LEFT JOIN collected co USING (currency)
LEFT JOIN refunded rf USING (currency) LEFT JOIN cn USING (currency)
