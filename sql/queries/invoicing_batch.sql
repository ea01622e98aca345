-- invoicing_batch.sql (common/invoicing.c): the next batch of a dry run:
-- current engagements of the shard (and firm), keyset over id.
-- invoicing_batch_locked.sql is the same with the lock of a real run (the
-- two were one C macro; each file is whole, as it runs).
-- $1: the last id of the previous batch (0 first); $2: shards; $3: this
-- shard; $4: a firm id, 0 for all; $5: the batch size.
-- A shard is a set of firms (firm id modulo shards), not of engagement ids:
-- a batch takes the legal-number counters of every firm it invoices (rule
-- 12.1, gapless) until it commits, so with id shards every batch of every
-- shard held the same counters and two workers were no faster than one
-- (docs/INVOICES.md "Numbering and shards").
SELECT e.id
  FROM billing.engagements e
 WHERE e.status = 'current'
   AND e.id > $1::bigint
   AND e.firm_id % $2::bigint = $3::bigint
   AND ($4::bigint = 0 OR e.firm_id = $4::bigint)
 ORDER BY e.id
 LIMIT $5::int
