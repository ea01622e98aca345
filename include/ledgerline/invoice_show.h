/* invoice_show.h: one invoice as the operators read it (`billingctl invoice
 * show`): common/invoice_show.c. */
#ifndef LEDGERLINE_INVOICE_SHOW_H
#define LEDGERLINE_INVOICE_SHOW_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"

/* The invoice, its lines, payments and credit notes as one JSON document
 * (sql/queries/invoice_show.sql), a malloc'd string into *json, read in a
 * transaction of its own. DB_PERMANENT when there is no such invoice. */
db_status invoice_show(db_conn *c, int64_t invoice_id, char **json, char *err, size_t errlen);

#endif
