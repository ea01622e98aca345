-- pay_apply_select_invoices_2.sql (payment_apply.c, pay_abandon).
SELECT a.status, i.autopay_opt_in AND c.autopay_enabled, i.id
FROM billing.invoices i JOIN billing.payment_attempts a
ON a.invoice_id = i.id JOIN billing.clients c ON c.id = i.client_id
WHERE a.id = $1::bigint FOR UPDATE OF i, a
