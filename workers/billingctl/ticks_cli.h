/* ticks_cli.h: what the tick-publishing commands share (`invoices generate`,
 * `autopay run`, `retry run`, `reminders run`): their options, the publishing itself
 * and the end of a --dry-run. */
#ifndef BILLINGCTL_TICKS_CLI_H
#define BILLINGCTL_TICKS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cli.h"
#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/envelope.h"

typedef struct {
    civil_date date; /* --date, default today (UTC) */
    int64_t firm_id; /* --firm-id, 0 = all firms */
    bool dry_run;    /* --dry-run */
} tick_cli_args;

/* Parses [--date D] [--firm-id N] [--dry-run]; prints usage and returns
 * CLI_USAGE on a bad argument, else CLI_OK. */
int tick_cli_parse(int argc, char **argv, const char *usage, tick_cli_args *out);

/* Publishes the tick (TICK_SHARDS shards) and prints what was sent. */
int tick_cli_publish(tick_kind kind, const tick_cli_args *a, const cli_opts *o);

/* A --dry-run's rows as its row callback gets them: appended to rows
 * (--json) or printed as lines, and counted either way. */
typedef struct {
    json_t *rows;
    size_t count;
    bool json;
} tick_cli_rows;

/* The end of a --dry-run: "dry run failed" with err unless st is DB_OK,
 * else the rows as one JSON array (--json) or the line "<count> <what>
 * (dry run: <nothing_done>)". Frees the rows. */
int tick_cli_dry_run_end(tick_cli_rows *d, db_status st, const char *err, const char *what,
                         const char *nothing_done);

#endif
