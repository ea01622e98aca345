/* cmd_dispute.c: `billingctl dispute evidence DISPUTE --file EVIDENCE.json
 * [--by NAME]` (BILLING_RULES section 7: evidence submission).
 *
 * DISPUTE is the payment_disputes row id or the Stripe dispute id (dp_...).
 * The file is validated before anything is sent (one JSON object whose keys
 * are Stripe's evidence field names, string values; disputes.h). Then
 * POST /v1/disputes/{id} with evidence[<key>]=<value> and submit=true, under
 * the idempotency key "dispute-evidence-<dp id>-<fingerprint of the body>":
 * re-running the same command with the same file is answered by Stripe with
 * the first result instead of a second submission. On success the dispute is
 * marked under_review (a closed one stays closed) with evidence_submitted
 * and the first submission time, and audit dispute_evidence_submitted
 * records the operator and the field names (never their contents). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/dispute_evidence.h"
#include "ledgerline/disputes.h"
#include "ledgerline/failf.h"
#include "ledgerline/stripe.h"
#include "ledgerline/stripe_failf.h"
#include "ledgerline/vocab.h"

#define EVIDENCE_MAX_BYTES (1024 * 1024)

/* Reads the whole file (at most 1 MiB: a larger one is refused, never read
 * further) and parses it strictly. */
static json_t *evidence_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        ll_failf(err, errlen, "could not open evidence file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    /* One byte more than the limit tells "exactly 1 MiB" from "larger". */
    char *buf = malloc(EVIDENCE_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        ll_failf(err, errlen, "could not read evidence file \"%s\": out of memory", path);
        return NULL;
    }
    size_t n = fread(buf, 1, EVIDENCE_MAX_BYTES + 1, f);
    bool failed = ferror(f) != 0;
    int read_errno = errno;
    fclose(f);
    json_t *doc = NULL;
    if (failed) {
        ll_failf(err, errlen, "could not read evidence file \"%s\": %s", path,
                 strerror(read_errno));
    } else if (n > EVIDENCE_MAX_BYTES) {
        ll_failf(err, errlen,
                 "cannot use evidence file \"%s\": it is larger than 1 MiB (%d bytes at most)",
                 path, EVIDENCE_MAX_BYTES);
    } else {
        json_error_t je;
        doc = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
        if (doc == NULL)
            ll_failf(err, errlen,
                     "cannot use evidence file \"%s\": it is not valid JSON: %s (line %d)", path,
                     je.text, je.line);
    }
    free(buf);
    return doc;
}

int cmd_dispute_evidence(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *target = NULL, *file = NULL, *by = NULL;
    const args_option opts[] = {{"--file", &file, NULL}, {"--by", &by, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), &target) != 0)
        return CLI_USAGE;
    dispute_evidence a = {0};
    if (target == NULL)
        return args_usage(usage, "DISPUTE (a dispute id or a dp_ id) is required");
    if (strncmp(target, "dp_", 3) == 0 && strlen(target) > 3 && strlen(target) < STRIPE_ID_MAX)
        a.stripe_id = target;
    else if (!args_parse_id(target, &a.row_id))
        return args_usage(usage, "DISPUTE must be a positive id or a dp_ id, not '%s'", target);
    if (file == NULL)
        return args_usage(usage, "--file EVIDENCE.json is required");
    if (by != NULL && by[0] == '\0')
        return args_usage(usage, "--by needs a name");
    a.by = by;

    /* Validate the evidence before anything else is touched or sent. */
    char err[1024];
    json_t *doc = evidence_load(file, err, sizeof err);
    if (doc == NULL || dispute_evidence_validate(doc, err, sizeof err) != 0) {
        json_decref(doc);
        return args_refused("dispute evidence", err);
    }
    stripe_config scfg;
    stripe_config_from_env(&scfg);

    db_conn *c = args_connect();
    if (c == NULL) {
        json_decref(doc);
        return CLI_REFUSED;
    }
    int rc = CLI_REFUSED;
    stripe_client *sc = NULL;
    stripe_form *form = NULL;
    char *fields = NULL;
    stripe_call call = {0};
    db_status st = dispute_evidence_find(c, &a, err, sizeof err);
    if (st != DB_OK) {
        args_refused("dispute evidence", err);
        goto out;
    }
    if (ll_vocab_is(&ll_dispute_statuses, a.status, DISPUTE_STATUS_CLOSED)) {
        ll_failf(err, sizeof err, "cannot submit the evidence of dispute %lld (%s): it is closed",
                 (long long)a.id, a.dp);
        args_refused("dispute evidence", err);
        goto out;
    }
    sc = args_stripe_client(&scfg);
    if (sc == NULL) {
        rc = CLI_USAGE;
        goto out;
    }
    form = dispute_evidence_form(doc);
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) json_array_append_new(keys, json_string(k));
    fields = json_dumps(keys, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(keys);
    if (form == NULL || fields == NULL) {
        fprintf(stderr, "billingctl: out of memory\n");
        goto out;
    }
    char fp[17], idem[STRIPE_ID_MAX + 64], path[STRIPE_ID_MAX + 16];
    dispute_fingerprint(stripe_form_body(form), fp);
    snprintf(idem, sizeof idem, "dispute-evidence-%s-%s", a.dp, fp);
    snprintf(path, sizeof path, "/v1/disputes/%s", a.dp);
    call.method = "POST";
    call.path = path;
    call.form = form;
    call.idempotency_key = idem;
    char cerr[256] = "";
    int sent = stripe_perform(sc, &call, cerr, sizeof cerr);
    if (sent != 0 || call.result.outcome != STRIPE_OK) {
        char what[STRIPE_ID_MAX + 48];
        snprintf(what, sizeof what, "submit the evidence of dispute %s", a.dp);
        stripe_call_failf(err, sizeof err, what, sent, cerr, &call.result, NULL);
        args_refused("dispute evidence", err);
        goto out;
    }
    a.fields = fields;
    a.idem_key = idem;
    a.stripe_status = call.result.object_status;
    st = dispute_evidence_record(c, &a, err, sizeof err);
    if (st != DB_OK) {
        /* Stripe has the evidence; re-running records it (same key). */
        args_refused("dispute evidence (sent to Stripe, not recorded; re-run to record)", err);
        goto out;
    }
    if (json) {
        json_t *j = json_pack("{sI sI ss ss ss sb ss}", "dispute_id", (json_int_t)a.id,
                              "invoice_id", (json_int_t)a.invoice_id, "stripe_dispute_id", a.dp,
                              "status", a.status, "evidence_submitted_at", a.submitted_at,
                              "recorded_now", a.recorded_now, "idempotency_key", idem);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(j);
    } else {
        printf("dispute %lld (%s) of invoice %lld: %s, evidence submitted at %s%s\n",
               (long long)a.id, a.dp, (long long)a.invoice_id, a.status, a.submitted_at,
               a.recorded_now ? "" : " (already recorded)");
    }
    rc = CLI_OK;
out:
    stripe_result_free(&call.result);
    stripe_form_free(form);
    stripe_client_free(sc);
    free(fields);
    json_decref(doc);
    db_close(c);
    return rc;
}
