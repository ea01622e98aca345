-- dispute_with_payment_disputes.sql (disputes.c, dispute_report).
WITH d AS (SELECT * FROM billing.payment_disputes WHERE firm_id = $1),
n AS (SELECT count(*) AS total,
count(*) FILTER (WHERE status <> 'closed') AS open,
count(*) FILTER (WHERE status = 'opened') AS opened,
count(*) FILTER (WHERE status = 'under_review') AS under_review,
count(*) FILTER (WHERE resolution = 'won') AS won,
count(*) FILTER (WHERE resolution = 'lost') AS lost FROM d),
cur AS (SELECT currency, sum(amount_cents) AS disputed,
coalesce(sum(amount_cents) FILTER (WHERE status <> 'closed'), 0) AS open_c,
coalesce(sum(amount_cents) FILTER (WHERE resolution = 'won'), 0) AS won_c,
coalesce(sum(amount_cents) FILTER (WHERE resolution = 'lost'), 0) AS lost_c
FROM d GROUP BY currency)
SELECT jsonb_build_object('firm_id', $1::bigint, 'total', n.total, 'open', n.open,
'opened', n.opened, 'under_review', n.under_review, 'won', n.won, 'lost', n.lost,
'win_rate_percent', CASE WHEN n.won + n.lost > 0 THEN
(n.won * 200 + n.won + n.lost) / (2 * (n.won + n.lost)) END,
'win_rate', CASE WHEN n.won + n.lost > 0 THEN n.won || '/' || (n.won + n.lost) END,
'currencies', coalesce((SELECT jsonb_agg(jsonb_build_object('currency', currency,
'disputed_cents', disputed, 'open_cents', open_c, 'won_cents', won_c,
'lost_cents', lost_c) ORDER BY currency) FROM cur), '[]'::jsonb))::text FROM n
