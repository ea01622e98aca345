/* cmd_db.c: `billingctl db migrate` (connects as the schema owner,
 * OWNER_DATABASE_URL in the local stack; docs/OPERATIONS.md). */
#include <stdio.h>

#include "cli.h"
#include "ledgerline/config.h"
#include "ledgerline/db.h"
#include "ledgerline/migrations.h"

int cmd_db_migrate(int argc, char **argv, const cli_opts *o, const char *usage)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: billingctl %s\n", usage);
        return CLI_USAGE;
    }
    const char *url = config_require("DATABASE_URL");
    char err[1024];
    /* Migrations are the owner's (billing_owner, or a superuser on first
     * install): the one command for which that is no warning. */
    db_expect_privileged();
    db_conn *c = db_connect(url, 30000, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "billingctl: could not connect to DATABASE_URL: %s\n", err);
        return CLI_REFUSED;
    }
    int applied = 0;
    int rc = migrate_apply(c, &applied, err, sizeof err);
    db_close(c);
    if (rc != 0) {
        fprintf(stderr, "billingctl: db migrate failed: %s\n", err);
        return CLI_REFUSED;
    }
    if (o->json)
        printf("{\"applied\":%d,\"available\":%zu}\n", applied, ll_migrations_count);
    else
        printf("applied %d migration(s); %zu known, database is up to date\n", applied,
               ll_migrations_count);
    return CLI_OK;
}
