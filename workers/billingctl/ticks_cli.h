/* ticks_cli.h: what the tick-publishing commands share (`invoices generate`,
 * `autopay run`, `retry run`, `reminders run`): their options and the publishing itself. */
#ifndef BILLINGCTL_TICKS_CLI_H
#define BILLINGCTL_TICKS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "ledgerline/date.h"
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

#endif
