-- pay_apply_with_payment_attempts_2.sql (payment_apply.c, pay_abandon).
WITH a AS (UPDATE billing.payment_attempts SET status = 'abandoned',
finished_at = now(), failure_message = 'no PaymentIntent at Stripe for this attempt''s key' WHERE id = $1::bigint
RETURNING id, firm_id, invoice_id, idempotency_key)
SELECT billing.audit(firm_id, 'payment_attempt_abandoned', 'INFO', NULL,
jsonb_build_object('attempt_id', id, 'invoice_id', invoice_id,
'idempotency_key', idempotency_key)) FROM a
