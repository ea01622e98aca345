-- report_wip.sql (common/reports.c): `report wip`, the work in progress of a
-- firm (time not yet invoiced) from sql/015's billing.report_wip, one row an
-- engagement, hours as text.
-- $1: the firm id; $2: the date.
SELECT engagement_id, client_id, title, currency, approved_hours::text, approved_cents,
       unapproved_hours::text, unapproved_cents, entries
  FROM billing.report_wip($1::bigint, $2::date)
