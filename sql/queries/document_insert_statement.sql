-- document_insert_statement.sql (common/document.c): stores a client's
-- statement PDF as a document and records it as the statement of its date.
-- $1: firm; $2: client; $3: the statement date; $4: the period start;
-- $5: the SHA-256 (hex); $6: the bytes (binary).
WITH d AS (
    INSERT INTO billing.invoice_documents (firm_id, kind, sha256, bytes)
    VALUES ($1::bigint, 'statement', $5, $6::bytea)
    RETURNING id
)
INSERT INTO billing.statement_documents (document_id, firm_id, client_id, statement_date,
                                         period_start)
SELECT d.id, $1::bigint, $2::bigint, $3::date, $4::date
  FROM d
RETURNING document_id
