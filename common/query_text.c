/* query_text.c: a query whose answer is one text value, read into a string
 * (query_text.h). */
#include "ledgerline/query_text.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"

db_status query_text(db_conn *c, const char *sql, int nparams, const char *const *params,
                     char **text, char *err, size_t errlen)
{
    db_status st;
    *text = NULL;
    PGresult *r = db_exec(c, sql, nparams, params, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) > 0)
        *text = strdup(PQgetvalue(r, 0, 0));
    bool oom = PQntuples(r) > 0 && *text == NULL;
    PQclear(r);
    if (!oom)
        return DB_OK;
    ll_failf(err, errlen, "could not read the answer: out of memory");
    return DB_TRANSIENT;
}
