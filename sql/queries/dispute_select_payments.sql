-- dispute_select_payments.sql (disputes.c, refund_apply).
SELECT i.currency, i.status, i.amount_paid_cents, i.refunded_cents,
(SELECT p.id FROM billing.payments p WHERE p.invoice_id = i.id
AND p.source = 'stripe' AND (p.stripe_charge_id = $3
OR p.stripe_payment_intent_id = nullif($4, ''))
ORDER BY p.stripe_charge_id = $3 DESC LIMIT 1), i.client_id
FROM billing.invoices i WHERE i.id = $1 AND i.firm_id = $2 FOR UPDATE
