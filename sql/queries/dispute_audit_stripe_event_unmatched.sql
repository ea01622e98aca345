-- dispute_audit_stripe_event_unmatched.sql (disputes.c, dispute_unmatched_work).
SELECT billing.audit(NULL, 'stripe_event_unmatched', 'WARNING', NULL,
jsonb_build_object('stripe_event_id', $1::text,
'stripe_event_type', $2::text, 'stripe_object_id', NULLIF($3::text, ''),
'stripe_charge_id', NULLIF($4::text, ''),
'stripe_payment_intent_id', NULLIF($5::text, ''),
'metadata_invoice_id', NULLIF($6::text, ''),
'disposition', 'dead-lettered for an operator'))
