-- notify_insert.sql (common/notify.c): the notification row of a delivery
-- (step 1), queued, or failed at once when the client has no usable
-- address; a row already there is left as it is.
-- $1: firm; $2: client; $3: invoice, $4: credit note (NULL for none);
-- $5: kind; $6: step; $7: the address (NULL for none); $8: status;
-- $9: Message-ID; $10: the error (NULL when queued).
INSERT INTO billing.notifications (firm_id, client_id, invoice_id, credit_note_id, kind, step,
                                   to_address, status, message_id, error)
VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5, $6::int, $7, $8, $9, $10)
    ON CONFLICT DO NOTHING
