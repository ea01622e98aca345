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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/disputes.h"
#include "ledgerline/stripe.h"
#include "ledgerline/vocab.h"

typedef struct {
    /* in */
    int64_t row_id; /* 0: look up by stripe id */
    const char *stripe_id;
    /* found */
    int64_t id, firm_id, invoice_id;
    char dp[STRIPE_ID_MAX];
    char status[16];
    /* record */
    const char *by;
    const char *fields; /* JSON array of the keys sent */
    const char *idem_key;
    const char *stripe_status;
    bool recorded_now;
    char submitted_at[40];
} evidence_arg;

static db_status evidence_find(db_conn *c, void *varg, char *err, size_t errlen)
{
    evidence_arg *a = varg;
    db_status st;
    const char *p[] = {a->row_id ? DB_I64(a->row_id) : a->stripe_id};
    PGresult *r = db_exec(c,
                          a->row_id ? "SELECT id, firm_id, invoice_id, stripe_dispute_id, status"
                                      " FROM billing.payment_disputes WHERE id = $1"
                                    : "SELECT id, firm_id, invoice_id, stripe_dispute_id, status"
                                      " FROM billing.payment_disputes WHERE stripe_dispute_id = $1",
                          1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "no such dispute: %s", p[0]);
        return DB_PERMANENT;
    }
    a->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    a->firm_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    a->invoice_id = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    snprintf(a->dp, sizeof a->dp, "%s", PQgetvalue(r, 0, 3));
    snprintf(a->status, sizeof a->status, "%s", PQgetvalue(r, 0, 4));
    PQclear(r);
    return DB_OK;
}

static db_status evidence_record(db_conn *c, void *varg, char *err, size_t errlen)
{
    evidence_arg *a = varg;
    db_status st;
    const char *p[] = {DB_I64(a->id)};
    /* Only forward: a dispute that closed meanwhile stays closed. The first
     * submission time is kept when the same submission is recorded again. */
    PGresult *r = db_exec(c,
                          "WITH old AS (SELECT evidence_submitted_at AS at FROM"
                          " billing.payment_disputes WHERE id = $1 FOR UPDATE)"
                          " UPDATE billing.payment_disputes d SET"
                          " status = CASE WHEN d.status = 'closed' THEN d.status"
                          "  ELSE 'under_review' END,"
                          " evidence_submitted = true,"
                          " evidence_submitted_at = coalesce(d.evidence_submitted_at, now())"
                          " FROM old WHERE d.id = $1 RETURNING old.at IS NULL, d.status,"
                          " to_char(d.evidence_submitted_at AT TIME ZONE 'UTC',"
                          " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                          1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "dispute %lld vanished", (long long)a->id);
        return DB_PERMANENT;
    }
    a->recorded_now = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    snprintf(a->status, sizeof a->status, "%s", PQgetvalue(r, 0, 1));
    snprintf(a->submitted_at, sizeof a->submitted_at, "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
    if (!a->recorded_now)
        return DB_OK;
    const char *pa[] = {DB_I64(a->firm_id), a->by,           DB_I64(a->invoice_id),
                        DB_I64(a->id),      a->dp,           a->fields,
                        a->idem_key,        a->stripe_status};
    return db_command(c,
                      "SELECT billing.audit($1::bigint, 'dispute_evidence_submitted', 'INFO', $2,"
                      " jsonb_build_object('invoice_id', $3::bigint, 'dispute_id', $4::bigint,"
                      " 'stripe_dispute_id', $5::text, 'evidence_fields', $6::jsonb,"
                      " 'idempotency_key', $7::text, 'stripe_status', NULLIF($8::text, '')))",
                      8, pa, err, errlen);
}

#define EVIDENCE_MAX_BYTES (1024 * 1024)

/* Reads the whole file (at most 1 MiB: a larger one is refused, never read
 * further) and parses it strictly. */
static json_t *evidence_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s", path);
        return NULL;
    }
    /* One byte more than the limit tells "exactly 1 MiB" from "larger". */
    char *buf = malloc(EVIDENCE_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t n = fread(buf, 1, EVIDENCE_MAX_BYTES + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    json_t *doc = NULL;
    if (failed) {
        snprintf(err, errlen, "cannot read %s", path);
    } else if (n > EVIDENCE_MAX_BYTES) {
        snprintf(err, errlen, "%s is larger than 1 MiB (%d bytes at most)", path,
                 EVIDENCE_MAX_BYTES);
    } else {
        json_error_t je;
        doc = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
        if (doc == NULL)
            snprintf(err, errlen, "%s is not valid JSON: %s (line %d)", path, je.text, je.line);
    }
    free(buf);
    return doc;
}

int cmd_dispute_evidence(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *target = NULL, *file = NULL, *by = NULL;
    for (int i = 1; i < argc; i++) {
        int g;
        if ((g = args_opt(argc, argv, &i, "--file", &file)) ||
            (g = args_opt(argc, argv, &i, "--by", &by))) {
            if (g < 0)
                return args_usage(usage, "%s needs a value", argv[i]);
            continue;
        }
        if (argv[i][0] != '-' && target == NULL)
            target = argv[i];
        else
            return args_usage(usage, "unexpected argument '%s'", argv[i]);
    }
    evidence_arg a = {0};
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
    db_status st = db_run_tx(c, evidence_find, &a, err, sizeof err);
    if (st != DB_OK) {
        args_refused("dispute evidence", err);
        goto out;
    }
    if (ll_vocab_is(&ll_dispute_statuses, a.status, DISPUTE_STATUS_CLOSED)) {
        fprintf(stderr, "billingctl: dispute evidence refused: dispute %lld (%s) is closed\n",
                (long long)a.id, a.dp);
        goto out;
    }
    sc = stripe_client_new(&scfg, err, sizeof err);
    if (sc == NULL) {
        fprintf(stderr, "billingctl: configuration error: %s\n", err);
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
    if (stripe_perform(sc, &call, cerr, sizeof cerr) != 0) {
        fprintf(stderr, "billingctl: dispute evidence refused: %s\n", cerr);
        goto out;
    }
    if (call.result.outcome != STRIPE_OK) {
        fprintf(
            stderr, "billingctl: dispute evidence refused: Stripe answered %s (HTTP %ld): %s%s\n",
            stripe_outcome_name(call.result.outcome), call.result.http_status, call.result.message,
            stripe_result_transient(&call.result)
                ? " (temporary; re-running the same command is safe: same idempotency key)"
                : "");
        goto out;
    }
    a.fields = fields;
    a.idem_key = idem;
    a.stripe_status = call.result.object_status;
    st = db_run_tx(c, evidence_record, &a, err, sizeof err);
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
