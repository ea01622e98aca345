-- notify_find_statement.sql (common/notify.c): a statement's notification
-- row; rule 17.3 keys statements by client and step (no invoice).
-- $1: the kind ('statement'); $2: the client id; $3: a credit note id,
-- NULL for none; $4: the step.
SELECT id, status, attempts, coalesce(to_address, '')
  FROM billing.notifications
 WHERE kind = $1
   AND client_id = $2::bigint
   AND invoice_id IS NULL
   AND credit_note_id IS NOT DISTINCT FROM $3::bigint
   AND step = $4::int
