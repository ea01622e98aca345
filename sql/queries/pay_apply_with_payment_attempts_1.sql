-- pay_apply_with_payment_attempts_1.sql (payment_apply.c, pay_keep_open).
WITH a AS (UPDATE billing.payment_attempts SET status = 'transient_error',
failure_code = $2, failure_message = $3 WHERE id = $1::bigint
RETURNING invoice_id)
UPDATE billing.invoices i SET autopay_status =
CASE WHEN $4::boolean THEN 'needs_attention'
WHEN i.status = 'failed' THEN 'failed' ELSE 'scheduled' END
FROM a WHERE i.id = a.invoice_id AND i.autopay_opt_in
AND i.autopay_status IN ('processing', 'scheduled', 'failed')
