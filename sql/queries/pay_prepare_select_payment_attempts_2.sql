-- pay_prepare_select_payment_attempts_2.sql (payment_prepare.c, pay_prepare).
SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts
WHERE invoice_id = $1::bigint
