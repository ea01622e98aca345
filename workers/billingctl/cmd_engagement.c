/* cmd_engagement.c: `billingctl engagement renew ENGAGEMENT_ID [--start D]
 * [--end D] [--package-fee-cents N] [--hourly-rate-cents N] [--by NAME]`
 * (BILLING_RULES section 8).
 *
 * In one transaction: the current engagement becomes `completed` and a new
 * `current` engagement is created with parent = old id, version + 1, the old
 * terms unless new fees are given; start defaults to the day after the old
 * end date (refused when the old engagement has no end date and no --start),
 * end defaults to the day before the same date a year later (a 02-29 start
 * ends on 02-28 of the next year). Audit `engagement_renewed` with old and
 * new fees. Old invoices are not touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"

typedef struct {
    int64_t id;
    bool has_start, has_end;
    civil_date start, end;
    const char *fee;  /* NULL = keep */
    const char *rate; /* NULL = keep */
    const char *by;
    int64_t new_id;
    char start_s[11], end_s[11];
} renew_arg;

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

static db_status renew_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    renew_arg *a = varg;
    const char *p1[] = {DB_I64(a->id)};
    db_status st;
    PGresult *r = db_exec(c,
                          "SELECT status, end_date::text FROM billing.engagements WHERE id = $1 "
                          "FOR UPDATE",
                          1, p1, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "no such engagement: %lld", (long long)a->id);
        return DB_PERMANENT;
    }
    if (strcmp(PQgetvalue(r, 0, 0), "current") != 0) {
        snprintf(err, errlen,
                 "engagement %lld is %s, not current; only a current engagement can "
                 "be renewed",
                 (long long)a->id, PQgetvalue(r, 0, 0));
        PQclear(r);
        return DB_PERMANENT;
    }
    civil_date start = a->start;
    if (!a->has_start) {
        civil_date old_end;
        if (PQgetisnull(r, 0, 1) || !date_parse(PQgetvalue(r, 0, 1), &old_end)) {
            PQclear(r);
            snprintf(err, errlen, "engagement %lld has no end date; give --start YYYY-MM-DD",
                     (long long)a->id);
            return DB_PERMANENT;
        }
        start = date_add_days(old_end, 1);
    }
    PQclear(r);
    civil_date end = a->has_end ? a->end : year_end_from(start);
    if (end.days < start.days) {
        date_format(start, a->start_s, sizeof a->start_s);
        snprintf(err, errlen, "--end is before the new engagement's start %s", a->start_s);
        return DB_PERMANENT;
    }
    date_format(start, a->start_s, sizeof a->start_s);
    date_format(end, a->end_s, sizeof a->end_s);
    const char *p[] = {DB_I64(a->id), a->start_s, a->end_s, a->fee, a->rate, a->by};
    r = db_exec(c,
                "WITH old AS (SELECT * FROM billing.engagements WHERE id = $1), "
                "done AS (UPDATE billing.engagements e SET status = 'completed' FROM old "
                "WHERE e.id = old.id RETURNING e.id), "
                "new AS (INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
                "package_fee_cents, package_fee_schedule, hourly_rate_cents, "
                "prorate_partial_periods, payment_terms_days, autopay_cadence, start_date, "
                "end_date, status, parent_engagement_id, version) "
                "SELECT firm_id, client_id, title, pricing_mode, "
                "coalesce($4::bigint, package_fee_cents), package_fee_schedule, "
                "coalesce($5::bigint, hourly_rate_cents), prorate_partial_periods, "
                "payment_terms_days, autopay_cadence, $2::date, $3::date, 'current', id, "
                "version + 1 FROM old RETURNING *), "
                "aud AS (INSERT INTO billing.audit_events(firm_id, category, action, severity, "
                "actor, metadata) SELECT new.firm_id, 'billing', 'engagement_renewed', 'INFO', $6, "
                "jsonb_build_object('old_engagement_id', old.id, 'new_engagement_id', new.id, "
                "'client_id', new.client_id, 'old_package_fee_cents', old.package_fee_cents, "
                "'new_package_fee_cents', new.package_fee_cents, 'old_hourly_rate_cents', "
                "old.hourly_rate_cents, 'new_hourly_rate_cents', new.hourly_rate_cents, "
                "'start_date', new.start_date, 'end_date', new.end_date, 'version', new.version) "
                "FROM old, new) "
                "SELECT new.id FROM new, done",
                6, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->new_id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (a->new_id == 0) {
        snprintf(err, errlen, "engagement %lld could not be renewed", (long long)a->id);
        return DB_PERMANENT;
    }
    return DB_OK;
}

int cmd_engagement_renew(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    renew_arg a = {0};
    const char *start = NULL, *end = NULL, *fee = NULL, *rate = NULL;
    for (int i = 1; i < argc; i++) {
        int g;
        if ((g = args_opt(argc, argv, &i, "--start", &start)) ||
            (g = args_opt(argc, argv, &i, "--end", &end)) ||
            (g = args_opt(argc, argv, &i, "--package-fee-cents", &fee)) ||
            (g = args_opt(argc, argv, &i, "--hourly-rate-cents", &rate)) ||
            (g = args_opt(argc, argv, &i, "--by", &a.by))) {
            if (g < 0)
                return args_usage(usage, "%s needs a value", argv[i]);
            continue;
        }
        if (a.id == 0 && argv[i][0] != '-') {
            if (!args_parse_id(argv[i], &a.id))
                return args_usage(usage, "'%s' is not an engagement id", argv[i]);
        } else {
            return args_usage(usage, "unexpected argument '%s'", argv[i]);
        }
    }
    if (a.id == 0)
        return args_usage(usage, "give the ENGAGEMENT_ID to renew");
    if (start && !(a.has_start = date_parse(start, &a.start)))
        return args_usage(usage, "--start '%s' is not a date (YYYY-MM-DD)", start);
    if (end && !(a.has_end = date_parse(end, &a.end)))
        return args_usage(usage, "--end '%s' is not a date (YYYY-MM-DD)", end);
    if (a.has_start && a.has_end && a.end.days < a.start.days)
        return args_usage(usage, "--end is before --start");
    int64_t v;
    if (fee && !args_parse_cents(fee, &v))
        return args_usage(usage, "--package-fee-cents '%s' is not a whole number of cents", fee);
    if (rate && !args_parse_cents(rate, &v))
        return args_usage(usage, "--hourly-rate-cents '%s' is not a whole number of cents", rate);
    a.fee = fee;
    a.rate = rate;
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = db_run_tx(c, renew_work, &a, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("engagement renew", err);
    if (json)
        printf("{\"engagement_id\":%lld}\n", (long long)a.new_id);
    else
        printf("engagement %lld renewed as engagement %lld (%s .. %s)\n", (long long)a.id,
               (long long)a.new_id, a.start_s, a.end_s);
    return CLI_OK;
}
