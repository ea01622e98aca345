-- db_claim_message.sql (common/db.c): records that a consumer has processed
-- a message, in the transaction of its work; no row inserted means the
-- message was processed before (db_run_once answers DB_DUPLICATE).
-- $1: the consumer (its group); $2: the message's idempotency key.
INSERT INTO billing.processed_messages (consumer, idempotency_key)
VALUES ($1, $2)
    ON CONFLICT DO NOTHING
