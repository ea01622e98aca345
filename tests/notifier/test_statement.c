/* test_statement.c: statements and reminder letters (label notifier; needs
 * DATABASE_URL, migrated; docs/NOTIFICATIONS.md "Statements", "Reminders").
 * A seeded client with two invoices (one partly paid), a credit note and a
 * goodwill credit: the statement's pdftotext shows the firm, the client,
 * the opening and closing balances, every movement and open invoice to the
 * cent; the same facts render the same bytes; `billingctl statement
 * --send` through the test SMTP server mails one message whose attached
 * PDF equals the stored document, and a second --send mails nothing; bad
 * arguments exit non-zero and write nothing. A reminder carries its
 * payment-reminder PDF with the reminder's facts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/date.h"
#include "ledgerline/document.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/log.h"
#include "ledgerline/reminders.h"
#include "ledgerline/statement.h"
#include "notifier/nmail.h"
#include "notifier/ntest.h"
#include "notifier/pdftest.h"
#include "support/ctltest.h"
#include "support/dbtest.h"
#include "support/smtp_sink.h"

#define I ntest_i

static nmail m_;
static PGconn *pg;
static db_conn *db;
static smtp_sink *sink;
static smtp_config smtp;
static char out[65536], errout[65536];

static int setup(void **state)
{
    (void)state;
    if (nmail_setup(&m_, "test_statement") != 0)
        return -1;
    pg = m_.pg;
    db = m_.db;
    sink = m_.sink;
    smtp = m_.smtp;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nmail_teardown(&m_);
    return 0;
}

typedef struct {
    int64_t firm, client, a, b, note;
    char a_no[64], b_no[64], note_no[64];
} seeded;

static void text_of(const char *sql, int64_t id, char *buf, size_t n)
{
    const char *p[] = {I(id)};
    PGresult *r = PQexecParams(pg, sql, 1, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    snprintf(buf, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* Invoice A (2026-03-01, 1100.00 with tax, due 03-31) paid 500.00 on
 * 04-05; invoice B (2026-04-01, 1100.00, due 05-01) credited 200.00 today
 * by a credit note; a goodwill credit of 150.00 on 04-10. */
static void seed(seeded *s, const char *name, const char *email)
{
    char err[512];
    s->firm = ntest_firm(pg, "STM");
    s->client = ntest_client(pg, s->firm, name, email);
    db_conn *owner = db_connect(dbtest_owner_url(), 0, err, sizeof err);
    if (owner == NULL)
        fail_msg("connect: %s", err);
    s->a = ntest_issued_invoice(pg, owner, s->firm, s->client, "usd", 100000);
    invoicing_params ip = {.shard = 0, .shards = 1, .firm_id = s->firm};
    assert_true(date_parse("2026-04-01", &ip.business_date));
    invoicing_stats st;
    if (invoicing_run(owner, &ip, &st, err, sizeof err) != DB_OK)
        fail_msg("invoicing_run: %s", err);
    db_close(owner);
    const char *pb[] = {I(s->client), I(s->a)};
    s->b =
        dbtest_ok(pg, "SELECT id FROM billing.invoices WHERE client_id = $1 AND id <> $2", 2, pb);
    const char *pp[] = {I(s->firm), I(s->a)};
    dbtest_ok(
        pg,
        "INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source, received_at,"
        " currency, received_cents) VALUES ($1, $2, 50000, 'manual',"
        " '2026-04-05 10:00+00', 'usd', 50000) RETURNING id",
        2, pp);
    dbtest_ok(pg, "SELECT applied_cents FROM billing.land_money($1, 50000, '2026-04-05')", 1,
              (const char *[]){I(s->a)});
    s->note = ntest_credit_note(pg, s->b, 20000);
    const char *pc[] = {I(s->firm), I(s->client)};
    dbtest_ok(pg,
              "INSERT INTO billing.credit_ledger (firm_id, client_id, entry_type, amount_cents,"
              " source, description, reason, approved_by, created_by, created_at)"
              " VALUES ($1, $2, 'credit', 15000, 'goodwill', 'Goodwill for the delay', 'delay',"
              " 'F. Controller', 'F. Controller', '2026-04-10 09:00+00') RETURNING id",
              2, pc);
    text_of("SELECT legal_number FROM billing.invoices WHERE id = $1", s->a, s->a_no,
            sizeof s->a_no);
    text_of("SELECT legal_number FROM billing.invoices WHERE id = $1", s->b, s->b_no,
            sizeof s->b_no);
    text_of("SELECT legal_number FROM billing.credit_notes WHERE id = $1", s->note, s->note_no,
            sizeof s->note_no);
}

/* The line of text holding every needle (NULL-terminated), or fail. */
static void line_has(const char *text, ...)
{
    va_list ap;
    va_start(ap, text);
    const char *first = va_arg(ap, const char *);
    const char *needles[8];
    size_t n = 0;
    for (const char *s = first; s != NULL && n < 8; s = va_arg(ap, const char *))
        needles[n++] = s;
    va_end(ap);
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
        bool all = true;
        for (size_t i = 0; i < n && all; i++)
            all = strstr(line, needles[i]) != NULL;
        if (all)
            return;
        l = e ? e + 1 : NULL;
    }
    fail_msg("no line with '%s' and the rest in:\n%s", first, text);
}

/* With LL_SAMPLES_DIR set (tests/notifier/samples.sh), the documents a
 * test made are also written there as NAME.pdf for docs/samples/. */
static void sample(const char *name, const unsigned char *pdf, size_t len)
{
    const char *dir = getenv("LL_SAMPLES_DIR");
    if (dir == NULL || dir[0] == '\0')
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.pdf", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(pdf, 1, len, f), len);
    fclose(f);
}

static void sample_document(const char *name, int64_t invoice, int64_t note)
{
    unsigned char *pdf;
    size_t len;
    char err[512];
    if (document_obtain(db, invoice, note, &pdf, &len, err, sizeof err) != DB_OK)
        fail_msg("document_obtain: %s", err);
    sample(name, pdf, len);
    free(pdf);
}

static civil_date today(void)
{
    return date_today_utc();
}

static void render(const seeded *s, civil_date from, unsigned char **pdf, size_t *len)
{
    statement_facts f;
    char err[1024];
    if (statement_facts_load(db, s->client, from, today(), &f, err, sizeof err) != DB_OK)
        fail_msg("statement_facts_load: %s", err);
    if (document_render_statement(&f, pdf, len, err, sizeof err) != 0)
        fail_msg("render: %s", err);
    statement_facts_free(&f);
}

static void test_statement_shows_every_movement(void **state)
{
    (void)state;
    seeded s;
    seed(&s, "Zo\xc3\xab Client GmbH", "ap@zoe.test");
    civil_date from;
    assert_true(date_parse("2026-03-15", &from));
    unsigned char *pdf, *again;
    size_t len, len2;
    render(&s, from, &pdf, &len);
    render(&s, from, &again, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(pdf, again, len);
    free(again);
    char *path = pdftest_write(pdf, len);
    char *t = pdftest_text(path, 0, 0);
    assert_non_null(t);
    char d[11], days_a[16], days_b[16], note[200];
    date_format(today(), d, sizeof d);
    civil_date due_a, due_b;
    assert_true(date_parse("2026-03-31", &due_a));
    assert_true(date_parse("2026-05-01", &due_b));
    snprintf(days_a, sizeof days_a, " %d", date_diff_days(due_a, today()));
    snprintf(days_b, sizeof days_b, " %d", date_diff_days(due_b, today()));
    assert_non_null(strstr(t, "Acme Legal LLP"));
    assert_non_null(strstr(t, "Zo\xc3\xab Client GmbH"));
    line_has(t, "STATEMENT", NULL);
    line_has(t, "Period: 2026-03-15 to", d, NULL);
    line_has(t, "2026-03-15", "Opening balance", "1100.00", NULL);
    line_has(t, "2026-04-01", "Invoice", s.b_no, "1100.00", "2200.00", NULL);
    line_has(t, "2026-04-05", "Payment received", s.a_no, "-500.00", "1700.00", NULL);
    snprintf(note, sizeof note, "Credit note %s", s.note_no);
    line_has(t, d, note, "-200.00", "1500.00", NULL);
    line_has(t, d, "Closing balance", "1500.00", NULL);
    line_has(t, "2026-03-15", "Opening credit", "0.00", NULL);
    line_has(t, "2026-04-10", "Goodwill for the delay", "150.00", NULL);
    line_has(t, d, "Closing credit", "150.00", NULL);
    line_has(t, "Balance owed less credit", "1350.00 USD", NULL);
    line_has(t, s.a_no, "2026-03-01", "2026-03-31", "1100.00", "500.00", "0.00", "600.00", NULL);
    line_has(t, s.a_no, "600.00", days_a, NULL);
    line_has(t, s.b_no, "2026-04-01", "2026-05-01", "1100.00", "0.00", "200.00", "900.00", NULL);
    line_has(t, s.b_no, "900.00", days_b, NULL);
    assert_non_null(strstr(t, "Payment instructions"));
    free(t);
    sample("statement", pdf, len);
    sample_document("invoice", s.a, 0);
    sample_document("credit-note", s.b, s.note);
    /* From 2026-03-01: everything is in the period, the opening is 0. */
    pdftest_remove(path);
    free(pdf);
    assert_true(date_parse("2026-03-01", &from));
    render(&s, from, &pdf, &len);
    path = pdftest_write(pdf, len);
    t = pdftest_text(path, 0, 0);
    line_has(t, "2026-03-01", "Opening balance", "0.00", NULL);
    line_has(t, "2026-03-01", "Invoice", s.a_no, "1100.00", "1100.00", NULL);
    line_has(t, d, "Closing balance", "1500.00", NULL);
    free(t);
    pdftest_remove(path);
    free(pdf);
}

static int ctl_send(const char *client, const char *from, const char *date, const char *file,
                    bool send)
{
    char url[600], sfrom[] = "SMTP_FROM=billing@ledgerline.test";
    snprintf(url, sizeof url, "SMTP_URL=%s", smtp.url);
    const char *env[] = {url, sfrom, NULL};
    const char *argv[] = {"statement", "--client", client, "--from", from,
                          "--date",    date,       "-o",   file,     send ? "--send" : NULL,
                          NULL};
    return ctltest_argv(out, sizeof out, errout, sizeof errout, env, argv);
}

static void test_statement_send_once(void **state)
{
    (void)state;
    seeded s;
    seed(&s, "Send Once Ltd", "finance@sendonce.test");
    char d[11], file[] = "/tmp/ll-stmt-XXXXXX";
    date_format(today(), d, sizeof d);
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    close(fd);
    size_t before = smtp_sink_count(sink);
    int rc = ctl_send(I(s.client), "2026-03-15", d, file, true);
    if (rc != 0)
        fail_msg("statement --send: %d\n%s\n%s", rc, out, errout);
    assert_non_null(strstr(out, "sent the statement"));
    assert_int_equal(smtp_sink_wait(sink, before + 1, 10000), before + 1);
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(sink, before, &m), 0);
    assert_string_equal(m.rcpt, "finance@sendonce.test");
    char want_id[128];
    civil_date td = today();
    snprintf(want_id, sizeof want_id, "<statement.%lld.0.%d@ledgerline>", (long long)s.client,
             statement_step(td));
    char *mid = smtp_sink_header(m.data, "Message-ID");
    assert_string_equal(mid, want_id);
    free(mid);
    size_t alen = 0;
    unsigned char *att = smtp_sink_part(m.data, "application/pdf", &alen);
    assert_non_null(att);
    unsigned char *stored;
    size_t slen;
    int64_t doc_id = 0;
    char from[11], err[512];
    assert_int_equal(
        document_fetch_statement(db, s.client, d, &stored, &slen, &doc_id, from, err, sizeof err),
        DB_OK);
    assert_string_equal(from, "2026-03-15");
    assert_int_equal(alen, slen);
    assert_memory_equal(att, stored, slen);
    /* The file written is the stored document too. */
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    unsigned char *fb = malloc(slen + 1);
    assert_int_equal(fread(fb, 1, slen + 1, f), slen);
    fclose(f);
    assert_memory_equal(fb, stored, slen);
    free(fb);
    /* The decoded part is not NUL-terminated: searched as a string copy. */
    unsigned char *part = smtp_sink_part(m.data, "text/plain", &alen);
    assert_non_null(part);
    char *body = calloc(1, alen + 1);
    assert_non_null(body);
    memcpy(body, part, alen);
    free(part);
    assert_non_null(strstr(body, "1500.00 USD"));
    free(body);
    free(att);
    smtp_sink_msg_free(&m);
    const char *pc[] = {I(s.client), I(doc_id)};
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.notifications WHERE client_id = $1"
                               " AND kind = 'statement' AND status = 'sent'",
                               1, pc),
                     1);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.invoice_documents d"
                               " JOIN billing.statement_documents s ON s.document_id = d.id"
                               " WHERE s.client_id = $1 AND d.kind = 'statement' AND d.id = $2",
                               2, pc),
                     1);
    /* Again: nothing new is sent or stored, and it says so. */
    rc = ctl_send(I(s.client), "2026-03-15", d, file, true);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "nothing sent"));
    usleep(500 * 1000);
    assert_int_equal(smtp_sink_count(sink), before + 1);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.statement_documents"
                               " WHERE client_id = $1",
                               1, pc),
                     1);
    free(stored);
    unlink(file);
}

static void test_statement_bad_arguments(void **state)
{
    (void)state;
    seeded s;
    seed(&s, "Bad Args Ltd", "ap@badargs.test");
    const char *file = "/tmp/ll-stmt-never-written.pdf";
    unlink(file);
    assert_int_equal(ctl_send(I(s.client), "2026-04-02", "2026-04-01", file, false), 2);
    assert_non_null(strstr(errout, "--from 2026-04-02 is after the statement date 2026-04-01"));
    assert_int_equal(ctl_send(I(s.client), "2026-02-30", "2026-04-01", file, false), 2);
    assert_int_equal(ctl_send("0", "2026-03-01", "2026-04-01", file, false), 2);
    assert_int_equal(ctl_send("987654321098", "2026-03-01", "2026-04-01", file, true), 1);
    assert_non_null(strstr(errout, "no such client"));
    assert_int_equal(access(file, F_OK), -1);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.statement_documents"
                               " WHERE client_id = $1",
                               1, (const char *[]){I(s.client)}),
                     0);
}

static void test_reminder_carries_its_letter(void **state)
{
    (void)state;
    seeded s;
    seed(&s, "Reminded GmbH", "ap@reminded.test");
    notify_ctx ctx = {.db = db, .smtp = &smtp, .max_attempts = 3};
    size_t before = smtp_sink_count(sink);
    reminders_stats st;
    char err[1024];
    civil_date on;
    assert_true(date_parse("2026-04-07", &on)); /* invoice A, due 03-31, step 7 */
    assert_int_equal(reminders_run(&ctx, on, s.firm, 0, 1, &st, err, sizeof err), DB_OK);
    assert_int_equal(st.sent, 1);
    assert_int_equal(smtp_sink_wait(sink, before + 1, 10000), before + 1);
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(sink, before, &m), 0);
    size_t alen = 0;
    unsigned char *att = smtp_sink_part(m.data, "application/pdf", &alen);
    assert_non_null(att);
    char *path = pdftest_write(att, alen);
    assert_int_equal(pdftest_pages(path), 1);
    char *t = pdftest_text(path, 0, 0);
    assert_non_null(t);
    line_has(t, "PAYMENT REMINDER", NULL);
    line_has(t, "Invoice No.", s.a_no, NULL);
    line_has(t, "Reminder date: 2026-04-07", NULL);
    line_has(t, "Balance due", "600.00 USD", NULL);
    line_has(t, "Due date", "2026-03-31", NULL);
    line_has(t, "Days overdue", "7", NULL);
    line_has(t, "7 days overdue", NULL);
    assert_non_null(strstr(t, "IBAN GB29 NWBK 6016 1331 9268 19"));
    /* The same invoice and step render the same letter. */
    document_facts f;
    assert_int_equal(document_facts_load(db, s.a, 0, &f, err, sizeof err), DB_OK);
    unsigned char *pdf;
    size_t len;
    assert_int_equal(document_render_reminder(&f, 7, &pdf, &len, err, sizeof err), 0);
    assert_int_equal(len, alen);
    assert_memory_equal(pdf, att, len);
    free(pdf);
    document_facts_free(&f);
    sample("reminder", att, alen);
    free(t);
    pdftest_remove(path);
    free(att);
    smtp_sink_msg_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_shows_every_movement),
        cmocka_unit_test(test_statement_send_once),
        cmocka_unit_test(test_statement_bad_arguments),
        cmocka_unit_test(test_reminder_carries_its_letter),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
