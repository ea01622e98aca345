-- pay_ticks_due_autopay.sql (payment_ticks.c, payments_run_tick): the next
-- page of invoices an autopay tick charges on its shard. Which invoices are
-- due is billing.charge_due's to say (sql/009, 018); the plain predicates
-- beside it only let 004's partial indexes find the candidates. The run also
-- takes the invoices whose unanswered attempt (no PaymentIntent known) must
-- be looked up at Stripe whatever the invoice's state (11.2, 11.3): autopay
-- off, a day old, or a conflict an operator resumed. An attempt whose intent
-- is known and processing waits for its webhook.
-- $1 business date, $2 shards, $3 shard, $4 firm (NULL: all), $5 after this
-- invoice id, $6 page size.
SELECT id
  FROM (SELECT i.id
          FROM billing.invoices i
         WHERE i.autopay_opt_in AND i.autopay_status IN ('scheduled', 'processing')
           AND billing.charge_due('autopay', i.status, i.autopay_opt_in, i.autopay_status,
                                  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)
           AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id = $4::bigint)
        UNION
        SELECT i.id
          FROM billing.payment_attempts a
          JOIN billing.invoices i ON i.id = a.invoice_id
          JOIN billing.clients c ON c.id = i.client_id
         WHERE a.status IN ('processing', 'transient_error')
           AND i.autopay_status <> 'needs_attention' AND a.stripe_payment_intent_id IS NULL
           AND (a.created_at < greatest(now(), $1::date::timestamp AT TIME ZONE 'UTC')
                               - interval '23 hours'
                OR NOT (i.autopay_opt_in AND c.autopay_enabled)
                OR a.failure_code = 'idempotency_error')
           AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id = $4::bigint)
       ) s
 WHERE id > $5::bigint
 ORDER BY id
 LIMIT $6::int
