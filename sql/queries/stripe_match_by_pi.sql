-- stripe_match_by_pi.sql (common/stripe_match.c): the invoice of a
-- PaymentIntent: our attempt of it first, then a payment, then an invoice
-- carrying it (not ours: someone else created it).
-- $1: the PaymentIntent id.
SELECT invoice_id, firm_id, attempt_id, ours
  FROM (SELECT invoice_id, firm_id, id AS attempt_id, true AS ours, 1 AS o
          FROM billing.payment_attempts
         WHERE stripe_payment_intent_id = $1
        UNION ALL
        SELECT invoice_id, firm_id, NULL, true, 2
          FROM billing.payments
         WHERE stripe_payment_intent_id = $1
        UNION ALL
        SELECT id, firm_id, NULL, false, 3
          FROM billing.invoices
         WHERE stripe_payment_intent_id = $1) x
 ORDER BY o
 LIMIT 1
