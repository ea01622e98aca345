-- 002_invariants.sql: the invariants of BILLING_RULES section 1 (and the
-- credit ledger rules of section 4) that a CHECK or FOREIGN KEY cannot say,
-- as triggers, so that a platform writing the tables directly cannot break
-- them. Every refusal raises "rule N (short name): what was wrong; what to
-- do" with SQLSTATE check_violation (23514), or restrict_violation (23001)
-- for the append-only tables.

-- ---------------------------------------------------------------------------
-- updated_at: bumped on every real change (a no-op UPDATE leaves it alone).
CREATE OR REPLACE FUNCTION billing.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER clients_touch_updated_at BEFORE UPDATE ON billing.clients
    FOR EACH ROW EXECUTE FUNCTION billing.touch_updated_at();
CREATE TRIGGER engagements_touch_updated_at BEFORE UPDATE ON billing.engagements
    FOR EACH ROW EXECUTE FUNCTION billing.touch_updated_at();
CREATE TRIGGER time_entries_touch_updated_at BEFORE UPDATE ON billing.time_entries
    FOR EACH ROW EXECUTE FUNCTION billing.touch_updated_at();
CREATE TRIGGER invoices_touch_updated_at BEFORE UPDATE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.touch_updated_at();
CREATE TRIGGER payment_disputes_touch_updated_at BEFORE UPDATE ON billing.payment_disputes
    FOR EACH ROW EXECUTE FUNCTION billing.touch_updated_at();
CREATE TRIGGER scheduler_state_touch_updated_at BEFORE UPDATE ON billing.scheduler_state
    FOR EACH ROW EXECUTE FUNCTION billing.touch_updated_at();

-- ---------------------------------------------------------------------------
-- Rule 1.2: a manual invoice written without an engagement (and without an
-- override) is linked to the client's current engagement: status current,
-- latest start date, then highest id. None: refused.
CREATE OR REPLACE FUNCTION billing.invoices_rule_1_2_link_engagement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    eng bigint;
BEGIN
    IF NEW.engagement_id IS NULL AND NOT coalesce(NEW.engagement_override, false)
       AND NEW.client_id IS NOT NULL AND NEW.firm_id IS NOT NULL THEN
        SELECT e.id INTO eng
          FROM billing.engagements e
         WHERE e.firm_id = NEW.firm_id AND e.client_id = NEW.client_id
           AND e.status = 'current'
         ORDER BY e.start_date DESC, e.id DESC
         LIMIT 1;
        IF eng IS NULL THEN
            RAISE EXCEPTION 'rule 1.2 (engagement link): client % of firm % has no current engagement to link invoice % to; give an engagement_id, or set engagement_override with engagement_override_reason and engagement_override_by',
                  NEW.client_id, NEW.firm_id, NEW.invoice_number
                  USING ERRCODE = 'check_violation';
        END IF;
        NEW.engagement_id := eng;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoices_rule_1_2_link_engagement BEFORE INSERT ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.invoices_rule_1_2_link_engagement();

-- ---------------------------------------------------------------------------
-- Rule 1.4: subtotal = sum of the invoice's line items. Checked at COMMIT
-- (deferred constraint triggers), so an invoice and its lines can be written
-- in any order inside one transaction.
CREATE OR REPLACE FUNCTION billing.assert_invoice_subtotal(inv bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    sub   bigint;
    lines bigint;
BEGIN
    SELECT i.subtotal_cents INTO sub FROM billing.invoices i WHERE i.id = inv;
    IF NOT FOUND THEN
        RETURN;   -- the invoice was deleted (its lines go with it)
    END IF;
    SELECT coalesce(sum(l.amount_cents), 0) INTO lines
      FROM billing.invoice_line_items l WHERE l.invoice_id = inv;
    IF sub <> lines THEN
        RAISE EXCEPTION 'rule 1.4 (subtotal = sum of lines): invoice % has subtotal_cents % but its line items sum to %; write the lines and the subtotal (and total) together in one transaction',
              inv, sub, lines
              USING ERRCODE = 'check_violation';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION billing.invoice_line_items_rule_1_4_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM billing.assert_invoice_subtotal(OLD.invoice_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE')
       AND (TG_OP = 'INSERT' OR NEW.invoice_id IS DISTINCT FROM OLD.invoice_id) THEN
        PERFORM billing.assert_invoice_subtotal(NEW.invoice_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing.invoices_rule_1_4_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM billing.assert_invoice_subtotal(NEW.id);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER invoice_line_items_rule_1_4_subtotal_matches
    AFTER INSERT OR UPDATE OR DELETE ON billing.invoice_line_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing.invoice_line_items_rule_1_4_check();
CREATE CONSTRAINT TRIGGER invoices_rule_1_4_subtotal_matches
    AFTER INSERT OR UPDATE OF subtotal_cents ON billing.invoices
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing.invoices_rule_1_4_check();

-- ---------------------------------------------------------------------------
-- Rule 1.5: line types follow the pricing mode of the invoice's engagement:
-- package_fee on package/mixed, hourly on hourly/mixed, adjustment anywhere;
-- an overridden invoice without an engagement accepts any type. Checked when
-- a line is written, when an invoice changes engagement, and when an
-- engagement changes pricing mode.
CREATE OR REPLACE FUNCTION billing.rule_1_5_line_allowed(pricing_mode text, line_type text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT pricing_mode IS NULL
        OR line_type NOT IN ('package_fee', 'hourly')   -- adjustment (others: the CHECK)
        OR (line_type = 'package_fee' AND pricing_mode IN ('package', 'mixed'))
        OR (line_type = 'hourly' AND pricing_mode IN ('hourly', 'mixed'))
$$;

CREATE OR REPLACE FUNCTION billing.invoice_line_items_rule_1_5_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    eng  bigint;
    mode text;
BEGIN
    SELECT i.engagement_id, e.pricing_mode INTO eng, mode
      FROM billing.invoices i
      LEFT JOIN billing.engagements e ON e.id = i.engagement_id
     WHERE i.id = NEW.invoice_id;
    IF NOT billing.rule_1_5_line_allowed(mode, NEW.line_type) THEN
        RAISE EXCEPTION 'rule 1.5 (pricing mode): a % line cannot go on invoice % whose engagement % is priced %; use package_fee lines for package, hourly lines for hourly, either for mixed, adjustment for anything else',
              NEW.line_type, NEW.invoice_id, eng, mode
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoice_line_items_rule_1_5_line_type
    BEFORE INSERT OR UPDATE OF line_type, invoice_id ON billing.invoice_line_items
    FOR EACH ROW EXECUTE FUNCTION billing.invoice_line_items_rule_1_5_check();

CREATE OR REPLACE FUNCTION billing.invoices_rule_1_5_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    mode text;
    bad  text;
BEGIN
    SELECT e.pricing_mode INTO mode FROM billing.engagements e WHERE e.id = NEW.engagement_id;
    SELECT l.line_type INTO bad
      FROM billing.invoice_line_items l
     WHERE l.invoice_id = NEW.id AND NOT billing.rule_1_5_line_allowed(mode, l.line_type)
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'rule 1.5 (pricing mode): invoice % has % lines, which engagement % (priced %) does not allow; remove those lines or link an engagement whose pricing mode allows them',
              NEW.id, bad, NEW.engagement_id, mode
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoices_rule_1_5_line_types
    BEFORE UPDATE OF engagement_id ON billing.invoices
    FOR EACH ROW WHEN (NEW.engagement_id IS DISTINCT FROM OLD.engagement_id)
    EXECUTE FUNCTION billing.invoices_rule_1_5_check();

CREATE OR REPLACE FUNCTION billing.engagements_rule_1_5_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    inv bigint;
    bad text;
BEGIN
    SELECT l.invoice_id, l.line_type INTO inv, bad
      FROM billing.invoices i
      JOIN billing.invoice_line_items l ON l.invoice_id = i.id
     WHERE i.engagement_id = NEW.id
       AND NOT billing.rule_1_5_line_allowed(NEW.pricing_mode, l.line_type)
     LIMIT 1;
    IF inv IS NOT NULL THEN
        RAISE EXCEPTION 'rule 1.5 (pricing mode): engagement % cannot become %: its invoice % has % lines; renew the engagement with the new terms instead',
              NEW.id, NEW.pricing_mode, inv, bad
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER engagements_rule_1_5_line_types
    BEFORE UPDATE OF pricing_mode ON billing.engagements
    FOR EACH ROW WHEN (NEW.pricing_mode IS DISTINCT FROM OLD.pricing_mode)
    EXECUTE FUNCTION billing.engagements_rule_1_5_check();

-- ---------------------------------------------------------------------------
-- Rule 1.7: credit_ledger and audit_events are append-only.
CREATE OR REPLACE FUNCTION billing.rule_1_7_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rule 1.7 (append-only): % entries cannot be %d; write a new, reversing entry instead',
          TG_TABLE_NAME,
          CASE TG_OP WHEN 'UPDATE' THEN 'update' WHEN 'DELETE' THEN 'delete' ELSE 'truncate' END
          USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER credit_ledger_rule_1_7_append_only
    BEFORE UPDATE OR DELETE ON billing.credit_ledger
    FOR EACH ROW EXECUTE FUNCTION billing.rule_1_7_append_only();
CREATE TRIGGER credit_ledger_rule_1_7_no_truncate
    BEFORE TRUNCATE ON billing.credit_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION billing.rule_1_7_append_only();
CREATE TRIGGER audit_events_rule_1_7_append_only
    BEFORE UPDATE OR DELETE ON billing.audit_events
    FOR EACH ROW EXECUTE FUNCTION billing.rule_1_7_append_only();
CREATE TRIGGER audit_events_rule_1_7_no_truncate
    BEFORE TRUNCATE ON billing.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION billing.rule_1_7_append_only();

-- ---------------------------------------------------------------------------
-- Rule 1.8: time entries. Not billable until approved; put on an invoice only
-- when approved, and only on an invoice of the same engagement (an
-- overridden invoice: of the same client); once invoiced, the invoice cannot
-- change or be cleared, approval cannot be revoked, the billed facts
-- (engagement, date, hours, rate) cannot change and the entry cannot be
-- deleted.
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

CREATE TRIGGER time_entries_rule_1_8_approval_and_invoicing
    BEFORE INSERT OR UPDATE OR DELETE ON billing.time_entries
    FOR EACH ROW EXECUTE FUNCTION billing.time_entries_rule_1_8_check();

-- The time entries a line lists (time_entry_ids) are time entries of the same
-- firm, marked invoiced on that line's invoice (section 3: marked in the same
-- transaction). Checked at COMMIT.
CREATE OR REPLACE FUNCTION billing.invoice_line_items_time_entries_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    te_id   bigint;
    te_firm bigint;
    te_inv  bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM billing.invoice_line_items l WHERE l.id = NEW.id) THEN
        RETURN NULL;   -- deleted later in the same transaction
    END IF;
    FOREACH te_id IN ARRAY NEW.time_entry_ids LOOP
        SELECT t.firm_id, t.invoice_id INTO te_firm, te_inv
          FROM billing.time_entries t WHERE t.id = te_id;
        IF NOT FOUND OR te_firm <> NEW.firm_id THEN
            RAISE EXCEPTION 'rule 1.3 (tenant): line % of invoice % lists time entry %, which is not a time entry of firm %; list only the firm''s own time entries',
                  NEW.id, NEW.invoice_id, te_id, NEW.firm_id
                  USING ERRCODE = 'check_violation';
        END IF;
        IF te_inv IS DISTINCT FROM NEW.invoice_id THEN
            RAISE EXCEPTION 'rule 1.8 (invoiced once): line % of invoice % lists time entry %, which is marked invoiced on %; set the entry''s invoice_id to this invoice in the same transaction (an entry is billed once)',
                  NEW.id, NEW.invoice_id, te_id, coalesce(te_inv::text, 'no invoice')
                  USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER invoice_line_items_rule_1_8_time_entries_invoiced
    AFTER INSERT OR UPDATE OF time_entry_ids, invoice_id, firm_id ON billing.invoice_line_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (cardinality(NEW.time_entry_ids) > 0)
    EXECUTE FUNCTION billing.invoice_line_items_time_entries_check();

-- ---------------------------------------------------------------------------
-- Section 4: a client's credit balance (credits - debits, from the ledger)
-- is never negative. A debit first takes the client's row lock with a no-op
-- UPDATE, so racing debits of one client run one after the other: under READ
-- COMMITTED the second then sees the first and is refused; under REPEATABLE
-- READ / SERIALIZABLE it fails with a serialization error (retryable) rather
-- than reading a stale balance, which a mere SELECT ... FOR UPDATE would
-- allow. NO KEY UPDATE strength: foreign-key checks on the client continue.
CREATE OR REPLACE FUNCTION billing.credit_ledger_rule_4_balance_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    balance bigint;
BEGIN
    UPDATE billing.clients c SET status = c.status
     WHERE c.id = NEW.client_id AND c.firm_id = NEW.firm_id;
    IF NOT FOUND THEN
        RETURN NEW;   -- no such client of this firm: the foreign key refuses it
    END IF;
    SELECT coalesce(sum(CASE l.entry_type WHEN 'credit' THEN l.amount_cents
                                          ELSE -l.amount_cents END), 0)
      INTO balance
      FROM billing.credit_ledger l
     WHERE l.client_id = NEW.client_id;
    IF NEW.amount_cents > balance THEN
        RAISE EXCEPTION 'rule 4 (credit balance): debit of % cents exceeds client %''s credit balance of % cents; debit at most the balance',
              NEW.amount_cents, NEW.client_id, balance
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER credit_ledger_rule_4_balance_not_negative
    BEFORE INSERT ON billing.credit_ledger
    FOR EACH ROW WHEN (NEW.entry_type = 'debit')
    EXECUTE FUNCTION billing.credit_ledger_rule_4_balance_check();
