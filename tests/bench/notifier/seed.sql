-- seed.sql: the notifier benchmark's engagements (tests/bench/notifier/run.sh),
-- set-based, into an empty migrated database: :n current mixed engagements
-- that scheduled invoicing (billing-invoicing-worker, business date
-- 2026-11-24) turns into :n issued invoices of 4 lines each (the monthly
-- package fee and three hourly lines at three rates, from three approved
-- October time entries), with legal numbers and invoice.issued outbox rows.
--
--   20 firms, each with its letterhead (firm_settings: prefix, legal name,
--   address, tax id, payment instructions);
--   :n / 10 clients (10 engagements each), every one with an e-mail
--   address; names mostly Latin with accents, every 13th CJK (jpy), every
--   17th Arabic (right-to-left); every 5th client in eur, tax 0-20%.
-- psql -v n=10000 -f seed.sql
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO billing.firms (id, name, slug)
SELECT f, 'Bench firm ' || f, 'nbench-' || f FROM generate_series(1, 20) f;
INSERT INTO billing.firm_settings (firm_id, number_prefix, legal_name, address, tax_id,
                                   payment_instructions)
SELECT f, 'NB' || f, 'Bench Firm ' || f || ' Sàrl',
       f || ' Rue du Marché' || E'\n' || '1204 Genève, Switzerland',
       'CHE-100.200.' || lpad(f::text, 3, '0'),
       'Bank transfer to IBAN CH93 0076 2011 6238 5295 ' || lpad(f::text, 2, '0')
       || E'\nReference: the invoice number'
FROM generate_series(1, 20) f;
INSERT INTO billing.clients (id, firm_id, company_name, primary_contact_email, currency,
                             tax_rate_bp)
SELECT c, (c - 1) % 20 + 1,
       CASE WHEN c % 13 = 0 THEN '株式会社ベンチ ' || c
            WHEN c % 17 = 0 THEN 'شركة الاختبار ' || c
            WHEN c % 3 = 0 THEN 'Müller & Søn Ærø Ltd ' || c
            ELSE 'Client ' || c || ' Associates' END,
       'billing+' || c || '@client' || c || '.example.com',
       CASE WHEN c % 13 = 0 THEN 'jpy' WHEN c % 5 = 0 THEN 'eur' ELSE 'usd' END,
       (c % 5) * 500
FROM generate_series(1, greatest(:n / 10, 1)) c;
INSERT INTO billing.engagements (id, firm_id, client_id, title, pricing_mode,
    package_fee_cents, package_fee_schedule, hourly_rate_cents, start_date)
SELECT i, (x.c - 1) % 20 + 1, x.c, 'Engagement ' || i, 'mixed',
       100000 + (i % 100) * 100, 'monthly', 15000, date '2026-01-01'
FROM generate_series(1, :n) i, LATERAL (SELECT (i - 1) % greatest(:n / 10, 1) + 1 AS c) x;
INSERT INTO billing.time_entries (firm_id, engagement_id, staff, work_date, hours,
    hourly_rate_cents, description, approved, approved_by, approved_at)
SELECT e.firm_id, e.id, 'staff' || k, date '2026-10-01' + k * 7, 1.5 + k,
       CASE k WHEN 1 THEN NULL WHEN 2 THEN 22000 ELSE 9000 END, 'Work item ' || k,
       true, 'bench', now()
FROM billing.engagements e, generate_series(1, 3) k;
SELECT setval(pg_get_serial_sequence('billing.firms', 'id'), 20);
SELECT setval(pg_get_serial_sequence('billing.clients', 'id'), greatest(:n / 10, 1));
SELECT setval(pg_get_serial_sequence('billing.engagements', 'id'), greatest(:n, 1));
COMMIT;
VACUUM ANALYZE;
