-- invoice_manual_select_clients.sql (invoice_manual.c, manual_client_read).
SELECT firm_id, tax_rate_bp, autopay_enabled::text,
autopay_payment_method_id, currency FROM billing.clients WHERE id = $1
