/* db.h: PostgreSQL access shared by every binary.
 *
 * - db_connect: connect with retry and exponential backoff (a worker started
 *   before its database waits for it instead of crashing).
 * - db_run_once: one unit of work in one transaction, guarded by an
 *   idempotency key in billing.processed_messages, so that a message applied
 *   twice (redelivery, replay, two instances) has its effect once.
 * - Errors are classified as transient (connection lost, serialization
 *   failure, deadlock, server shutting down: retry the same message) or
 *   permanent (constraint refused, bad data: retrying cannot help).
 * Values always travel as parameters (PQexecParams), never inside SQL text.
 */
#ifndef LEDGERLINE_DB_H
#define LEDGERLINE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

typedef enum {
    DB_OK = 0,    /* committed */
    DB_DUPLICATE, /* idempotency key already recorded: nothing done */
    DB_PERMANENT, /* refused; the same input will always be refused */
    DB_TRANSIENT  /* may succeed later; retry the same input */
} db_status;

typedef struct db_conn {
    PGconn *pg;
    char *url; /* owned copy of the connection string, for reconnects */
} db_conn;

/* Connects to url, retrying with backoff from 100 ms doubling to 5 s for at
 * most max_wait_ms in total (0 = a single attempt). Returns NULL with a
 * message in err when it cannot connect. The first connection of a process
 * checks its role: a superuser or the owner of schema billing (a member of
 * billing_owner) still connects, and a WARNING says that a runtime process
 * should use billing_worker or billing_operator (CONTRACT "Hardening"). */
db_conn *db_connect(const char *url, int max_wait_ms, char *err, size_t errlen);
/* The process means to connect as the owner (billingctl db migrate): no
 * warning. Call before the first db_connect. */
void db_expect_privileged(void);
void db_close(db_conn *c);
/* Reconnects when the session is broken (after a transient error). */
bool db_ensure(db_conn *c, int max_wait_ms);

/* Classifies a failed result by its SQLSTATE and the connection's state. */
db_status db_classify(const db_conn *c, const PGresult *r);

/* PQexecParams with text parameters. On failure returns NULL after filling
 * err with the server's message and *st (if given) with the class; on success
 * the caller PQclear()s the result. */
PGresult *db_exec(db_conn *c, const char *sql, int nparams, const char *const *params,
                  db_status *st, char *err, size_t errlen);
/* As db_exec but for statements whose result is not needed. */
db_status db_command(db_conn *c, const char *sql, int nparams, const char *const *params, char *err,
                     size_t errlen);

/* Work run inside db_run_once's transaction. Return DB_OK to commit; any
 * other status rolls back (write a message into err). */
typedef db_status (*db_work_fn)(db_conn *c, void *arg, char *err, size_t errlen);

/* BEGIN; INSERT (consumer, key) INTO billing.processed_messages; when the key
 * was already there: ROLLBACK and return DB_DUPLICATE without calling fn;
 * else fn(); COMMIT. A COMMIT that fails is classified like any error.
 * key == NULL runs fn in a plain transaction (no idempotency record). */
db_status db_run_once(db_conn *c, const char *consumer, const char *key, db_work_fn fn, void *arg,
                      char *err, size_t errlen);

/* Plain transaction without an idempotency key. */
db_status db_run_tx(db_conn *c, db_work_fn fn, void *arg, char *err, size_t errlen);

/* Formats v as decimal into buf (for text parameters). Returns buf. */
const char *db_i64(int64_t v, char *buf, size_t bufsz);
/* The same into storage of the enclosing block (a compound literal): for a
 * parameter array built and used in one block, e.g.
 *   const char *p[] = {DB_I64(invoice_id), DB_I64(amount)}; */
#define DB_I64(v) db_i64((v), (char[24]){0}, 24)

const char *db_status_name(db_status s);

/* The first row's first column as an integer: *found (may be NULL) =
 * whether the query returns a row, *value (may be NULL) = that column (0
 * when there is no row or it is NULL). */
db_status db_query_i64(db_conn *c, const char *sql, int nparams, const char *const *params,
                       bool *found, int64_t *value, char *err, size_t errlen);
/* *found = whether the query returns a row (e.g. "SELECT 1 FROM ... WHERE
 * id = $1"): the one way to ask "does it exist". */
db_status db_exists(db_conn *c, const char *sql, int nparams, const char *const *params,
                    bool *found, char *err, size_t errlen);
/* db_exec for a statement that must answer a row (the object it reads or
 * locks exists): when it answers none, NULL with *st = DB_PERMANENT and
 * fmt's message in err (e.g. "invoice %lld does not exist"). */
PGresult *db_exec_row(db_conn *c, const char *sql, int nparams, const char *const *params,
                      db_status *st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/* DB_OK when billing.firms has firm_id, else DB_PERMANENT with "no such
 * firm: N" in err (commands and reports scoped to a firm check it first). */
db_status db_require_firm(db_conn *c, int64_t firm_id, char *err, size_t errlen);

#endif
