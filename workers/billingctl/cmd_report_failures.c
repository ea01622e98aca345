/* cmd_report_failures.c: `billingctl report failures --firm-id N --from D
 * --to D` (BILLING_RULES section 10): payment failures of a firm whose
 * business time falls in [from, to] (UTC days), counted and summed by failure
 * code and currency. Every failed attempt counts once (a failure reported
 * twice is one attempt, see common/payments.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/reports.h"

int cmd_report_failures(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *firm = NULL, *from = NULL, *to = NULL;
    bool json = o->json; /* --json before the command or among its options */
    const args_option opts[] = {
        {"--firm-id", &firm, NULL}, {"--from", &from, NULL}, {"--to", &to, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    int64_t firm_id;
    civil_date f, t;
    if (firm == NULL || !args_parse_id(firm, &firm_id))
        return args_usage(usage, "--firm-id N (a positive integer) is required");
    if (from == NULL || !date_parse(from, &f) || to == NULL || !date_parse(to, &t))
        return args_usage(usage, "--from and --to YYYY-MM-DD are required");
    if (t.days < f.days)
        return args_usage(usage, "--to is before --from");
    char fs[11], ts[11];
    date_format(f, fs, sizeof fs);
    date_format(t, ts, sizeof ts);
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st;
    PGresult *r = report_failures(c, firm_id, fs, ts, &st, err, sizeof err);
    db_close(c);
    if (r == NULL)
        return args_refused("report failures", err);
    long long total_n = 0;
    json_t *rows = json_array();
    if (!json)
        printf("payment failures of firm %lld from %s to %s\n%-28s %-8s %8s %16s\n",
               (long long)firm_id, fs, ts, "failure_code", "currency", "count", "amount_cents");
    for (int i = 0; i < PQntuples(r); i++) {
        long long n = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        long long amount = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        total_n += n;
        if (json)
            json_array_append_new(rows, json_pack("{s:s, s:s, s:I, s:I}", "failure_code",
                                                  PQgetvalue(r, i, 0), "currency",
                                                  PQgetvalue(r, i, 1), "count", (json_int_t)n,
                                                  "amount_cents", (json_int_t)amount));
        else
            printf("%-28s %-8s %8lld %16lld\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), n,
                   amount);
    }
    PQclear(r);
    if (json) {
        json_t *out =
            json_pack("{s:I, s:s, s:s, s:I, s:o}", "firm_id", (json_int_t)firm_id, "from", fs, "to",
                      ts, "failure_count", (json_int_t)total_n, "by_code", rows);
        char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(out);
    } else {
        printf("%lld failure(s)\n", total_n);
        json_decref(rows);
    }
    return CLI_OK;
}
