/* test_roles.c: the database roles of sql/010_roles.sql (CONTRACT
 * "Hardening"), against the local stack's PostgreSQL.
 *
 * - As billing_worker and as billing_operator, every way around the rules is
 *   refused with SQLSTATE 42501 (insufficient privilege): disabling, dropping
 *   or adding a trigger, TRUNCATE of every table of the schema, UPDATE and
 *   DELETE of audit events, credit-ledger rows and applied-message keys,
 *   SET session_replication_role, DDL in the schema (or anywhere), COPY to a
 *   program or a server file, becoming another role, running the policy.
 * - Each can do what its processes do: a real invoicing run (the worker's
 *   code, in-process) and a credit entry as billing_worker, billingctl
 *   commands as billing_operator; audit events record the database user.
 * - A process given a superuser or owner URL runs and logs a WARNING.
 * - Migrations: two fresh databases migrated at once as billing_owner; two
 *   migrations creating the same cluster-wide role at once both succeed.
 *
 * The runtime roles' URLs come from the stack (WORKER_DATABASE_URL,
 * OPERATOR_DATABASE_URL); without them the roles are reached with the
 * owner URL's connection and their name (the local cluster trusts
 * loopback). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/db.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/log.h"
#include "support/ctltest.h"
#include "support/dbtest.h"

static PGconn *owner;
static char out[65536], errout[65536];

#define I64(v) db_i64((v), (char[24]){0}, 24)

/* A keyword/value connection string: url's settings with user and dbname
 * replaced when given (NULL: keep), the password dropped when the user
 * changes. */
static void conninfo_as(const char *url, const char *user, const char *dbname, char *buf,
                        size_t len)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL)
        fail_msg("cannot parse the database URL: %s", perr ? perr : "out of memory");
    size_t n = 0;
    buf[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        const char *v = o->val;
        if (strcmp(o->keyword, "user") == 0 && user != NULL)
            v = user;
        else if (strcmp(o->keyword, "dbname") == 0 && dbname != NULL)
            v = dbname;
        else if (strcmp(o->keyword, "password") == 0 && user != NULL)
            v = NULL;
        if (v == NULL)
            continue;
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s='", o->keyword);
        for (const char *c = v; *c != '\0'; c++) {
            if (*c == '\'' || *c == '\\')
                n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "\\");
            n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%c", *c);
        }
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "' ");
    }
    PQconninfoFree(opts);
    assert_true(n < len);
}

/* The URL of a runtime role: the stack's, else derived from the owner's. */
static const char *role_url(const char *role)
{
    static char worker[2048], operator[2048];
    bool is_worker = strcmp(role, "billing_worker") == 0;
    const char *env = getenv(is_worker ? "WORKER_DATABASE_URL" : "OPERATOR_DATABASE_URL");
    if (env != NULL && *env != '\0')
        return env;
    char *buf = is_worker ? worker : operator;
    conninfo_as(dbtest_owner_url(), role, NULL, buf, 2048);
    return buf;
}

static PGconn *connect_url(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static const char *one(PGconn *c, const char *sql)
{
    return dbtest_text(c, sql, 0, NULL);
}

/* Runs sql; fails unless it is refused with SQLSTATE state. */
static void refused(PGconn *c, const char *state, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_OUT) {
        PQclear(r);
        /* A COPY that started must be drained before the next command. */
        while ((r = PQgetResult(c)) != NULL)
            PQclear(r);
        fail_msg("accepted as %s: %s", PQuser(c), sql);
    }
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (got == NULL || strcmp(got, state) != 0)
        fail_msg("as %s, %s\n  was refused with %s (%s), expected %s", PQuser(c), sql,
                 got ? got : "(none)", PQresultErrorMessage(r), state);
    PQclear(r);
    if (PQtransactionStatus(c) == PQTRANS_INERROR)
        PQclear(PQexec(c, "ROLLBACK"));
}

static int setup(void **state)
{
    (void)state;
    log_init("test_roles");
    log_set_level(LL_LOG_ERROR);
    owner = dbtest_connect();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(owner);
    return 0;
}

/* ---- refusals ----------------------------------------------------------- */

static void assert_refusals(const char *role)
{
    PGconn *c = connect_url(role_url(role));
    assert_string_equal(one(c, "SELECT session_user"), role);
    assert_string_equal(one(c, "SELECT rolsuper::text FROM pg_roles WHERE rolname = session_user"),
                        "false");

    /* Triggers: the rules' own, all of them, or a new one. */
    refused(c, "42501",
            "ALTER TABLE billing.credit_ledger DISABLE TRIGGER credit_ledger_rule_1_7_append_only");
    refused(c, "42501", "ALTER TABLE billing.audit_events DISABLE TRIGGER ALL");
    refused(c, "42501", "ALTER TABLE billing.invoices DISABLE TRIGGER USER");
    refused(c, "42501", "DROP TRIGGER audit_events_rule_1_7_append_only ON billing.audit_events");
    refused(c, "42501", "DROP TRIGGER credit_ledger_rule_1_7_no_truncate ON billing.credit_ledger");
    refused(c, "42501",
            "CREATE TRIGGER t_evil BEFORE INSERT ON billing.invoices FOR EACH ROW"
            " EXECUTE FUNCTION billing.touch_updated_at()");
    refused(c, "42501",
            "ALTER TABLE billing.invoices DROP CONSTRAINT"
            " invoices_rule_1_4_total_equals_subtotal_plus_tax");

    /* TRUNCATE of every table of the schema. */
    PGresult *t = PQexec(owner, "SELECT format('TRUNCATE %s', c.oid::regclass) FROM pg_class c"
                                " WHERE c.relnamespace = 'billing'::regnamespace"
                                " AND c.relkind IN ('r', 'p') ORDER BY 1");
    assert_int_equal(PQresultStatus(t), PGRES_TUPLES_OK);
    assert_true(PQntuples(t) >= 15);
    for (int i = 0; i < PQntuples(t); i++)
        refused(c, "42501", PQgetvalue(t, i, 0));
    PQclear(t);

    /* Append-only and insert-only tables: no UPDATE, no DELETE (refused for
     * the privilege, before any trigger could run). */
    static const char *const insert_only[] = {"billing.audit_events", "billing.credit_ledger",
                                              "billing.processed_messages"};
    for (size_t i = 0; i < sizeof insert_only / sizeof insert_only[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "UPDATE %s SET created_at = created_at", insert_only[i]);
        if (strcmp(insert_only[i], "billing.processed_messages") == 0)
            snprintf(sql, sizeof sql, "UPDATE %s SET processed_at = processed_at", insert_only[i]);
        refused(c, "42501", sql);
        snprintf(sql, sizeof sql, "DELETE FROM %s", insert_only[i]);
        refused(c, "42501", sql);
    }
    refused(c, "42501", "UPDATE billing.schema_migrations SET checksum = checksum");
    refused(c, "42501", "INSERT INTO billing.schema_migrations VALUES ('999', 'x', 'x')");
    refused(c, "42501", "DELETE FROM billing.invoices WHERE false");

    /* Not a superuser: no replication role, no programs, no server files. */
    refused(c, "42501", "SET session_replication_role = replica");
    refused(c, "42501", "BEGIN; SET LOCAL session_replication_role = replica");
    refused(c, "42501", "COPY (SELECT 1) TO PROGRAM 'true'");
    refused(c, "42501", "COPY billing.firms FROM PROGRAM 'true'");
    refused(c, "42501", "COPY billing.firms TO '/tmp/ledgerline-test-roles.out'");

    /* No DDL: not in the schema, not elsewhere. */
    refused(c, "42501", "CREATE TABLE billing.evil (id int)");
    refused(c, "42501", "CREATE FUNCTION billing.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'");
    refused(c, "42501", "CREATE VIEW billing.evil AS SELECT 1");
    refused(c, "42501", "CREATE TABLE public.evil (id int)");
    refused(c, "42501", "CREATE SCHEMA evil");
    refused(c, "42501", "DROP TABLE billing.audit_events");
    refused(c, "42501", "ALTER TABLE billing.audit_events ADD COLUMN evil int");
    refused(c, "42501", "ALTER FUNCTION billing.rule_1_7_append_only() RENAME TO evil");
    refused(c, "42501",
            "CREATE OR REPLACE FUNCTION billing.rule_1_7_append_only() RETURNS trigger"
            " LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'");

    /* Not another role, and not the policy. */
    refused(c, "42501", "SET ROLE billing_owner");
    refused(c, "42501", "SET SESSION AUTHORIZATION billing_owner");
    refused(c, "42501", "GRANT billing_owner TO billing_worker");
    refused(c, "42501", "ALTER ROLE billing_worker SUPERUSER");
    refused(c, "42501", "SELECT billing.grant_runtime_roles()");
    refused(c, "42501", "SELECT billing.ensure_role('billing_evil')");
    PQfinish(c);
}

static void test_worker_refused(void **state)
{
    (void)state;
    assert_refusals("billing_worker");
}

static void test_operator_refused(void **state)
{
    (void)state;
    assert_refusals("billing_operator");
}

/* ---- what the runtime roles do ------------------------------------------ */

/* The worker's code (a real invoicing run, the credit ledger, applied
 * message keys) as billing_worker; audit events say who wrote them, and an
 * INSERT cannot claim another database user. */
static void test_worker_does_its_work(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(owner), client = dbtest_client(owner, firm);
    const char *pe[] = {I64(firm), I64(client)};
    int64_t eng = dbtest_ok(owner,
                            "INSERT INTO billing.engagements(firm_id, client_id, title,"
                            " pricing_mode, package_fee_cents, start_date)"
                            " VALUES ($1, $2, 'Retainer', 'package', 25000, '2026-01-01')"
                            " RETURNING id",
                            2, pe);
    char err[1024];
    db_conn *w = db_connect(role_url("billing_worker"), 5000, err, sizeof err);
    if (w == NULL)
        fail_msg("connect as billing_worker: %s", err);
    invoicing_params p = {.shard = 0, .shards = 1, .firm_id = firm};
    assert_true(date_parse("2026-03-05", &p.business_date));
    invoicing_stats s;
    if (invoicing_run(w, &p, &s, err, sizeof err) != DB_OK)
        fail_msg("invoicing_run as billing_worker: %s", err);
    assert_int_equal(s.invoices, 1);
    const char *pi[] = {I64(eng)};
    assert_string_equal(dbtest_text(owner,
                                    "SELECT a.db_user FROM billing.audit_events a"
                                    " JOIN billing.invoices i"
                                    " ON i.id = (a.metadata->>'invoice_id')::bigint"
                                    " WHERE i.engagement_id = $1",
                                    1, pi),
                        "billing_worker");

    /* Applied-message keys: inserted and read, never changed. */
    char key[64];
    snprintf(key, sizeof key, "test-roles:%s", dbtest_unique());
    const char *pk[] = {key};
    dbtest_ok(w->pg,
              "INSERT INTO billing.processed_messages(consumer, idempotency_key)"
              " VALUES ('test_roles', $1) ON CONFLICT DO NOTHING",
              1, pk);
    assert_int_equal(dbtest_ok(w->pg,
                               "SELECT count(*) FROM billing.processed_messages"
                               " WHERE consumer = 'test_roles' AND idempotency_key = $1",
                               1, pk),
                     1);

    /* A credit entry (append-only, with its audit event). */
    const char *pc[] = {I64(firm), I64(client)};
    dbtest_ok(w->pg,
              "WITH a AS (SELECT billing.audit($1::bigint, 'credit_added', 'INFO', 'test', '{}')"
              " AS id) INSERT INTO billing.credit_ledger(firm_id, client_id, entry_type,"
              " amount_cents, source, description, audit_event_id)"
              " SELECT $1::bigint, $2::bigint, 'credit', 500, 'promotional', 'test', id FROM a",
              2, pc);
    assert_string_equal(dbtest_text(owner,
                                    "SELECT string_agg(DISTINCT a.db_user, ',')"
                                    " FROM billing.credit_ledger l JOIN billing.audit_events a"
                                    " ON a.id = l.audit_event_id WHERE l.client_id = $2"
                                    " AND l.firm_id = $1",
                                    2, pc),
                        "billing_worker");

    /* db_user is the session's, whatever the INSERT says. */
    const char *pf[] = {I64(firm)};
    int64_t id = dbtest_ok(w->pg,
                           "INSERT INTO billing.audit_events(firm_id, action, actor, db_user)"
                           " VALUES ($1, 'test_forged_db_user', 'mallory', 'postgres')"
                           " RETURNING id",
                           1, pf);
    const char *pid[] = {I64(id)};
    assert_string_equal(dbtest_text(owner,
                                    "SELECT actor || '/' || db_user FROM billing.audit_events"
                                    " WHERE id = $1",
                                    1, pid),
                        "mallory/billing_worker");
    db_close(w);
}

/* billingctl as billing_operator: its commands write what they write, the
 * audit events say billing_operator beside the --by name, and no warning. */
static void test_operator_runs_billingctl(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(owner), client = dbtest_client(owner, firm);
    const char *url = role_url("billing_operator");
    assert_int_equal(ctltest(out, sizeof out, errout, sizeof errout, url, "--json", "credit", "add",
                             "--client", I64(client), "--amount-cents", "700", "--source",
                             "promotional", "--description", "welcome", "--created-by", "pat",
                             NULL),
                     0);
    assert_null(strstr(errout, "superuser"));
    assert_null(strstr(errout, "schema owner"));
    const char *pc[] = {I64(client)};
    assert_string_equal(
        dbtest_text(
            owner,
            "SELECT a.actor || '/' || a.db_user"
            " FROM billing.credit_ledger l JOIN billing.audit_events a ON a.id = l.audit_event_id"
            " WHERE l.client_id = $1",
            1, pc),
        "pat/billing_operator");
    assert_int_equal(ctltest(out, sizeof out, errout, sizeof errout, url, "report", "revenue",
                             "--firm-id", I64(firm), "--from", "2026-01-01", "--to", "2026-12-31",
                             NULL),
                     0);
}

/* ---- the warning -------------------------------------------------------- */

static void test_privileged_url_warns(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(owner);
    const char *const report[] = {"report",     "revenue", "--firm-id",  I64(firm), "--from",
                                  "2026-01-01", "--to",    "2026-01-31", NULL};
    char env_url[2200];
    const char *env[] = {env_url, NULL};

    /* A superuser: runs, and says so once. */
    snprintf(env_url, sizeof env_url, "DATABASE_URL=%s", dbtest_owner_url());
    if (strcmp(one(owner, "SELECT rolsuper::text FROM pg_roles WHERE rolname = session_user"),
               "true") == 0) {
        assert_int_equal(ctltest_argv(out, sizeof out, errout, sizeof errout, env, report), 0);
        assert_non_null(strstr(errout, "\"level\":\"warn\""));
        assert_non_null(strstr(errout, "DATABASE_URL names a superuser"));
        assert_non_null(strstr(errout, "\"privilege\":\"superuser\""));
        assert_null(strstr(errout, "password"));
        const char *first = strstr(errout, "names a superuser");
        assert_null(strstr(first + 1, "names a superuser"));
        /* db migrate is the owner's command: no warning. */
        const char *const migrate[] = {"db", "migrate", NULL};
        assert_int_equal(ctltest_argv(out, sizeof out, errout, sizeof errout, env, migrate), 0);
        assert_null(strstr(errout, "names a superuser"));
    }

    /* The schema owner (billing_owner): runs, and says so. */
    char url[2048];
    conninfo_as(dbtest_owner_url(), "billing_owner", NULL, url, sizeof url);
    PGconn *probe = PQconnectdb(url);
    bool reachable = PQstatus(probe) == CONNECTION_OK;
    PQfinish(probe);
    if (reachable) { /* trust on loopback: the local stack */
        snprintf(env_url, sizeof env_url, "DATABASE_URL=%s", url);
        assert_int_equal(ctltest_argv(out, sizeof out, errout, sizeof errout, env, report), 0);
        assert_non_null(strstr(errout, "DATABASE_URL names the schema owner"));
        assert_non_null(strstr(errout, "\"db_user\":\"billing_owner\""));
    }

    /* A runtime role: no warning. */
    snprintf(env_url, sizeof env_url, "DATABASE_URL=%s", role_url("billing_worker"));
    assert_int_equal(ctltest_argv(out, sizeof out, errout, sizeof errout, env, report), 0);
    assert_null(strstr(errout, "DATABASE_URL names"));
}

/* ---- migrations --------------------------------------------------------- */

static pid_t migrate_async(const char *url)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        setenv("DATABASE_URL", url, 1);
        setenv("LOG_LEVEL", "warn", 1);
        execl(LL_BILLINGCTL_BIN, LL_BILLINGCTL_BIN, "db", "migrate", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Two fresh databases of this cluster, owned by billing_owner and migrated
 * by it at the same time: both complete, billing_owner owns everything,
 * and the runtime roles have their grants in both. */
static void test_parallel_migrations_as_owner(void **state)
{
    (void)state;
    char url[2048];
    conninfo_as(dbtest_owner_url(), "billing_owner", NULL, url, sizeof url);
    PGconn *probe = PQconnectdb(url);
    bool reachable = PQstatus(probe) == CONNECTION_OK;
    PQfinish(probe);
    if (!reachable || strcmp(one(owner, "SELECT (rolcreatedb OR rolsuper)::text FROM pg_roles"
                                        " WHERE rolname = session_user"),
                             "true") != 0) {
        fprintf(stderr, "skipped: needs CREATEDB and loopback trust (the local stack)\n");
        return;
    }
    char db[2][64], urls[2][2048];
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        snprintf(db[i], sizeof db[i], "ll_roles_%ld_%d", (long)getpid(), i);
        char sql[256];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s OWNER billing_owner", db[i]);
        dbtest_ok(owner, sql, 0, NULL);
        conninfo_as(dbtest_owner_url(), "billing_owner", db[i], urls[i], sizeof urls[i]);
    }
    for (int i = 0; i < 2; i++)
        pids[i] = migrate_async(urls[i]);
    for (int i = 0; i < 2; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    for (int i = 0; i < 2; i++) {
        char su[2048];
        conninfo_as(dbtest_owner_url(), NULL, db[i], su, sizeof su);
        PGconn *c = connect_url(su);
        assert_string_equal(one(c, "SELECT count(*) FROM pg_class WHERE relnamespace ="
                                   " 'billing'::regnamespace"
                                   " AND relowner <> 'billing_owner'::regrole"),
                            "0");
        assert_string_equal(one(c, "SELECT nspowner::regrole::text FROM pg_namespace"
                                   " WHERE nspname = 'billing'"),
                            "billing_owner");
        assert_string_equal(one(c, "SELECT has_table_privilege('billing_worker',"
                                   " 'billing.invoices', 'UPDATE')::text || '/' ||"
                                   " has_table_privilege('billing_worker', 'billing.audit_events',"
                                   " 'UPDATE')::text || '/' || has_table_privilege("
                                   "'billing_operator', 'billing.credit_ledger', 'INSERT')::text"
                                   " || '/' || has_table_privilege('billing_operator',"
                                   " 'billing.credit_ledger', 'DELETE')::text"),
                            "true/false/true/false");
        PQfinish(c);
    }
    for (int i = 0; i < 2; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db[i]);
        dbtest_ok(owner, sql, 0, NULL);
    }
}

/* The cluster-wide role, created by two databases' migrations at once: the
 * second waits for the first, finds it created and carries on. */
static void test_role_creation_race(void **state)
{
    (void)state;
    if (strcmp(one(owner, "SELECT (rolsuper OR rolcreaterole)::text FROM pg_roles"
                          " WHERE rolname = session_user"),
               "true") != 0) {
        fprintf(stderr, "skipped: needs CREATEROLE (the local stack's superuser)\n");
        return;
    }
    char role[64], dbname[64], sql[256];
    snprintf(role, sizeof role, "ll_race_%ld", (long)getpid());
    snprintf(dbname, sizeof dbname, "ll_race_%ld", (long)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    dbtest_ok(owner, sql, 0, NULL);
    char other_url[2048];
    conninfo_as(dbtest_owner_url(), NULL, dbname, other_url, sizeof other_url);
    /* The other database gets 010's function by its own migration. */
    pid_t m = migrate_async(other_url);
    int status = 0;
    assert_int_equal(waitpid(m, &status, 0), m);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    PGconn *a = connect_url(dbtest_owner_url());
    PGconn *b = connect_url(other_url);
    const char *pr[] = {role};
    dbtest_ok(a, "BEGIN", 0, NULL);
    assert_string_equal(dbtest_text(a, "SELECT billing.ensure_role($1)::text", 1, pr), "true");
    /* b finds no (committed) role and tries to create it: it must wait. */
    assert_int_equal(
        PQsendQueryParams(b, "SELECT billing.ensure_role($1)::text", 1, NULL, pr, NULL, NULL, 0),
        1);
    char bpid[16];
    snprintf(bpid, sizeof bpid, "%d", PQbackendPID(b));
    const char *pp[] = {bpid};
    time_t deadline = time(NULL) + 30;
    while (dbtest_ok(owner,
                     "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int"
                     " AND wait_event_type = 'Lock'",
                     1, pp) == 0) {
        if (time(NULL) > deadline)
            fail_msg("the second CREATE ROLE never waited for the first");
        usleep(20000);
    }
    dbtest_ok(a, "COMMIT", 0, NULL);
    PGresult *r = PQgetResult(b);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("the second migration failed: %s", PQresultErrorMessage(r));
    assert_string_equal(PQgetvalue(r, 0, 0), "false"); /* found it created */
    PQclear(r);
    while ((r = PQgetResult(b)) != NULL)
        PQclear(r);
    assert_int_equal(dbtest_ok(owner,
                               "SELECT count(*) FROM pg_roles WHERE rolname = $1"
                               " AND rolcanlogin AND NOT rolsuper AND NOT rolcreaterole",
                               1, pr),
                     1);
    /* Present: left alone. */
    assert_string_equal(dbtest_text(b, "SELECT billing.ensure_role($1)::text", 1, pr), "false");
    PQfinish(a);
    PQfinish(b);
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", dbname);
    dbtest_ok(owner, sql, 0, NULL);
    snprintf(sql, sizeof sql, "DROP ROLE %s", role);
    dbtest_ok(owner, sql, 0, NULL);
}

/* The policy is applied again by migrate after anything new: a table a
 * later migration adds without calling it (as 009 may) is covered too. */
static void test_policy_covers_new_tables(void **state)
{
    (void)state;
    char tbl[64], sql[256];
    snprintf(tbl, sizeof tbl, "billing.t_roles_%ld", (long)getpid());
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id int)", tbl);
    dbtest_ok(owner, sql, 0, NULL);
    const char *pt[] = {tbl};
    assert_string_equal(dbtest_text(owner,
                                    "SELECT has_table_privilege('billing_worker', $1,"
                                    " 'SELECT')::text",
                                    1, pt),
                        "false");
    dbtest_ok(owner, "SELECT billing.grant_runtime_roles()", 0, NULL);
    assert_string_equal(
        dbtest_text(owner,
                    "SELECT has_table_privilege('billing_worker', $1,"
                    " 'INSERT')::text || '/' || has_table_privilege('billing_operator', $1,"
                    " 'UPDATE')::text || '/' || has_table_privilege("
                    "'billing_worker', $1, 'DELETE')::text || '/' ||"
                    " has_table_privilege('billing_worker', $1, 'TRUNCATE')::text"
                    " || '/' || (SELECT relowner::regrole::text FROM pg_class"
                    " WHERE oid = $1::regclass)",
                    1, pt),
        "true/true/false/false/billing_owner");
    snprintf(sql, sizeof sql, "DROP TABLE %s", tbl);
    dbtest_ok(owner, sql, 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_refused),
        cmocka_unit_test(test_operator_refused),
        cmocka_unit_test(test_worker_does_its_work),
        cmocka_unit_test(test_operator_runs_billingctl),
        cmocka_unit_test(test_privileged_url_warns),
        cmocka_unit_test(test_parallel_migrations_as_owner),
        cmocka_unit_test(test_role_creation_race),
        cmocka_unit_test(test_policy_covers_new_tables),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
