-- pay_prepare_select_payment_attempts_1.sql (payment_prepare.c, pay_unfinished).
SELECT id, idempotency_key, amount_cents, coalesce(stripe_payment_intent_id, ''),
coalesce(payment_method_id, ''), coalesce(stripe_customer_id, ''), currency, status,
firm_id, created_at < greatest(now(), $2::date::timestamp AT TIME ZONE 'UTC')
- interval '23 hours',
coalesce(failure_code = 'idempotency_error', false),
payment_method_id IS NOT DISTINCT FROM $3, extract(epoch FROM created_at)::bigint
FROM billing.payment_attempts
WHERE invoice_id = $1::bigint AND status IN ('processing', 'transient_error')
ORDER BY attempt_no DESC LIMIT 1
