/* cmd_autopay.c: `billingctl autopay resume INVOICE_ID --by NAME` (rule
 * 11.6): an invoice parked by an idempotency conflict goes back to
 * scheduled; the rule is common/payments.c's payments_resume. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/payments.h"

typedef struct {
    int64_t invoice_id;
    const char *by;
} resume_arg;

static db_status resume_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    const resume_arg *a = varg;
    return payments_resume(c, a->invoice_id, a->by, err, errlen);
}

int cmd_autopay_resume(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *inv = NULL, *by = NULL;
    const args_option opts[] = {{"--by", &by, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &inv) != 0)
        return CLI_USAGE;
    resume_arg a = {.by = by};
    if (inv == NULL || !args_parse_id(inv, &a.invoice_id))
        return args_usage(usage, "INVOICE_ID (a positive integer) is required");
    if (by == NULL || by[0] == '\0' || strlen(by) > 200)
        return args_usage(usage, "--by NAME (at most 200 characters) is required");
    int rc = args_run_tx("autopay resume", resume_tx, &a);
    if (rc != CLI_OK)
        return rc;
    if (o->json)
        printf("{\"invoice_id\":%lld,\"autopay_status\":\"scheduled\"}\n", (long long)a.invoice_id);
    else
        printf("invoice %lld: autopay resumed (scheduled); its unanswered attempt is looked up at"
               " Stripe before anything is charged\n",
               (long long)a.invoice_id);
    return CLI_OK;
}
