-- lifecycle_credit_mode.sql (common/lifecycle.c): whether a credit note of
-- an invoice refunds by default: true when a Stripe payment paid some of it
-- (or the invoice carries a Stripe charge).
-- $1: the invoice id.
SELECT EXISTS (SELECT 1
                 FROM billing.payments
                WHERE invoice_id = $1::bigint
                  AND source = 'stripe'
                  AND amount_cents > 0)
       OR EXISTS (SELECT 1
                    FROM billing.invoices
                   WHERE id = $1::bigint
                     AND stripe_charge_id IS NOT NULL)
