-- scheduler_state_save.sql (common/scheduler_state.c): the last business
-- date the scheduler published a tick of a kind for; it only moves forward.
-- $1: the tick kind; $2: the business date.
INSERT INTO billing.scheduler_state(kind, last_business_date)
VALUES ($1, $2::date)
ON CONFLICT (kind) DO UPDATE
   SET last_business_date = GREATEST(billing.scheduler_state.last_business_date,
                                     EXCLUDED.last_business_date)
