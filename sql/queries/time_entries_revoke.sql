-- time_entries_revoke.sql (common/time_entries.c): revokes the approval of
-- the listed approved entries (the database trigger refuses an invoiced one:
-- rule 1.8), one audit event time_entries_revoked per firm touched; returns
-- how many changed.
-- $1: the ids as a bigint[] literal; $2: the actor (may be NULL).
WITH u AS (
    UPDATE billing.time_entries
       SET approved = false, approved_by = NULL, approved_at = NULL
     WHERE id = ANY($1::bigint[]) AND approved
    RETURNING id, firm_id),
a AS (
    INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, metadata)
    SELECT firm_id, 'billing', 'time_entries_revoked', 'INFO', $2,
           jsonb_build_object('time_entry_ids', array_agg(id ORDER BY id))
      FROM u
     GROUP BY firm_id)
SELECT count(*) FROM u
