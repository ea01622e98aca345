-- invoice_manual_line.sql (common/invoice_manual.c): one line of a manual
-- invoice.
-- $1 invoice, $2 firm, $3 line type, $4 description, $5 quantity (hours,
-- two decimals), $6 rate, $7 amount (minor units).
INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, description,
       quantity, rate_cents, amount_cents)
VALUES ($1, $2, $3, $4, $5::numeric, $6, $7)
