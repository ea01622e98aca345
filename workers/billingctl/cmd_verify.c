/* cmd_verify.c: `billingctl verify [--firm-id N] [--limit N] [--json]`, the
 * reconciliation check of issue 9: runs every check of common/verify.c
 * (verify.h) in one snapshot and prints each violation with its ids. Exit 0
 * when clean, 1 when there is any violation (or the check could not run:
 * no such firm, database error), 2 on usage errors.
 *
 * --limit N caps the violations printed per check (default 1000, 0 = all);
 * the counts are always complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/verify.h"

typedef struct {
    bool json;
    json_t *list; /* --json: the violations */
} verify_out;

static void verify_print(const verify_violation *v, void *arg)
{
    verify_out *o = arg;
    if (o->json) {
        json_t *j =
            json_pack("{ss sI ss sI ss}", "check", v->check_name, "firm_id", (json_int_t)v->firm_id,
                      "table", v->table, "id", (json_int_t)v->id, "detail", v->detail);
        if (j != NULL)
            json_array_append_new(o->list, j);
        return;
    }
    printf("VIOLATION %-14s firm %-6lld %s %lld: %s\n", v->check_name, (long long)v->firm_id,
           v->table, (long long)v->id, v->detail);
}

int cmd_verify(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *firm = NULL, *limit = NULL;
    const args_option opts[] = {{"--firm-id", &firm, NULL}, {"--limit", &limit, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    int64_t firm_id = 0, cap = 1000;
    if (firm != NULL && !args_parse_id(firm, &firm_id))
        return args_usage(usage, "--firm-id must be a positive integer");
    if (limit != NULL && !args_parse_cents(limit, &cap))
        return args_usage(usage, "--limit must be a whole number (0 = no limit)");

    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    verify_out out = {.json = json, .list = json ? json_array() : NULL};
    if (json && out.list == NULL) {
        db_close(c);
        fprintf(stderr, "billingctl: out of memory\n");
        return CLI_REFUSED;
    }
    verify_summary s;
    char err[1024];
    db_status st = verify_run(c, firm_id, verify_print, &out, cap, &s, err, sizeof err);
    db_close(c);
    if (st != DB_OK) {
        json_decref(out.list);
        return args_refused("verify", err);
    }
    if (json) {
        json_t *checks = json_object();
        for (int k = 0; k < VERIFY_NCHECKS && checks != NULL; k++)
            json_object_set_new(checks, verify_check_name((verify_check)k),
                                json_integer((json_int_t)s.per_check[k]));
        json_t *root = json_pack("{so sb sI so so}", "firm_id",
                                 firm_id > 0 ? json_integer((json_int_t)firm_id) : json_null(),
                                 "clean", s.violations == 0, "violations", (json_int_t)s.violations,
                                 "checks", checks, "details", out.list);
        char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(root);
    } else {
        printf("%-16s %s\n", "check", "violations");
        for (int k = 0; k < VERIFY_NCHECKS; k++)
            printf("%-16s %lld\n", verify_check_name((verify_check)k), (long long)s.per_check[k]);
        if (s.reported < s.violations)
            printf("(%lld violation(s) not listed: --limit %lld per check)\n",
                   (long long)(s.violations - s.reported), (long long)cap);
        if (firm_id > 0)
            printf("verify firm %lld: ", (long long)firm_id);
        else
            printf("verify all firms: ");
        if (s.violations == 0)
            printf("clean (%d checks)\n", VERIFY_NCHECKS);
        else
            printf("%lld violation(s)\n", (long long)s.violations);
    }
    return s.violations == 0 ? CLI_OK : CLI_REFUSED;
}
