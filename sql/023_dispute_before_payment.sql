-- 023_dispute_before_payment.sql: a dispute lost before the books know the
-- payment it disputes (model finding 6, rule 7: events out of order end as
-- in order).
--
-- The dispute's events reach the dispute worker (stripe.disputes) and the
-- payment's success reaches the autopay worker (stripe.payments), so a
-- chargeback can be applied first: when the autopay worker is down, behind,
-- or its webhook is delayed. billing.dispute_lost then finds no payment row
-- to take the money back from, charges the invoice back with nothing taken,
-- and the payment that lands afterwards found a closed invoice: it became
-- overpayment credit. The client kept a credit worth the money Stripe had
-- already taken back from the firm.
--
-- Now the part of a lost dispute that found no payment waits on the dispute
-- row (pending_take_back_cents, with the PaymentIntent the event named), and
-- the payment that comes later lands as it would have before the chargeback
-- and gives that part back at once (billing.dispute_take_back_pending): the
-- same amounts, ledger entries and status as in order.

ALTER TABLE billing.payment_disputes
    ADD COLUMN pending_take_back_cents bigint NOT NULL DEFAULT 0
        CONSTRAINT payment_disputes_pending_take_back_not_negative
        CHECK (pending_take_back_cents >= 0),
    ADD COLUMN pending_payment_intent text;

-- 022's billing.dispute_lost, and: the part not recovered because no
-- payment row matched waits for that payment.
CREATE OR REPLACE FUNCTION billing.dispute_lost(p_dispute_id bigint, p_stripe_event_id text,
                                                p_charge text, p_payment_intent text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d billing.payment_disputes%ROWTYPE;
    v_payment bigint;
    v_from_credit bigint;
    v_unrecovered bigint;
    v_paid_before bigint;
    v_paid_after bigint;
BEGIN
    SELECT * INTO STRICT d FROM billing.payment_disputes WHERE id = p_dispute_id;
    SELECT p.id INTO v_payment
      FROM billing.payments p
     WHERE p.invoice_id = d.invoice_id AND p.source = 'stripe'
       AND (p.stripe_charge_id = nullif(p_charge, '')
            OR p.stripe_payment_intent_id = nullif(p_payment_intent, ''))
     ORDER BY p.stripe_charge_id = nullif(p_charge, '') DESC LIMIT 1;
    SELECT t.from_credit_cents, t.unrecovered_cents, i.amount_paid_cents,
           i.amount_paid_cents - t.from_invoice_cents
      INTO v_from_credit, v_unrecovered, v_paid_before, v_paid_after
      FROM billing.invoices i,
           billing.take_back(i.id, v_payment, d.amount_cents, 'chargeback',
                             d.stripe_dispute_id, NULL) t
     WHERE i.id = d.invoice_id;
    IF v_payment IS NULL AND v_unrecovered > 0 THEN
        UPDATE billing.payment_disputes
           SET pending_take_back_cents = v_unrecovered,
               pending_payment_intent = nullif(p_payment_intent, '')
         WHERE id = d.id;
    END IF;
    UPDATE billing.invoices
       SET status = CASE WHEN v_from_credit > 0 AND v_from_credit >= d.amount_cents
                         THEN coalesce(status_before_dispute, 'paid') ELSE 'charged_back' END,
           status_before_dispute = NULL
     WHERE id = d.invoice_id;
    PERFORM billing.audit(d.firm_id, 'dispute_lost', 'CRITICAL', NULL,
        jsonb_build_object('invoice_id', d.invoice_id, 'dispute_id', d.id,
                           'stripe_dispute_id', d.stripe_dispute_id,
                           'amount_cents', d.amount_cents, 'currency', d.currency,
                           'stripe_status', d.stripe_status,
                           'stripe_event_id', p_stripe_event_id,
                           'amount_paid_before_cents', v_paid_before,
                           'amount_paid_after_cents', v_paid_after));
    PERFORM billing.invoice_event(d.invoice_id, 'invoice.charged_back',
        billing.dispute_seq(d.invoice_id, d.id),
        jsonb_build_object('stripe_dispute_id', d.stripe_dispute_id,
                           'dispute_amount_cents', d.amount_cents));
END $$;

-- Whether a lost dispute of the invoice waits for this payment (by its
-- charge or PaymentIntent): then the payment lands on the charged-back
-- invoice as it would have before the chargeback (land_money's p_reopen).
CREATE FUNCTION billing.dispute_waits_for(p_invoice_id bigint, p_payment_intent text,
                                          p_charge text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM billing.payment_disputes d
                    WHERE d.invoice_id = p_invoice_id AND d.pending_take_back_cents > 0
                      AND (d.stripe_charge_id = nullif(p_charge, '')
                           OR d.pending_payment_intent = nullif(p_payment_intent, '')))
$$;

-- The payment just landed (its credit written) gives each waiting lost
-- dispute its part: take_back from this payment (its overpayment credit
-- first, then what it applied to the invoice), as billing.dispute_lost
-- would have in order; the invoice is charged back again unless the
-- payment's credit covered the whole dispute. Audit chargeback_taken_back.
-- Returns the cents taken back.
CREATE FUNCTION billing.dispute_take_back_pending(p_payment_id bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pay billing.payments%ROWTYPE;
    d billing.payment_disputes%ROWTYPE;
    t record;
    v_total bigint := 0;
BEGIN
    SELECT * INTO STRICT pay FROM billing.payments WHERE id = p_payment_id;
    FOR d IN SELECT * FROM billing.payment_disputes x
              WHERE x.invoice_id = pay.invoice_id AND x.pending_take_back_cents > 0
                AND (x.stripe_charge_id = pay.stripe_charge_id
                     OR x.pending_payment_intent = pay.stripe_payment_intent_id)
              ORDER BY x.id FOR UPDATE LOOP
        SELECT * INTO t FROM billing.take_back(pay.invoice_id, pay.id, d.pending_take_back_cents,
                                               'chargeback', d.stripe_dispute_id, NULL);
        UPDATE billing.payment_disputes
           SET pending_take_back_cents = pending_take_back_cents
                                         - t.from_credit_cents - t.from_invoice_cents
         WHERE id = d.id;
        IF t.from_credit_cents < d.amount_cents THEN
            UPDATE billing.invoices SET status = 'charged_back' WHERE id = pay.invoice_id;
        END IF;
        PERFORM billing.audit(d.firm_id, 'chargeback_taken_back', 'CRITICAL', NULL,
            jsonb_build_object('invoice_id', d.invoice_id, 'dispute_id', d.id,
                               'stripe_dispute_id', d.stripe_dispute_id,
                               'payment_id', pay.id,
                               'stripe_payment_intent_id', pay.stripe_payment_intent_id,
                               'from_credit_cents', t.from_credit_cents,
                               'from_invoice_cents', t.from_invoice_cents,
                               'still_pending_cents', t.unrecovered_cents));
        v_total := v_total + t.from_credit_cents + t.from_invoice_cents;
    END LOOP;
    RETURN v_total;
END $$;

SELECT billing.grant_runtime_roles();
