-- refund_requested.sql (common/refund_requests.c): the audit event
-- refund_requested of a refund asked of Stripe (`billingctl refund`,
-- `billingctl credit-note create --refund`), once per Stripe refund id: a
-- re-run answered with the same refund adds nothing. Returns a row when it
-- wrote the event.
-- $1 firm, $2 actor, $3 invoice, $4 Stripe refund id, $5 amount (minor
-- units), $6 idempotency key, $7 Stripe's status ('' = none); recorded only
-- when not NULL: $8 the reason, $9 the currency, $10 the credit note.
SELECT billing.audit($1::bigint, 'refund_requested', 'INFO', $2,
           jsonb_build_object('invoice_id', $3::bigint, 'stripe_refund_id', $4::text,
               'amount_cents', $5::bigint, 'idempotency_key', $6::text,
               'stripe_status', NULLIF($7::text, ''))
           || jsonb_strip_nulls(jsonb_build_object('reason', $8::text, 'currency', $9::text,
                  'credit_note_id', $10::bigint)))
 WHERE NOT EXISTS (SELECT 1 FROM billing.audit_events
                    WHERE firm_id = $1::bigint AND action = 'refund_requested'
                      AND metadata->>'stripe_refund_id' = $4::text)
