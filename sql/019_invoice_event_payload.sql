-- 019_invoice_event_payload.sql: one writer of the invoice lifecycle
-- event's JSON (CONTRACT "An invoice event is JSON"). Until now the payload
-- was built twice: by billing.invoice_event (003, 012) for every transition
-- and, inline, by scheduled invoicing's set-based batch (common/invoicing.c)
-- for invoice.issued, which lacked amount_paid_cents. Both now call
-- billing.invoice_event_payload. It is a one-expression SQL function, so the
-- planner inlines it into the batch's INSERT ... SELECT (no call per row).
-- common/envelope.c parses what it writes (tests/invoicing/test_invoicing_kafka).

CREATE FUNCTION billing.invoice_event_payload(p_type text, p_key text, p_invoice_id bigint,
                                              p_firm_id bigint, p_client_id bigint,
                                              p_status text, p_total_cents bigint,
                                              p_currency text, p_amount_paid_cents bigint,
                                              p_legal_number text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('type', p_type, 'idempotency_key', p_key,
                              'invoice_id', p_invoice_id, 'firm_id', p_firm_id,
                              'client_id', p_client_id, 'status', p_status,
                              'total_cents', p_total_cents, 'currency', p_currency,
                              'amount_paid_cents', p_amount_paid_cents,
                              'occurred_at', to_char(now() AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
           || CASE WHEN p_legal_number IS NOT NULL
                   THEN jsonb_build_object('legal_number', p_legal_number)
                   ELSE '{}'::jsonb END
$$;

CREATE OR REPLACE FUNCTION billing.invoice_event(p_invoice_id bigint, p_type text,
                                                 p_seq integer DEFAULT 0,
                                                 p_extra jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
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
    INSERT INTO billing.outbox (firm_id, topic, msg_key, payload)
    VALUES (inv.firm_id, 'invoices', inv.id::text,
            billing.invoice_event_payload(
                p_type, p_type || ':' || inv.id || CASE WHEN p_seq > 0 THEN ':' || p_seq ELSE '' END,
                inv.id, inv.firm_id, inv.client_id, inv.status, inv.total_cents, inv.currency,
                inv.amount_paid_cents, inv.legal_number)
            || coalesce(p_extra, '{}'::jsonb))
    RETURNING id INTO out_id;
    RETURN out_id;
END $$;

-- The runtime roles call the new function (010).
SELECT billing.grant_runtime_roles();
