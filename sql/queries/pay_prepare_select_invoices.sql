-- pay_prepare_select_invoices.sql (payment_prepare.c, pay_prepare).
SELECT i.firm_id,
billing.balance_due(i.total_cents, i.amount_paid_cents,
i.credited_cents), i.currency,
i.autopay_opt_in AND c.autopay_enabled, i.autopay_status,
coalesce(nullif(c.autopay_payment_method_id, ''),
nullif(i.autopay_payment_method_id, '')),
c.stripe_customer_id,
billing.charge_due($3, i.status, i.autopay_opt_in, i.autopay_status,
i.autopay_next_charge_at, i.next_payment_retry_at, $2::date),
i.currency = c.currency
FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id
WHERE i.id = $1::bigint FOR UPDATE OF i
