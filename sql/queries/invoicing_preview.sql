-- invoicing_preview.sql (common/invoicing.c): the dry run of a batch: one
-- row per would-be invoice, with its lines as JSON.
-- $1: the business date; $2: the batch's engagement ids (a bigint[]).
-- The planning CTEs (eng, per, todo, hrs, lines, inv) are _invoicing_plan.sql,
-- shared with invoicing_insert.sql.
\ir _invoicing_plan.sql
SELECT i.invoice_number, i.id, i.firm_id, i.client_id,
       to_char(i.period_start, 'YYYY-MM-DD'), to_char(i.period_end, 'YYYY-MM-DD'),
       i.currency, i.subtotal, i.tax, i.subtotal + i.tax,
       (SELECT json_agg(json_build_object('line_type', l.line_type,
                                          'description', l.description,
                                          'quantity', l.quantity::text,
                                          'rate_cents', l.rate_cents,
                                          'amount_cents', l.amount_cents,
                                          'time_entry_ids', l.time_entry_ids) ORDER BY l.ord)
          FROM lines l
         WHERE l.engagement_id = i.id)::text
  FROM inv i
 ORDER BY i.id
