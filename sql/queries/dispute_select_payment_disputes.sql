-- dispute_select_payment_disputes.sql (disputes.c, dispute_apply).
SELECT id, status, stripe_event_created FROM billing.payment_disputes
WHERE stripe_dispute_id = $1 FOR UPDATE
