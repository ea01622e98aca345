/* cmd_reminders.c: `billingctl reminders run [--date D] [--firm-id N]
 * [--dry-run]` (CONTRACT "Documents and delivery / Reminders";
 * docs/NOTIFICATIONS.md). Like `retry run`: publishes the day's
 * ticks.reminders tick (billing-notifier sends the reminders), or with
 * --dry-run lists the reminders that date asks for (billing.reminders_due
 * through common/reminders.c), writing and sending nothing. */
#include <stdio.h>

#include <jansson.h>

#include "args.h"
#include "ledgerline/reminders.h"
#include "ticks_cli.h"

static void reminder_row(const reminder_due *r, void *arg)
{
    tick_cli_rows *ro = arg;
    ro->count++;
    if (ro->json) {
        json_array_append_new(
            ro->rows,
            json_pack("{s:I, s:I, s:I, s:i, s:s, s:s, s:I, s:s, s:s?}", "invoice_id",
                      (json_int_t)r->invoice_id, "firm_id", (json_int_t)r->firm_id, "client_id",
                      (json_int_t)r->client_id, "step", r->step, "legal_number", r->legal_number,
                      "due_date", r->due_date, "balance_due_cents",
                      (json_int_t)r->balance_due_cents, "currency", r->currency, "to_address",
                      r->to_address[0] ? r->to_address : NULL));
        return;
    }
    printf("%10lld %-24s %-10s %5d %14lld %-4s %s\n", (long long)r->invoice_id, r->legal_number,
           r->due_date, r->step, (long long)r->balance_due_cents, r->currency,
           r->to_address[0] ? r->to_address : "(no address: would be recorded failed)");
}

static int reminders_dry_run(const tick_cli_args *a, const cli_opts *o)
{
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    tick_cli_rows ro = {.rows = json_array(), .json = o->json};
    if (!o->json)
        printf("%10s %-24s %-10s %5s %14s %-4s %s\n", "INVOICE", "LEGAL_NUMBER", "DUE_DATE", "STEP",
               "BALANCE_CENTS", "CUR", "TO");
    char err[1024];
    db_status st = reminders_due(c, a->date, a->firm_id, 0, 1, reminder_row, &ro, err, sizeof err);
    db_close(c);
    return tick_cli_dry_run_end(&ro, st, err, "reminder(s)", "nothing sent, nothing written");
}

int cmd_reminders_run(int argc, char **argv, const cli_opts *o, const char *usage)
{
    tick_cli_args a;
    int rc = tick_cli_parse(argc, argv, usage, &a);
    if (rc != CLI_OK)
        return rc;
    return a.dry_run ? reminders_dry_run(&a, o) : tick_cli_publish(TICK_REMINDERS, &a, o);
}
