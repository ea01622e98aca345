-- worker_seen.sql (common/worker.c): whether a consumer has processed a
-- message already (a row of billing.processed_messages).
-- $1: the consumer (its group); $2: the message's idempotency key.
SELECT 1
  FROM billing.processed_messages
 WHERE consumer = $1
   AND idempotency_key = $2
