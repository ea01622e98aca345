-- itr_adjust.sql (common/invoice_transitions.c, for lifecycle.c): adjusts a line of a draft
-- invoice through billing.adjust_invoice_line (sql/013): the invoice's new
-- total and the line's new amount.
-- $1: invoice; $2: line; $3: a new quantity (hours) or NULL; $4: a new
-- amount in minor units or NULL; $5: the reason; $6: who adjusts it.
SELECT total_cents, amount_cents
  FROM billing.adjust_invoice_line($1::bigint, $2::bigint, $3::numeric, $4::bigint, $5, $6)
