-- credit_select_clients.sql (credit.c, credit_lock_client).
SELECT firm_id, currency FROM billing.clients WHERE id = $1
FOR NO KEY UPDATE
