/* cli.h: what billingctl's command files share: exit statuses and the
 * signature of a command (its usage line comes from main.c's table). */
#ifndef BILLINGCTL_CLI_H
#define BILLINGCTL_CLI_H

#include <stdbool.h>

/* Exit statuses of the contract. */
#define CLI_OK 0
#define CLI_REFUSED 1 /* the operation was refused; the message says why */
#define CLI_USAGE 2   /* usage or configuration error */

typedef struct {
    bool json; /* --json: machine-readable output */
} cli_opts;

/* argv[0] is the verb (e.g. "migrate"); usage is the command's line of the
 * command table (main.c), the only usage text there is: a command prints it
 * on a usage error (args_usage). Returns an exit status. */
typedef int (*cli_cmd_fn)(int argc, char **argv, const cli_opts *o, const char *usage);

int cmd_db_migrate(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_invoices_generate(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_time_approve(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_time_revoke(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_engagement_renew(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_invoice_create(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_invoice_show(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_autopay_run(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_autopay_resume(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_retry_run(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_report_failures(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_report_revenue(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_credit_add(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_credit_apply(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_credit_balance(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_credit_expire(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_report_credits(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_health_check(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_dispute_evidence(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_refund(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_report_disputes(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_dlq_list(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_dlq_replay(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_verify(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_reconcile(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_firm_settings(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_invoice_issue(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_invoice_adjust(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_invoice_void(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_credit_note_create(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_report_wip(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_report_aging(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_invoice_pdf(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_credit_note_pdf(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_statement(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_notifications_list(int argc, char **argv, const cli_opts *o, const char *usage);
int cmd_reminders_run(int argc, char **argv, const cli_opts *o, const char *usage);

#endif
