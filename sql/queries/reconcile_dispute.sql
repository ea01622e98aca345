-- reconcile_dispute.sql (common/reconcile.c): the books' dispute of a Stripe
-- dispute: invoice, firm, amount, currency, and its state as
-- recon_dispute_state writes Stripe's (a closed one as its resolution).
-- $1: the Stripe dispute id.
SELECT invoice_id, firm_id, amount_cents, currency,
       CASE WHEN status = 'closed' THEN resolution ELSE status END
  FROM billing.payment_disputes
 WHERE stripe_dispute_id = $1
