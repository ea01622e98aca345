-- invoice_manual_terms.sql (common/invoice_manual.c): a manual invoice
-- linked to an engagement takes its payment terms (due = issue + terms)
-- and its autopay cadence.
-- $1: the invoice id.
UPDATE billing.invoices i
   SET due_date = i.issue_date + e.payment_terms_days,
       autopay_cadence = e.autopay_cadence
  FROM billing.engagements e
 WHERE i.id = $1
   AND e.id = i.engagement_id
