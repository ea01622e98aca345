-- seed.sql: :n current engagements over 1,000 firms (10 clients each), all
-- starting 2026-01-01, set-based (generate_series):
--   i % 10 in 0..7 -> package, monthly fee
--   i % 10 = 8     -> mixed, monthly fee + 3 approved October time entries
--   i % 10 = 9     -> package, quarterly fee
-- psql -v n=1000000 -f seed.sql (into an empty, migrated database).
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO billing.firms (id, name, slug)
SELECT f, 'Bench firm ' || f, 'bench-' || f FROM generate_series(1, 1000) f;
INSERT INTO billing.clients (id, firm_id, company_name, tax_rate_bp)
SELECT c, (c - 1) / 10 + 1, 'Client ' || c, (c % 4) * 250 FROM generate_series(1, 10000) c;
INSERT INTO billing.engagements (id, firm_id, client_id, title, pricing_mode,
    package_fee_cents, package_fee_schedule, hourly_rate_cents, start_date)
SELECT i, (x.c - 1) / 10 + 1, x.c, 'Engagement ' || i,
       CASE WHEN i % 10 = 8 THEN 'mixed' ELSE 'package' END,
       100000 + (i % 100) * 100,
       CASE WHEN i % 10 = 9 THEN 'quarterly' ELSE 'monthly' END,
       CASE WHEN i % 10 = 8 THEN 15000 END,
       date '2026-01-01'
FROM generate_series(1, :n) i, LATERAL (SELECT (i - 1) % 10000 + 1 AS c) x;
INSERT INTO billing.time_entries (firm_id, engagement_id, staff, work_date, hours,
    approved, approved_by, approved_at)
SELECT e.firm_id, e.id, 'staff' || k, date '2026-10-01' + k * 7, 1.5 + k, true, 'bench', now()
FROM billing.engagements e, generate_series(1, 3) k WHERE e.pricing_mode = 'mixed';
SELECT setval(pg_get_serial_sequence('billing.firms', 'id'), 1000);
SELECT setval(pg_get_serial_sequence('billing.clients', 'id'), 10000);
SELECT setval(pg_get_serial_sequence('billing.engagements', 'id'), greatest(:n, 1));
COMMIT;
VACUUM ANALYZE;
