-- verify_amount_paid.sql (common/verify.c): check 3, amount_paid against
-- the money records.
-- $1: the firm to check, NULL for every firm; $2: at most this many rows,
-- NULL for all (the wrapper as in verify_line_items_sum.sql).
-- P = sum(payments.amount_cents) (a payments row holds the amount APPLIED:
-- Stripe or credit; overpayments went to credit), R = invoices.refunded_cents
-- (refunded total, >= what the refunds rows still count: rule 11.11; part
-- of it may have come out of credit, rule 11.1), L = the amounts of the
-- invoice's lost disputes, B = sum(payments.back_invoice_cents) (what
-- take-backs took from the invoice and gave back to it: rule 11.1, 11.11).
-- amount_paid grows by a payments row or by a failed refund's money coming
-- back (at most what its take-back took, the rest is credit once the
-- invoice is paid by other money meanwhile), and shrinks, clamped at 0, by
-- a refund increase or a lost dispute, so
--   P - max(R + L, B) <= amount_paid <= P      (equality when R = L = B = 0).
-- Both bounds are checked; the clamp at zero makes the lower one an
-- inequality.
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           WITH p AS (
               SELECT invoice_id, sum(amount_cents) AS s, count(*) AS n, sum(back_invoice_cents) AS back
                 FROM billing.payments
                GROUP BY invoice_id
           ),
           r AS (
               SELECT invoice_id, sum(CASE WHEN status IN ('failed', 'canceled') THEN 0
                                           ELSE amount_cents END) AS s
                 FROM billing.refunds
                GROUP BY invoice_id
           ),
           d AS (
               SELECT invoice_id, sum(amount_cents) AS s
                 FROM billing.payment_disputes
                WHERE status = 'closed'
                  AND resolution = 'lost'
                GROUP BY invoice_id
           ),
           m AS (
               SELECT i.firm_id, i.id, i.invoice_number, i.amount_paid_cents AS paid,
                      i.refunded_cents AS refunded, coalesce(p.s, 0) AS payments, coalesce(p.n, 0) AS npay,
                      coalesce(r.s, 0) AS refund_rows, coalesce(d.s, 0) AS lost, coalesce(p.back, 0) AS back
                 FROM billing.invoices i
                 LEFT JOIN p ON p.invoice_id = i.id
                 LEFT JOIN r ON r.invoice_id = i.id
                 LEFT JOIN d ON d.invoice_id = i.id
                WHERE ($1::bigint IS NULL OR i.firm_id = $1::bigint)
           )
           SELECT firm_id, 'invoices', id,
                  format('invoice %s (%s): amount_paid_cents %s exceeds the %s cents of its %s payment(s)',
                         id, invoice_number, paid, payments, npay)
             FROM m
            WHERE paid > payments
           UNION ALL
           SELECT firm_id, 'invoices', id,
                  format('invoice %s (%s): amount_paid_cents %s is below payments %s - max(refunded %s + lost disputes %s, taken back %s) = %s',
                         id, invoice_number, paid, payments, refunded, lost, back,
                         payments - greatest(refunded + lost, back))
             FROM m
            WHERE paid < payments - greatest(refunded + lost, back)
           UNION ALL
           SELECT firm_id, 'invoices', id,
                  format('invoice %s (%s): refunded_cents %s is below the %s cents of its recorded refunds',
                         id, invoice_number, refunded, refund_rows)
             FROM m
            WHERE refunded < refund_rows
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
