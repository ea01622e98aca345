-- 021_invoice_documents_lookup.sql: the notifier finds an invoice's or a
-- credit note's stored document by invoice id (common/document.c,
-- document_fetch and the store's re-read: invoice_id = $1 AND credit_note_id
-- IS NOT DISTINCT FROM $2). 016's indexes are partial on kind ('invoice'
-- alone, or by credit_note_id), so those lookups matched none of them and
-- read the whole table: twice per e-mail, a cost that grew with every
-- document stored (tests/bench/notifier: 1.05 ms per lookup at 3,000
-- documents, 0.08 ms through an index; one notifier fell from 52 to 22-34
-- e-mails/s over 10,000 invoices). An index on invoice_id serves both.
CREATE INDEX invoice_documents_invoice_id_idx ON billing.invoice_documents (invoice_id);
