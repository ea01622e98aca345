/* cmd_invoices.c: `billingctl invoices generate [--date D] [--firm-id N]
 * [--dry-run]`. Publishes the invoicing tick (TICK_SHARDS shards, firm-scoped
 * when asked); --dry-run lists the invoices a real run would create, from the
 * same SQL as the worker (common/invoicing.c), and writes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/db.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/kafka.h"
#include "ledgerline/ticks.h"
#include "ledgerline/topics.h"
#include "ticks_cli.h"

static int invoices_print_preview(const invoicing_preview *pv, const cli_opts *o)
{
    if (o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < pv->count; i++) {
            const invoicing_preview_row *r = &pv->rows[i];
            json_t *lines = json_loads(r->lines_json, 0, NULL);
            json_array_append_new(
                arr, json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:o}",
                               "invoice_number", r->invoice_number, "engagement_id",
                               (json_int_t)r->engagement_id, "firm_id", (json_int_t)r->firm_id,
                               "client_id", (json_int_t)r->client_id, "period_start",
                               r->period_start, "period_end", r->period_end, "currency",
                               r->currency, "subtotal_cents", (json_int_t)r->subtotal_cents,
                               "tax_cents", (json_int_t)r->tax_cents, "total_cents",
                               (json_int_t)r->total_cents, "lines", lines ? lines : json_array()));
        }
        char *s = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        if (s == NULL)
            return CLI_REFUSED;
        printf("%s\n", s);
        free(s);
        return CLI_OK;
    }
    printf("%-32s %12s %-10s %-10s %14s %5s\n", "INVOICE_NUMBER", "ENGAGEMENT", "PERIOD_START",
           "PERIOD_END", "TOTAL_CENTS", "LINES");
    for (size_t i = 0; i < pv->count; i++) {
        const invoicing_preview_row *r = &pv->rows[i];
        json_t *lines = json_loads(r->lines_json, 0, NULL);
        printf("%-32s %12lld %-12s %-10s %14lld %5zu\n", r->invoice_number,
               (long long)r->engagement_id, r->period_start, r->period_end,
               (long long)r->total_cents, json_array_size(lines));
        json_decref(lines);
    }
    printf("%zu invoice(s) would be created (dry run: nothing written)\n", pv->count);
    return CLI_OK;
}

static int invoices_dry_run(civil_date date, int64_t firm_id, const cli_opts *o)
{
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    invoicing_params p = {.business_date = date, .shard = 0, .shards = 1, .firm_id = firm_id};
    invoicing_preview pv;
    db_status st = invoicing_preview_run(c, &p, &pv, err, sizeof err);
    db_close(c);
    int rc = CLI_REFUSED;
    if (st == DB_OK)
        rc = invoices_print_preview(&pv, o);
    else
        fprintf(stderr, "billingctl: dry run failed: %s\n", err);
    invoicing_preview_free(&pv);
    return rc;
}

int cmd_invoices_generate(int argc, char **argv, const cli_opts *o, const char *usage)
{
    tick_cli_args a;
    int rc = tick_cli_parse(argc, argv, usage, &a);
    if (rc != CLI_OK)
        return rc;
    return a.dry_run ? invoices_dry_run(a.date, a.firm_id, o)
                     : tick_cli_publish(TICK_INVOICING, &a, o);
}
