-- dispute_update_payment_disputes.sql (disputes.c, dispute_apply).
UPDATE billing.payment_disputes SET status = $2, reason = NULLIF($3, ''),
amount_cents = $4, currency = $5,
respond_by = CASE WHEN $6::bigint > 0 THEN to_timestamp($6::bigint)
ELSE respond_by END,
closed_at = CASE WHEN $2 = 'closed' THEN CASE WHEN $7::bigint > 0
THEN to_timestamp($7::bigint) ELSE now() END END,
evidence_submitted = evidence_submitted OR $8::boolean,
resolution = $9, resolution_reason = CASE WHEN $2 = 'closed' THEN $10 END,
stripe_status = $10, stripe_event_created = $7::bigint,
stripe_charge_id = coalesce(NULLIF($11, ''), stripe_charge_id)
WHERE id = $1
