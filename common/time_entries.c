/* time_entries.c: approving and revoking time entries (BILLING_RULES 1.8;
 * time_entries.h): all listed entries or none, and the audit events
 * time_entries_approved / time_entries_revoked
 * (sql/queries/time_entries_missing.sql, time_entries_set_approval.sql). */
#include "ledgerline/time_entries.h"

#include <stdio.h>
#include <stdlib.h>

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

typedef struct {
    bool approve;
    const char *ids; /* "{1,2,3}" */
    const char *by;  /* NULL allowed for revoke */
    int64_t changed;
} approval_tx;

static db_status approval_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    approval_tx *a = varg;
    const char *p1[] = {a->ids};
    db_status st;
    PGresult *r = db_exec(c, llq_time_entries_missing, 1, p1, &st, err, errlen);
    if (r == NULL)
        return st;
    char missing[256];
    snprintf(missing, sizeof missing, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (missing[0] != '\0') {
        ll_failf(err, errlen, "no such time entry: %s", missing);
        return DB_PERMANENT;
    }
    const char *p[] = {a->ids, a->by, a->approve ? "true" : "false"};
    r = db_exec(c, llq_time_entries_set_approval, 3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->changed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return DB_OK;
}

db_status time_entries_set_approval(db_conn *c, bool approve, const char *ids, const char *by,
                                    int64_t *changed, char *err, size_t errlen)
{
    approval_tx a = {.approve = approve, .ids = ids, .by = by};
    db_status st = db_run_tx(c, approval_work, &a, err, errlen);
    *changed = a.changed;
    return st;
}
