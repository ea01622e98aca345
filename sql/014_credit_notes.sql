-- 014_credit_notes.sql: billing.create_credit_note, the one way a credit
-- note is written (docs/INVOICES.md; rule 12.4 of sql/012 checks it).
--
-- A note of p_total cents (tax included; --amount-cents), or of the lines
-- p_lines ({"<line id>": <cents before tax>, ...}; --line), on an issued
-- invoice: its lines follow the invoice's lines in proportion (largest
-- remainder, so they add up exactly), its tax the invoice's tax in
-- proportion (rounded to the currency's granularity, rule 11.13). It first
-- reduces the balance due (invoices.credited_cents; an invoice whose
-- balance due becomes 0 is paid); the rest is refunded (p_mode 'refund':
-- the caller refunds it through Stripe) or becomes client credit (p_mode
-- 'credit': the caller writes the ledger entry, source credit_note).
-- Numbered in the firm's credit-note series for p_day's year. Audit
-- credit_note_issued, event invoice.credited:<invoice>:<note>.
-- Re-running the same command (same invoice, total, reason and author within
-- a day: a timeout, a crash before the refund) returns the note it made
-- (already = true) instead of a second one, so the caller's refund is sent
-- again with the same idempotency keys and Stripe refunds once.
CREATE FUNCTION billing.create_credit_note(p_invoice_id bigint, p_total bigint, p_lines jsonb,
                                           p_mode text, p_reason text, p_by text, p_day date,
                                           OUT credit_note_id bigint, OUT legal_number text,
                                           OUT applied_to_due_cents bigint,
                                           OUT refunded_cents bigint, OUT credited_cents bigint,
                                           OUT firm_id bigint, OUT client_id bigint,
                                           OUT already boolean)
LANGUAGE plpgsql AS $$
DECLARE
    inv billing.invoices%ROWTYPE;
    sub bigint;
    tax bigint;
    total bigint;
    due bigint;
    rest bigint;
    n bigint;
    k text;
    v jsonb;
    left_on_line bigint;
BEGIN
    SELECT * INTO inv FROM billing.invoices WHERE id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cannot credit invoice %: it does not exist', p_invoice_id
              USING ERRCODE = 'no_data_found';
    END IF;
    IF inv.status IN ('draft', 'void') OR inv.issued_at IS NULL THEN
        RAISE EXCEPTION 'cannot credit invoice %: it is % (rule 12.4: a credit note corrects an issued invoice; adjust a draft, void an unpaid invoice)',
              p_invoice_id, inv.status USING ERRCODE = 'check_violation';
    END IF;
    IF p_mode NOT IN ('refund', 'credit') THEN
        RAISE EXCEPTION 'cannot credit invoice %: mode must be refund or credit', p_invoice_id
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS cn_lines (line_id bigint, description text, amount bigint)
        ON COMMIT DROP;
    DELETE FROM cn_lines;
    IF p_lines IS NOT NULL THEN
        FOR k, v IN SELECT * FROM jsonb_each(p_lines) LOOP
            SELECT l.amount_cents - coalesce((SELECT sum(c.amount_cents)
                                                FROM billing.credit_note_lines c
                                               WHERE c.invoice_line_item_id = l.id), 0)
              INTO left_on_line
              FROM billing.invoice_line_items l
             WHERE l.id = k::bigint AND l.invoice_id = p_invoice_id;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'cannot credit line % of invoice %: the invoice has no such line',
                      k, p_invoice_id USING ERRCODE = 'no_data_found';
            END IF;
            IF (v #>> '{}')::bigint <= 0 OR (v #>> '{}')::bigint > left_on_line THEN
                RAISE EXCEPTION 'cannot credit % cents of line % of invoice %: rule 12.4 allows 1 to % (what is left of the line)',
                      v #>> '{}', k, p_invoice_id, left_on_line USING ERRCODE = 'check_violation';
            END IF;
            INSERT INTO cn_lines
            SELECT l.id, 'Credit: ' || l.description, (v #>> '{}')::bigint
              FROM billing.invoice_line_items l WHERE l.id = k::bigint;
        END LOOP;
        SELECT sum(amount) INTO sub FROM cn_lines;
        tax := CASE WHEN inv.subtotal_cents = 0 THEN 0
                    ELSE billing.round_to_granularity(sub, inv.currency, inv.tax_cents,
                                                      inv.subtotal_cents) END;
        total := sub + tax;
    ELSE
        total := p_total;
        IF total IS NULL OR total <= 0 THEN
            RAISE EXCEPTION 'cannot credit invoice %: the amount must be positive', p_invoice_id
                  USING ERRCODE = 'invalid_parameter_value';
        END IF;
        tax := CASE WHEN inv.total_cents = 0 THEN 0
                    ELSE billing.round_to_granularity(total, inv.currency, inv.tax_cents,
                                                      inv.total_cents) END;
        sub := total - tax;
        -- The subtotal spread over the invoice's lines in proportion
        -- (largest remainder).
        INSERT INTO cn_lines
        WITH l AS (SELECT li.id, li.description, li.amount_cents,
                          (sub * li.amount_cents) / nullif(inv.subtotal_cents, 0) AS base,
                          (sub * li.amount_cents) % nullif(inv.subtotal_cents, 0) AS rem
                     FROM billing.invoice_line_items li WHERE li.invoice_id = p_invoice_id),
             r AS (SELECT l.*, row_number() OVER (ORDER BY l.rem DESC, l.id) AS rk,
                          sub - sum(l.base) OVER () AS short FROM l)
        SELECT r.id, 'Credit: ' || r.description, r.base + CASE WHEN r.rk <= r.short THEN 1 ELSE 0 END
          FROM r WHERE r.base + CASE WHEN r.rk <= r.short THEN 1 ELSE 0 END > 0;
    END IF;
    firm_id := inv.firm_id;
    client_id := inv.client_id;
    SELECT n.id, n.legal_number, n.applied_to_due_cents, n.refunded_cents, n.credited_cents
      INTO credit_note_id, legal_number, applied_to_due_cents, refunded_cents, credited_cents
      FROM billing.credit_notes n
     WHERE n.invoice_id = p_invoice_id AND n.total_cents = total AND n.reason = p_reason
       AND n.created_by = p_by AND n.created_at > now() - interval '1 day'
     ORDER BY n.id DESC LIMIT 1;
    IF FOUND THEN
        already := true;
        RETURN;
    END IF;
    already := false;
    due := billing.balance_due(inv.total_cents, inv.amount_paid_cents, inv.credited_cents);
    applied_to_due_cents := least(total, due);
    rest := total - applied_to_due_cents;
    refunded_cents := CASE WHEN p_mode = 'refund' THEN rest ELSE 0 END;
    credited_cents := CASE WHEN p_mode = 'credit' THEN rest ELSE 0 END;
    IF refunded_cents > inv.amount_paid_cents - inv.refunded_cents THEN
        RAISE EXCEPTION 'cannot refund % cents of invoice %: only % cents were paid and not refunded (rule 12.4); credit the client instead (--credit)',
              refunded_cents, p_invoice_id, greatest(inv.amount_paid_cents - inv.refunded_cents, 0)
              USING ERRCODE = 'check_violation';
    END IF;
    n := billing.take_legal_numbers(inv.firm_id, 'credit_note', extract(year FROM p_day)::int, 1);
    legal_number := billing.format_legal_number(billing.legal_prefix(inv.firm_id), 'credit_note',
                                                extract(year FROM p_day)::int, n);
    INSERT INTO billing.credit_notes (firm_id, client_id, invoice_id, legal_number, reason,
           subtotal_cents, tax_cents, total_cents, applied_to_due_cents, refunded_cents,
           credited_cents, created_by)
    VALUES (inv.firm_id, inv.client_id, inv.id, create_credit_note.legal_number, p_reason, sub,
            tax, total, create_credit_note.applied_to_due_cents, create_credit_note.refunded_cents,
            create_credit_note.credited_cents, p_by)
    RETURNING id INTO credit_note_id;
    INSERT INTO billing.credit_note_lines (credit_note_id, firm_id, invoice_line_item_id,
                                           description, amount_cents)
    SELECT credit_note_id, inv.firm_id, c.line_id, c.description, c.amount FROM cn_lines c
     ORDER BY c.line_id;
    IF applied_to_due_cents > 0 THEN
        UPDATE billing.invoices i SET credited_cents = i.credited_cents + create_credit_note.applied_to_due_cents,
               status = CASE WHEN billing.balance_due(i.total_cents, i.amount_paid_cents,
                                   i.credited_cents + create_credit_note.applied_to_due_cents) = 0
                              AND i.status NOT IN ('disputed', 'void') THEN 'paid' ELSE i.status END,
               paid_date = CASE WHEN billing.balance_due(i.total_cents, i.amount_paid_cents,
                                   i.credited_cents + create_credit_note.applied_to_due_cents) = 0
                                THEN coalesce(i.paid_date, p_day) ELSE i.paid_date END,
               next_payment_retry_at = CASE WHEN billing.balance_due(i.total_cents,
                                   i.amount_paid_cents, i.credited_cents
                                   + create_credit_note.applied_to_due_cents) = 0
                                THEN NULL ELSE i.next_payment_retry_at END
         WHERE i.id = p_invoice_id;
    END IF;
    PERFORM billing.audit(inv.firm_id, 'credit_note_issued', 'INFO', p_by,
                jsonb_build_object('credit_note_id', credit_note_id, 'invoice_id', inv.id,
                                   'legal_number', create_credit_note.legal_number,
                                   'reason', p_reason, 'subtotal_cents', sub, 'tax_cents', tax,
                                   'total_cents', total,
                                   'applied_to_due_cents', create_credit_note.applied_to_due_cents,
                                   'refunded_cents', create_credit_note.refunded_cents,
                                   'credited_cents', create_credit_note.credited_cents));
    PERFORM billing.invoice_event(inv.id, 'invoice.credited', credit_note_id::int,
                jsonb_build_object('credit_note_id', credit_note_id,
                                   'credit_note_legal_number', create_credit_note.legal_number,
                                   'credit_note_total_cents', total));
END $$;
