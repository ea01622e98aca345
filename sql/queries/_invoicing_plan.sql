-- _invoicing_plan.sql (invoicing_preview.sql and invoicing_insert.sql
-- include it with psql's \ir, as cmake/embed_queries.cmake does; not a
-- query of its own): the CTEs that plan a batch of invoices.
-- $1: the business date; $2: the batch's engagement ids (a bigint[]).
-- eng (period per schedule), per (clipped period), todo (fee, not yet
-- invoiced for that period), hrs (hourly groups by effective rate), lines,
-- inv (numbered invoices with subtotal and tax; engagements with no line,
-- i.e. hourly with nothing to bill, drop out here). The client and "already
-- invoiced" lookups are LATERAL ... LIMIT 1 so that they stay one index
-- probe per engagement: as plain joins the planner hashed the whole clients
-- table, and the whole invoices table for the NOT EXISTS, in every batch (a
-- tick got slower the more it had invoiced).
WITH eng AS (
    SELECT e.id, e.firm_id, e.client_id, e.title, e.pricing_mode,
           e.package_fee_cents, e.hourly_rate_cents, e.prorate_partial_periods,
           e.payment_terms_days, e.autopay_cadence, e.start_date, e.end_date,
           c.currency, c.tax_rate_bp, c.autopay_enabled, c.autopay_payment_method_id,
           p.full_start, p.full_end
      FROM billing.engagements e
     CROSS JOIN LATERAL (SELECT c.currency, c.tax_rate_bp, c.autopay_enabled,
                                c.autopay_payment_method_id
                           FROM billing.clients c
                          WHERE c.firm_id = e.firm_id
                            AND c.id = e.client_id
                          LIMIT 1) c
     CROSS JOIN LATERAL (SELECT CASE e.package_fee_schedule
                                    WHEN 'one_time' THEN e.start_date
                                    ELSE date_trunc(u.unit, $1::date::timestamp)::date
                                END AS full_start,
                                CASE e.package_fee_schedule
                                    WHEN 'one_time' THEN e.end_date
                                    ELSE (date_trunc(u.unit, $1::date::timestamp) + u.len
                                          - interval '1 day')::date
                                END AS full_end
                           FROM (SELECT CASE e.package_fee_schedule
                                            WHEN 'monthly' THEN 'month'
                                            WHEN 'quarterly' THEN 'quarter'
                                            ELSE 'year'
                                        END AS unit,
                                        CASE e.package_fee_schedule
                                            WHEN 'monthly' THEN interval '1 month'
                                            WHEN 'quarterly' THEN interval '3 months'
                                            ELSE interval '1 year'
                                        END AS len) u) p
     WHERE e.id = ANY($2::bigint[])
       AND e.status = 'current'
       AND e.start_date <= $1::date
       AND (e.package_fee_schedule <> 'one_time' OR e.end_date IS NOT NULL)
       AND (e.end_date IS NULL OR e.end_date >= p.full_start)
),
per AS (
    SELECT eng.*, greatest(eng.start_date, eng.full_start) AS period_start,
           least(coalesce(eng.end_date, eng.full_end), eng.full_end) AS period_end
      FROM eng
),
todo AS (
    SELECT per.*,
           CASE WHEN per.pricing_mode IN ('package', 'mixed')
                 AND per.package_fee_cents IS NOT NULL THEN
               CASE WHEN per.prorate_partial_periods
                         AND (per.period_start <> per.full_start
                              OR per.period_end <> per.full_end)
                    THEN billing.round_to_granularity(per.package_fee_cents, per.currency,
                                                      per.period_end - per.period_start + 1,
                                                      per.full_end - per.full_start + 1)
                    ELSE billing.round_to_granularity(per.package_fee_cents, per.currency)
               END
           END AS fee_cents
      FROM per
      LEFT JOIN LATERAL (SELECT true AS done
                           FROM billing.invoices x
                          WHERE x.engagement_id = per.id
                            AND x.period_start = per.period_start
                            AND x.is_auto_generated
                          LIMIT 1) x ON true
     WHERE x.done IS NULL
),
hrs AS (
    SELECT t.engagement_id, coalesce(t.hourly_rate_cents, d.hourly_rate_cents) AS rate,
           sum(t.hours)::numeric(12,2) AS hours, array_agg(t.id ORDER BY t.id) AS ids
      FROM todo d
      JOIN billing.time_entries t ON t.engagement_id = d.id
     WHERE d.pricing_mode IN ('hourly', 'mixed')
       AND t.approved
       AND t.invoice_id IS NULL
       AND t.work_date < d.period_start
     GROUP BY t.engagement_id, coalesce(t.hourly_rate_cents, d.hourly_rate_cents)
),
lines AS (
    SELECT d.id AS engagement_id, 0::bigint AS ord, 'package_fee'::text AS line_type,
           'Package Fee - ' || d.title AS description, 1::numeric(12,2) AS quantity,
           d.fee_cents AS rate_cents, d.fee_cents AS amount_cents,
           '{}'::bigint[] AS time_entry_ids
      FROM todo d
     WHERE d.fee_cents IS NOT NULL
    UNION ALL
    SELECT h.engagement_id, 1 + h.rate, 'hourly',
           format('Consulting hours (%sh @ %s %s/h)', h.hours,
                  billing.format_amount(h.rate, d.currency), d.currency),
           h.hours, h.rate, billing.round_to_granularity(h.hours * h.rate, d.currency),
           h.ids
      FROM hrs h
      JOIN todo d ON d.id = h.engagement_id
),
inv AS (
    SELECT d.*, s.subtotal,
           billing.round_to_granularity(s.subtotal, d.currency, d.tax_rate_bp, 10000) AS tax,
           CASE WHEN d.pricing_mode = 'hourly' THEN 'HRS-' ELSE 'PKG-' END
               || d.id || '-' || to_char(d.period_start, 'YYYY-MM-DD') AS invoice_number,
           $1::date + d.payment_terms_days AS due_date
      FROM todo d
      JOIN (SELECT l.engagement_id, sum(l.amount_cents)::bigint AS subtotal
              FROM lines l
             GROUP BY l.engagement_id) s ON s.engagement_id = d.id
)
