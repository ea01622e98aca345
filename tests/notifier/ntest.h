/* ntest.h: fixtures of the notifier's database tests: a firm with its
 * letterhead, a client, an invoice issued by scheduled invoicing (a legal
 * number and lines), a credit note on it. Each call makes new rows. */
#ifndef LEDGERLINE_TESTS_NTEST_H
#define LEDGERLINE_TESTS_NTEST_H

#include <stdint.h>
#include <libpq-fe.h>

#include "ledgerline/db.h"

/* Text of v in a ring of static buffers (for statement parameters). */
const char *ntest_i(int64_t v);

/* A firm with prefix and letterhead settings; returns its id. */
int64_t ntest_firm(PGconn *pg, const char *prefix);

/* A client of firm named name with e-mail email (NULL: none), tax 10%. */
int64_t ntest_client(PGconn *pg, int64_t firm, const char *name, const char *email);

/* An invoice issued by scheduled invoicing on 2026-03-01 for a package of
 * fee_cents in cur (db: invoicing_run's connection); returns its id. */
int64_t ntest_issued_invoice(PGconn *pg, db_conn *db, int64_t firm, int64_t client, const char *cur,
                             int64_t fee_cents);

/* A credit note of total_cents on invoice (applied to its balance due). */
int64_t ntest_credit_note(PGconn *pg, int64_t invoice, int64_t total_cents);

#endif
