-- time_entries_approve.sql (common/time_entries.c): approves the listed
-- entries not yet approved (rule 1.8), one audit event
-- time_entries_approved per firm touched; returns how many changed.
-- $1: the ids as a bigint[] literal; $2: the approver.
WITH u AS (
    UPDATE billing.time_entries
       SET approved = true, approved_by = $2, approved_at = now()
     WHERE id = ANY($1::bigint[]) AND NOT approved
    RETURNING id, firm_id),
a AS (
    INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, metadata)
    SELECT firm_id, 'billing', 'time_entries_approved', 'INFO', $2,
           jsonb_build_object('time_entry_ids', array_agg(id ORDER BY id))
      FROM u
     GROUP BY firm_id)
SELECT count(*) FROM u
