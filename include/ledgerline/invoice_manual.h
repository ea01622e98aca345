/* invoice_manual.h: invoices an operator writes by hand (`billingctl
 * invoice create`): the lines, the invoice, its numbering and its events, in
 * one transaction (common/invoice_manual.c). */
#ifndef LEDGERLINE_INVOICE_MANUAL_H
#define LEDGERLINE_INVOICE_MANUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"

/* One line: TYPE:QUANTITY:RATE_CENTS:DESCRIPTION, parsed (billingctl's
 * invoice_cli_parse_line). amount and amount_s are recomputed in the
 * client's currency when the invoice is created (rule 11.13). */
typedef struct {
    const char *type; /* package_fee | hourly | adjustment */
    char type_buf[16];
    int64_t hundredths; /* quantity x 100 */
    char quantity[32];  /* "12.50" */
    int64_t rate;
    char rate_s[24];
    int64_t amount;
    char amount_s[24];
    const char *description;
} inv_line;

typedef struct {
    int64_t client_id;
    int64_t engagement_id;                     /* 0: linked by the database trigger (rule 1.2) */
    const char *override_reason, *override_by; /* both or neither */
    const char *by;                            /* NULL: override_by is the actor */
    civil_date issue;
    inv_line *lines;
    int nlines;
} invoice_manual;

/* Creates the invoice (status sent; issue date a->issue; due = issue + the
 * engagement's payment terms, 30 days without one; tax from the client's
 * rate; autopay opt-in and method from the client, cadence from the
 * engagement), its lines, the audit event invoice_created and the
 * invoice.issued event, in one transaction of its own. Line amounts and the
 * tax are rounded half up once to the granularity of the client's currency
 * (rule 11.13). Numbers are INV-<firm id>-<NNNNNN>, the next free one of the
 * firm. On success *invoice_id and number (NUL-terminated, cut to
 * numberlen) are set. DB_PERMANENT with the reason in err on a refusal. */
db_status invoice_manual_create(db_conn *c, invoice_manual *a, int64_t *invoice_id, char *number,
                                size_t numberlen, char *err, size_t errlen);

/* The next free INV-<firm>-<NNNNNN> number of the firm, inside the caller's
 * transaction; locks the firm row (FOR NO KEY UPDATE) until it ends. */
db_status invoice_manual_next_number(db_conn *c, int64_t firm_id, char *number, size_t numberlen,
                                     char *err, size_t errlen);

#endif
