-- credit_select_invoices.sql (credit.c, credit_apply_to_invoice).
SELECT i.firm_id, i.client_id, i.status, i.currency, i.total_cents,
i.amount_paid_cents, i.invoice_number FROM billing.invoices i
WHERE i.id = $1 FOR UPDATE
