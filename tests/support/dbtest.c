/* dbtest.c: see dbtest.h. */
#include "dbtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static const char *dbtest_url(const char *name)
{
    const char *url = getenv(name);
    if (url != NULL && *url != '\0')
        return url;
    url = getenv("DATABASE_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "DATABASE_URL is not set: run the tests through tests/run.sh\n");
        exit(1);
    }
    return url;
}

const char *dbtest_owner_url(void)
{
    return dbtest_url("OWNER_DATABASE_URL");
}

const char *dbtest_worker_url(void)
{
    return dbtest_url("WORKER_DATABASE_URL");
}

PGconn *dbtest_connect(void)
{
    const char *url = dbtest_owner_url();
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to DATABASE_URL: %s", PQerrorMessage(c));
        exit(1);
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

const char *dbtest_unique(void)
{
    static char buf[64];
    static unsigned seq;
    snprintf(buf, sizeof buf, "t%ld-%u-%ld", (long)getpid(), ++seq, (long)time(NULL));
    return buf;
}

static PGresult *run(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    return PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
}

int64_t dbtest_ok(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = run(c, sql, nparams, params);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "statement failed: %s\n  %s\n", PQresultErrorMessage(r), sql);
        PQclear(r);
        fail();
    }
    int64_t v = 0;
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

void dbtest_refused(PGconn *c, const char *expect, const char *sql, int nparams,
                    const char *const *params)
{
    PGresult *r = run(c, sql, nparams, params);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        fprintf(stderr, "statement was accepted, expected refusal mentioning '%s':\n  %s\n", expect,
                sql);
        PQclear(r);
        fail();
    }
    const char *msg = PQresultErrorMessage(r);
    if (strstr(msg, expect) == NULL) {
        fprintf(stderr, "refused with '%s', expected it to mention '%s'\n  %s\n", msg, expect, sql);
        PQclear(r);
        fail();
    }
    PQclear(r);
    /* Leave the session usable if the statement ran inside a transaction. */
    if (PQtransactionStatus(c) == PQTRANS_INERROR) {
        r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
}

const char *dbtest_text(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    static char buf[4096];
    PGresult *r = run(c, sql, nparams, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "query failed: %s\n  %s\n", PQresultErrorMessage(r), sql);
        PQclear(r);
        fail();
    }
    if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return NULL;
    }
    snprintf(buf, sizeof buf, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

int64_t dbtest_firm(PGconn *c)
{
    char slug[80];
    snprintf(slug, sizeof slug, "firm-%s", dbtest_unique());
    const char *p[] = {slug};
    return dbtest_ok(
        c, "INSERT INTO billing.firms(name, slug) VALUES ('Test firm', $1) RETURNING id", 1, p);
}

int64_t dbtest_client(PGconn *c, int64_t firm_id)
{
    char firm[32];
    snprintf(firm, sizeof firm, "%lld", (long long)firm_id);
    const char *p[] = {firm};
    return dbtest_ok(c,
                     "INSERT INTO billing.clients(firm_id, company_name, primary_contact_email) "
                     "VALUES ($1, 'Client Co', 'ap@client.test') RETURNING id",
                     1, p);
}
