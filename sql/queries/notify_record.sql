-- notify_record.sql (common/notify.c): the outcome of sending a queued
-- notification (sent_at only when sent).
-- $1: the notification id; $2: its new status; $3: the error, NULL for none.
UPDATE billing.notifications
   SET status = $2,
       sent_at = CASE WHEN $2 = 'sent' THEN now() END,
       error = $3,
       updated_at = now()
 WHERE id = $1::bigint
   AND status = 'queued'
