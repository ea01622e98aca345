-- document_lock_client.sql (common/document.c): one statement per client
-- and date (rule 17.5): concurrent senders of the same client wait on this
-- lock, and the second finds the first's statement.
-- $1: the client id.
SELECT 1
  FROM billing.clients
 WHERE id = $1::bigint
   FOR NO KEY UPDATE
