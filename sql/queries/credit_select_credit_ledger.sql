-- credit_select_credit_ledger.sql (credit.c, credit_sum).
SELECT coalesce(sum(CASE entry_type WHEN 'credit' THEN amount_cents
ELSE -amount_cents END), 0) FROM billing.credit_ledger
WHERE client_id = $1
