-- document_insert.sql (common/document.c): stores an invoice's or credit
-- note's PDF once (a document already stored is kept: the first one is the
-- one the client got).
-- $1: firm; $2: invoice; $3: credit note (NULL for an invoice's); $4: kind;
-- $5: the SHA-256 (hex); $6: the bytes (binary).
INSERT INTO billing.invoice_documents (firm_id, invoice_id, credit_note_id, kind, sha256, bytes)
VALUES ($1::bigint, $2::bigint, $3::bigint, $4, $5, $6::bytea)
    ON CONFLICT DO NOTHING
