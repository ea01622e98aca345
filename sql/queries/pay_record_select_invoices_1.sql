-- pay_record_select_invoices_1.sql (payment_record.c, payments_apply_success).
SELECT billing.audit(firm_id, $2, 'INFO', NULL,
$3::jsonb || jsonb_build_object('payment_intent', $4::text))
FROM billing.invoices WHERE id = $1::bigint
