-- 005_credit.sql: what the credit ledger (BILLING_RULES section 4,
-- common/credit.c) needs beyond 001/002: which credit an `expired` debit
-- removes, the oldest-first remainder of every credit, and a trigger that
-- keeps expiry from removing more than a credit's unused remainder.
--
-- Allocation rule ("oldest credit first"): an `expired` debit belongs to the
-- credit it expires (expired_entry_id); every other debit (invoice_payment,
-- partial_payment, refunded, and an `expired` debit that names no credit)
-- is allocated to the client's credits in order
-- (created_at, id), each credit taking at most its amount minus what expiry
-- removed from it. A credit's remainder is what is left of it after that.
-- Because the ledger writer expires a client's lapsed credits before it
-- applies credit (common/credit.c), this total-based allocation equals
-- allocating each debit in turn when it was written, so it is a plain window
-- sum rather than a replay of the ledger.

-- Which credit an `expired` debit removes the remainder of (common/credit.c
-- always sets it). Only on `expired` debits. An `expired` debit written
-- without it (by hand, by another writer) is allocated oldest first like any
-- other debit.
ALTER TABLE billing.credit_ledger
    ADD COLUMN expired_entry_id bigint
        CONSTRAINT credit_ledger_rule_4_expired_entry_exists
        REFERENCES billing.credit_ledger (id),
    ADD CONSTRAINT credit_ledger_rule_4_expired_entry_only_on_expiry
        CHECK (expired_entry_id IS NULL OR (entry_type = 'debit' AND use = 'expired'));
CREATE INDEX credit_ledger_expired_entry_idx ON billing.credit_ledger (expired_entry_id)
    WHERE expired_entry_id IS NOT NULL;
CREATE INDEX credit_ledger_client_type_idx ON billing.credit_ledger (client_id, entry_type);

-- Every credit of a client with its unused remainder (oldest first). What
-- expiry removed from a credit is an index lookup per credit (a join would
-- let the planner rescan an aggregate per credit on stale statistics); the
-- rest is one window sum, so the cost is linear in the client's entries
-- (the expiry trigger below calls it once per expired debit).
CREATE OR REPLACE FUNCTION billing.credit_remainders(p_client_id bigint)
RETURNS TABLE (entry_id bigint, firm_id bigint, client_id bigint, amount_cents bigint,
               created_at timestamptz, expires_at date, expired_cents bigint,
               remaining_cents bigint)
LANGUAGE sql STABLE AS $$
    WITH credits AS (
        SELECT l.id, l.firm_id, l.client_id, l.amount_cents, l.created_at, l.expires_at,
               coalesce((SELECT sum(x.amount_cents) FROM billing.credit_ledger x
                          WHERE x.expired_entry_id = l.id), 0)::bigint AS expired
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
           AND d.expired_entry_id IS NULL)
    SELECT k.id, k.firm_id, k.client_id, k.amount_cents, k.created_at, k.expires_at, k.expired,
           greatest(0, least(k.cap, k.cum - u.total))::bigint
      FROM capacity k, used u
     ORDER BY k.created_at, k.id
$$;

-- An `expired` debit removes at most the unused remainder of a credit of the
-- same client that carries an expiry. Named after 002's balance trigger so
-- that it fires after it (BEFORE triggers fire in name order): the client row
-- is then already locked, and two racing expiries of one credit run one
-- after the other, the second finding nothing left.
CREATE OR REPLACE FUNCTION billing.credit_ledger_rule_4_expiry_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cr billing.credit_ledger%ROWTYPE;
    left_cents bigint;
BEGIN
    SELECT * INTO cr FROM billing.credit_ledger WHERE id = NEW.expired_entry_id;
    IF NOT FOUND OR cr.entry_type <> 'credit' OR cr.client_id <> NEW.client_id
       OR cr.firm_id <> NEW.firm_id THEN
        RAISE EXCEPTION 'rule 4 (credit expiry): expired debit names entry %, which is not a credit of client %; name the expiring credit of the same client',
              NEW.expired_entry_id, NEW.client_id
              USING ERRCODE = 'check_violation';
    END IF;
    IF cr.expires_at IS NULL THEN
        RAISE EXCEPTION 'rule 4 (credit expiry): credit entry % has no expiry date and cannot expire',
              cr.id
              USING ERRCODE = 'check_violation';
    END IF;
    SELECT r.remaining_cents INTO left_cents
      FROM billing.credit_remainders(NEW.client_id) r WHERE r.entry_id = cr.id;
    IF NEW.amount_cents > coalesce(left_cents, 0) THEN
        RAISE EXCEPTION 'rule 4 (credit expiry): expiring % cents of credit entry % exceeds its unused remainder of % cents; expire at most the remainder',
              NEW.amount_cents, cr.id, coalesce(left_cents, 0)
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER credit_ledger_rule_4_expiry_within_remainder
    BEFORE INSERT ON billing.credit_ledger
    FOR EACH ROW WHEN (NEW.expired_entry_id IS NOT NULL AND NEW.entry_type = 'debit'
                       AND NEW.use = 'expired')
    EXECUTE FUNCTION billing.credit_ledger_rule_4_expiry_check();
