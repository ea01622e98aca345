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

#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/queries.h"

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
        ll_failf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

/* The schema, then its bookkeeping table (two statements: a query file
 * holds one, so that tests/db/test_queries can prepare it). */
static int ensure_bookkeeping(db_conn *c, char *err, size_t errlen)
{
    if (exec_script(c, "CREATE SCHEMA IF NOT EXISTS billing", err, errlen) != 0)
        return -1;
    return exec_script(c, llq_migrate_bookkeeping, err, errlen);
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
            ll_failf(err, errlen, "cannot migrate: migration %s was changed after it was applied",
                     version);
            ll_detailf(err, errlen,
                       "Its checksum differs from the one recorded when it was applied.");
            ll_hintf(err, errlen, "Write a new migration instead of editing an applied one.");
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
        ll_failf(err, errlen, "could not apply migration %s: %s", m->name, serr);
        PQclear(PQexec(c->pg, "ROLLBACK"));
        return -1;
    }
    const char *p[] = {version, m->name, sum};
    if (db_command(c, llq_migrate_record, 3, p, err, errlen) != DB_OK ||
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
        /* Only when it exists (sql/queries/migrate_role_policy.sql says why). */
        char perr[1024];
        if (exec_script(c, llq_migrate_role_policy, perr, sizeof perr) != 0) {
            ll_failf(err, errlen,
                     "could not apply the role policy (billing.grant_runtime_roles): %s", perr);
            rc = -1;
        }
    }
    char uerr[256];
    exec_script(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_ID ")", uerr, sizeof uerr);
    return rc;
}
