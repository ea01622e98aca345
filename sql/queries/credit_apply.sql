-- credit_apply.sql (credit.c, credit_apply_to_invoice): the debit (with its
-- credit_applied audit event) and the payments row in one statement; the
-- invoice's side is billing.land_money's (sql/012).
-- $1 firm, $2 client, $3 invoice, $4 amount, $5 use, $6 created by,
-- $7 invoice number, $8 currency.
WITH n AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('billing.credit_ledger', 'id')) AS id),
a AS MATERIALIZED (
    SELECT billing.audit($1, 'credit_applied', 'INFO', $6,
               jsonb_build_object('invoice_id', $3::bigint, 'client_id', $2::bigint,
                   'amount_cents', $4::bigint, 'entry_id', n.id)) AS id
      FROM n),
d AS (
    INSERT INTO billing.credit_ledger (id, firm_id, client_id, entry_type, amount_cents, use,
                                       applied_to_invoice_id, description, created_by,
                                       created_at, audit_event_id)
    SELECT n.id, $1, $2, 'debit', $4, $5, $3, 'Credit applied to invoice ' || $7::text, $6,
           clock_timestamp(), a.id
      FROM n, a
    RETURNING id)
INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source, currency,
                              received_cents)
SELECT $1, $3, $4, 'credit', $8::text, $4 FROM d
RETURNING id
