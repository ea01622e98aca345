-- pay_record_insert_payment_attempts.sql (payment_record.c, pay_failure_attempt).
INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind,
idempotency_key, amount_cents, stripe_payment_intent_id, status, currency)
SELECT i.firm_id, i.id,
(SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts
WHERE invoice_id = i.id), 'autopay', $2,
CASE WHEN $4::bigint > 0 THEN $4::bigint
ELSE billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents) END,
$3, 'processing',
i.currency
FROM billing.invoices i WHERE i.id = $1::bigint
AND NOT billing.never_charged(i.status) RETURNING id
