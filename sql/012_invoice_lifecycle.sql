-- 012_invoice_lifecycle.sql: the invoice lifecycle of CONTRACT "Additions of
-- 2026-12-03 / Invoice lifecycle" in the database (docs/INVOICES.md):
-- firm settings, legal numbers, drafts, void, credited_cents and credit notes.
--
-- The rules it enforces for every writer (docs/INVOICES.md, "rule 12.x"):
--   12.1 legal numbers: unique per firm, set once and never changed, never on
--        a draft;
--   12.2 an issued invoice (issued_at set) keeps its lines and amounts: only
--        its payment, credit, dispute and status fields change; the
--        transaction that issued it may still finish writing it (issued_at =
--        now(), the transaction's start);
--   12.3 a draft or void invoice is never charged (billing.charge_due);
--   12.4 credit notes: total = subtotal + tax = applied + refunded + credited,
--        never more than what is left of the invoice's total, only on an
--        issued invoice that is not void;
--   12.5 void: voided_at, voided_by and void_reason set exactly when void,
--        and a void invoice has nothing paid or credited;
--   1.4  0 <= amount_paid + credited <= total (balance due = total -
--        amount_paid - credited), in land_money below too.
-- Gapless numbers: billing.legal_number_counters, one row per (firm, series,
-- year), advanced in the issuing transaction (row lock), so a rolled-back
-- issue leaves no gap and racing issues never share a number.

-- ---- firm settings -----------------------------------------------------------

CREATE TABLE billing.firm_settings (
    firm_id              bigint PRIMARY KEY
        CONSTRAINT firm_settings_rule_1_3_firm_exists REFERENCES billing.firms (id),
    review_before_issue  boolean NOT NULL DEFAULT false,
    number_prefix        text
        CONSTRAINT firm_settings_number_prefix_shape
        CHECK (number_prefix ~ '^[A-Za-z0-9][A-Za-z0-9_.]{0,19}$'),
    legal_name           text,
    address              text,
    tax_id               text,
    payment_instructions text,
    reminder_days        integer[] NOT NULL DEFAULT '{-3,7,21,35,65}',
    reminders_enabled    boolean NOT NULL DEFAULT true,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- The legal-number prefix of a firm: its setting, else its upper-cased slug.
CREATE FUNCTION billing.legal_prefix(p_firm_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.number_prefix FROM billing.firm_settings s
                      WHERE s.firm_id = p_firm_id),
                    (SELECT upper(f.slug) FROM billing.firms f WHERE f.id = p_firm_id))
$$;

-- <prefix>-<YYYY>-<NNNNNN> / <prefix>-CN-<YYYY>-<NNNNNN>.
CREATE FUNCTION billing.format_legal_number(p_prefix text, p_series text, p_year integer,
                                            p_n bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_prefix || CASE WHEN p_series = 'credit_note' THEN '-CN-' ELSE '-' END
       || p_year::text || '-' || lpad(p_n::text, greatest(6, length(p_n::text)), '0');

-- ---- gapless counters ----------------------------------------------------------

CREATE TABLE billing.legal_number_counters (
    firm_id    bigint NOT NULL
        CONSTRAINT legal_number_counters_rule_1_3_firm_exists REFERENCES billing.firms (id),
    series     text NOT NULL
        CONSTRAINT legal_number_counters_series_valid CHECK (series IN ('invoice', 'credit_note')),
    year       integer NOT NULL,
    last_value bigint NOT NULL
        CONSTRAINT legal_number_counters_rule_12_1_positive CHECK (last_value >= 1),
    PRIMARY KEY (firm_id, series, year)
);

-- Takes p_count consecutive numbers of (firm, series, year) and returns the
-- first. The upsert locks the counter row until the caller's transaction
-- ends: a racing issuer waits, then continues after this one's numbers (or
-- from the same place when this one rolled back).
CREATE FUNCTION billing.take_legal_numbers(p_firm_id bigint, p_series text, p_year integer,
                                           p_count bigint DEFAULT 1) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO billing.legal_number_counters AS c (firm_id, series, year, last_value)
    VALUES (p_firm_id, p_series, p_year, p_count)
    ON CONFLICT (firm_id, series, year) DO UPDATE SET last_value = c.last_value + EXCLUDED.last_value
    RETURNING last_value - p_count + 1
$$;

-- ---- invoices ---------------------------------------------------------------------

ALTER TABLE billing.invoices
    ADD COLUMN legal_number text,
    ADD COLUMN issued_at timestamptz,
    ADD COLUMN issued_by text,
    ADD COLUMN voided_at timestamptz,
    ADD COLUMN voided_by text,
    ADD COLUMN void_reason text,
    ADD COLUMN credited_cents bigint NOT NULL DEFAULT 0;

-- Invoices issued before this migration: issued when they were created.
UPDATE billing.invoices SET issued_at = created_at WHERE status <> 'draft';

ALTER TABLE billing.invoices DROP CONSTRAINT invoices_status_valid,
    ADD CONSTRAINT invoices_status_valid CHECK (status IN (
        'draft', 'sent', 'paid', 'partial', 'overdue', 'cancelled', 'failed',
        'disputed', 'refunded', 'charged_back', 'void')),
    DROP CONSTRAINT invoices_rule_1_4_amount_paid_between_0_and_total,
    ADD CONSTRAINT invoices_rule_1_4_amount_paid_between_0_and_total
        CHECK (amount_paid_cents >= 0 AND credited_cents >= 0
               AND amount_paid_cents + credited_cents <= total_cents),
    ADD CONSTRAINT invoices_rule_12_1_no_legal_number_on_draft
        CHECK (status <> 'draft' OR legal_number IS NULL),
    ADD CONSTRAINT invoices_rule_12_2_draft_not_issued
        CHECK (status <> 'draft' OR issued_at IS NULL),
    ADD CONSTRAINT invoices_rule_12_5_void_has_who_when_why
        CHECK ((status = 'void') = (voided_at IS NOT NULL AND voided_by IS NOT NULL
                                    AND void_reason IS NOT NULL AND btrim(void_reason) <> '')),
    ADD CONSTRAINT invoices_rule_12_5_void_has_nothing_paid
        CHECK (status <> 'void' OR (amount_paid_cents = 0 AND credited_cents = 0));

CREATE UNIQUE INDEX invoices_rule_12_1_legal_number_unique_per_firm
    ON billing.invoices (firm_id, legal_number) WHERE legal_number IS NOT NULL;

-- 12.1 (set once) and 12.2 (issued invoices keep their lines' totals and
-- identity). The WHEN clauses select the rows that would break a rule, so
-- ordinary updates (payments, statuses) run no PL/pgSQL.
CREATE FUNCTION billing.invoices_rule_12_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.legal_number IS NOT NULL AND NEW.legal_number IS DISTINCT FROM OLD.legal_number THEN
        RAISE EXCEPTION 'rule 12.1 (legal number): invoice % has legal number %, which is never changed or removed',
              OLD.id, OLD.legal_number USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.issued_at IS NOT NULL AND OLD.issued_at <> now()
       AND (NEW.firm_id, NEW.client_id, NEW.engagement_id, NEW.invoice_number, NEW.currency,
            NEW.subtotal_cents, NEW.tax_cents, NEW.total_cents, NEW.issue_date, NEW.due_date,
            NEW.period_start, NEW.period_end, NEW.issued_at, NEW.issued_by)
           IS DISTINCT FROM
           (OLD.firm_id, OLD.client_id, OLD.engagement_id, OLD.invoice_number, OLD.currency,
            OLD.subtotal_cents, OLD.tax_cents, OLD.total_cents, OLD.issue_date, OLD.due_date,
            OLD.period_start, OLD.period_end, OLD.issued_at, OLD.issued_by) THEN
        RAISE EXCEPTION 'rule 12.2 (issued invoices are immutable): invoice % was issued on %; only its payment, credit, dispute and status fields change; correct it with a credit note or void it',
              OLD.id, OLD.issued_at USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoices_rule_12_issued_immutable BEFORE UPDATE ON billing.invoices
    FOR EACH ROW WHEN (
        (OLD.legal_number IS NOT NULL AND NEW.legal_number IS DISTINCT FROM OLD.legal_number)
        OR (OLD.issued_at IS NOT NULL
            AND (NEW.firm_id, NEW.client_id, NEW.engagement_id, NEW.invoice_number, NEW.currency,
                 NEW.subtotal_cents, NEW.tax_cents, NEW.total_cents, NEW.issue_date, NEW.due_date,
                 NEW.period_start, NEW.period_end, NEW.issued_at, NEW.issued_by)
                IS DISTINCT FROM
                (OLD.firm_id, OLD.client_id, OLD.engagement_id, OLD.invoice_number, OLD.currency,
                 OLD.subtotal_cents, OLD.tax_cents, OLD.total_cents, OLD.issue_date, OLD.due_date,
                 OLD.period_start, OLD.period_end, OLD.issued_at, OLD.issued_by)))
    EXECUTE FUNCTION billing.invoices_rule_12_check_update();

-- ---- invoice lines -------------------------------------------------------------

ALTER TABLE billing.invoice_line_items
    ADD COLUMN original_quantity numeric(12, 2),
    ADD COLUMN original_amount_cents bigint,
    ADD COLUMN adjusted_by text,
    ADD COLUMN adjustment_reason text,
    ADD CONSTRAINT invoice_line_items_rule_12_2_adjustment_has_who_and_why
        CHECK ((adjusted_by IS NULL) = (adjustment_reason IS NULL)
               AND (adjusted_by IS NULL OR (btrim(adjusted_by) <> ''
                                            AND btrim(adjustment_reason) <> ''))),
    ADD CONSTRAINT invoice_line_items_rule_12_2_adjustment_keeps_original
        CHECK (adjusted_by IS NULL
               OR (original_quantity IS NOT NULL AND original_amount_cents IS NOT NULL));

-- A line of an issued invoice is never inserted (after its issuing
-- transaction), changed or deleted (12.2). Inserts are checked per
-- statement (the invoicing worker's bulk path); a cascade from a deleted
-- invoice finds no invoice and passes.
CREATE FUNCTION billing.invoice_line_items_rule_12_2_check_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    iss timestamptz;
    inv_id bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
BEGIN
    FOR iss IN SELECT i.issued_at FROM billing.invoices i
                WHERE i.id IN (OLD.invoice_id, inv_id) AND i.issued_at IS NOT NULL
                  AND i.issued_at <> now() LOOP
        RAISE EXCEPTION 'rule 12.2 (issued invoices are immutable): line % of invoice % cannot be %d: the invoice was issued on %; correct it with a credit note',
              OLD.id, OLD.invoice_id, lower(TG_OP), iss USING ERRCODE = 'check_violation';
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER invoice_line_items_rule_12_2_issued_lines_fixed
    BEFORE UPDATE OR DELETE ON billing.invoice_line_items
    FOR EACH ROW EXECUTE FUNCTION billing.invoice_line_items_rule_12_2_check_row();

CREATE FUNCTION billing.invoice_line_items_rule_12_2_check_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT l.invoice_id, i.issued_at INTO bad
      FROM new_lines l JOIN billing.invoices i ON i.id = l.invoice_id
     WHERE i.issued_at IS NOT NULL AND i.issued_at <> now() LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'rule 12.2 (issued invoices are immutable): no line can be added to invoice %, issued on %; correct it with a credit note',
              bad.invoice_id, bad.issued_at USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER invoice_line_items_rule_12_2_issued_lines_inserted
    AFTER INSERT ON billing.invoice_line_items
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoice_line_items_rule_12_2_check_inserted();

-- ---- drafts and void invoices are never charged (12.3) -------------------------
-- (Legacy writers and the test suite create payment attempts for invoices
-- of the default status 'draft', so 12.3 is the selection's, not a trigger
-- on payment_attempts; money arriving for a draft or void invoice is the
-- client's credit: billing.invoice_closed, 009.)

-- Which invoices a run charges (009's selection): drafts and void invoices
-- never (12.3), as before every status outside sent/partial/overdue/failed.
CREATE OR REPLACE FUNCTION billing.charge_due(p_kind text, p_status text, p_opt_in boolean,
                                              p_autopay_status text,
                                              p_next_charge_at timestamptz,
                                              p_next_retry_at timestamptz, p_day date)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status NOT IN ('draft', 'void') AND CASE p_kind
        WHEN 'autopay' THEN p_opt_in AND p_autopay_status IN ('scheduled', 'processing')
             AND p_status IN ('sent', 'partial', 'overdue')
             AND p_next_charge_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
        WHEN 'retry' THEN p_opt_in AND p_status = 'failed'
             AND p_autopay_status <> 'needs_attention'
             AND p_next_retry_at IS NOT NULL
             AND p_next_retry_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
        ELSE false END
$$;

-- Balance due (CONTRACT): total - amount_paid - credited, never below 0.
CREATE FUNCTION billing.balance_due(p_total bigint, p_paid bigint, p_credited bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN greatest(p_total - p_paid - coalesce(p_credited, 0), 0);

-- ---- money lands on an invoice: 009's function with the balance due of 1.4 ---

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

-- ---- invoice events: voided, credited, and legal_number in the payload -------

CREATE OR REPLACE FUNCTION billing.invoice_event(p_invoice_id bigint, p_type text,
                                                 p_seq integer DEFAULT 0,
                                                 p_extra jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    k text;
    out_id bigint;
BEGIN
    IF p_type NOT IN ('invoice.issued', 'invoice.paid', 'invoice.payment_failed',
                      'invoice.overdue', 'invoice.disputed', 'invoice.charged_back',
                      'invoice.refunded', 'invoice.voided', 'invoice.credited') THEN
        RAISE EXCEPTION 'unknown invoice event type "%"', p_type
            USING ERRCODE = 'check_violation',
                  HINT = 'use one of the contract''s invoice event types';
    END IF;
    SELECT * INTO inv FROM billing.invoices WHERE id = p_invoice_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % does not exist; cannot queue %', p_invoice_id, p_type
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    k := p_type || ':' || inv.id || CASE WHEN p_seq > 0 THEN ':' || p_seq ELSE '' END;
    INSERT INTO billing.outbox (firm_id, topic, msg_key, payload)
    VALUES (inv.firm_id, 'invoices', inv.id::text,
            jsonb_build_object('type', p_type, 'idempotency_key', k,
                               'invoice_id', inv.id, 'firm_id', inv.firm_id,
                               'client_id', inv.client_id, 'status', inv.status,
                               'total_cents', inv.total_cents, 'currency', inv.currency,
                               'amount_paid_cents', inv.amount_paid_cents,
                               'occurred_at', to_char(now() AT TIME ZONE 'UTC',
                                                      'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
            || CASE WHEN inv.legal_number IS NOT NULL
                    THEN jsonb_build_object('legal_number', inv.legal_number)
                    ELSE '{}'::jsonb END
            || coalesce(p_extra, '{}'::jsonb))
    RETURNING id INTO out_id;
    RETURN out_id;
END $$;

-- ---- credit notes ------------------------------------------------------------------

CREATE TABLE billing.credit_notes (
    id                   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    firm_id              bigint NOT NULL,
    client_id            bigint NOT NULL,
    invoice_id           bigint NOT NULL,
    legal_number         text NOT NULL,
    reason               text NOT NULL
        CONSTRAINT credit_notes_reason_not_empty CHECK (btrim(reason) <> ''),
    subtotal_cents       bigint NOT NULL,
    tax_cents            bigint NOT NULL,
    total_cents          bigint NOT NULL,
    applied_to_due_cents bigint NOT NULL DEFAULT 0,
    refunded_cents       bigint NOT NULL DEFAULT 0,
    credited_cents       bigint NOT NULL DEFAULT 0,
    created_by           text NOT NULL
        CONSTRAINT credit_notes_created_by_not_empty CHECK (btrim(created_by) <> ''),
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_notes_firm_id_id_unique UNIQUE (firm_id, id),
    CONSTRAINT credit_notes_rule_1_3_invoice_same_firm_and_client
        FOREIGN KEY (firm_id, client_id, invoice_id)
        REFERENCES billing.invoices (firm_id, client_id, id),
    CONSTRAINT credit_notes_rule_12_1_legal_number_unique_per_firm UNIQUE (firm_id, legal_number),
    CONSTRAINT credit_notes_rule_12_4_amounts_add_up
        CHECK (subtotal_cents >= 0 AND tax_cents >= 0 AND total_cents > 0
               AND total_cents = subtotal_cents + tax_cents
               AND applied_to_due_cents >= 0 AND refunded_cents >= 0 AND credited_cents >= 0
               AND applied_to_due_cents + refunded_cents + credited_cents = total_cents)
);
CREATE INDEX credit_notes_invoice_id_idx ON billing.credit_notes (invoice_id);

CREATE TABLE billing.credit_note_lines (
    id                   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    credit_note_id       bigint NOT NULL,
    firm_id              bigint NOT NULL,
    invoice_line_item_id bigint
        CONSTRAINT credit_note_lines_line_exists REFERENCES billing.invoice_line_items (id),
    description          text NOT NULL DEFAULT '',
    amount_cents         bigint NOT NULL
        CONSTRAINT credit_note_lines_rule_12_4_amount_not_negative CHECK (amount_cents >= 0),
    CONSTRAINT credit_note_lines_rule_1_3_note_same_firm
        FOREIGN KEY (firm_id, credit_note_id) REFERENCES billing.credit_notes (firm_id, id)
);
CREATE INDEX credit_note_lines_credit_note_id_idx ON billing.credit_note_lines (credit_note_id);

-- Credit notes are financial records: never changed or deleted (1.7's
-- function names the table).
CREATE TRIGGER credit_notes_rule_1_7_append_only BEFORE UPDATE OR DELETE ON billing.credit_notes
    FOR EACH ROW EXECUTE FUNCTION billing.rule_1_7_append_only();
CREATE TRIGGER credit_note_lines_rule_1_7_append_only
    BEFORE UPDATE OR DELETE ON billing.credit_note_lines
    FOR EACH ROW EXECUTE FUNCTION billing.rule_1_7_append_only();

-- 12.4: a credit note is for an issued invoice that is not void, and the
-- invoice's credit notes never exceed its total. The invoice row is locked,
-- so two notes of one invoice are checked one after the other.
CREATE FUNCTION billing.credit_notes_rule_12_4_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    before_cents bigint;
BEGIN
    SELECT * INTO inv FROM billing.invoices WHERE id = NEW.invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NEW;   -- the foreign key refuses it
    END IF;
    IF inv.status IN ('draft', 'void') THEN
        RAISE EXCEPTION 'rule 12.4 (credit notes): invoice % is %; a credit note corrects an issued invoice (adjust a draft, void an unpaid invoice)',
              inv.id, inv.status USING ERRCODE = 'check_violation';
    END IF;
    SELECT coalesce(sum(total_cents), 0) INTO before_cents
      FROM billing.credit_notes WHERE invoice_id = NEW.invoice_id;
    IF before_cents + NEW.total_cents > inv.total_cents THEN
        RAISE EXCEPTION 'rule 12.4 (credit notes): a credit note of % cents exceeds what is left of invoice %''s total (% of % cents already credited)',
              NEW.total_cents, inv.id, before_cents, inv.total_cents
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER credit_notes_rule_12_4_within_total BEFORE INSERT ON billing.credit_notes
    FOR EACH ROW EXECUTE FUNCTION billing.credit_notes_rule_12_4_check();

-- 4: credit notes are a source of client credit.
ALTER TABLE billing.credit_ledger DROP CONSTRAINT credit_ledger_rule_4_credit_needs_source,
    ADD CONSTRAINT credit_ledger_rule_4_credit_needs_source
        CHECK (entry_type <> 'credit' OR (
            source IS NOT NULL
            AND source IN ('overpayment', 'refund', 'goodwill', 'promotional', 'correction',
                           'credit_note')
            AND use IS NULL));
