-- invoice_manual_insert.sql (common/invoice_manual.c): a manual invoice,
-- issued now (status sent, due 30 days after issue until the engagement's
-- terms apply), with the next legal number of the firm (sql/012).
-- $1 firm, $2 client, $3 engagement (NULL: the trigger links the current
-- one or refuses), $4 engagement_override, $5 its reason, $6 its author,
-- $7 invoice number, $8 subtotal, $9 tax, $10 total (minor units), $11 the
-- issue date, $12 autopay opt-in, $13 the autopay payment method (or NULL),
-- $14 the currency. Returns the invoice id.
INSERT INTO billing.invoices(firm_id, client_id, engagement_id,
       engagement_override, engagement_override_reason, engagement_override_by,
       invoice_number, status, currency, subtotal_cents, tax_cents, total_cents,
       issue_date, due_date, is_auto_generated, autopay_opt_in,
       autopay_payment_method_id, issued_at, legal_number)
SELECT $1, $2, $3, $4::boolean, $5, $6, $7, 'sent', $14, $8, $9, $10,
       $11::date, $11::date + 30, false, $12::boolean, $13, now(),
       billing.format_legal_number(billing.legal_prefix($1::bigint), 'invoice',
           extract(year FROM $11::date)::int,
           billing.take_legal_numbers($1::bigint, 'invoice', extract(year FROM $11::date)::int, 1))
  FROM billing.clients cl
 WHERE cl.id = $2
RETURNING id
