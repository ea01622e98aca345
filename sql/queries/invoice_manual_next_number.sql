-- invoice_manual_next_number.sql (common/invoice_manual.c): the next free
-- sequence number of a firm's INV-<firm id>-<NNNNNN> invoice numbers (the
-- caller holds the firm row FOR NO KEY UPDATE, so two operators never take
-- the same one).
-- $1: the firm id.
SELECT coalesce(max(substring(invoice_number FROM '^INV-[0-9]+-([0-9]{1,18})$')::bigint), 0) + 1
  FROM billing.invoices
 WHERE firm_id = $1
   AND invoice_number LIKE 'INV-' || $1 || '-%'
