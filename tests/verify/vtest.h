/* vtest.h: what the verify-label tests share: running billingctl as a real
 * process (with extra environment), one-value queries, a digest of every
 * row a firm owns (to assert "touched nothing"), and a small seeded firm
 * written the way the system's own writers write it. */
#ifndef LEDGERLINE_TESTS_VTEST_H
#define LEDGERLINE_TESTS_VTEST_H

#include <stdint.h>

#include <libpq-fe.h>

#include "ledgerline/db.h"

extern char vt_out[1 << 17], vt_err[1 << 17];

/* The test's database connection (db_connect on DATABASE_URL). */
db_conn *vt_db(void);
/* Decimal text of v in a ring of buffers. */
const char *vt_i(int64_t v);
/* First column of the first row (0 / NULL when none); the test fails when
 * the statement fails. */
int64_t vt_q(const char *sql, int n, const char *const *p);
const char *vt_qt(const char *sql, int n, const char *const *p);

/* Runs billingctl with argv (NULL-terminated) and env (NULL-terminated
 * "NAME=value" list, may be NULL); stdout in vt_out, stderr in vt_err;
 * returns the exit status. */
int vt_ctl_env(const char *const *env, const char *const *argv);
/* vt_ctl("invoice", "show", "7", NULL). */
int vt_ctl(const char *arg0, ...);

/* md5 over every row the firm owns (clients, engagements, invoices, lines,
 * time entries, attempts, payments, refunds, disputes, credit ledger, audit
 * events, outbox). */
const char *vt_digest(int64_t firm, char out[33]);

typedef struct {
    int64_t firm, client, engagement, invoice, line, entry_open, entry_billed;
} vt_firm;

/* A firm with one client (usd), one mixed engagement (fee 10000, rate
 * 15000), one approved and one unapproved time entry, and one sent manual
 * invoice of 10000 (one package_fee line) with its invoice_created audit
 * event and invoice.issued outbox row, as billingctl writes them. The
 * approved entry is billed on a second hourly line when bill_entry is true.
 * verify of the firm is clean. */
void vt_seed(vt_firm *f, bool bill_entry);

#endif
