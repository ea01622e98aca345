-- outbox_unmark.sql (common/outbox.c): the claimed rows the broker did not
-- acknowledge become unpublished again, in the claiming transaction.
-- $1: their ids, as a bigint[] literal.
UPDATE billing.outbox
   SET published_at = NULL
 WHERE id = ANY($1::bigint[])
