-- dispute_insert_payment_disputes.sql (disputes.c, dispute_apply).
INSERT INTO billing.payment_disputes (firm_id, invoice_id, status, reason,
amount_cents, currency, stripe_dispute_id, stripe_charge_id, opened_at,
respond_by, closed_at, evidence_submitted, resolution, resolution_reason,
stripe_status, stripe_event_created) VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6,
$7, NULLIF($8, ''),
CASE WHEN $9::bigint > 0 THEN to_timestamp($9::bigint) ELSE now() END,
CASE WHEN $10::bigint > 0 THEN to_timestamp($10::bigint) END,
CASE WHEN $3 = 'closed' THEN CASE WHEN $11::bigint > 0
THEN to_timestamp($11::bigint) ELSE now() END END,
$12::boolean, $13, CASE WHEN $3 = 'closed' THEN $14 END, $14, $11::bigint)
RETURNING id
