-- pay_record_with_invoices.sql (payment_record.c, payments_resume).
WITH u AS (UPDATE billing.invoices SET autopay_status = 'scheduled'
WHERE id = $1::bigint AND autopay_status = 'needs_attention'
RETURNING id, firm_id)
SELECT billing.audit(firm_id, 'autopay_resumed', 'INFO', $2,
jsonb_build_object('invoice_id', id)) FROM u
