-- pay_ticks_preview.sql (payment_ticks.c, payments_preview): what a tick of
-- kind $5 would do on $1 over every shard, for `billingctl autopay run
-- --dry-run` and `retry run --dry-run`: the ticks' own selections
-- (billing.charge_due, billing.becomes_overdue), each invoice with its action
-- (charge, cancel when the client's autopay is off, overdue for a retry tick)
-- and the attempt number a charge would take.
-- $1 business date, $2 shards (1), $3 shard (0), $4 firm (NULL: all),
-- $5 'autopay' or 'retry'.
SELECT s.action, i.id, i.invoice_number, coalesce(i.engagement_id, 0),
       coalesce(to_char(i.period_start, 'YYYY-MM-DD'), ''),
       coalesce(to_char(i.period_end, 'YYYY-MM-DD'), ''), i.total_cents,
       billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents), i.currency,
       (SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts a
         WHERE a.invoice_id = i.id)
  FROM (SELECT CASE WHEN c.autopay_enabled THEN 'charge' ELSE 'cancel' END, i.id
          FROM billing.invoices i
          JOIN billing.clients c ON c.id = i.client_id
         WHERE billing.charge_due($5::text, i.status, i.autopay_opt_in, i.autopay_status,
                                  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)
           AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id = $4::bigint)
        UNION ALL
        SELECT 'overdue', i.id
          FROM billing.invoices i
         WHERE $5::text = 'retry'
           AND i.status IN ('sent', 'partial', 'failed') AND i.due_date < $1::date
           AND billing.becomes_overdue(i.status, i.due_date, i.next_payment_retry_at,
                                       i.autopay_status, $1::date)
           AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id = $4::bigint)
       ) s(action, id)
  JOIN billing.invoices i ON i.id = s.id
 ORDER BY i.id, s.action
