-- reconcile_owner.sql (common/reconcile.c): the invoice and firm of the
-- books that a Stripe charge or PaymentIntent belongs to (a payment first,
-- then an invoice); no row when it is not ours.
-- $1: a charge id, '' for none; $2: a PaymentIntent id, '' for none.
SELECT invoice_id, firm_id, 0, '', ''
  FROM (SELECT invoice_id, firm_id
          FROM billing.payments
         WHERE (stripe_charge_id = nullif($1, '')
                OR stripe_payment_intent_id = nullif($2, ''))
        UNION ALL
        SELECT id, firm_id
          FROM billing.invoices
         WHERE stripe_charge_id = nullif($1, '')
            OR stripe_payment_intent_id = nullif($2, '')) x
 LIMIT 1
