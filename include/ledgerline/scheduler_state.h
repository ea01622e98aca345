/* scheduler_state.h: the scheduler's memory of what it published
 * (billing.scheduler_state; common/scheduler_state.c). */
#ifndef LEDGERLINE_SCHEDULER_STATE_H
#define LEDGERLINE_SCHEDULER_STATE_H

#include <stddef.h>

#include "ledgerline/db.h"

/* The kinds with a last published date: rows (kind, last_business_date as
 * YYYY-MM-DD). NULL with err on failure. */
PGresult *scheduler_state_read(db_conn *c, char *err, size_t errlen);

/* Records date (YYYY-MM-DD) as kind's last published date, unless a later
 * one is recorded. */
db_status scheduler_state_save(db_conn *c, const char *kind, const char *date, char *err,
                               size_t errlen);

#endif
