-- dispute_evidence_audit.sql (common/dispute_evidence.c): the audit event
-- dispute_evidence_submitted: the operator and the field names sent (never
-- their contents).
-- $1 firm, $2 actor, $3 invoice, $4 dispute row id, $5 Stripe dispute id,
-- $6 the field names (a JSON array), $7 idempotency key, $8 Stripe's status
-- ('' = none).
SELECT billing.audit($1::bigint, 'dispute_evidence_submitted', 'INFO', $2,
           jsonb_build_object('invoice_id', $3::bigint, 'dispute_id', $4::bigint,
               'stripe_dispute_id', $5::text, 'evidence_fields', $6::jsonb,
               'idempotency_key', $7::text, 'stripe_status', NULLIF($8::text, '')))
