/* cmd_report.c: `billingctl report revenue --firm-id N --from D --to D`
 * (BILLING_RULES section 10): package vs hourly, invoiced vs collected, per
 * currency. The definitions (which invoices, how a payment is split between
 * package, hourly, adjustment and tax) are in docs/REPORTS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/reports.h"

typedef struct {
    int64_t firm;
    char from[11], to[11];
    char *json;
} revenue_arg;

static void print_table(const revenue_arg *a)
{
    json_t *root = json_loads(a->json, 0, NULL);
    if (root == NULL) {
        printf("%s\n", a->json);
        return;
    }
    printf("revenue of firm %lld from %s to %s\n", (long long)a->firm, a->from, a->to);
    printf("%-8s %-10s %8s %14s %14s %14s %14s %14s\n", "currency", "", "count", "package",
           "hourly", "adjustment", "tax", "total");
    size_t i;
    json_t *cur;
    json_array_foreach(json_object_get(root, "currencies"), i, cur)
    {
        const char *code = json_string_value(json_object_get(cur, "currency"));
        json_t *iv = json_object_get(cur, "invoiced"), *co = json_object_get(cur, "collected");
        printf("%-8s %-10s %8lld %14lld %14lld %14lld %14lld %14lld\n", code, "invoiced",
               args_jint(iv, "invoice_count"), args_jint(iv, "package_cents"),
               args_jint(iv, "hourly_cents"), args_jint(iv, "adjustment_cents"),
               args_jint(iv, "tax_cents"), args_jint(iv, "total_cents"));
        printf("%-8s %-10s %8lld %14lld %14lld %14lld %14lld %14lld\n", code, "collected",
               args_jint(co, "payment_count"), args_jint(co, "package_cents"),
               args_jint(co, "hourly_cents"), args_jint(co, "adjustment_cents"),
               args_jint(co, "tax_cents"), args_jint(co, "total_cents"));
        printf("%-8s credit applied %lld, refunded %lld (cents)\n", code,
               args_jint(cur, "credit_applied_cents"), args_jint(cur, "refunded_cents"));
        const json_t *cn = json_object_get(cur, "credit_notes");
        if (args_jint(cn, "count") > 0)
            printf("%-8s credit notes %lld: %lld (tax %lld): %lld off balances due, %lld "
                   "refunded, %lld to client credit (cents)\n",
                   code, args_jint(cn, "count"), args_jint(cn, "total_cents"),
                   args_jint(cn, "tax_cents"), args_jint(cn, "applied_to_due_cents"),
                   args_jint(cn, "refunded_cents"), args_jint(cn, "credited_cents"));
    }
    printf("(amounts in cents)\n");
    json_decref(root);
}

int cmd_report_revenue(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    revenue_arg a = {0};
    const char *firm = NULL, *from = NULL, *to = NULL;
    const args_option opts[] = {
        {"--firm-id", &firm, NULL}, {"--from", &from, NULL}, {"--to", &to, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    civil_date f, t;
    if (firm == NULL || !args_parse_id(firm, &a.firm))
        return args_usage(usage, "--firm-id N (a positive integer) is required");
    if (from == NULL || !date_parse(from, &f))
        return args_usage(usage, "--from YYYY-MM-DD is required");
    if (to == NULL || !date_parse(to, &t))
        return args_usage(usage, "--to YYYY-MM-DD is required");
    if (t.days < f.days)
        return args_usage(usage, "--to is before --from");
    date_format(f, a.from, sizeof a.from);
    date_format(t, a.to, sizeof a.to);
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = report_revenue(c, a.firm, a.from, a.to, &a.json, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("report revenue", err);
    if (json)
        printf("%s\n", a.json);
    else
        print_table(&a);
    free(a.json);
    return CLI_OK;
}
