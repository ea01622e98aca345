-- itr_credit_note.sql (common/invoice_transitions.c, for lifecycle.c): creates a credit note
-- through billing.create_credit_note: its id and legal number, how it
-- splits (applied to what is due, refunded, credited), the invoice's firm
-- and client, and whether it was created before.
-- $1: invoice; $2: a total in minor units, or NULL with $3: the lines as
-- JSON; $4: mode (refund or credit); $5: reason; $6: who; $7: its date.
SELECT credit_note_id, legal_number, applied_to_due_cents, refunded_cents, credited_cents,
       firm_id, client_id, already
  FROM billing.create_credit_note($1::bigint, $2::bigint, $3::jsonb, $4, $5, $6, $7::date)
