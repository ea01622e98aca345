-- reconcile_books_disputes.sql (common/reconcile.c): the books' disputes
-- opened in a window, to read from Stripe by id those its list did not
-- show (the window as in reconcile_books_payments.sql).
-- $1, $2: the window as Unix seconds (inclusive); $3: a firm id, 0 for all.
SELECT stripe_dispute_id, invoice_id, firm_id, amount_cents, currency, status
  FROM billing.payment_disputes
 WHERE opened_at >= to_timestamp($1::bigint)
   AND opened_at < to_timestamp($2::bigint + 1)
   AND ($3::bigint = 0 OR firm_id = $3::bigint)
