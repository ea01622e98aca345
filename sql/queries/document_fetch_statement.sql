-- document_fetch_statement.sql (common/document.c): a client's stored
-- statement of a date: the bytes, its document id and the period start it
-- covers (a binary result: the text columns as their text).
-- $1: the client id; $2: the statement date.
SELECT d.bytes, s.document_id::text, s.period_start::text
  FROM billing.statement_documents s
  JOIN billing.invoice_documents d ON d.id = s.document_id
 WHERE s.client_id = $1::bigint
   AND s.statement_date = $2::date
