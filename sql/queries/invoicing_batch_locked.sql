-- invoicing_batch_locked.sql (common/invoicing.c): the next batch of a real
-- run, as invoicing_batch.sql (which says why shards are sets of firms),
-- locking the engagements FOR NO KEY UPDATE so that two transactions never
-- bill one engagement's time entries at once.
-- $1: the last id of the previous batch (0 first); $2: shards; $3: this
-- shard; $4: a firm id, 0 for all; $5: the batch size.
\ir _invoicing_batch.sql
   FOR NO KEY UPDATE
