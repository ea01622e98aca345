/* ntest.c: the notifier tests' fixtures (see ntest.h). */
#include "ntest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "ledgerline/date.h"
#include "ledgerline/invoicing.h"
#include "support/dbtest.h"

const char *ntest_i(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

int64_t ntest_firm(PGconn *pg, const char *prefix)
{
    int64_t f = dbtest_firm(pg);
    const char *p[] = {ntest_i(f), prefix};
    dbtest_ok(
        pg,
        "INSERT INTO billing.firm_settings(firm_id, number_prefix, legal_name, address,"
        " tax_id, payment_instructions) VALUES ($1, $2, 'Acme Legal LLP',"
        " E'1 Law Street\\nLondon EC1A 1AA', 'GB123456789',"
        " 'Bank transfer to IBAN GB29 NWBK 6016 1331 9268 19, reference: the invoice number')",
        2, p);
    return f;
}

int64_t ntest_client(PGconn *pg, int64_t firm, const char *name, const char *email)
{
    const char *p[] = {ntest_i(firm), name, email};
    return dbtest_ok(pg,
                     "INSERT INTO billing.clients(firm_id, company_name, primary_contact_email,"
                     " tax_rate_bp) VALUES ($1, $2, $3, 1000) RETURNING id",
                     3, p);
}

int64_t ntest_issued_invoice(PGconn *pg, db_conn *db, int64_t firm, int64_t client, const char *cur,
                             int64_t fee_cents)
{
    const char *pc[] = {ntest_i(client), cur};
    dbtest_ok(pg, "UPDATE billing.clients SET currency = $2 WHERE id = $1", 2, pc);
    const char *p[] = {ntest_i(firm), ntest_i(client), ntest_i(fee_cents)};
    int64_t e =
        dbtest_ok(pg,
                  "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode,"
                  " package_fee_cents, package_fee_schedule, start_date, payment_terms_days)"
                  " VALUES ($1, $2, 'Advisory retainer', 'package', $3, 'monthly',"
                  " '2026-01-01', 30) RETURNING id",
                  3, p);
    invoicing_params ip = {.shard = 0, .shards = 1, .firm_id = firm};
    assert_true(date_parse("2026-03-01", &ip.business_date));
    invoicing_stats st;
    char err[1024];
    if (invoicing_run(db, &ip, &st, err, sizeof err) != DB_OK)
        fail_msg("invoicing_run: %s", err);
    const char *pe[] = {ntest_i(e)};
    return dbtest_ok(pg, "SELECT id FROM billing.invoices WHERE engagement_id = $1", 1, pe);
}

int64_t ntest_credit_note(PGconn *pg, int64_t invoice, int64_t total_cents)
{
    const char *p[] = {ntest_i(invoice), ntest_i(total_cents)};
    return dbtest_ok(pg,
                     "SELECT credit_note_id FROM billing.create_credit_note($1, $2, NULL,"
                     " 'credit', 'discount agreed', 'F. Controller', '2026-03-10')",
                     2, p);
}
