-- itr_payment_failed.sql (common/invoice_transitions.c): a payment of the
-- invoice failed (billing.payment_failed, sql/022).
-- $1 invoice, $2 new status, $3 failed at, $4 message, $5 code,
-- $6 retry count, $7 days to the next retry (NULL: none), $8 PaymentIntent,
-- $9 attempt, $10 the next action's audit, $11 a hard decline (boolean).
SELECT billing.payment_failed($1::bigint, $2, $3::timestamptz, $4, $5, $6::integer,
                              $7::integer, $8, $9::bigint, $10, $11::boolean)
