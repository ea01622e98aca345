/* cmd_report_credits.c: `billingctl report credits --firm-id N [--date D]`,
 * the credit reconciliation of BILLING_RULES sections 4 and 10 for one firm
 * and one UTC day (default today), per currency (the client's currency):
 * credits issued, applied (invoice_payment / partial_payment debits),
 * expired and refunded that day, the net change, the opening and closing
 * (outstanding) balance, and two checks: the outstanding balance summed from
 * the firm's ledger equals the sum of the firm's clients' balances (computed
 * per client, from the client side), and opening + net change = outstanding.
 * A failed check prints the report and exits 1. Definitions: docs/CREDITS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/reports.h"

typedef struct {
    int64_t firm;
    char date[11];
    char *json;
} credits_arg;

static void print_table(json_t *root, const credits_arg *a)
{
    printf("credit reconciliation of firm %lld on %s (amounts in cents)\n", (long long)a->firm,
           a->date);
    printf("%-8s %14s %14s %14s %14s %14s %14s %14s\n", "currency", "issued", "applied", "expired",
           "refunded", "net change", "opening", "outstanding");
    size_t i;
    json_t *cur;
    json_t *list = json_object_get(root, "currencies");
    json_array_foreach(list, i, cur)
    {
        char issued[40], applied[40], expired[40];
        snprintf(issued, sizeof issued, "%lld (%lld)", args_jint(cur, "credits_issued_cents"),
                 args_jint(cur, "credits_issued_count"));
        snprintf(applied, sizeof applied, "%lld (%lld)", args_jint(cur, "credits_applied_cents"),
                 args_jint(cur, "credits_applied_count"));
        snprintf(expired, sizeof expired, "%lld (%lld)", args_jint(cur, "credits_expired_cents"),
                 args_jint(cur, "credits_expired_count"));
        printf("%-8s %14s %14s %14s %14lld %14lld %14lld %14lld\n",
               json_string_value(json_object_get(cur, "currency")), issued, applied, expired,
               args_jint(cur, "credits_refunded_cents"), args_jint(cur, "net_change_cents"),
               args_jint(cur, "opening_balance_cents"),
               args_jint(cur, "outstanding_balance_cents"));
    }
    json_array_foreach(list, i, cur)
    {
        bool ok = json_is_true(json_object_get(cur, "balanced"));
        printf("check %s: outstanding %lld = sum of clients' balances %lld (%lld client(s) with "
               "credit), opening + net change = outstanding: %s\n",
               json_string_value(json_object_get(cur, "currency")),
               args_jint(cur, "outstanding_balance_cents"),
               args_jint(cur, "clients_balance_sum_cents"), args_jint(cur, "clients_with_balance"),
               ok ? "ok" : "MISMATCH");
    }
    if (json_array_size(list) == 0)
        printf("(the firm has no clients)\n");
}

int cmd_report_credits(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    credits_arg a = {0};
    const char *firm = NULL, *date = NULL;
    const args_option opts[] = {{"--firm-id", &firm, NULL}, {"--date", &date, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    if (firm == NULL || !args_parse_id(firm, &a.firm))
        return args_usage(usage, "--firm-id N (a positive integer) is required");
    civil_date d = date_today_utc();
    if (date != NULL && !date_parse(date, &d))
        return args_usage(usage, "--date must be a date YYYY-MM-DD");
    date_format(d, a.date, sizeof a.date);
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = report_credits(c, a.firm, a.date, &a.json, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("report credits", err);
    json_t *root = json_loads(a.json, 0, NULL);
    bool balanced = root == NULL || json_is_true(json_object_get(root, "balanced"));
    if (json || root == NULL)
        printf("%s\n", a.json);
    else
        print_table(root, &a);
    json_decref(root);
    free(a.json);
    if (!balanced) {
        fprintf(stderr, "billingctl: report credits: the ledger does not reconcile (see the "
                        "check line)\n");
        return CLI_REFUSED;
    }
    return CLI_OK;
}
