/* cmd_time.c: `billingctl time approve ENTRY_ID... --by NAME` and
 * `billingctl time revoke ENTRY_ID... [--by NAME]` (BILLING_RULES 1.8).
 *
 * Parses the entry ids and prints the outcome; the change itself (all
 * entries or none, the audit events) is common/time_entries.c. Revoking an
 * invoiced entry is refused by the database trigger (rule 1.8, approval
 * locked), whose message is shown (exit 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/time_entries.h"

#define TIME_MAX_IDS 1000

/* The entry ids as a PostgreSQL array literal ("{1,2,3}"). */
typedef struct {
    char ids[TIME_MAX_IDS * 21 + 3];
    size_t len;
    int n;
} time_ids;

/* args_parse_each's positional: one ENTRY_ID more. */
static int time_add_id(const char *arg, const char *usage, void *ctx)
{
    time_ids *t = ctx;
    int64_t id;
    if (!args_parse_id(arg, &id))
        return args_usage(usage, "'%s' is not a time entry id (a positive integer)", arg);
    if (t->n == TIME_MAX_IDS)
        return args_usage(usage, "at most %d entries at once", TIME_MAX_IDS);
    t->len += (size_t)snprintf(t->ids + t->len, sizeof t->ids - t->len, "%s%lld", t->n ? "," : "",
                               (long long)id);
    t->n++;
    return 0;
}

static int time_cmd(int argc, char **argv, const cli_opts *o, const char *usage, bool approve)
{
    bool json = o->json;
    const char *by = NULL;
    time_ids t = {.ids = "{", .len = 1};
    const args_option opts[] = {{"--by", &by, NULL}};
    int rc = args_parse_each(argc, argv, usage, opts, ARGS_N(opts), time_add_id, &t);
    if (rc != 0)
        return rc;
    char *ids = t.ids;
    size_t len = t.len;
    int n = t.n;
    ids[len++] = '}';
    ids[len] = '\0';
    if (n == 0)
        return args_usage(usage, "give at least one ENTRY_ID");
    if (approve && (by == NULL || by[0] == '\0'))
        return args_usage(usage, "--by NAME is required");
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    int64_t changed = 0;
    char err[1024];
    db_status st = time_entries_set_approval(c, approve, ids, by, &changed, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused(approve ? "time approve" : "time revoke", err);
    if (json)
        printf("{\"entry_ids\":[%.*s],\"%s\":%lld}\n", (int)(len - 2), ids + 1,
               approve ? "approved" : "revoked", (long long)changed);
    else
        printf("%s %lld of %d time entr%s (%lld already %s)\n", approve ? "approved" : "revoked",
               (long long)changed, n, n == 1 ? "y" : "ies", (long long)(n - changed),
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
