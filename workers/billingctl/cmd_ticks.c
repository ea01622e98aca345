/* cmd_ticks.c: publishing ticks from the command line (`invoices generate`,
 * `autopay run`, `retry run` and `reminders run` share it; the last three
 * also the end of a --dry-run), and the two payment commands:
 * `autopay run` and `retry run`, whose --dry-run lists what the tick would
 * charge (and, for retries, make overdue) from the workers' own selection
 * (common/payments.c), writing nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "ledgerline/config.h"
#include "ledgerline/kafka.h"
#include "ledgerline/payments.h"
#include "ledgerline/ticks.h"
#include "ledgerline/topics.h"
#include "ticks_cli.h"

int tick_cli_parse(int argc, char **argv, const char *usage, tick_cli_args *out)
{
    *out = (tick_cli_args){.date = date_today_utc()};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int g;
        if (strcmp(argv[i], "--dry-run") == 0) {
            out->dry_run = true;
        } else if ((g = args_opt(argc, argv, &i, "--date", &v)) != 0) {
            if (g < 0 || !date_parse(v, &out->date))
                return args_usage(usage, "--date must be YYYY-MM-DD");
        } else if ((g = args_opt(argc, argv, &i, "--firm-id", &v)) != 0) {
            if (g < 0 || !args_parse_id(v, &out->firm_id))
                return args_usage(usage, "--firm-id must be a positive integer");
        } else {
            return args_usage(usage, "unexpected argument \"%s\"", argv[i]);
        }
    }
    return CLI_OK;
}

int tick_cli_publish(tick_kind kind, const tick_cli_args *a, const cli_opts *o)
{
    const char *brokers = kafka_brokers_or_exit();
    const char *prefix = topic_prefix();
    int shards = (int)config_int("TICK_SHARDS", 12, 1, 1024);
    char err[1024], ds[11];
    kafka_producer *p = kafka_producer_new(brokers, 30000, err, sizeof err);
    if (p == NULL)
        return args_refused("cannot create a Kafka producer", err);
    int rc = ticks_publish(p, prefix, kind, a->date, NULL, shards, a->firm_id, err, sizeof err);
    kafka_producer_destroy(p, 5000);
    if (rc != 0)
        return args_refused("tick not published", err);
    date_format(a->date, ds, sizeof ds);
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:i, s:o}", "kind", tick_kind_name(kind), "business_date",
                              ds, "shards", shards, "firm_id",
                              a->firm_id > 0 ? json_integer(a->firm_id) : json_null());
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (s == NULL)
            return CLI_REFUSED;
        printf("%s\n", s);
        free(s);
    } else if (a->firm_id > 0) {
        printf("published %s tick for %s (%d shards, firm %lld)\n", tick_kind_name(kind), ds,
               shards, (long long)a->firm_id);
    } else {
        printf("published %s tick for %s (%d shards, all firms)\n", tick_kind_name(kind), ds,
               shards);
    }
    return CLI_OK;
}

int tick_cli_dry_run_end(tick_cli_rows *d, db_status st, const char *err, const char *what,
                         const char *nothing_done)
{
    int rc = CLI_OK;
    if (st != DB_OK) {
        rc = args_refused("dry run failed", err);
    } else if (d->json) {
        char *s = json_dumps(d->rows, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        printf("%zu %s (dry run: %s)\n", d->count, what, nothing_done);
    }
    json_decref(d->rows);
    return rc;
}

static void preview_row(const payments_preview_row *r, void *arg)
{
    tick_cli_rows *po = arg;
    po->count++;
    if (po->json) {
        json_array_append_new(
            po->rows,
            json_pack("{s:s, s:I, s:s, s:I, s:s, s:s, s:I, s:I, s:s, s:i}", "action", r->action,
                      "invoice_id", (json_int_t)r->invoice_id, "invoice_number", r->invoice_number,
                      "engagement_id", (json_int_t)r->engagement_id, "period_start",
                      r->period_start, "period_end", r->period_end, "total_cents",
                      (json_int_t)r->total_cents, "due_cents", (json_int_t)r->due_cents, "currency",
                      r->currency, "attempt_no", r->attempt_no));
        return;
    }
    printf("%-8s %10lld %-32s %10lld %-10s %-10s %12lld %12lld %-4s %7d\n", r->action,
           (long long)r->invoice_id, r->invoice_number, (long long)r->engagement_id,
           r->period_start, r->period_end, (long long)r->total_cents, (long long)r->due_cents,
           r->currency, r->attempt_no);
}

static int payments_dry_run(payments_kind kind, const tick_cli_args *a, const cli_opts *o)
{
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    tick_cli_rows po = {.rows = json_array(), .json = o->json};
    if (!o->json)
        printf("%-8s %10s %-32s %10s %-10s %-10s %12s %12s %-4s %7s\n", "ACTION", "INVOICE",
               "INVOICE_NUMBER", "ENGAGEMENT", "PERIOD_START", "PERIOD_END", "TOTAL_CENTS",
               "DUE_CENTS", "CUR", "ATTEMPT");
    char err[1024];
    db_status st =
        payments_preview(c, kind, a->date, a->firm_id, preview_row, &po, err, sizeof err);
    db_close(c);
    return tick_cli_dry_run_end(&po, st, err, "row(s)", "nothing charged, nothing written");
}

int cmd_autopay_run(int argc, char **argv, const cli_opts *o, const char *usage)
{
    tick_cli_args a;
    int rc = tick_cli_parse(argc, argv, usage, &a);
    if (rc != CLI_OK)
        return rc;
    return a.dry_run ? payments_dry_run(PAYMENTS_AUTOPAY, &a, o)
                     : tick_cli_publish(TICK_AUTOPAY, &a, o);
}

int cmd_retry_run(int argc, char **argv, const cli_opts *o, const char *usage)
{
    tick_cli_args a;
    int rc = tick_cli_parse(argc, argv, usage, &a);
    if (rc != CLI_OK)
        return rc;
    return a.dry_run ? payments_dry_run(PAYMENTS_RETRY, &a, o)
                     : tick_cli_publish(TICK_RETRY, &a, o);
}
