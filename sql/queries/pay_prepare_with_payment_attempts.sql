-- pay_prepare_with_payment_attempts.sql (payment_prepare.c, pay_prepare).
WITH a AS (INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no,
kind, idempotency_key, amount_cents, status, payment_method_id,
stripe_customer_id, currency)
SELECT firm_id, id, $2::int, $3, $4, $5::bigint, 'processing', $6, $7, $8
FROM billing.invoices WHERE id = $1::bigint RETURNING id),
i AS (UPDATE billing.invoices SET autopay_status = 'processing',
autopay_last_attempt_at = now() WHERE id = $1::bigint)
SELECT id FROM a
