-- notify_find.sql (common/notify.c): the notification row of an invoice
-- kind; rule 17.3 keys them by invoice, credit note and step.
-- $1: the kind; $2: the invoice id; $3: a credit note id, NULL for none;
-- $4: the step.
SELECT id, status, attempts, coalesce(to_address, '')
  FROM billing.notifications
 WHERE kind = $1
   AND invoice_id = $2::bigint
   AND credit_note_id IS NOT DISTINCT FROM $3::bigint
   AND step = $4::int
