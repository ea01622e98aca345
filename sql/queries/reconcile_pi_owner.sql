-- reconcile_pi_owner.sql (common/reconcile.c): the firm (and its invoice,
-- 0 when it has none of that id) a PaymentIntent's metadata names, for an
-- intent the books have no payment of.
-- $1: metadata.firm_id; $2: metadata.invoice_id ('0' when absent).
SELECT coalesce((SELECT id
                   FROM billing.invoices
                  WHERE firm_id = f.id
                    AND id::text = $2), 0),
       f.id, 0, '', ''
  FROM billing.firms f
 WHERE f.id::text = $1
