-- demo.sql: a demo firm for the local stack. Idempotent: does nothing when the
-- firm "demo" exists already.
DO $$
DECLARE
  f bigint; c1 bigint; c2 bigint; e_pkg bigint; e_hrs bigint;
BEGIN
  IF EXISTS (SELECT 1 FROM billing.firms WHERE slug = 'demo') THEN
    RETURN;
  END IF;
  INSERT INTO billing.firms(name, slug) VALUES ('Demo Consulting LLP', 'demo') RETURNING id INTO f;
  INSERT INTO billing.clients(firm_id, company_name, primary_contact_email, tax_rate_bp,
                              autopay_enabled, autopay_payment_method_id, stripe_customer_id)
    VALUES (f, 'Acme Manufacturing', 'ap@acme.test', 825, true, 'pm_card_visa', 'cus_QXg1o8vcGmoR32')
    RETURNING id INTO c1;
  INSERT INTO billing.clients(firm_id, company_name, primary_contact_email)
    VALUES (f, 'Globex Retail', 'finance@globex.test') RETURNING id INTO c2;
  INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, package_fee_cents,
                                  package_fee_schedule, start_date, end_date)
    VALUES (f, c1, 'Fractional CFO retainer', 'package', 500000, 'monthly', '2026-01-01', '2026-12-31')
    RETURNING id INTO e_pkg;
  INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, hourly_rate_cents,
                                  start_date)
    VALUES (f, c2, 'ERP migration advisory', 'hourly', 15000, '2026-06-01')
    RETURNING id INTO e_hrs;
  INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date, hours, description,
                                   approved, approved_by, approved_at)
    VALUES (f, e_hrs, 'alice', '2026-10-06', 6.50, 'Requirements workshop', true, 'partner', now()),
           (f, e_hrs, 'bob', '2026-10-14', 3.25, 'Data mapping review', false, NULL, NULL);
END $$;
