-- invoice_manual_created.sql (common/invoice_manual.c): the audit event
-- invoice_created of a manual invoice and its invoice.issued lifecycle
-- event, from billing.invoice_event (sql/012: the one producer of invoice
-- events; legal_number and amount_paid_cents in the payload, as the
-- contract names them).
-- $1: the invoice id; $2: the actor.
WITH i AS (SELECT * FROM billing.invoices WHERE id = $1),
aud AS (
    INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, metadata)
    SELECT firm_id, 'billing', 'invoice_created', 'INFO', $2,
           jsonb_build_object('invoice_id', id, 'invoice_number', invoice_number,
               'client_id', client_id, 'engagement_id', engagement_id,
               'engagement_override', engagement_override,
               'subtotal_cents', subtotal_cents, 'tax_cents', tax_cents,
               'total_cents', total_cents, 'currency', currency,
               'issue_date', issue_date, 'due_date', due_date, 'manual', true)
      FROM i
    RETURNING id)
SELECT billing.invoice_event($1, 'invoice.issued') FROM aud
