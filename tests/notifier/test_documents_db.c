/* test_documents_db.c: sql/016 and the stored documents (label notifier;
 * needs DATABASE_URL, migrated): an issued invoice's and a credit note's
 * facts are loaded, rendered and stored once with their sha256; a stored
 * document is never updated or deleted, by any role; a second rendering
 * does not replace it; the sha256 must be the bytes'; drafts have no
 * document; one notification per (kind, invoice, credit note, step), sent
 * has sent_at, failed has an error; billing_worker may insert documents but
 * not change them. Each test makes its own firm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/document.h"
#include "ledgerline/log.h"
#include "notifier/ntest.h"
#include "notifier/pdftest.h"
#include "support/dbtest.h"

#define I ntest_i

static PGconn *pg;
static db_conn *db;

static int setup(void **state)
{
    (void)state;
    log_init("test_documents_db");
    pg = dbtest_connect();
    char err[512];
    db = db_connect(dbtest_owner_url(), 0, err, sizeof err);
    if (db == NULL) {
        fprintf(stderr, "connect: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_close(db);
    PQfinish(pg);
    document_release_fonts();
    return 0;
}

/* Loads, renders and stores a document; returns its id. */
static int64_t render_store(int64_t inv, int64_t cn, unsigned char **pdf, size_t *len)
{
    document_facts f;
    char err[1024];
    if (document_facts_load(db, inv, cn, &f, err, sizeof err) != DB_OK)
        fail_msg("load: %s", err);
    if (document_render(&f, pdf, len, err, sizeof err) != 0)
        fail_msg("render: %s", err);
    int64_t id = 0;
    char sha[DOCUMENT_SHA256_HEX];
    if (document_store(db, &f, *pdf, *len, &id, sha, err, sizeof err) != DB_OK)
        fail_msg("store: %s", err);
    document_facts_free(&f);
    return id;
}

static void test_invoice_document_stored_once(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "DOC");
    int64_t cl = ntest_client(pg, f, "Globex \xc3\x89tudes SARL", "ap@globex.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "usd", 250000);
    const char *pi[] = {I(inv)};
    const char *legal =
        dbtest_text(pg, "SELECT legal_number FROM billing.invoices WHERE id = $1", 1, pi);
    char legal_copy[64];
    snprintf(legal_copy, sizeof legal_copy, "%s", legal);
    unsigned char *pdf;
    size_t len;
    int64_t id = render_store(inv, 0, &pdf, &len);
    assert_true(id > 0);

    /* The row holds the bytes and their hash. */
    char hex[DOCUMENT_SHA256_HEX];
    document_sha256_hex(pdf, len, hex);
    const char *pd[] = {I(id)};
    assert_string_equal(
        dbtest_text(pg, "SELECT sha256 FROM billing.invoice_documents WHERE id = $1", 1, pd), hex);
    assert_int_equal(
        dbtest_ok(pg, "SELECT length(bytes) FROM billing.invoice_documents WHERE id = $1", 1, pd),
        (int64_t)len);
    unsigned char *back;
    size_t blen;
    char err[512];
    assert_int_equal(document_fetch(db, inv, 0, &back, &blen, err, sizeof err), DB_OK);
    assert_int_equal(blen, len);
    assert_memory_equal(back, pdf, len);

    /* What the PDF says: the legal number, the client, the line, totals. */
    char *path = pdftest_write(pdf, len);
    char *text = pdftest_text(path, 0, 0);
    const char *want[] = {legal_copy,
                          "Acme Legal LLP",
                          "GB123456789",
                          "Globex \xc3\x89tudes SARL",
                          "Issue date: 2026-03-01",
                          "Due date: 2026-03-31",
                          "2500.00 USD",
                          "250.00 USD",
                          "2750.00 USD",
                          "Balance due",
                          "IBAN GB29 NWBK"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("'%s' not in:\n%s", want[i], text);
    free(text);
    pdftest_remove(path);

    /* Rendering again stores nothing new: the same row, the same bytes. */
    unsigned char *again;
    size_t alen;
    assert_int_equal(render_store(inv, 0, &again, &alen), id);
    assert_int_equal(alen, len);
    assert_memory_equal(again, pdf, len);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.invoice_documents"
                               " WHERE invoice_id = $1",
                               1, pi),
                     1);

    /* Never rewritten, never removed (rule 1.7), whoever asks. */
    dbtest_refused(
        pg, "rule 1.7 (append-only)",
        "UPDATE billing.invoice_documents SET bytes = 'x', sha256 = encode(sha256('x'), 'hex')"
        " WHERE id = $1",
        1, pd);
    dbtest_refused(pg, "rule 1.7 (append-only)",
                   "UPDATE billing.invoice_documents SET created_at = now() WHERE id = $1", 1, pd);
    dbtest_refused(pg, "rule 1.7 (append-only)",
                   "DELETE FROM billing.invoice_documents WHERE id = $1", 1, pd);
    dbtest_refused(pg, "rule 1.7 (append-only)", "TRUNCATE billing.invoice_documents", 0, NULL);
    free(back);
    free(again);
    free(pdf);
}

static void test_document_rules_for_direct_writers(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "DOR");
    int64_t cl = ntest_client(pg, f, "Initech", "ap@initech.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "eur", 10000);
    const char *p[] = {I(f), I(inv)};
    dbtest_refused(pg, "invoice_documents_rule_17_1_sha256_of_bytes",
                   "INSERT INTO billing.invoice_documents(firm_id, invoice_id, kind, sha256, bytes)"
                   " VALUES ($1, $2, 'invoice', repeat('0', 64), '%PDF')",
                   2, p);
    dbtest_ok(pg,
              "INSERT INTO billing.invoice_documents(firm_id, invoice_id, kind, sha256, bytes)"
              " VALUES ($1, $2, 'invoice', encode(sha256('%PDF-a'), 'hex'), '%PDF-a')",
              2, p);
    dbtest_refused(pg, "invoice_documents_rule_17_2_one_per_invoice",
                   "INSERT INTO billing.invoice_documents(firm_id, invoice_id, kind, sha256, bytes)"
                   " VALUES ($1, $2, 'invoice', encode(sha256('%PDF-b'), 'hex'), '%PDF-b')",
                   2, p);
    /* Another firm's invoice cannot be named (tenant key). */
    int64_t other = dbtest_firm(pg);
    const char *po[] = {I(other), I(inv)};
    dbtest_refused(pg, "invoice_documents_rule_1_3_invoice_same_firm",
                   "INSERT INTO billing.invoice_documents(firm_id, invoice_id, kind, sha256, bytes)"
                   " VALUES ($1, $2, 'statement', encode(sha256('%PDF-c'), 'hex'), '%PDF-c')",
                   2, po);

    /* A draft has no legal number and so no document. */
    int64_t draft = dbtest_ok(
        pg,
        "INSERT INTO billing.invoices(firm_id, client_id, invoice_number,"
        " engagement_override, engagement_override_reason,"
        " engagement_override_by) VALUES ($1::bigint, $2::bigint, 'D-' || $2::text, true, 't', 'pat')"
        " RETURNING id",
        2, (const char *[]){I(f), I(cl)});
    document_facts facts;
    char err[512];
    assert_int_equal(document_facts_load(db, draft, 0, &facts, err, sizeof err), DB_PERMANENT);
    assert_non_null(strstr(err, "cannot render invoice"));
}

static void test_credit_note_document(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "CND");
    int64_t cl = ntest_client(pg, f, "Umbrella plc", "ap@umbrella.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "kwd", 150125);
    int64_t cn = ntest_credit_note(pg, inv, 11000);
    unsigned char *pdf;
    size_t len;
    int64_t id = render_store(inv, cn, &pdf, &len);
    const char *pc[] = {I(cn)};
    const char *cn_legal =
        dbtest_text(pg, "SELECT legal_number FROM billing.credit_notes WHERE id = $1", 1, pc);
    char cn_copy[64];
    snprintf(cn_copy, sizeof cn_copy, "%s", cn_legal);
    assert_non_null(strstr(cn_copy, "CND-CN-2026-"));
    const char *pd[] = {I(id)};
    assert_string_equal(
        dbtest_text(pg, "SELECT kind FROM billing.invoice_documents WHERE id = $1", 1, pd),
        "credit_note");
    char *path = pdftest_write(pdf, len);
    char *text = pdftest_text(path, 0, 0);
    /* 150.125 KWD rounds to 150.130 (granularity 10, rule 11.13); the note
     * is 11.000 KWD tax included. */
    const char *want[] = {"CREDIT NOTE",
                          cn_copy,
                          "Credits invoice CND-2026-",
                          "Umbrella plc",
                          "Reason: discount agreed",
                          "Total credited",
                          "11.000 KWD",
                          "KWD"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("'%s' not in:\n%s", want[i], text);
    free(text);
    pdftest_remove(path);
    /* The invoice's own document is another row. */
    unsigned char *ipdf;
    size_t ilen;
    assert_true(render_store(inv, 0, &ipdf, &ilen) != id);
    free(ipdf);
    free(pdf);
}

static void test_notification_rules(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTR");
    int64_t cl = ntest_client(pg, f, "Hooli", "ap@hooli.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "usd", 5000);
    const char *p[] = {I(f), I(cl), I(inv)};
    const char *ins =
        "INSERT INTO billing.notifications(firm_id, client_id, invoice_id, kind, step,"
        " to_address, message_id) VALUES ($1, $2, $3::bigint, 'reminder', 7,"
        " 'ap@hooli.example', '<reminder-' || $3::text || '-7@ledgerline>') RETURNING id";
    int64_t n = dbtest_ok(pg, ins, 3, p);
    dbtest_refused(pg, "notifications_rule_17_3_once_per_kind_invoice_note_step", ins, 3, p);
    /* Another step is another notification. */
    dbtest_ok(pg,
              "INSERT INTO billing.notifications(firm_id, client_id, invoice_id, kind, step,"
              " message_id) VALUES ($1, $2, $3, 'reminder', 21, '<r@ledgerline>')",
              3, p);
    const char *pn[] = {I(n)};
    dbtest_refused(pg, "notifications_rule_17_4_sent_has_sent_at",
                   "UPDATE billing.notifications SET status = 'sent' WHERE id = $1", 1, pn);
    dbtest_refused(pg, "notifications_rule_17_4_failed_has_error",
                   "UPDATE billing.notifications SET status = 'failed' WHERE id = $1", 1, pn);
    dbtest_ok(pg,
              "UPDATE billing.notifications SET status = 'sent', sent_at = now(), attempts = 1"
              " WHERE id = $1",
              1, pn);
    dbtest_refused(pg, "notifications_rule_17_4_step_only_for_reminders",
                   "INSERT INTO billing.notifications(firm_id, client_id, invoice_id, kind, step,"
                   " message_id) VALUES ($1, $2, $3, 'receipt', 3, '<x@ledgerline>')",
                   3, p);
    dbtest_refused(pg, "notifications_message_id_shape",
                   "INSERT INTO billing.notifications(firm_id, client_id, invoice_id, kind,"
                   " message_id) VALUES ($1, $2, $3, 'receipt', 'not-an-id')",
                   3, p);
    /* clients.reminders_paused exists, false by default. */
    const char *pc[] = {I(cl)};
    assert_string_equal(dbtest_text(pg,
                                    "SELECT reminders_paused::text FROM billing.clients"
                                    " WHERE id = $1",
                                    1, pc),
                        "false");
}

static void test_worker_role_grants(void **state)
{
    (void)state;
    PGconn *w = PQconnectdb(dbtest_worker_url());
    assert_int_equal(PQstatus(w), CONNECTION_OK);
    int64_t f = ntest_firm(pg, "NWG");
    int64_t cl = ntest_client(pg, f, "Pied Piper", "ap@pp.example");
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "usd", 7000);
    const char *p[] = {I(f), I(inv)};
    int64_t id =
        dbtest_ok(w,
                  "INSERT INTO billing.invoice_documents(firm_id, invoice_id, kind, sha256,"
                  " bytes) VALUES ($1, $2, 'invoice', encode(sha256('%PDF-w'), 'hex'),"
                  " '%PDF-w') RETURNING id",
                  2, p);
    const char *pd[] = {I(id)};
    dbtest_refused(w, "permission denied",
                   "UPDATE billing.invoice_documents SET created_at = now() WHERE id = $1", 1, pd);
    dbtest_refused(w, "permission denied", "DELETE FROM billing.invoice_documents WHERE id = $1", 1,
                   pd);
    const char *pn[] = {I(f), I(cl), I(inv)};
    int64_t n = dbtest_ok(w,
                          "INSERT INTO billing.notifications(firm_id, client_id, invoice_id, kind,"
                          " to_address, message_id) VALUES ($1, $2, $3, 'invoice_issued',"
                          " 'ap@pp.example', '<w@ledgerline>') RETURNING id",
                          3, pn);
    const char *pnn[] = {I(n)};
    dbtest_ok(w,
              "UPDATE billing.notifications SET status = 'sent', sent_at = now(),"
              " attempts = attempts + 1 WHERE id = $1",
              1, pnn);
    dbtest_refused(w, "permission denied", "DELETE FROM billing.notifications WHERE id = $1", 1,
                   pnn);
    PQfinish(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoice_document_stored_once),
        cmocka_unit_test(test_document_rules_for_direct_writers),
        cmocka_unit_test(test_credit_note_document),
        cmocka_unit_test(test_notification_rules),
        cmocka_unit_test(test_worker_role_grants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
