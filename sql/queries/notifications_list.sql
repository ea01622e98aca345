-- notifications_list.sql (common/notifications_list.c): `billingctl
-- notifications list`, the notifications (oldest first, at most 10000) as a
-- JSON array, each filter applied only when given.
-- $1: an invoice id or NULL; $2: a client id or NULL; $3: a status
-- (queued, sent, failed) or NULL.
SELECT coalesce(json_agg(json_build_object('id', n.id, 'kind', n.kind,
  'firm_id', n.firm_id, 'client_id', n.client_id, 'invoice_id', n.invoice_id,
  'credit_note_id', n.credit_note_id, 'step', n.step, 'to_address', n.to_address,
  'status', n.status, 'attempts', n.attempts, 'message_id', n.message_id,
  'sent_at', to_char(n.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  'error', n.error) ORDER BY n.id), '[]')::text
FROM (SELECT * FROM billing.notifications
        WHERE ($1::bigint IS NULL OR invoice_id = $1::bigint)
          AND ($2::bigint IS NULL OR client_id = $2::bigint)
          AND ($3::text IS NULL OR status = $3::text)
        ORDER BY id LIMIT 10000) n
