-- dispute_evidence_by_stripe_id.sql (dispute_evidence.c, find_work): the dispute an operator names by its Stripe id (dp_...).
SELECT id, firm_id, invoice_id, stripe_dispute_id, status
FROM billing.payment_disputes WHERE stripe_dispute_id = $1
