-- floor.sql: the floor the worker is measured against: ONE hand-written
-- INSERT ... SELECT creating the same invoices (number, period, fee, hours,
-- tax, due date) with their line items, audit rows and outbox rows
-- (invoice.issued, as the worker writes them) for the 2026-11-24 tick of the
-- seed (seed.sql), and marks the billed time entries invoiced (rule 1.8
-- requires it in the same transaction), in one transaction. Same rows, same
-- triggers as the worker; what it leaves out is the worker's generality
-- (schedules, clipping, proration, rates per entry, sharding, batches).
-- The audit metadata and outbox payload are built as the worker builds them
-- (to_jsonb of a row; see common/invoicing.c), and so are the amounts
-- (billing.round_to_granularity, rule 11.13) and the rates in descriptions
-- (billing.format_amount), both sql/011.
\set ON_ERROR_STOP on
-- No JIT: its compile time (0.5 s and more for this statement and the
-- statement triggers' queries) is not work. The worker's batch statements
-- stay below jit_above_cost, so they never compile either.
SET jit = off;
WITH eng AS (
  SELECT e.id, e.firm_id, e.client_id, e.title,
         billing.round_to_granularity(e.package_fee_cents, c.currency) AS fee,
         e.hourly_rate_cents, e.payment_terms_days, c.currency, c.tax_rate_bp,
         CASE e.package_fee_schedule WHEN 'quarterly' THEN date '2026-10-01'
              ELSE date '2026-11-01' END AS ps,
         CASE e.package_fee_schedule WHEN 'quarterly' THEN date '2026-12-31'
              ELSE date '2026-11-30' END AS pe
  FROM billing.engagements e JOIN billing.clients c ON c.id = e.client_id
  WHERE e.status = 'current'),
hrs AS (
  SELECT t.engagement_id, e.hourly_rate_cents AS rate, sum(t.hours) AS hours,
         array_agg(t.id ORDER BY t.id) AS ids
  FROM billing.time_entries t JOIN eng e ON e.id = t.engagement_id
  WHERE t.approved AND t.invoice_id IS NULL AND t.work_date < e.ps
  GROUP BY t.engagement_id, e.hourly_rate_cents),
tot AS (
  SELECT e.*, h.hours, h.rate, h.ids,
         e.fee + coalesce(billing.round_to_granularity(h.hours * h.rate, e.currency), 0)
           AS subtotal
  FROM eng e LEFT JOIN hrs h ON h.engagement_id = e.id),
ins AS (
  INSERT INTO billing.invoices (firm_id, client_id, engagement_id, invoice_number, status,
      currency, subtotal_cents, tax_cents, total_cents, issue_date, due_date, period_start,
      period_end, is_auto_generated, autopay_opt_in, autopay_status)
  SELECT t.firm_id, t.client_id, t.id, 'PKG-' || t.id || '-' || to_char(t.ps, 'YYYY-MM-DD'),
         'sent', t.currency, t.subtotal, x.tax, t.subtotal + x.tax, date '2026-11-24',
         date '2026-11-24' + t.payment_terms_days, t.ps, t.pe, true, false, 'idle'
  FROM tot t, LATERAL (SELECT billing.round_to_granularity(t.subtotal, t.currency,
                                  t.tax_rate_bp, 10000) AS tax) x
  RETURNING id, firm_id, client_id, engagement_id, invoice_number, period_start,
            subtotal_cents, tax_cents, total_cents, currency, period_end, due_date),
li AS (
  INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type, description,
      quantity, rate_cents, amount_cents, time_entry_ids)
  SELECT n.id, n.firm_id, 'package_fee', 'Package Fee - ' || t.title, 1, t.fee, t.fee,
         '{}'::bigint[]
  FROM ins n JOIN tot t ON t.id = n.engagement_id
  UNION ALL
  SELECT n.id, n.firm_id, 'hourly',
         format('Consulting hours (%sh @ %s %s/h)', t.hours,
                billing.format_amount(t.rate, t.currency), t.currency),
         t.hours, t.rate, billing.round_to_granularity(t.hours * t.rate, t.currency), t.ids
  FROM ins n JOIN tot t ON t.id = n.engagement_id WHERE t.hours IS NOT NULL
  RETURNING 1),
te AS (
  UPDATE billing.time_entries t SET invoice_id = x.invoice_id
  FROM (SELECT n.id AS invoice_id, unnest(tt.ids) AS entry_id
        FROM ins n JOIN tot tt ON tt.id = n.engagement_id WHERE tt.ids IS NOT NULL) x
  WHERE t.id = x.entry_id
  RETURNING 1),
aud AS (
  INSERT INTO billing.audit_events (firm_id, category, action, severity, actor, metadata)
  SELECT n.firm_id, 'billing', 'package_invoice_auto_generated', 'INFO', NULL, to_jsonb(m)
  FROM ins n CROSS JOIN LATERAL (SELECT n.id AS invoice_id, n.invoice_number,
         n.engagement_id, n.client_id, date '2026-11-24' AS business_date, n.period_start,
         n.period_end, n.due_date, n.subtotal_cents, n.tax_cents, n.total_cents,
         n.currency) m
  RETURNING 1),
ob AS (
  INSERT INTO billing.outbox (firm_id, topic, msg_key, payload)
  SELECT n.firm_id, 'invoices', n.id::text, to_jsonb(m)
  FROM ins n CROSS JOIN LATERAL (SELECT 'invoice.issued' AS type,
         'invoice.issued:' || n.id AS idempotency_key, n.id AS invoice_id, n.firm_id,
         n.client_id, 'sent' AS status, n.total_cents, n.currency,
         (SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
           AS occurred_at) m
  RETURNING 1)
SELECT (SELECT count(*) FROM ins) AS invoices, (SELECT count(*) FROM li) AS lines,
       (SELECT count(*) FROM aud) AS audit_rows, (SELECT count(*) FROM te) AS entries,
       (SELECT count(*) FROM ob) AS outbox_rows;
