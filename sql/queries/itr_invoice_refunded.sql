-- itr_invoice_refunded.sql (common/invoice_transitions.c): a refund change
-- reaches the invoice (billing.invoice_refunded, sql/022); returns the
-- invoice's status and refunded total after it.
-- $1 invoice, $2 change (cents), $3 own money (boolean), $4 charge,
-- $5 refund ids (JSON array), $6 amount paid before, $7 Stripe event id,
-- $8 currency, $9 from credit, $10 from invoice, $11 returned (cents).
SELECT status, refunded_total
  FROM billing.invoice_refunded($1::bigint, $2::bigint, $3::boolean, $4, $5::jsonb, $6::bigint,
                                $7, $8, $9::bigint, $10::bigint, $11::bigint)
