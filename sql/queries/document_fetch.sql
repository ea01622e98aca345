-- document_fetch.sql (common/document.c): the stored PDF of an invoice or
-- credit note (read as a binary result).
-- $1: invoice; $2: credit note (NULL for an invoice's).
SELECT bytes
  FROM billing.invoice_documents
 WHERE invoice_id = $1::bigint
   AND credit_note_id IS NOT DISTINCT FROM $2::bigint
   AND kind IN ('invoice', 'credit_note')
