-- time_entries_missing.sql (common/time_entries.c): which of the listed time
-- entry ids do not exist, comma-separated ('' when all do).
-- $1: the ids as a bigint[] literal.
SELECT coalesce(string_agg(x::text, ',' ORDER BY x), '')
  FROM unnest($1::bigint[]) x
 WHERE NOT EXISTS (SELECT 1 FROM billing.time_entries t WHERE t.id = x)
