/* engagement_renew.c: renewing an engagement (BILLING_RULES section 8;
 * engagement_renew.h): the checks of the old engagement, the new period and
 * sql/queries/engagement_renew.sql (old completed, new current, audit). */
#include "ledgerline/engagement_renew.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"

static civil_date year_end_from(civil_date start)
{
    civil_ymd y = date_to_ymd(start);
    if (y.month == 2 && y.day == 29) {
        civil_date d;
        date_from_ymd(y.year + 1, 2, 28, &d);
        return d;
    }
    return date_add_days(date_add_months(start, 12), -1);
}

/* The new start: given, or the day after the old engagement's end. Locks
 * the old engagement, which must be current. */
static db_status renew_start(db_conn *c, engagement_renewal *a, civil_date *start, char *err,
                             size_t errlen)
{
    const char *p[] = {DB_I64(a->id)};
    db_status st;
    PGresult *r = db_exec(c, llq_engagement_renew_select_engagements, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    st = DB_PERMANENT;
    civil_date old_end;
    *start = a->start;
    if (PQntuples(r) == 0)
        ll_failf(err, errlen, "cannot renew engagement %lld: it does not exist", (long long)a->id);
    else if (strcmp(PQgetvalue(r, 0, 0), "current") != 0)
        ll_failf(err, errlen,
                 "engagement %lld is %s, not current; only a current engagement can "
                 "be renewed",
                 (long long)a->id, PQgetvalue(r, 0, 0));
    else if (a->has_start)
        st = DB_OK;
    else if (PQgetisnull(r, 0, 1) || !date_parse(PQgetvalue(r, 0, 1), &old_end))
        ll_failf(err, errlen, "engagement %lld has no end date; give --start YYYY-MM-DD",
                 (long long)a->id);
    else
        *start = date_add_days(old_end, 1), st = DB_OK;
    PQclear(r);
    return st;
}

static db_status renew_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    engagement_renewal *a = varg;
    civil_date start = a->start;
    db_status st = renew_start(c, a, &start, err, errlen);
    if (st != DB_OK)
        return st;
    civil_date end = a->has_end ? a->end : year_end_from(start);
    date_format(start, a->start_s, sizeof a->start_s);
    if (end.days < start.days) {
        ll_failf(err, errlen, "--end is before the new engagement's start %s", a->start_s);
        return DB_PERMANENT;
    }
    date_format(end, a->end_s, sizeof a->end_s);
    const char *p[] = {DB_I64(a->id), a->start_s, a->end_s, a->fee, a->rate, a->by};
    PGresult *r = db_exec(c, llq_engagement_renew, 6, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->new_id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (a->new_id != 0)
        return DB_OK;
    ll_failf(err, errlen, "cannot renew engagement %lld: no new engagement was written",
             (long long)a->id);
    return DB_PERMANENT;
}

db_status engagement_renew(db_conn *c, engagement_renewal *a, char *err, size_t errlen)
{
    return db_run_tx(c, renew_work, a, err, errlen);
}
