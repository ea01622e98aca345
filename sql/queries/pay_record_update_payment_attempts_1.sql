-- pay_record_update_payment_attempts_1.sql (payment_record.c, payments_apply_success).
UPDATE billing.payment_attempts SET status = 'succeeded', finished_at = now(),
failure_code = NULL, failure_message = NULL, stripe_payment_intent_id = $2
WHERE id = $1::bigint AND status <> 'succeeded'
