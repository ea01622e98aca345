/* test_billingctl_documents.c: `billingctl invoice pdf`, `credit-note pdf`
 * and `notifications list` (CONTRACT "Documents and delivery";
 * docs/NOTIFICATIONS.md) run as a real process (LL_BILLINGCTL_BIN, as
 * billing_operator: DATABASE_URL) against the real database (label
 * billingctl). Checks the files written (bytes equal to the stored
 * document, what pdftotext shows), the invoice_documents rows (rendered and
 * stored once, on first demand), the listed notification rows, --json
 * output and exit statuses (0 done, 1 refused, 2 usage). Each test makes
 * its own firm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/db.h"
#include "ledgerline/document.h"
#include "ledgerline/log.h"
#include "notifier/ntest.h"
#include "notifier/pdftest.h"
#include "support/ctltest.h"
#include "support/dbtest.h"

#define I ntest_i

static PGconn *pg;
static db_conn *db;
static char out[1 << 20], errout[65536];
static char dir[] = "/tmp/ctl-docs-XXXXXX";

#define ctl(...) ctltest(out, sizeof out, errout, sizeof errout, NULL, __VA_ARGS__)

static int setup(void **state)
{
    (void)state;
    log_init("test_billingctl_documents");
    pg = dbtest_connect();
    char err[512];
    db = db_connect(dbtest_owner_url(), 0, err, sizeof err);
    if (db == NULL) {
        fprintf(stderr, "connect: %s\n", err);
        return -1;
    }
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    db_close(db);
    PQfinish(pg);
    document_release_fonts();
    return 0;
}

/* A path in the test's directory (ring of static buffers). */
static const char *path_of(const char *name)
{
    static char ring[8][256];
    static unsigned next;
    char *b = ring[next++ % 8];
    snprintf(b, sizeof ring[0], "%s/%s", dir, name);
    return b;
}

/* The whole file at path, malloc'd, *len bytes. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    unsigned char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return b;
}

static void assert_text_has(const char *text, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("'%s' not in:\n%s", want[i], text);
}

static const char *legal_number(const char *table, int64_t id)
{
    static char buf[4][64];
    static unsigned next;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT legal_number FROM billing.%s WHERE id = $1", table);
    const char *p[] = {I(id)};
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s", dbtest_text(pg, sql, 1, p));
    return b;
}

static int64_t documents_of(int64_t inv)
{
    const char *p[] = {I(inv)};
    return dbtest_ok(pg, "SELECT count(*) FROM billing.invoice_documents WHERE invoice_id = $1", 1,
                     p);
}

/* ---- invoice pdf ------------------------------------------------------------------ */

static void test_invoice_pdf_renders_once_and_prints_the_stored_bytes(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "CPD");
    int64_t cl = ntest_client(pg, f, "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale Conseil",
                              "ap@sg.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "usd", 120000);
    const char *legal = legal_number("invoices", inv);
    assert_int_equal(documents_of(inv), 0);

    /* First demand: rendered, stored, written; --json names file, size, hash. */
    const char *p1 = path_of("first.pdf");
    assert_int_equal(ctl("--json", "invoice", "pdf", I(inv), "-o", p1, NULL), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (j == NULL)
        fail_msg("not JSON: %s (stderr %s)", out, errout);
    size_t len;
    unsigned char *pdf = slurp(p1, &len);
    assert_string_equal(json_string_value(json_object_get(j, "file")), p1);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), (json_int_t)len);
    char hex[DOCUMENT_SHA256_HEX];
    document_sha256_hex(pdf, len, hex);
    assert_string_equal(json_string_value(json_object_get(j, "sha256")), hex);
    json_decref(j);
    assert_memory_equal(pdf, "%PDF-", 5);

    /* The stored row is these bytes. */
    assert_int_equal(documents_of(inv), 1);
    const char *pi[] = {I(inv)};
    assert_string_equal(dbtest_text(pg,
                                    "SELECT sha256 FROM billing.invoice_documents"
                                    " WHERE invoice_id = $1 AND kind = 'invoice'",
                                    1, pi),
                        hex);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT length(bytes) FROM billing.invoice_documents"
                               " WHERE invoice_id = $1",
                               1, pi),
                     (int64_t)len);

    /* What a reader shows. */
    char *text = pdftest_text(p1, 0, 0);
    assert_non_null(text);
    const char *want[] = {legal,
                          "Acme Legal LLP",
                          "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale Conseil",
                          "Advisory retainer",
                          "1200.00 USD",
                          "120.00 USD",
                          "1320.00 USD",
                          "Balance due",
                          "Due date: 2026-03-31"};
    assert_text_has(text, want, sizeof want / sizeof want[0]);
    free(text);

    /* Again: nothing new stored, the same bytes, the plain message. */
    const char *p2 = path_of("second.pdf");
    assert_int_equal(ctl("invoice", "pdf", I(inv), "-o", p2, NULL), 0);
    char expect[256];
    snprintf(expect, sizeof expect, "wrote %s (%zu bytes, sha256 %s)", p2, len, hex);
    if (strstr(out, expect) == NULL)
        fail_msg("'%s' not in: %s", expect, out);
    size_t len2;
    unsigned char *pdf2 = slurp(p2, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(pdf2, pdf, len);
    assert_int_equal(documents_of(inv), 1);

    /* -o - writes the bytes to stdout and nothing else. */
    assert_true(len < sizeof out - 1);
    assert_int_equal(ctl("invoice", "pdf", I(inv), "-o", "-", NULL), 0);
    assert_memory_equal(out, pdf, len);
    assert_int_equal(out[len], '\0');
    free(pdf2);
    free(pdf);
}

/* A document the notifier stored first is the one printed, even when a new
 * rendering would differ (the stored bytes never change). */
static void test_invoice_pdf_prints_a_document_stored_earlier(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "CPE");
    int64_t cl = ntest_client(pg, f, "Initech", "ap@initech.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "eur", 5000);
    const char *p[] = {I(f), I(inv)};
    dbtest_ok(pg,
              "INSERT INTO billing.invoice_documents(firm_id, invoice_id, kind, sha256, bytes)"
              " VALUES ($1, $2, 'invoice', encode(sha256('%PDF-earlier'), 'hex'), '%PDF-earlier')"
              " RETURNING id",
              2, p);
    const char *path = path_of("earlier.pdf");
    assert_int_equal(ctl("invoice", "pdf", I(inv), "-o", path, NULL), 0);
    size_t len;
    unsigned char *b = slurp(path, &len);
    assert_int_equal(len, strlen("%PDF-earlier"));
    assert_memory_equal(b, "%PDF-earlier", len);
    assert_int_equal(documents_of(inv), 1);
    free(b);
}

static void test_invoice_pdf_refusals_and_usage(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "CPR");
    const char *pf[] = {I(f)};
    dbtest_ok(pg,
              "UPDATE billing.firm_settings SET review_before_issue = true WHERE firm_id = $1"
              " RETURNING firm_id",
              1, pf);
    int64_t cl = ntest_client(pg, f, "Hooli", "ap@hooli.example");
    int64_t draft = ntest_issued_invoice(pg, db, f, cl, "usd", 9000);
    const char *pd[] = {I(draft)};
    assert_string_equal(dbtest_text(pg, "SELECT status FROM billing.invoices WHERE id = $1", 1, pd),
                        "draft");

    /* A draft has no document (no legal number): refused, nothing stored, no file. */
    const char *path = path_of("draft.pdf");
    assert_int_equal(ctl("invoice", "pdf", I(draft), "-o", path, NULL), 1);
    if (strstr(errout, "cannot render invoice") == NULL)
        fail_msg("stderr: %s", errout);
    assert_int_equal(documents_of(draft), 0);
    assert_int_equal(access(path, F_OK), -1);

    /* Issued, it has one, with its new legal number. */
    assert_int_equal(ctl("invoice", "issue", I(draft), "--date", "2026-03-05", "--by", "pat", NULL),
                     0);
    const char *legal = legal_number("invoices", draft);
    assert_int_equal(ctl("invoice", "pdf", I(draft), "-o", path, NULL), 0);
    char *text = pdftest_text(path, 0, 0);
    assert_non_null(text);
    const char *want[] = {legal, "Issue date: 2026-03-05", "Hooli"};
    assert_text_has(text, want, sizeof want / sizeof want[0]);
    free(text);
    assert_int_equal(documents_of(draft), 1);

    /* No such invoice. */
    assert_int_equal(ctl("invoice", "pdf", "987654321098", "-o", path_of("none.pdf"), NULL), 1);
    if (strstr(errout, "cannot render invoice 987654321098") == NULL)
        fail_msg("stderr: %s", errout);
    /* A file that cannot be written: refused, says so. */
    assert_int_equal(ctl("invoice", "pdf", I(draft), "-o", "/nonexistent-dir/x.pdf", NULL), 1);
    if (strstr(errout, "could not open /nonexistent-dir/x.pdf") == NULL)
        fail_msg("stderr: %s", errout);

    /* Usage. */
    assert_int_equal(ctl("invoice", "pdf", I(draft), NULL), 2);
    assert_int_equal(ctl("invoice", "pdf", "-o", path, NULL), 2);
    assert_int_equal(ctl("invoice", "pdf", "x12", "-o", path, NULL), 2);
    assert_int_equal(ctl("invoice", "pdf", "0", "-o", path, NULL), 2);
    assert_int_equal(ctl("invoice", "pdf", I(draft), I(draft), "-o", path, NULL), 2);
    assert_int_equal(ctl("invoice", "pdf", I(draft), "-o", NULL), 2);
    assert_int_equal(ctl("invoice", "pdf", I(draft), "--bogus", "-o", path, NULL), 2);
}

/* ---- credit-note pdf ------------------------------------------------------------- */

static void test_credit_note_pdf(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "CPC");
    int64_t cl = ntest_client(pg, f, "Umbrella plc", "ap@umbrella.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "jpy", 150000);
    int64_t cn = ntest_credit_note(pg, inv, 11000);
    const char *cn_legal = legal_number("credit_notes", cn);
    const char *inv_legal = legal_number("invoices", inv);

    const char *path = path_of("note.pdf");
    assert_int_equal(ctl("--json", "credit-note", "pdf", I(cn), "-o", path, NULL), 0);
    size_t len;
    unsigned char *pdf = slurp(path, &len);
    char hex[DOCUMENT_SHA256_HEX];
    document_sha256_hex(pdf, len, hex);
    if (strstr(out, hex) == NULL)
        fail_msg("sha256 %s not in: %s", hex, out);
    const char *pc[] = {I(cn)};
    char row[200];
    snprintf(row, sizeof row, "credit_note %lld %s", (long long)inv, hex);
    assert_string_equal(dbtest_text(pg,
                                    "SELECT kind || ' ' || invoice_id || ' ' || sha256"
                                    " FROM billing.invoice_documents WHERE credit_note_id = $1",
                                    1, pc),
                        row);
    char *text = pdftest_text(path, 0, 0);
    assert_non_null(text);
    char credits[96];
    snprintf(credits, sizeof credits, "Credits invoice %s", inv_legal);
    const char *want[] = {
        "CREDIT NOTE", cn_legal, credits, "Umbrella plc", "Reason: discount agreed", "11000 JPY"};
    assert_text_has(text, want, sizeof want / sizeof want[0]);
    free(text);
    /* The invoice has no document of its own until one is asked for. */
    const char *pi[] = {I(inv)};
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.invoice_documents"
                               " WHERE invoice_id = $1 AND kind = 'invoice'",
                               1, pi),
                     0);
    /* Asked again: the same bytes, still one row. */
    assert_int_equal(ctl("credit-note", "pdf", I(cn), "-o", path_of("note2.pdf"), NULL), 0);
    size_t len2;
    unsigned char *pdf2 = slurp(path_of("note2.pdf"), &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(pdf2, pdf, len);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.invoice_documents"
                               " WHERE credit_note_id = $1",
                               1, pc),
                     1);

    assert_int_equal(ctl("credit-note", "pdf", "987654321098", "-o", path, NULL), 1);
    if (strstr(errout, "cannot render credit note 987654321098: it does not exist") == NULL)
        fail_msg("stderr: %s", errout);
    assert_int_equal(ctl("credit-note", "pdf", I(cn), NULL), 2);
    assert_int_equal(ctl("credit-note", "pdf", "-1", "-o", path, NULL), 2);
    free(pdf2);
    free(pdf);
}

/* ---- notifications list ---------------------------------------------------------- */

static int64_t notification(int64_t f, int64_t cl, int64_t inv, const char *kind, int step,
                            const char *status, const char *error)
{
    const char *p[] = {I(f), I(cl), I(inv), kind, I(step), status, error};
    return dbtest_ok(
        pg,
        "INSERT INTO billing.notifications(firm_id, client_id, invoice_id, kind, step,"
        " to_address, status, attempts, message_id, sent_at, error)"
        " VALUES ($1::bigint, $2::bigint, $3::bigint, $4::text, $5::int, 'ap@example.test',"
        "         $6::text,"
        "         CASE WHEN $6 = 'queued' THEN 0 ELSE 1 END,"
        "         '<' || $4 || '-' || $3 || '-' || $5 || '@ledgerline>',"
        "         CASE WHEN $6 = 'sent' THEN timestamptz '2026-03-01 09:00:00+00' END, $7::text)"
        " RETURNING id",
        7, p);
}

static json_t *list_json(void)
{
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!json_is_array(j))
        fail_msg("not a JSON array: %s (stderr %s)", out, errout);
    return j;
}

static const char *jstr(json_t *a, size_t i, const char *key)
{
    const char *s = json_string_value(json_object_get(json_array_get(a, i), key));
    return s ? s : "(null)";
}

static long long jint(json_t *a, size_t i, const char *key)
{
    return (long long)json_integer_value(json_object_get(json_array_get(a, i), key));
}

static void test_notifications_list(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "CNL");
    int64_t cl = ntest_client(pg, f, "Pied Piper", "ap@pp.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "usd", 7000);
    int64_t cl2 = ntest_client(pg, f, "Raviga", "ap@raviga.example");
    int64_t inv2 = ntest_issued_invoice(pg, db, f, cl2, "usd", 8000);
    int64_t quiet = ntest_client(pg, f, "Bachmanity", "ap@b.example");
    int64_t n1 = notification(f, cl, inv, "invoice_issued", 0, "sent", NULL);
    int64_t n2 = notification(f, cl, inv, "reminder", 7, "failed", "550 mailbox unavailable");
    int64_t n3 = notification(f, cl, inv, "receipt", 0, "queued", NULL);
    int64_t n4 = notification(f, cl2, inv2, "invoice_issued", 0, "sent", NULL);

    assert_int_equal(ctl("--json", "notifications", "list", "--invoice", I(inv), NULL), 0);
    json_t *a = list_json();
    assert_int_equal(json_array_size(a), 3);
    assert_int_equal(jint(a, 0, "id"), n1);
    assert_int_equal(jint(a, 1, "id"), n2);
    assert_int_equal(jint(a, 2, "id"), n3);
    assert_string_equal(jstr(a, 0, "kind"), "invoice_issued");
    assert_string_equal(jstr(a, 0, "status"), "sent");
    assert_string_equal(jstr(a, 0, "sent_at"), "2026-03-01T09:00:00Z");
    assert_int_equal(jint(a, 0, "attempts"), 1);
    assert_int_equal(jint(a, 0, "firm_id"), f);
    assert_int_equal(jint(a, 0, "client_id"), cl);
    assert_string_equal(jstr(a, 0, "to_address"), "ap@example.test");
    char mid[96];
    snprintf(mid, sizeof mid, "<invoice_issued-%lld-0@ledgerline>", (long long)inv);
    assert_string_equal(jstr(a, 0, "message_id"), mid);
    assert_string_equal(jstr(a, 1, "kind"), "reminder");
    assert_int_equal(jint(a, 1, "step"), 7);
    assert_string_equal(jstr(a, 1, "status"), "failed");
    assert_string_equal(jstr(a, 1, "error"), "550 mailbox unavailable");
    assert_true(json_is_null(json_object_get(json_array_get(a, 1), "sent_at")));
    assert_string_equal(jstr(a, 2, "status"), "queued");
    assert_int_equal(jint(a, 2, "attempts"), 0);
    json_decref(a);

    /* Filters combine. */
    assert_int_equal(
        ctl("--json", "notifications", "list", "--invoice", I(inv), "--status", "failed", NULL), 0);
    a = list_json();
    assert_int_equal(json_array_size(a), 1);
    assert_int_equal(jint(a, 0, "id"), n2);
    json_decref(a);
    assert_int_equal(ctl("--json", "notifications", "list", "--client", I(cl2), NULL), 0);
    a = list_json();
    assert_int_equal(json_array_size(a), 1);
    assert_int_equal(jint(a, 0, "id"), n4);
    json_decref(a);
    assert_int_equal(ctl("--json", "notifications", "list", "--client", I(quiet), NULL), 0);
    a = list_json();
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);

    /* Text: one line each, with step and error where they matter. */
    assert_int_equal(ctl("notifications", "list", "--client", I(cl), NULL), 0);
    const char *want[] = {"invoice_issued", "sent 2026-03-01T09:00:00Z",      "reminder", "step 7",
                          "failed",         "error: 550 mailbox unavailable", "receipt",  "queued",
                          "attempts 0"};
    assert_text_has(out, want, sizeof want / sizeof want[0]);
    int lines = 0;
    for (const char *s = out; *s; s++)
        lines += *s == '\n';
    assert_int_equal(lines, 3);
    assert_int_equal(ctl("notifications", "list", "--client", I(quiet), NULL), 0);
    assert_string_equal(out, "no notifications\n");

    /* Usage. */
    assert_int_equal(ctl("notifications", "list", "--status", "bounced", NULL), 2);
    assert_int_equal(ctl("notifications", "list", "--invoice", "abc", NULL), 2);
    assert_int_equal(ctl("notifications", "list", "--client", NULL), 2);
    assert_int_equal(ctl("notifications", "list", "extra", NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoice_pdf_renders_once_and_prints_the_stored_bytes),
        cmocka_unit_test(test_invoice_pdf_prints_a_document_stored_earlier),
        cmocka_unit_test(test_invoice_pdf_refusals_and_usage),
        cmocka_unit_test(test_credit_note_pdf),
        cmocka_unit_test(test_notifications_list),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
