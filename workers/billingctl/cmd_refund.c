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
 * written once per Stripe refund id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/disputes.h"
#include "ledgerline/refund_requests.h"
#include "ledgerline/stripe.h"
#include "ledgerline/vocab.h"

typedef struct {
    int64_t invoice_id;
    refund_invoice inv;
    const char *by, *reason, *refund_id, *refund_status;
    int64_t amount;
} refund_arg;

static bool refund_stripe_reason(const char *text)
{
    return strcmp(text, "duplicate") == 0 || strcmp(text, "fraudulent") == 0 ||
           strcmp(text, "requested_by_customer") == 0;
}

int cmd_refund(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *inv = NULL, *amount = NULL, *reason = NULL, *by = NULL;
    /* argv[0] is "refund" (a one-word command: main.c passes it as the verb). */
    const args_option opts[] = {
        {"--amount-cents", &amount, NULL}, {"--reason", &reason, NULL}, {"--by", &by, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &inv) != 0)
        return CLI_USAGE;
    refund_arg a = {0};
    if (inv == NULL || !args_parse_id(inv, &a.invoice_id))
        return args_usage(usage, "INVOICE_ID (a positive integer) is required");
    if (amount != NULL && (!args_parse_cents(amount, &a.amount) || a.amount <= 0))
        return args_usage(usage, "--amount-cents must be a positive whole number of cents");
    if (reason == NULL || reason[0] == '\0')
        return args_usage(usage, "--reason TEXT is required");
    if (strlen(reason) > 500)
        return args_usage(usage, "--reason is longer than 500 characters (Stripe's limit)");
    if (by == NULL || by[0] == '\0')
        return args_usage(usage, "--by NAME is required");
    if (strlen(by) > 500)
        return args_usage(usage, "--by is longer than 500 characters");
    a.by = by;
    a.reason = reason;
    stripe_config scfg;
    stripe_config_from_env(&scfg);

    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    int rc = CLI_REFUSED;
    char err[1024];
    stripe_client *sc = NULL;
    stripe_form *form = NULL;
    stripe_call call = {0};
    refund_target *targets = NULL;
    size_t ntargets = 0;
    db_status st = refund_invoice_read(c, a.invoice_id, &a.inv, err, sizeof err);
    if (st != DB_OK) {
        args_refused("refund", err);
        goto out;
    }
    if (ll_vocab_is(&ll_invoice_statuses, a.inv.status, INVOICE_STATUS_DISPUTED) ||
        ll_vocab_is(&ll_invoice_statuses, a.inv.status, INVOICE_STATUS_CHARGED_BACK)) {
        fprintf(stderr,
                "billingctl: refund refused: invoice %lld: it is disputed or charged back: the "
                "card network holds that money\n",
                (long long)a.invoice_id);
        goto out;
    }
    st = refund_targets(c, a.invoice_id, a.amount, &targets, &ntargets, err, sizeof err);
    if (st != DB_OK) {
        args_refused("refund", err);
        goto out;
    }
    sc = stripe_client_new(&scfg, err, sizeof err);
    if (sc == NULL) {
        fprintf(stderr, "billingctl: configuration error: %s\n", err);
        rc = CLI_USAGE;
        goto out;
    }
    json_t *done = json_array();
    int64_t total = 0;
    char first_id[STRIPE_ID_MAX] = "", first_status[32] = "", idem[256] = "";
    for (size_t k = 0; k < ntargets; k++) {
        const refund_target *t = &targets[k];
        bool whole = amount == NULL && ntargets == 1;
        form = stripe_form_refund(t->payment_intent[0] ? t->payment_intent : NULL, t->charge,
                                  whole ? 0 : t->amount,
                                  refund_stripe_reason(reason) ? reason : NULL, a.invoice_id);
        if (form == NULL || stripe_form_add(form, "metadata[refund_reason]", reason) != 0 ||
            stripe_form_add(form, "metadata[requested_by]", by) != 0) {
            fprintf(stderr, "billingctl: out of memory\n");
            break;
        }
        snprintf(idem, sizeof idem, "refund-%lld-%s-%s-r%lld", (long long)a.invoice_id,
                 t->payment_intent[0] ? t->payment_intent : t->charge,
                 whole ? "full" : DB_I64(t->amount), (long long)a.inv.refunded);
        call = (stripe_call){
            .method = "POST", .path = "/v1/refunds", .form = form, .idempotency_key = idem};
        char cerr[256] = "";
        if (stripe_perform(sc, &call, cerr, sizeof cerr) != 0) {
            fprintf(stderr, "billingctl: refund refused: %s\n", cerr);
            break;
        }
        if (call.result.outcome != STRIPE_OK) {
            fprintf(stderr, "billingctl: refund refused: Stripe answered %s (HTTP %ld): %s%s\n",
                    stripe_outcome_name(call.result.outcome), call.result.http_status,
                    call.result.message,
                    stripe_result_transient(&call.result)
                        ? " (temporary; re-running the same command is safe: same idempotency key)"
                        : "");
            break;
        }
        a.refund_id = call.result.object_id;
        a.refund_status = call.result.object_status;
        a.amount = call.result.amount >= 0 ? call.result.amount : t->amount;
        refund_request rq = {.firm_id = a.inv.firm_id,
                             .invoice_id = a.invoice_id,
                             .amount = a.amount,
                             .actor = a.by,
                             .refund_id = a.refund_id,
                             .idempotency_key = idem,
                             .stripe_status = a.refund_status,
                             .reason = a.reason,
                             .currency = a.inv.currency};
        st = refund_request_audit(c, &rq, NULL, err, sizeof err);
        if (st != DB_OK)
            /* The refund exists at Stripe; only our audit row is missing. */
            fprintf(stderr, "billingctl: warning: refund %s made but not audited: %s\n",
                    a.refund_id, err);
        if (k == 0) {
            snprintf(first_id, sizeof first_id, "%s", a.refund_id);
            snprintf(first_status, sizeof first_status, "%s", a.refund_status);
        }
        total += a.amount;
        json_array_append_new(done, json_pack("{ss ss sI ss}", "refund_id", a.refund_id,
                                              "payment_intent", t->payment_intent, "amount_cents",
                                              (json_int_t)a.amount, "status", a.refund_status));
        if (!json)
            printf("refund %s of invoice %lld (%s): %lld %s cents, %s (recorded when Stripe's"
                   " charge.refunded webhook arrives)\n",
                   a.refund_id, (long long)a.invoice_id,
                   t->payment_intent[0] ? t->payment_intent : t->charge, (long long)a.amount,
                   a.inv.currency, a.refund_status);
        stripe_result_free(&call.result);
        stripe_form_free(form);
        form = NULL;
    }
    size_t made = json_array_size(done);
    if (json && made > 0) {
        json_t *j =
            json_pack("{sI ss sI ss ss ss sO}", "invoice_id", (json_int_t)a.invoice_id, "refund_id",
                      first_id, "amount_cents", (json_int_t)total, "currency", a.inv.currency,
                      "status", first_status, "idempotency_key", idem, "refunds", done);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
    }
    json_decref(done);
    if (made < ntargets)
        goto out;
    rc = CLI_OK;
out:
    stripe_result_free(&call.result);
    stripe_form_free(form);
    stripe_client_free(sc);
    free(targets);
    db_close(c);
    return rc;
}
