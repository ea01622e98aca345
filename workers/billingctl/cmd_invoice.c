/* cmd_invoice.c: manual invoices from the command line: parsing, and
 * printing what common/ did.
 *
 * `billingctl invoice create ...` parses the options and the --line specs
 *   (invoice_cli_parse_line) and calls invoice_manual_create
 *   (common/invoice_manual.c: the invoice, its numbering, lines and events
 *   in one transaction); a refusal (rule 1.2 and the others) is exit 1.
 * `billingctl invoice show INVOICE_ID`: header, lines and payments
 *   (common/invoice_show.c), as a table or --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/invoice_manual.h"
#include "ledgerline/invoice_show.h"
#include "ledgerline/money.h"
#include "ledgerline/vocab.h"

#define INVOICE_MAX_LINES 200

typedef struct {
    invoice_manual m;
    inv_line lines[INVOICE_MAX_LINES];
} create_arg;

/* Pure (no database): fuzzed by tests/fuzz/fuzz_cli.c. */
bool invoice_cli_parse_line(const char *spec, inv_line *l)
{
    const char *c1 = strchr(spec, ':');
    if (c1 == NULL)
        return false;
    const char *c2 = strchr(c1 + 1, ':');
    if (c2 == NULL)
        return false;
    const char *c3 = strchr(c2 + 1, ':');
    if (c3 == NULL)
        return false;
    size_t tl = (size_t)(c1 - spec);
    if (tl == 0 || tl >= sizeof l->type_buf)
        return false;
    memcpy(l->type_buf, spec, tl);
    l->type_buf[tl] = '\0';
    if (ll_vocab_find(&ll_line_types, l->type_buf) < 0)
        return false;
    l->type = l->type_buf;
    char q[32], r[24];
    size_t ql = (size_t)(c2 - c1 - 1), rl = (size_t)(c3 - c2 - 1);
    if (ql == 0 || ql >= sizeof q || rl == 0 || rl >= sizeof r)
        return false;
    memcpy(q, c1 + 1, ql);
    q[ql] = '\0';
    memcpy(r, c2 + 1, rl);
    r[rl] = '\0';
    if (money_parse_hours(q, &l->hundredths) != MONEY_OK || l->hundredths <= 0)
        return false;
    if (!args_parse_cents(r, &l->rate))
        return false;
    if (money_hours_amount(l->hundredths, l->rate, &l->amount) != MONEY_OK)
        return false;
    snprintf(l->quantity, sizeof l->quantity, "%lld.%02lld", (long long)(l->hundredths / 100),
             (long long)(l->hundredths % 100));
    snprintf(l->rate_s, sizeof l->rate_s, "%lld", (long long)l->rate);
    snprintf(l->amount_s, sizeof l->amount_s, "%lld", (long long)l->amount);
    l->description = c3 + 1;
    return true;
}

int cmd_invoice_create(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    create_arg *ca = calloc(1, sizeof *ca);
    if (ca == NULL)
        return CLI_REFUSED;
    invoice_manual *a = &ca->m;
    a->lines = ca->lines;
    int rc = CLI_OK;
    const char *client = NULL, *eng = NULL, *date = NULL, *line = NULL;
    for (int i = 1; i < argc; i++) {
        int g;
        if ((g = args_opt(argc, argv, &i, "--client", &client)) ||
            (g = args_opt(argc, argv, &i, "--engagement", &eng)) ||
            (g = args_opt(argc, argv, &i, "--override-reason", &a->override_reason)) ||
            (g = args_opt(argc, argv, &i, "--override-by", &a->override_by)) ||
            (g = args_opt(argc, argv, &i, "--date", &date)) ||
            (g = args_opt(argc, argv, &i, "--by", &a->by))) {
            if (g < 0) {
                rc = args_usage(usage, "%s needs a value", argv[i]);
                goto out;
            }
            continue;
        }
        if ((g = args_opt(argc, argv, &i, "--line", &line)) != 0) {
            if (g < 0 || a->nlines == INVOICE_MAX_LINES ||
                !invoice_cli_parse_line(line, &ca->lines[a->nlines])) {
                rc = args_usage(usage,
                                "bad --line '%s': want TYPE:QUANTITY:RATE_CENTS:DESCRIPTION with "
                                "TYPE package_fee|hourly|adjustment, QUANTITY > 0 with at most "
                                "two decimals, RATE_CENTS a whole number",
                                g < 0 ? "" : line);
                goto out;
            }
            a->nlines++;
            continue;
        }
        rc = args_usage(usage, "unexpected argument '%s'", argv[i]);
        goto out;
    }
    if (client == NULL || !args_parse_id(client, &a->client_id)) {
        rc = args_usage(usage, "--client N (a positive integer id) is required");
        goto out;
    }
    if (eng != NULL && !args_parse_id(eng, &a->engagement_id)) {
        rc = args_usage(usage, "--engagement '%s' is not an id", eng);
        goto out;
    }
    if ((a->override_reason != NULL) != (a->override_by != NULL)) {
        rc = args_usage(usage, "--override-reason and --override-by go together");
        goto out;
    }
    if (a->override_reason != NULL &&
        (a->override_reason[0] == '\0' || a->override_by[0] == '\0')) {
        rc = args_usage(usage, "--override-reason and --override-by must not be empty");
        goto out;
    }
    if (a->override_reason != NULL && eng != NULL) {
        rc = args_usage(usage, "give either --engagement or an override, not both");
        goto out;
    }
    if (a->nlines == 0) {
        rc = args_usage(usage, "give at least one --line");
        goto out;
    }
    if (date != NULL) {
        if (!date_parse(date, &a->issue)) {
            rc = args_usage(usage, "--date '%s' is not a date (YYYY-MM-DD)", date);
            goto out;
        }
    } else {
        a->issue = date_today_utc();
    }
    db_conn *c = args_connect();
    if (c == NULL) {
        rc = CLI_REFUSED;
        goto out;
    }
    char err[1024], number[64];
    int64_t invoice_id = 0;
    db_status st = invoice_manual_create(c, a, &invoice_id, number, sizeof number, err, sizeof err);
    db_close(c);
    if (st != DB_OK) {
        rc = args_refused("invoice create", err);
        goto out;
    }
    if (json)
        printf("{\"invoice_id\":%lld,\"invoice_number\":\"%s\"}\n", (long long)invoice_id, number);
    else
        printf("created invoice %lld (%s)\n", (long long)invoice_id, number);
out:
    free(ca);
    return rc;
}

/* ---- invoice show ------------------------------------------------------- */

static const char *js(json_t *o, const char *k, char *buf, size_t n)
{
    json_t *v = json_object_get(o, k);
    if (json_is_string(v))
        snprintf(buf, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(buf, n, "-");
    return buf;
}

static void print_table(const char *text)
{
    json_t *root = json_loads(text, 0, NULL);
    if (root == NULL) {
        printf("%s\n", text);
        return;
    }
    json_t *inv = json_object_get(root, "invoice");
    static const char *const fields[] = {"invoice_id",
                                         "invoice_number",
                                         "legal_number",
                                         "firm_id",
                                         "client_id",
                                         "engagement_id",
                                         "engagement_override",
                                         "engagement_override_reason",
                                         "engagement_override_by",
                                         "status",
                                         "currency",
                                         "subtotal_cents",
                                         "tax_cents",
                                         "total_cents",
                                         "amount_paid_cents",
                                         "credited_cents",
                                         "balance_due_cents",
                                         "issue_date",
                                         "due_date",
                                         "paid_date",
                                         "period_start",
                                         "period_end",
                                         "is_auto_generated",
                                         "autopay_status"};
    char b[512];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        printf("%-28s %s\n", fields[i], js(inv, fields[i], b, sizeof b));
    printf("\nlines\n%-8s %-12s %10s %12s %12s  %s\n", "id", "type", "quantity", "rate_cents",
           "amount_cents", "description");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(root, "lines"), i, l)
    {
        char b1[32], b2[32], b3[32], b4[32], b5[32], b6[512];
        printf("%-8s %-12s %10s %12s %12s  %s\n", js(l, "line_id", b1, sizeof b1),
               js(l, "line_type", b2, sizeof b2), js(l, "quantity", b3, sizeof b3),
               js(l, "rate_cents", b4, sizeof b4), js(l, "amount_cents", b5, sizeof b5),
               js(l, "description", b6, sizeof b6));
    }
    printf("\npayments\n%-8s %12s %-8s %-22s %s\n", "id", "amount_cents", "source", "received_at",
           "payment_intent");
    json_array_foreach(json_object_get(root, "payments"), i, l)
    {
        char b1[32], b2[32], b3[32], b4[40], b5[256];
        printf("%-8s %12s %-8s %-22s %s\n", js(l, "payment_id", b1, sizeof b1),
               js(l, "amount_cents", b2, sizeof b2), js(l, "source", b3, sizeof b3),
               js(l, "received_at", b4, sizeof b4),
               js(l, "stripe_payment_intent_id", b5, sizeof b5));
    }
    printf("\ncredit notes\n%-8s %-24s %12s %12s %12s %12s  %s\n", "id", "legal_number",
           "total_cents", "off_due", "refunded", "credited", "reason");
    json_array_foreach(json_object_get(root, "credit_notes"), i, l)
    {
        char b1[32], b2[80], b3[32], b4[32], b5[32], b6[32], b7[512];
        printf("%-8s %-24s %12s %12s %12s %12s  %s\n", js(l, "credit_note_id", b1, sizeof b1),
               js(l, "legal_number", b2, sizeof b2), js(l, "total_cents", b3, sizeof b3),
               js(l, "applied_to_due_cents", b4, sizeof b4), js(l, "refunded_cents", b5, sizeof b5),
               js(l, "credited_cents", b6, sizeof b6), js(l, "reason", b7, sizeof b7));
    }
    json_decref(root);
}

/* args_parse_each's positional: the INVOICE_ID, once. */
static int show_id(const char *arg, const char *usage, void *ctx)
{
    int64_t *id = ctx;
    if (*id == 0 && args_parse_id(arg, id))
        return 0;
    return args_usage(usage, "unexpected argument '%s' (INVOICE_ID is a positive integer)", arg);
}

int cmd_invoice_show(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    int64_t id = 0;
    int rc = args_parse_each(argc, argv, usage, NULL, 0, show_id, &id);
    if (rc != 0)
        return rc;
    if (id == 0)
        return args_usage(usage, "give the INVOICE_ID");
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024], *doc = NULL;
    db_status st = invoice_show(c, id, &doc, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("invoice show", err);
    if (json)
        printf("%s\n", doc);
    else
        print_table(doc);
    free(doc);
    return CLI_OK;
}
