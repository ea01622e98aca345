-- pay_record_with_payment_attempts.sql (payment_record.c, payments_mark_processing).
WITH att AS (UPDATE billing.payment_attempts SET status = 'processing',
stripe_payment_intent_id = $2
WHERE (id = $3::bigint OR stripe_payment_intent_id = $2)
AND status IN ('processing', 'transient_error') RETURNING id)
UPDATE billing.invoices SET autopay_status = 'processing'
WHERE id = $1::bigint AND autopay_opt_in AND NOT billing.invoice_closed(status)
AND status <> 'paid' AND EXISTS (SELECT 1 FROM att)
