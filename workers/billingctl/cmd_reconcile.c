/* cmd_reconcile.c: `billingctl reconcile --from D --to D [--firm-id N]
 * [--json]` (rule 11.14, CONTRACT "Additions of 2026-12-03"): the books
 * against Stripe for objects created in [D, D]; the comparison is
 * common/reconcile.c's. Exit 0 when they agree, 1 when they differ (one row
 * per difference) or Stripe or the database could not be read, 2 on usage
 * errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/reconcile.h"

typedef struct {
    bool json;
    json_t *list;
} recon_out;

static void recon_print(const recon_diff *d, void *arg)
{
    recon_out *o = arg;
    if (o->json) {
        json_t *j = json_pack(
            "{ss ss ss sI sI ss ss ss ss}", "kind", recon_kind_name(d->kind), "object", d->object,
            "stripe_id", d->stripe_id, "invoice_id", (json_int_t)d->invoice_id, "firm_id",
            (json_int_t)d->firm_id, "books_currency", d->books_currency, "stripe_currency",
            d->stripe_currency, "books_status", d->books_status, "stripe_status", d->stripe_status);
        if (j == NULL)
            return;
        json_object_set_new(j, "books_amount",
                            d->books_amount >= 0 ? json_integer(d->books_amount) : json_null());
        json_object_set_new(j, "stripe_amount",
                            d->stripe_amount >= 0 ? json_integer(d->stripe_amount) : json_null());
        json_array_append_new(o->list, j);
        return;
    }
    char books[32] = "-", stripe[32] = "-";
    if (d->books_amount >= 0)
        snprintf(books, sizeof books, "%lld", (long long)d->books_amount);
    if (d->stripe_amount >= 0)
        snprintf(stripe, sizeof stripe, "%lld", (long long)d->stripe_amount);
    printf("%-18s %-15s %-32s invoice %-8lld books %-10s %-4s stripe %-10s %-4s %s\n",
           recon_kind_name(d->kind), d->object, d->stripe_id, (long long)d->invoice_id, books,
           d->books_currency, stripe, d->stripe_currency, d->stripe_status);
}

int cmd_reconcile(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *from = NULL, *to = NULL, *firm = NULL;
    const args_option opts[] = {
        {"--from", &from, NULL}, {"--to", &to, NULL}, {"--firm-id", &firm, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    civil_date df, dt;
    int64_t firm_id = 0;
    if (from == NULL || !date_parse(from, &df) || to == NULL || !date_parse(to, &dt))
        return args_usage(usage, "--from and --to (YYYY-MM-DD) are required");
    if (dt.days < df.days)
        return args_usage(usage, "--to is before --from");
    if (firm != NULL && !args_parse_id(firm, &firm_id))
        return args_usage(usage, "--firm-id must be a positive integer");
    stripe_config scfg;
    stripe_config_from_env(&scfg);
    stripe_client *sc = args_stripe_client(&scfg);
    if (sc == NULL)
        return CLI_USAGE;
    db_conn *c = args_connect();
    if (c == NULL) {
        stripe_client_free(sc);
        return CLI_REFUSED;
    }
    recon_out out = {.json = json, .list = json ? json_array() : NULL};
    recon_stats stats;
    char err[1024];
    db_status st =
        reconcile_run(c, sc, df, dt, firm_id, recon_print, &out, &stats, err, sizeof err);
    db_close(c);
    stripe_client_free(sc);
    int rc = CLI_OK;
    if (st != DB_OK) {
        rc = args_refused("reconcile", err);
    } else if (json) {
        json_t *j =
            json_pack("{sb sO sI sI sI sI}", "agree", stats.differences == 0, "differences",
                      out.list, "payment_intents", (json_int_t)stats.payment_intents, "refunds",
                      (json_int_t)stats.refunds, "disputes", (json_int_t)stats.disputes,
                      "credit_notes", (json_int_t)stats.credit_notes);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
    } else {
        printf("%s: %lld PaymentIntent(s), %lld refund(s), %lld dispute(s) of ours and %lld "
               "credit note(s) with a refund compared, %lld difference(s)\n",
               stats.differences == 0 ? "books agree with Stripe" : "BOOKS DIFFER FROM STRIPE",
               (long long)stats.payment_intents, (long long)stats.refunds,
               (long long)stats.disputes, (long long)stats.credit_notes,
               (long long)stats.differences);
    }
    json_decref(out.list);
    if (rc == CLI_OK && stats.differences > 0)
        rc = CLI_REFUSED;
    return rc;
}
