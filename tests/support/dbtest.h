/* dbtest.h: helpers for tests that run against the real PostgreSQL of the
 * local stack (DATABASE_URL). Each test creates its own firm with a unique
 * slug, so tests never depend on one another or on a clean database. */
#ifndef LEDGERLINE_TESTS_DBTEST_H
#define LEDGERLINE_TESTS_DBTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

/* The database URLs of the local stack (deploy/local/stack-up.sh), each
 * falling back to DATABASE_URL when unset:
 * - dbtest_owner_url: OWNER_DATABASE_URL, what a test's own fixtures use
 *   (seeding any table, provoking the rules' refusals);
 * - dbtest_worker_url: WORKER_DATABASE_URL (billing_worker), what a test
 *   gives the worker and scheduler processes it starts, so that they run
 *   with the grants of production. billingctl children inherit
 *   DATABASE_URL, which the stack sets to billing_operator's URL.
 * Abort the test program when DATABASE_URL is unset as well. */
const char *dbtest_owner_url(void);
const char *dbtest_worker_url(void);

/* Connects to dbtest_owner_url(); aborts the test program when unset or
 * down. */
PGconn *dbtest_connect(void);

/* A short string unique to this process and call ("t1234-7-1700000000"). */
const char *dbtest_unique(void);

/* Runs a parameterised statement (params are text, NULL for SQL NULL).
 * dbtest_ok: fails the test unless it succeeds; returns the first column of
 * the first row as int64 (0 when there is none).
 * dbtest_refused: fails the test unless it errors with a message containing
 * `expect` (case-sensitive); the connection is left usable. */
int64_t dbtest_ok(PGconn *c, const char *sql, int nparams, const char *const *params);
void dbtest_refused(PGconn *c, const char *expect, const char *sql, int nparams,
                    const char *const *params);
/* The first column of the first row as text (static buffer), NULL for none. */
const char *dbtest_text(PGconn *c, const char *sql, int nparams, const char *const *params);

/* Creates a firm and returns its id (slug made unique). */
int64_t dbtest_firm(PGconn *c);
/* Creates a client of firm and returns its id. */
int64_t dbtest_client(PGconn *c, int64_t firm_id);

#endif
