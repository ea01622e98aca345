-- refund_invoice.sql (common/refund_requests.c): what `billingctl refund`
-- needs of an invoice: firm, status, currency, amounts, and the
-- PaymentIntent that paid it (the invoice's own, else its latest Stripe
-- payment's; '' when none) with its charge as a fallback.
-- $1: the invoice id.
SELECT i.firm_id, i.status, i.currency, i.amount_paid_cents, i.refunded_cents, i.total_cents,
       coalesce(i.stripe_payment_intent_id,
                (SELECT p.stripe_payment_intent_id
                   FROM billing.payments p
                  WHERE p.invoice_id = i.id AND p.source = 'stripe'
                  ORDER BY p.id DESC LIMIT 1), ''),
       coalesce(i.stripe_charge_id, '')
  FROM billing.invoices i
 WHERE i.id = $1
