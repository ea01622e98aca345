-- pay_record_update_payment_attempts_2.sql (payment_record.c, payments_record_failure).
UPDATE billing.payment_attempts SET status = 'failed', failure_code = $2,
failure_message = $3, finished_at = now(), failed_at = $5::timestamptz,
stripe_payment_intent_id = coalesce($4, stripe_payment_intent_id)
WHERE id = $1::bigint
