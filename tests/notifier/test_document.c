/* test_document.c: invoice and credit-note PDFs (common/document.c) read
 * back with pdftotext and pdfinfo: the legal number, firm, client, every
 * line, totals and balance due are on the page; the same facts render the
 * same bytes, with the issue date as the PDF's creation date; a 200-line
 * invoice paginates with the table header on every page; jpy and kwd amounts
 * use their own exponent; accents, CJK and right-to-left names render. No
 * database: the facts are built from billing.document_facts' JSON shape. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/document.h"
#include "notifier/pdftest.h"

/* Facts of an invoice in cur with n hourly lines "Line <i> <tag>". */
static void facts(document_facts *f, const char *cur, const char *client, size_t n, int64_t amount)
{
    char *json = NULL;
    size_t cap = 4096 + n * 160, off = 0;
    json = malloc(cap);
    off += (size_t)snprintf(
        json + off, cap - off,
        "{\"kind\":\"invoice\",\"firm_id\":1,\"client_id\":2,\"invoice_id\":3,"
        "\"firm_name\":\"Acme LLP\",\"firm_address\":\"1 Law Street\\nLondon EC1\","
        "\"firm_tax_id\":\"GB123456789\",\"payment_instructions\":\"IBAN GB00 ACME 0000 1111\","
        "\"client_name\":\"%s\",\"client_email\":\"ap@client.example\","
        "\"legal_number\":\"ACME-2026-000042\",\"invoice_legal_number\":\"ACME-2026-000042\","
        "\"issue_date\":\"2026-03-04\",\"due_date\":\"2026-04-03\",\"period_start\":\"2026-02-01\","
        "\"period_end\":\"2026-02-28\",\"currency\":\"%s\",\"reason\":\"\","
        "\"subtotal_cents\":%lld,\"tax_cents\":%lld,\"total_cents\":%lld,"
        "\"amount_paid_cents\":%lld,\"credited_cents\":0,\"balance_due_cents\":%lld,\"lines\":[",
        client, cur, (long long)(amount * (int64_t)n), (long long)(amount * (int64_t)n / 5),
        (long long)(amount * (int64_t)n * 6 / 5), (long long)(amount / 2),
        (long long)(amount * (int64_t)n * 6 / 5 - amount / 2));
    for (size_t i = 0; i < n; i++)
        off +=
            (size_t)snprintf(json + off, cap - off,
                             "%s{\"description\":\"Line %zu advice\",\"quantity\":\"%zu.50\","
                             "\"rate_cents\":%lld,\"amount_cents\":%lld}",
                             i ? "," : "", i + 1, i % 9 + 1, (long long)amount, (long long)amount);
    snprintf(json + off, cap - off, "]}");
    char err[256];
    assert_int_equal(document_facts_from_json(json, f, err, sizeof err), 0);
    free(json);
}

static bool contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

/* Renders f and returns the path of the PDF written to a file. */
static char *render_to_file(const document_facts *f, unsigned char **pdf, size_t *len)
{
    char err[256];
    int rc = document_render(f, pdf, len, err, sizeof err);
    if (rc != 0)
        fail_msg("render: %s", err);
    char *path = pdftest_write(*pdf, *len);
    assert_non_null(path);
    /* LL_SAMPLES_DIR keeps a copy of each, to look at (docs/samples/). */
    const char *dir = getenv("LL_SAMPLES_DIR");
    if (dir != NULL) {
        char out[512];
        snprintf(out, sizeof out, "%s/%s-%s.pdf", dir, f->currency,
                 f->nlines > 50 ? "long" : "short");
        FILE *o = fopen(out, "wb");
        if (o != NULL) {
            fwrite(*pdf, 1, *len, o);
            fclose(o);
        }
    }
    return path;
}

static void test_invoice_shows_its_facts(void **state)
{
    (void)state;
    document_facts f;
    facts(&f, "usd", "Globex Corporation", 3, 123456);
    unsigned char *pdf;
    size_t len;
    char *path = render_to_file(&f, &pdf, &len);
    assert_true(len > 1000);
    assert_memory_equal(pdf, "%PDF-1.5", 8);
    char *text = pdftest_text(path, 0, 0);
    assert_non_null(text);
    const char *want[] = {"INVOICE",
                          "ACME-2026-000042",
                          "Acme LLP",
                          "1 Law Street",
                          "GB123456789",
                          "Globex Corporation",
                          "ap@client.example",
                          "Issue date: 2026-03-04",
                          "Due date: 2026-04-03",
                          "Line 1 advice",
                          "Line 2 advice",
                          "Line 3 advice",
                          "1234.56 USD",
                          "Subtotal",
                          "3703.68 USD",
                          "Tax",
                          "740.73 USD",
                          "Total",
                          "4444.41 USD",
                          "Amount paid",
                          "617.28 USD",
                          "Balance due",
                          "3827.13 USD",
                          "IBAN GB00 ACME 0000 1111",
                          "Description",
                          "Quantity"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("'%s' not in the PDF's text:\n%s", want[i], text);
    assert_int_equal(pdftest_pages(path), 1);
    free(text);
    pdftest_remove(path);
    free(pdf);
    document_facts_free(&f);
}

static void test_same_facts_same_bytes(void **state)
{
    (void)state;
    document_facts f;
    facts(&f, "eur", "Initech GmbH", 12, 9900);
    unsigned char *a, *b;
    size_t alen, blen;
    char err[256];
    assert_int_equal(document_render(&f, &a, &alen, err, sizeof err), 0);
    assert_int_equal(document_render(&f, &b, &blen, err, sizeof err), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    char ha[DOCUMENT_SHA256_HEX], hb[DOCUMENT_SHA256_HEX];
    document_sha256_hex(a, alen, ha);
    document_sha256_hex(b, blen, hb);
    assert_string_equal(ha, hb);
    assert_int_equal(strlen(ha), 64);
    /* The creation date is the issue date, not the clock. */
    /* (cairo 1.16 writes the date without the "D:" of the PDF
     * specification; readers accept it: pdfinfo shows Mar 4 2026.) */
    assert_true(contains(a, alen, "/CreationDate (20260304000000Z)"));
    assert_true(contains(a, alen, "/ModDate (20260304000000Z)"));
    /* Different facts, different bytes. */
    free(f.client_name);
    f.client_name = strdup("Initech AG");
    unsigned char *c;
    size_t clen;
    assert_int_equal(document_render(&f, &c, &clen, err, sizeof err), 0);
    assert_false(clen == alen && memcmp(a, c, alen) == 0);
    free(a);
    free(b);
    free(c);
    document_facts_free(&f);
}

static void test_long_invoice_paginates_with_header(void **state)
{
    (void)state;
    document_facts f;
    facts(&f, "usd", "Umbrella plc", 200, 10000);
    unsigned char *pdf;
    size_t len;
    char *path = render_to_file(&f, &pdf, &len);
    int pages = pdftest_pages(path);
    assert_true(pages > 1);
    for (int pg = 2; pg <= pages; pg++) {
        char *t = pdftest_text(path, pg, pg);
        assert_non_null(t);
        const char *want[] = {"ACME-2026-000042", "(continued)", "Description",
                              "Quantity",         "Rate",        "Amount"};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            if (strstr(t, want[i]) == NULL)
                fail_msg("page %d lacks '%s':\n%s", pg, want[i], t);
        free(t);
    }
    char *all = pdftest_text(path, 0, 0);
    for (size_t i = 1; i <= 200; i++) {
        char want[32];
        snprintf(want, sizeof want, "Line %zu advice", i);
        if (strstr(all, want) == NULL)
            fail_msg("'%s' is on no page", want);
    }
    assert_non_null(strstr(all, "Balance due"));
    free(all);
    pdftest_remove(path);
    free(pdf);
    document_facts_free(&f);
}

static void test_currency_exponents(void **state)
{
    (void)state;
    struct {
        const char *cur;
        int64_t amount;
        const char *line, *total;
    } cases[] = {{"jpy", 120000, "120000 JPY", "144000 JPY"},
                 {"kwd", 150125, "150.125 KWD", "180.150 KWD"}};
    for (size_t i = 0; i < 2; i++) {
        document_facts f;
        facts(&f, cases[i].cur, "Client", 1, cases[i].amount);
        unsigned char *pdf;
        size_t len;
        char *path = render_to_file(&f, &pdf, &len);
        char *t = pdftest_text(path, 0, 0);
        if (strstr(t, cases[i].line) == NULL || strstr(t, cases[i].total) == NULL)
            fail_msg("%s: '%s' / '%s' not in:\n%s", cases[i].cur, cases[i].line, cases[i].total, t);
        free(t);
        pdftest_remove(path);
        free(pdf);
        document_facts_free(&f);
    }
}

static void test_unicode_names(void **state)
{
    (void)state;
    /* Accents, CJK, Hebrew and Arabic in the client's name: the layout
     * holds (the amounts stay where they are) and the text is extractable. */
    document_facts f;
    facts(&f, "usd",
          "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale / \xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a"
          "\xe7\xa4\xbe\xe6\x9d\xb1\xe4\xba\xac / \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d / "
          "\xd8\xb4\xd8\xb1\xd9\x83\xd8\xa9",
          2, 5000);
    free(f.lines[0].description);
    f.lines[0].description = strdup("\xe6\xb3\x95\xe5\xbe\x8b\xe9\xa1\xa7\xe9\x97\xae "
                                    "\xd7\x99\xd7\x99\xd7\xa2\xd7\x95\xd7\xa5 conseil juridique");
    unsigned char *pdf;
    size_t len;
    char *path = render_to_file(&f, &pdf, &len);
    char *t = pdftest_text(path, 0, 0);
    assert_non_null(t);
    const char *want[] = {
        "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale",
        "\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe\xe6\x9d\xb1\xe4\xba\xac",
        "\xe6\xb3\x95\xe5\xbe\x8b\xe9\xa1\xa7\xe9\x97\xae",
        "conseil juridique",
        "50.00 USD",
        "Balance due"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(t, want[i]) == NULL)
            fail_msg("'%s' not in:\n%s", want[i], t);
    assert_int_equal(pdftest_pages(path), 1);
    free(t);
    pdftest_remove(path);
    free(pdf);
    document_facts_free(&f);
}

static void test_bad_facts_refused(void **state)
{
    (void)state;
    document_facts f;
    char err[256];
    assert_int_equal(
        document_facts_from_json("{\"kind\":\"invoice\",\"currency\":\"US\"}", &f, err, sizeof err),
        -1);
    assert_int_equal(document_facts_from_json("not json", &f, err, sizeof err), -1);
    facts(&f, "usd", "X", 1, 100);
    free(f.issue_date);
    f.issue_date = strdup("04/03/2026");
    unsigned char *pdf;
    size_t len;
    assert_int_equal(document_render(&f, &pdf, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot render"));
    document_facts_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoice_shows_its_facts),
        cmocka_unit_test(test_same_facts_same_bytes),
        cmocka_unit_test(test_long_invoice_paginates_with_header),
        cmocka_unit_test(test_currency_exponents),
        cmocka_unit_test(test_unicode_names),
        cmocka_unit_test(test_bad_facts_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    document_release_fonts();
    return rc;
}
