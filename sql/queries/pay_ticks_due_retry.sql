-- pay_ticks_due_retry.sql (payment_ticks.c, payments_run_tick): the next
-- page of failed invoices a retry tick charges on its shard
-- (billing.charge_due; the plain predicates are for 004's indexes).
-- $1 business date, $2 shards, $3 shard, $4 firm (NULL: all), $5 after this
-- invoice id, $6 page size.
SELECT i.id
  FROM billing.invoices i
 WHERE i.status = 'failed' AND i.next_payment_retry_at IS NOT NULL
   AND billing.charge_due('retry', i.status, i.autopay_opt_in, i.autopay_status,
                          i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)
   AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id = $4::bigint)
   AND i.id > $5::bigint
 ORDER BY i.id
 LIMIT $6::int
