-- pay_apply_update_invoices.sql (payment_apply.c, pay_abandon).
UPDATE billing.invoices SET autopay_status = CASE WHEN status = 'failed'
THEN 'failed' ELSE 'scheduled' END
WHERE id = $1::bigint AND autopay_status IN ('processing', 'scheduled')
