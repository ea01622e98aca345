-- seed.sql: the end-to-end benchmarks' data (tests/bench/e2e/run.sh,
-- tests/bench/drain/run.sh), set-based: one firm, :n clients and package
-- engagements, one sent invoice each of 1,000-2,999 cents (one package_fee
-- line, no tax, as tests/bench/autopay/seed.sql), and for each our own
-- autopay attempt in status processing with its idempotency key and
-- PaymentIntent id, as the autopay worker leaves it while Stripe confirms.
-- Prints the firm id. The events to post are read back by the caller.
\set ON_ERROR_STOP 1
BEGIN;
CREATE TEMP TABLE bench_firm ON COMMIT DROP AS
  WITH f AS (INSERT INTO billing.firms (name, slug)
             VALUES ('E2E bench', 'e2e-bench-' || md5(clock_timestamp()::text))
             RETURNING id)
  SELECT id FROM f;
CREATE TEMP TABLE bench_clients ON COMMIT DROP AS
  WITH c AS (INSERT INTO billing.clients (firm_id, company_name, primary_contact_email,
                                          autopay_enabled, autopay_payment_method_id,
                                          stripe_customer_id)
             SELECT f.id, 'Bench client ' || g, 'client' || g || '@example.com', true,
                    'pm_card_visa', 'cus_QXg1o8vcGmoR32'
             FROM bench_firm f, generate_series(1, :n) g
             RETURNING id, firm_id)
  SELECT id, firm_id, row_number() OVER (ORDER BY id) AS n FROM c;
CREATE TEMP TABLE bench_engagements ON COMMIT DROP AS
  WITH e AS (INSERT INTO billing.engagements (firm_id, client_id, title, pricing_mode,
                                              package_fee_cents, start_date, autopay_cadence)
             SELECT c.firm_id, c.id, 'Retainer', 'package', 1000 + (c.n % 2000),
                    :'day'::date, 'on_issue'
             FROM bench_clients c
             RETURNING id, firm_id, client_id, package_fee_cents)
  SELECT * FROM e;
CREATE TEMP TABLE bench_invoices ON COMMIT DROP AS
  WITH i AS (INSERT INTO billing.invoices (firm_id, client_id, engagement_id, invoice_number,
                                           status, currency, subtotal_cents, tax_cents,
                                           total_cents, issue_date, due_date, autopay_opt_in,
                                           autopay_status, autopay_cadence,
                                           autopay_payment_method_id, autopay_next_charge_at)
             SELECT e.firm_id, e.client_id, e.id, 'E2E-' || e.id, 'sent', 'usd',
                    e.package_fee_cents, 0, e.package_fee_cents, :'day'::date,
                    :'day'::date + 30, true, 'scheduled', 'on_issue', 'pm_card_visa',
                    :'day'::date::timestamp AT TIME ZONE 'UTC'
             FROM bench_engagements e
             RETURNING id, firm_id, total_cents)
  SELECT * FROM i;
INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type, description, quantity,
                                        rate_cents, amount_cents)
SELECT id, firm_id, 'package_fee', 'Package Fee - Retainer', 1, total_cents, total_cents
FROM bench_invoices;
-- Our own attempt of each, as the autopay worker left it once Stripe
-- answered "processing" (payments.c: key autopay:<invoice>:1, the
-- PaymentIntent id stored, status processing; the invoice's autopay status
-- processing).
INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind, idempotency_key,
                                      amount_cents, stripe_payment_intent_id, status,
                                      payment_method_id, stripe_customer_id, currency)
SELECT firm_id, id, 1, 'autopay', 'autopay:' || id || ':1', total_cents,
       'pi_llbench' || lpad(id::text, 12, '0'), 'processing', 'pm_card_visa',
       'cus_QXg1o8vcGmoR32', 'usd'
FROM bench_invoices;
UPDATE billing.invoices i SET autopay_status = 'processing', autopay_last_attempt_at = now()
FROM bench_invoices b WHERE i.id = b.id;
SELECT id FROM bench_firm;
COMMIT;
