-- outbox_claim.sql (common/outbox.c): claims and marks a pass of unpublished
-- outbox rows in one statement. The UPDATE takes the row locks that keep
-- other relays off these rows (SKIP LOCKED) and sets published_at at once,
-- so each row is written once per pass (outbox_unmark.sql undoes the rows
-- the broker did not acknowledge before the commit).
-- $1: how many rows at most.
WITH claimed AS (
    UPDATE billing.outbox o
       SET published_at = now()
     WHERE o.id IN (SELECT id
                      FROM billing.outbox
                     WHERE published_at IS NULL
                     ORDER BY id
                     LIMIT $1::int
                       FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.topic, o.msg_key, o.payload, o.headers
)
SELECT id, topic, msg_key, payload::text, headers::text
  FROM claimed
 ORDER BY id
