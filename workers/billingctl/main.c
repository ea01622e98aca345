/* main.c: billingctl's entry point: global options and the command table.
 * Each command group lives in its own cmd_<group>.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ledgerline/log.h"

/* The command table: the only usage text of billingctl. Each command gets
 * its line (without "billingctl ") and prints it on a usage error; --help
 * and a missing command print them all. */
typedef struct {
    const char *group;
    const char *verb; /* NULL: a one-word command */
    cli_cmd_fn fn;
    const char *usage;
} cli_command;

static const cli_command commands[] = {
    {"db", "migrate", cmd_db_migrate, "db migrate"},
    {"invoices", "generate", cmd_invoices_generate,
     "invoices generate [--date YYYY-MM-DD] [--firm-id N] [--dry-run]"},
    {"time", "approve", cmd_time_approve, "time approve ENTRY_ID... --by NAME"},
    {"time", "revoke", cmd_time_revoke, "time revoke ENTRY_ID... [--by NAME]"},
    {"engagement", "renew", cmd_engagement_renew,
     "engagement renew ENGAGEMENT_ID [--start YYYY-MM-DD] [--end YYYY-MM-DD] "
     "[--package-fee-cents N] "
     "[--hourly-rate-cents N] [--by NAME]"},
    {"invoice", "create", cmd_invoice_create,
     "invoice create --client N [--engagement N | --override-reason TEXT --override-by NAME] "
     "--line TYPE:QUANTITY:RATE_CENTS:DESCRIPTION ... [--date YYYY-MM-DD] [--by NAME]"},
    {"invoice", "show", cmd_invoice_show, "invoice show INVOICE_ID"},
    {"invoice", "issue", cmd_invoice_issue, "invoice issue INVOICE_ID [--date D] --by NAME"},
    {"invoice", "adjust", cmd_invoice_adjust,
     "invoice adjust INVOICE_ID --line LINE_ID (--quantity Q | --amount-cents N) --reason TEXT "
     "--by NAME"},
    {"invoice", "void", cmd_invoice_void, "invoice void INVOICE_ID --reason TEXT --by NAME"},
    {"invoice", "pdf", cmd_invoice_pdf, "invoice pdf INVOICE_ID -o FILE"},
    {"credit-note", "pdf", cmd_credit_note_pdf, "credit-note pdf CREDIT_NOTE_ID -o FILE"},
    {"statement", NULL, cmd_statement,
     "statement --client N [--date D] [--from D0] -o FILE [--send]"},
    {"notifications", "list", cmd_notifications_list,
     "notifications list [--invoice N] [--client N] [--status queued|sent|failed]"},
    {"report", "wip", cmd_report_wip, "report wip --firm-id N [--date YYYY-MM-DD] [--json]"},
    {"report", "aging", cmd_report_aging, "report aging --firm-id N --date YYYY-MM-DD [--json]"},
    {"credit-note", "create", cmd_credit_note_create,
     "credit-note create --invoice N (--amount-cents N | --line LINE_ID:AMOUNT_CENTS ...) "
     "--reason TEXT --by NAME [--refund | --credit]"},
    {"firm", "settings", cmd_firm_settings,
     "firm settings FIRM_ID [--review-before-issue on|off] [--number-prefix P] [--legal-name T] "
     "[--address T] [--tax-id T] [--payment-instructions T] [--reminder-days LIST] "
     "[--reminders on|off]"},
    {"autopay", "run", cmd_autopay_run,
     "autopay run [--date YYYY-MM-DD] [--firm-id N] [--dry-run] [--json]"},
    {"autopay", "resume", cmd_autopay_resume, "autopay resume INVOICE_ID --by NAME"},
    {"retry", "run", cmd_retry_run,
     "retry run [--date YYYY-MM-DD] [--firm-id N] [--dry-run] [--json]"},
    {"reminders", "run", cmd_reminders_run,
     "reminders run [--date YYYY-MM-DD] [--firm-id N] [--dry-run] [--json]"},
    {"report", "failures", cmd_report_failures,
     "report failures --firm-id N --from YYYY-MM-DD --to YYYY-MM-DD [--json]"},
    {"report", "revenue", cmd_report_revenue,
     "report revenue --firm-id N --from YYYY-MM-DD --to YYYY-MM-DD"},
    {"credit", "add", cmd_credit_add,
     "credit add --client N --amount-cents N --source SOURCE --description TEXT [--reason TEXT] "
     "[--approved-by NAME] [--created-by NAME] [--expires YYYY-MM-DD] [--source-invoice N]"},
    {"credit", "apply", cmd_credit_apply,
     "credit apply --invoice N [--amount-cents N] [--created-by NAME] [--date YYYY-MM-DD]"},
    {"credit", "balance", cmd_credit_balance, "credit balance --client N"},
    {"credit", "expire", cmd_credit_expire, "credit expire [--date YYYY-MM-DD] [--firm-id N]"},
    {"report", "credits", cmd_report_credits, "report credits --firm-id N [--date YYYY-MM-DD]"},
    {"health", "check", cmd_health_check, "health check http://HOST:PORT/PATH"},
    /* dispute worker issue: disputes, refunds, dead letters */
    {"dispute", "evidence", cmd_dispute_evidence,
     "dispute evidence DISPUTE --file EVIDENCE.json [--by NAME]"},
    {"refund", NULL, cmd_refund, "refund INVOICE_ID [--amount-cents N] --reason TEXT --by NAME"},
    {"report", "disputes", cmd_report_disputes, "report disputes --firm-id N"},
    {"dlq", "list", cmd_dlq_list, "dlq list"},
    {"dlq", "replay", cmd_dlq_replay, "dlq replay [--partition P] OFFSET|PARTITION:OFFSET..."},
    {"verify", NULL, cmd_verify, "verify [--firm-id N] [--limit N] [--json]"},
    {"reconcile", NULL, cmd_reconcile, "reconcile --from D --to D [--firm-id N] [--json]"},
};

static int usage(void)
{
    fprintf(stderr, "usage: billingctl [--json] COMMAND ...\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  billingctl %s\n", commands[i].usage);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    cli_opts o = {0};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--help") == 0)
            return usage(), CLI_OK;
        else
            return usage();
    }
    if (log_init("billingctl") != 0) {
        fprintf(stderr, "billingctl: configuration error: LOG_LEVEL must be one of debug, "
                        "info, warn, error\n");
        return CLI_USAGE;
    }
    /* --json is global: accepted anywhere after the command as well. */
    int n = i;
    for (int k = i; k < argc; k++) {
        if (strcmp(argv[k], "--json") == 0)
            o.json = true;
        else
            argv[n++] = argv[k];
    }
    argc = n;
    /* "verify" is the one command that may come without arguments. */
    if (argc - i < 2 && !(argc - i == 1 && strcmp(argv[i], "verify") == 0))
        return usage();
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        /* verb NULL: a one-word command ("refund 42 ..."); it gets its own
         * name as argv[0], like a verb. */
        if (commands[c].verb == NULL && strcmp(argv[i], commands[c].group) == 0)
            return commands[c].fn(argc - i, argv + i, &o, commands[c].usage);
        if (commands[c].verb != NULL && strcmp(argv[i], commands[c].group) == 0 &&
            strcmp(argv[i + 1], commands[c].verb) == 0)
            return commands[c].fn(argc - i - 1, argv + i + 1, &o, commands[c].usage);
    }
    fprintf(stderr, "billingctl: unknown command '%s %s'\n", argv[i], argv[i + 1]);
    return usage();
}
