-- dispute_evidence_by_row.sql (dispute_evidence.c, find_work): the dispute an operator names by our row id.
SELECT id, firm_id, invoice_id, stripe_dispute_id, status
FROM billing.payment_disputes WHERE id = $1
