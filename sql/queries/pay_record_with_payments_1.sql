-- pay_record_with_payments_1.sql (payment_record.c, payments_apply_success).
WITH pay AS (INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source,
stripe_payment_intent_id, currency, stripe_charge_id, received_cents)
SELECT firm_id, id, 0, 'stripe', $2::text, $3::text, $4::text, $5::bigint
FROM billing.invoices
WHERE id = $1::bigint
ON CONFLICT (stripe_payment_intent_id) DO NOTHING RETURNING id)
SELECT pay.id FROM pay
