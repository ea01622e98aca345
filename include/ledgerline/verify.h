/* verify.h: the reconciliation check of issue 9 (`billingctl verify`): every
 * invariant of BILLING_RULES checked across the database, from the rows as
 * they are, whoever wrote them. The checks are SQL in common/verify.c, run in
 * one read-only REPEATABLE READ transaction (one snapshot, so a check never
 * sees half of a concurrent writer's work) and callable in-process by tests
 * and the fault suite:
 *
 *   verify_summary s;
 *   if (verify_run(conn, 0, NULL, NULL, 0, &s, err, sizeof err) != DB_OK) ...
 *   assert s.violations == 0
 *
 * The money equation of amount_paid and why each check holds is written
 * down in docs/RELIABILITY.md. */
#ifndef LEDGERLINE_VERIFY_H
#define LEDGERLINE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"

/* The checks, in the order they run. */
typedef enum {
    VERIFY_LINE_ITEMS_SUM = 0, /* subtotal = sum of the invoice's lines */
    VERIFY_TOTAL,              /* total = subtotal + tax; amounts in range */
    VERIFY_AMOUNT_PAID,        /* amount_paid against payments, refunds, lost disputes */
    VERIFY_PAYMENT_ONCE,       /* one payment per PaymentIntent, one success per invoice */
    VERIFY_CREDIT_LEDGER,      /* balances never negative, ledger = credit payments */
    VERIFY_AUDIT,              /* every invoice, payment, failure, dispute, refund audited */
    VERIFY_TENANT,             /* no reference across firms */
    VERIFY_TIME_ENTRIES,       /* invoiced at most once, only when approved */
    VERIFY_AUTO_INVOICE,       /* one auto invoice per engagement and period */
    VERIFY_NCHECKS
} verify_check;

/* One violation. Strings are valid only during the callback. */
typedef struct {
    verify_check check;
    const char *check_name; /* verify_check_name(check) */
    int64_t firm_id;        /* 0: the row has no firm (an unmatched audit event) */
    const char *table;      /* the table of the row the violation is about */
    int64_t id;             /* that row's id */
    const char *detail;     /* what is wrong, with the ids and amounts involved */
} verify_violation;

typedef void (*verify_fn)(const verify_violation *v, void *arg);

typedef struct {
    int64_t violations;                /* total over every check */
    int64_t per_check[VERIFY_NCHECKS]; /* violations per check */
    int64_t reported;                  /* how many were passed to fn */
} verify_summary;

/* "line_items_sum", "total", "amount_paid", "payment_once", "credit_ledger",
 * "audit", "tenant", "time_entries", "auto_invoice". */
const char *verify_check_name(verify_check c);

/* Runs every check. firm_id > 0 limits them to that firm's rows (a
 * reference across firms is reported when either side is that firm); 0 =
 * every firm. fn (may be NULL) receives each violation, at most
 * max_per_check per check (0 = no limit); the counts in *out are always
 * complete. DB_PERMANENT with a message when firm_id names no firm; a
 * database error is returned as classified (then *out is zeroed, and fn may
 * already have seen the violations of the checks that ran). Opens and ends
 * its own transaction on c. */
db_status verify_run(db_conn *c, int64_t firm_id, verify_fn fn, void *arg, int64_t max_per_check,
                     verify_summary *out, char *err, size_t errlen);

/* The same checks inside the caller's open transaction (no BEGIN, COMMIT
 * or SET TRANSACTION: they read the caller's snapshot and its uncommitted
 * writes). For tests that break a constraint with DDL inside a transaction
 * they roll back, and for callers that already hold a snapshot. */
db_status verify_run_in(db_conn *c, int64_t firm_id, verify_fn fn, void *arg, int64_t max_per_check,
                        verify_summary *out, char *err, size_t errlen);

#endif
