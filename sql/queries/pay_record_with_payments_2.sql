-- pay_record_with_payments_2.sql (payment_record.c, payments_apply_success).
WITH pay AS (UPDATE billing.payments SET amount_cents = $2::bigint
WHERE id = $5::bigint)
UPDATE billing.invoices SET stripe_payment_intent_id = $3,
stripe_charge_id = coalesce($4, stripe_charge_id) WHERE id = $1::bigint
