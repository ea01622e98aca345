-- reconcile_credit_notes.sql (common/reconcile.c): the credit notes with a
-- refund part created in a window, each with every charge (or PaymentIntent
-- without one, as 'pi:<id>') that paid its invoice, so their refunds at
-- Stripe can be summed against the note.
-- $1, $2: the window as Unix seconds (inclusive); $3: a firm id, 0 for all.
SELECT n.id, n.legal_number, n.invoice_id, n.firm_id, n.refunded_cents, i.currency,
       coalesce((SELECT array_agg(DISTINCT x)
                   FROM (SELECT coalesce(p.stripe_charge_id, 'pi:' || p.stripe_payment_intent_id)
                           FROM billing.payments p
                          WHERE p.invoice_id = n.invoice_id AND p.source = 'stripe'
                         UNION
                         SELECT coalesce(i.stripe_charge_id, 'pi:' || i.stripe_payment_intent_id)) t(x)
                  WHERE x IS NOT NULL), '{}')::text
  FROM billing.credit_notes n
  JOIN billing.invoices i ON i.id = n.invoice_id
 WHERE n.refunded_cents > 0
   AND n.created_at >= to_timestamp($1::bigint)
   AND n.created_at < to_timestamp($2::bigint + 1)
   AND ($3::bigint = 0 OR n.firm_id = $3::bigint)
 ORDER BY n.id
