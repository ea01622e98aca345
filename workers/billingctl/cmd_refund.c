/* cmd_refund.c: `billingctl refund INVOICE_ID [--amount-cents N] --reason
 * TEXT --by NAME` (BILLING_RULES section 7): refunds an invoice's Stripe
 * payments through POST /v1/refunds. Which charges, and how much of each,
 * is common/disputes.c's refund_targets (rule 11.10: succeeded payments,
 * newest first, split across them).
 *
 * This command does not record the refund: Stripe's charge.refunded
 * webhook does, once, through billing-dispute-worker (refunds are recorded
 * by Stripe refund id), so a refund made here and one made in Stripe's
 * dashboard are handled alike.
 *
 * Idempotency key: "refund-<invoice id>-<PaymentIntent or charge>-<amount or
 * full>-r<refunded_cents>", one per charge refunded,
 * where refunded_cents is the invoice's refunded total as recorded when the
 * command runs. Re-running the same command (after a timeout, a crash, a
 * lost answer) before the webhook recorded the refund sends the same key, so
 * Stripe answers with the first refund instead of making a second one. Once
 * the webhook has recorded it, the refunded total has changed, so running
 * the command again is a new, deliberate refund with a new key; it is still
 * bounded by what remains paid on the invoice. (Stripe keeps keys for at
 * least 24 hours.)
 *
 * --reason is the operator's text (metadata[refund_reason]); when it is one
 * of Stripe's reasons (duplicate, fraudulent, requested_by_customer) it is
 * also sent as `reason`. An audit event refund_requested (actor = --by) is
 * written once per Stripe refund id. All of that, and the refusal of a
 * disputed or charged back invoice, is common/refund_requests.c's; this
 * file parses the arguments and prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/refund_requests.h"
#include "ledgerline/stripe.h"

/* The refunds Stripe accepted: a line each (or one JSON object), and a
 * warning for each whose audit row is missing. */
static void refund_print(bool json, int64_t invoice_id, const refund_invoice *inv,
                         const refund_sent *sent, size_t nsent)
{
    json_t *done = json_array();
    int64_t total = 0;
    for (size_t k = 0; k < nsent; k++) {
        const refund_sent *s = &sent[k];
        if (!s->audited)
            /* The refund exists at Stripe; only our audit row is missing. */
            fprintf(stderr, "billingctl: warning: refund %s made but not audited: %s\n",
                    s->refund_id, s->audit_err);
        total += s->amount;
        json_array_append_new(done, json_pack("{ss ss sI ss}", "refund_id", s->refund_id,
                                              "payment_intent", s->payment_intent, "amount_cents",
                                              (json_int_t)s->amount, "status", s->status));
        if (!json)
            printf("refund %s of invoice %lld (%s): %lld %s cents, %s (recorded when Stripe's"
                   " charge.refunded webhook arrives)\n",
                   s->refund_id, (long long)invoice_id, s->paid_by, (long long)s->amount,
                   inv->currency, s->status);
    }
    if (json && nsent > 0) {
        json_t *j = json_pack("{sI ss sI ss ss ss sO}", "invoice_id", (json_int_t)invoice_id,
                              "refund_id", sent[0].refund_id, "amount_cents", (json_int_t)total,
                              "currency", inv->currency, "status", sent[0].status,
                              "idempotency_key", sent[nsent - 1].idempotency_key, "refunds", done);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
    }
    json_decref(done);
}

int cmd_refund(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *inv = NULL, *amount = NULL, *reason = NULL, *by = NULL;
    /* argv[0] is "refund" (a one-word command: main.c passes it as the verb). */
    const args_option opts[] = {
        {"--amount-cents", &amount, NULL}, {"--reason", &reason, NULL}, {"--by", &by, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &inv) != 0)
        return CLI_USAGE;
    int64_t invoice_id = 0, cents = 0;
    if (inv == NULL || !args_parse_id(inv, &invoice_id))
        return args_usage(usage, "INVOICE_ID (a positive integer) is required");
    if (amount != NULL && (!args_parse_cents(amount, &cents) || cents <= 0))
        return args_usage(usage, "--amount-cents must be a positive whole number of cents");
    if (reason == NULL || reason[0] == '\0')
        return args_usage(usage, "--reason TEXT is required");
    if (strlen(reason) > 500)
        return args_usage(usage, "--reason is longer than 500 characters (Stripe's limit)");
    if (by == NULL || by[0] == '\0')
        return args_usage(usage, "--by NAME is required");
    if (strlen(by) > 500)
        return args_usage(usage, "--by is longer than 500 characters");
    stripe_config scfg;
    stripe_config_from_env(&scfg);

    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    int rc = CLI_REFUSED;
    char err[1024];
    stripe_client *sc = NULL;
    refund_invoice ri;
    refund_target *targets = NULL;
    refund_sent *sent = NULL;
    size_t ntargets = 0, nsent = 0;
    if (refund_invoice_prepare(c, invoice_id, cents, &ri, &targets, &ntargets, err, sizeof err) !=
        DB_OK) {
        args_refused("refund", err);
        goto out;
    }
    sc = args_stripe_client(&scfg);
    if (sc == NULL) {
        rc = CLI_USAGE;
        goto out;
    }
    sent = calloc(ntargets, sizeof *sent);
    if (sent == NULL) {
        fprintf(stderr, "billingctl: out of memory\n");
        goto out;
    }
    refund_send_params p = {.kind = REFUND_FOR_INVOICE,
                            .firm_id = ri.firm_id,
                            .invoice_id = invoice_id,
                            .reason = reason,
                            .by = by,
                            .currency = ri.currency,
                            .refunded_cents = ri.refunded,
                            .whole = amount == NULL && ntargets == 1};
    int sent_all =
        refund_requests_send(c, sc, &p, targets, ntargets, sent, &nsent, err, sizeof err);
    refund_print(o->json, invoice_id, &ri, sent, nsent);
    if (sent_all != 0) {
        args_refused("refund", err);
        goto out;
    }
    rc = CLI_OK;
out:
    stripe_client_free(sc);
    free(sent);
    free(targets);
    db_close(c);
    return rc;
}
