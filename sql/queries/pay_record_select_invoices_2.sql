-- pay_record_select_invoices_2.sql (payment_record.c, payments_record_failure).
SELECT status, payment_retry_count FROM billing.invoices
WHERE id = $1::bigint FOR UPDATE
