-- 004_payments.sql: what charging needs beyond the contract's tables
-- (BILLING_RULES sections 5 and 6).

-- A replayed attempt must send Stripe exactly the parameters of the first
-- try (same idempotency key, same parameters), so the attempt remembers the
-- payment method and customer it charged.
ALTER TABLE billing.payment_attempts
    ADD COLUMN payment_method_id text,
    ADD COLUMN stripe_customer_id text,
    -- When the failure happened in business time (the tick's date, or the
    -- Stripe event's time): what `report failures` groups by.
    ADD COLUMN failed_at timestamptz,
    ADD COLUMN currency text NOT NULL DEFAULT 'usd'
        CONSTRAINT payment_attempts_currency_iso_lowercase CHECK (currency ~ '^[a-z]{3}$');

-- One PaymentIntent is one attempt: a failure or success reported again (the
-- synchronous answer, then webhooks) finds the attempt it belongs to and
-- counts once.
CREATE UNIQUE INDEX payment_attempts_stripe_payment_intent_id_unique
    ON billing.payment_attempts (stripe_payment_intent_id)
    WHERE stripe_payment_intent_id IS NOT NULL;
-- Attempt numbers are per invoice.
CREATE UNIQUE INDEX payment_attempts_invoice_attempt_no_unique
    ON billing.payment_attempts (invoice_id, attempt_no);

-- The autopay and retry ticks' selections.
CREATE INDEX invoices_autopay_due
    ON billing.invoices (autopay_next_charge_at)
    WHERE autopay_opt_in AND autopay_status IN ('scheduled', 'processing');
CREATE INDEX invoices_retry_due
    ON billing.invoices (next_payment_retry_at)
    WHERE status = 'failed' AND next_payment_retry_at IS NOT NULL;
CREATE INDEX invoices_unpaid_due_date
    ON billing.invoices (due_date)
    WHERE status IN ('sent', 'partial', 'failed');
CREATE INDEX invoices_stripe_charge_id ON billing.invoices (stripe_charge_id)
    WHERE stripe_charge_id IS NOT NULL;
CREATE INDEX invoices_stripe_payment_intent_id ON billing.invoices (stripe_payment_intent_id)
    WHERE stripe_payment_intent_id IS NOT NULL;

-- The hard declines of section 6: the customer must act; no automatic retry.
CREATE OR REPLACE FUNCTION billing.is_hard_decline(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT code IN ('expired_card', 'lost_card', 'stolen_card', 'pickup_card', 'fraudulent',
                    'invalid_account', 'card_not_supported', 'incorrect_number',
                    'authentication_required', 'payment_method_missing')
$$;

CREATE INDEX payment_attempts_failed_at ON billing.payment_attempts (firm_id, failed_at)
    WHERE status = 'failed';
