/* test_queries.c: every query of sql/queries/ (embedded as ll_queries[],
 * cmake/embed_queries.cmake) is valid SQL against the migrated schema:
 * PostgreSQL prepares each one, which parses it, resolves every table,
 * column, function and parameter type, and fails on a typo left by moving a
 * query out of C, even on a path no other test runs. tests/style.sh checks
 * that every file is used and says what it is on its first line.
 *
 * Needs DATABASE_URL pointing at a migrated database; prepares only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/queries.h"
#include "support/dbtest.h"

static void test_every_query_prepares(void **state)
{
    (void)state;
    PGconn *pg = dbtest_connect();
    assert_true(ll_queries_count > 0);
    int bad = 0;
    for (size_t i = 0; i < ll_queries_count; i++) {
        PGresult *r = PQprepare(pg, "", ll_queries[i].sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "sql/queries/%s.sql does not prepare: %s", ll_queries[i].name,
                    PQresultErrorMessage(r));
            bad++;
        }
        PQclear(r);
    }
    printf("prepared %zu queries, %d failed\n", ll_queries_count, bad);
    assert_int_equal(bad, 0);
    PQfinish(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_query_prepares)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
