-- verify_total.sql (common/verify.c): check 2, total = subtotal + tax and
-- every amount in range (rule 1.4).
-- $1: the firm to check, NULL for every firm; $2: at most this many rows,
-- NULL for all (the wrapper as in verify_line_items_sum.sql).
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           SELECT i.firm_id, 'invoices', i.id,
                  format('invoice %s (%s): total_cents %s <> subtotal_cents %s + tax_cents %s',
                         i.id, i.invoice_number, i.total_cents, i.subtotal_cents, i.tax_cents)
             FROM billing.invoices i
            WHERE ($1::bigint IS NULL OR i.firm_id = $1::bigint)
              AND i.total_cents <> i.subtotal_cents + i.tax_cents
           UNION ALL
           SELECT i.firm_id, 'invoices', i.id,
                  format('invoice %s (%s): amounts out of range: subtotal %s, tax %s, total %s, refunded %s, amount_paid %s, credited %s (want all >= 0 and amount_paid + credited <= total)',
                         i.id, i.invoice_number, i.subtotal_cents, i.tax_cents, i.total_cents,
                         i.refunded_cents, i.amount_paid_cents, i.credited_cents)
             FROM billing.invoices i
            WHERE ($1::bigint IS NULL OR i.firm_id = $1::bigint)
              AND (i.subtotal_cents < 0 OR i.tax_cents < 0 OR i.total_cents < 0
                   OR i.refunded_cents < 0 OR i.amount_paid_cents < 0 OR i.credited_cents < 0
                   OR i.amount_paid_cents + i.credited_cents > i.total_cents)
           UNION ALL
           SELECT l.firm_id, 'invoice_line_items', l.id,
                  format('line %s of invoice %s: negative amount_cents %s, rate_cents %s or quantity %s',
                         l.id, l.invoice_id, l.amount_cents, l.rate_cents, l.quantity)
             FROM billing.invoice_line_items l
            WHERE ($1::bigint IS NULL OR l.firm_id = $1::bigint)
              AND (l.amount_cents < 0 OR l.rate_cents < 0 OR l.quantity < 0)
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
