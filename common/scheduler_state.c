/* scheduler_state.c: the scheduler's memory of what it published
 * (scheduler_state.h; sql/queries/scheduler_state_save.sql). */
#include "ledgerline/scheduler_state.h"

#include "ledgerline/queries.h"

PGresult *scheduler_state_read(db_conn *c, char *err, size_t errlen)
{
    return db_exec(c, llq_scheduler_state_select_scheduler_state, 0, NULL, NULL, err, errlen);
}

db_status scheduler_state_save(db_conn *c, const char *kind, const char *date, char *err,
                               size_t errlen)
{
    const char *p[] = {kind, date};
    return db_command(c, llq_scheduler_state_save, 2, p, err, errlen);
}
