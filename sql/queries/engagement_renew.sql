-- engagement_renew.sql (common/engagement_renew.c): the renewal of a current
-- engagement (BILLING_RULES section 8): it becomes completed, a new current
-- engagement (parent = old id, version + 1) takes its terms unless new fees
-- are given, and the audit event engagement_renewed records old and new fees.
-- $1 the engagement id, $2 and $3 the new start and end dates, $4 the new
-- package fee and $5 the new hourly rate (minor units; NULL = keep), $6 the
-- actor. Returns the new engagement's id.
WITH old AS (SELECT * FROM billing.engagements WHERE id = $1),
done AS (
    UPDATE billing.engagements e SET status = 'completed'
      FROM old
     WHERE e.id = old.id
    RETURNING e.id),
new AS (
    INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode,
           package_fee_cents, package_fee_schedule, hourly_rate_cents,
           prorate_partial_periods, payment_terms_days, autopay_cadence, start_date,
           end_date, status, parent_engagement_id, version)
    SELECT firm_id, client_id, title, pricing_mode,
           coalesce($4::bigint, package_fee_cents), package_fee_schedule,
           coalesce($5::bigint, hourly_rate_cents), prorate_partial_periods,
           payment_terms_days, autopay_cadence, $2::date, $3::date, 'current', id,
           version + 1
      FROM old
    RETURNING *),
aud AS (
    INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, metadata)
    SELECT new.firm_id, 'billing', 'engagement_renewed', 'INFO', $6,
           jsonb_build_object('old_engagement_id', old.id, 'new_engagement_id', new.id,
               'client_id', new.client_id, 'old_package_fee_cents', old.package_fee_cents,
               'new_package_fee_cents', new.package_fee_cents,
               'old_hourly_rate_cents', old.hourly_rate_cents,
               'new_hourly_rate_cents', new.hourly_rate_cents,
               'start_date', new.start_date, 'end_date', new.end_date,
               'version', new.version)
      FROM old, new)
SELECT new.id FROM new, done
