/* migrate.c: applies the embedded sql/ migrations once each, in order.
 *
 * Each migration runs in its own transaction together with the row that
 * records it, so a crash leaves it either fully applied and recorded or not
 * at all. A session advisory lock serialises concurrent migrators (several
 * replicas starting at once). Checksums catch an applied file edited later,
 * which would otherwise leave databases silently different.
 *
 * After applying anything it runs the role policy of 010_roles.sql
 * (billing.grant_runtime_roles(), when it exists) once more, so that the
 * runtime roles get what the policy gives them also on objects of a
 * migration that did not end with that call (one numbered below 010 that
 * reached a database after 010 did).
 */
#include "ledgerline/migrations.h"

#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

#include "ledgerline/log.h"

/* Arbitrary constant naming "the ledgerline migration lock". */
#define MIGRATE_LOCK_ID "7241680923"

static void sha256_hex(const char *data, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data, strlen(data), md, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

static int exec_script(db_conn *c, const char *sql, char *err, size_t errlen)
{
    /* A migration is a multi-statement script with no values in it, which
     * only the simple-query protocol (PQexec) can run. */
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static int ensure_bookkeeping(db_conn *c, char *err, size_t errlen)
{
    return exec_script(c,
                       "CREATE SCHEMA IF NOT EXISTS billing;"
                       "CREATE TABLE IF NOT EXISTS billing.schema_migrations ("
                       "  version text PRIMARY KEY,"
                       "  name text NOT NULL,"
                       "  checksum text NOT NULL,"
                       "  applied_at timestamptz NOT NULL DEFAULT now())",
                       err, errlen);
}

/* 1 = already applied (checksum matches), 0 = pending, -1 = error. */
static int applied_state(db_conn *c, const char *version, const char *sum, char *err, size_t errlen)
{
    const char *p[] = {version};
    PGresult *r = db_exec(c, "SELECT checksum FROM billing.schema_migrations WHERE version = $1", 1,
                          p, NULL, err, errlen);
    if (r == NULL)
        return -1;
    int state = 0;
    if (PQntuples(r) > 0) {
        state = 1;
        if (strcmp(PQgetvalue(r, 0, 0), sum) != 0) {
            snprintf(err, errlen,
                     "migration %s was changed after it was applied (checksum differs); "
                     "write a new migration instead of editing an applied one",
                     version);
            state = -1;
        }
    }
    PQclear(r);
    return state;
}

static int apply_one(db_conn *c, const ll_migration *m, const char *version, const char *sum,
                     char *err, size_t errlen)
{
    if (exec_script(c, "BEGIN", err, errlen) != 0)
        return -1;
    char serr[1024];
    if (exec_script(c, m->sql, serr, sizeof serr) != 0) {
        snprintf(err, errlen, "migration %s failed: %s", m->name, serr);
        PQclear(PQexec(c->pg, "ROLLBACK"));
        return -1;
    }
    const char *p[] = {version, m->name, sum};
    if (db_command(c,
                   "INSERT INTO billing.schema_migrations(version, name, checksum) "
                   "VALUES ($1, $2, $3)",
                   3, p, err, errlen) != DB_OK ||
        exec_script(c, "COMMIT", err, errlen) != 0) {
        PQclear(PQexec(c->pg, "ROLLBACK"));
        return -1;
    }
    log_msg(LL_LOG_INFO, "migration applied", "migration", m->name, NULL);
    return 0;
}

int migrate_apply(db_conn *c, int *applied, char *err, size_t errlen)
{
    *applied = 0;
    if (exec_script(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_ID ")", err, errlen) != 0)
        return -1;
    int rc = ensure_bookkeeping(c, err, errlen);
    for (size_t i = 0; rc == 0 && i < ll_migrations_count; i++) {
        const ll_migration *m = &ll_migrations[i];
        char version[4] = {m->name[0], m->name[1], m->name[2], '\0'};
        char sum[65];
        sha256_hex(m->sql, sum);
        int state = applied_state(c, version, sum, err, errlen);
        if (state < 0)
            rc = -1;
        else if (state == 0) {
            rc = apply_one(c, m, version, sum, err, errlen);
            if (rc == 0)
                (*applied)++;
        }
    }
    if (rc == 0 && *applied > 0) {
        /* plpgsql resolves the call only when it runs: a database whose
         * migrations stop before 010 has no such function. */
        char perr[1024];
        if (exec_script(c,
                        "DO $$ BEGIN"
                        " IF to_regprocedure('billing.grant_runtime_roles()') IS NOT NULL THEN"
                        "  PERFORM billing.grant_runtime_roles();"
                        " END IF; END $$",
                        perr, sizeof perr) != 0) {
            snprintf(err, errlen, "the role policy (billing.grant_runtime_roles) failed: %s", perr);
            rc = -1;
        }
    }
    char uerr[256];
    exec_script(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_ID ")", uerr, sizeof uerr);
    return rc;
}
