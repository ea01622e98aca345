-- invoice_show.sql (common/invoice_show.c): one invoice as a JSON document
-- (`billingctl invoice show`): its header, credit notes, lines and payments.
-- $1: the invoice id.
SELECT jsonb_build_object(
    'invoice', jsonb_build_object('invoice_id', i.id, 'invoice_number', i.invoice_number,
        'firm_id', i.firm_id, 'client_id', i.client_id, 'engagement_id', i.engagement_id,
        'engagement_override', i.engagement_override,
        'engagement_override_reason', i.engagement_override_reason,
        'engagement_override_by', i.engagement_override_by,
        'status', i.status, 'currency', i.currency, 'subtotal_cents', i.subtotal_cents,
        'tax_cents', i.tax_cents, 'total_cents', i.total_cents,
        'amount_paid_cents', i.amount_paid_cents, 'refunded_cents', i.refunded_cents,
        'issue_date', i.issue_date, 'due_date', i.due_date, 'paid_date', i.paid_date,
        'period_start', i.period_start, 'period_end', i.period_end,
        'is_auto_generated', i.is_auto_generated, 'autopay_opt_in', i.autopay_opt_in,
        'autopay_status', i.autopay_status, 'legal_number', i.legal_number,
        'credited_cents', i.credited_cents,
        'balance_due_cents', billing.balance_due(i.total_cents, i.amount_paid_cents,
                                                 i.credited_cents),
        'issued_by', i.issued_by, 'voided_by', i.voided_by, 'void_reason', i.void_reason),
    'credit_notes', (SELECT coalesce(jsonb_agg(jsonb_build_object('credit_note_id', n.id,
            'legal_number', n.legal_number, 'total_cents', n.total_cents,
            'applied_to_due_cents', n.applied_to_due_cents, 'refunded_cents', n.refunded_cents,
            'credited_cents', n.credited_cents, 'reason', n.reason) ORDER BY n.id), '[]'::jsonb)
        FROM billing.credit_notes n WHERE n.invoice_id = i.id),
    'lines', (SELECT coalesce(jsonb_agg(jsonb_build_object('line_id', l.id,
            'line_type', l.line_type, 'description', l.description,
            'quantity', l.quantity::text, 'rate_cents', l.rate_cents,
            'amount_cents', l.amount_cents, 'time_entry_ids', to_jsonb(l.time_entry_ids))
            ORDER BY l.id), '[]'::jsonb)
        FROM billing.invoice_line_items l WHERE l.invoice_id = i.id),
    'payments', (SELECT coalesce(jsonb_agg(jsonb_build_object('payment_id', p.id,
            'amount_cents', p.amount_cents, 'source', p.source,
            'stripe_payment_intent_id', p.stripe_payment_intent_id,
            'received_at', to_char(p.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
            ORDER BY p.id), '[]'::jsonb)
        FROM billing.payments p WHERE p.invoice_id = i.id))::text
  FROM billing.invoices i
 WHERE i.id = $1
