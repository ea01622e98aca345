/* invoice_dates.h: an invoice's dates as the workers read them
 * (common/invoice_dates.c). */
#ifndef LEDGERLINE_INVOICE_DATES_H
#define LEDGERLINE_INVOICE_DATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"

/* The invoice's issue date into *on; *found false when there is no such
 * invoice or it has no issue date yet. */
db_status invoice_issue_date(db_conn *c, int64_t invoice_id, civil_date *on, bool *found, char *err,
                             size_t errlen);

#endif
