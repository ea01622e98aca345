-- lifecycle_firm_settings.sql (common/lifecycle.c): sets a firm's settings
-- (a NULL keeps the current value, or the default for a firm without
-- settings), audits the change as firm_settings_changed, and returns the
-- settings as JSON (the number prefix defaults to the firm's slug, upper
-- case). The count(*) over a makes the audit run.
-- $1: firm; $2: review_before_issue; $3: number_prefix; $4: legal_name;
-- $5: address; $6: tax_id; $7: payment_instructions; $8: reminder_days
-- (an int[] literal); $9: reminders_enabled.
WITH u AS (
    INSERT INTO billing.firm_settings AS f (firm_id, review_before_issue, number_prefix,
                                            legal_name, address, tax_id, payment_instructions,
                                            reminder_days, reminders_enabled)
    VALUES ($1::bigint, coalesce($2::boolean, false), $3, $4, $5, $6, $7,
            coalesce($8::int[], '{-3,7,21,35,65}'), coalesce($9::boolean, true))
        ON CONFLICT (firm_id) DO UPDATE
       SET review_before_issue = coalesce($2::boolean, f.review_before_issue),
           number_prefix = coalesce($3, f.number_prefix),
           legal_name = coalesce($4, f.legal_name),
           address = coalesce($5, f.address),
           tax_id = coalesce($6, f.tax_id),
           payment_instructions = coalesce($7, f.payment_instructions),
           reminder_days = coalesce($8::int[], f.reminder_days),
           reminders_enabled = coalesce($9::boolean, f.reminders_enabled),
           updated_at = now()
    RETURNING *
),
a AS (
    SELECT billing.audit(u.firm_id, 'firm_settings_changed', 'INFO', NULL,
                         to_jsonb(u) - 'updated_at')
      FROM u
)
SELECT json_build_object('firm_id', u.firm_id,
                         'review_before_issue', u.review_before_issue,
                         'number_prefix', coalesce(u.number_prefix,
                                                   (SELECT upper(f.slug)
                                                      FROM billing.firms f
                                                     WHERE f.id = u.firm_id)),
                         'legal_name', u.legal_name,
                         'address', u.address,
                         'tax_id', u.tax_id,
                         'payment_instructions', u.payment_instructions,
                         'reminder_days', u.reminder_days,
                         'reminders_enabled', u.reminders_enabled)::text
  FROM u, (SELECT count(*) FROM a) x
