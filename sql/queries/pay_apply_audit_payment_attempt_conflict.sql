-- pay_apply_audit_payment_attempt_conflict.sql (payment_apply.c, pay_apply).
SELECT billing.audit(a.firm_id, 'payment_attempt_conflict', 'CRITICAL',
NULL, jsonb_build_object('attempt_id', a.id, 'invoice_id',
a.invoice_id, 'stripe_message', $2::text))
FROM billing.payment_attempts a WHERE a.id = $1::bigint
