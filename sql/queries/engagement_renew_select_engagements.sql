-- engagement_renew_select_engagements.sql (engagement_renew.c, renew_start).
SELECT status, end_date::text FROM billing.engagements WHERE id = $1
FOR UPDATE
