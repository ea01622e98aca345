-- scheduler_state_select_scheduler_state.sql (scheduler_state.c, top).
SELECT kind, last_business_date::text
FROM billing.scheduler_state WHERE last_business_date IS NOT NULL
