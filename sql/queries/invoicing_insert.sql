-- invoicing_insert.sql (common/invoicing.c): the real run of a batch: the
-- rows of invoicing_preview.sql written (invoices, lines, time entries
-- marked invoiced, audit events, invoice.issued outbox rows), and their
-- counts.
-- $1: the business date; $2: the batch's engagement ids (a bigint[]);
-- $3: the outbox topic (INVOICING_OUTBOX_TOPIC, unprefixed; a parameter so
-- that the topic's name has one owner, invoicing.h).
-- ON CONFLICT DO NOTHING skips an invoice another transaction created
-- meanwhile (rule 1.6's unique engagement/period start); everything after
-- joins `ins`, so a skipped invoice writes nothing else. The conflict
-- target names rule 1.6's index: without one, every unique index of
-- invoices (five) is an arbiter, probed before and re-checked after each
-- row's speculative insertion (~2.5 ms per 1,000 invoices more), and a
-- clash on another one (an invoice number a manual invoice already took)
-- would silently skip the invoice; now it fails the batch with its
-- constraint's name.
-- The CTEs (the same in invoicing_preview.sql and invoicing_insert.sql;
-- they were one C macro, INV_CTE_SQL: each file spells them out so that it
-- reads and EXPLAINs as it runs): eng (period per schedule), per (clipped
-- period), todo (fee, not yet invoiced for that period), hrs (hourly groups
-- by effective rate), lines, inv (numbered invoices with subtotal and tax;
-- engagements with no line, i.e. hourly with nothing to bill, drop out
-- here). The client and "already invoiced" lookups are LATERAL ... LIMIT 1
-- so that they stay one index probe per engagement: as plain joins the
-- planner hashed the whole clients table, and the whole invoices table for
-- the NOT EXISTS, in every batch (a tick got slower the more it had
-- invoiced).
WITH eng AS (
    SELECT e.id, e.firm_id, e.client_id, e.title, e.pricing_mode,
           e.package_fee_cents, e.hourly_rate_cents, e.prorate_partial_periods,
           e.payment_terms_days, e.autopay_cadence, e.start_date, e.end_date,
           c.currency, c.tax_rate_bp, c.autopay_enabled, c.autopay_payment_method_id,
           p.full_start, p.full_end
      FROM billing.engagements e
     CROSS JOIN LATERAL (SELECT c.currency, c.tax_rate_bp, c.autopay_enabled,
                                c.autopay_payment_method_id
                           FROM billing.clients c
                          WHERE c.firm_id = e.firm_id
                            AND c.id = e.client_id
                          LIMIT 1) c
     CROSS JOIN LATERAL (SELECT CASE e.package_fee_schedule
                                    WHEN 'one_time' THEN e.start_date
                                    ELSE date_trunc(u.unit, $1::date::timestamp)::date
                                END AS full_start,
                                CASE e.package_fee_schedule
                                    WHEN 'one_time' THEN e.end_date
                                    ELSE (date_trunc(u.unit, $1::date::timestamp) + u.len
                                          - interval '1 day')::date
                                END AS full_end
                           FROM (SELECT CASE e.package_fee_schedule
                                            WHEN 'monthly' THEN 'month'
                                            WHEN 'quarterly' THEN 'quarter'
                                            ELSE 'year'
                                        END AS unit,
                                        CASE e.package_fee_schedule
                                            WHEN 'monthly' THEN interval '1 month'
                                            WHEN 'quarterly' THEN interval '3 months'
                                            ELSE interval '1 year'
                                        END AS len) u) p
     WHERE e.id = ANY($2::bigint[])
       AND e.status = 'current'
       AND e.start_date <= $1::date
       AND (e.package_fee_schedule <> 'one_time' OR e.end_date IS NOT NULL)
       AND (e.end_date IS NULL OR e.end_date >= p.full_start)
),
per AS (
    SELECT eng.*, greatest(eng.start_date, eng.full_start) AS period_start,
           least(coalesce(eng.end_date, eng.full_end), eng.full_end) AS period_end
      FROM eng
),
todo AS (
    SELECT per.*,
           CASE WHEN per.pricing_mode IN ('package', 'mixed')
                 AND per.package_fee_cents IS NOT NULL THEN
               CASE WHEN per.prorate_partial_periods
                         AND (per.period_start <> per.full_start
                              OR per.period_end <> per.full_end)
                    THEN billing.round_to_granularity(per.package_fee_cents, per.currency,
                                                      per.period_end - per.period_start + 1,
                                                      per.full_end - per.full_start + 1)
                    ELSE billing.round_to_granularity(per.package_fee_cents, per.currency)
               END
           END AS fee_cents
      FROM per
      LEFT JOIN LATERAL (SELECT true AS done
                           FROM billing.invoices x
                          WHERE x.engagement_id = per.id
                            AND x.period_start = per.period_start
                            AND x.is_auto_generated
                          LIMIT 1) x ON true
     WHERE x.done IS NULL
),
hrs AS (
    SELECT t.engagement_id, coalesce(t.hourly_rate_cents, d.hourly_rate_cents) AS rate,
           sum(t.hours)::numeric(12,2) AS hours, array_agg(t.id ORDER BY t.id) AS ids
      FROM todo d
      JOIN billing.time_entries t ON t.engagement_id = d.id
     WHERE d.pricing_mode IN ('hourly', 'mixed')
       AND t.approved
       AND t.invoice_id IS NULL
       AND t.work_date < d.period_start
     GROUP BY t.engagement_id, coalesce(t.hourly_rate_cents, d.hourly_rate_cents)
),
lines AS (
    SELECT d.id AS engagement_id, 0::bigint AS ord, 'package_fee'::text AS line_type,
           'Package Fee - ' || d.title AS description, 1::numeric(12,2) AS quantity,
           d.fee_cents AS rate_cents, d.fee_cents AS amount_cents,
           '{}'::bigint[] AS time_entry_ids
      FROM todo d
     WHERE d.fee_cents IS NOT NULL
    UNION ALL
    SELECT h.engagement_id, 1 + h.rate, 'hourly',
           format('Consulting hours (%sh @ %s %s/h)', h.hours,
                  billing.format_amount(h.rate, d.currency), d.currency),
           h.hours, h.rate, billing.round_to_granularity(h.hours * h.rate, d.currency),
           h.ids
      FROM hrs h
      JOIN todo d ON d.id = h.engagement_id
),
inv AS (
    SELECT d.*, s.subtotal,
           billing.round_to_granularity(s.subtotal, d.currency, d.tax_rate_bp, 10000) AS tax,
           CASE WHEN d.pricing_mode = 'hourly' THEN 'HRS-' ELSE 'PKG-' END
               || d.id || '-' || to_char(d.period_start, 'YYYY-MM-DD') AS invoice_number,
           $1::date + d.payment_terms_days AS due_date
      FROM todo d
      JOIN (SELECT l.engagement_id, sum(l.amount_cents)::bigint AS subtotal
              FROM lines l
             GROUP BY l.engagement_id) s ON s.engagement_id = d.id
),
-- Review and legal numbers (sql/012): a firm with review_before_issue gets
-- drafts (no number, no issue, no invoice.issued); every other invoice
-- takes the next number of its firm's invoice series for the year of the
-- business date. cnt counts them per firm (one settings probe per firm, not
-- per invoice); ctr advances each firm's counter by that count in one
-- upsert, locking its row until the batch commits (in firm order, so two
-- batches lock counters in the same order); each invoice's number is the
-- counter's old value + its row_number.
rv AS (
    SELECT i.*, coalesce(s.review, false) AS review
      FROM inv i
      LEFT JOIN LATERAL (SELECT fs.review_before_issue AS review
                           FROM billing.firm_settings fs
                          WHERE fs.firm_id = i.firm_id) s ON true
),
cnt AS (
    SELECT r.firm_id, count(*) AS n, billing.legal_prefix(r.firm_id) AS prefix
      FROM rv r
     WHERE NOT r.review
     GROUP BY r.firm_id
),
ctr AS (
    INSERT INTO billing.legal_number_counters AS c (firm_id, series, year, last_value)
    SELECT k.firm_id, 'invoice', extract(year FROM $1::date)::int, k.n
      FROM cnt k
     ORDER BY k.firm_id
        ON CONFLICT (firm_id, series, year) DO UPDATE
       SET last_value = c.last_value + EXCLUDED.last_value
    RETURNING firm_id, last_value
),
nm AS (
    SELECT r.*,
           CASE WHEN r.review THEN NULL
                ELSE billing.format_legal_number(k.prefix, 'invoice',
                                                 extract(year FROM $1::date)::int,
                                                 t.last_value - k.n
                                                 + row_number() OVER (PARTITION BY r.firm_id,
                                                                                   r.review
                                                                          ORDER BY r.id))
           END AS legal_number
      FROM rv r
      LEFT JOIN cnt k ON k.firm_id = r.firm_id AND NOT r.review
      LEFT JOIN ctr t ON t.firm_id = r.firm_id AND NOT r.review
),
ins AS (
    INSERT INTO billing.invoices (firm_id, client_id, engagement_id, invoice_number, status,
                                  currency, subtotal_cents, tax_cents, total_cents, issue_date,
                                  due_date, period_start, period_end, is_auto_generated,
                                  autopay_opt_in, autopay_status, autopay_cadence,
                                  autopay_payment_method_id, autopay_next_charge_at,
                                  legal_number, issued_at)
    SELECT i.firm_id, i.client_id, i.id, i.invoice_number,
           CASE WHEN i.review THEN 'draft' ELSE 'sent' END, i.currency,
           i.subtotal, i.tax, i.subtotal + i.tax, CASE WHEN NOT i.review THEN $1::date END,
           CASE WHEN NOT i.review THEN i.due_date END,
           i.period_start, i.period_end, true, i.autopay_enabled,
           CASE WHEN i.autopay_enabled AND NOT i.review THEN 'scheduled' ELSE 'idle' END,
           i.autopay_cadence, i.autopay_payment_method_id,
           CASE WHEN i.autopay_enabled AND NOT i.review THEN
               (CASE i.autopay_cadence
                    WHEN 'on_issue' THEN $1::date
                    WHEN 'on_due' THEN i.due_date
                    WHEN 'monthly' THEN date_trunc('month', i.due_date::timestamp)::date
                    ELSE date_trunc('quarter', i.due_date::timestamp)::date
                END)::timestamp AT TIME ZONE 'UTC'
           END,
           i.legal_number, CASE WHEN NOT i.review THEN now() END
      FROM nm i
     ORDER BY i.id
        ON CONFLICT (engagement_id, period_start) WHERE is_auto_generated DO NOTHING
    RETURNING id, firm_id, client_id, engagement_id, invoice_number, currency,
              subtotal_cents, tax_cents, total_cents, period_start, period_end, due_date,
              status, legal_number
),
li AS (
    INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type, description,
                                            quantity, rate_cents, amount_cents, time_entry_ids)
    SELECT n.id, n.firm_id, l.line_type, l.description, l.quantity, l.rate_cents,
           l.amount_cents, l.time_entry_ids
      FROM ins n
      JOIN lines l ON l.engagement_id = n.engagement_id
     ORDER BY n.id, l.ord
    RETURNING 1
),
-- "t.id = ANY (the line's ids)": a primary-key probe per billed entry. (A
-- join to unnest() made the planner hash all of time_entries, a scan of the
-- whole table per batch.)
te AS (
    UPDATE billing.time_entries t
       SET invoice_id = n.id
      FROM ins n
      JOIN lines l ON l.engagement_id = n.engagement_id
     WHERE l.line_type = 'hourly'
       AND t.id = ANY (l.time_entry_ids)
       AND t.invoice_id IS NULL
    RETURNING 1
),
-- The audit metadata and the outbox payload are to_jsonb() of a row whose
-- column names are the keys: the same jsonb values as jsonb_build_object of
-- those keys, built in 60-75% of its time (no key/value argument arrays;
-- dates are converted by the JSON encoder, always as YYYY-MM-DD whatever
-- DateStyle, instead of by to_char). occurred_at is an uncorrelated
-- sub-select, so it is computed once per statement (an InitPlan), not once
-- per row.
aud AS (
    INSERT INTO billing.audit_events (firm_id, category, action, severity, actor, metadata)
    SELECT n.firm_id, 'billing',
           CASE WHEN n.invoice_number LIKE 'HRS-%' THEN 'hourly_invoice_auto_generated'
                ELSE 'package_invoice_auto_generated'
           END,
           'INFO', NULL, to_jsonb(m)
      FROM ins n
     CROSS JOIN LATERAL (SELECT n.id AS invoice_id, n.invoice_number, n.engagement_id,
                                n.client_id, $1::date AS business_date, n.period_start,
                                n.period_end, n.due_date, n.subtotal_cents, n.tax_cents,
                                n.total_cents, n.currency) m
     ORDER BY n.id
    RETURNING 1
),
ob AS (
    INSERT INTO billing.outbox (firm_id, topic, msg_key, payload)
    SELECT n.firm_id, $3::text, n.id::text,
           billing.invoice_event_payload('invoice.issued', 'invoice.issued:' || n.id, n.id,
                                         n.firm_id, n.client_id, n.status, n.total_cents,
                                         n.currency, 0, n.legal_number)
      FROM ins n
     WHERE n.status = 'sent'
     ORDER BY n.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM li),
       (SELECT count(*) FROM te), (SELECT count(*) FROM aud), (SELECT count(*) FROM ob),
       (SELECT count(*) FROM ins WHERE legal_number IS NOT NULL),
       (SELECT coalesce(sum(n), 0) FROM cnt)
