-- pay_ticks_cancel.sql (payment_ticks.c, pay_cancel_tx): autopay turned off
-- (the client's, or the invoice's opt-in): on the tick's shard, every
-- pending autopay without an unanswered attempt is cancelled, whatever its
-- state (11.3; those with one are looked up first by the autopay selection),
-- each with an autopay_cancelled audit.
-- $1 business date (only checked present), $2 shards, $3 shard, $4 firm
-- (NULL: all).
WITH u AS (
    UPDATE billing.invoices i
       SET autopay_status = 'cancelled', autopay_opt_in = false,
           autopay_next_charge_at = NULL, next_payment_retry_at = NULL
      FROM billing.clients c
     WHERE c.id = i.client_id
       AND NOT (c.autopay_enabled AND i.autopay_opt_in)
       AND i.autopay_status IN ('scheduled', 'processing', 'failed', 'needs_attention')
       AND NOT EXISTS (SELECT 1 FROM billing.payment_attempts a
                        WHERE a.invoice_id = i.id
                          AND a.status IN ('processing', 'transient_error'))
       AND $1::date IS NOT NULL
       AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id = $4::bigint)
    RETURNING i.id, i.firm_id, i.client_id)
SELECT billing.audit(firm_id, 'autopay_cancelled', 'INFO', NULL,
                     jsonb_build_object('invoice_id', id, 'client_id', client_id,
                                        'reason', 'client autopay disabled'))
  FROM u
