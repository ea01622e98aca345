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
-- The planning CTEs (eng, per, todo, hrs, lines, inv) are _invoicing_plan.sql,
-- shared with invoicing_preview.sql; rv onwards are the writes.
\ir _invoicing_plan.sql
,
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
