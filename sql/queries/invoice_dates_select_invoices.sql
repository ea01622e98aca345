-- invoice_dates_select_invoices.sql (invoice_dates.c, invoice_issue_date).
SELECT to_char(issue_date, 'YYYY-MM-DD') FROM billing.invoices
WHERE id = $1::bigint AND issue_date IS NOT NULL
