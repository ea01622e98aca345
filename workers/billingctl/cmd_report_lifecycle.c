/* cmd_report_lifecycle.c: `billingctl report wip --firm-id N [--date D]` and
 * `billingctl report aging --firm-id N --date D` (CONTRACT "Invoice
 * lifecycle"; docs/INVOICES.md). The figures are sql/015's
 * billing.report_wip / billing.report_aging (common/reports.c); this file prints them as a table
 * or, with --json, as {"firm_id","date","rows":[...]} with the functions'
 * column names as keys (amounts in minor units, hours as text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/reports.h"

typedef struct {
    const char *name;
    PGresult *(*rows)(db_conn *c, int64_t firm_id, const char *date, db_status *st, char *err,
                      size_t errlen);
    bool date_required;
    const char *header;
    const char *title;
} report_kind;

static const report_kind WIP = {
    "report wip", report_wip, false,
    "engagement_id,client_id,title,currency,approved_hours,approved_cents,unapproved_hours,"
    "unapproved_cents,entries",
    "work in progress (time not yet invoiced)"};

static const report_kind AGING = {
    "report aging", report_aging, true,
    "client_id,client_name,currency,current_cents,days_1_30_cents,days_31_60_cents,"
    "days_61_90_cents,days_90_plus_cents,total_cents,invoices",
    "open balances by days past due"};

/* Columns whose values are text in JSON (the others are integers). */
static bool text_column(const char *name)
{
    return strcmp(name, "title") == 0 || strcmp(name, "currency") == 0 ||
           strcmp(name, "client_name") == 0 || strstr(name, "_hours") != NULL;
}

static int report_run(int argc, char **argv, const cli_opts *o, const char *usage,
                      const report_kind *k)
{
    const char *firm = NULL, *date = NULL;
    const args_option opts[] = {{"--firm-id", &firm, NULL}, {"--date", &date, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    int64_t firm_id;
    civil_date d = date_today_utc();
    if (firm == NULL || !args_parse_id(firm, &firm_id))
        return args_usage(usage, "--firm-id N (a positive integer) is required");
    if ((date == NULL && k->date_required) || (date != NULL && !date_parse(date, &d)))
        return args_usage(usage, "--date YYYY-MM-DD is %s",
                          k->date_required ? "required" : "malformed");
    char ds[11];
    date_format(d, ds, sizeof ds);
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st;
    PGresult *r = k->rows(c, firm_id, ds, &st, err, sizeof err);
    db_close(c);
    if (r == NULL)
        return args_refused(k->name, err);
    char cols[512];
    snprintf(cols, sizeof cols, "%s", k->header);
    const char *names[16];
    int nc = 0;
    for (char *t = strtok(cols, ","); t != NULL && nc < 16; t = strtok(NULL, ","))
        names[nc++] = t;
    if (o->json) {
        json_t *rows = json_array();
        for (int i = 0; i < PQntuples(r); i++) {
            json_t *row = json_object();
            for (int j = 0; j < nc && j < PQnfields(r); j++)
                json_object_set_new(row, names[j],
                                    text_column(names[j])
                                        ? json_string(PQgetvalue(r, i, j))
                                        : json_integer(strtoll(PQgetvalue(r, i, j), NULL, 10)));
            json_array_append_new(rows, row);
        }
        json_t *doc =
            json_pack("{sI ss so}", "firm_id", (json_int_t)firm_id, "date", ds, "rows", rows);
        char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(doc);
    } else {
        printf("%s of firm %lld on %s\n", k->title, (long long)firm_id, ds);
        for (int j = 0; j < nc; j++)
            printf(j == 0 ? "%-14s" : " %16s", names[j]);
        printf("\n");
        for (int i = 0; i < PQntuples(r); i++) {
            for (int j = 0; j < nc && j < PQnfields(r); j++)
                printf(j == 0 ? "%-14s" : " %16.16s", PQgetvalue(r, i, j));
            printf("\n");
        }
        printf("%d row(s)\n", PQntuples(r));
    }
    PQclear(r);
    return CLI_OK;
}

int cmd_report_wip(int argc, char **argv, const cli_opts *o, const char *usage)
{
    return report_run(argc, argv, o, usage, &WIP);
}

int cmd_report_aging(int argc, char **argv, const cli_opts *o, const char *usage)
{
    return report_run(argc, argv, o, usage, &AGING);
}
