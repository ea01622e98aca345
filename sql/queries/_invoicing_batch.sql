-- _invoicing_batch.sql (invoicing_batch.sql and invoicing_batch_locked.sql
-- include it): the next batch of current engagements of the shard (and
-- firm), keyset over id. $1: the last id of the previous batch (0 first);
-- $2: shards; $3: this shard; $4: a firm id, 0 for all; $5: the batch size.
SELECT e.id
  FROM billing.engagements e
 WHERE e.status = 'current'
   AND e.id > $1::bigint
   AND e.firm_id % $2::bigint = $3::bigint
   AND ($4::bigint = 0 OR e.firm_id = $4::bigint)
 ORDER BY e.id
 LIMIT $5::int
