/* cmd_lifecycle.c: `billingctl firm settings`, `invoice issue`, `invoice
 * adjust` and `invoice void` (CONTRACT "Invoice lifecycle"; docs/INVOICES.md).
 * Parses and prints only: the rules are common/lifecycle.c's and the
 * database's (sql/012, sql/013). Exit 0 done, 1 refused (the message names
 * the rule), 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/lifecycle.h"

/* ---- firm settings --------------------------------------------------------- */

static int on_off(const char *v)
{
    if (v == NULL)
        return -1;
    if (strcmp(v, "on") == 0)
        return 1;
    if (strcmp(v, "off") == 0)
        return 0;
    return -2;
}

typedef struct {
    const lifecycle_settings *s;
    char *json;
} settings_arg;

static db_status settings_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    settings_arg *a = varg;
    free(a->json);
    a->json = NULL;
    return lifecycle_firm_settings(c, a->s, &a->json, err, errlen);
}

int cmd_firm_settings(int argc, char **argv, const cli_opts *o, const char *usage)
{
    lifecycle_settings s = {.review_before_issue = -1, .reminders_enabled = -1};
    const char *firm = NULL, *review = NULL, *reminders = NULL;
    const args_option opts[] = {{"--review-before-issue", &review, NULL},
                                {"--number-prefix", &s.number_prefix, NULL},
                                {"--legal-name", &s.legal_name, NULL},
                                {"--address", &s.address, NULL},
                                {"--tax-id", &s.tax_id, NULL},
                                {"--payment-instructions", &s.payment_instructions, NULL},
                                {"--reminder-days", &s.reminder_days, NULL},
                                {"--reminders", &reminders, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &firm) != 0)
        return CLI_USAGE;
    if (firm == NULL || !args_parse_id(firm, &s.firm_id))
        return args_usage(usage, "FIRM_ID (a positive integer) is required");
    s.review_before_issue = on_off(review);
    s.reminders_enabled = on_off(reminders);
    if (s.review_before_issue == -2 || s.reminders_enabled == -2)
        return args_usage(usage, "--review-before-issue and --reminders take on or off");
    char days[256];
    if (s.reminder_days != NULL && !lifecycle_reminder_days(s.reminder_days, days, sizeof days))
        return args_usage(usage, "--reminder-days takes comma-separated integers in -365..365");
    settings_arg a = {.s = &s};
    int rc = args_run_tx("firm settings", settings_tx, &a);
    if (rc != CLI_OK) {
        free(a.json);
        return rc;
    }
    if (o->json) {
        printf("%s\n", a.json);
    } else {
        json_error_t je;
        json_t *j = json_loads(a.json, 0, &je);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            char *t = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            printf("%-22s %s\n", k, json_is_string(v) ? json_string_value(v) : t ? t : "");
            free(t);
        }
        json_decref(j);
    }
    free(a.json);
    return CLI_OK;
}

/* ---- invoice issue ---------------------------------------------------------- */

typedef struct {
    int64_t invoice_id;
    civil_date on;
    const char *by;
    char legal_number[LIFECYCLE_NUMBER_MAX];
    bool already;
} issue_arg;

static db_status issue_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    issue_arg *a = varg;
    return lifecycle_issue(c, a->invoice_id, a->on, a->by, a->legal_number, &a->already, err,
                           errlen);
}

static bool by_valid(const char *by)
{
    return by != NULL && by[0] != '\0' && strlen(by) <= LIFECYCLE_NAME_MAX;
}

int cmd_invoice_issue(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *inv = NULL, *date = NULL, *by = NULL;
    const args_option opts[] = {{"--date", &date, NULL}, {"--by", &by, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &inv) != 0)
        return CLI_USAGE;
    issue_arg a = {.by = by, .on = date_today_utc()};
    if (inv == NULL || !args_parse_id(inv, &a.invoice_id))
        return args_usage(usage, "INVOICE_ID (a positive integer) is required");
    if (date != NULL && !date_parse(date, &a.on))
        return args_usage(usage, "--date must be YYYY-MM-DD");
    if (!by_valid(by))
        return args_usage(usage, "--by NAME (at most 200 characters) is required");
    int rc = args_run_tx("invoice issue", issue_tx, &a);
    if (rc != CLI_OK)
        return rc;
    if (o->json)
        printf("{\"invoice_id\":%lld,\"legal_number\":\"%s\"}\n", (long long)a.invoice_id,
               a.legal_number);
    else
        printf("invoice %lld %s %s\n", (long long)a.invoice_id,
               a.already ? "was already issued as" : "issued as", a.legal_number);
    return CLI_OK;
}

/* ---- invoice adjust ------------------------------------------------------------ */

typedef struct {
    int64_t invoice_id, line_id, amount;
    const char *quantity, *reason, *by;
    int64_t total_out, amount_out;
} adjust_arg;

static db_status adjust_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    adjust_arg *a = varg;
    return lifecycle_adjust(c, a->invoice_id, a->line_id, a->quantity, a->amount, a->reason, a->by,
                            &a->total_out, &a->amount_out, err, errlen);
}

int cmd_invoice_adjust(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *inv = NULL, *line = NULL, *qty = NULL, *amt = NULL, *reason = NULL, *by = NULL;
    const args_option opts[] = {{"--line", &line, NULL},
                                {"--quantity", &qty, NULL},
                                {"--amount-cents", &amt, NULL},
                                {"--reason", &reason, NULL},
                                {"--by", &by, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &inv) != 0)
        return CLI_USAGE;
    adjust_arg a = {.quantity = qty, .reason = reason, .by = by, .amount = -1};
    if (inv == NULL || !args_parse_id(inv, &a.invoice_id))
        return args_usage(usage, "INVOICE_ID (a positive integer) is required");
    if (line == NULL || !args_parse_id(line, &a.line_id))
        return args_usage(usage, "--line LINE_ID (a positive integer) is required");
    if ((qty == NULL) == (amt == NULL))
        return args_usage(usage, "give exactly one of --quantity and --amount-cents");
    if (qty != NULL && !lifecycle_quantity_valid(qty))
        return args_usage(usage, "--quantity must be hours with at most two decimals");
    if (amt != NULL && !args_parse_cents(amt, &a.amount))
        return args_usage(usage, "--amount-cents must be a non-negative integer");
    if (reason == NULL || reason[0] == '\0')
        return args_usage(usage, "--reason TEXT is required");
    if (!by_valid(by))
        return args_usage(usage, "--by NAME (at most 200 characters) is required");
    int rc = args_run_tx("invoice adjust", adjust_tx, &a);
    if (rc != CLI_OK)
        return rc;
    if (o->json)
        printf("{\"invoice_id\":%lld,\"line_id\":%lld,\"amount_cents\":%lld,\"total_cents\":%lld}"
               "\n",
               (long long)a.invoice_id, (long long)a.line_id, (long long)a.amount_out,
               (long long)a.total_out);
    else
        printf("invoice %lld: line %lld now %lld cents; invoice total %lld cents\n",
               (long long)a.invoice_id, (long long)a.line_id, (long long)a.amount_out,
               (long long)a.total_out);
    return CLI_OK;
}

/* ---- invoice void ----------------------------------------------------------------- */

typedef struct {
    int64_t invoice_id;
    const char *reason, *by;
    int64_t released;
    bool already;
} void_arg;

static db_status void_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    void_arg *a = varg;
    return lifecycle_void(c, a->invoice_id, a->reason, a->by, &a->released, &a->already, err,
                          errlen);
}

int cmd_invoice_void(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *inv = NULL, *reason = NULL, *by = NULL;
    const args_option opts[] = {{"--reason", &reason, NULL}, {"--by", &by, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &inv) != 0)
        return CLI_USAGE;
    void_arg a = {.reason = reason, .by = by};
    if (inv == NULL || !args_parse_id(inv, &a.invoice_id))
        return args_usage(usage, "INVOICE_ID (a positive integer) is required");
    if (reason == NULL || reason[0] == '\0')
        return args_usage(usage, "--reason TEXT is required");
    if (!by_valid(by))
        return args_usage(usage, "--by NAME (at most 200 characters) is required");
    int rc = args_run_tx("invoice void", void_tx, &a);
    if (rc != CLI_OK)
        return rc;
    if (o->json)
        printf("{\"invoice_id\":%lld,\"status\":\"void\",\"time_entries_released\":%lld}\n",
               (long long)a.invoice_id, (long long)a.released);
    else if (a.already)
        printf("invoice %lld was already void\n", (long long)a.invoice_id);
    else
        printf("invoice %lld voided; %lld time entries are billable again\n",
               (long long)a.invoice_id, (long long)a.released);
    return CLI_OK;
}
