/* cmd_credit.c: the credit ledger commands (BILLING_RULES section 4); the
 * ledger rules themselves live in common/credit.c.
 *
 * `credit add --client N --amount-cents N --source SOURCE --description TEXT
 *  [--reason TEXT] [--approved-by NAME] [--created-by NAME] [--expires D]
 *  [--source-invoice N]`
 *   prints the entry id (--json {"entry_id":N}). --source-invoice names the
 *   invoice a credit came from (required for source overpayment: the invoice
 *   overpaid, e.g. by a cheque above the balance due). A goodwill or
 *   correction credit without a reason and an approver is refused (exit 1)
 *   before the database is touched.
 * `credit apply --invoice N [--amount-cents N] [--created-by NAME] [--date D]`
 *   applies the client's available credit (as of --date, default today UTC)
 *   to the invoice's balance due; prints the amount and the invoice's new
 *   status. Nothing to apply (no available credit, nothing due) is exit 1
 *   and writes nothing.
 * `credit balance --client N` (--json {"client_id":N,"balance_cents":N,"currency":"usd"}).
 * `credit expire [--date D] [--firm-id N]`: writes off credit whose last
 *   usable day is before D (default today UTC). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/credit.h"
#include "ledgerline/credit_apply_cli.h"
#include "ledgerline/log.h"
#include "ledgerline/text.h"

/* ---- credit add --------------------------------------------------------- */

typedef struct {
    credit_add_params p;
    int64_t entry_id;
} add_arg;

static db_status add_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    add_arg *a = varg;
    return credit_add(c, &a->p, &a->entry_id, err, errlen);
}

/* Pure (no database): fuzzed by tests/fuzz/fuzz_cli.c. */
int credit_cli_parse_add(int argc, char **argv, const char *usage, credit_add_params *p)
{
    const char *client = NULL, *amount = NULL, *source = NULL, *desc = NULL, *reason = NULL,
               *approver = NULL, *by = NULL, *expires = NULL, *src_inv = NULL;
    const args_option opts[] = {
        {"--client", &client, NULL},         {"--amount-cents", &amount, NULL},
        {"--source", &source, NULL},         {"--description", &desc, NULL},
        {"--reason", &reason, NULL},         {"--approved-by", &approver, NULL},
        {"--created-by", &by, NULL},         {"--expires", &expires, NULL},
        {"--source-invoice", &src_inv, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    *p = (credit_add_params){0};
    if (client == NULL || !args_parse_id(client, &p->client_id))
        return args_usage(usage, "--client N (a positive integer) is required");
    if (amount == NULL || !args_parse_cents(amount, &p->amount_cents) || p->amount_cents <= 0)
        return args_usage(usage, "--amount-cents N (a positive integer) is required");
    if (source == NULL)
        return args_usage(usage, "--source is required");
    if (strcmp(source, "overpayment") != 0 && strcmp(source, "refund") != 0 &&
        strcmp(source, "goodwill") != 0 && strcmp(source, "promotional") != 0 &&
        strcmp(source, "correction") != 0)
        return args_usage(usage, "--source must be one of overpayment, refund, goodwill, "
                                 "promotional, correction");
    if (src_inv != NULL && !args_parse_id(src_inv, &p->source_invoice_id))
        return args_usage(usage, "--source-invoice must be a positive integer");
    if (strcmp(source, "overpayment") == 0 && src_inv == NULL)
        return args_usage(usage, "--source overpayment needs --source-invoice N (the "
                                 "invoice that was overpaid)");
    if (ll_blank(desc))
        return args_usage(usage, "--description TEXT is required");
    if (expires != NULL) {
        if (!date_parse(expires, &p->expires_at))
            return args_usage(usage, "--expires must be a date YYYY-MM-DD");
        p->has_expiry = true;
    }
    /* Rule 4: refused before anything is written (exit 1, not a usage error:
     * the command is well-formed, the credit is not allowed). */
    if ((strcmp(source, "goodwill") == 0 || strcmp(source, "correction") == 0) &&
        (ll_blank(reason) || ll_blank(approver))) {
        fprintf(stderr,
                "billingctl: credit add refused: rule 4 (approval): a %s credit needs "
                "--reason TEXT and --approved-by NAME\n",
                source);
        return CLI_REFUSED;
    }
    p->source = source;
    p->description = desc;
    p->reason = reason;
    p->approved_by = approver;
    p->created_by = by;
    return CLI_OK;
}

int cmd_credit_add(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    add_arg a = {0};
    credit_add_params *p = &a.p;
    int rc = credit_cli_parse_add(argc, argv, usage, p);
    if (rc != CLI_OK)
        return rc;
    const char *source = p->source;

    rc = args_run_tx("credit add", add_work, &a);
    if (rc != CLI_OK)
        return rc;
    int64_t id = a.entry_id;
    log_msg(LL_LOG_INFO, "credit added", "entry_id", DB_I64(id), "client_id", DB_I64(p->client_id),
            "amount_cents", DB_I64(p->amount_cents), "source", source, NULL);
    if (json)
        printf("{\"entry_id\":%lld}\n", (long long)id);
    else
        printf("%lld\n", (long long)id);
    return CLI_OK;
}

/* ---- credit apply ------------------------------------------------------- */

typedef struct {
    int64_t invoice_id, max_cents;
    civil_date on;
    const char *by;
    credit_apply_outcome r;
} apply_arg;

/* Pure (no database): fuzzed by tests/fuzz/fuzz_cli.c. */
int credit_cli_parse_apply(int argc, char **argv, const char *usage, int64_t *invoice_id,
                           int64_t *max_cents, civil_date *on, const char **by_out)
{
    const char *inv = NULL, *amount = NULL, *by = NULL, *date = NULL;
    const args_option opts[] = {{"--invoice", &inv, NULL},
                                {"--amount-cents", &amount, NULL},
                                {"--created-by", &by, NULL},
                                {"--date", &date, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    *invoice_id = 0;
    *max_cents = 0;
    if (inv == NULL || !args_parse_id(inv, invoice_id))
        return args_usage(usage, "--invoice N (a positive integer) is required");
    if (amount != NULL && (!args_parse_cents(amount, max_cents) || *max_cents <= 0))
        return args_usage(usage, "--amount-cents must be a positive integer");
    *on = date_today_utc();
    if (date != NULL && !date_parse(date, on))
        return args_usage(usage, "--date must be a date YYYY-MM-DD");
    *by_out = by;
    return CLI_OK;
}

int cmd_credit_apply(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    apply_arg a = {0};
    int rc = credit_cli_parse_apply(argc, argv, usage, &a.invoice_id, &a.max_cents, &a.on, &a.by);
    if (rc != CLI_OK)
        return rc;

    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st =
        credit_apply_manual(c, a.invoice_id, a.max_cents, a.on, a.by, &a.r, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("credit apply", err);
    log_msg(LL_LOG_INFO, "credit applied", "invoice_id", DB_I64(a.invoice_id), "amount_cents",
            DB_I64(a.r.applied), "status", a.r.status, NULL);
    if (json)
        printf("{\"invoice_id\":%lld,\"applied_cents\":%lld,\"status\":\"%s\","
               "\"amount_paid_cents\":%lld,\"balance_due_cents\":%lld}\n",
               (long long)a.invoice_id, (long long)a.r.applied, a.r.status, (long long)a.r.paid,
               (long long)(a.r.total - a.r.paid));
    else
        printf("applied %lld cents to invoice %lld; status %s, balance due %lld cents\n",
               (long long)a.r.applied, (long long)a.invoice_id, a.r.status,
               (long long)(a.r.total - a.r.paid));
    return CLI_OK;
}

/* ---- credit balance ----------------------------------------------------- */

typedef struct {
    int64_t client_id, balance;
    char currency[4];
} balance_arg;

static db_status balance_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    balance_arg *a = varg;
    return credit_balance(c, a->client_id, &a->balance, a->currency, err, errlen);
}

int cmd_credit_balance(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *client = NULL;
    const args_option opts[] = {{"--client", &client, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    balance_arg a = {0};
    if (client == NULL || !args_parse_id(client, &a.client_id))
        return args_usage(usage, "--client N (a positive integer) is required");
    int rc = args_run_tx("credit balance", balance_work, &a);
    if (rc != CLI_OK)
        return rc;
    if (json)
        printf("{\"client_id\":%lld,\"balance_cents\":%lld,\"currency\":\"%s\"}\n",
               (long long)a.client_id, (long long)a.balance, a.currency);
    else
        printf("client %lld credit balance: %lld cents (%s)\n", (long long)a.client_id,
               (long long)a.balance, a.currency);
    return CLI_OK;
}

/* ---- credit expire ------------------------------------------------------ */

typedef struct {
    civil_date as_of;
    int64_t firm_id, entries, amount;
} expire_arg;

static db_status expire_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    expire_arg *a = varg;
    return credit_expire(c, a->as_of, a->firm_id, &a->entries, &a->amount, err, errlen);
}

int cmd_credit_expire(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *date = NULL, *firm = NULL;
    const args_option opts[] = {{"--date", &date, NULL}, {"--firm-id", &firm, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    expire_arg a = {.as_of = date_today_utc()};
    if (date != NULL && !date_parse(date, &a.as_of))
        return args_usage(usage, "--date must be a date YYYY-MM-DD");
    if (firm != NULL && !args_parse_id(firm, &a.firm_id))
        return args_usage(usage, "--firm-id must be a positive integer");
    int rc = args_run_tx("credit expire", expire_work, &a);
    if (rc != CLI_OK)
        return rc;
    char d[11];
    date_format(a.as_of, d, sizeof d);
    log_msg(LL_LOG_INFO, "credit expired", "date", d, "entries", DB_I64(a.entries), "amount_cents",
            DB_I64(a.amount), NULL);
    if (json)
        printf("{\"date\":\"%s\",\"entries\":%lld,\"amount_cents\":%lld}\n", d,
               (long long)a.entries, (long long)a.amount);
    else
        printf("expired %lld credit remainder(s), %lld cents, lapsed before %s\n",
               (long long)a.entries, (long long)a.amount, d);
    return CLI_OK;
}
