-- report_credits.sql (common/reports.c): `report credits` (BILLING_RULES
-- sections 4 and 10; docs/CREDITS.md) as one JSON document: per currency,
-- the credits issued, applied, expired and refunded on one UTC day
-- [D 00:00Z, D+1 00:00Z), the net change, the opening and outstanding
-- balances and whether the firm's ledger agrees with its clients' balances.
-- $1: the firm id; $2: the day.
WITH
lo AS (SELECT ($2::date)::timestamp AT TIME ZONE 'UTC' AS t),
hi AS (SELECT ($2::date + 1)::timestamp AT TIME ZONE 'UTC' AS t),
e AS (SELECT c.currency, l.client_id, l.entry_type, l.use, l.amount_cents,
  CASE l.entry_type WHEN 'credit' THEN l.amount_cents ELSE -l.amount_cents END AS signed,
  l.created_at >= lo.t AS today
  FROM billing.credit_ledger l JOIN billing.clients c ON c.id = l.client_id, lo, hi
  WHERE l.firm_id = $1 AND l.created_at < hi.t),
day AS (SELECT currency,
  count(*) FILTER (WHERE entry_type = 'credit') AS issued_n,
  coalesce(sum(amount_cents) FILTER (WHERE entry_type = 'credit'), 0) AS issued,
  count(*) FILTER (WHERE use IN ('invoice_payment', 'partial_payment')) AS applied_n,
  coalesce(sum(amount_cents) FILTER (WHERE use IN ('invoice_payment', 'partial_payment')),
    0) AS applied,
  count(*) FILTER (WHERE use = 'expired') AS expired_n,
  coalesce(sum(amount_cents) FILTER (WHERE use = 'expired'), 0) AS expired,
  count(*) FILTER (WHERE use = 'refunded') AS refunded_n,
  coalesce(sum(amount_cents) FILTER (WHERE use = 'refunded'), 0) AS refunded,
  coalesce(sum(signed), 0) AS net
  FROM e WHERE today GROUP BY currency),
ledger AS (SELECT currency, coalesce(sum(signed) FILTER (WHERE NOT today), 0) AS opening,
  sum(signed) AS outstanding FROM e GROUP BY currency),
-- From the client side: each of the firm's clients' balance at the end of the day (its
-- ledger entries by client, whichever firm they carry).
cb AS (SELECT c.currency, c.id, coalesce(sum(CASE l.entry_type WHEN 'credit'
  THEN l.amount_cents ELSE -l.amount_cents END), 0) AS balance
  FROM billing.clients c LEFT JOIN billing.credit_ledger l ON l.client_id = c.id
  AND l.created_at < (SELECT t FROM hi) WHERE c.firm_id = $1 GROUP BY c.currency, c.id),
clients AS (SELECT currency, sum(balance) AS balance_sum,
  count(*) FILTER (WHERE balance > 0) AS with_balance,
  count(*) FILTER (WHERE balance < 0) AS negative FROM cb GROUP BY currency),
cur AS (SELECT currency FROM clients UNION SELECT currency FROM ledger),
res AS (SELECT cur.currency, coalesce(d.issued_n, 0) AS issued_n,
  coalesce(d.issued, 0) AS issued, coalesce(d.applied_n, 0) AS applied_n,
  coalesce(d.applied, 0) AS applied, coalesce(d.expired_n, 0) AS expired_n,
  coalesce(d.expired, 0) AS expired, coalesce(d.refunded_n, 0) AS refunded_n,
  coalesce(d.refunded, 0) AS refunded, coalesce(d.net, 0) AS net,
  coalesce(lg.opening, 0) AS opening, coalesce(lg.outstanding, 0) AS outstanding,
  coalesce(cl.balance_sum, 0) AS balance_sum, coalesce(cl.with_balance, 0) AS with_balance,
  coalesce(cl.negative, 0) AS negative
  FROM cur LEFT JOIN day d USING (currency) LEFT JOIN ledger lg USING (currency)
  LEFT JOIN clients cl USING (currency))
SELECT jsonb_build_object('firm_id', $1::bigint, 'date', $2::text,
  'balanced', coalesce(bool_and(outstanding = balance_sum AND opening + net = outstanding
    AND negative = 0), true),
  'currencies', coalesce(jsonb_agg(jsonb_build_object('currency', currency,
  'credits_issued_count', issued_n, 'credits_issued_cents', issued,
  'credits_applied_count', applied_n, 'credits_applied_cents', applied,
  'credits_expired_count', expired_n, 'credits_expired_cents', expired,
  'credits_refunded_count', refunded_n, 'credits_refunded_cents', refunded,
  'net_change_cents', net, 'opening_balance_cents', opening,
  'outstanding_balance_cents', outstanding, 'clients_balance_sum_cents', balance_sum,
  'clients_with_balance', with_balance,
  'balanced', outstanding = balance_sum AND opening + net = outstanding AND negative = 0)
  ORDER BY currency), '[]'::jsonb))::text FROM res
