-- 013_invoice_lifecycle_functions.sql: the operations of the invoice
-- lifecycle (docs/INVOICES.md), one function each, called by
-- common/lifecycle.c inside the caller's transaction:
--   billing.issue_invoice(invoice, date, by)        draft -> sent with a legal number
--   billing.adjust_invoice_line(invoice, line, ...)  a draft's hourly line written up/down
--   billing.void_invoice(invoice, reason, by)        nothing paid -> void
-- and 002's rule 1.8 function, which now lets a void invoice release its
-- time entries (so the next invoice bills them).
-- Refusals are check_violation errors whose message starts "cannot ..." and
-- names the rule (12.x of docs/INVOICES.md).

-- When autopay charges an invoice issued on p_day and due on p_due (the
-- invoicing worker's CASE, sql-side).
CREATE FUNCTION billing.autopay_charge_at(p_cadence text, p_day date, p_due date)
RETURNS timestamptz LANGUAGE sql IMMUTABLE
RETURN (CASE p_cadence
            WHEN 'on_issue' THEN p_day
            WHEN 'on_due' THEN p_due
            WHEN 'monthly' THEN date_trunc('month', p_due::timestamp)::date
            ELSE date_trunc('quarter', p_due::timestamp)::date END)::timestamp AT TIME ZONE 'UTC';

-- ---- issue ----------------------------------------------------------------------

-- Issues a draft on p_day: the next legal number of its firm's invoice
-- series for p_day's year (taken in this transaction: a rollback returns
-- it), issue and due dates (the engagement's payment terms, 30 days without
-- one), autopay scheduled when the invoice is opted in, audit invoice_issued
-- and event invoice.issued (carrying legal_number). An invoice that is
-- already issued is returned as it is (already = true): issuing twice is
-- issuing once.
CREATE FUNCTION billing.issue_invoice(p_invoice_id bigint, p_day date, p_by text,
                                      OUT legal_number text, OUT already boolean)
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    terms integer;
    due date;
    n bigint;
BEGIN
    SELECT * INTO inv FROM billing.invoices WHERE id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cannot issue invoice %: it does not exist', p_invoice_id
              USING ERRCODE = 'no_data_found';
    END IF;
    IF inv.status <> 'draft' THEN
        IF inv.legal_number IS NOT NULL AND inv.status <> 'void' THEN
            legal_number := inv.legal_number;
            already := true;
            RETURN;
        END IF;
        RAISE EXCEPTION 'cannot issue invoice %: it is % (rule 12.1: only a draft is issued)',
              p_invoice_id, inv.status USING ERRCODE = 'check_violation';
    END IF;
    SELECT e.payment_terms_days INTO terms FROM billing.engagements e WHERE e.id = inv.engagement_id;
    due := p_day + coalesce(terms, 30);
    n := billing.take_legal_numbers(inv.firm_id, 'invoice', extract(year FROM p_day)::int, 1);
    legal_number := billing.format_legal_number(billing.legal_prefix(inv.firm_id), 'invoice',
                                                extract(year FROM p_day)::int, n);
    already := false;
    UPDATE billing.invoices SET status = 'sent', legal_number = issue_invoice.legal_number,
           issued_at = now(), issued_by = p_by, issue_date = p_day, due_date = due,
           autopay_status = CASE WHEN autopay_opt_in THEN 'scheduled' ELSE autopay_status END,
           autopay_next_charge_at = CASE WHEN autopay_opt_in
               THEN billing.autopay_charge_at(autopay_cadence, p_day, due)
               ELSE autopay_next_charge_at END
     WHERE id = p_invoice_id;
    PERFORM billing.audit(inv.firm_id, 'invoice_issued', 'INFO', p_by,
                jsonb_build_object('invoice_id', inv.id, 'invoice_number', inv.invoice_number,
                                   'legal_number', issue_invoice.legal_number,
                                   'issue_date', p_day, 'due_date', due,
                                   'total_cents', inv.total_cents, 'currency', inv.currency));
    PERFORM billing.invoice_event(inv.id, 'invoice.issued', 0, NULL);
END $$;

-- ---- adjust ---------------------------------------------------------------------

-- Writes an hourly line of a draft up or down, to p_quantity hours (the
-- amount recomputed at the line's rate, rounded to the currency's
-- granularity, rule 11.13) or to p_amount cents; the first adjustment keeps
-- the computed values in original_quantity / original_amount_cents. The
-- invoice's subtotal, tax (client's rate, same rounding) and total follow.
-- Audit invoice_line_adjusted. Returns the invoice's new total.
CREATE FUNCTION billing.adjust_invoice_line(p_invoice_id bigint, p_line_id bigint,
                                            p_quantity numeric, p_amount bigint,
                                            p_reason text, p_by text,
                                            OUT total_cents bigint, OUT amount_cents bigint)
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    li billing.invoice_line_items%ROWTYPE;
    new_q numeric(12, 2);
    new_amount bigint;
    sub bigint;
    tax bigint;
    rate integer;
BEGIN
    SELECT * INTO inv FROM billing.invoices WHERE id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cannot adjust invoice %: it does not exist', p_invoice_id
              USING ERRCODE = 'no_data_found';
    END IF;
    IF inv.status <> 'draft' THEN
        RAISE EXCEPTION 'cannot adjust invoice %: it is % (rule 12.2: only a draft''s lines are adjusted; correct an issued invoice with a credit note)',
              p_invoice_id, inv.status USING ERRCODE = 'check_violation';
    END IF;
    SELECT * INTO li FROM billing.invoice_line_items l
     WHERE l.id = p_line_id AND l.invoice_id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cannot adjust line % of invoice %: the invoice has no such line',
              p_line_id, p_invoice_id USING ERRCODE = 'no_data_found';
    END IF;
    IF li.line_type <> 'hourly' THEN
        RAISE EXCEPTION 'cannot adjust line % of invoice %: it is a % line (rule 12.2: only hourly lines are written up or down)',
              p_line_id, p_invoice_id, li.line_type USING ERRCODE = 'check_violation';
    END IF;
    IF (p_quantity IS NULL) = (p_amount IS NULL) OR p_quantity < 0 OR p_amount < 0 THEN
        RAISE EXCEPTION 'cannot adjust line %: give either a quantity or an amount, not negative',
              p_line_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_quantity IS NOT NULL THEN
        new_q := p_quantity;
        new_amount := billing.round_to_granularity(new_q * li.rate_cents, inv.currency);
    ELSE
        new_q := li.quantity;
        new_amount := p_amount;
        IF new_amount % billing.currency_granularity(inv.currency) <> 0 THEN
            RAISE EXCEPTION 'cannot adjust line %: % is not a multiple of % minor units of % (rule 11.13)',
                  p_line_id, new_amount, billing.currency_granularity(inv.currency), inv.currency
                  USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    UPDATE billing.invoice_line_items SET
           original_quantity = coalesce(original_quantity, quantity),
           original_amount_cents = coalesce(original_amount_cents, invoice_line_items.amount_cents),
           quantity = new_q, amount_cents = new_amount,
           adjusted_by = p_by, adjustment_reason = p_reason
     WHERE id = p_line_id;
    SELECT coalesce(sum(l.amount_cents), 0) INTO sub
      FROM billing.invoice_line_items l WHERE l.invoice_id = p_invoice_id;
    SELECT c.tax_rate_bp INTO rate FROM billing.clients c WHERE c.id = inv.client_id;
    tax := billing.round_to_granularity(sub, inv.currency, coalesce(rate, 0), 10000);
    UPDATE billing.invoices SET subtotal_cents = sub, tax_cents = tax, total_cents = sub + tax
     WHERE id = p_invoice_id;
    total_cents := sub + tax;
    amount_cents := new_amount;
    PERFORM billing.audit(inv.firm_id, 'invoice_line_adjusted', 'INFO', p_by,
                jsonb_build_object('invoice_id', inv.id, 'line_id', li.id,
                                   'quantity_before', li.quantity, 'quantity_after', new_q,
                                   'amount_before_cents', li.amount_cents,
                                   'amount_after_cents', new_amount,
                                   'original_quantity', coalesce(li.original_quantity, li.quantity),
                                   'original_amount_cents',
                                   coalesce(li.original_amount_cents, li.amount_cents),
                                   'reason', p_reason, 'total_before_cents', inv.total_cents,
                                   'total_after_cents', sub + tax));
END $$;

-- ---- void -----------------------------------------------------------------------

-- Voids an invoice that has nothing paid or credited and no charge in
-- flight: status void (the legal number stays; a draft has none and
-- consumes none), its time entries billable again, pending autopay and
-- retries cancelled, audit invoice_voided and, for an issued invoice, event
-- invoice.voided. Voiding a void invoice is a no-op (already = true).
CREATE FUNCTION billing.void_invoice(p_invoice_id bigint, p_reason text, p_by text,
                                     OUT released bigint, OUT already boolean)
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    att bigint;
BEGIN
    released := 0;
    SELECT * INTO inv FROM billing.invoices WHERE id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cannot void invoice %: it does not exist', p_invoice_id
              USING ERRCODE = 'no_data_found';
    END IF;
    IF inv.status = 'void' THEN
        already := true;
        RETURN;
    END IF;
    already := false;
    IF inv.amount_paid_cents > 0 OR inv.credited_cents > 0 THEN
        RAISE EXCEPTION 'cannot void invoice %: % cents are paid and % credited (rule 12.5: only an invoice with nothing paid is voided; issue a credit note instead)',
              p_invoice_id, inv.amount_paid_cents, inv.credited_cents
              USING ERRCODE = 'check_violation';
    END IF;
    IF inv.status NOT IN ('draft', 'sent', 'overdue', 'failed', 'partial') THEN
        RAISE EXCEPTION 'cannot void invoice %: it is % (rule 12.5: only an unpaid invoice is voided)',
              p_invoice_id, inv.status USING ERRCODE = 'check_violation';
    END IF;
    SELECT a.id INTO att FROM billing.payment_attempts a
     WHERE a.invoice_id = p_invoice_id AND a.status IN ('processing', 'transient_error')
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot void invoice %: a charge is in flight (payment attempt %); wait for its answer, then void it or credit it',
              p_invoice_id, att USING ERRCODE = 'check_violation';
    END IF;
    UPDATE billing.invoices SET status = 'void', voided_at = now(), voided_by = p_by,
           void_reason = p_reason,
           autopay_status = CASE WHEN autopay_status IN ('scheduled', 'failed', 'needs_attention')
                                 THEN 'cancelled' ELSE autopay_status END,
           next_payment_retry_at = NULL
     WHERE id = p_invoice_id;
    WITH t AS (UPDATE billing.time_entries SET invoice_id = NULL
                WHERE invoice_id = p_invoice_id RETURNING 1)
    SELECT count(*) INTO released FROM t;
    PERFORM billing.audit(inv.firm_id, 'invoice_voided', 'INFO', p_by,
                jsonb_build_object('invoice_id', inv.id, 'invoice_number', inv.invoice_number,
                                   'legal_number', inv.legal_number, 'status_before', inv.status,
                                   'reason', p_reason, 'time_entries_released', released,
                                   'total_cents', inv.total_cents));
    IF inv.status <> 'draft' THEN
        PERFORM billing.invoice_event(inv.id, 'invoice.voided', 0, NULL);
    END IF;
END $$;

-- ---- rule 1.8 with void ------------------------------------------------------------

-- 002's function, unchanged except that an entry billed on a void invoice
-- may be released (invoice_id cleared): the voided invoice no longer bills
-- it, and the next invoice of its engagement will.
CREATE OR REPLACE FUNCTION billing.time_entries_rule_1_8_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    inv_eng      bigint;
    inv_client   bigint;
    inv_override boolean;
    te_client    bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.invoice_id IS NOT NULL THEN
            RAISE EXCEPTION 'rule 1.8 (invoiced once): time entry % is billed on invoice % and cannot be deleted',
                  OLD.id, OLD.invoice_id
                  USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;

    IF TG_OP = 'UPDATE' AND OLD.invoice_id IS NOT NULL THEN
        IF NEW.invoice_id IS NULL
           AND EXISTS (SELECT 1 FROM billing.invoices i
                        WHERE i.id = OLD.invoice_id AND i.status = 'void')
           AND (NEW.firm_id, NEW.engagement_id, NEW.work_date, NEW.hours, NEW.hourly_rate_cents)
               IS NOT DISTINCT FROM
               (OLD.firm_id, OLD.engagement_id, OLD.work_date, OLD.hours, OLD.hourly_rate_cents)
        THEN
            RETURN NEW;   -- released by a void invoice (rule 12.5)
        END IF;
        IF NEW.invoice_id IS DISTINCT FROM OLD.invoice_id THEN
            RAISE EXCEPTION 'rule 1.8 (invoiced once): time entry % is already billed on invoice %; it cannot be moved to another invoice or un-invoiced',
                  OLD.id, OLD.invoice_id
                  USING ERRCODE = 'check_violation';
        END IF;
        IF NOT NEW.approved THEN
            RAISE EXCEPTION 'rule 1.8 (approval locked): time entry % is billed on invoice %; its approval cannot be revoked',
                  OLD.id, OLD.invoice_id
                  USING ERRCODE = 'check_violation';
        END IF;
        IF (NEW.firm_id, NEW.engagement_id, NEW.work_date, NEW.hours, NEW.hourly_rate_cents)
           IS DISTINCT FROM
           (OLD.firm_id, OLD.engagement_id, OLD.work_date, OLD.hours, OLD.hourly_rate_cents) THEN
            RAISE EXCEPTION 'rule 1.8 (invoiced once): time entry % is billed on invoice %; its engagement, date, hours and rate cannot change',
                  OLD.id, OLD.invoice_id
                  USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;

    -- Being put on an invoice now.
    IF NEW.invoice_id IS NOT NULL THEN
        IF NOT NEW.approved THEN
            RAISE EXCEPTION 'rule 1.8 (approval first): time entry % is not approved and cannot be put on invoice %; approve it first',
                  NEW.id, NEW.invoice_id
                  USING ERRCODE = 'check_violation';
        END IF;
        SELECT i.engagement_id, i.client_id, i.engagement_override
          INTO inv_eng, inv_client, inv_override
          FROM billing.invoices i WHERE i.id = NEW.invoice_id;
        IF FOUND THEN   -- (a missing invoice is refused by the foreign key)
            IF NOT inv_override AND inv_eng IS DISTINCT FROM NEW.engagement_id THEN
                RAISE EXCEPTION 'rule 1.8 (same engagement): time entry % of engagement % cannot be billed on invoice % of engagement %; bill it on an invoice of its own engagement',
                      NEW.id, NEW.engagement_id, NEW.invoice_id, inv_eng
                      USING ERRCODE = 'check_violation';
            END IF;
            SELECT e.client_id INTO te_client
              FROM billing.engagements e WHERE e.id = NEW.engagement_id;
            IF te_client IS DISTINCT FROM inv_client THEN
                RAISE EXCEPTION 'rule 1.8 (same engagement): time entry % belongs to client % and cannot be billed on invoice % of client %',
                      NEW.id, te_client, NEW.invoice_id, inv_client
                      USING ERRCODE = 'check_violation';
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END $$;
