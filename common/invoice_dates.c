/* invoice_dates.c: an invoice's dates as the workers read them
 * (invoice_dates.h): the autopay worker's issue date of an issued
 * invoice. */
#include "ledgerline/invoice_dates.h"

#include "ledgerline/queries.h"

db_status invoice_issue_date(db_conn *c, int64_t invoice_id, civil_date *on, bool *found, char *err,
                             size_t errlen)
{
    const char *p[] = {DB_I64(invoice_id)};
    db_status st;
    PGresult *r = db_exec(c, llq_invoice_dates_select_invoices, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *found = PQntuples(r) > 0 && date_parse(PQgetvalue(r, 0, 0), on);
    PQclear(r);
    return DB_OK;
}
