-- 006_disputes.sql: what the dispute worker needs beyond 001 to apply
-- Stripe's dispute events in any order (BILLING_RULES section 7).
--
-- Every charge.dispute.* event carries the whole dispute object, so the
-- worker upserts the row and only moves it forward: a higher status rank
-- (opened < under_review < closed) always wins; at the same rank the newer
-- event (Stripe's event `created`) wins; a closed dispute never changes.
-- stripe_event_created remembers which event the row reflects, and
-- stripe_status the raw Stripe status it was mapped from (needs_response,
-- warning_closed, ...), for operators and reports.

ALTER TABLE billing.payment_disputes
    ADD COLUMN IF NOT EXISTS stripe_status text,
    ADD COLUMN IF NOT EXISTS stripe_event_created bigint NOT NULL DEFAULT 0;

-- The dispute summary report (section 10) reads a firm's disputes by status;
-- 001's payment_disputes_firm_status_idx serves it. The refund handling sums
-- an invoice's refunds (refunds_invoice_id_idx).
