-- 011_currency_granularity.sql: BILLING_RULES 11.13 (three-decimal
-- currencies) in the database. bhd, jod, kwd, omr and tnd have three
-- decimals, and Stripe accepts only multiples of 10 minor units in them:
-- every invoice amount in these currencies (line amounts after proration,
-- hourly line amounts, tax, totals) is rounded half up to a multiple of 10.
--
-- - billing.currency_exponent / billing.currency_granularity: the currency
--   table of common/money.c (MONEY_CURRENCY_MAP in
--   include/ledgerline/money.h), the same rows. They cannot drift:
--   tests/db/test_currency.c compares C and SQL for all 26^3 codes (a
--   currency added to one side only fails it).
-- - billing.round_to_granularity: the one rounding of an invoice amount
--   (amount x num / den, half up, away from zero, to a multiple of the
--   currency's granularity), as common/money.c's money_muldiv_cur. The
--   invoicing SQL (common/invoicing.c) rounds package fees, prorated fees,
--   hourly lines and tax with it.
-- - billing.format_amount: an amount in major units with the currency's
--   decimals, as money_format ("150.000" kwd, "150.00" usd, "15000" jpy),
--   for line descriptions.
-- - The rule itself, for any writer: an invoice (subtotal, tax, total) or a
--   line item (amount) whose amount is not a multiple of its currency's
--   granularity is refused with "rule 11.13 (three-decimal currencies):
--   ...". Inserts are checked per statement (transition tables, as 007 and
--   008 do for the bulk paths of the invoicing worker); updates of those
--   columns per row, only for rows whose amounts (or currency, or invoice)
--   changed (trigger WHEN clauses: no PL/pgSQL call for the others). Rows
--   written before this migration are not re-checked: existing invoices are
--   financial records and stay as they were.
--
-- The functions are plain SQL expressions (LANGUAGE sql, IMMUTABLE, no
-- FROM, not STRICT), so the planner inlines them into the statements that
-- call them: no function call per row on the invoicing path.

-- ---------------------------------------------------------------------------
-- The currency table (keep in step with MONEY_CURRENCY_MAP; a change is a
-- new migration replacing these two functions).

-- Decimal places of the currency's minor unit: 0 for Stripe's zero-decimal
-- currencies, 3 for bhd, jod, kwd, omr, tnd, 2 for every other code.
CREATE FUNCTION billing.currency_exponent(cur text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN cur IN ('bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga',
                 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf') THEN 0
    WHEN cur IN ('bhd', 'jod', 'kwd', 'omr', 'tnd') THEN 3
    ELSE 2
END;

-- The multiple of minor units Stripe accepts in the currency: 10 for bhd,
-- jod, kwd, omr, tnd (rule 11.13), 1 for every other code.
CREATE FUNCTION billing.currency_granularity(cur text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN cur IN ('bhd', 'jod', 'kwd', 'omr', 'tnd') THEN 10
    ELSE 1
END;

-- ---------------------------------------------------------------------------
-- Rounding and formatting.

-- amount x num / den, exact (numeric), rounded half up (halves away from
-- zero) to a multiple of the currency's granularity g, in one step from the
-- exact value, as money_muldiv_cur: with x = |amount| x num / den,
-- g x floor(x / g + 1/2) = g x floor((floor(2x / g) + 1) / 2), both floors
-- exact integer divisions (div), signed as amount. num >= 0 and den > 0
-- (days, basis points, 1: every caller's). A granularity of 1 rounds to the
-- minor unit, as before this migration.
--   package fee:   round_to_granularity(fee, cur)
--   prorated fee:  round_to_granularity(fee, cur, days, days_in_period)
--   hourly line:   round_to_granularity(hours * rate, cur)
--   tax:           round_to_granularity(subtotal, cur, bp, 10000)
-- amount is the only argument written twice: a caller passes a column or a
-- product of columns there, and may pass expressions of any size as num and
-- den (the planner inlines a function only when an argument used more than
-- once is cheap).
CREATE FUNCTION billing.round_to_granularity(amount numeric, cur text, num numeric DEFAULT 1,
                                             den numeric DEFAULT 1) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (sign(amount) * billing.currency_granularity(cur)
        * div(div(2 * abs(amount) * num, billing.currency_granularity(cur) * den) + 1, 2))::bigint;

-- Minor units as a decimal in major units with exactly the currency's
-- decimals (money_format): 150000 kwd -> '150.000', 15000 usd -> '150.00',
-- 15000 jpy -> '15000', -5 usd -> '-0.05'.
CREATE FUNCTION billing.format_amount(amount bigint, cur text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN round(amount::numeric / 10::numeric ^ billing.currency_exponent(cur),
             billing.currency_exponent(cur))::text;

-- ---------------------------------------------------------------------------
-- Rule 11.13: the refusals.

CREATE OR REPLACE FUNCTION billing.rule_11_13_refuse_invoice(p_invoice bigint, p_cur text,
                                                             p_subtotal bigint, p_tax bigint,
                                                             p_total bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rule 11.13 (three-decimal currencies): invoice % in % has subtotal_cents %, tax_cents %, total_cents %; Stripe accepts only multiples of % minor units in %, so every amount must be one (round each line and the tax half up to a multiple of %)',
          coalesce(p_invoice::text, '(new)'), p_cur, p_subtotal, p_tax, p_total,
          billing.currency_granularity(p_cur), p_cur, billing.currency_granularity(p_cur)
          USING ERRCODE = 'check_violation';
END $$;

CREATE OR REPLACE FUNCTION billing.rule_11_13_refuse_line(p_line bigint, p_invoice bigint,
                                                          p_cur text, p_amount bigint)
    RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rule 11.13 (three-decimal currencies): line % of invoice % in % has amount_cents %; Stripe accepts only multiples of % minor units in %, so the amount must be one (round it half up to a multiple of %)',
          coalesce(p_line::text, '(new)'), p_invoice, p_cur, p_amount,
          billing.currency_granularity(p_cur), p_cur, billing.currency_granularity(p_cur)
          USING ERRCODE = 'check_violation';
END $$;

-- Inserted invoices, per statement: the statement's rows (the transition
-- table 007 and 008 already capture) carry their own currency.
CREATE OR REPLACE FUNCTION billing.invoices_rule_11_13_check_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.currency, n.subtotal_cents, n.tax_cents, n.total_cents INTO bad
      FROM new_invoices n
     WHERE n.subtotal_cents % billing.currency_granularity(n.currency) <> 0
        OR n.tax_cents % billing.currency_granularity(n.currency) <> 0
        OR n.total_cents % billing.currency_granularity(n.currency) <> 0
     LIMIT 1;
    IF FOUND THEN
        PERFORM billing.rule_11_13_refuse_invoice(bad.id, bad.currency, bad.subtotal_cents,
                                                  bad.tax_cents, bad.total_cents);
    END IF;
    RETURN NULL;
END $$;

-- An updated invoice (its WHEN clause: amounts or currency changed): its
-- amounts, and when the currency changed, its lines.
CREATE OR REPLACE FUNCTION billing.invoices_rule_11_13_check_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g   integer := billing.currency_granularity(NEW.currency);
    bad record;
BEGIN
    IF NEW.subtotal_cents % g <> 0 OR NEW.tax_cents % g <> 0 OR NEW.total_cents % g <> 0 THEN
        PERFORM billing.rule_11_13_refuse_invoice(NEW.id, NEW.currency, NEW.subtotal_cents,
                                                  NEW.tax_cents, NEW.total_cents);
    END IF;
    IF NEW.currency IS DISTINCT FROM OLD.currency THEN
        SELECT l.id, l.amount_cents INTO bad
          FROM billing.invoice_line_items l
         WHERE l.invoice_id = NEW.id AND l.amount_cents % g <> 0
         ORDER BY l.id LIMIT 1;
        IF FOUND THEN
            PERFORM billing.rule_11_13_refuse_line(bad.id, NEW.id, NEW.currency,
                                                   bad.amount_cents);
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- Inserted lines, per statement: each line is joined to its invoice for the
-- currency. Like 007's statement triggers, planned with sequential scans,
-- hash and merge joins off (the plan is cached for the session; the
-- transition table must always drive index probes).
CREATE OR REPLACE FUNCTION billing.invoice_line_items_rule_11_13_check_inserted() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.invoice_id, i.currency, n.amount_cents INTO bad
      FROM new_lines n
      JOIN billing.invoices i ON i.id = n.invoice_id
     WHERE n.amount_cents % billing.currency_granularity(i.currency) <> 0
     LIMIT 1;
    IF FOUND THEN
        PERFORM billing.rule_11_13_refuse_line(bad.id, bad.invoice_id, bad.currency,
                                               bad.amount_cents);
    END IF;
    RETURN NULL;
END $$;

-- An updated line (its WHEN clause: amount or invoice changed).
CREATE OR REPLACE FUNCTION billing.invoice_line_items_rule_11_13_check_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cur text;
BEGIN
    SELECT i.currency INTO cur FROM billing.invoices i WHERE i.id = NEW.invoice_id;
    IF FOUND AND NEW.amount_cents % billing.currency_granularity(cur) <> 0 THEN
        PERFORM billing.rule_11_13_refuse_line(NEW.id, NEW.invoice_id, cur, NEW.amount_cents);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER invoices_rule_11_13_granularity_inserted
    AFTER INSERT ON billing.invoices
    REFERENCING NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoices_rule_11_13_check_inserted();
CREATE TRIGGER invoices_rule_11_13_granularity_updated
    AFTER UPDATE OF subtotal_cents, tax_cents, total_cents, currency ON billing.invoices
    FOR EACH ROW
    WHEN ((NEW.subtotal_cents, NEW.tax_cents, NEW.total_cents, NEW.currency)
          IS DISTINCT FROM (OLD.subtotal_cents, OLD.tax_cents, OLD.total_cents, OLD.currency))
    EXECUTE FUNCTION billing.invoices_rule_11_13_check_updated();

CREATE TRIGGER invoice_line_items_rule_11_13_granularity_inserted
    AFTER INSERT ON billing.invoice_line_items
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing.invoice_line_items_rule_11_13_check_inserted();
CREATE TRIGGER invoice_line_items_rule_11_13_granularity_updated
    AFTER UPDATE OF amount_cents, invoice_id ON billing.invoice_line_items
    FOR EACH ROW
    WHEN ((NEW.amount_cents, NEW.invoice_id) IS DISTINCT FROM (OLD.amount_cents, OLD.invoice_id))
    EXECUTE FUNCTION billing.invoice_line_items_rule_11_13_check_updated();
