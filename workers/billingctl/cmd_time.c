/* cmd_time.c: `billingctl time approve ENTRY_ID... --by NAME` and
 * `billingctl time revoke ENTRY_ID... [--by NAME]` (BILLING_RULES 1.8).
 *
 * One transaction per command: every listed entry must exist, or nothing
 * changes. Approving an approved entry leaves it as it is; revoking an
 * invoiced entry is refused by the database trigger (rule 1.8, approval
 * locked), whose message is shown (exit 1). Each command writes one audit
 * event per firm touched (time_entries_approved / time_entries_revoked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"

#define TIME_MAX_IDS 1000

typedef struct {
    bool approve;
    const char *ids; /* "{1,2,3}" */
    const char *by;  /* NULL allowed for revoke */
    int64_t changed;
    int64_t wanted;
    char found_missing[256];
} time_arg;

static db_status time_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    time_arg *a = varg;
    const char *p1[] = {a->ids};
    db_status st;
    PGresult *r = db_exec(c,
                          "SELECT coalesce(string_agg(x::text, ',' ORDER BY x), '') "
                          "FROM unnest($1::bigint[]) x "
                          "WHERE NOT EXISTS (SELECT 1 FROM billing.time_entries t WHERE t.id = x)",
                          1, p1, &st, err, errlen);
    if (r == NULL)
        return st;
    snprintf(a->found_missing, sizeof a->found_missing, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (a->found_missing[0] != '\0') {
        snprintf(err, errlen, "no such time entry: %s", a->found_missing);
        return DB_PERMANENT;
    }
    const char *p[] = {a->ids, a->by};
    const char *sql =
        a->approve
            ? "WITH u AS (UPDATE billing.time_entries SET approved = true, approved_by = $2, "
              "approved_at = now() WHERE id = ANY($1::bigint[]) AND NOT approved "
              "RETURNING id, firm_id), "
              "a AS (INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, "
              "metadata) SELECT firm_id, 'billing', 'time_entries_approved', 'INFO', $2, "
              "jsonb_build_object('time_entry_ids', array_agg(id ORDER BY id)) FROM u "
              "GROUP BY firm_id) SELECT count(*) FROM u"
            : "WITH u AS (UPDATE billing.time_entries SET approved = false, approved_by = NULL, "
              "approved_at = NULL WHERE id = ANY($1::bigint[]) AND approved "
              "RETURNING id, firm_id), "
              "a AS (INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, "
              "metadata) SELECT firm_id, 'billing', 'time_entries_revoked', 'INFO', $2, "
              "jsonb_build_object('time_entry_ids', array_agg(id ORDER BY id)) FROM u "
              "GROUP BY firm_id) SELECT count(*) FROM u";
    r = db_exec(c, sql, 2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->changed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return DB_OK;
}

static int time_cmd(int argc, char **argv, const cli_opts *o, const char *usage, bool approve)
{
    bool json = o->json;
    const char *by = NULL;
    char ids[TIME_MAX_IDS * 21 + 3];
    size_t len = 0;
    int n = 0;
    ids[len++] = '{';
    for (int i = 1; i < argc; i++) {
        int got = args_opt(argc, argv, &i, "--by", &by);
        if (got < 0)
            return args_usage(usage, "--by needs a value");
        if (got > 0)
            continue;
        int64_t id;
        if (!args_parse_id(argv[i], &id))
            return args_usage(usage, "'%s' is not a time entry id (a positive integer)", argv[i]);
        if (n == TIME_MAX_IDS)
            return args_usage(usage, "at most %d entries at once", TIME_MAX_IDS);
        len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%lld", n ? "," : "", (long long)id);
        n++;
    }
    ids[len++] = '}';
    ids[len] = '\0';
    if (n == 0)
        return args_usage(usage, "give at least one ENTRY_ID");
    if (approve && (by == NULL || by[0] == '\0'))
        return args_usage(usage, "--by NAME is required");
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    time_arg a = {.approve = approve, .ids = ids, .by = by, .wanted = n};
    char err[1024];
    db_status st = db_run_tx(c, time_work, &a, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused(approve ? "time approve" : "time revoke", err);
    if (json)
        printf("{\"entry_ids\":[%.*s],\"%s\":%lld}\n", (int)(len - 2), ids + 1,
               approve ? "approved" : "revoked", (long long)a.changed);
    else
        printf("%s %lld of %d time entr%s (%lld already %s)\n", approve ? "approved" : "revoked",
               (long long)a.changed, n, n == 1 ? "y" : "ies", (long long)(n - a.changed),
               approve ? "approved" : "unapproved");
    return CLI_OK;
}

int cmd_time_approve(int argc, char **argv, const cli_opts *o, const char *usage)
{
    return time_cmd(argc, argv, o, usage, true);
}

int cmd_time_revoke(int argc, char **argv, const cli_opts *o, const char *usage)
{
    return time_cmd(argc, argv, o, usage, false);
}
