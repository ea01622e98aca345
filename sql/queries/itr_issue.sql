-- itr_issue.sql (common/invoice_transitions.c, for lifecycle.c): issues an invoice through
-- billing.issue_invoice (sql/013): its legal number, and whether it was
-- issued before.
-- $1: the invoice id; $2: the issue date; $3: who issues it.
SELECT legal_number, already
  FROM billing.issue_invoice($1::bigint, $2::date, $3)
