-- verify_tenant.sql (common/verify.c): check 7, no reference across firms
-- (rule 1.3).
-- $1: the firm to check, NULL for every firm (a reference is kept when
-- either side is that firm); $2: at most this many rows, NULL for all (the
-- wrapper as in verify_line_items_sum.sql).
-- Every reference between firm-owned rows, including the ones that are not
-- foreign keys (a line's time_entry_ids, ids inside audit metadata and
-- outbox payloads). A missing parent is reported too: with foreign keys
-- bypassed it is the same kind of damage. Three shapes repeat, once per
-- reference (they were the C macros VT, VC and VJ): a parent of another
-- firm or missing; a parent of another client, where the schema's composite
-- key includes client_id; an id inside jsonb naming another firm's row.
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           SELECT x.firm_id, 'engagements', x.id,
                  format('engagement %s of firm %s: client %s is %s', x.id, x.firm_id, x.client_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.engagements x
             LEFT JOIN billing.clients y ON y.id = x.client_id
            WHERE x.client_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'engagements', x.id,
                  format('engagement %s of firm %s: parent engagement %s is %s', x.id, x.firm_id, x.parent_engagement_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.engagements x
             LEFT JOIN billing.engagements y ON y.id = x.parent_engagement_id
            WHERE x.parent_engagement_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'engagements', x.id,
                  format('engagement %s of client %s: parent engagement %s belongs to client %s', x.id, x.client_id,
                         x.parent_engagement_id, y.client_id)
             FROM billing.engagements x
             JOIN billing.engagements y ON y.id = x.parent_engagement_id
            WHERE ($1::bigint IS NULL OR x.firm_id = $1::bigint)
              AND y.client_id <> x.client_id
           UNION ALL
           SELECT x.firm_id, 'invoices', x.id,
                  format('invoice %s of firm %s: client %s is %s', x.id, x.firm_id, x.client_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.invoices x
             LEFT JOIN billing.clients y ON y.id = x.client_id
            WHERE x.client_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'invoices', x.id,
                  format('invoice %s of firm %s: engagement %s is %s', x.id, x.firm_id, x.engagement_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.invoices x
             LEFT JOIN billing.engagements y ON y.id = x.engagement_id
            WHERE x.engagement_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'invoices', x.id,
                  format('invoice %s of client %s: engagement %s belongs to client %s', x.id, x.client_id,
                         x.engagement_id, y.client_id)
             FROM billing.invoices x
             JOIN billing.engagements y ON y.id = x.engagement_id
            WHERE ($1::bigint IS NULL OR x.firm_id = $1::bigint)
              AND y.client_id <> x.client_id
           UNION ALL
           SELECT x.firm_id, 'invoice_line_items', x.id,
                  format('line %s of firm %s: invoice %s is %s', x.id, x.firm_id, x.invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.invoice_line_items x
             LEFT JOIN billing.invoices y ON y.id = x.invoice_id
            WHERE x.invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'time_entries', x.id,
                  format('time entry %s of firm %s: engagement %s is %s', x.id, x.firm_id, x.engagement_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.time_entries x
             LEFT JOIN billing.engagements y ON y.id = x.engagement_id
            WHERE x.engagement_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'time_entries', x.id,
                  format('time entry %s of firm %s: invoice %s is %s', x.id, x.firm_id, x.invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.time_entries x
             LEFT JOIN billing.invoices y ON y.id = x.invoice_id
            WHERE x.invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'payment_attempts', x.id,
                  format('payment attempt %s of firm %s: invoice %s is %s', x.id, x.firm_id, x.invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.payment_attempts x
             LEFT JOIN billing.invoices y ON y.id = x.invoice_id
            WHERE x.invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'payments', x.id,
                  format('payment %s of firm %s: invoice %s is %s', x.id, x.firm_id, x.invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.payments x
             LEFT JOIN billing.invoices y ON y.id = x.invoice_id
            WHERE x.invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'refunds', x.id,
                  format('refund %s of firm %s: invoice %s is %s', x.id, x.firm_id, x.invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.refunds x
             LEFT JOIN billing.invoices y ON y.id = x.invoice_id
            WHERE x.invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'payment_disputes', x.id,
                  format('dispute %s of firm %s: invoice %s is %s', x.id, x.firm_id, x.invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.payment_disputes x
             LEFT JOIN billing.invoices y ON y.id = x.invoice_id
            WHERE x.invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'credit_ledger', x.id,
                  format('credit entry %s of firm %s: client %s is %s', x.id, x.firm_id, x.client_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.credit_ledger x
             LEFT JOIN billing.clients y ON y.id = x.client_id
            WHERE x.client_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'credit_ledger', x.id,
                  format('credit entry %s of firm %s: source invoice %s is %s', x.id, x.firm_id, x.source_invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.credit_ledger x
             LEFT JOIN billing.invoices y ON y.id = x.source_invoice_id
            WHERE x.source_invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'credit_ledger', x.id,
                  format('credit entry %s of client %s: source invoice %s belongs to client %s', x.id, x.client_id,
                         x.source_invoice_id, y.client_id)
             FROM billing.credit_ledger x
             JOIN billing.invoices y ON y.id = x.source_invoice_id
            WHERE ($1::bigint IS NULL OR x.firm_id = $1::bigint)
              AND y.client_id <> x.client_id
           UNION ALL
           SELECT x.firm_id, 'credit_ledger', x.id,
                  format('credit entry %s of firm %s: invoice applied to %s is %s', x.id, x.firm_id, x.applied_to_invoice_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.credit_ledger x
             LEFT JOIN billing.invoices y ON y.id = x.applied_to_invoice_id
            WHERE x.applied_to_invoice_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'credit_ledger', x.id,
                  format('credit entry %s of client %s: invoice applied to %s belongs to client %s', x.id, x.client_id,
                         x.applied_to_invoice_id, y.client_id)
             FROM billing.credit_ledger x
             JOIN billing.invoices y ON y.id = x.applied_to_invoice_id
            WHERE ($1::bigint IS NULL OR x.firm_id = $1::bigint)
              AND y.client_id <> x.client_id
           UNION ALL
           SELECT x.firm_id, 'credit_ledger', x.id,
                  format('credit entry %s of firm %s: audit event %s is %s', x.id, x.firm_id, x.audit_event_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.credit_ledger x
             LEFT JOIN billing.audit_events y ON y.id = x.audit_event_id
            WHERE x.audit_event_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'credit_ledger', x.id,
                  format('credit entry %s of firm %s: expired credit entry %s is %s', x.id, x.firm_id, x.expired_entry_id,
                         CASE WHEN y.id IS NULL THEN 'missing' ELSE 'of firm ' || y.firm_id END)
             FROM billing.credit_ledger x
             LEFT JOIN billing.credit_ledger y ON y.id = x.expired_entry_id
            WHERE x.expired_entry_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id IS DISTINCT FROM x.firm_id
           UNION ALL
           SELECT x.firm_id, 'audit_events', x.id,
                  format('audit event %s of firm %s names invoice %s of firm %s', x.id, x.firm_id, y.id,
                         y.firm_id)
             FROM billing.audit_events x
             JOIN billing.invoices y ON y.id = CASE WHEN (x.metadata->>'invoice_id') ~ '^[0-9]{1,18}$' THEN (x.metadata->>'invoice_id')::bigint END
            WHERE x.firm_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id <> x.firm_id
           UNION ALL
           SELECT x.firm_id, 'audit_events', x.id,
                  format('audit event %s of firm %s names client %s of firm %s', x.id, x.firm_id, y.id,
                         y.firm_id)
             FROM billing.audit_events x
             JOIN billing.clients y ON y.id = CASE WHEN (x.metadata->>'client_id') ~ '^[0-9]{1,18}$' THEN (x.metadata->>'client_id')::bigint END
            WHERE x.firm_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id <> x.firm_id
           UNION ALL
           SELECT x.firm_id, 'outbox', x.id,
                  format('outbox event %s of firm %s names invoice %s of firm %s', x.id, x.firm_id, y.id,
                         y.firm_id)
             FROM billing.outbox x
             JOIN billing.invoices y ON y.id = CASE WHEN (x.payload->>'invoice_id') ~ '^[0-9]{1,18}$' THEN (x.payload->>'invoice_id')::bigint END
            WHERE x.firm_id IS NOT NULL
              AND (($1::bigint IS NULL OR x.firm_id = $1::bigint) OR ($1::bigint IS NULL OR y.firm_id = $1::bigint))
              AND y.firm_id <> x.firm_id
           UNION ALL
           SELECT l.firm_id, 'invoice_line_items', l.id,
                  format('line %s of invoice %s (firm %s) lists time entry %s, which is %s', l.id,
                         l.invoice_id, l.firm_id, x.te,
                         CASE WHEN t.id IS NULL THEN 'missing' ELSE 'of firm ' || t.firm_id END)
             FROM billing.invoice_line_items l
            CROSS JOIN LATERAL unnest(l.time_entry_ids) x(te)
             LEFT JOIN billing.time_entries t ON t.id = x.te
            WHERE cardinality(l.time_entry_ids) > 0
              AND (($1::bigint IS NULL OR l.firm_id = $1::bigint) OR ($1::bigint IS NULL OR t.firm_id = $1::bigint))
              AND t.firm_id IS DISTINCT FROM l.firm_id
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
