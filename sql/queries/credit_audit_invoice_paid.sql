-- credit_audit_invoice_paid.sql (credit.c, credit_apply_to_invoice).
SELECT billing.audit($1, 'invoice_paid', 'INFO', $4,
jsonb_build_object('invoice_id', $3::bigint, 'client_id', $2::bigint,
'amount_paid_cents', $5::bigint, 'source', 'credit'))
