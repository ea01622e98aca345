-- 008_invoicing_keys.sql: the tenant foreign keys of the rows the invoicing
-- worker writes in bulk, checked per statement instead of per row, and the
-- indexes no query needs on those tables (issue 4: 1M invoices; a profile of
-- the bench floor put ~28% of its time in per-row RI checks and ~27% in
-- index insertion).
--
-- Foreign keys replaced (names, messages, SQLSTATE 23503 and DETAIL kept
-- exactly as PostgreSQL's own: tests and callers match on the name):
--   invoices_rule_1_3_client_same_firm            invoices (firm_id, client_id)
--       -> clients (firm_id, id)
--   invoices_rule_1_2_engagement_same_client_and_firm
--       invoices (firm_id, client_id, engagement_id)
--       -> engagements (firm_id, client_id, id)
--   invoice_line_items_rule_1_3_invoice_same_firm  invoice_line_items (firm_id, invoice_id)
--       -> invoices (firm_id, id)
--   audit_events_rule_1_3_firm                    audit_events (firm_id) -> firms (id)
--   outbox_rule_1_3_firm                          outbox (firm_id) -> firms (id)
-- (MATCH SIMPLE as before: a row with a NULL in the key is not checked.)
--
-- Child side: an AFTER INSERT ... FOR EACH STATEMENT trigger per table reads
-- the statement's rows (transition table), takes each DISTINCT referenced key
-- once, probes the parent by index and locks it FOR KEY SHARE (as RI does,
-- so that no concurrent transaction can delete it or change its key before
-- this one commits), and refuses the statement if a key has no parent. An
-- UPDATE that changes a key column is checked by a row trigger whose WHEN
-- clause selects only the rows whose key changed (no PL/pgSQL call for the
-- others, e.g. the payment path's status updates and the relay's
-- published_at).
--
-- Parent side: the parents (firms, clients, engagements, invoices) are never
-- deleted and never change their keys: no code path and no part of the
-- contract deletes them (invoices are cancelled, clients and engagements
-- change status, firms stay), and invoices and audit rows are financial
-- records. So instead of RI's "refuse if still referenced" check, deleting
-- such a row, changing its key or truncating the table is refused outright.
-- That is simpler and, unlike a "still referenced?" lookup from a trigger,
-- also sound under REPEATABLE READ (a trigger's snapshot there cannot see a
-- child committed after it was taken; RI uses a special crosscheck snapshot
-- that PL/pgSQL cannot). When the row is referenced, the error is RI's own
-- ("... violates foreign key constraint "<name>" on table ..., Key ... is
-- still referenced"); otherwise it names the rule and the constraints.
-- The other foreign keys to these parents (clients -> firms, payments ->
-- invoices, ...) stay real foreign keys.

-- ---------------------------------------------------------------------------
-- Errors, worded as PostgreSQL's RI triggers word them.

-- A child row whose parent is missing.
CREATE OR REPLACE FUNCTION billing.fk_missing_parent(p_table text, p_constraint text,
                                                     p_cols text, p_vals text,
                                                     p_parent text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
          p_table, p_constraint
          USING ERRCODE = 'foreign_key_violation', CONSTRAINT = p_constraint,
                TABLE = p_table, SCHEMA = 'billing',
                DETAIL = format('Key %s=%s is not present in table "%s".', p_cols, p_vals,
                                p_parent);
END $$;

-- A parent row that would be deleted, or change its key, while referenced.
CREATE OR REPLACE FUNCTION billing.fk_still_referenced(p_parent text, p_constraint text,
                                                       p_child text, p_cols text,
                                                       p_vals text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "%"',
          p_parent, p_constraint, p_child
          USING ERRCODE = 'foreign_key_violation', CONSTRAINT = p_constraint,
                TABLE = p_child, SCHEMA = 'billing',
                DETAIL = format('Key %s=%s is still referenced from table "%s".', p_cols,
                                p_vals, p_child);
END $$;

-- A parent row that no row references yet: refused all the same (see top).
CREATE OR REPLACE FUNCTION billing.fk_parent_kept(p_parent text, p_op text, p_id bigint,
                                                  p_constraints text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rule 1.3 (tenant keys): % of % % refused: rows of billing.% are never deleted and never change their keys (foreign keys % are checked per statement and rely on it); change its status instead',
          p_op, p_parent, coalesce(p_id::text, '(all rows)'), p_parent, p_constraints
          USING ERRCODE = 'foreign_key_violation', TABLE = p_parent, SCHEMA = 'billing';
END $$;

-- ---------------------------------------------------------------------------
-- Child side, per statement. Like 007's statement triggers, these plan with
-- sequential scans, hash and merge joins off: their plans are cached for the
-- session, and the transition table must always drive index probes.
--
-- count(*) / count(found) over every distinct key: the aggregate reads every
-- key, so every parent is locked before anything is decided. The keys are
-- probed in key order (ORDER BY), i.e. in the parent index's order: a hashed
-- DISTINCT hands them out in random order, and the probes then touch index
-- and heap pages at random (measured: 23 -> 18 ms per 5,000-invoice batch).

CREATE OR REPLACE FUNCTION billing.invoices_fk_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    n_keys  bigint;
    n_found bigint;
    bad     record;
BEGIN
    -- invoices_rule_1_3_client_same_firm (checked first, as PostgreSQL did:
    -- declared first).
    SELECT count(*), count(p.found) INTO n_keys, n_found
      FROM (SELECT DISTINCT n.firm_id, n.client_id FROM new_invoices n
             WHERE n.firm_id IS NOT NULL AND n.client_id IS NOT NULL ORDER BY 1, 2) k
      LEFT JOIN LATERAL (SELECT true AS found FROM billing.clients p
                          WHERE p.firm_id = k.firm_id AND p.id = k.client_id
                          FOR KEY SHARE) p ON true;
    IF n_found < n_keys THEN
        SELECT n.firm_id, n.client_id INTO bad FROM new_invoices n
         WHERE n.firm_id IS NOT NULL AND n.client_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM billing.clients p
                            WHERE p.firm_id = n.firm_id AND p.id = n.client_id)
         LIMIT 1;
        PERFORM billing.fk_missing_parent('invoices', 'invoices_rule_1_3_client_same_firm',
            '(firm_id, client_id)', format('(%s, %s)', bad.firm_id, bad.client_id), 'clients');
    END IF;
    -- invoices_rule_1_2_engagement_same_client_and_firm
    SELECT count(*), count(p.found) INTO n_keys, n_found
      FROM (SELECT DISTINCT n.firm_id, n.client_id, n.engagement_id FROM new_invoices n
             WHERE n.firm_id IS NOT NULL AND n.client_id IS NOT NULL
               AND n.engagement_id IS NOT NULL ORDER BY 1, 2, 3) k
      LEFT JOIN LATERAL (SELECT true AS found FROM billing.engagements p
                          WHERE p.firm_id = k.firm_id AND p.client_id = k.client_id
                            AND p.id = k.engagement_id
                          FOR KEY SHARE) p ON true;
    IF n_found < n_keys THEN
        SELECT n.firm_id, n.client_id, n.engagement_id INTO bad FROM new_invoices n
         WHERE n.firm_id IS NOT NULL AND n.client_id IS NOT NULL AND n.engagement_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM billing.engagements p
                            WHERE p.firm_id = n.firm_id AND p.client_id = n.client_id
                              AND p.id = n.engagement_id)
         LIMIT 1;
        PERFORM billing.fk_missing_parent('invoices',
            'invoices_rule_1_2_engagement_same_client_and_firm',
            '(firm_id, client_id, engagement_id)',
            format('(%s, %s, %s)', bad.firm_id, bad.client_id, bad.engagement_id),
            'engagements');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing.invoice_line_items_fk_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    n_keys  bigint;
    n_found bigint;
    bad     record;
BEGIN
    SELECT count(*), count(p.found) INTO n_keys, n_found
      FROM (SELECT DISTINCT n.firm_id, n.invoice_id FROM new_lines n
             WHERE n.firm_id IS NOT NULL AND n.invoice_id IS NOT NULL ORDER BY 1, 2) k
      LEFT JOIN LATERAL (SELECT true AS found FROM billing.invoices p
                          WHERE p.firm_id = k.firm_id AND p.id = k.invoice_id
                          FOR KEY SHARE) p ON true;
    IF n_found < n_keys THEN
        SELECT n.firm_id, n.invoice_id INTO bad FROM new_lines n
         WHERE n.firm_id IS NOT NULL AND n.invoice_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM billing.invoices p
                            WHERE p.firm_id = n.firm_id AND p.id = n.invoice_id)
         LIMIT 1;
        PERFORM billing.fk_missing_parent('invoice_line_items',
            'invoice_line_items_rule_1_3_invoice_same_firm', '(firm_id, invoice_id)',
            format('(%s, %s)', bad.firm_id, bad.invoice_id), 'invoices');
    END IF;
    RETURN NULL;
END $$;

-- audit_events and outbox -> firms: the same check, table and constraint
-- named by the trigger's arguments (the query is the same for both, and
-- static: the transition table is named new_rows in both triggers).
CREATE OR REPLACE FUNCTION billing.firm_fk_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    n_keys  bigint;
    n_found bigint;
    bad     bigint;
BEGIN
    SELECT count(*), count(p.found) INTO n_keys, n_found
      FROM (SELECT DISTINCT n.firm_id FROM new_rows n WHERE n.firm_id IS NOT NULL ORDER BY 1) k
      LEFT JOIN LATERAL (SELECT true AS found FROM billing.firms p
                          WHERE p.id = k.firm_id FOR KEY SHARE) p ON true;
    IF n_found < n_keys THEN
        SELECT n.firm_id INTO bad FROM new_rows n
         WHERE n.firm_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM billing.firms p WHERE p.id = n.firm_id)
         LIMIT 1;
        PERFORM billing.fk_missing_parent(TG_TABLE_NAME, TG_ARGV[0], '(firm_id)',
                                          format('(%s)', bad), 'firms');
    END IF;
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- Child side, UPDATE of a key column: one row at a time (rare; the triggers'
-- WHEN clauses call these only for rows whose key changed).

CREATE OR REPLACE FUNCTION billing.invoices_fk_check_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.firm_id, NEW.client_id) IS DISTINCT FROM (OLD.firm_id, OLD.client_id)
       AND NEW.firm_id IS NOT NULL AND NEW.client_id IS NOT NULL THEN
        PERFORM FROM billing.clients p WHERE p.firm_id = NEW.firm_id AND p.id = NEW.client_id
            FOR KEY SHARE;
        IF NOT FOUND THEN
            PERFORM billing.fk_missing_parent('invoices', 'invoices_rule_1_3_client_same_firm',
                '(firm_id, client_id)', format('(%s, %s)', NEW.firm_id, NEW.client_id),
                'clients');
        END IF;
    END IF;
    IF (NEW.firm_id, NEW.client_id, NEW.engagement_id)
           IS DISTINCT FROM (OLD.firm_id, OLD.client_id, OLD.engagement_id)
       AND NEW.firm_id IS NOT NULL AND NEW.client_id IS NOT NULL
       AND NEW.engagement_id IS NOT NULL THEN
        PERFORM FROM billing.engagements p
         WHERE p.firm_id = NEW.firm_id AND p.client_id = NEW.client_id
           AND p.id = NEW.engagement_id
           FOR KEY SHARE;
        IF NOT FOUND THEN
            PERFORM billing.fk_missing_parent('invoices',
                'invoices_rule_1_2_engagement_same_client_and_firm',
                '(firm_id, client_id, engagement_id)',
                format('(%s, %s, %s)', NEW.firm_id, NEW.client_id, NEW.engagement_id),
                'engagements');
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing.invoice_line_items_fk_check_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM billing.invoices p WHERE p.firm_id = NEW.firm_id AND p.id = NEW.invoice_id
        FOR KEY SHARE;
    IF NOT FOUND THEN
        PERFORM billing.fk_missing_parent('invoice_line_items',
            'invoice_line_items_rule_1_3_invoice_same_firm', '(firm_id, invoice_id)',
            format('(%s, %s)', NEW.firm_id, NEW.invoice_id), 'invoices');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing.firm_fk_check_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM billing.firms p WHERE p.id = NEW.firm_id FOR KEY SHARE;
    IF NOT FOUND THEN
        PERFORM billing.fk_missing_parent(TG_TABLE_NAME, TG_ARGV[0], '(firm_id)',
                                          format('(%s)', NEW.firm_id), 'firms');
    END IF;
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- Parent side: DELETE, key UPDATE (row triggers) and TRUNCATE are refused;
-- with RI's message when a row references the parent.

CREATE OR REPLACE FUNCTION billing.firms_referenced_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM billing.fk_parent_kept('firms', 'truncate', NULL,
                                       'audit_events_rule_1_3_firm, outbox_rule_1_3_firm');
    END IF;
    IF EXISTS (SELECT 1 FROM billing.audit_events c WHERE c.firm_id = OLD.id) THEN
        PERFORM billing.fk_still_referenced('firms', 'audit_events_rule_1_3_firm',
            'audit_events', '(id)', format('(%s)', OLD.id));
    END IF;
    IF EXISTS (SELECT 1 FROM billing.outbox c WHERE c.firm_id = OLD.id) THEN
        PERFORM billing.fk_still_referenced('firms', 'outbox_rule_1_3_firm', 'outbox', '(id)',
                                            format('(%s)', OLD.id));
    END IF;
    PERFORM billing.fk_parent_kept('firms', lower(TG_OP), OLD.id,
                                   'audit_events_rule_1_3_firm, outbox_rule_1_3_firm');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing.clients_referenced_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM billing.fk_parent_kept('clients', 'truncate', NULL,
                                       'invoices_rule_1_3_client_same_firm');
    END IF;
    IF EXISTS (SELECT 1 FROM billing.invoices c
                WHERE c.firm_id = OLD.firm_id AND c.client_id = OLD.id) THEN
        PERFORM billing.fk_still_referenced('clients', 'invoices_rule_1_3_client_same_firm',
            'invoices', '(firm_id, id)', format('(%s, %s)', OLD.firm_id, OLD.id));
    END IF;
    PERFORM billing.fk_parent_kept('clients', lower(TG_OP), OLD.id,
                                   'invoices_rule_1_3_client_same_firm');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing.engagements_referenced_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM billing.fk_parent_kept('engagements', 'truncate', NULL,
                                       'invoices_rule_1_2_engagement_same_client_and_firm');
    END IF;
    IF EXISTS (SELECT 1 FROM billing.invoices c
                WHERE c.engagement_id = OLD.id AND c.firm_id = OLD.firm_id
                  AND c.client_id = OLD.client_id) THEN
        PERFORM billing.fk_still_referenced('engagements',
            'invoices_rule_1_2_engagement_same_client_and_firm', 'invoices',
            '(firm_id, client_id, id)', format('(%s, %s, %s)', OLD.firm_id, OLD.client_id, OLD.id));
    END IF;
    PERFORM billing.fk_parent_kept('engagements', lower(TG_OP), OLD.id,
                                   'invoices_rule_1_2_engagement_same_client_and_firm');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing.invoices_referenced_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM billing.fk_parent_kept('invoices', 'truncate', NULL,
                                       'invoice_line_items_rule_1_3_invoice_same_firm');
    END IF;
    IF EXISTS (SELECT 1 FROM billing.invoice_line_items c
                WHERE c.invoice_id = OLD.id AND c.firm_id = OLD.firm_id) THEN
        PERFORM billing.fk_still_referenced('invoices',
            'invoice_line_items_rule_1_3_invoice_same_firm', 'invoice_line_items',
            '(firm_id, id)', format('(%s, %s)', OLD.firm_id, OLD.id));
    END IF;
    PERFORM billing.fk_parent_kept('invoices', lower(TG_OP), OLD.id,
                                   'invoice_line_items_rule_1_3_invoice_same_firm');
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- The switch. The triggers are named <table>_rule_1_3_fk_* (child side) and
-- <table>_rule_1_3_referenced_* (parent side): AFTER triggers of one event
-- fire in name order, so a row that is both (an invoice changing firm) gets
-- the child-side message first, as with RI; and both fire before 007's
-- rule 1.4 / 1.5 / 1.8 statement triggers, as RI's row triggers did.

-- invoices -> clients, engagements
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_rule_1_3_client_same_firm;
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_rule_1_2_engagement_same_client_and_firm;
CREATE TRIGGER invoices_rule_1_3_fk_inserted
    AFTER INSERT ON billing.invoices
    REFERENCING NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoices_fk_check_inserted();
CREATE TRIGGER invoices_rule_1_3_fk_updated
    AFTER UPDATE OF firm_id, client_id, engagement_id ON billing.invoices
    FOR EACH ROW
    WHEN ((NEW.firm_id, NEW.client_id, NEW.engagement_id)
          IS DISTINCT FROM (OLD.firm_id, OLD.client_id, OLD.engagement_id))
    EXECUTE FUNCTION billing.invoices_fk_check_updated();

-- invoice_line_items -> invoices (was ON DELETE CASCADE: invoices are no
-- longer deleted at all)
ALTER TABLE billing.invoice_line_items DROP CONSTRAINT invoice_line_items_rule_1_3_invoice_same_firm;
CREATE TRIGGER invoice_line_items_rule_1_3_fk_inserted
    AFTER INSERT ON billing.invoice_line_items
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoice_line_items_fk_check_inserted();
CREATE TRIGGER invoice_line_items_rule_1_3_fk_updated
    AFTER UPDATE OF firm_id, invoice_id ON billing.invoice_line_items
    FOR EACH ROW
    WHEN ((NEW.firm_id, NEW.invoice_id) IS DISTINCT FROM (OLD.firm_id, OLD.invoice_id))
    EXECUTE FUNCTION billing.invoice_line_items_fk_check_updated();

-- audit_events -> firms (audit rows are never updated: rule 1.7's trigger
-- refuses every UPDATE, so INSERT is the only path)
ALTER TABLE billing.audit_events DROP CONSTRAINT audit_events_rule_1_3_firm;
CREATE TRIGGER audit_events_rule_1_3_fk_inserted
    AFTER INSERT ON billing.audit_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing.firm_fk_check_inserted('audit_events_rule_1_3_firm');

-- outbox -> firms
ALTER TABLE billing.outbox DROP CONSTRAINT outbox_rule_1_3_firm;
CREATE TRIGGER outbox_rule_1_3_fk_inserted
    AFTER INSERT ON billing.outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing.firm_fk_check_inserted('outbox_rule_1_3_firm');
CREATE TRIGGER outbox_rule_1_3_fk_updated
    AFTER UPDATE OF firm_id ON billing.outbox
    FOR EACH ROW WHEN (NEW.firm_id IS NOT NULL AND NEW.firm_id IS DISTINCT FROM OLD.firm_id)
    EXECUTE FUNCTION billing.firm_fk_check_updated('outbox_rule_1_3_firm');

-- The parents.
CREATE TRIGGER firms_rule_1_3_referenced_deleted
    AFTER DELETE ON billing.firms
    FOR EACH ROW EXECUTE FUNCTION billing.firms_referenced_kept();
CREATE TRIGGER firms_rule_1_3_referenced_keys_updated
    AFTER UPDATE OF id ON billing.firms
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id)
    EXECUTE FUNCTION billing.firms_referenced_kept();
CREATE TRIGGER firms_rule_1_3_referenced_truncated
    BEFORE TRUNCATE ON billing.firms
    FOR EACH STATEMENT EXECUTE FUNCTION billing.firms_referenced_kept();

CREATE TRIGGER clients_rule_1_3_referenced_deleted
    AFTER DELETE ON billing.clients
    FOR EACH ROW EXECUTE FUNCTION billing.clients_referenced_kept();
CREATE TRIGGER clients_rule_1_3_referenced_keys_updated
    AFTER UPDATE OF firm_id, id ON billing.clients
    FOR EACH ROW WHEN ((NEW.firm_id, NEW.id) IS DISTINCT FROM (OLD.firm_id, OLD.id))
    EXECUTE FUNCTION billing.clients_referenced_kept();
CREATE TRIGGER clients_rule_1_3_referenced_truncated
    BEFORE TRUNCATE ON billing.clients
    FOR EACH STATEMENT EXECUTE FUNCTION billing.clients_referenced_kept();

CREATE TRIGGER engagements_rule_1_3_referenced_deleted
    AFTER DELETE ON billing.engagements
    FOR EACH ROW EXECUTE FUNCTION billing.engagements_referenced_kept();
CREATE TRIGGER engagements_rule_1_3_referenced_keys_updated
    AFTER UPDATE OF firm_id, client_id, id ON billing.engagements
    FOR EACH ROW
    WHEN ((NEW.firm_id, NEW.client_id, NEW.id) IS DISTINCT FROM (OLD.firm_id, OLD.client_id, OLD.id))
    EXECUTE FUNCTION billing.engagements_referenced_kept();
CREATE TRIGGER engagements_rule_1_3_referenced_truncated
    BEFORE TRUNCATE ON billing.engagements
    FOR EACH STATEMENT EXECUTE FUNCTION billing.engagements_referenced_kept();

CREATE TRIGGER invoices_rule_1_3_referenced_deleted
    AFTER DELETE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.invoices_referenced_kept();
CREATE TRIGGER invoices_rule_1_3_referenced_keys_updated
    AFTER UPDATE OF firm_id, id ON billing.invoices
    FOR EACH ROW WHEN ((NEW.firm_id, NEW.id) IS DISTINCT FROM (OLD.firm_id, OLD.id))
    EXECUTE FUNCTION billing.invoices_referenced_kept();
CREATE TRIGGER invoices_rule_1_3_referenced_truncated
    BEFORE TRUNCATE ON billing.invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoices_referenced_kept();

-- ---------------------------------------------------------------------------
-- Indexes no query needs (grep of every SQL text in common/, workers/,
-- tests/; EXPLAIN of the autopay, retry, overdue, report and verify
-- selections on a seeded database: docs/BENCHMARKS.md).
--
-- Superseded by 004_payments.sql's partial index invoices_autopay_due, whose
-- predicate is exactly the autopay selection's (common/payments.c
-- pay_due_autopay_sql: autopay_opt_in AND autopay_status IN ('scheduled',
-- 'processing')).
DROP INDEX billing.invoices_autopay_due_idx;
-- Exact duplicates of 004's invoices_stripe_payment_intent_id and
-- invoices_stripe_charge_id (same column, same WHERE ... IS NOT NULL).
DROP INDEX billing.invoices_stripe_payment_intent_id_idx;
DROP INDEX billing.invoices_stripe_charge_id_idx;
-- invoices (firm_id, issue_date): its one reader, the revenue report
-- (workers/billingctl/cmd_report.c), selects a firm's invoices with
-- "issue_date BETWEEN ... OR EXISTS (a payment in the range)", which can only
-- use the firm_id prefix; invoices_firm_id_id_unique (firm_id, id) serves
-- that (EXPLAIN: a bitmap scan on it for firm_id = $1). Every invoice paid an
-- entry at a random place (the worker's batches span all firms).
DROP INDEX billing.invoices_firm_issue_date_idx;
-- outbox (firm_id) served only the foreign key's check when a firm was
-- deleted, which is now refused outright; no code path reads the outbox by
-- firm (the relay reads outbox_unpublished_idx; only tests count a firm's
-- rows, on small databases). Every outbox row paid an entry.
DROP INDEX billing.outbox_firm_id_idx;
-- audit_events (created_at): no query reads audit rows by time alone (the
-- readers go by firm and action: audit_events_firm_action_created_idx, or by
-- id); every audit row paid an entry.
DROP INDEX billing.audit_events_created_idx;
