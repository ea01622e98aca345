-- dispute_give_back.sql (disputes.c, refund_apply).
SELECT to_invoice_cents, to_credit_cents FROM billing.give_back($1,
$2::bigint, $3, current_date)
