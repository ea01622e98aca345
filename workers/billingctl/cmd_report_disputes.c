/* cmd_report_disputes.c: `billingctl report disputes --firm-id N`
 * (BILLING_RULES section 10): a firm's dispute summary: total, open (opened
 * + under review), won, lost, disputed amounts per currency and the win rate
 * won / (won + lost), as an exact fraction and a whole percentage rounded
 * half up, both computed in integers (common/disputes.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/disputes.h"

typedef struct {
    int64_t firm;
    char *json;
} report_disputes_arg;

static db_status report_disputes_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    report_disputes_arg *a = varg;
    return dispute_report(c, a->firm, &a->json, err, errlen);
}

static long long rd_int(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void report_disputes_table(const report_disputes_arg *a)
{
    json_t *root = json_loads(a->json, 0, NULL);
    if (root == NULL) {
        printf("%s\n", a->json);
        return;
    }
    const json_t *pct = json_object_get(root, "win_rate_percent");
    const json_t *frac = json_object_get(root, "win_rate");
    printf("disputes of firm %lld\n", (long long)a->firm);
    printf("%8s %8s %8s %12s %8s %8s %10s\n", "total", "open", "opened", "under_review", "won",
           "lost", "win rate");
    char rate[64] = "-";
    if (json_is_integer(pct))
        snprintf(rate, sizeof rate, "%lld%% (%s)", (long long)json_integer_value(pct),
                 json_string_value(frac));
    printf("%8lld %8lld %8lld %12lld %8lld %8lld %10s\n", rd_int(root, "total"),
           rd_int(root, "open"), rd_int(root, "opened"), rd_int(root, "under_review"),
           rd_int(root, "won"), rd_int(root, "lost"), rate);
    printf("%-8s %14s %14s %14s %14s\n", "currency", "disputed", "open", "won", "lost");
    size_t i;
    json_t *cur;
    json_array_foreach(json_object_get(root, "currencies"), i, cur)
    {
        printf("%-8s %14lld %14lld %14lld %14lld\n",
               json_string_value(json_object_get(cur, "currency")), rd_int(cur, "disputed_cents"),
               rd_int(cur, "open_cents"), rd_int(cur, "won_cents"), rd_int(cur, "lost_cents"));
    }
    printf("(amounts in cents)\n");
    json_decref(root);
}

int cmd_report_disputes(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *firm = NULL;
    const args_option opts[] = {{"--firm-id", &firm, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    report_disputes_arg a = {0};
    if (firm == NULL || !args_parse_id(firm, &a.firm))
        return args_usage(usage, "--firm-id N (a positive integer) is required");
    int rc = args_run_tx("report disputes", report_disputes_work, &a);
    if (rc != CLI_OK)
        return rc;
    if (json)
        printf("%s\n", a.json);
    else
        report_disputes_table(&a);
    free(a.json);
    return CLI_OK;
}
