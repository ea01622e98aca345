-- pay_apply_select_invoices_1.sql (payment_apply.c, pay_apply).
SELECT a.status FROM billing.invoices i JOIN billing.payment_attempts a
ON a.invoice_id = i.id WHERE a.id = $1::bigint FOR UPDATE
