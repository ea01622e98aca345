-- pay_record_select_payment_attempts_2.sql (payment_record.c, pay_failure_attempt).
SELECT id, status FROM billing.payment_attempts
WHERE (id = $1::bigint AND $1::bigint > 0)
OR ($1::bigint = 0 AND stripe_payment_intent_id = $2)
FOR UPDATE
