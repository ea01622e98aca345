-- dispute_select_take_back.sql (disputes.c, refund_apply).
SELECT from_credit_cents, from_invoice_cents FROM billing.take_back($1,
$2::bigint, $3, 'refund', $4, NULL)
