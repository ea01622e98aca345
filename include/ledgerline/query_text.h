/* query_text.h: a query whose answer is one text value (a JSON document of
 * a report or a view), read into a string (common/query_text.c). */
#ifndef LEDGERLINE_QUERY_TEXT_H
#define LEDGERLINE_QUERY_TEXT_H

#include <stddef.h>

#include "ledgerline/db.h"

/* Row 0, column 0 of sql as a malloc'd string into *text (the caller frees
 * it); *text NULL when there is no row. DB_TRANSIENT when out of memory. */
db_status query_text(db_conn *c, const char *sql, int nparams, const char *const *params,
                     char **text, char *err, size_t errlen);

#endif
