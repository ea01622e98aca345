/* notifications_list.c: what billingctl's document commands read
 * (notifications_list.h): the notifications list
 * (sql/queries/notifications_list.sql) and a credit note's invoice. */
#include "ledgerline/notifications_list.h"

#include <stdlib.h>

#include "ledgerline/queries.h"

PGresult *notifications_list(db_conn *c, const char *invoice_id, const char *client_id,
                             const char *status, db_status *st, char *err, size_t errlen)
{
    const char *p[] = {invoice_id, client_id, status};
    return db_exec(c, llq_notifications_list, 3, p, st, err, errlen);
}

db_status credit_note_invoice(db_conn *c, int64_t credit_note_id, int64_t *invoice_id, char *err,
                              size_t errlen)
{
    const char *p[] = {DB_I64(credit_note_id)};
    db_status st;
    PGresult *r = db_exec(c, "SELECT invoice_id FROM billing.credit_notes WHERE id = $1::bigint", 1,
                          p, &st, err, errlen);
    if (r == NULL)
        return st;
    *invoice_id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return DB_OK;
}
