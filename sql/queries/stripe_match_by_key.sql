-- stripe_match_by_key.sql (common/stripe_match.c): our payment attempt of
-- an idempotency key (proof that the event is about our attempt).
-- $1: metadata.attempt_key of the event's object.
SELECT invoice_id, firm_id, id, true
  FROM billing.payment_attempts
 WHERE idempotency_key = $1
