/* migrations.h: the schema migrations of sql/, embedded at build time, and the
 * runner behind `billingctl db migrate`. */
#ifndef LEDGERLINE_MIGRATIONS_H
#define LEDGERLINE_MIGRATIONS_H

#include <stddef.h>

#include "ledgerline/db.h"

typedef struct {
    const char *name; /* file name, e.g. "001_schema.sql"; the version is its prefix */
    const char *sql;
} ll_migration;

extern const ll_migration ll_migrations[];
extern const size_t ll_migrations_count;

/* Applies every embedded migration not yet recorded in
 * billing.schema_migrations, in order, each in its own transaction, under an
 * advisory lock so two migrators never race. *applied receives how many ran.
 * A recorded migration whose checksum differs from the embedded one is an
 * error (someone edited an applied migration). Returns 0 or -1 with err. */
int migrate_apply(db_conn *c, int *applied, char *err, size_t errlen);

#endif
