-- credit_expire_lock.sql (credit.c, EXPIRE_LOCK_SQL).
WITH cand AS (SELECT DISTINCT l.client_id FROM billing.credit_ledger l
WHERE l.entry_type = 'credit' AND l.expires_at < $1::date
AND ($2::bigint = 0 OR l.firm_id = $2) AND ($3::bigint = 0 OR l.client_id = $3)
AND NOT EXISTS (SELECT 1 FROM billing.credit_ledger x WHERE x.expired_entry_id = l.id)),
live AS (SELECT cand.client_id FROM cand WHERE EXISTS (SELECT 1
FROM billing.credit_remainders(cand.client_id) r
WHERE r.expires_at < $1::date AND r.remaining_cents > 0))
SELECT c.id FROM billing.clients c WHERE c.id IN (SELECT client_id FROM live)
ORDER BY c.id FOR NO KEY UPDATE
