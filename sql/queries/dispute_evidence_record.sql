-- dispute_evidence_record.sql (common/dispute_evidence.c): evidence
-- submitted to Stripe marks the dispute under_review, only forward (a
-- dispute that closed meanwhile stays closed), and keeps the first
-- submission time when the same submission is recorded again. Returns
-- whether this recorded it first, the status and the submission time
-- (UTC, ISO 8601).
-- $1: the payment_disputes id.
WITH old AS (SELECT evidence_submitted_at AS at
               FROM billing.payment_disputes
              WHERE id = $1
                FOR UPDATE)
UPDATE billing.payment_disputes d
   SET status = CASE WHEN d.status = 'closed' THEN d.status ELSE 'under_review' END,
       evidence_submitted = true,
       evidence_submitted_at = coalesce(d.evidence_submitted_at, now())
  FROM old
 WHERE d.id = $1
RETURNING old.at IS NULL, d.status,
          to_char(d.evidence_submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
