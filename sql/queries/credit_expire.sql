-- credit_expire.sql (credit.c, credit_expire_scoped): after the locks of
-- credit_expire_lock.sql (a new statement, so it sees every committed
-- entry): one `expired` debit per lapsed credit with a remainder, each with
-- its credit_expired audit event.
-- $1 the locked clients (bigint[]), $2 as of (date), $3 created by.
WITH todo AS MATERIALIZED (
    SELECT r.*, nextval(pg_get_serial_sequence('billing.credit_ledger', 'id')) AS new_id
      FROM unnest($1::bigint[]) AS cl(id), LATERAL billing.credit_remainders(cl.id) r
     WHERE r.expires_at < $2::date AND r.remaining_cents > 0
     ORDER BY r.client_id, r.created_at, r.entry_id),
aud AS MATERIALIZED (
    SELECT t.new_id,
           billing.audit(t.firm_id, 'credit_expired', 'INFO', $3,
               jsonb_build_object('entry_id', t.new_id, 'credit_entry_id', t.entry_id,
                   'client_id', t.client_id, 'amount_cents', t.remaining_cents,
                   'expires_at', t.expires_at, 'as_of', $2::date)) AS audit_id
      FROM todo t)
INSERT INTO billing.credit_ledger (id, firm_id, client_id, entry_type, amount_cents, use,
                                   expired_entry_id, description, created_by, created_at,
                                   audit_event_id)
SELECT t.new_id, t.firm_id, t.client_id, 'debit', t.remaining_cents, 'expired', t.entry_id,
       'Expired unused remainder of credit entry ' || t.entry_id || ' (last usable day '
           || t.expires_at || ')',
       $3, clock_timestamp(), a.audit_id
  FROM todo t JOIN aud a USING (new_id)
 ORDER BY t.new_id
RETURNING amount_cents
