/* cmd_credit_note.c: `billingctl credit-note create --invoice N
 * (--amount-cents N | --line LINE_ID:AMOUNT_CENTS ...) --reason TEXT --by NAME
 * [--refund | --credit]` (CONTRACT "Invoice lifecycle"; docs/INVOICES.md).
 *
 * The note, its lines and tax, what it takes off the balance due and its
 * client credit are common/lifecycle.c's lifecycle_credit (one transaction;
 * sql/014 for the arithmetic, rule 12.4 in the database). The refund part
 * then goes to Stripe by the refund command's path: refund_targets
 * (common/disputes.c, rule 11.10) says which charges and how much;
 * refund_requests_send (common/refund_requests.c) makes one POST
 * /v1/refunds per charge with the idempotency key "credit-note-<note
 * id>-<PaymentIntent or charge>", so re-running the command (which finds the
 * note it made, sql/014) refunds once. As with `billingctl refund`, the
 * refund is recorded when Stripe's charge.refunded webhook arrives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/disputes.h"
#include "ledgerline/failf.h"
#include "ledgerline/lifecycle.h"
#include "ledgerline/refund_requests.h"
#include "ledgerline/stripe.h"

#define CN_MAX_LINES 200

typedef struct {
    const lifecycle_credit_params *p;
    lifecycle_credit_note n;
    stripe_client *sc; /* NULL when Stripe is not configured (sc_err says why) */
    char sc_err[256];
    refund_target *targets;
    size_t ntargets;
} cn_arg;

/* The note, and for its refund part the charges to refund, in one
 * transaction: a refund that cannot be made (no Stripe configuration,
 * nothing refundable) leaves no note behind. */
static db_status cn_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    cn_arg *a = varg;
    free(a->targets);
    a->targets = NULL;
    a->ntargets = 0;
    db_status st = lifecycle_credit(c, a->p, &a->n, err, errlen);
    if (st != DB_OK || a->n.refunded_cents == 0)
        return st;
    if (a->sc == NULL) {
        ll_failf(err, errlen,
                 "cannot refund %lld cents of invoice %lld: Stripe is not configured (%s)",
                 (long long)a->n.refunded_cents, (long long)a->p->invoice_id, a->sc_err);
        ll_hintf(err, errlen, "Give --credit to credit the client instead.");
        return DB_PERMANENT;
    }
    return refund_targets(c, a->p->invoice_id, a->n.refunded_cents, &a->targets, &a->ntargets, err,
                          errlen);
}

/* Sends the note's refund part (the targets cn_tx found) through
 * common/refund_requests.c; 0 when all of it was accepted by Stripe. The
 * accepted ones go into refunds (to print), a warning for each whose audit
 * row is missing. */
static int cn_refund(db_conn *c, const cn_arg *a, json_t *refunds)
{
    refund_sent *sent = calloc(a->ntargets, sizeof *sent);
    if (sent == NULL) {
        fprintf(stderr, "billingctl: out of memory\n");
        return -1;
    }
    refund_send_params rp = {.kind = REFUND_FOR_CREDIT_NOTE,
                             .firm_id = a->n.firm_id,
                             .invoice_id = a->p->invoice_id,
                             .reason = a->p->reason,
                             .by = a->p->by,
                             .credit_note_id = a->n.credit_note_id,
                             .credit_note_number = a->n.legal_number};
    char err[1024];
    size_t nsent = 0;
    int rc =
        refund_requests_send(c, a->sc, &rp, a->targets, a->ntargets, sent, &nsent, err, sizeof err);
    for (size_t k = 0; k < nsent; k++) {
        const refund_sent *s = &sent[k];
        if (!s->audited)
            fprintf(stderr, "billingctl: warning: refund %s made but not audited: %s\n",
                    s->refund_id, s->audit_err);
        json_array_append_new(refunds, json_pack("{ss ss sI ss}", "refund_id", s->refund_id,
                                                 "payment_intent", s->paid_by, "amount_cents",
                                                 (json_int_t)s->amount, "status", s->status));
    }
    free(sent);
    if (rc != 0)
        args_refused("credit-note create", err);
    return rc;
}

int cmd_credit_note_create(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *inv = NULL, *amount = NULL, *reason = NULL, *by = NULL, *mode = NULL;
    json_t *lines = json_object();
    int rc = CLI_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *line = NULL;
        int g = args_opt(argc, argv, &i, "--invoice", &inv);
        if (g == 0)
            g = args_opt(argc, argv, &i, "--amount-cents", &amount);
        if (g == 0)
            g = args_opt(argc, argv, &i, "--reason", &reason);
        if (g == 0)
            g = args_opt(argc, argv, &i, "--by", &by);
        if (g == 0)
            g = args_opt(argc, argv, &i, "--line", &line);
        if (g < 0) {
            rc = args_usage(usage, "%s needs a value", argv[i]);
            goto out;
        }
        if (line != NULL) {
            char idbuf[32];
            const char *colon = strchr(line, ':');
            int64_t id, cents;
            size_t idlen = colon ? (size_t)(colon - line) : 0;
            if (colon == NULL || idlen == 0 || idlen >= sizeof idbuf) {
                rc = args_usage(usage, "--line takes LINE_ID:AMOUNT_CENTS (got '%s')", line);
                goto out;
            }
            memcpy(idbuf, line, idlen);
            idbuf[idlen] = '\0';
            if (!args_parse_id(idbuf, &id) || !args_parse_cents(colon + 1, &cents) || cents <= 0 ||
                json_object_get(lines, idbuf) != NULL || json_object_size(lines) >= CN_MAX_LINES) {
                rc = args_usage(usage,
                                "--line takes LINE_ID:AMOUNT_CENTS, a positive amount, each line "
                                "once (got '%s')",
                                line);
                goto out;
            }
            json_object_set_new(lines, idbuf, json_integer(cents));
            continue;
        }
        if (g > 0)
            continue;
        if (strcmp(argv[i], "--refund") == 0 || strcmp(argv[i], "--credit") == 0) {
            if (mode != NULL) {
                rc = args_usage(usage, "give at most one of --refund and --credit");
                goto out;
            }
            mode = argv[i] + 2;
            continue;
        }
        rc = args_usage(usage, "unexpected argument '%s'", argv[i]);
        goto out;
    }
    lifecycle_credit_params p = {.mode = mode, .reason = reason, .by = by, .on = date_today_utc()};
    if (inv == NULL || !args_parse_id(inv, &p.invoice_id)) {
        rc = args_usage(usage, "--invoice N (a positive integer) is required");
        goto out;
    }
    if ((amount == NULL) == (json_object_size(lines) == 0)) {
        rc = args_usage(usage, "give either --amount-cents N or --line LINE_ID:AMOUNT_CENTS ...");
        goto out;
    }
    if (amount != NULL && (!args_parse_cents(amount, &p.total_cents) || p.total_cents <= 0)) {
        rc = args_usage(usage, "--amount-cents must be a positive whole number of minor units");
        goto out;
    }
    if (reason == NULL || reason[0] == '\0' || strlen(reason) > 500) {
        rc = args_usage(usage, "--reason TEXT (at most 500 characters) is required");
        goto out;
    }
    if (by == NULL || by[0] == '\0' || strlen(by) > LIFECYCLE_NAME_MAX) {
        rc = args_usage(usage, "--by NAME (at most 200 characters) is required");
        goto out;
    }
    char *lines_text = json_object_size(lines) ? json_dumps(lines, JSON_COMPACT) : NULL;
    p.lines_json = lines_text;
    db_conn *c = args_connect();
    if (c == NULL) {
        free(lines_text);
        rc = CLI_REFUSED;
        goto out;
    }
    cn_arg a = {.p = &p};
    /* Stripe is needed only for a refund part: without STRIPE_SECRET_KEY a
     * note that needs a refund is refused (cn_tx) and --credit notes work.
     * A key that is set but malformed is a configuration error (exit 2). */
    const char *key = getenv("STRIPE_SECRET_KEY");
    if (key != NULL && key[0] != '\0' && (mode == NULL || strcmp(mode, "refund") == 0)) {
        stripe_config scfg;
        stripe_config_from_env(&scfg);
        a.sc = stripe_client_new(&scfg, a.sc_err, sizeof a.sc_err);
    } else {
        ll_failf(a.sc_err, sizeof a.sc_err, "STRIPE_SECRET_KEY is not set");
    }
    char err[1024];
    db_status st = db_run_tx(c, cn_tx, &a, err, sizeof err);
    json_t *refunds = json_array();
    rc = CLI_OK;
    if (st != DB_OK)
        rc = args_refused("credit-note create", err);
    else if (a.n.refunded_cents > 0 && cn_refund(c, &a, refunds) != 0)
        rc = CLI_REFUSED;
    db_close(c);
    stripe_client_free(a.sc);
    free(a.targets);
    free(lines_text);
    if (st == DB_OK) {
        if (o->json) {
            printf("{\"credit_note_id\":%lld,\"legal_number\":\"%s\",\"applied_to_due_cents\":%lld,"
                   "\"refunded_cents\":%lld,\"credited_cents\":%lld}\n",
                   (long long)a.n.credit_note_id, a.n.legal_number,
                   (long long)a.n.applied_to_due_cents, (long long)a.n.refunded_cents,
                   (long long)a.n.credited_cents);
        } else {
            printf("credit note %s (%lld)%s on invoice %lld: %lld off the balance due, %lld "
                   "refunded, %lld to the client's credit\n",
                   a.n.legal_number, (long long)a.n.credit_note_id,
                   a.n.already ? " (made by an earlier run)" : "", (long long)p.invoice_id,
                   (long long)a.n.applied_to_due_cents, (long long)a.n.refunded_cents,
                   (long long)a.n.credited_cents);
            for (size_t k = 0; k < json_array_size(refunds); k++) {
                json_t *r = json_array_get(refunds, k);
                printf("refund %s (%s): %lld cents, %s (recorded when Stripe's charge.refunded "
                       "webhook arrives)\n",
                       json_string_value(json_object_get(r, "refund_id")),
                       json_string_value(json_object_get(r, "payment_intent")),
                       (long long)json_integer_value(json_object_get(r, "amount_cents")),
                       json_string_value(json_object_get(r, "status")));
            }
        }
    }
    json_decref(refunds);
out:
    json_decref(lines);
    return rc;
}
