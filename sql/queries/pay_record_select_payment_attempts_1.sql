-- pay_record_select_payment_attempts_1.sql (payment_record.c, pay_money_context).
SELECT i.currency, (SELECT a.id FROM billing.payment_attempts a
WHERE a.invoice_id = i.id AND (a.id = $3::bigint
OR a.stripe_payment_intent_id = $2) ORDER BY a.id = $3::bigint
DESC LIMIT 1)
FROM billing.invoices i WHERE i.id = $1::bigint FOR UPDATE
