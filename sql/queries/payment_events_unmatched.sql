-- payment_events_unmatched.sql (common/payment_events.c): audits a Stripe
-- event we cannot place (firm unknown) as a WARNING for an operator, with
-- the references it carried and why it was refused.
-- $1: the event id; $2: its type; $3: its PaymentIntent, $4: its charge,
-- $5: its metadata.invoice_id ('' for none); $6: the reason.
SELECT billing.audit(NULL, 'stripe_event_unmatched', 'WARNING', NULL,
                     jsonb_build_object('stripe_event_id', $1::text,
                                        'type', $2::text,
                                        'payment_intent', nullif($3, ''),
                                        'charge', nullif($4, ''),
                                        'metadata_invoice_id', nullif($5, ''),
                                        'reason', $6::text))
