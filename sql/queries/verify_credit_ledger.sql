-- verify_credit_ledger.sql (common/verify.c): check 5, the credit ledger
-- (section 4).
-- $1: the firm to check, NULL for every firm; $2: at most this many rows,
-- NULL for all (the wrapper as in verify_line_items_sum.sql).
-- The balance (credits - debits) never goes negative, read entry by entry
-- in (created_at, id) order (credit.c stamps entries with clock_timestamp()
-- under the client's row lock, so that is the order they were written);
-- an expired debit removes at most what its credit carried; the credit
-- payments of an invoice equal the ledger debits applied to it; and per firm
-- and currency the firm's ledger sums to its clients' balances (the
-- `report credits` reconciliation).
SELECT v.firm_id, v.tbl, v.id, v.detail, count(*) OVER ()
  FROM (
           WITH run AS (
               SELECT l.firm_id, l.client_id, l.id,
                      sum(CASE l.entry_type WHEN 'credit' THEN l.amount_cents ELSE -l.amount_cents END)
                          OVER (PARTITION BY l.client_id
                                ORDER BY l.created_at, l.id ROWS UNBOUNDED PRECEDING) AS bal
                 FROM billing.credit_ledger l
                WHERE ($1::bigint IS NULL OR l.firm_id = $1::bigint)
           ),
           neg AS (
               SELECT DISTINCT ON (client_id) firm_id, client_id, id, bal
                 FROM run
                WHERE bal < 0
                ORDER BY client_id, id
           )
           SELECT n.firm_id, 'clients', n.client_id,
                  format('client %s: credit balance goes negative (%s cents) at ledger entry %s; final balance %s',
                         n.client_id, n.bal, n.id,
                         (SELECT sum(CASE entry_type WHEN 'credit' THEN amount_cents ELSE -amount_cents END)
                            FROM billing.credit_ledger
                           WHERE client_id = n.client_id))
             FROM neg n
           UNION ALL
           SELECT c.firm_id, 'credit_ledger', c.id,
                  format('credit entry %s (%s cents) has %s cents expired by entries %s', c.id,
                         c.amount_cents, x.s, x.ids)
             FROM billing.credit_ledger c
             JOIN (SELECT expired_entry_id, sum(amount_cents) AS s,
                          string_agg(id::text, ',' ORDER BY id) AS ids
                     FROM billing.credit_ledger
                    WHERE expired_entry_id IS NOT NULL
                    GROUP BY expired_entry_id) x ON x.expired_entry_id = c.id
            WHERE ($1::bigint IS NULL OR c.firm_id = $1::bigint)
              AND (x.s > c.amount_cents OR c.entry_type <> 'credit')
           UNION ALL
           SELECT i.firm_id, 'invoices', i.id,
                  format('invoice %s (%s): credit payments sum to %s cents but ledger debits applied to it sum to %s',
                         i.id, i.invoice_number, coalesce(cp.s, 0), coalesce(cd.s, 0))
             FROM billing.invoices i
             LEFT JOIN (SELECT invoice_id, sum(amount_cents) AS s
                          FROM billing.payments
                         WHERE source = 'credit'
                         GROUP BY invoice_id) cp ON cp.invoice_id = i.id
             LEFT JOIN (SELECT applied_to_invoice_id, sum(amount_cents) AS s
                          FROM billing.credit_ledger
                         WHERE entry_type = 'debit'
                           AND use IN ('invoice_payment', 'partial_payment')
                         GROUP BY applied_to_invoice_id) cd ON cd.applied_to_invoice_id = i.id
            WHERE ($1::bigint IS NULL OR i.firm_id = $1::bigint)
              AND coalesce(cp.s, 0) <> coalesce(cd.s, 0)
           UNION ALL
           SELECT coalesce(a.firm_id, b.firm_id), 'firms', coalesce(a.firm_id, b.firm_id),
                  format('firm %s (%s): its ledger entries sum to %s cents but its clients'' balances sum to %s',
                         coalesce(a.firm_id, b.firm_id), coalesce(a.currency, b.currency),
                         coalesce(a.s, 0), coalesce(b.s, 0))
             FROM (SELECT l.firm_id, c.currency,
                          sum(CASE l.entry_type WHEN 'credit' THEN l.amount_cents ELSE -l.amount_cents END) AS s
                     FROM billing.credit_ledger l
                     JOIN billing.clients c ON c.id = l.client_id
                    WHERE ($1::bigint IS NULL OR l.firm_id = $1::bigint)
                    GROUP BY l.firm_id, c.currency) a
             FULL JOIN (SELECT c.firm_id, c.currency,
                               sum(CASE l.entry_type WHEN 'credit' THEN l.amount_cents ELSE -l.amount_cents END) AS s
                          FROM billing.clients c
                          JOIN billing.credit_ledger l ON l.client_id = c.id
                         WHERE ($1::bigint IS NULL OR c.firm_id = $1::bigint)
                         GROUP BY c.firm_id, c.currency) b ON b.firm_id = a.firm_id AND b.currency = a.currency
            WHERE coalesce(a.s, 0) <> coalesce(b.s, 0)
       ) v(firm_id, tbl, id, detail)
 ORDER BY v.firm_id NULLS FIRST, v.tbl, v.id, v.detail
 LIMIT $2::bigint
