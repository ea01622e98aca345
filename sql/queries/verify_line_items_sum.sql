-- verify_line_items_sum.sql (common/verify.c): check 1, an invoice's
-- subtotal is the sum of its line items (rule 1.4).
-- $1: the firm to check, NULL for every firm; $2: at most this many rows,
-- NULL for all. Every verify_*.sql returns (firm_id, table, id, detail,
-- total) in the same wrapper: the total count on each row (so a capped
-- listing still counts everything) and a stable order. (The wrapper and
-- the firm predicate were C macros spliced into each check; each file now
-- spells its check out whole, as it runs.)
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           SELECT i.firm_id, 'invoices', i.id,
                  format('invoice %s (%s): subtotal_cents %s but its %s line item(s) sum to %s',
                         i.id, i.invoice_number, i.subtotal_cents, coalesce(l.n, 0), coalesce(l.s, 0))
             FROM billing.invoices i
             LEFT JOIN (SELECT invoice_id, count(*) AS n, sum(amount_cents) AS s
                          FROM billing.invoice_line_items
                         GROUP BY invoice_id) l ON l.invoice_id = i.id
            WHERE ($1::bigint IS NULL OR i.firm_id = $1::bigint)
              AND i.subtotal_cents <> coalesce(l.s, 0)
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
