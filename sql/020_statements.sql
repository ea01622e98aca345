-- 020_statements.sql: client statements (CONTRACT "Documents and delivery":
-- `billingctl statement`, "open invoices, payments and credit in the
-- period, balance"; docs/NOTIFICATIONS.md "Statements"):
-- billing.statement_movements (every dated movement of a client's account),
-- billing.statement_facts (what a statement shows, as one JSON object) and
-- billing.statement_documents (which stored document is a client's
-- statement of a date).
--
-- A statement has two balances per currency:
--   owed   what the client owes on its invoices: + an invoice issued,
--          - a payment received (card or manual), - credit applied to an
--          invoice, - the part of a credit note taken off a balance due,
--          - an issued invoice voided (only unpaid, uncredited ones are);
--   credit the client's credit balance (credit_ledger): + a credit entry,
--          - a debit (applied to an invoice, expired, refunded).
-- Opening = the sum of a balance's movements dated before the period,
-- closing = opening + the period's movements, so the closing owed equals
-- the open invoices' balance due at the statement date. Dates are UTC
-- civil dates: an invoice's issue_date, a payment's received_at, a credit
-- note's and a ledger entry's created_at. The credit ledger has no
-- currency: its entries are in the client's currency.
-- Not movements: refunds of card payments and chargebacks (their money goes
-- back to the client's card, docs/NOTIFICATIONS.md "Statements / limits").
--
-- The rules it enforces for every writer:
--   17.5 a stored statement is never rewritten: statement_documents is
--        append-only (rule 1.7's trigger) and names one document of kind
--        statement of the same firm; one statement per (client, date).

CREATE FUNCTION billing.statement_movements(p_client_id bigint, p_to date)
RETURNS TABLE (currency text, balance text, day date, ord integer, ref_id bigint,
               description text, amount_cents bigint)
LANGUAGE sql STABLE AS $$
    WITH inv AS (
        SELECT i.*, coalesce(i.legal_number, i.invoice_number) AS number,
               coalesce(i.issue_date, (i.created_at AT TIME ZONE 'UTC')::date) AS issued
          FROM billing.invoices i
         WHERE i.client_id = p_client_id AND i.status NOT IN ('draft', 'cancelled')
           AND NOT (i.status = 'void' AND i.legal_number IS NULL)
    ), m AS (
        SELECT i.currency, 'owed' AS balance, i.issued AS day, 1 AS ord, i.id AS ref_id,
               'Invoice ' || i.number AS description, i.total_cents AS amount_cents
          FROM inv i
        UNION ALL
        SELECT i.currency, 'owed', (p.received_at AT TIME ZONE 'UTC')::date,
               CASE p.source WHEN 'credit' THEN 3 ELSE 2 END, p.id,
               CASE p.source WHEN 'credit' THEN 'Credit applied to invoice ' || i.number
                             WHEN 'stripe' THEN 'Card payment received, invoice ' || i.number
                             ELSE 'Payment received, invoice ' || i.number END,
               -p.amount_cents
          FROM billing.payments p JOIN inv i ON i.id = p.invoice_id
         WHERE p.amount_cents > 0
        UNION ALL
        SELECT i.currency, 'owed', (n.created_at AT TIME ZONE 'UTC')::date, 4, n.id,
               'Credit note ' || n.legal_number || ' for invoice ' || i.number
               || CASE WHEN n.applied_to_due_cents = n.total_cents THEN ''
                       ELSE ' (total ' || billing.format_amount(n.total_cents, i.currency)
                            || CASE WHEN n.credited_cents > 0
                                    THEN ', ' || billing.format_amount(n.credited_cents, i.currency)
                                         || ' to your credit' ELSE '' END
                            || CASE WHEN n.refunded_cents > 0
                                    THEN ', ' || billing.format_amount(n.refunded_cents, i.currency)
                                         || ' refunded' ELSE '' END
                            || ')' END,
               -n.applied_to_due_cents
          FROM billing.credit_notes n JOIN inv i ON i.id = n.invoice_id
        UNION ALL
        SELECT i.currency, 'owed', (i.voided_at AT TIME ZONE 'UTC')::date, 5, i.id,
               'Invoice ' || i.number || ' voided', -i.total_cents
          FROM inv i WHERE i.status = 'void'
        UNION ALL
        SELECT c.currency, 'credit', (l.created_at AT TIME ZONE 'UTC')::date, 6, l.id,
               CASE WHEN btrim(l.description) <> '' THEN l.description
                    WHEN l.entry_type = 'credit' THEN 'Credit (' || l.source || ')'
                    ELSE 'Credit used (' || l.use || ')' END,
               CASE l.entry_type WHEN 'credit' THEN l.amount_cents ELSE -l.amount_cents END
          FROM billing.credit_ledger l JOIN billing.clients c ON c.id = l.client_id
         WHERE l.client_id = p_client_id
    )
    SELECT * FROM m WHERE m.day <= p_to ORDER BY currency, day, ord, ref_id
$$;

-- What a statement of client p_client_id for p_from .. p_to (inclusive)
-- shows, as one JSON object (common/statement.c reads it): the firm's
-- letterhead, the client, the period and one section per currency (in code
-- order; the client's currency alone when there is no movement at all) with
-- the opening and closing owed and credit balances, the period's movements
-- (oldest first) and the invoices open at p_to (balance due at p_to above
-- 0: total, paid (payments and credit applied), credited (credit notes),
-- days overdue at p_to). NULL when the client does not exist.
CREATE FUNCTION billing.statement_facts(p_client_id bigint, p_from date, p_to date)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH m AS (SELECT * FROM billing.statement_movements(p_client_id, p_to)),
    cl AS (SELECT c.*, coalesce(nullif(btrim(s.legal_name), ''), f.name) AS firm_name,
                  s.address, s.tax_id, s.payment_instructions
             FROM billing.clients c JOIN billing.firms f ON f.id = c.firm_id
             LEFT JOIN billing.firm_settings s ON s.firm_id = c.firm_id
            WHERE c.id = p_client_id),
    cur AS (SELECT DISTINCT m.currency FROM m
            UNION SELECT cl.currency FROM cl WHERE NOT EXISTS (SELECT 1 FROM m)),
    open_inv AS (
        SELECT i.currency, i.id, coalesce(i.legal_number, i.invoice_number) AS number,
               coalesce(i.issue_date, (i.created_at AT TIME ZONE 'UTC')::date) AS issued,
               i.due_date, i.total_cents,
               (SELECT coalesce(sum(p.amount_cents), 0) FROM billing.payments p
                 WHERE p.invoice_id = i.id AND (p.received_at AT TIME ZONE 'UTC')::date <= p_to)
                   AS paid_cents,
               (SELECT coalesce(sum(n.applied_to_due_cents), 0) FROM billing.credit_notes n
                 WHERE n.invoice_id = i.id AND (n.created_at AT TIME ZONE 'UTC')::date <= p_to)
                   AS credited_cents
          FROM billing.invoices i
         WHERE i.client_id = p_client_id AND i.status NOT IN ('draft', 'cancelled')
           AND NOT (i.status = 'void' AND i.legal_number IS NULL)
    ),
    open_at AS (
        SELECT o.*, o.total_cents - o.paid_cents - o.credited_cents AS balance_cents
          FROM open_inv o JOIN billing.invoices i ON i.id = o.id
         WHERE o.issued <= p_to
           AND NOT (i.status = 'void' AND (i.voided_at AT TIME ZONE 'UTC')::date <= p_to)
    )
    SELECT jsonb_build_object(
               'firm_id', cl.firm_id, 'client_id', cl.id,
               'firm_name', cl.firm_name, 'firm_address', coalesce(cl.address, ''),
               'firm_tax_id', coalesce(cl.tax_id, ''),
               'payment_instructions', coalesce(cl.payment_instructions, ''),
               'client_name', cl.company_name,
               'client_email', coalesce(cl.primary_contact_email, ''),
               'date_from', p_from::text, 'date_to', p_to::text,
               'sections', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'currency', c.currency,
                   'opening_cents', (SELECT coalesce(sum(m.amount_cents), 0) FROM m
                                      WHERE m.currency = c.currency AND m.balance = 'owed'
                                        AND m.day < p_from),
                   'closing_cents', (SELECT coalesce(sum(m.amount_cents), 0) FROM m
                                      WHERE m.currency = c.currency AND m.balance = 'owed'),
                   'credit_opening_cents', (SELECT coalesce(sum(m.amount_cents), 0) FROM m
                                             WHERE m.currency = c.currency
                                               AND m.balance = 'credit' AND m.day < p_from),
                   'credit_closing_cents', (SELECT coalesce(sum(m.amount_cents), 0) FROM m
                                             WHERE m.currency = c.currency
                                               AND m.balance = 'credit'),
                   'movements', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                     'date', m.day::text, 'balance', m.balance,
                                     'description', m.description,
                                     'amount_cents', m.amount_cents)
                                     ORDER BY m.day, m.ord, m.ref_id), '[]'::jsonb)
                                   FROM m WHERE m.currency = c.currency AND m.day >= p_from),
                   'open_invoices', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                         'legal_number', o.number, 'issue_date', o.issued::text,
                                         'due_date', coalesce(o.due_date::text, ''),
                                         'total_cents', o.total_cents,
                                         'paid_cents', o.paid_cents,
                                         'credited_cents', o.credited_cents,
                                         'balance_due_cents', o.balance_cents,
                                         'days_overdue', CASE WHEN o.due_date IS NULL THEN 0
                                                              ELSE greatest(p_to - o.due_date, 0)
                                                         END)
                                         ORDER BY o.issued, o.id), '[]'::jsonb)
                                       FROM open_at o
                                      WHERE o.currency = c.currency AND o.balance_cents > 0))
                   ORDER BY c.currency), '[]'::jsonb) FROM cur c))
      FROM cl
$$;

-- ---- stored statements ------------------------------------------------------------

CREATE TABLE billing.statement_documents (
    document_id    bigint PRIMARY KEY,
    firm_id        bigint NOT NULL,
    client_id      bigint NOT NULL,
    statement_date date NOT NULL,
    period_start   date NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT statement_documents_rule_1_3_client_same_firm
        FOREIGN KEY (firm_id, client_id) REFERENCES billing.clients (firm_id, id),
    CONSTRAINT statement_documents_period_valid CHECK (period_start <= statement_date),
    CONSTRAINT statement_documents_rule_17_5_one_per_client_date
        UNIQUE (client_id, statement_date)
);

-- 17.5: the document named is a statement of the same firm (not an
-- invoice's or a note's). A trigger, not a foreign key: documents are never
-- removed (rule 1.7), and a foreign key would answer a TRUNCATE of
-- invoice_documents before rule 1.7's trigger does.
CREATE FUNCTION billing.statement_documents_rule_17_5_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM billing.invoice_documents d
                    WHERE d.id = NEW.document_id AND d.kind = 'statement'
                      AND d.firm_id = NEW.firm_id) THEN
        RAISE EXCEPTION 'rule 17.5 (statements): document % is not a statement of firm %',
              NEW.document_id, NEW.firm_id
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER statement_documents_rule_17_5_check
    BEFORE INSERT ON billing.statement_documents
    FOR EACH ROW EXECUTE FUNCTION billing.statement_documents_rule_17_5_check();
CREATE TRIGGER statement_documents_rule_1_7_append_only
    BEFORE UPDATE OR DELETE ON billing.statement_documents
    FOR EACH ROW EXECUTE FUNCTION billing.rule_1_7_append_only();
CREATE TRIGGER statement_documents_rule_1_7_no_truncate
    BEFORE TRUNCATE ON billing.statement_documents
    FOR EACH STATEMENT EXECUTE FUNCTION billing.rule_1_7_append_only();

SELECT billing.grant_runtime_roles();
