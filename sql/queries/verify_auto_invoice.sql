-- verify_auto_invoice.sql (common/verify.c): check 9, one auto invoice per
-- engagement and period (rule 1.6).
-- $1: the firm to check, NULL for every firm; $2: at most this many rows,
-- NULL for all (the wrapper as in verify_line_items_sum.sql).
-- The same period start twice (the unique index's rule), and periods of one
-- engagement that overlap (the same days billed twice under another start).
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           SELECT min(i.firm_id), 'invoices', min(i.id),
                  format('engagement %s has %s auto invoices for the period starting %s (%s)',
                         i.engagement_id, count(*), i.period_start,
                         string_agg(i.id::text, ',' ORDER BY i.id))
             FROM billing.invoices i
            WHERE i.is_auto_generated
              AND ($1::bigint IS NULL OR i.firm_id = $1::bigint)
            GROUP BY i.engagement_id, i.period_start
           HAVING count(*) > 1
           UNION ALL
           SELECT b.firm_id, 'invoices', b.id,
                  format('auto invoice %s (%s, %s..%s) overlaps auto invoice %s (%s, %s..%s) of engagement %s',
                         b.id, b.invoice_number, b.period_start, coalesce(b.period_end, b.period_start),
                         a.id, a.invoice_number, a.period_start, coalesce(a.period_end, a.period_start),
                         a.engagement_id)
             FROM billing.invoices a
             JOIN billing.invoices b ON b.engagement_id = a.engagement_id
                                    AND b.id > a.id
                                    AND b.is_auto_generated
                                    AND b.period_start <> a.period_start
                                    AND daterange(a.period_start, coalesce(a.period_end, a.period_start), '[]')
                                        && daterange(b.period_start, coalesce(b.period_end, b.period_start), '[]')
            WHERE a.is_auto_generated
              AND (($1::bigint IS NULL OR a.firm_id = $1::bigint) OR ($1::bigint IS NULL OR b.firm_id = $1::bigint))
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
