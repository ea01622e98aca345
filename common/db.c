/* db.c: PostgreSQL connections, error classification, the idempotent unit
 * of work (see db.h), and the one start-up check of the role a process
 * connects as (a WARNING for a superuser or the schema owner). */
#include "ledgerline/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/queries.h"
#include "ledgerline/shutdown.h"

static PGconn *connect_once(const char *url, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(url);
    if (PQstatus(pg) == CONNECTION_OK) {
        /* Server notices (e.g. "schema already exists") are not errors. */
        PQclear(PQexec(pg, "SET client_min_messages = warning"));
        return pg;
    }
    ll_failf(err, errlen, "could not connect to the database: %s", PQerrorMessage(pg));
    /* libpq messages end with a newline; a log line must not. */
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
    PQfinish(pg);
    return NULL;
}

static PGconn *connect_retry(const char *url, int max_wait_ms, char *err, size_t errlen)
{
    int waited = 0, delay = 100;
    for (;;) {
        PGconn *pg = connect_once(url, err, errlen);
        if (pg != NULL)
            return pg;
        if (waited >= max_wait_ms || shutdown_requested())
            return NULL;
        log_msg(LL_LOG_WARN, "database not reachable, retrying", "error", err, NULL);
        if (!shutdown_sleep_ms(delay))
            return NULL;
        waited += delay;
        delay = delay * 2 > 5000 ? 5000 : delay * 2;
    }
}

/* 0 = not checked yet, 1 = checked (or not wanted: db_expect_privileged). */
static int db_role_checked;

void db_expect_privileged(void)
{
    __atomic_store_n(&db_role_checked, 1, __ATOMIC_SEQ_CST);
}

/* Once per process, at its first connection: a runtime process should hold
 * a runtime role (billing_worker, billing_operator). A superuser or the
 * schema's owner can disable the rules' triggers and rewrite the
 * append-only tables; the process still runs (tests and one-off tools use
 * one), and says so. Never fails: a check that cannot run is skipped. */
static void db_check_role(PGconn *pg)
{
    if (__atomic_exchange_n(&db_role_checked, 1, __ATOMIC_SEQ_CST) != 0)
        return;
    PGresult *r = PQexec(pg, llq_db_role_check);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        const char *role = PQgetvalue(r, 0, 0);
        bool super = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
        bool owner = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
        if (super || owner)
            log_msg(LL_LOG_WARN,
                    super ? "DATABASE_URL names a superuser: it can disable the rules' triggers;"
                            " a runtime process should connect as billing_worker or"
                            " billing_operator"
                          : "DATABASE_URL names the schema owner: it can disable the rules'"
                            " triggers; a runtime process should connect as billing_worker or"
                            " billing_operator",
                    "db_user", role, "privilege", super ? "superuser" : "schema owner", NULL);
    }
    PQclear(r);
}

db_conn *db_connect(const char *url, int max_wait_ms, char *err, size_t errlen)
{
    PGconn *pg = connect_retry(url, max_wait_ms, err, errlen);
    if (pg == NULL)
        return NULL;
    db_check_role(pg);
    db_conn *c = calloc(1, sizeof *c);
    if (c == NULL || (c->url = strdup(url)) == NULL) {
        free(c);
        PQfinish(pg);
        ll_failf(err, errlen, "could not connect to the database: out of memory");
        return NULL;
    }
    c->pg = pg;
    return c;
}

void db_close(db_conn *c)
{
    if (c == NULL)
        return;
    PQfinish(c->pg);
    free(c->url);
    free(c);
}

bool db_ensure(db_conn *c, int max_wait_ms)
{
    if (PQstatus(c->pg) == CONNECTION_OK)
        return true;
    char err[256];
    PGconn *pg = connect_retry(c->url, max_wait_ms, err, sizeof err);
    if (pg == NULL)
        return false;
    PQfinish(c->pg);
    c->pg = pg;
    log_msg(LL_LOG_INFO, "database reconnected", NULL);
    return true;
}

db_status db_classify(const db_conn *c, const PGresult *r)
{
    if (PQstatus(c->pg) != CONNECTION_OK)
        return DB_TRANSIENT;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return DB_TRANSIENT; /* no answer from the server at all */
    /* 08: connection exception; 40: transaction rollback (serialization
     * failure, deadlock); 53: insufficient resources; 57P0x: server shutting
     * down or in recovery; 55P03: lock not available. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 ||
        strncmp(state, "53", 2) == 0 || strncmp(state, "57P0", 4) == 0 ||
        strcmp(state, "55P03") == 0)
        return DB_TRANSIENT;
    return DB_PERMANENT;
}

static void copy_error(const db_conn *c, const PGresult *r, char *err, size_t errlen)
{
    const char *msg = r ? PQresultErrorMessage(r) : "";
    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(c->pg);
    ll_failf(err, errlen, "%s", msg);
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

PGresult *db_exec(db_conn *c, const char *sql, int nparams, const char *const *params,
                  db_status *st, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        if (st)
            *st = DB_OK;
        return r;
    }
    db_status cls = db_classify(c, r);
    copy_error(c, r, err, errlen);
    PQclear(r);
    if (st)
        *st = cls;
    return NULL;
}

db_status db_command(db_conn *c, const char *sql, int nparams, const char *const *params, char *err,
                     size_t errlen)
{
    db_status st;
    PGresult *r = db_exec(c, sql, nparams, params, &st, err, errlen);
    PQclear(r);
    return st;
}

static void rollback(db_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

db_status db_run_once(db_conn *c, const char *consumer, const char *key, db_work_fn fn, void *arg,
                      char *err, size_t errlen)
{
    if (!db_ensure(c, 0)) {
        ll_failf(err, errlen,
                 "could not reach the database: the connection was lost and is not back yet");
        return DB_TRANSIENT;
    }
    db_status st = db_command(c, "BEGIN", 0, NULL, err, errlen);
    if (st != DB_OK)
        return st;
    if (key != NULL) {
        const char *p[] = {consumer, key};
        PGresult *r = db_exec(c, llq_db_claim_message, 2, p, &st, err, errlen);
        if (r == NULL) {
            rollback(c);
            return st;
        }
        bool fresh = strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
        if (!fresh) {
            rollback(c);
            return DB_DUPLICATE;
        }
    }
    st = fn(c, arg, err, errlen);
    if (st != DB_OK) {
        rollback(c);
        return st;
    }
    st = db_command(c, "COMMIT", 0, NULL, err, errlen);
    if (st != DB_OK)
        rollback(c);
    return st;
}

db_status db_run_tx(db_conn *c, db_work_fn fn, void *arg, char *err, size_t errlen)
{
    return db_run_once(c, NULL, NULL, fn, arg, err, errlen);
}

const char *db_i64(int64_t v, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%lld", (long long)v);
    return buf;
}

const char *db_status_name(db_status s)
{
    switch (s) {
    case DB_OK: return "ok";
    case DB_DUPLICATE: return "duplicate";
    case DB_PERMANENT: return "permanent";
    case DB_TRANSIENT: return "transient";
    }
    return "unknown";
}

db_status db_require_firm(db_conn *c, int64_t firm_id, char *err, size_t errlen)
{
    const char *p[] = {DB_I64(firm_id)};
    bool found = false;
    db_status st = db_exists(c, "SELECT 1 FROM billing.firms WHERE id = $1::bigint", 1, p, &found,
                             err, errlen);
    if (st != DB_OK || found)
        return st;
    ll_failf(err, errlen, "no such firm: %lld", (long long)firm_id);
    return DB_PERMANENT;
}

db_status db_query_i64(db_conn *c, const char *sql, int nparams, const char *const *params,
                       bool *found, int64_t *value, char *err, size_t errlen)
{
    db_status st;
    PGresult *r = db_exec(c, sql, nparams, params, &st, err, errlen);
    if (r == NULL)
        return st;
    bool row = PQntuples(r) > 0;
    if (found != NULL)
        *found = row;
    if (value != NULL)
        *value = row && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return DB_OK;
}

db_status db_exists(db_conn *c, const char *sql, int nparams, const char *const *params,
                    bool *found, char *err, size_t errlen)
{
    return db_query_i64(c, sql, nparams, params, found, NULL, err, errlen);
}

PGresult *db_exec_row(db_conn *c, const char *sql, int nparams, const char *const *params,
                      db_status *st, char *err, size_t errlen, const char *fmt, ...)
{
    db_status s;
    PGresult *r = db_exec(c, sql, nparams, params, &s, err, errlen);
    if (r != NULL && PQntuples(r) == 0) {
        PQclear(r);
        r = NULL;
        s = DB_PERMANENT;
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        ll_failf(err, errlen, "%s", why);
    }
    if (st != NULL)
        *st = s;
    return r;
}
