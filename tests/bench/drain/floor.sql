-- floor.sql: the drain benchmark's floor (tests/bench/drain/run.sh), a
-- pgbench script (-M extended, as libpq's PQexecParams) running, for one
-- event per transaction, the statements billing-autopay-worker runs for a
-- payment_intent.succeeded of our own attempt (common/payment_events.c,
-- stripe_match.c by_key, db.c db_run_once, payments.c
-- payments_apply_success with sql/009 billing.land_money), against the same
-- tables, indexes and triggers, as the worker's database role. One extra
-- statement the worker does not run: taking the next event from
-- bench_floor.events (the worker gets it from Kafka). @DAY@ and @CHARGE@
-- are the event's UTC date and the fixture's latest_charge (run.sh).
SELECT invoice_id AS inv, attempt_key AS akey, pi, amount, evt
  FROM bench_floor.events WHERE k = (SELECT nextval('bench_floor.next')) \gset
SELECT 1 FROM billing.processed_messages
  WHERE consumer = 'llbench-floor.billing-autopay-worker' AND idempotency_key = :evt;
SELECT invoice_id, firm_id, id AS attempt_id, true AS ours FROM billing.payment_attempts
  WHERE idempotency_key = :akey \gset
BEGIN;
INSERT INTO billing.processed_messages(consumer, idempotency_key)
  VALUES ('llbench-floor.billing-autopay-worker', :evt) ON CONFLICT DO NOTHING;
SELECT i.currency, (SELECT a.id FROM billing.payment_attempts a
   WHERE a.invoice_id = i.id AND (a.id = CAST(:attempt_id AS bigint)
    OR a.stripe_payment_intent_id = :pi) ORDER BY a.id = CAST(:attempt_id AS bigint)
   DESC LIMIT 1)
  FROM billing.invoices i WHERE i.id = CAST(:inv AS bigint) FOR UPDATE;
WITH pay AS (INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source,
   stripe_payment_intent_id, currency, stripe_charge_id, received_cents)
   SELECT firm_id, id, 0, 'stripe', CAST(:pi AS text), CAST('usd' AS text),
    CAST('@CHARGE@' AS text), CAST(:amount AS bigint)
   FROM billing.invoices WHERE id = CAST(:inv AS bigint)
   ON CONFLICT (stripe_payment_intent_id) DO NOTHING RETURNING id)
 SELECT pay.id AS payment_id FROM pay \gset
UPDATE billing.payment_attempts SET status = 'succeeded', finished_at = now(),
  failure_code = NULL, failure_message = NULL, stripe_payment_intent_id = :pi
  WHERE id = CAST(:attempt_id AS bigint) AND status <> 'succeeded';
SELECT applied_cents, surplus_cents
  FROM billing.land_money(:inv, :amount, CAST('@DAY@' AS date)) \gset
WITH pay AS (UPDATE billing.payments SET amount_cents = CAST(:applied_cents AS bigint)
   WHERE id = CAST(:payment_id AS bigint))
 UPDATE billing.invoices SET stripe_payment_intent_id = :pi,
  stripe_charge_id = coalesce(CAST('@CHARGE@' AS text), stripe_charge_id)
  WHERE id = CAST(:inv AS bigint);
SELECT billing.audit(firm_id, 'invoice_autopaid', 'INFO', NULL,
   jsonb_build_object('invoice_id', CAST(:inv AS bigint), 'payment_id',
    CAST(:payment_id AS bigint), 'amount_cents', CAST(:applied_cents AS bigint),
    'received_cents', CAST(:amount AS bigint), 'overpayment_cents',
    CAST(:surplus_cents AS bigint))
   || jsonb_build_object('payment_intent', CAST(:pi AS text)))
  FROM billing.invoices WHERE id = CAST(:inv AS bigint);
COMMIT;
