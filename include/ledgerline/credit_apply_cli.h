/* credit_apply_cli.h: `billingctl credit apply` as one transaction
 * (common/credit_apply_cli.c): credit.h's credit_apply_to_invoice, then the
 * invoice as it stands, refused when nothing was applied. */
#ifndef LEDGERLINE_CREDIT_APPLY_CLI_H
#define LEDGERLINE_CREDIT_APPLY_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"

typedef struct {
    int64_t applied; /* minor units taken from the client's credit */
    int64_t total, paid, client_id;
    char status[32];
} credit_apply_outcome;

/* Applies the client's available credit to the invoice (at most max_cents,
 * 0 = no cap) on the day on, by by (may be NULL), and reads the invoice's
 * status and amounts afterwards. When nothing applies, the transaction is
 * rolled back (not even a write-off of lapsed credit is kept) and
 * DB_PERMANENT says why ("nothing to apply: ..."). */
db_status credit_apply_manual(db_conn *c, int64_t invoice_id, int64_t max_cents, civil_date on,
                              const char *by, credit_apply_outcome *out, char *err, size_t errlen);

#endif
