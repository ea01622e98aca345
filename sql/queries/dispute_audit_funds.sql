-- dispute_audit_funds.sql (disputes.c, dispute_funds_audit): audit dispute_funds_withdrawn or _reinstated ($2) with the balance transactions of that direction.
SELECT billing.audit($1::bigint, $2::text, $3::text, NULL,
jsonb_build_object('invoice_id', $4::bigint, 'dispute_id', $12::bigint,
'stripe_dispute_id', $5::text, 'amount_cents', $6::bigint,
'currency', $7::text, 'balance_amount_cents', $8::bigint,
'balance_fee_cents', $9::bigint, 'balance_transactions', $10::bigint,
'stripe_event_id', $11::text))
