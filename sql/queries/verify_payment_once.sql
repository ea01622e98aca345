-- verify_payment_once.sql (common/verify.c): check 4, no payment applied
-- twice.
-- $1: the firm to check, NULL for every firm; $2: at most this many rows,
-- NULL for all (the wrapper as in verify_line_items_sum.sql).
-- One payments row per PaymentIntent and one attempt per PaymentIntent
-- (both unique in the schema, checked anyway); an attempt that succeeded has
-- the payments row of its intent on its invoice, and a Stripe payment whose
-- intent we attempted has that attempt succeeded (payments.c marks both in
-- one statement); at most one of our own charges succeeded per invoice (a
-- second is a double charge).
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           SELECT min(p.firm_id), 'payments', min(p.id),
                  format('PaymentIntent %s is applied %s times (payments %s)', p.stripe_payment_intent_id,
                         count(*), string_agg(p.id::text, ',' ORDER BY p.id))
             FROM billing.payments p
            WHERE p.stripe_payment_intent_id IS NOT NULL
              AND ($1::bigint IS NULL OR p.firm_id = $1::bigint)
            GROUP BY p.stripe_payment_intent_id
           HAVING count(*) > 1
           UNION ALL
           SELECT min(a.firm_id), 'payment_attempts', min(a.id),
                  format('PaymentIntent %s belongs to %s attempts (%s)', a.stripe_payment_intent_id,
                         count(*), string_agg(a.id::text, ',' ORDER BY a.id))
             FROM billing.payment_attempts a
            WHERE a.stripe_payment_intent_id IS NOT NULL
              AND ($1::bigint IS NULL OR a.firm_id = $1::bigint)
            GROUP BY a.stripe_payment_intent_id
           HAVING count(*) > 1
           UNION ALL
           SELECT a.firm_id, 'payment_attempts', a.id,
                  format('attempt %s of invoice %s succeeded (PaymentIntent %s) but %s', a.id, a.invoice_id,
                         coalesce(a.stripe_payment_intent_id, 'none'),
                         CASE WHEN p.id IS NULL THEN 'no payment records its money'
                              ELSE format('its payment %s is on invoice %s', p.id, p.invoice_id)
                         END)
             FROM billing.payment_attempts a
             LEFT JOIN billing.payments p ON p.stripe_payment_intent_id = a.stripe_payment_intent_id
            WHERE ($1::bigint IS NULL OR a.firm_id = $1::bigint)
              AND a.status = 'succeeded'
              AND (p.id IS NULL OR p.invoice_id <> a.invoice_id)
           UNION ALL
           SELECT p.firm_id, 'payments', p.id,
                  format('payment %s of invoice %s applied PaymentIntent %s, but its attempt %s is %s',
                         p.id, p.invoice_id, p.stripe_payment_intent_id, a.id, a.status)
             FROM billing.payments p
             JOIN billing.payment_attempts a ON a.stripe_payment_intent_id = p.stripe_payment_intent_id
            WHERE ($1::bigint IS NULL OR p.firm_id = $1::bigint)
              AND p.source = 'stripe'
              AND a.status <> 'succeeded'
           UNION ALL
           SELECT min(a.firm_id), 'invoices', a.invoice_id,
                  format('invoice %s was charged successfully %s times (attempts %s)', a.invoice_id,
                         count(*), string_agg(a.id::text, ',' ORDER BY a.id))
             FROM billing.payment_attempts a
            WHERE a.status = 'succeeded'
              AND ($1::bigint IS NULL OR a.firm_id = $1::bigint)
            GROUP BY a.invoice_id
           HAVING count(*) > 1
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
