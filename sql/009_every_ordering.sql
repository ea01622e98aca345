-- 009_every_ordering.sql: BILLING_RULES section 11 (every ordering, every
-- fault) in the database: the vocabulary it adds, the per-payment record
-- of what a refund or a chargeback took back and from where, and the two
-- functions that own how money lands on an invoice and how it leaves it.
--
--   billing.land_money(invoice, amount, day, reopen)  money arrives: what
--       the balance due can take is applied, the rest is the caller's to
--       turn into credit; the invoice's status, paid date, autopay status
--       and retry date follow from one rule (rules 5, 6, 11.7, 11.8);
--   billing.take_back(invoice, payment, amount, ...)  money leaves (a
--       refund or a lost dispute): the unused overpayment credit this
--       payment created first, then at most what the payment applied to
--       the invoice (rule 11.1).
--
-- Both run inside the caller's transaction with the invoice row locked by
-- the caller (lock order: invoice, then client), so two events about one
-- invoice take turns.

-- ---- vocabulary ------------------------------------------------------------

-- 11.2: an attempt whose answer never came and that Stripe has no
-- PaymentIntent for is closed without a customer failure.
ALTER TABLE billing.payment_attempts DROP CONSTRAINT payment_attempts_status_valid,
    ADD CONSTRAINT payment_attempts_status_valid
        CHECK (status IN ('processing', 'succeeded', 'failed', 'transient_error', 'abandoned'));
-- 11.6: an idempotency conflict parks the invoice until an operator resumes it.
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_autopay_status_valid,
    ADD CONSTRAINT invoices_autopay_status_valid CHECK (autopay_status IN (
        'idle', 'scheduled', 'processing', 'succeeded', 'failed', 'cancelled',
        'needs_attention'));

-- ---- payments: what each PaymentIntent brought and what left again --------

-- amount_cents stays what the payment applied to the invoice when it
-- arrived; received_cents is what Stripe received; the difference went to
-- an overpayment credit naming this payment (credit_ledger.source_payment_id).
-- back_* record every take-back (refunds, lost disputes) by where it came
-- from: the overpayment credit, the invoice, or neither (the credit had
-- already been spent elsewhere: money the firm gave back twice, logged).
ALTER TABLE billing.payments
    ADD COLUMN currency text
        CONSTRAINT payments_currency_iso_lowercase CHECK (currency ~ '^[a-z]{3}$'),
    ADD COLUMN stripe_charge_id text,
    ADD COLUMN received_cents bigint NOT NULL DEFAULT 0,
    ADD COLUMN back_credit_cents bigint NOT NULL DEFAULT 0,
    ADD COLUMN back_invoice_cents bigint NOT NULL DEFAULT 0,
    ADD COLUMN back_unrecovered_cents bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_rule_11_1_back_within_what_was_applied
        CHECK (back_credit_cents >= 0 AND back_invoice_cents >= 0
               AND back_unrecovered_cents >= 0
               AND back_invoice_cents <= greatest(amount_cents, 0));
UPDATE billing.payments p SET received_cents = p.amount_cents,
       currency = i.currency,
       stripe_charge_id = CASE WHEN i.stripe_payment_intent_id = p.stripe_payment_intent_id
                               THEN i.stripe_charge_id END
  FROM billing.invoices i WHERE i.id = p.invoice_id;
CREATE INDEX payments_stripe_charge_id_idx ON billing.payments (stripe_charge_id)
    WHERE stripe_charge_id IS NOT NULL;

-- ---- refunds: status and the effect currently applied (11.11) -------------

-- applied_cents is the part of the refund whose effect the books carry:
-- its amount while it is pending or succeeded, 0 once it failed or was
-- canceled. An invoice's refunded_cents is the sum of its refunds'
-- applied_cents, whatever order Stripe's events came in.
ALTER TABLE billing.refunds
    ADD COLUMN status text NOT NULL DEFAULT 'succeeded'
        CONSTRAINT refunds_status_valid CHECK (status IN (
            'pending', 'requires_action', 'succeeded', 'failed', 'canceled')),
    ADD COLUMN applied_cents bigint NOT NULL DEFAULT 0,
    ADD COLUMN payment_id bigint,
    ADD CONSTRAINT refunds_rule_11_11_applied_within_amount
        CHECK (applied_cents >= 0 AND applied_cents <= amount_cents);
UPDATE billing.refunds SET applied_cents = amount_cents;

-- ---- credit_ledger: overpayment credit named by its payment ---------------

-- The overpayment credit a payment created, and the `refunded` debit that
-- takes it back (taken_back_entry_id: like an expiry, such a debit comes off
-- the credit it names, not off the oldest credit).
ALTER TABLE billing.credit_ledger
    ADD COLUMN source_payment_id bigint,
    ADD COLUMN taken_back_entry_id bigint
        CONSTRAINT credit_ledger_rule_11_1_taken_back_entry_exists
        REFERENCES billing.credit_ledger (id),
    ADD CONSTRAINT credit_ledger_rule_11_1_taken_back_only_on_refunded_debit
        CHECK (taken_back_entry_id IS NULL OR (entry_type = 'debit' AND use = 'refunded'));
CREATE INDEX credit_ledger_source_payment_idx ON billing.credit_ledger (source_payment_id)
    WHERE source_payment_id IS NOT NULL;
CREATE INDEX credit_ledger_taken_back_entry_idx ON billing.credit_ledger (taken_back_entry_id)
    WHERE taken_back_entry_id IS NOT NULL;

-- 005's remainders, with debits that name their credit (expiry or take-back)
-- coming off that credit; every other debit is allocated oldest first.
CREATE OR REPLACE FUNCTION billing.credit_remainders(p_client_id bigint)
RETURNS TABLE (entry_id bigint, firm_id bigint, client_id bigint, amount_cents bigint,
               created_at timestamptz, expires_at date, expired_cents bigint,
               remaining_cents bigint)
LANGUAGE sql STABLE AS $$
    WITH credits AS (
        SELECT l.id, l.firm_id, l.client_id, l.amount_cents, l.created_at, l.expires_at,
               coalesce((SELECT sum(x.amount_cents) FROM billing.credit_ledger x
                          WHERE x.expired_entry_id = l.id), 0)::bigint
             + coalesce((SELECT sum(x.amount_cents) FROM billing.credit_ledger x
                          WHERE x.taken_back_entry_id = l.id), 0)::bigint AS expired
          FROM billing.credit_ledger l
         WHERE l.client_id = p_client_id AND l.entry_type = 'credit'),
    capacity AS (
        SELECT c.*, c.amount_cents - c.expired AS cap,
               sum(c.amount_cents - c.expired) OVER (ORDER BY c.created_at, c.id
                                                    ROWS UNBOUNDED PRECEDING) AS cum
          FROM credits c),
    used AS (
        SELECT coalesce(sum(d.amount_cents), 0) AS total
          FROM billing.credit_ledger d
         WHERE d.client_id = p_client_id AND d.entry_type = 'debit'
           AND d.expired_entry_id IS NULL AND d.taken_back_entry_id IS NULL)
    SELECT k.id, k.firm_id, k.client_id, k.amount_cents, k.created_at, k.expires_at, k.expired,
           greatest(0, least(k.cap, k.cum - u.total))::bigint
      FROM capacity k, used u
     ORDER BY k.created_at, k.id
$$;

-- A take-back debit removes at most the unused remainder of an overpayment
-- credit of the same client (the twin of 005's expiry check).
CREATE OR REPLACE FUNCTION billing.credit_ledger_rule_11_1_take_back_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cr billing.credit_ledger%ROWTYPE;
    left_cents bigint;
BEGIN
    SELECT * INTO cr FROM billing.credit_ledger WHERE id = NEW.taken_back_entry_id;
    IF NOT FOUND OR cr.entry_type <> 'credit' OR cr.source <> 'overpayment'
       OR cr.client_id <> NEW.client_id OR cr.firm_id <> NEW.firm_id THEN
        RAISE EXCEPTION 'rule 11.1 (take-back): refunded debit names entry %, which is not an overpayment credit of client %',
              NEW.taken_back_entry_id, NEW.client_id
              USING ERRCODE = 'check_violation',
                    HINT = 'a refund takes back only the overpayment credit its own payment created';
    END IF;
    SELECT r.remaining_cents INTO left_cents
      FROM billing.credit_remainders(NEW.client_id) r WHERE r.entry_id = cr.id;
    IF NEW.amount_cents > coalesce(left_cents, 0) THEN
        RAISE EXCEPTION 'rule 11.1 (take-back): taking back % cents of credit entry % exceeds its unused remainder of % cents',
              NEW.amount_cents, cr.id, coalesce(left_cents, 0)
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER credit_ledger_rule_4_take_back_within_remainder
    BEFORE INSERT ON billing.credit_ledger
    FOR EACH ROW WHEN (NEW.taken_back_entry_id IS NOT NULL)
    EXECUTE FUNCTION billing.credit_ledger_rule_11_1_take_back_check();

-- ---- invoice statuses, once -----------------------------------------------

-- Invoices whose money is settled the other way: money arriving for them is
-- the client's credit, the invoice does not change (rule 11.8).
CREATE OR REPLACE FUNCTION billing.invoice_closed(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status IN ('draft', 'cancelled', 'void', 'refunded', 'charged_back')
$$;

-- ---- money lands on an invoice ---------------------------------------------

-- Applies up to the balance due of p_amount to the invoice (locked by the
-- caller) and returns what was applied and what is left for the caller to
-- credit. The status rule, in one place:
--   balance due 0  -> paid (a disputed invoice stays disputed), paid date set,
--                     autopay succeeded (when opted in), no retry pending;
--   otherwise      -> a failed invoice stays failed with its retry date
--                     (11.7), a disputed one disputed, anything else partial;
--                     an autopay whose attempt just ended goes back to
--                     scheduled (failed in a retry cycle) so the rest is
--                     charged.
-- A closed invoice (billing.invoice_closed) takes nothing, unless p_reopen
-- (a refund that failed gives its money back to a refunded invoice).
-- invoice.paid is queued when the invoice becomes paid.
CREATE OR REPLACE FUNCTION billing.land_money(p_invoice_id bigint, p_amount bigint,
                                              p_day date, p_reopen boolean DEFAULT false,
                                              OUT applied_cents bigint, OUT surplus_cents bigint,
                                              OUT old_status text, OUT new_status text)
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    full_paid boolean;
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
        applied_cents := least(p_amount, greatest(inv.total_cents - inv.amount_paid_cents, 0));
    END IF;
    surplus_cents := p_amount - applied_cents;
    IF applied_cents = 0 THEN
        new_status := inv.status;
        RETURN;
    END IF;
    full_paid := inv.amount_paid_cents + applied_cents = inv.total_cents;
    UPDATE billing.invoices SET
        amount_paid_cents = amount_paid_cents + applied_cents,
        status = CASE
            WHEN status = 'disputed' THEN 'disputed'
            WHEN full_paid THEN 'paid'
            WHEN status = 'failed' THEN 'failed'
            ELSE 'partial' END,
        paid_date = CASE WHEN full_paid THEN coalesce(paid_date, p_day) ELSE paid_date END,
        autopay_status = CASE
            WHEN NOT autopay_opt_in THEN autopay_status
            WHEN full_paid AND autopay_status <> 'cancelled' THEN 'succeeded'
            WHEN autopay_status IN ('processing', 'succeeded')
                THEN CASE WHEN status = 'failed' THEN 'failed' ELSE 'scheduled' END
            ELSE autopay_status END,
        next_payment_retry_at = CASE WHEN full_paid THEN NULL ELSE next_payment_retry_at END
     WHERE id = p_invoice_id
    RETURNING status INTO new_status;
    IF new_status = 'paid' AND old_status <> 'paid' THEN
        PERFORM billing.invoice_event(p_invoice_id, 'invoice.paid', 0, NULL);
    END IF;
END $$;

-- ---- money leaves an invoice (11.1) ----------------------------------------

-- A refund or a lost dispute of p_amount, of the payment p_payment_id (NULL
-- when the books hold no payment row for the charge: then only the invoice
-- is reduced, as before section 11). First the unused remainder of the
-- overpayment credit this payment created (a `refunded` debit naming it,
-- never more than the client's balance), then the invoice's amount_paid by
-- at most what the payment applied and has not given back yet; what is left
-- is recorded as unrecovered. The caller sets the invoice's status (it
-- knows whether it was a refund or a chargeback).
CREATE OR REPLACE FUNCTION billing.take_back(p_invoice_id bigint, p_payment_id bigint,
                                             p_amount bigint, p_reason text, p_ref text,
                                             p_actor text,
                                             OUT from_credit_cents bigint,
                                             OUT from_invoice_cents bigint,
                                             OUT unrecovered_cents bigint)
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    pay billing.payments%ROWTYPE;
    cr record;
    balance bigint;
    take bigint;
    left_to_take bigint;
    inv_cap bigint;
    entry bigint;
    aud bigint;
BEGIN
    from_credit_cents := 0;
    from_invoice_cents := 0;
    unrecovered_cents := 0;
    IF p_amount <= 0 THEN
        RETURN;
    END IF;
    SELECT * INTO inv FROM billing.invoices WHERE id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % does not exist', p_invoice_id
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    left_to_take := p_amount;
    IF p_payment_id IS NOT NULL THEN
        SELECT * INTO pay FROM billing.payments WHERE id = p_payment_id AND invoice_id = p_invoice_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'payment % is not a payment of invoice %', p_payment_id, p_invoice_id
                  USING ERRCODE = 'foreign_key_violation';
        END IF;
        -- The client row lock serialises ledger writes (002's balance trigger).
        PERFORM 1 FROM billing.clients WHERE id = inv.client_id FOR NO KEY UPDATE;
        SELECT coalesce(sum(CASE entry_type WHEN 'credit' THEN amount_cents
                                            ELSE -amount_cents END), 0)
          INTO balance FROM billing.credit_ledger WHERE client_id = inv.client_id;
        FOR cr IN SELECT r.entry_id, r.remaining_cents
                    FROM billing.credit_remainders(inv.client_id) r
                    JOIN billing.credit_ledger l ON l.id = r.entry_id
                   WHERE l.source_payment_id = p_payment_id AND r.remaining_cents > 0
                   ORDER BY r.entry_id LOOP
            take := least(left_to_take, cr.remaining_cents, balance);
            EXIT WHEN take <= 0;
            entry := nextval(pg_get_serial_sequence('billing.credit_ledger', 'id'));
            aud := billing.audit(inv.firm_id, 'credit_taken_back', 'INFO', p_actor,
                       jsonb_build_object('entry_id', entry, 'credit_entry_id', cr.entry_id,
                           'client_id', inv.client_id, 'invoice_id', inv.id,
                           'payment_id', p_payment_id, 'amount_cents', take,
                           'reason', p_reason, 'ref', p_ref));
            INSERT INTO billing.credit_ledger (id, firm_id, client_id, entry_type, amount_cents,
                   use, taken_back_entry_id, source_invoice_id, description, created_by,
                   created_at, audit_event_id)
            VALUES (entry, inv.firm_id, inv.client_id, 'debit', take, 'refunded', cr.entry_id,
                    inv.id, 'Overpayment credit taken back (' || p_reason || ' ' || p_ref || ')',
                    p_actor, clock_timestamp(), aud);
            from_credit_cents := from_credit_cents + take;
            left_to_take := left_to_take - take;
            balance := balance - take;
        END LOOP;
        inv_cap := pay.amount_cents - pay.back_invoice_cents;
    ELSE
        inv_cap := inv.amount_paid_cents;
    END IF;
    from_invoice_cents := greatest(0, least(left_to_take, inv_cap, inv.amount_paid_cents));
    unrecovered_cents := left_to_take - from_invoice_cents;
    IF from_invoice_cents > 0 THEN
        UPDATE billing.invoices SET amount_paid_cents = amount_paid_cents - from_invoice_cents
         WHERE id = p_invoice_id;
    END IF;
    IF p_payment_id IS NOT NULL THEN
        UPDATE billing.payments SET back_credit_cents = back_credit_cents + from_credit_cents,
               back_invoice_cents = back_invoice_cents + from_invoice_cents,
               back_unrecovered_cents = back_unrecovered_cents + unrecovered_cents
         WHERE id = p_payment_id;
    END IF;
END $$;

-- ---- the selections of section 5/6, once ------------------------------------

-- Which invoices an autopay or retry run charges on p_day ('autopay' or
-- 'retry'): the tick's selection, the dry run's preview and the charge's own
-- check all call this, and 004's partial indexes serve it. Shard and firm
-- filters are the caller's.
CREATE OR REPLACE FUNCTION billing.charge_due(p_kind text, p_status text, p_opt_in boolean,
                                              p_autopay_status text,
                                              p_next_charge_at timestamptz,
                                              p_next_retry_at timestamptz, p_day date)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind
        WHEN 'autopay' THEN p_opt_in AND p_autopay_status IN ('scheduled', 'processing')
             AND p_status IN ('sent', 'partial', 'overdue')
             AND p_next_charge_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
        WHEN 'retry' THEN p_opt_in AND p_status = 'failed'
             AND p_autopay_status <> 'needs_attention'
             AND p_next_retry_at IS NOT NULL
             AND p_next_retry_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
        ELSE false END
$$;

-- ---- a take-back undone (11.11) ---------------------------------------------

-- A refund that failed or was canceled gives its money back: first to the
-- invoice, up to what the payment's take-backs took from it (reopening a
-- refunded or charged-back invoice), the rest is returned as credit by the
-- caller (an overpayment credit naming the payment, taken back first by a
-- later refund). Without a payment row everything goes back to the invoice
-- as far as its balance due allows.
CREATE OR REPLACE FUNCTION billing.give_back(p_invoice_id bigint, p_payment_id bigint,
                                             p_amount bigint, p_day date,
                                             OUT to_invoice_cents bigint,
                                             OUT to_credit_cents bigint)
LANGUAGE plpgsql AS $$
DECLARE
    pay billing.payments%ROWTYPE;
    cap bigint := p_amount;
    lm record;
BEGIN
    to_invoice_cents := 0;
    to_credit_cents := 0;
    IF p_amount <= 0 THEN
        RETURN;
    END IF;
    IF p_payment_id IS NOT NULL THEN
        SELECT * INTO pay FROM billing.payments WHERE id = p_payment_id FOR UPDATE;
        cap := least(p_amount, pay.back_invoice_cents);
    END IF;
    SELECT * INTO lm FROM billing.land_money(p_invoice_id, cap, p_day, true);
    to_invoice_cents := lm.applied_cents;
    to_credit_cents := p_amount - to_invoice_cents;
    IF p_payment_id IS NOT NULL THEN
        UPDATE billing.payments SET
               back_invoice_cents = back_invoice_cents - to_invoice_cents,
               back_credit_cents = greatest(0, back_credit_cents - to_credit_cents),
               back_unrecovered_cents = greatest(0, back_unrecovered_cents
                   - greatest(0, to_credit_cents - back_credit_cents))
         WHERE id = p_payment_id;
    END IF;
END $$;

-- Unfinished attempts: what every run looks for first (11.2).
CREATE INDEX payment_attempts_unfinished_idx ON billing.payment_attempts (invoice_id)
    WHERE status IN ('processing', 'transient_error');
