-- reconcile_books_refunds.sql (common/reconcile.c): the books' refunds
-- created in a window, to read from Stripe by id those its list did not
-- show (the window as in reconcile_books_payments.sql).
-- $1, $2: the window as Unix seconds (inclusive); $3: a firm id, 0 for all.
SELECT stripe_refund_id, invoice_id, firm_id, applied_cents, '', status
  FROM billing.refunds
 WHERE created_at >= to_timestamp($1::bigint)
   AND created_at < to_timestamp($2::bigint + 1)
   AND ($3::bigint = 0 OR firm_id = $3::bigint)
