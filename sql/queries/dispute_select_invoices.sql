-- dispute_select_invoices.sql (disputes.c, dispute_apply).
SELECT currency FROM billing.invoices
WHERE id = $1 AND firm_id = $2 FOR UPDATE
