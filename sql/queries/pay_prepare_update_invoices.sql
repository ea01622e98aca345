-- pay_prepare_update_invoices.sql (payment_prepare.c, pay_unfinished).
UPDATE billing.invoices SET autopay_status = 'processing'
WHERE id = $1::bigint AND autopay_opt_in
