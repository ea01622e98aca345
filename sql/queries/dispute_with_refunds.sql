-- dispute_with_refunds.sql (disputes.c, refund_sync_rows).
WITH old AS (SELECT applied_cents FROM billing.refunds WHERE stripe_refund_id = $3
FOR UPDATE),
up AS (INSERT INTO billing.refunds (firm_id, invoice_id, stripe_refund_id,
stripe_charge_id, amount_cents, status, applied_cents, payment_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint)
ON CONFLICT (stripe_refund_id) DO UPDATE SET status = EXCLUDED.status,
applied_cents = EXCLUDED.applied_cents RETURNING xmax = 0 AS inserted)
SELECT coalesce((SELECT applied_cents FROM old), 0), (SELECT inserted FROM up)
