-- seed.sql: the end-to-end benchmarks' data (tests/bench/e2e/run.sh,
-- tests/bench/drain/run.sh): the autopay benchmark's firm, :n clients,
-- engagements and sent invoices (tests/bench/autopay/seed.sql, with :n and
-- :'day'), and for each invoice our own autopay attempt in status
-- processing with its idempotency key and PaymentIntent id, as the autopay
-- worker leaves it while Stripe confirms. Prints the firm id (last line).
-- The events to post are read back by the caller.
\set ON_ERROR_STOP 1
\ir ../autopay/seed.sql
SELECT max(id) AS id FROM billing.firms WHERE slug LIKE 'autopay-bench-%' \gset bench_
BEGIN;
-- Our own attempt of each, as the autopay worker left it once Stripe
-- answered "processing" (payments.c: key autopay:<invoice>:1, the
-- PaymentIntent id stored, status processing; the invoice's autopay status
-- processing).
INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind, idempotency_key,
                                      amount_cents, stripe_payment_intent_id, status,
                                      payment_method_id, stripe_customer_id, currency)
SELECT firm_id, id, 1, 'autopay', 'autopay:' || id || ':1', total_cents,
       'pi_llbench' || lpad(id::text, 12, '0'), 'processing', 'pm_card_visa',
       'cus_QXg1o8vcGmoR32', 'usd'
FROM billing.invoices WHERE firm_id = :bench_id;
UPDATE billing.invoices SET autopay_status = 'processing', autopay_last_attempt_at = now()
WHERE firm_id = :bench_id;
SELECT :bench_id;
COMMIT;
