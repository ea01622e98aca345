-- stripe_match_by_charge.sql (common/stripe_match.c): the invoice of a
-- charge: a payment of it first, then an invoice carrying it (the lowest
-- invoice id when several do).
-- $1: the charge id.
SELECT invoice_id, firm_id, attempt_id, ours
  FROM (SELECT invoice_id, firm_id, NULL::bigint AS attempt_id, true AS ours, 1 AS o
          FROM billing.payments
         WHERE stripe_charge_id = $1
        UNION ALL
        SELECT id, firm_id, NULL, false, 2
          FROM billing.invoices
         WHERE stripe_charge_id = $1) x
 ORDER BY o, invoice_id
 LIMIT 1
