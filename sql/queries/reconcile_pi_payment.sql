-- reconcile_pi_payment.sql (common/reconcile.c): the books' payment of a
-- Stripe PaymentIntent: invoice, firm, what it received, currency, status.
-- $1: the PaymentIntent id.
SELECT invoice_id, firm_id, received_cents, coalesce(currency, ''), 'succeeded'
  FROM billing.payments
 WHERE stripe_payment_intent_id = $1
   AND source = 'stripe'
