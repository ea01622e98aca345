-- verify_time_entries.sql (common/verify.c): check 8, time entries (rule
-- 1.8, section 3).
-- $1: the firm to check, NULL for every firm; $2: at most this many rows,
-- NULL for all (the wrapper as in verify_line_items_sum.sql).
-- An invoiced entry is approved and listed by exactly one line, a line of
-- the invoice it is marked on; an entry listed by a line is marked invoiced
-- on that line's invoice. Lines of a void invoice keep their list as a
-- record, but bill nothing: their entries were released (sql/013).
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           WITH li AS (
               SELECT l.id AS line_id, l.invoice_id, x.te
                 FROM billing.invoice_line_items l
                CROSS JOIN LATERAL unnest(l.time_entry_ids) x(te)
                WHERE cardinality(l.time_entry_ids) > 0
                  AND NOT EXISTS (SELECT 1
                                    FROM billing.invoices v
                                   WHERE v.id = l.invoice_id
                                     AND v.status = 'void')
           ),
           per AS (
               SELECT li.te, count(*) AS n,
                      string_agg(format('line %s of invoice %s', li.line_id, li.invoice_id), ', '
                                 ORDER BY li.line_id) AS lines,
                      bool_and(li.invoice_id IS NOT DISTINCT FROM t.invoice_id) AS same
                 FROM li
                 LEFT JOIN billing.time_entries t ON t.id = li.te
                GROUP BY li.te
           )
           SELECT t.firm_id, 'time_entries', t.id,
                  format('time entry %s is invoiced on %s but not approved', t.id, t.invoice_id)
             FROM billing.time_entries t
            WHERE ($1::bigint IS NULL OR t.firm_id = $1::bigint)
              AND t.invoice_id IS NOT NULL
              AND NOT t.approved
           UNION ALL
           SELECT t.firm_id, 'time_entries', t.id,
                  format('time entry %s (invoice %s) is listed by %s line(s)%s; want exactly one line of invoice %s',
                         t.id, coalesce(t.invoice_id::text, 'none'), coalesce(per.n, 0),
                         coalesce(': ' || per.lines, ''), coalesce(t.invoice_id::text, 'none'))
             FROM billing.time_entries t
             LEFT JOIN per ON per.te = t.id
            WHERE ($1::bigint IS NULL OR t.firm_id = $1::bigint)
              AND ((t.invoice_id IS NOT NULL AND coalesce(per.n, 0) <> 1)
                   OR (per.n IS NOT NULL AND NOT per.same))
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
