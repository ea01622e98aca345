-- dispute_select_refunds.sql (disputes.c, refund_targets).
SELECT pi, ch, left_cents FROM (
SELECT p.id, p.stripe_payment_intent_id AS pi, coalesce(p.stripe_charge_id, '') AS ch,
greatest(p.received_cents - coalesce((SELECT sum(f.applied_cents)
FROM billing.refunds f WHERE f.payment_id = p.id OR (p.stripe_charge_id IS NOT
NULL AND f.stripe_charge_id = p.stripe_charge_id)), 0), 0) AS left_cents
FROM billing.payments p WHERE p.invoice_id = $1 AND p.source = 'stripe'
UNION ALL SELECT 0, coalesce(i.stripe_payment_intent_id, ''),
coalesce(i.stripe_charge_id, ''), i.amount_paid_cents FROM billing.invoices i
WHERE i.id = $1 AND NOT EXISTS (SELECT 1 FROM billing.payments p
WHERE p.invoice_id = i.id AND p.source = 'stripe')
AND (i.stripe_payment_intent_id IS NOT NULL OR i.stripe_charge_id IS NOT NULL))
t WHERE left_cents > 0 ORDER BY id DESC
