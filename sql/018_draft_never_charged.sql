-- 018_draft_never_charged.sql: rule 12.3 for every writer. A draft or void
-- invoice is never charged: no payment attempt is written for one
-- (docs/INVOICES.md). Until now 12.3 was billing.charge_due's alone (the
-- selection of what a run charges); a direct writer, or a code path that
-- forgot the selection, could still record a charge of a draft.
--
-- The invoice row is locked (FOR NO KEY UPDATE, the lock an UPDATE of its
-- status takes) before its status is read, so an attempt and a concurrent
-- void (billing.void_invoice locks the invoice, then refuses when a charge
-- is in flight) take turns: whichever commits second sees the other. The
-- charging path already holds the invoice's row lock at this point
-- (common/payment_prepare.c), so this costs it nothing.

-- The one statement of which statuses are never charged: the trigger below,
-- billing.charge_due and common/payment_record.c ask it.
CREATE FUNCTION billing.never_charged(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status IN ('draft', 'void')
$$;

CREATE OR REPLACE FUNCTION billing.charge_due(p_kind text, p_status text, p_opt_in boolean,
                                              p_autopay_status text,
                                              p_next_charge_at timestamptz,
                                              p_next_retry_at timestamptz, p_day date)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT NOT billing.never_charged(p_status) AND CASE p_kind
        WHEN 'autopay' THEN p_opt_in AND p_autopay_status IN ('scheduled', 'processing')
             AND p_status IN ('sent', 'partial', 'overdue')
             AND p_next_charge_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
        WHEN 'retry' THEN p_opt_in AND p_status = 'failed'
             AND p_autopay_status <> 'needs_attention'
             AND p_next_retry_at IS NOT NULL
             AND p_next_retry_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
        ELSE false END
$$;

CREATE FUNCTION billing.payment_attempts_rule_12_3_not_draft() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    SELECT status INTO st FROM billing.invoices
     WHERE id = NEW.invoice_id AND firm_id = NEW.firm_id FOR NO KEY UPDATE;
    IF billing.never_charged(st) THEN
        RAISE EXCEPTION 'rule 12.3 (drafts and void invoices are never charged): cannot record a payment attempt for invoice %, which is %',
              NEW.invoice_id, st
              USING ERRCODE = 'check_violation',
                    HINT = CASE st WHEN 'draft' THEN 'Issue the invoice first (billingctl invoice issue).'
                                   ELSE 'A void invoice is closed; bill the work on a new invoice.' END;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER payment_attempts_rule_12_3_not_draft
    BEFORE INSERT ON billing.payment_attempts
    FOR EACH ROW EXECUTE FUNCTION billing.payment_attempts_rule_12_3_not_draft();

-- The runtime roles call the new functions (010).
SELECT billing.grant_runtime_roles();
