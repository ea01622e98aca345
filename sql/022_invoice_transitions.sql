-- 022_invoice_transitions.sql: the invoice transitions that C wrote as
-- statements of its own (disputes.c, payment_record.c, payment_ticks.c)
-- become functions beside the ones that already were (issue 19: one owner
-- for each transition's status, amounts, audit action and lifecycle event).
-- Every invoice transition is now a billing.* function, and
-- common/invoice_transitions.c is the one C module that calls them:
--
--   transition                 function                  defined in
--   issued                     billing.issue_invoice     013
--   a line adjusted            billing.adjust_invoice_line 013
--   voided                     billing.void_invoice      013
--   credited (credit note)     billing.create_credit_note 014
--   money lands (paid/partial) billing.land_money        012 (009's, with 1.4)
--   money taken back           billing.take_back         009
--   money given back           billing.give_back         009
--   refunded                   billing.invoice_refunded  022
--   a payment failed           billing.payment_failed    022
--   overdue                    billing.mark_overdue      022 (billing.becomes_overdue)
--   disputed                   billing.dispute_opened    022
--   dispute won                billing.dispute_won       022
--   charged back (dispute lost) billing.dispute_lost     022
--
-- The bodies are the statements the C code ran, in the same order, so the
-- audit rows and outbox events are byte-for-byte what they were; what C
-- still decides (which transition an event means, a hard decline, the
-- retry schedule) comes in as arguments.

-- The n-th dispute of an invoice (by id) as its events' :seq: the first
-- dispute's events have the plain key, later ones ":<n>".
CREATE FUNCTION billing.dispute_seq(p_invoice_id bigint, p_dispute_id bigint)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN n > 1 THEN n::integer ELSE 0 END
      FROM (SELECT count(*) AS n FROM billing.payment_disputes
             WHERE invoice_id = p_invoice_id AND id <= p_dispute_id) c
$$;

-- First sight of a dispute (its row just written): the invoice becomes
-- disputed, its status remembered unless it already was; audit
-- payment_disputed; event invoice.disputed.
CREATE FUNCTION billing.dispute_opened(p_dispute_id bigint, p_stripe_event_id text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d billing.payment_disputes%ROWTYPE;
BEGIN
    SELECT * INTO STRICT d FROM billing.payment_disputes WHERE id = p_dispute_id;
    UPDATE billing.invoices
       SET status_before_dispute = CASE WHEN status = 'disputed' THEN status_before_dispute
                                        ELSE status END,
           status = 'disputed'
     WHERE id = d.invoice_id;
    PERFORM billing.audit(d.firm_id, 'payment_disputed', 'CRITICAL', NULL,
        jsonb_build_object('invoice_id', d.invoice_id, 'dispute_id', d.id,
                           'stripe_dispute_id', d.stripe_dispute_id,
                           'stripe_charge_id', d.stripe_charge_id,
                           'amount_cents', d.amount_cents, 'currency', d.currency,
                           'reason', d.reason, 'stripe_status', d.stripe_status,
                           'respond_by', to_char(d.respond_by AT TIME ZONE 'UTC',
                                                 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                           'stripe_event_id', p_stripe_event_id));
    PERFORM billing.invoice_event(d.invoice_id, 'invoice.disputed',
        billing.dispute_seq(d.invoice_id, d.id),
        jsonb_build_object('stripe_dispute_id', d.stripe_dispute_id,
                           'dispute_amount_cents', d.amount_cents, 'reason', d.reason));
END $$;

-- A dispute closed won (its row just written): the remembered status comes
-- back unless another dispute of the invoice is still open; audit
-- dispute_won.
CREATE FUNCTION billing.dispute_won(p_dispute_id bigint, p_stripe_event_id text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d billing.payment_disputes%ROWTYPE;
BEGIN
    SELECT * INTO STRICT d FROM billing.payment_disputes WHERE id = p_dispute_id;
    UPDATE billing.invoices i
       SET status = CASE WHEN i.status = 'disputed'
                         THEN coalesce(i.status_before_dispute, 'paid') ELSE i.status END,
           status_before_dispute = NULL
     WHERE i.id = d.invoice_id
       AND NOT EXISTS (SELECT 1 FROM billing.payment_disputes o
                        WHERE o.invoice_id = i.id AND o.status <> 'closed' AND o.id <> d.id);
    PERFORM billing.audit(d.firm_id, 'dispute_won', 'CRITICAL', NULL,
        jsonb_build_object('invoice_id', d.invoice_id, 'dispute_id', d.id,
                           'stripe_dispute_id', d.stripe_dispute_id,
                           'amount_cents', d.amount_cents, 'currency', d.currency,
                           'stripe_status', d.stripe_status,
                           'stripe_event_id', p_stripe_event_id,
                           'invoice_status', (SELECT status FROM billing.invoices
                                               WHERE id = d.invoice_id)));
END $$;

-- A dispute closed lost (its row just written). 11.1: the overpayment
-- credit of the disputed payment (the one with the event's charge, else its
-- PaymentIntent) first, then at most what that payment applied to the
-- invoice. An invoice that gave nothing back (the dispute took only the
-- excess) is not charged back. Audit dispute_lost; event
-- invoice.charged_back.
CREATE FUNCTION billing.dispute_lost(p_dispute_id bigint, p_stripe_event_id text,
                                     p_charge text, p_payment_intent text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d billing.payment_disputes%ROWTYPE;
    v_from_credit bigint;
    v_paid_before bigint;
    v_paid_after bigint;
BEGIN
    SELECT * INTO STRICT d FROM billing.payment_disputes WHERE id = p_dispute_id;
    SELECT t.from_credit_cents, i.amount_paid_cents, i.amount_paid_cents - t.from_invoice_cents
      INTO v_from_credit, v_paid_before, v_paid_after
      FROM billing.invoices i,
           billing.take_back(i.id,
                             (SELECT p.id FROM billing.payments p
                               WHERE p.invoice_id = i.id AND p.source = 'stripe'
                                 AND (p.stripe_charge_id = nullif(p_charge, '')
                                      OR p.stripe_payment_intent_id = nullif(p_payment_intent, ''))
                               ORDER BY p.stripe_charge_id = nullif(p_charge, '') DESC LIMIT 1),
                             d.amount_cents, 'chargeback', d.stripe_dispute_id, NULL) t
     WHERE i.id = d.invoice_id;
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

-- A refund change of p_change cents (the refunds' rows, take-back and
-- give-back already done by the caller) reaches the invoice. Its refunded
-- total follows its refunds; its status changes only when the invoice
-- itself gave money back or got it back (p_own_money): refunded when none
-- of its own money is left (a refund of the excess came out of credit and
-- does not count: 11.1), else paid or partial (rule 7). A dispute decides
-- the status of a disputed or charged-back invoice: a refund met while one
-- is open changes the status the dispute will restore, and one met after
-- the chargeback changes nothing, as if the books had met the refund first
-- (rule 7: events out of order end as in order). A failed refund met in the
-- same answer may have given the invoice its money back in full (model
-- finding 5): then it is paid again. Audit invoice_refunded; event
-- invoice.refunded, the n-th change of the invoice keyed :n.
-- What an invoice's own money says its status is after a refund: refunded
-- when none is left, paid when nothing is due, else partial (rule 7); for
-- its status, or the one a dispute will restore.
CREATE FUNCTION billing.refund_status_of_money(p_total bigint, p_paid bigint, p_credited bigint)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN p_paid = 0 THEN 'refunded'
            WHEN billing.balance_due(p_total, p_paid, p_credited) = 0 THEN 'paid'
            ELSE 'partial' END;

CREATE FUNCTION billing.invoice_refunded(p_invoice_id bigint, p_change bigint,
                                         p_own_money boolean, p_charge text,
                                         p_refund_ids jsonb, p_paid_before bigint,
                                         p_stripe_event_id text, p_currency text,
                                         p_from_credit bigint, p_from_invoice bigint,
                                         p_returned bigint,
                                         OUT status text, OUT refunded_total bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_firm bigint;
    v_paid_after bigint;
    v_seq bigint;
BEGIN
    UPDATE billing.invoices i
       SET refunded_cents = i.refunded_cents + p_change,
           status = CASE WHEN NOT p_own_money OR i.status IN ('disputed', 'charged_back')
                         THEN i.status
                         ELSE billing.refund_status_of_money(i.total_cents, i.amount_paid_cents,
                                                             i.credited_cents) END,
           status_before_dispute = CASE WHEN p_own_money AND i.status = 'disputed'
                                        THEN billing.refund_status_of_money(i.total_cents,
                                                 i.amount_paid_cents, i.credited_cents)
                                        ELSE i.status_before_dispute END
     WHERE i.id = p_invoice_id
    RETURNING i.status, i.refunded_cents, i.amount_paid_cents, i.firm_id
         INTO status, refunded_total, v_paid_after, v_firm;
    -- audit events are append-only, so the count only grows
    SELECT count(*) + 1 INTO v_seq FROM billing.audit_events
     WHERE firm_id = v_firm AND action = 'invoice_refunded'
       AND metadata->>'invoice_id' = p_invoice_id::text;
    PERFORM billing.audit(v_firm, 'invoice_refunded', 'INFO', NULL,
        jsonb_build_object('invoice_id', p_invoice_id, 'stripe_charge_id', p_charge,
                           'stripe_refund_ids', p_refund_ids, 'refund_cents', p_change,
                           'refunded_total_cents', refunded_total,
                           'amount_paid_before_cents', p_paid_before,
                           'amount_paid_after_cents', v_paid_after,
                           'stripe_event_id', p_stripe_event_id, 'seq', v_seq::integer,
                           'invoice_status', status, 'currency', p_currency,
                           'from_credit_cents', p_from_credit,
                           'from_invoice_cents', p_from_invoice,
                           'returned_cents', p_returned));
    PERFORM billing.invoice_event(p_invoice_id, 'invoice.refunded', v_seq::integer,
        jsonb_build_object('stripe_charge_id', p_charge, 'refund_cents', p_change,
                           'refunded_cents', refunded_total, 'stripe_refund_ids', p_refund_ids));
END $$;

-- A payment of the invoice failed (the caller has decided: p_status failed,
-- or overdue when the retries are exhausted; p_delay_days the next retry, or
-- NULL for none; p_next_action payment_retry_scheduled, _exhausted or
-- _skipped). Which PaymentIntent paid the invoice is the success's to say
-- (11.10): a failure leaves stripe_payment_intent_id alone. Audits
-- payment_failed and p_next_action; events invoice.payment_failed, and
-- invoice.overdue when the retries are exhausted.
CREATE FUNCTION billing.payment_failed(p_invoice_id bigint, p_status text,
                                       p_failed_at timestamptz, p_message text, p_code text,
                                       p_retry_count integer, p_delay_days integer,
                                       p_payment_intent text, p_attempt_id bigint,
                                       p_next_action text, p_hard boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    u record;
BEGIN
    UPDATE billing.invoices
       SET status = p_status,
           payment_failed_at = p_failed_at,
           payment_failure_reason = p_message, payment_failure_code = p_code,
           payment_retry_count = p_retry_count, last_payment_retry_at = p_failed_at,
           next_payment_retry_at = ((p_failed_at AT TIME ZONE 'UTC')::date + p_delay_days)
                                   ::timestamp AT TIME ZONE 'UTC',
           autopay_status = CASE WHEN autopay_opt_in AND autopay_status <> 'cancelled'
                                 THEN 'failed' ELSE autopay_status END
     WHERE id = p_invoice_id
    RETURNING firm_id, next_payment_retry_at,
              billing.balance_due(total_cents, amount_paid_cents, credited_cents) AS due
         INTO u;
    PERFORM billing.audit(u.firm_id, 'payment_failed', 'WARNING', NULL,
        jsonb_build_object('invoice_id', p_invoice_id, 'attempt_id', p_attempt_id,
                           'failure_code', p_code, 'failure_reason', p_message,
                           'retry_count', p_retry_count, 'payment_intent', p_payment_intent,
                           'amount_cents', u.due));
    PERFORM billing.audit(u.firm_id, p_next_action,
        CASE WHEN p_next_action = 'payment_retry_exhausted' THEN 'WARNING' ELSE 'INFO' END, NULL,
        jsonb_build_object('invoice_id', p_invoice_id, 'failure_code', p_code,
                           'retry_count', p_retry_count,
                           'next_payment_retry_at', u.next_payment_retry_at));
    PERFORM billing.invoice_event(p_invoice_id, 'invoice.payment_failed', p_retry_count,
        jsonb_build_object('failure_code', p_code, 'retry_count', p_retry_count,
                           'customer_action_required', p_hard));
    IF p_next_action = 'payment_retry_exhausted' THEN
        PERFORM billing.invoice_event(p_invoice_id, 'invoice.overdue', 0, NULL);
    END IF;
END $$;

-- Section 6's rule, the one statement of it: an invoice becomes overdue on
-- the first business date after its due date when it is unpaid and not in
-- a retry cycle, nor with a charge in flight. The tick (mark_overdue) and
-- its dry-run preview (common/payment_ticks.c) both ask it; beside it they
-- keep the plain status and due-date predicates so 004's indexes find the
-- candidates (an inlined SQL function, as billing.charge_due).
CREATE FUNCTION billing.becomes_overdue(p_status text, p_due_date date,
                                        p_next_retry_at timestamptz, p_autopay_status text,
                                        p_day date)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_status IN ('sent', 'partial', 'failed') AND p_due_date < p_day
       AND NOT (p_status = 'failed' AND p_next_retry_at IS NOT NULL)
       AND p_autopay_status <> 'processing';

-- Section 6, on a tick of (p_day, shard p_shard of p_shards, firm p_firm or
-- NULL for all): every invoice past its due date, unpaid and not in a retry
-- cycle (nor with a charge in flight) becomes overdue on the first business
-- date after its due date; audit invoice_overdue and event invoice.overdue
-- for each. Returns how many.
CREATE FUNCTION billing.mark_overdue(p_day date, p_shards bigint, p_shard bigint,
                                     p_firm bigint)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
BEGIN
    WITH u AS (
        UPDATE billing.invoices i SET status = 'overdue'
         WHERE i.status IN ('sent', 'partial', 'failed') AND i.due_date < p_day
           AND billing.becomes_overdue(i.status, i.due_date, i.next_payment_retry_at,
                                       i.autopay_status, p_day)
           AND i.id % p_shards = p_shard AND (p_firm IS NULL OR i.firm_id = p_firm)
        RETURNING i.id)
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM u;
    -- audit and events in a statement of their own: a function called from
    -- the UPDATE's statement would not see the new status
    PERFORM billing.audit(i.firm_id, 'invoice_overdue', 'WARNING', NULL,
                jsonb_build_object('invoice_id', i.id, 'due_date', i.due_date,
                                   'business_date', p_day,
                                   'balance_due_cents',
                                   billing.balance_due(i.total_cents, i.amount_paid_cents,
                                                       i.credited_cents))),
            billing.invoice_event(i.id, 'invoice.overdue', 0, NULL)
       FROM billing.invoices i WHERE i.id = ANY (v_ids) ORDER BY i.id;
    RETURN cardinality(v_ids);
END $$;

-- The runtime roles call the new functions (010).
SELECT billing.grant_runtime_roles();
