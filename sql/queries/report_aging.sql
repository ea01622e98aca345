-- report_aging.sql (common/reports.c): `report aging`, a firm's open
-- balances by days past due from sql/015's billing.report_aging, one row a
-- client.
-- $1: the firm id; $2: the date.
SELECT client_id, client_name, currency, current_cents, days_1_30_cents, days_31_60_cents,
       days_61_90_cents, days_90_plus_cents, total_cents, invoices
  FROM billing.report_aging($1::bigint, $2::date)
