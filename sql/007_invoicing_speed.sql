-- 007_invoicing_speed.sql: the invariants of 002 on the invoice write path,
-- checked per statement instead of per row, so that writing invoices in bulk
-- (the invoicing worker: thousands of invoices per statement) pays for a few
-- set-based queries per statement instead of a PL/pgSQL call and a queued
-- deferred trigger event per row (issue 4: 1M invoices). Every rule stays
-- enforced by the database for any writer, with 002's error messages;
-- tests/db/test_invariants.c (test_rules_checked_per_statement) covers the
-- multi-row and COMMIT-time cases.
--
-- What changes (everything else in 002 stays as it was):
--
-- - Rule 1.4 (subtotal = sum of lines) on INSERT of invoices and of line
--   items: AFTER ... FOR EACH STATEMENT triggers with transition tables check
--   the statement's invoices when the statement ends. An invoice that matches
--   then is done: only a later write of its lines or its subtotal can break
--   it, and each of those is checked again. Only invoices that do not match
--   yet (a transaction writing an invoice and its lines in separate
--   statements) are queued in billing.deferred_checks, whose deferred
--   constraint trigger re-checks them at COMMIT with 002's
--   billing.assert_invoice_subtotal, as before. UPDATE of a subtotal and
--   UPDATE/DELETE of lines (rare, single rows) keep 002's per-row deferred
--   triggers.
-- - Rule 1.3/1.8 (the time entries a line lists are the firm's and marked
--   invoiced on that invoice) on INSERT of line items: the same scheme. Once
--   true it stays true: an invoiced entry can no longer change invoice or
--   firm or be deleted (1.8 row trigger), and an UPDATE of the line keeps
--   002's deferred trigger.
-- - Rule 1.5 (line types follow the pricing mode) on INSERT of line items:
--   one set-based query per statement; UPDATE keeps 002's row trigger.
-- - Rule 1.8 on time entries: 002's row function runs only for the rows it
--   can refuse by itself (already invoiced; or put on an invoice while not
--   approved), selected by trigger WHEN clauses, which cost no PL/pgSQL call;
--   "same engagement / same client" is one set-based query per statement.
-- - Rule 1.2's engagement link and updated_at (invoices, time entries): the
--   same functions behind WHEN clauses, so the rows they would leave alone
--   no longer call PL/pgSQL.
-- - Indexes every invoice paid for and no query needs (end of file).

-- ---------------------------------------------------------------------------
-- Checks queued for COMMIT. A row is written only when a statement leaves an
-- invoice or line inconsistent for now; its deferred constraint trigger
-- re-checks at COMMIT (or at the end of the statement under SET CONSTRAINTS
-- ... IMMEDIATE) and deletes the row, so the table is empty between
-- transactions. The check uses the values the row was inserted with (a
-- deferred row trigger reads the inserted tuple version), so updating or
-- deleting the queued row cannot skip a check.
CREATE TABLE billing.deferred_checks (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind    text NOT NULL
        CONSTRAINT deferred_checks_kind_valid
        CHECK (kind IN ('invoice_subtotal', 'line_time_entries')),
    ref_id  bigint NOT NULL
);

-- Rule 1.3 / 1.8 for one line's time_entry_ids (002's
-- invoice_line_items_time_entries_check, for a line id): reads the line as it
-- is now; a line deleted since is fine.
CREATE OR REPLACE FUNCTION billing.assert_line_time_entries(p_line bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ln      billing.invoice_line_items%ROWTYPE;
    te_id   bigint;
    te_firm bigint;
    te_inv  bigint;
BEGIN
    SELECT * INTO ln FROM billing.invoice_line_items l WHERE l.id = p_line;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOREACH te_id IN ARRAY ln.time_entry_ids LOOP
        SELECT t.firm_id, t.invoice_id INTO te_firm, te_inv
          FROM billing.time_entries t WHERE t.id = te_id;
        IF NOT FOUND OR te_firm <> ln.firm_id THEN
            RAISE EXCEPTION 'rule 1.3 (tenant): line % of invoice % lists time entry %, which is not a time entry of firm %; list only the firm''s own time entries',
                  ln.id, ln.invoice_id, te_id, ln.firm_id
                  USING ERRCODE = 'check_violation';
        END IF;
        IF te_inv IS DISTINCT FROM ln.invoice_id THEN
            RAISE EXCEPTION 'rule 1.8 (invoiced once): line % of invoice % lists time entry %, which is marked invoiced on %; set the entry''s invoice_id to this invoice in the same transaction (an entry is billed once)',
                  ln.id, ln.invoice_id, te_id, coalesce(te_inv::text, 'no invoice')
                  USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION billing.deferred_checks_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM billing.deferred_checks d WHERE d.id = NEW.id;
    IF NEW.kind = 'invoice_subtotal' THEN
        PERFORM billing.assert_invoice_subtotal(NEW.ref_id);
    ELSE
        PERFORM billing.assert_line_time_entries(NEW.ref_id);
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER deferred_checks_run_at_commit
    AFTER INSERT ON billing.deferred_checks
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing.deferred_checks_run();

-- ---------------------------------------------------------------------------
-- The statement triggers below join their transition table (the rows of one
-- statement) to the big tables by key. Their plans are cached for the whole
-- session (PL/pgSQL), possibly from a first statement when those tables were
-- small; so that such a plan can never scan a whole table for every
-- statement as the table grows, each function plans with sequential scans,
-- hash and merge joins disabled: the transition table drives, every lookup
-- is an index probe.

-- ---------------------------------------------------------------------------
-- Rule 1.4 per statement.
--
-- Inserted lines: each invoice they belong to is compared with the sum of
-- all its lines; those that differ are queued for COMMIT.
CREATE OR REPLACE FUNCTION billing.invoice_line_items_rule_1_4_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    INSERT INTO billing.deferred_checks (kind, ref_id)
    SELECT 'invoice_subtotal', i.id
      FROM (SELECT DISTINCT n.invoice_id FROM new_lines n) n
      JOIN billing.invoices i ON i.id = n.invoice_id
     WHERE i.subtotal_cents <> (SELECT coalesce(sum(l.amount_cents), 0)
                                  FROM billing.invoice_line_items l
                                 WHERE l.invoice_id = i.id);
    RETURN NULL;
END $$;

-- Inserted invoices: a new invoice has no lines but those written after it
-- (a line needs its invoice to exist, and an invoice's lines go when it is
-- deleted), and every line written after it is checked by the line triggers
-- (the statement trigger above on INSERT, 002's deferred row trigger on
-- UPDATE). So only a new invoice with a subtotal and no line at all is left
-- to check here; it is queued for COMMIT, when its lines must be there.
CREATE OR REPLACE FUNCTION billing.invoices_rule_1_4_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    INSERT INTO billing.deferred_checks (kind, ref_id)
    SELECT 'invoice_subtotal', n.id
      FROM new_invoices n
     WHERE n.subtotal_cents <> 0
       AND NOT EXISTS (SELECT 1 FROM billing.invoice_line_items l WHERE l.invoice_id = n.id);
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- Rule 1.5 for inserted lines, per statement (the message of 002's row
-- trigger, for the first offending line).
CREATE OR REPLACE FUNCTION billing.invoice_line_items_rule_1_5_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.line_type, n.invoice_id, i.engagement_id, e.pricing_mode INTO bad
      FROM new_lines n
      JOIN billing.invoices i ON i.id = n.invoice_id
      LEFT JOIN billing.engagements e ON e.id = i.engagement_id
     WHERE n.line_type IN ('package_fee', 'hourly')
       AND NOT billing.rule_1_5_line_allowed(e.pricing_mode, n.line_type)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'rule 1.5 (pricing mode): a % line cannot go on invoice % whose engagement % is priced %; use package_fee lines for package, hourly lines for hourly, either for mixed, adjustment for anything else',
              bad.line_type, bad.invoice_id, bad.engagement_id, bad.pricing_mode
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- Rule 1.8 for inserted lines that list time entries: lines whose entries
-- are not (yet) marked invoiced on the line's invoice are queued for COMMIT.
CREATE OR REPLACE FUNCTION billing.invoice_line_items_rule_1_8_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    INSERT INTO billing.deferred_checks (kind, ref_id)
    SELECT 'line_time_entries', n.id
      FROM new_lines n
     WHERE cardinality(n.time_entry_ids) > 0
       AND (SELECT count(*) FROM billing.time_entries t
             WHERE t.id = ANY (n.time_entry_ids)
               AND t.firm_id = n.firm_id AND t.invoice_id = n.invoice_id)
           <> cardinality(n.time_entry_ids);
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- Rule 1.8 for time entries on an invoice, per statement: every entry a
-- statement writes with an invoice (inserted with one, put on one, or any
-- other update of an invoiced entry) is of the invoice's engagement, or for
-- an overridden invoice of its client (002's messages). 002 checked this
-- only when the entry was put on the invoice; an invoiced entry's engagement
-- and invoice cannot change afterwards (002's row function, behind WHEN
-- below), so re-checking the others only ever refuses what 002 refused.
CREATE OR REPLACE FUNCTION billing.time_entries_rule_1_8_check_statement() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.engagement_id, n.invoice_id, i.engagement_id AS inv_eng,
           i.client_id AS inv_client, e.client_id AS te_client,
           (NOT i.engagement_override AND i.engagement_id IS DISTINCT FROM n.engagement_id)
               AS wrong_engagement
      INTO bad
      FROM new_entries n
      JOIN billing.invoices i ON i.id = n.invoice_id
      LEFT JOIN billing.engagements e ON e.id = n.engagement_id
     WHERE n.invoice_id IS NOT NULL
       AND ((NOT i.engagement_override AND i.engagement_id IS DISTINCT FROM n.engagement_id)
            OR e.client_id IS DISTINCT FROM i.client_id)
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF bad.wrong_engagement THEN
        RAISE EXCEPTION 'rule 1.8 (same engagement): time entry % of engagement % cannot be billed on invoice % of engagement %; bill it on an invoice of its own engagement',
              bad.id, bad.engagement_id, bad.invoice_id, bad.inv_eng
              USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'rule 1.8 (same engagement): time entry % belongs to client % and cannot be billed on invoice % of client %',
          bad.id, bad.te_client, bad.invoice_id, bad.inv_client
          USING ERRCODE = 'check_violation';
END $$;

-- ---------------------------------------------------------------------------
-- The triggers. 002's per-row versions of the INSERT paths go; their UPDATE
-- and DELETE paths are recreated unchanged.

-- invoices
DROP TRIGGER invoices_rule_1_4_subtotal_matches ON billing.invoices;
CREATE CONSTRAINT TRIGGER invoices_rule_1_4_subtotal_matches
    AFTER UPDATE OF subtotal_cents ON billing.invoices
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing.invoices_rule_1_4_check();
CREATE TRIGGER invoices_rule_1_4_subtotal_matches_inserted
    AFTER INSERT ON billing.invoices
    REFERENCING NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoices_rule_1_4_check_inserted();

DROP TRIGGER invoices_rule_1_2_link_engagement ON billing.invoices;
CREATE TRIGGER invoices_rule_1_2_link_engagement BEFORE INSERT ON billing.invoices
    FOR EACH ROW
    WHEN (NEW.engagement_id IS NULL AND NOT coalesce(NEW.engagement_override, false))
    EXECUTE FUNCTION billing.invoices_rule_1_2_link_engagement();

DROP TRIGGER invoices_touch_updated_at ON billing.invoices;
CREATE TRIGGER invoices_touch_updated_at BEFORE UPDATE ON billing.invoices
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION billing.touch_updated_at();

-- invoice_line_items
DROP TRIGGER invoice_line_items_rule_1_4_subtotal_matches ON billing.invoice_line_items;
CREATE CONSTRAINT TRIGGER invoice_line_items_rule_1_4_subtotal_matches
    AFTER UPDATE OR DELETE ON billing.invoice_line_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing.invoice_line_items_rule_1_4_check();
CREATE TRIGGER invoice_line_items_rule_1_4_subtotal_matches_inserted
    AFTER INSERT ON billing.invoice_line_items
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoice_line_items_rule_1_4_check_inserted();

DROP TRIGGER invoice_line_items_rule_1_5_line_type ON billing.invoice_line_items;
CREATE TRIGGER invoice_line_items_rule_1_5_line_type
    BEFORE UPDATE OF line_type, invoice_id ON billing.invoice_line_items
    FOR EACH ROW EXECUTE FUNCTION billing.invoice_line_items_rule_1_5_check();
CREATE TRIGGER invoice_line_items_rule_1_5_line_type_inserted
    AFTER INSERT ON billing.invoice_line_items
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoice_line_items_rule_1_5_check_inserted();

DROP TRIGGER invoice_line_items_rule_1_8_time_entries_invoiced ON billing.invoice_line_items;
CREATE CONSTRAINT TRIGGER invoice_line_items_rule_1_8_time_entries_invoiced
    AFTER UPDATE OF time_entry_ids, invoice_id, firm_id ON billing.invoice_line_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (cardinality(NEW.time_entry_ids) > 0)
    EXECUTE FUNCTION billing.invoice_line_items_time_entries_check();
CREATE TRIGGER invoice_line_items_rule_1_8_time_entries_inserted
    AFTER INSERT ON billing.invoice_line_items
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoice_line_items_rule_1_8_check_inserted();

-- time_entries: 002's function refuses by itself exactly the rows matched by
-- these WHEN clauses (invoiced already; or put on an invoice unapproved).
DROP TRIGGER time_entries_rule_1_8_approval_and_invoicing ON billing.time_entries;
CREATE TRIGGER time_entries_rule_1_8_approval_and_invoicing
    BEFORE INSERT ON billing.time_entries
    FOR EACH ROW WHEN (NEW.invoice_id IS NOT NULL AND NOT NEW.approved)
    EXECUTE FUNCTION billing.time_entries_rule_1_8_check();
CREATE TRIGGER time_entries_rule_1_8_invoiced_update
    BEFORE UPDATE ON billing.time_entries
    FOR EACH ROW WHEN (OLD.invoice_id IS NOT NULL
                       OR (NEW.invoice_id IS NOT NULL AND NOT NEW.approved))
    EXECUTE FUNCTION billing.time_entries_rule_1_8_check();
CREATE TRIGGER time_entries_rule_1_8_invoiced_delete
    BEFORE DELETE ON billing.time_entries
    FOR EACH ROW WHEN (OLD.invoice_id IS NOT NULL)
    EXECUTE FUNCTION billing.time_entries_rule_1_8_check();
CREATE TRIGGER time_entries_rule_1_8_same_engagement_inserted
    AFTER INSERT ON billing.time_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing.time_entries_rule_1_8_check_statement();
CREATE TRIGGER time_entries_rule_1_8_same_engagement_updated
    AFTER UPDATE ON billing.time_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing.time_entries_rule_1_8_check_statement();

DROP TRIGGER time_entries_touch_updated_at ON billing.time_entries;
CREATE TRIGGER time_entries_touch_updated_at BEFORE UPDATE ON billing.time_entries
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION billing.touch_updated_at();

-- ---------------------------------------------------------------------------
-- Indexes every new invoice paid an entry in, which nothing needs.
-- invoices (client_id): the foreign keys and readers of invoices reach them by
-- (firm_id, client_id), which invoices_firm_client_id_unique
-- (firm_id, client_id, id) serves; lookups by id use the primary key.
DROP INDEX billing.invoices_client_id_idx;
-- 004_payments.sql's partial indexes serve the retry and overdue selections
-- (invoices_retry_due, invoices_unpaid_due_date: the exact predicates of
-- common/payments.c), which these two (status, ...) indexes of 001 served
-- before; every invoice paid two more index entries for them.
DROP INDEX billing.invoices_status_next_retry_idx;
DROP INDEX billing.invoices_status_due_date_idx;
