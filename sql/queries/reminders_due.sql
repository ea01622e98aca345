-- reminders_due.sql (common/reminders.c): the reminders due on a day, as
-- billing.reminders_due() (sql/017) lists them, with the columns
-- reminders.c reads.
-- $1: the day; $2: a firm id, NULL for all; $3: the shard, $4: of how many.
SELECT invoice_id, firm_id, client_id, step, legal_number, due_date,
       balance_due_cents, currency, coalesce(to_address, '')
  FROM billing.reminders_due($1::date, $2::bigint, $3::int, $4::int)
