-- credit_apply_cli_select_invoices.sql (credit_apply_cli.c, apply_work).
SELECT status, total_cents, amount_paid_cents, client_id
FROM billing.invoices WHERE id = $1
