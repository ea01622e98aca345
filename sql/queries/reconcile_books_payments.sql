-- reconcile_books_payments.sql (common/reconcile.c): the books' Stripe
-- payments received in a window, to read from Stripe by id those its list
-- did not show. The window predicate is the same in every
-- reconcile_books_*.sql (it was the RECON_WINDOW macro; each file spells it
-- out so it reads and EXPLAINs as it is).
-- $1, $2: the window as Unix seconds (inclusive); $3: a firm id, 0 for all.
SELECT stripe_payment_intent_id, invoice_id, firm_id, received_cents,
       coalesce(currency, ''), 'succeeded'
  FROM billing.payments
 WHERE source = 'stripe'
   AND received_at >= to_timestamp($1::bigint)
   AND received_at < to_timestamp($2::bigint + 1)
   AND ($3::bigint = 0 OR firm_id = $3::bigint)
