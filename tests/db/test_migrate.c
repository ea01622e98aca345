/* test_migrate.c: `db migrate` applies each migration once, in order, records
 * it, and refuses a database whose applied migration was edited afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/db.h"
#include "ledgerline/migrations.h"
#include "support/dbtest.h"

static db_conn *connect_db(void)
{
    char err[512];
    db_conn *c = db_connect(dbtest_owner_url(), 5000, err, sizeof err);
    if (c == NULL)
        fail_msg("cannot connect: %s", err);
    return c;
}

static void test_migrate_is_idempotent(void **state)
{
    (void)state;
    db_conn *c = connect_db();
    char err[1024];
    int applied = -1;
    assert_int_equal(migrate_apply(c, &applied, err, sizeof err), 0);
    /* tests/run.sh migrated already, so nothing is pending now... */
    assert_int_equal(applied, 0);
    /* ...and a second run is just as quiet. */
    assert_int_equal(migrate_apply(c, &applied, err, sizeof err), 0);
    assert_int_equal(applied, 0);

    char want[32];
    snprintf(want, sizeof want, "%zu", ll_migrations_count);
    assert_string_equal(
        dbtest_text(c->pg, "SELECT count(*) FROM billing.schema_migrations", 0, NULL), want);
    assert_true(ll_migrations_count >= 1);
    /* Recorded in file order, versions are the file prefixes. */
    for (size_t i = 0; i < ll_migrations_count; i++) {
        char v[4] = {ll_migrations[i].name[0], ll_migrations[i].name[1], ll_migrations[i].name[2],
                     0};
        const char *p[] = {v};
        assert_string_equal(dbtest_text(c->pg,
                                        "SELECT name FROM billing.schema_migrations "
                                        "WHERE version = $1",
                                        1, p),
                            ll_migrations[i].name);
        if (i > 0)
            assert_true(strcmp(ll_migrations[i - 1].name, ll_migrations[i].name) < 0);
    }
    db_close(c);
}

static void test_migrate_refuses_edited_migration(void **state)
{
    (void)state;
    db_conn *c = connect_db();
    const char *sum = dbtest_text(c->pg,
                                  "SELECT checksum FROM billing.schema_migrations "
                                  "WHERE version = '001'",
                                  0, NULL);
    assert_non_null(sum);
    char saved[80];
    snprintf(saved, sizeof saved, "%s", sum);
    dbtest_ok(c->pg,
              "UPDATE billing.schema_migrations SET checksum = 'edited' WHERE version = '001'", 0,
              NULL);
    char err[1024];
    int applied = 0;
    assert_int_equal(migrate_apply(c, &applied, err, sizeof err), -1);
    assert_non_null(strstr(err, "changed after it was applied"));
    const char *p[] = {saved};
    dbtest_ok(c->pg, "UPDATE billing.schema_migrations SET checksum = $1 WHERE version = '001'", 1,
              p);
    assert_int_equal(migrate_apply(c, &applied, err, sizeof err), 0);
    db_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_is_idempotent),
        cmocka_unit_test(test_migrate_refuses_edited_migration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
