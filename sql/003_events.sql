-- 003_events.sql: the two writes every state change makes (BILLING_RULES
-- section 9 audit events, and the invoice lifecycle events of section 6 that
-- other services consume), as functions, so that C code, set-based SQL and
-- every worker write them the same way inside their own transaction.

-- billing.audit: one audit event (category billing); returns its id, which a
-- credit ledger entry records. actor NULL = the system.
CREATE OR REPLACE FUNCTION billing.audit(p_firm_id bigint, p_action text, p_severity text,
                                         p_actor text, p_metadata jsonb)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO billing.audit_events (firm_id, category, action, severity, actor, metadata)
    VALUES (p_firm_id, 'billing', p_action, p_severity, p_actor,
            coalesce(p_metadata, '{}'::jsonb))
    RETURNING id
$$;

-- billing.invoice_event: queues one invoice lifecycle event (contract:
-- "An invoice event is JSON ...") in the outbox, built from the invoice row as
-- it is now. p_seq > 0 appends ":<seq>" to the idempotency key for events
-- that can happen more than once to one invoice (invoice.payment_failed:42:2).
-- p_extra is merged into the payload (e.g. {"customer_action_required":true}).
-- Returns the outbox row id.
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
                      'invoice.refunded') THEN
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
            || coalesce(p_extra, '{}'::jsonb))
    RETURNING id INTO out_id;
    RETURN out_id;
END $$;
