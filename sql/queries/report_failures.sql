-- report_failures.sql (common/reports.c): `report failures` (BILLING_RULES
-- section 10): a firm's failed payment attempts whose failure time falls in
-- [from, to] (UTC days), counted and summed by failure code and currency
-- (code, currency, count, amount), the most frequent first.
-- $1: the firm id; $2, $3: from and to (dates, inclusive).
SELECT coalesce(failure_code, 'unknown'), currency, count(*),
sum(amount_cents)
FROM billing.payment_attempts
WHERE firm_id = $1::bigint AND status = 'failed'
AND failed_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
AND failed_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'
GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
