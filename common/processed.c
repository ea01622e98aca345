/* processed.c: whether a consumer already applied a message
 * (processed.h). */
#include "ledgerline/processed.h"

db_status processed_seen(db_conn *c, const char *consumer, const char *key, bool *seen, char *err,
                         size_t errlen)
{
    const char *p[] = {consumer, key};
    return db_exists(c,
                     "SELECT 1 FROM billing.processed_messages"
                     " WHERE consumer = $1 AND idempotency_key = $2",
                     2, p, seen, err, errlen);
}
