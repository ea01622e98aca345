-- credit_add.sql (credit.c, credit_add): one credit entry with its
-- credit_created audit event in one statement (the entry's id is drawn
-- first so the audit can name it).
-- $1 firm, $2 client, $3 amount, $4 source, $5 description, $6 reason,
-- $7 approved by, $8 created by, $9 source invoice, $10 expires, $11 source
-- payment.
WITH n AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('billing.credit_ledger', 'id')) AS id),
a AS MATERIALIZED (
    SELECT billing.audit($1, 'credit_created', 'INFO', $8,
               jsonb_strip_nulls(jsonb_build_object('entry_id', n.id, 'client_id', $2::bigint,
                   'amount_cents', $3::bigint, 'source', $4::text,
                   'source_invoice_id', $9::bigint, 'expires_at', $10::date,
                   'reason', $6::text, 'approved_by', $7::text))) AS id
      FROM n)
INSERT INTO billing.credit_ledger (id, firm_id, client_id, entry_type, amount_cents, source,
                                   source_invoice_id, description, reason, approved_by,
                                   created_by, expires_at, created_at, audit_event_id,
                                   source_payment_id)
SELECT n.id, $1, $2, 'credit', $3, $4, $9, $5, $6, $7, $8, $10, clock_timestamp(), a.id,
       $11::bigint
  FROM n, a
RETURNING id
