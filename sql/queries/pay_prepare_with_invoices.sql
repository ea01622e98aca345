-- pay_prepare_with_invoices.sql (payment_prepare.c, pay_cancel).
WITH u AS (UPDATE billing.invoices SET autopay_status = 'cancelled',
autopay_opt_in = false, autopay_next_charge_at = NULL,
next_payment_retry_at = NULL WHERE id = $1::bigint
AND autopay_status <> 'cancelled'
RETURNING id, firm_id, client_id)
SELECT billing.audit(firm_id, 'autopay_cancelled', 'INFO', NULL,
jsonb_build_object('invoice_id', id, 'client_id', client_id,
'reason', 'client autopay disabled')) FROM u
