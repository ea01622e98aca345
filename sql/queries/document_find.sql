-- document_find.sql (common/document.c): the stored document of an invoice
-- or credit note: its id and SHA-256.
-- $1: invoice; $2: credit note (NULL for an invoice's); $3: kind.
SELECT id, sha256
  FROM billing.invoice_documents
 WHERE invoice_id = $1::bigint
   AND credit_note_id IS NOT DISTINCT FROM $2::bigint
   AND kind = $3
