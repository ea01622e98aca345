/* vtest.c: see vtest.h. */
#include "vtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "support/ctltest.h"
#include "support/dbtest.h"

char vt_out[1 << 17], vt_err[1 << 17];

db_conn *vt_db(void)
{
    static db_conn *c;
    if (c == NULL) {
        const char *url = dbtest_owner_url(); /* the tests' fixtures */
        char err[512];
        c = db_connect(url, 10000, err, sizeof err);
        if (c == NULL) {
            fprintf(stderr, "cannot connect: %s\n", err);
            exit(1);
        }
        PQclear(PQexec(c->pg, "SET client_min_messages = warning"));
    }
    return c;
}

const char *vt_i(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

int64_t vt_q(const char *sql, int n, const char *const *p)
{
    return dbtest_ok(vt_db()->pg, sql, n, p);
}

const char *vt_qt(const char *sql, int n, const char *const *p)
{
    return dbtest_text(vt_db()->pg, sql, n, p);
}

int vt_ctl_env(const char *const *env, const char *const *argv)
{
    return ctltest_argv(vt_out, sizeof vt_out, vt_err, sizeof vt_err, env, argv);
}

int vt_ctl(const char *arg0, ...)
{
    const char *argv[128];
    int n = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a != NULL && n < 127; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return vt_ctl_env(NULL, argv);
}

const char *vt_digest(int64_t firm, char out[33])
{
    const char *p[] = {vt_i(firm)};
    const char *d = vt_qt(
        "SELECT md5(coalesce(string_agg(t, '|' ORDER BY t), '')) FROM ("
        " SELECT 'c' || row_to_json(x)::text AS t FROM billing.clients x WHERE firm_id = $1"
        " UNION ALL SELECT 'e' || row_to_json(x)::text FROM billing.engagements x WHERE firm_id = "
        "$1"
        " UNION ALL SELECT 'i' || row_to_json(x)::text FROM billing.invoices x WHERE firm_id = $1"
        " UNION ALL SELECT 'l' || row_to_json(x)::text FROM billing.invoice_line_items x"
        "  WHERE firm_id = $1"
        " UNION ALL SELECT 't' || row_to_json(x)::text FROM billing.time_entries x"
        "  WHERE firm_id = $1"
        " UNION ALL SELECT 'a' || row_to_json(x)::text FROM billing.payment_attempts x"
        "  WHERE firm_id = $1"
        " UNION ALL SELECT 'p' || row_to_json(x)::text FROM billing.payments x WHERE firm_id = $1"
        " UNION ALL SELECT 'r' || row_to_json(x)::text FROM billing.refunds x WHERE firm_id = $1"
        " UNION ALL SELECT 'd' || row_to_json(x)::text FROM billing.payment_disputes x"
        "  WHERE firm_id = $1"
        " UNION ALL SELECT 'k' || row_to_json(x)::text FROM billing.credit_ledger x"
        "  WHERE firm_id = $1"
        " UNION ALL SELECT 'v' || row_to_json(x)::text FROM billing.audit_events x"
        "  WHERE firm_id = $1"
        " UNION ALL SELECT 'o' || row_to_json(x)::text FROM billing.outbox x WHERE firm_id = $1"
        ") s",
        1, p);
    snprintf(out, 33, "%s", d ? d : "");
    return out;
}

void vt_seed(vt_firm *f, bool bill_entry)
{
    memset(f, 0, sizeof *f);
    PGconn *pg = vt_db()->pg;
    f->firm = dbtest_firm(pg);
    f->client = dbtest_client(pg, f->firm);
    const char *pe[] = {vt_i(f->firm), vt_i(f->client)};
    f->engagement = vt_q("INSERT INTO billing.engagements (firm_id, client_id, title, pricing_mode,"
                         " package_fee_cents, hourly_rate_cents, start_date)"
                         " VALUES ($1, $2, 'Advisory', 'mixed', 10000, 15000, '2026-01-01')"
                         " RETURNING id",
                         2, pe);
    const char *pt[] = {vt_i(f->firm), vt_i(f->engagement)};
    f->entry_open = vt_q("INSERT INTO billing.time_entries (firm_id, engagement_id, staff,"
                         " work_date, hours) VALUES ($1, $2, 'ann', '2026-01-10', 1.50)"
                         " RETURNING id",
                         2, pt);
    f->entry_billed = vt_q("INSERT INTO billing.time_entries (firm_id, engagement_id, staff,"
                           " work_date, hours, approved, approved_by, approved_at)"
                           " VALUES ($1, $2, 'bob', '2026-01-11', 2.00, true, 'lead', now())"
                           " RETURNING id",
                           2, pt);
    /* The invoice, its lines, time entries, audit and outbox in one
     * transaction, the way `billingctl invoice create` and the invoicing
     * worker write them. */
    const char *pi[] = {vt_i(f->firm), vt_i(f->client), vt_i(f->engagement), vt_i(f->entry_billed),
                        bill_entry ? "t" : "f"};
    f->invoice = vt_q(
        "WITH i AS (INSERT INTO billing.invoices (firm_id, client_id, engagement_id,"
        "  invoice_number, status, subtotal_cents, tax_cents, total_cents, issue_date, due_date)"
        "  VALUES ($1::bigint, $2::bigint, $3::bigint, 'INV-' || $1::bigint || '-000001', 'sent',"
        "   CASE WHEN $5::boolean THEN 40000 ELSE 10000 END, 0,"
        "   CASE WHEN $5::boolean THEN 40000 ELSE 10000 END, '2026-02-01', '2026-03-03')"
        "  RETURNING *),"
        " l1 AS (INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type,"
        "  description, quantity, rate_cents, amount_cents)"
        "  SELECT id, firm_id, 'package_fee', 'Package Fee - Advisory', 1, 10000, 10000 FROM i),"
        " l2 AS (INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type,"
        "  description, quantity, rate_cents, amount_cents, time_entry_ids)"
        "  SELECT id, firm_id, 'hourly', 'Consulting hours (2.00h @ 150.00 usd/h)', 2, 15000,"
        "   30000, ARRAY[$4::bigint] FROM i WHERE $5::boolean),"
        " te AS (UPDATE billing.time_entries t SET invoice_id = i.id FROM i"
        "  WHERE t.id = $4::bigint AND $5::boolean),"
        " a AS (SELECT billing.audit(i.firm_id, 'invoice_created', 'INFO', 'tester',"
        "  jsonb_build_object('invoice_id', i.id, 'invoice_number', i.invoice_number)) FROM i),"
        " o AS (INSERT INTO billing.outbox (firm_id, topic, msg_key, payload)"
        "  SELECT firm_id, 'invoices', id::text, jsonb_build_object('type', 'invoice.issued',"
        "  'invoice_id', id, 'firm_id', firm_id) FROM i)"
        " SELECT id FROM i, (SELECT count(*) FROM a) x",
        5, pi);
    const char *pl[] = {vt_i(f->invoice)};
    f->line = vt_q("SELECT min(id) FROM billing.invoice_line_items WHERE invoice_id = $1", 1, pl);
}
