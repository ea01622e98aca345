/* cmd_engagement.c: `billingctl engagement renew ENGAGEMENT_ID [--start D]
 * [--end D] [--package-fee-cents N] [--hourly-rate-cents N] [--by NAME]`
 * (BILLING_RULES section 8).
 *
 * Parses the options and prints the outcome; the renewal itself is
 * common/engagement_renew.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/engagement_renew.h"

/* args_parse_each's positional: the ENGAGEMENT_ID, once. */
static int renew_id(const char *arg, const char *usage, void *ctx)
{
    int64_t *id = ctx;
    if (*id != 0 || arg[0] == '-')
        return args_usage(usage, "unexpected argument '%s'", arg);
    if (!args_parse_id(arg, id))
        return args_usage(usage, "'%s' is not an engagement id", arg);
    return 0;
}

int cmd_engagement_renew(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    engagement_renewal a = {0};
    const char *start = NULL, *end = NULL, *fee = NULL, *rate = NULL;
    const args_option opts[] = {{"--start", &start, NULL},
                                {"--end", &end, NULL},
                                {"--package-fee-cents", &fee, NULL},
                                {"--hourly-rate-cents", &rate, NULL},
                                {"--by", &a.by, NULL}};
    int rc = args_parse_each(argc, argv, usage, opts, ARGS_N(opts), renew_id, &a.id);
    if (rc != 0)
        return rc;
    if (a.id == 0)
        return args_usage(usage, "give the ENGAGEMENT_ID to renew");
    if (start && !(a.has_start = date_parse(start, &a.start)))
        return args_usage(usage, "--start '%s' is not a date (YYYY-MM-DD)", start);
    if (end && !(a.has_end = date_parse(end, &a.end)))
        return args_usage(usage, "--end '%s' is not a date (YYYY-MM-DD)", end);
    if (a.has_start && a.has_end && a.end.days < a.start.days)
        return args_usage(usage, "--end is before --start");
    int64_t v;
    if (fee && !args_parse_cents(fee, &v))
        return args_usage(usage, "--package-fee-cents '%s' is not a whole number of cents", fee);
    if (rate && !args_parse_cents(rate, &v))
        return args_usage(usage, "--hourly-rate-cents '%s' is not a whole number of cents", rate);
    a.fee = fee;
    a.rate = rate;
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = engagement_renew(c, &a, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("engagement renew", err);
    if (json)
        printf("{\"engagement_id\":%lld}\n", (long long)a.new_id);
    else
        printf("engagement %lld renewed as engagement %lld (%s .. %s)\n", (long long)a.id,
               (long long)a.new_id, a.start_s, a.end_s);
    return CLI_OK;
}
