/* notifications_list.h: what billingctl's document commands read
 * (`notifications list`, `credit-note pdf`): common/notifications_list.c. */
#ifndef LEDGERLINE_NOTIFICATIONS_LIST_H
#define LEDGERLINE_NOTIFICATIONS_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"

/* The notifications as one JSON array (its text in row 0, column 0; see
 * sql/queries/notifications_list.sql); each filter (digits of an id, or a
 * status) NULL for none. NULL with *st and err on failure. */
PGresult *notifications_list(db_conn *c, const char *invoice_id, const char *client_id,
                             const char *status, db_status *st, char *err, size_t errlen);

/* The invoice of a credit note into *invoice_id, 0 when there is no such
 * note. */
db_status credit_note_invoice(db_conn *c, int64_t credit_note_id, int64_t *invoice_id, char *err,
                              size_t errlen);

#endif
