/* processed.h: whether a consumer already applied a message (its key in
 * billing.processed_messages), for the workers that check before they act
 * (common/processed.c; db.h's db_run_once records the key). */
#ifndef LEDGERLINE_PROCESSED_H
#define LEDGERLINE_PROCESSED_H

#include <stdbool.h>
#include <stddef.h>

#include "ledgerline/db.h"

/* *seen: consumer already recorded key. */
db_status processed_seen(db_conn *c, const char *consumer, const char *key, bool *seen, char *err,
                         size_t errlen);

#endif
