-- reconcile_refund.sql (common/reconcile.c): the books' refund of a Stripe
-- refund: invoice, firm, the amount applied, the invoice's currency, status.
-- $1: the Stripe refund id.
SELECT f.invoice_id, f.firm_id, f.applied_cents, i.currency, f.status
  FROM billing.refunds f
  JOIN billing.invoices i ON i.id = f.invoice_id
 WHERE f.stripe_refund_id = $1
