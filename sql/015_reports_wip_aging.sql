-- 015_reports_wip_aging.sql: the figures of `billingctl report wip` and
-- `billingctl report aging` (CONTRACT "Invoice lifecycle"; docs/INVOICES.md),
-- one function each, read-only.

-- Work in progress on p_day: time entries of the firm's engagements worked on
-- or before p_day and not on any invoice (a void invoice's entries are
-- released, so they count again), per engagement: approved and unapproved
-- hours and their value at each entry's effective rate (the entry's, else
-- the engagement's), rounded per entry to the currency's granularity (rule
-- 11.13), as an invoice line would be per rate.
CREATE FUNCTION billing.report_wip(p_firm_id bigint, p_day date)
RETURNS TABLE (engagement_id bigint, client_id bigint, title text, currency text,
               approved_hours numeric, approved_cents bigint, unapproved_hours numeric,
               unapproved_cents bigint, entries bigint)
LANGUAGE sql STABLE AS $$
    WITH g AS (
        SELECT e.id, e.client_id, e.title, c.currency, t.approved,
               coalesce(t.hourly_rate_cents, e.hourly_rate_cents, 0) AS rate,
               sum(t.hours) AS hours, count(*) AS n
          FROM billing.time_entries t
          JOIN billing.engagements e ON e.id = t.engagement_id
          JOIN billing.clients c ON c.id = e.client_id
         WHERE t.firm_id = p_firm_id AND t.invoice_id IS NULL AND t.work_date <= p_day
         GROUP BY 1, 2, 3, 4, 5, 6)
    SELECT g.id, g.client_id, g.title, g.currency,
           coalesce(sum(g.hours) FILTER (WHERE g.approved), 0),
           coalesce(sum(billing.round_to_granularity(g.hours * g.rate, g.currency))
                    FILTER (WHERE g.approved), 0)::bigint,
           coalesce(sum(g.hours) FILTER (WHERE NOT g.approved), 0),
           coalesce(sum(billing.round_to_granularity(g.hours * g.rate, g.currency))
                    FILTER (WHERE NOT g.approved), 0)::bigint,
           sum(g.n)::bigint
      FROM g GROUP BY g.id, g.client_id, g.title, g.currency ORDER BY g.id
$$;

-- Receivables aging on p_day: the balance due (total - paid - credited) of
-- every issued invoice of the firm that is not void, cancelled, refunded or
-- charged back, issued on or before p_day, per client and currency, by days
-- past due (p_day - due_date): current (not yet due), 1-30, 31-60, 61-90,
-- 90+.
CREATE FUNCTION billing.report_aging(p_firm_id bigint, p_day date)
RETURNS TABLE (client_id bigint, client_name text, currency text, current_cents bigint,
               days_1_30_cents bigint, days_31_60_cents bigint, days_61_90_cents bigint,
               days_90_plus_cents bigint, total_cents bigint, invoices bigint)
LANGUAGE sql STABLE AS $$
    WITH o AS (
        SELECT i.client_id, i.currency,
               billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents) AS due,
               p_day - coalesce(i.due_date, i.issue_date) AS late
          FROM billing.invoices i
         WHERE i.firm_id = p_firm_id AND i.issue_date <= p_day
           AND i.status NOT IN ('draft', 'void', 'cancelled', 'refunded', 'charged_back'))
    SELECT o.client_id, c.company_name, o.currency,
           coalesce(sum(o.due) FILTER (WHERE o.late <= 0), 0)::bigint,
           coalesce(sum(o.due) FILTER (WHERE o.late BETWEEN 1 AND 30), 0)::bigint,
           coalesce(sum(o.due) FILTER (WHERE o.late BETWEEN 31 AND 60), 0)::bigint,
           coalesce(sum(o.due) FILTER (WHERE o.late BETWEEN 61 AND 90), 0)::bigint,
           coalesce(sum(o.due) FILTER (WHERE o.late > 90), 0)::bigint,
           sum(o.due)::bigint, count(*)
      FROM o JOIN billing.clients c ON c.id = o.client_id
     WHERE o.due > 0
     GROUP BY o.client_id, c.company_name, o.currency ORDER BY o.client_id, o.currency
$$;
