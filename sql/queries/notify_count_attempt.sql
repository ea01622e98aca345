-- notify_count_attempt.sql (common/notify.c): counts one more sending
-- attempt of a queued notification; no row when it is no longer queued.
-- $1: the notification id.
UPDATE billing.notifications
   SET attempts = attempts + 1,
       updated_at = now()
 WHERE id = $1::bigint
   AND status = 'queued'
RETURNING attempts
