-- 017_reminders.sql: the reminder ladder (CONTRACT "Documents and delivery /
-- Reminders"; docs/NOTIFICATIONS.md "Reminders"): the scheduler's state may
-- name the new tick kind `reminders`, and billing.reminders_due says which
-- reminders a business date asks for. Sending is common/reminders.c's (one
-- billing.notifications row of kind `reminder` per invoice and step, rule
-- 17.3, so a step is mailed at most once however often a tick is replayed).

ALTER TABLE billing.scheduler_state DROP CONSTRAINT scheduler_state_kind_valid;
ALTER TABLE billing.scheduler_state ADD CONSTRAINT scheduler_state_kind_valid
    CHECK (kind IN ('invoicing', 'autopay', 'retry', 'reminders'));

-- The reminders due on p_date: an invoice that is issued and still owed
-- (status sent, partial, overdue or failed: never draft, paid, void,
-- cancelled, disputed, refunded or charged back; balance due > 0) gets step
-- s of its firm's reminder_days (default {-3,7,21,35,65}) on due_date + s.
-- Nothing when the client's reminders_paused is set or the firm's
-- reminders_enabled is off. A step whose notification is already sent or
-- failed is left out (a queued one, a send that did not finish, is
-- included: it is retried). p_firm_id NULL: all firms; the tick's shard
-- p_shard of p_shards takes the invoices with id % p_shards = p_shard.
-- The date is matched exactly: a missed day is sent by replaying that
-- day's tick (the scheduler catches up missed ticks), not by the next day.
CREATE FUNCTION billing.reminders_due(p_date date, p_firm_id bigint DEFAULT NULL,
                                      p_shard integer DEFAULT 0, p_shards integer DEFAULT 1)
RETURNS TABLE (invoice_id bigint, firm_id bigint, client_id bigint, step integer,
               legal_number text, due_date date, balance_due_cents bigint, currency text,
               to_address text)
LANGUAGE sql STABLE AS $$
    WITH steps AS (
        SELECT DISTINCT unnest(s.reminder_days) AS step FROM billing.firm_settings s
        UNION
        SELECT unnest('{-3,7,21,35,65}'::integer[])
    )
    SELECT i.id, i.firm_id, i.client_id, d.step,
           coalesce(i.legal_number, i.invoice_number), i.due_date,
           billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents),
           i.currency, c.primary_contact_email
      FROM steps d
      JOIN billing.invoices i
        ON i.due_date = p_date - d.step
       AND i.status IN ('sent', 'partial', 'overdue', 'failed')
      JOIN billing.clients c ON c.id = i.client_id
      LEFT JOIN billing.firm_settings s ON s.firm_id = i.firm_id
     WHERE d.step = ANY (coalesce(s.reminder_days, '{-3,7,21,35,65}'::integer[]))
       AND coalesce(s.reminders_enabled, true)
       AND NOT c.reminders_paused
       AND billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents) > 0
       AND (p_firm_id IS NULL OR i.firm_id = p_firm_id)
       AND i.id % greatest(p_shards, 1) = p_shard
       AND NOT EXISTS (SELECT 1 FROM billing.notifications n
                        WHERE n.kind = 'reminder' AND n.invoice_id = i.id
                          AND n.credit_note_id IS NULL AND n.step = d.step
                          AND n.status <> 'queued')
     ORDER BY i.id, d.step
$$;

SELECT billing.grant_runtime_roles();
