-- time_entries_set_approval.sql (common/time_entries.c): approves ($3 true)
-- or revokes ($3 false) the listed entries not already so (rule 1.8; the
-- database trigger refuses revoking an invoiced entry), one audit event
-- time_entries_approved / time_entries_revoked per firm touched; returns how
-- many changed.
-- $1: the ids as a bigint[] literal; $2: the actor (the approver; may be
-- NULL when revoking); $3: approve.
WITH u AS (
    UPDATE billing.time_entries
       SET approved = $3::boolean,
           approved_by = CASE WHEN $3::boolean THEN $2::text END,
           approved_at = CASE WHEN $3::boolean THEN now() END
     WHERE id = ANY($1::bigint[]) AND approved <> $3::boolean
    RETURNING id, firm_id),
a AS (
    INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, metadata)
    SELECT firm_id, 'billing',
           CASE WHEN $3::boolean THEN 'time_entries_approved' ELSE 'time_entries_revoked' END,
           'INFO', $2::text,
           jsonb_build_object('time_entry_ids', array_agg(id ORDER BY id))
      FROM u
     GROUP BY firm_id)
SELECT count(*) FROM u
