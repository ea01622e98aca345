/* test_invoicing.c: the rules of BILLING_RULES sections 2, 3 and 9 with
 * their edges, through a real billing-invoicing-worker process and the dev
 * broker: each run publishes a firm-scoped invoicing tick (ticks API) and
 * waits until the worker has handled it (tests/support/invworker.h), then the
 * test asserts rows. One worker serves the whole program, on a topic prefix
 * of its own; each test makes its own firm, so tests never see each other's
 * rows. The dry run (billingctl --dry-run's invoicing_preview_run) and the
 * batch keyset are exercised in-process: the worker has no knob for them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/db.h"
#include "ledgerline/envelope.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "ledgerline/topics.h"
#include "support/dbtest.h"
#include "support/invworker.h"
#include "support/kafkatest.h"

/* Shards per tick: several, so that every run also crosses shards. */
#define TEST_SHARDS 4

static db_conn *db;
static PGconn *pg;
static invworker *worker;

#define I64(v) db_i64((v), (char[24]){0}, 24)

static int setup(void **state)
{
    (void)state;
    pg = dbtest_connect();
    const char *url = getenv("DATABASE_URL");
    char err[256];
    db = db_connect(url, 0, err, sizeof err);
    log_init("test_invoicing");
    log_set_level(LL_LOG_WARN);
    if (db == NULL)
        return -1;
    worker = invworker_start(LL_INVOICING_WORKER_BIN, "invt", pg, TEST_SHARDS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = invworker_stop(worker);
    db_close(db);
    PQfinish(pg);
    if (rc != 0) {
        fprintf(stderr, "billing-invoicing-worker exited with %d on SIGTERM\n", rc);
        return -1;
    }
    return 0;
}

static int64_t client_new(int64_t firm, int tax_bp, bool autopay, const char *pm)
{
    const char *p[] = {I64(firm), I64(tax_bp), autopay ? "true" : "false", pm};
    return dbtest_ok(pg,
                     "INSERT INTO billing.clients(firm_id, company_name, tax_rate_bp,"
                     " autopay_enabled, autopay_payment_method_id)"
                     " VALUES ($1, 'Client', $2, $3, $4) RETURNING id",
                     4, p);
}

/* fee / rate 0 = NULL; end NULL = open-ended. */
static int64_t eng_new(int64_t firm, int64_t client, const char *mode, int64_t fee,
                       const char *schedule, int64_t rate, bool prorate, const char *start,
                       const char *end)
{
    char f[24], r[24];
    const char *p[] = {I64(firm),
                       I64(client),
                       mode,
                       fee ? db_i64(fee, f, sizeof f) : NULL,
                       schedule,
                       rate ? db_i64(rate, r, sizeof r) : NULL,
                       prorate ? "true" : "false",
                       start,
                       end};
    return dbtest_ok(pg,
                     "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode,"
                     " package_fee_cents, package_fee_schedule, hourly_rate_cents,"
                     " prorate_partial_periods, start_date, end_date)"
                     " VALUES ($1, $2, 'Retainer', $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                     9, p);
}

static int64_t entry_new(int64_t firm, int64_t eng, const char *date, const char *hours,
                         int64_t rate, bool approved)
{
    char r[24];
    const char *p[] = {I64(firm),
                       I64(eng),
                       date,
                       hours,
                       rate ? db_i64(rate, r, sizeof r) : NULL,
                       approved ? "true" : "false"};
    return dbtest_ok(pg,
                     "INSERT INTO billing.time_entries(firm_id, engagement_id, staff, work_date,"
                     " hours, hourly_rate_cents, approved) VALUES ($1, $2, 'ann', $3, $4, $5, $6)"
                     " RETURNING id",
                     6, p);
}

static int64_t firm_invoices(int64_t firm);

/* One tick for the firm through the worker; returns the invoices it created
 * (the firm's invoice count before and after: firm-scoped ticks touch no
 * other firm, and each test has its own firm). */
static int64_t run(int64_t firm, const char *date)
{
    int64_t before = firm_invoices(firm);
    invworker_tick(worker, firm, date);
    return firm_invoices(firm) - before;
}

static int64_t count(const char *sql, int64_t id)
{
    const char *p[] = {I64(id)};
    return dbtest_ok(pg, sql, 1, p);
}

static int64_t firm_invoices(int64_t firm)
{
    return count("SELECT count(*) FROM billing.invoices WHERE firm_id = $1", firm);
}

/* A column of the engagement's single auto invoice, as text. */
static const char *inv_col(int64_t eng, const char *expr)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT (%s)::text FROM billing.invoices WHERE engagement_id = $1"
             " ORDER BY period_start DESC LIMIT 1",
             expr);
    const char *p[] = {I64(eng)};
    const char *v = dbtest_text(pg, sql, 1, p);
    return v ? v : "(null)";
}

/* invoice.issued events for the invoice on the worker's <prefix>invoices
 * topic (its outbox relay publishes there), read until the topic is drained. */
static int issued_events(int64_t inv, int64_t firm)
{
    char topic[160], err[512];
    snprintf(topic, sizeof topic, "%sinvoices", invworker_prefix(worker));
    rd_kafka_t *rk = kafkatest_reader(getenv("KAFKA_BROKERS"), topic);
    int found = 0, idle = 0;
    time_t deadline = time(NULL) + 60;
    while (time(NULL) < deadline && !(found > 0 && idle >= 10)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            idle++;
            continue;
        }
        idle = 0;
        invoice_event e;
        if (m->err == 0 && invoice_event_parse(m->payload, m->len, &e, err, sizeof err) == 0 &&
            e.invoice_id == inv && e.firm_id == firm && e.type == INVOICE_EVENT_ISSUED) {
            char key[24];
            snprintf(key, sizeof key, "%lld", (long long)inv);
            assert_int_equal(m->key_len, strlen(key));
            assert_memory_equal(m->key, key, m->key_len);
            found++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

static void test_monthly_package_invoice(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 825, true, "pm_card_visa");
    int64_t eng = eng_new(firm, client, "package", 100010, "monthly", 0, false, "2026-01-01", NULL);
    const char *pp[] = {I64(eng)};
    dbtest_ok(pg,
              "UPDATE billing.engagements SET payment_terms_days = 15, autopay_cadence = 'on_due'"
              " WHERE id = $1",
              1, pp);

    assert_int_equal(run(firm, "2026-11-24"), 1);
    char want[64];
    snprintf(want, sizeof want, "PKG-%lld-2026-11-01", (long long)eng);
    assert_string_equal(inv_col(eng, "invoice_number"), want);
    assert_string_equal(inv_col(eng, "status"), "sent");
    assert_string_equal(inv_col(eng, "issue_date"), "2026-11-24");
    assert_string_equal(inv_col(eng, "due_date"), "2026-12-09");
    assert_string_equal(inv_col(eng, "period_start || ' ' || period_end"), "2026-11-01 2026-11-30");
    /* 100010 x 8.25% = 8250.825 -> 8251 */
    assert_string_equal(inv_col(eng, "subtotal_cents || ' ' || tax_cents || ' ' || total_cents"),
                        "100010 8251 108261");
    assert_string_equal(inv_col(eng, "is_auto_generated || ' ' || autopay_opt_in || ' ' ||"
                                     " autopay_payment_method_id || ' ' || autopay_cadence"),
                        "true true pm_card_visa on_due");
    int64_t inv = strtoll(inv_col(eng, "id"), NULL, 10);
    const char *lp[] = {I64(inv)};
    assert_string_equal(dbtest_text(pg,
                                    "SELECT line_type || '|' || description || '|' || amount_cents"
                                    " FROM billing.invoice_line_items WHERE invoice_id = $1",
                                    1, lp),
                        "package_fee|Package Fee - Retainer|100010");
    assert_int_equal(
        count("SELECT count(*) FROM billing.invoice_line_items WHERE invoice_id = $1", inv), 1);
    /* audit */
    assert_int_equal(
        count("SELECT count(*) FROM billing.audit_events WHERE action ="
              " 'package_invoice_auto_generated' AND (metadata->>'invoice_id')::bigint = $1",
              inv),
        1);
    /* outbox: unprefixed topic, key = invoice id, payload = the contract's event */
    snprintf(want, sizeof want, "invoices %lld", (long long)inv);
    assert_string_equal(dbtest_text(pg,
                                    "SELECT topic || ' ' || msg_key FROM billing.outbox"
                                    " WHERE payload->>'invoice_id' = $1::text",
                                    1, lp),
                        want);
    const char *payload = dbtest_text(
        pg, "SELECT payload::text FROM billing.outbox WHERE payload->>'invoice_id' = $1::text", 1,
        lp);
    invoice_event ev;
    char err[256];
    assert_int_equal(invoice_event_parse(payload, strlen(payload), &ev, err, sizeof err), 0);
    assert_int_equal(ev.type, INVOICE_EVENT_ISSUED);
    assert_int_equal(ev.invoice_id, inv);
    assert_int_equal(ev.firm_id, firm);
    assert_int_equal(ev.client_id, client);
    assert_int_equal(ev.total_cents, 108261);
    snprintf(want, sizeof want, "invoice.issued:%lld", (long long)inv);
    assert_string_equal(ev.idempotency_key, want);

    /* The same day again, and a later day of the same month: nothing new. */
    assert_int_equal(run(firm, "2026-11-24"), 0);
    assert_int_equal(run(firm, "2026-11-30"), 0);
    assert_int_equal(firm_invoices(firm), 1);
    assert_int_equal(count("SELECT count(*) FROM billing.outbox WHERE firm_id = $1", firm), 1);
    assert_int_equal(count("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1", firm),
                     1);
    /* next month: a new invoice */
    assert_int_equal(run(firm, "2026-12-01"), 1);
    /* the worker's relay put invoice.issued on the topic once (the same tick
     * three times, keyed by invoice id) */
    assert_int_equal(issued_events(inv, firm), 1);
}

static void test_schedules(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 0, false, NULL);
    int64_t q = eng_new(firm, client, "package", 300000, "quarterly", 0, false, "2025-01-01", NULL);
    int64_t a = eng_new(firm, client, "package", 1200000, "annual", 0, false, "2025-01-01", NULL);
    int64_t o =
        eng_new(firm, client, "package", 500000, "one_time", 0, false, "2026-09-15", "2027-03-31");
    int64_t no_end =
        eng_new(firm, client, "package", 500000, "one_time", 0, false, "2026-09-15", NULL);
    assert_int_equal(run(firm, "2026-11-24"), 3);
    assert_string_equal(inv_col(q, "period_start || ' ' || period_end || ' ' || total_cents"),
                        "2026-10-01 2026-12-31 300000");
    assert_string_equal(inv_col(a, "period_start || ' ' || period_end || ' ' || total_cents"),
                        "2026-01-01 2026-12-31 1200000");
    assert_string_equal(inv_col(o, "period_start || ' ' || period_end || ' ' || total_cents"),
                        "2026-09-15 2027-03-31 500000");
    assert_int_equal(
        count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", no_end), 0);
    /* one_time once across months; quarter and year boundaries */
    assert_int_equal(run(firm, "2026-12-31"), 0);
    assert_int_equal(run(firm, "2027-01-01"), 2); /* Q1 2027 and year 2027 */
    assert_string_equal(inv_col(q, "period_start || ' ' || period_end"), "2027-01-01 2027-03-31");
    assert_string_equal(inv_col(a, "period_start || ' ' || period_end"), "2027-01-01 2027-12-31");
    assert_int_equal(run(firm, "2027-02-15"), 0);
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", o), 1);
}

static void test_clipping_and_proration(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 0, false, NULL);
    /* starts 11-08: 23 of 30 days */
    int64_t pr = eng_new(firm, client, "package", 100000, "monthly", 0, true, "2026-11-08", NULL);
    int64_t full =
        eng_new(firm, client, "package", 100000, "monthly", 0, false, "2026-11-08", NULL);
    /* ends 11-20: 20 of 30 days */
    int64_t end =
        eng_new(firm, client, "package", 100000, "monthly", 0, true, "2026-01-01", "2026-11-20");
    /* leap February: 15 of 29 days */
    int64_t leap = eng_new(firm, client, "package", 29000, "monthly", 0, true, "2028-02-15", NULL);
    /* not started, ended before the period began, not current */
    int64_t later =
        eng_new(firm, client, "package", 100000, "monthly", 0, false, "2026-11-25", NULL);
    int64_t ended =
        eng_new(firm, client, "package", 100000, "monthly", 0, false, "2026-01-01", "2026-10-31");
    int64_t done =
        eng_new(firm, client, "package", 100000, "monthly", 0, false, "2026-01-01", NULL);
    const char *dp[] = {I64(done)};
    dbtest_ok(pg, "UPDATE billing.engagements SET status = 'completed' WHERE id = $1", 1, dp);

    assert_int_equal(run(firm, "2026-11-24"), 3);
    assert_string_equal(inv_col(pr, "period_start || ' ' || period_end || ' ' || total_cents"),
                        "2026-11-08 2026-11-30 76667"); /* 76666.67 */
    assert_string_equal(inv_col(full, "period_start || ' ' || total_cents"), "2026-11-08 100000");
    assert_string_equal(inv_col(end, "period_start || ' ' || period_end || ' ' || total_cents"),
                        "2026-11-01 2026-11-20 66667"); /* 66666.67 */
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", later),
                     0);
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", ended),
                     0);
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", done),
                     0);
    /* after its end: the engagement ended before December began */
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", end),
                     1);
    assert_int_equal(run(firm, "2028-02-20"), 4); /* pr, full, leap, later */
    assert_string_equal(inv_col(leap, "period_start || ' ' || period_end || ' ' || total_cents"),
                        "2028-02-15 2028-02-29 15000");
}

static void test_hourly_arrears(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 0, false, NULL);
    int64_t eng = eng_new(firm, client, "hourly", 0, "monthly", 15000, false, "2026-01-01", NULL);
    int64_t idle = eng_new(firm, client, "hourly", 0, "monthly", 15000, false, "2026-01-01", NULL);
    int64_t e1 = entry_new(firm, eng, "2026-10-10", "5.00", 0, true);
    int64_t e2 = entry_new(firm, eng, "2026-10-11", "5", 0, true);
    int64_t e3 = entry_new(firm, eng, "2026-10-12", "2.50", 20000, true);
    int64_t e4 = entry_new(firm, eng, "2026-10-14", "0.50", 12345, true); /* 6172.5 -> 6173 */
    int64_t unapproved = entry_new(firm, eng, "2026-10-13", "3.00", 0, false);
    int64_t current = entry_new(firm, eng, "2026-11-05", "4.00", 0, true);
    entry_new(firm, idle, "2026-10-13", "3.00", 0, false); /* unapproved only */

    assert_int_equal(run(firm, "2026-11-24"), 1);
    char want[64];
    snprintf(want, sizeof want, "HRS-%lld-2026-11-01", (long long)eng);
    assert_string_equal(inv_col(eng, "invoice_number"), want);
    assert_string_equal(inv_col(eng, "total_cents"), "206173");
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", idle),
                     0);
    int64_t inv = strtoll(inv_col(eng, "id"), NULL, 10);
    const char *p[] = {I64(inv)};
    char lines[512];
    snprintf(lines, sizeof lines,
             "hourly|Consulting hours (0.50h @ 123.45 usd/h)|0.50|12345|6173|{%lld};"
             "hourly|Consulting hours (10.00h @ 150.00 usd/h)|10.00|15000|150000|{%lld,%lld};"
             "hourly|Consulting hours (2.50h @ 200.00 usd/h)|2.50|20000|50000|{%lld}",
             (long long)e4, (long long)e1, (long long)e2, (long long)e3);
    assert_string_equal(
        dbtest_text(pg,
                    "SELECT string_agg(line_type || '|' || description || '|' || quantity || '|' ||"
                    " rate_cents || '|' || amount_cents || '|' || time_entry_ids::text, ';'"
                    " ORDER BY rate_cents) FROM billing.invoice_line_items WHERE invoice_id = $1",
                    1, p),
        lines);
    assert_int_equal(count("SELECT count(*) FROM billing.time_entries WHERE invoice_id = $1", inv),
                     4);
    assert_int_equal(count("SELECT count(*) FROM billing.time_entries WHERE id = $1 AND invoice_id"
                           " IS NULL",
                           unapproved),
                     1);
    assert_int_equal(count("SELECT count(*) FROM billing.time_entries WHERE id = $1 AND invoice_id"
                           " IS NULL",
                           current),
                     1);
    assert_int_equal(count("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1 AND"
                           " action = 'hourly_invoice_auto_generated'",
                           firm),
                     1);
    /* approved later: billed with the November entry in December */
    const char *up[] = {I64(unapproved)};
    dbtest_ok(pg,
              "UPDATE billing.time_entries SET approved = true, approved_by = 'boss' WHERE id = $1",
              1, up);
    assert_int_equal(run(firm, "2026-12-01"), 1);
    assert_string_equal(inv_col(eng, "period_start || ' ' || total_cents"), "2026-12-01 105000");
    assert_int_equal(run(firm, "2026-12-02"), 0);
}

static void test_mixed_invoice(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 1000, false, NULL);
    int64_t eng =
        eng_new(firm, client, "mixed", 50000, "monthly", 10000, false, "2026-01-01", NULL);
    entry_new(firm, eng, "2026-10-30", "2.00", 0, true);
    entry_new(firm, eng, "2026-10-31", "1.00", 30000, true);
    assert_int_equal(run(firm, "2026-11-24"), 1);
    char want[64];
    snprintf(want, sizeof want, "PKG-%lld-2026-11-01", (long long)eng);
    assert_string_equal(inv_col(eng, "invoice_number"), want);
    assert_string_equal(inv_col(eng, "subtotal_cents || ' ' || tax_cents || ' ' || total_cents"),
                        "100000 10000 110000");
    int64_t inv = strtoll(inv_col(eng, "id"), NULL, 10);
    const char *p[] = {I64(inv)};
    assert_string_equal(
        dbtest_text(pg,
                    "SELECT string_agg(line_type || ':' || amount_cents, ','"
                    " ORDER BY id) FROM billing.invoice_line_items WHERE invoice_id = $1",
                    1, p),
        "package_fee:50000,hourly:20000,hourly:30000");
    /* a mixed engagement without entries still gets its package invoice */
    assert_int_equal(run(firm, "2026-12-01"), 1);
    assert_string_equal(inv_col(eng, "total_cents"), "55000");
}

/* A client billed in cur (a currency column the invoicing SQL copies). */
static int64_t client_in(int64_t firm, int tax_bp, const char *cur)
{
    int64_t client = client_new(firm, tax_bp, false, NULL);
    const char *p[] = {cur, I64(client)};
    dbtest_ok(pg, "UPDATE billing.clients SET currency = $1 WHERE id = $2", 2, p);
    return client;
}

/* "description|amount;..." of the invoice's lines, by rate. */
static const char *lines_of(int64_t eng)
{
    int64_t inv = strtoll(inv_col(eng, "id"), NULL, 10);
    const char *p[] = {I64(inv)};
    return dbtest_text(pg,
                       "SELECT string_agg(description || '|' || amount_cents, ';'"
                       " ORDER BY rate_cents) FROM billing.invoice_line_items"
                       " WHERE invoice_id = $1",
                       1, p);
}

/* Rule 11.13: in kwd (three decimals), every amount the worker writes is
 * rounded half up to a multiple of 10 fils, once, from the exact value:
 * prorated and full package fees, hourly lines, tax and totals; rates are
 * written with three decimals. The dry run says the same. The database
 * refuses a line of 1005 fils on such an invoice. */
static void test_three_decimal_currency(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_in(firm, 825, "kwd");
    /* 23 of 30 days: 100000 x 23/30 = 76666.67 -> 76670 */
    int64_t up = eng_new(firm, client, "package", 100000, "monthly", 0, true, "2026-11-08", NULL);
    /* 15 of 30 days: 2009 x 15/30 = 1004.5 -> 1000 (not 1005 -> 1010) */
    int64_t half = eng_new(firm, client, "package", 2009, "monthly", 0, true, "2026-11-16", NULL);
    /* a full period: the fee itself, 100005 -> 100010 */
    int64_t full =
        eng_new(firm, client, "package", 100005, "monthly", 0, false, "2026-01-01", NULL);
    int64_t hrs = eng_new(firm, client, "hourly", 0, "monthly", 150000, false, "2026-01-01", NULL);
    entry_new(firm, hrs, "2026-10-01", "6.00", 0, true);
    entry_new(firm, hrs, "2026-10-02", "4.00", 0, true);    /* 10.00h x 150.000 = 1500000 */
    entry_new(firm, hrs, "2026-10-03", "1.50", 1003, true); /* 1504.5 -> 1500 */
    entry_new(firm, hrs, "2026-10-04", "0.50", 2011, true); /* 1005.5 -> 1010 */

    invoicing_params p = {.shard = 0, .shards = 1, .firm_id = firm};
    assert_true(date_parse("2026-11-24", &p.business_date));
    invoicing_preview pv;
    char err[512];
    assert_int_equal(invoicing_preview_run(db, &p, &pv, err, sizeof err), DB_OK);
    assert_int_equal(pv.count, 4);

    assert_int_equal(run(firm, "2026-11-24"), 4);
    /* tax 8.25%: 76670 -> 6325.275 -> 6330 */
    assert_string_equal(inv_col(up, "currency || ' ' || subtotal_cents || ' ' || tax_cents || ' '"
                                    " || total_cents"),
                        "kwd 76670 6330 83000");
    assert_string_equal(lines_of(up), "Package Fee - Retainer|76670");
    /* 1000 -> 82.5 -> 80 */
    assert_string_equal(inv_col(half, "subtotal_cents || ' ' || tax_cents || ' ' || total_cents"),
                        "1000 80 1080");
    /* 100010 -> 8250.825 -> 8250 */
    assert_string_equal(inv_col(full, "subtotal_cents || ' ' || tax_cents || ' ' || total_cents"),
                        "100010 8250 108260");
    assert_string_equal(lines_of(full), "Package Fee - Retainer|100010");
    assert_string_equal(lines_of(hrs), "Consulting hours (1.50h @ 1.003 kwd/h)|1500;"
                                       "Consulting hours (0.50h @ 2.011 kwd/h)|1010;"
                                       "Consulting hours (10.00h @ 150.000 kwd/h)|1500000");
    /* 1502510 -> 123957.075 -> 123960 */
    assert_string_equal(inv_col(hrs, "subtotal_cents || ' ' || tax_cents || ' ' || total_cents"),
                        "1502510 123960 1626470");
    /* Nothing the worker wrote for the firm is off the granularity, and the
     * outbox event carries the rounded total. */
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE firm_id = $1 AND"
                           " (subtotal_cents % 10 <> 0 OR tax_cents % 10 <> 0"
                           "  OR total_cents % 10 <> 0)",
                           firm),
                     0);
    assert_int_equal(count("SELECT count(*) FROM billing.invoice_line_items WHERE firm_id = $1"
                           " AND amount_cents % 10 <> 0",
                           firm),
                     0);
    assert_int_equal(count("SELECT count(*) FROM billing.outbox WHERE firm_id = $1 AND"
                           " (payload->>'total_cents')::bigint = 1626470",
                           firm),
                     1);
    /* The dry run announced exactly these. */
    for (size_t i = 0; i < pv.count; i++) {
        const char *q[] = {I64(firm), pv.rows[i].invoice_number};
        char want[128];
        snprintf(want, sizeof want, "%s %lld %lld %lld", pv.rows[i].currency,
                 (long long)pv.rows[i].subtotal_cents, (long long)pv.rows[i].tax_cents,
                 (long long)pv.rows[i].total_cents);
        assert_string_equal(dbtest_text(pg,
                                        "SELECT currency || ' ' || subtotal_cents || ' ' ||"
                                        " tax_cents || ' ' || total_cents FROM billing.invoices"
                                        " WHERE firm_id = $1 AND invoice_number = $2",
                                        2, q),
                            want);
    }
    invoicing_preview_free(&pv);

    /* A line of 1005 fils on a kwd invoice: refused by the database. */
    const char *pl[] = {inv_col(full, "id")};
    dbtest_refused(pg, "rule 11.13 (three-decimal currencies)",
                   "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type,"
                   " description, amount_cents)"
                   " SELECT id, firm_id, 'adjustment', 'extra', 1005 FROM billing.invoices"
                   " WHERE id = $1::bigint",
                   1, pl);
    assert_int_equal(count("SELECT count(*) FROM billing.invoice_line_items WHERE firm_id = $1"
                           " AND amount_cents = 1005",
                           firm),
                     0);
}

/* jpy (zero decimals, granularity 1): amounts to the yen, as before rule
 * 11.13; rates are written without decimals ("15000 jpy/h"). */
static void test_zero_decimal_currency_unchanged(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_in(firm, 825, "jpy");
    int64_t pr = eng_new(firm, client, "package", 100000, "monthly", 0, true, "2026-11-08", NULL);
    int64_t full =
        eng_new(firm, client, "package", 100005, "monthly", 0, false, "2026-01-01", NULL);
    int64_t hrs = eng_new(firm, client, "hourly", 0, "monthly", 15000, false, "2026-01-01", NULL);
    entry_new(firm, hrs, "2026-10-01", "10.00", 0, true);
    entry_new(firm, hrs, "2026-10-02", "0.50", 12345, true); /* 6172.5 -> 6173 */
    assert_int_equal(run(firm, "2026-11-24"), 3);
    /* 76666.67 -> 76667; tax 6325.0275 -> 6325 */
    assert_string_equal(inv_col(pr, "currency || ' ' || subtotal_cents || ' ' || tax_cents || ' '"
                                    " || total_cents"),
                        "jpy 76667 6325 82992");
    /* 100005; tax 8250.4125 -> 8250 */
    assert_string_equal(inv_col(full, "subtotal_cents || ' ' || tax_cents || ' ' || total_cents"),
                        "100005 8250 108255");
    assert_string_equal(lines_of(hrs), "Consulting hours (0.50h @ 12345 jpy/h)|6173;"
                                       "Consulting hours (10.00h @ 15000 jpy/h)|150000");
    /* 156173; tax 12884.2725 -> 12884 */
    assert_string_equal(inv_col(hrs, "subtotal_cents || ' ' || tax_cents || ' ' || total_cents"),
                        "156173 12884 169057");
}

static void test_firm_scoping(void **state)
{
    (void)state;
    int64_t a = dbtest_firm(pg), b = dbtest_firm(pg);
    eng_new(a, client_new(a, 0, false, NULL), "package", 1000, "monthly", 0, false, "2026-01-01",
            NULL);
    eng_new(b, client_new(b, 0, false, NULL), "package", 1000, "monthly", 0, false, "2026-01-01",
            NULL);
    assert_int_equal(run(a, "2026-11-24"), 1);
    assert_int_equal(firm_invoices(a), 1);
    assert_int_equal(firm_invoices(b), 0);
}

static void test_dry_run_equals_real_run(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 725, false, NULL);
    int64_t m = eng_new(firm, client, "mixed", 50000, "quarterly", 10000, true, "2026-11-10", NULL);
    int64_t h = eng_new(firm, client, "hourly", 0, "monthly", 12500, false, "2026-01-01", NULL);
    eng_new(firm, client, "package", 7000, "monthly", 0, false, "2026-01-01", NULL);
    eng_new(firm, client, "hourly", 0, "monthly", 12500, false, "2026-01-01", NULL); /* nothing */
    entry_new(firm, m, "2026-11-01", "1.25", 0, true);
    entry_new(firm, h, "2026-10-01", "3.33", 0, true);

    invoicing_params p = {.shard = 0, .shards = 1, .firm_id = firm, .batch_size = 3};
    assert_true(date_parse("2026-12-15", &p.business_date));
    invoicing_preview pv;
    char err[512];
    assert_int_equal(invoicing_preview_run(db, &p, &pv, err, sizeof err), DB_OK);
    assert_int_equal(pv.count, 3);
    assert_int_equal(firm_invoices(firm), 0);
    assert_int_equal(count("SELECT count(*) FROM billing.audit_events WHERE firm_id = $1", firm),
                     0);
    assert_int_equal(count("SELECT count(*) FROM billing.outbox WHERE firm_id = $1", firm), 0);
    assert_int_equal(count("SELECT count(*) FROM billing.time_entries WHERE firm_id = $1 AND"
                           " invoice_id IS NOT NULL",
                           firm),
                     0);

    assert_int_equal(run(firm, "2026-12-15"), 3);
    for (size_t i = 0; i < pv.count; i++) {
        const invoicing_preview_row *r = &pv.rows[i];
        const char *q[] = {I64(firm), r->invoice_number};
        char got[256], want[256];
        snprintf(got, sizeof got, "%s",
                 dbtest_text(pg,
                             "SELECT engagement_id || ' ' || period_start || ' ' || period_end"
                             " || ' ' || subtotal_cents || ' ' || tax_cents || ' ' || total_cents"
                             " FROM billing.invoices WHERE firm_id = $1 AND invoice_number = $2",
                             2, q));
        snprintf(want, sizeof want, "%lld %s %s %lld %lld %lld", (long long)r->engagement_id,
                 r->period_start, r->period_end, (long long)r->subtotal_cents,
                 (long long)r->tax_cents, (long long)r->total_cents);
        assert_string_equal(got, want);
    }
    invoicing_preview_free(&pv);
    /* after the real run the dry run has nothing left */
    assert_int_equal(invoicing_preview_run(db, &p, &pv, err, sizeof err), DB_OK);
    assert_int_equal(pv.count, 0);
    invoicing_preview_free(&pv);
}

static void test_two_shards_partition(void **state)
{
    (void)state;
    /* An invoicing shard is a set of firms (firm id mod shards): the other
     * shard of two invoices none of this firm's engagements, its own all. */
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 0, false, NULL);
    for (int i = 0; i < 7; i++)
        eng_new(firm, client, "package", 1000 + i, "monthly", 0, false, "2026-01-01", NULL);
    int own = (int)(firm % 2);
    invworker_tick_shard(worker, firm, "2026-11-24", 1 - own, 2);
    assert_int_equal(firm_invoices(firm), 0);
    invworker_tick_shard(worker, firm, "2026-11-24", own, 2);
    assert_int_equal(firm_invoices(firm), 7);
    assert_int_equal(count("SELECT count(DISTINCT engagement_id) FROM billing.invoices"
                           " WHERE firm_id = $1",
                           firm),
                     7);
}

/* Batches (keyset over engagement id) in-process, with batches of 2: every
 * engagement invoiced once, the same rows as one batch would make. */
static void test_batches_cover_each_engagement_once(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 500, false, NULL);
    for (int i = 0; i < 7; i++)
        eng_new(firm, client, i % 3 == 0 ? "mixed" : "package", 1000 + i, "monthly",
                i % 3 == 0 ? 10000 : 0, false, "2026-01-01", NULL);
    invoicing_params p = {.shard = 0, .shards = 1, .firm_id = firm, .batch_size = 2};
    assert_true(date_parse("2026-11-24", &p.business_date));
    invoicing_stats st;
    char err[1024];
    if (invoicing_run(db, &p, &st, err, sizeof err) != DB_OK)
        fail_msg("invoicing_run: %s", err);
    assert_int_equal(st.engagements, 7);
    assert_int_equal(st.invoices, 7);
    assert_int_equal(st.batches, 4); /* 2 + 2 + 2 + 1 */
    assert_int_equal(count("SELECT count(DISTINCT engagement_id) FROM billing.invoices"
                           " WHERE firm_id = $1",
                           firm),
                     7);
    assert_int_equal(invoicing_run(db, &p, &st, err, sizeof err), DB_OK);
    assert_int_equal(st.invoices, 0);
}

/* ---- periods: the invoicing SQL against date.c -------------------------------- */

/* Scheduled invoicing computes periods and prorated fees in SQL
 * (common/invoicing.c: the CTEs of sql/queries/invoicing_insert.sql); date.c's period_for_date /
 * period_fee state the same rules in C. This holds the two together: seeded random package
 * engagements (every schedule, prorated or not, open-ended or not, some starting or ending
 * mid-period, across a leap February and quarter and year ends) get a tick every day; after each
 * day every engagement date.c calls billable has exactly date.c's period and fee on an invoice, and
 * at the end no engagement has an invoice date.c never asked for. */
#define PERIOD_ENGAGEMENTS 24

static uint32_t period_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

typedef struct {
    int64_t id;
    billing_schedule schedule;
    civil_date start, end;
    bool has_end, prorate;
    int64_t fee;
    int periods; /* distinct periods date.c billed */
    civil_date last_start;
} period_case;

static void test_periods_agree_with_date_c(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 0, false, NULL);
    uint32_t seed = 20261207;
    civil_date first, last;
    assert_true(date_parse("2027-11-20", &first));
    assert_true(date_parse("2028-04-10", &last));
    period_case e[PERIOD_ENGAGEMENTS];
    for (int i = 0; i < PERIOD_ENGAGEMENTS; i++) {
        period_case *c = &e[i];
        memset(c, 0, sizeof *c);
        c->schedule = (billing_schedule)(i % 4);
        c->start = date_add_days(first, (int32_t)(period_rand(&seed) % 200) - 120);
        c->has_end = c->schedule == SCHEDULE_ONE_TIME ? i % 8 != 3 : period_rand(&seed) % 2 == 0;
        c->end = date_add_days(c->start, (int32_t)(period_rand(&seed) % 260));
        c->prorate = period_rand(&seed) % 2 == 0;
        c->fee = 1000 + (int64_t)(period_rand(&seed) % 900000);
        char s1[11], s2[11];
        c->id = eng_new(firm, client, "package", c->fee, schedule_name(c->schedule), 0, c->prorate,
                        date_format(c->start, s1, sizeof s1),
                        c->has_end ? date_format(c->end, s2, sizeof s2) : NULL);
    }
    char err[1024];
    for (civil_date d = first; d.days <= last.days; d = date_add_days(d, 1)) {
        invoicing_params p = {.shard = 0, .shards = 1, .firm_id = firm, .business_date = d};
        invoicing_stats st;
        if (invoicing_run(db, &p, &st, err, sizeof err) != DB_OK)
            fail_msg("invoicing_run: %s", err);
        for (int i = 0; i < PERIOD_ENGAGEMENTS; i++) {
            period_case *c = &e[i];
            billing_period bp;
            if (period_for_date(c->schedule, d, c->start, c->has_end ? &c->end : NULL, &bp) !=
                PERIOD_OK)
                continue;
            int64_t fee = 0;
            assert_int_equal(period_fee(&bp, c->fee, c->prorate, &fee), MONEY_OK);
            if (c->periods == 0 || c->last_start.days != bp.start.days) {
                c->periods++;
                c->last_start = bp.start;
            }
            char ps[11], pe[11], want[64];
            snprintf(want, sizeof want, "%s %s %lld", date_format(bp.start, ps, sizeof ps),
                     date_format(bp.end, pe, sizeof pe), (long long)fee);
            char sql[] = "SELECT count(*) FROM billing.invoices WHERE engagement_id = $1"
                         " AND period_start || ' ' || period_end || ' ' || total_cents = $2";
            const char *qp[] = {I64(c->id), want};
            if (dbtest_ok(pg, sql, 2, qp) != 1) {
                char day[11];
                fail_msg("engagement %lld (%s%s, %s .. %s) on %s: date.c bills %s, the invoices"
                         " say otherwise",
                         (long long)c->id, schedule_name(c->schedule),
                         c->prorate ? ", prorated" : "", date_format(c->start, ps, sizeof ps),
                         c->has_end ? date_format(c->end, pe, sizeof pe) : "open",
                         date_format(d, day, sizeof day), want);
            }
        }
    }
    int billed = 0;
    for (int i = 0; i < PERIOD_ENGAGEMENTS; i++) {
        assert_int_equal(
            count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", e[i].id),
            e[i].periods);
        billed += e[i].periods > 0;
    }
    /* The seed must exercise something: most engagements billed at least once. */
    assert_true(billed >= PERIOD_ENGAGEMENTS / 2);
}

/* ---- renewal ------------------------------------------------------------- */

/* billingctl --json engagement renew ENG --package-fee-cents FEE --by test;
 * returns its exit status and the new engagement's id. */
static int ctl_renew(int64_t eng, const char *fee, int64_t *new_id)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        setenv("LOG_LEVEL", "warn", 1);
        execl(LL_BILLINGCTL_BIN, LL_BILLINGCTL_BIN, "--json", "engagement", "renew", I64(eng),
              "--package-fee-cents", fee, "--by", "test", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char out[512];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof out - 1 && (n = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    const char *k = strstr(out, "\"engagement_id\":");
    *new_id = k ? strtoll(k + strlen("\"engagement_id\":"), NULL, 10) : 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_renewal_next_tick_bills_new_terms(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 0, false, NULL);
    int64_t old =
        eng_new(firm, client, "package", 100000, "monthly", 0, false, "2026-01-01", "2026-06-30");

    assert_int_equal(run(firm, "2026-06-10"), 1);
    int64_t old_inv = count("SELECT id FROM billing.invoices WHERE engagement_id = $1", old);
    assert_true(old_inv > 0);
    static const char snap_sql[] =
        "SELECT (SELECT row(i.*)::text FROM billing.invoices i WHERE i.id = $1) || '|' ||"
        " (SELECT string_agg(row(l.*)::text, ';' ORDER BY l.id)"
        "  FROM billing.invoice_line_items l WHERE l.invoice_id = $1)";
    const char *ip[] = {I64(old_inv)};
    char *before = strdup(dbtest_text(pg, snap_sql, 1, ip));
    assert_non_null(before);

    int64_t renewed = 0;
    assert_int_equal(ctl_renew(old, "120000", &renewed), 0);
    assert_true(renewed > 0 && renewed != old);
    assert_string_equal(inv_col(renewed, "period_start"), "(null)");
    const char *rp[] = {I64(renewed)};
    assert_string_equal(dbtest_text(pg,
                                    "SELECT start_date::text FROM billing.engagements"
                                    " WHERE id = $1",
                                    1, rp),
                        "2026-07-01");

    /* the tick of a date in the new engagement's first period */
    assert_int_equal(run(firm, "2026-07-03"), 1);
    assert_int_equal(count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", old),
                     1);
    assert_int_equal(
        count("SELECT count(*) FROM billing.invoices WHERE engagement_id = $1", renewed), 1);
    assert_string_equal(inv_col(renewed, "subtotal_cents"), "120000");
    assert_int_equal(count("SELECT amount_cents FROM billing.invoice_line_items l"
                           " JOIN billing.invoices i ON i.id = l.invoice_id"
                           " WHERE i.engagement_id = $1 AND l.line_type = 'package_fee'",
                           renewed),
                     120000);
    char want[64];
    snprintf(want, sizeof want, "2026-07-01 PKG-%lld-2026-07-01", (long long)renewed);
    assert_string_equal(inv_col(renewed, "period_start::text || ' ' || invoice_number"), want);
    /* the old invoice is exactly as it was */
    assert_string_equal(dbtest_text(pg, snap_sql, 1, ip), before);
    /* and the same tick again creates nothing */
    assert_int_equal(run(firm, "2026-07-03"), 0);
    free(before);
}

/* Dead letters on the worker's <prefix>dlq whose value is one of values[],
 * counted once each and checked for the error naming the key; read until
 * all are seen or 60 s have passed. */
static int forged_dead_letters(char *const *values, int n)
{
    char topic[160];
    snprintf(topic, sizeof topic, "%sdlq", invworker_prefix(worker));
    rd_kafka_t *rk = kafkatest_reader(getenv("KAFKA_BROKERS"), topic);
    bool seen[16] = {false};
    int found = 0;
    time_t deadline = time(NULL) + 60;
    while (found < n && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        for (int i = 0; m->err == 0 && i < n; i++) {
            if (seen[i] || m->len != strlen(values[i]) || memcmp(m->payload, values[i], m->len))
                continue;
            kafka_msg km = {.raw = m};
            const void *v;
            size_t len;
            assert_true(kafka_msg_header(&km, "error", &v, &len));
            char error[512];
            snprintf(error, sizeof error, "%.*s", (int)len, (const char *)v);
            if (strstr(error, "\"idempotency_key\" must be") == NULL)
                fail_msg("dead letter with another error: %s", error);
            seen[i] = true;
            found++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

/* A forged tick (a harmless business date carrying the key of a real tick
 * to come) is dead-lettered, its key is not recorded, and the real tick of
 * that date is applied. Before the key was derived from the fields, the
 * forged tick's key was recorded as applied and December was never billed. */
static void test_forged_tick_dead_lettered(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t client = client_new(firm, 0, false, NULL);
    int64_t eng = eng_new(firm, client, "package", 50000, "monthly", 0, false, "2026-01-01", NULL);

    char err[512], topic[160];
    assert_int_equal(
        topic_name(invworker_prefix(worker), TOPIC_TICKS_INVOICING, topic, sizeof topic), 0);
    kafka_producer *p = kafka_producer_new(getenv("KAFKA_BROKERS"), 10000, err, sizeof err);
    assert_non_null(p);
    char *forged[TEST_SHARDS];
    for (int s = 0; s < TEST_SHARDS; s++) {
        /* Exactly what tick_to_json writes for 2025-06-01 (a date before the
         * engagement: no effect), but with December's key. */
        char key[96], shard[8];
        snprintf(key, sizeof key, "tick:invoicing:2026-12-01:firm-%lld:%d/%d", (long long)firm, s,
                 TEST_SHARDS);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I}", "type", "tick.invoicing",
                              "idempotency_key", key, "business_date", "2025-06-01", "as_of",
                              "2025-06-01T00:00:00Z", "shard", s, "shards", TEST_SHARDS, "firm_id",
                              (json_int_t)firm);
        forged[s] = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        snprintf(shard, sizeof shard, "%d", s);
        assert_int_equal(kafka_produce_wait(p, topic, shard, strlen(shard), forged[s],
                                            strlen(forged[s]), NULL, 0, 30000, err, sizeof err),
                         KAFKA_OK);
    }
    kafka_producer_destroy(p, 5000);

    /* The real tick of December, behind the forged ones on every partition. */
    assert_int_equal(run(firm, "2026-12-01"), 1);
    char want[64];
    snprintf(want, sizeof want, "PKG-%lld-2026-12-01", (long long)eng);
    assert_string_equal(inv_col(eng, "invoice_number"), want);
    assert_int_equal(forged_dead_letters(forged, TEST_SHARDS), TEST_SHARDS);
    /* The worker process wrote as the stack's runtime role (billing_worker). */
    const char *w = getenv("WORKER_DATABASE_URL");
    if (w != NULL && *w != '\0') {
        const char *pe[] = {I64(eng)};
        assert_string_equal(dbtest_text(pg,
                                        "SELECT a.db_user FROM billing.audit_events a"
                                        " JOIN billing.invoices i"
                                        " ON i.id = (a.metadata->>'invoice_id')::bigint"
                                        " WHERE i.engagement_id = $1",
                                        1, pe),
                            "billing_worker");
    }
    /* Each December key recorded once, by the real tick; no 2025-06-01 key. */
    char like[96];
    snprintf(like, sizeof like, "tick:invoicing:%%:firm-%lld:%%", (long long)firm);
    const char *lp[] = {invworker_group(worker), like};
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.processed_messages WHERE consumer = $1"
                               " AND idempotency_key LIKE $2",
                               2, lp),
                     TEST_SHARDS);
    for (int s = 0; s < TEST_SHARDS; s++)
        free(forged[s]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monthly_package_invoice),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_clipping_and_proration),
        cmocka_unit_test(test_hourly_arrears),
        cmocka_unit_test(test_mixed_invoice),
        cmocka_unit_test(test_three_decimal_currency),
        cmocka_unit_test(test_zero_decimal_currency_unchanged),
        cmocka_unit_test(test_firm_scoping),
        cmocka_unit_test(test_dry_run_equals_real_run),
        cmocka_unit_test(test_two_shards_partition),
        cmocka_unit_test(test_batches_cover_each_engagement_once),
        cmocka_unit_test(test_periods_agree_with_date_c),
        cmocka_unit_test(test_renewal_next_tick_bills_new_terms),
        cmocka_unit_test(test_forged_tick_dead_lettered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
