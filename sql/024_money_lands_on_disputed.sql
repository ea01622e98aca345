-- 024_money_lands_on_disputed.sql: money that lands on an invoice while a
-- dispute is open (model finding 7, LL_MODEL_SEED=20261213 LL_MODEL_ONLY=8010;
-- rule 7 and 11.11).
--
-- An invoice is disputed while a dispute is open; the status it had is
-- remembered (status_before_dispute) and comes back when the dispute is won.
-- A refund met while disputed already changes the remembered status (022's
-- billing.invoice_refunded). Money landing did not: billing.land_money kept
-- the invoice disputed and the remembered status as it was. So an invoice
-- partly refunded (partial, then overdue), disputed for the rest, whose
-- refund then failed (11.11: the money comes back, the invoice is paid in
-- full again) was restored to overdue when the dispute was won, with
-- nothing due; a second payment landing on a disputed, partly paid invoice
-- likewise came back partial.
--
-- Now money landing on a disputed invoice changes the remembered status as
-- it would change the status itself: paid when nothing is due, a failed
-- invoice stays failed, else partial (one expression, v_money_status, for
-- both). The rest is 012's function unchanged.

CREATE OR REPLACE FUNCTION billing.land_money(p_invoice_id bigint, p_amount bigint,
                                              p_day date, p_reopen boolean DEFAULT false,
                                              OUT applied_cents bigint, OUT surplus_cents bigint,
                                              OUT old_status text, OUT new_status text)
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    full_paid boolean;
    v_money_status text;
BEGIN
    IF p_amount < 0 THEN
        RAISE EXCEPTION 'rule 1.4: cannot land a negative amount (% cents) on invoice %',
              p_amount, p_invoice_id USING ERRCODE = 'check_violation';
    END IF;
    SELECT * INTO inv FROM billing.invoices WHERE id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % does not exist', p_invoice_id
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    old_status := inv.status;
    IF billing.invoice_closed(inv.status)
       AND NOT (p_reopen AND inv.status IN ('refunded', 'charged_back')) THEN
        applied_cents := 0;
    ELSE
        applied_cents := least(p_amount, billing.balance_due(inv.total_cents,
                                                             inv.amount_paid_cents,
                                                             inv.credited_cents));
    END IF;
    surplus_cents := p_amount - applied_cents;
    IF applied_cents = 0 THEN
        new_status := inv.status;
        RETURN;
    END IF;
    full_paid := inv.amount_paid_cents + applied_cents + inv.credited_cents = inv.total_cents;
    -- What this money makes of the invoice's status, or of the one a
    -- dispute will restore: paid when nothing is due, a failed invoice stays
    -- failed (11.7), else partial. A disputed invoice stays disputed.
    v_money_status := CASE
        WHEN full_paid THEN 'paid'
        WHEN (CASE WHEN inv.status = 'disputed' THEN inv.status_before_dispute
                   ELSE inv.status END) = 'failed' THEN 'failed'
        ELSE 'partial' END;
    UPDATE billing.invoices SET
        amount_paid_cents = amount_paid_cents + applied_cents,
        status = CASE WHEN inv.status = 'disputed' THEN 'disputed' ELSE v_money_status END,
        status_before_dispute = CASE WHEN inv.status = 'disputed' THEN v_money_status
                                     ELSE status_before_dispute END,
        paid_date = CASE WHEN full_paid THEN coalesce(paid_date, p_day) ELSE paid_date END,
        autopay_status = CASE
            WHEN NOT autopay_opt_in THEN autopay_status
            WHEN full_paid AND autopay_status <> 'cancelled' THEN 'succeeded'
            -- an attempt that just ended with part of the money: the rest is
            -- charged; an autopay that already succeeded is never re-opened
            -- (money coming back after a refund is not charged again)
            WHEN autopay_status = 'processing'
                THEN CASE WHEN status = 'failed' THEN 'failed' ELSE 'scheduled' END
            ELSE autopay_status END,
        next_payment_retry_at = CASE WHEN full_paid THEN NULL ELSE next_payment_retry_at END
     WHERE id = p_invoice_id
    RETURNING status INTO new_status;
    IF new_status = 'paid' AND old_status <> 'paid' THEN
        PERFORM billing.invoice_event(p_invoice_id, 'invoice.paid', 0, NULL);
    END IF;
END $$;
