/* test_vocab.c: vocab.h's word lists agree with the database. For each
 * status/kind table, the allowed values of its CHECK constraint (read back
 * with pg_get_constraintdef, so whichever migration last defined it counts)
 * are exactly the table's words; billing.is_hard_decline (sql/004) answers
 * as LL_HARD_DECLINE_MAP does for every hard code, every labelled soft code
 * and a few unknown ones. A word added on one side only fails here.
 *
 * Needs DATABASE_URL pointing at a migrated database; reads only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/vocab.h"
#include "support/dbtest.h"

static PGconn *pg;

static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The words of v, sorted bytewise, joined by ',' (skip: a word left out). */
static void c_words(const ll_vocab *v, const char *skip, char *out, size_t cap)
{
    const char **w = calloc(v->count, sizeof *w);
    assert_non_null(w);
    size_t n = 0;
    for (size_t i = 0; i < v->count; i++)
        if (skip == NULL || strcmp(v->names[i], skip) != 0)
            w[n++] = v->names[i];
    qsort(w, n, sizeof *w, by_bytes);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(out + len, cap - len, "%s%s", i ? "," : "", w[i]);
        assert_true(k > 0 && (size_t)k < cap - len);
        len += (size_t)k;
    }
    free(w);
}

/* The quoted literals of constraint `name` on `table`, sorted bytewise
 * (COLLATE "C", as strcmp), joined by ','. Fails unless the constraint
 * exists. */
static const char *sql_words(const char *table, const char *name)
{
    const char *p[] = {table, name};
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM pg_constraint"
                               " WHERE conrelid = $1::regclass AND conname = $2 AND contype = 'c'",
                               2, p),
                     1);
    const char *s =
        dbtest_text(pg,
                    "SELECT string_agg(m[1], ',' ORDER BY m[1] COLLATE \"C\")"
                    " FROM pg_constraint c,"
                    "  regexp_matches(pg_get_constraintdef(c.oid), '''([^'']*)''', 'g') m"
                    " WHERE c.conrelid = $1::regclass AND c.conname = $2",
                    2, p);
    assert_non_null(s);
    return s;
}

static void assert_check_is(const char *table, const char *name, const ll_vocab *v,
                            const char *skip)
{
    char want[1024];
    c_words(v, skip, want, sizeof want);
    const char *got = sql_words(table, name);
    if (strcmp(got, want) != 0)
        fail_msg("%s.%s allows {%s}, the C table has {%s}", table, name, got, want);
}

static void test_checks_match_tables(void **state)
{
    (void)state;
    static const struct {
        const char *table, *constraint;
        const ll_vocab *v;
    } rows[] = {
        {"billing.invoices", "invoices_status_valid", &ll_invoice_statuses},
        {"billing.invoices", "invoices_autopay_status_valid", &ll_autopay_statuses},
        {"billing.payment_attempts", "payment_attempts_status_valid", &ll_attempt_statuses},
        {"billing.payment_attempts", "payment_attempts_kind_valid", &ll_attempt_kinds},
        {"billing.notifications", "notifications_kind_valid", &ll_notification_kinds},
        {"billing.notifications", "notifications_status_valid", &ll_notification_statuses},
        {"billing.invoice_documents", "invoice_documents_kind_valid", &ll_document_kinds},
        {"billing.payment_disputes", "payment_disputes_status_valid", &ll_dispute_statuses},
        {"billing.refunds", "refunds_status_valid", &ll_refund_statuses},
        {"billing.invoice_line_items", "invoice_line_items_line_type_valid", &ll_line_types},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_check_is(rows[i].table, rows[i].constraint, rows[i].v, NULL);
}

/* The status a won dispute restores: every invoice status but void (sql/012
 * added void to invoices_status_valid only; a void invoice was never
 * charged, so it cannot be disputed). */
static void test_status_before_dispute(void **state)
{
    (void)state;
    assert_check_is("billing.invoices", "invoices_status_before_dispute_valid",
                    &ll_invoice_statuses, "void");
}

/* billing.is_hard_decline(code), as 't', 'f' or NULL (SQL NULL). */
static const char *sql_hard(const char *code)
{
    const char *p[] = {code};
    return dbtest_text(pg, "SELECT billing.is_hard_decline($1)::text", 1, p);
}

static void assert_sql_hard(const char *code, bool want)
{
    const char *got = sql_hard(code);
    if (got == NULL || strcmp(got, want ? "true" : "false") != 0)
        fail_msg("billing.is_hard_decline('%s') is %s, C says %s", code, got ? got : "NULL",
                 want ? "hard" : "not hard");
}

static void test_hard_declines_agree(void **state)
{
    (void)state;
    for (size_t i = 0; i < ll_hard_declines.count; i++)
        assert_sql_hard(ll_hard_declines.names[i], true);
    for (size_t i = 0; i < ll_soft_failures.count; i++)
        assert_sql_hard(ll_soft_failures.names[i], false);
    const char *unknown[] = {"", "other", "EXPIRED_CARD", "expired_card ", "card_declined_x"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_sql_hard(unknown[i], false);
    /* No code: C says not hard; SQL says NULL (unknown), never true. */
    assert_null(sql_hard(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks_match_tables),
        cmocka_unit_test(test_status_before_dispute),
        cmocka_unit_test(test_hard_declines_agree),
    };
    pg = dbtest_connect();
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(pg);
    return failed;
}
