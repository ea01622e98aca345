/* disputes.c: the Dispute endpoints of the stand-in (POST /v1/disputes/{id},
 * GET /v1/disputes, GET /v1/disputes/{id}) and a dispute's life as tests
 * drive it (POST /__standin/dispute opens one on a known charge,
 * /__standin/dispute_close ends it won or lost), with the webhook events each
 * step makes Stripe send.
 *
 * Two kinds of stored dispute: those opened through /__standin/dispute (on a
 * charge the stand-in knows, listed, with events) and "adhoc" ones, made the
 * first time POST /v1/disputes/{id} names an unknown dp_/du_ id (the fixture's
 * dispute under that id, as before: no charge of ours, not listed, no
 * events). */
#include "stripe_standin.h"

#include <stdio.h>
#include <string.h>

#define SS_DISPUTE_RESPONSE_S (7 * 86400) /* evidence_details.due_by = opened + 7 days */

static bool ss_dispute_closed(const json_t *d)
{
    const char *s = json_string_value(json_object_get(d, "status"));
    return s != NULL && (strcmp(s, "won") == 0 || strcmp(s, "lost") == 0);
}

/* What an update changed, in the shape of data.previous_attributes
 * (charge.dispute.updated.json): the old values of changed members. */
static json_t *ss_dispute_previous(const json_t *old, const json_t *now)
{
    json_t *prev = json_object();
    json_t *pev = json_object();
    const char *k;
    json_t *v;
    json_t *nev = json_object_get(now, "evidence");
    json_object_foreach(json_object_get(old, "evidence"), k, v)
    {
        if (!json_equal(v, json_object_get(nev, k)))
            json_object_set(pev, k, v);
    }
    if (json_object_size(pev) > 0)
        json_object_set(prev, "evidence", pev);
    json_decref(pev);
    json_t *od = json_object_get(old, "evidence_details");
    json_t *nd = json_object_get(now, "evidence_details");
    if (!json_equal(json_object_get(od, "has_evidence"), json_object_get(nd, "has_evidence")) ||
        !json_equal(json_object_get(od, "submission_count"),
                    json_object_get(nd, "submission_count")))
        json_object_set_new(prev, "evidence_details",
                            json_pack("{s:O,s:O}", "has_evidence",
                                      json_object_get(od, "has_evidence"), "submission_count",
                                      json_object_get(od, "submission_count")));
    if (!json_equal(json_object_get(old, "metadata"), json_object_get(now, "metadata")))
        json_object_set(prev, "metadata", json_object_get(old, "metadata"));
    if (!json_equal(json_object_get(old, "status"), json_object_get(now, "status")))
        json_object_set(prev, "status", json_object_get(old, "status"));
    return prev;
}

void ss_dispute_update_locked(ss_state *st, const ss_request *rq, const char *dp, const json_t *p,
                              ss_answer *a)
{
    bool idok = (strncmp(dp, "dp_", 3) == 0 || strncmp(dp, "du_", 3) == 0) && dp[3] != '\0' &&
                strlen(dp) < 64;
    for (const char *c = dp + 3; idok && *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            idok = false;
    if (!idok) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "dispute",
                        "No such dispute: '%s'", dp);
        return;
    }
    const json_t *known = json_object_get(st->fx.dispute_200, "evidence");
    bool submit = true; /* Stripe's default: submit unless told to stage */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)p, k, v)
    {
        const char *s = json_string_value(v);
        if (strcmp(k, "submit") == 0) {
            if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0) {
                ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_boolean",
                                "submit", "Invalid boolean: %s", s);
                return;
            }
            submit = strcmp(s, "true") == 0;
        } else if (strncmp(k, "evidence[", 9) == 0 && k[strlen(k) - 1] == ']') {
            char name[128];
            size_t nl = strlen(k) - 10;
            if (nl >= sizeof name ||
                (memcpy(name, k + 9, nl), name[nl] = '\0', json_object_get(known, name) == NULL)) {
                ss_answer_error(a, 400, "invalid_request_error", "parameter_unknown", k,
                                "Received unknown parameter: %s", k);
                return;
            }
        } else if (strncmp(k, "metadata[", 9) != 0 && strncmp(k, "expand[", 7) != 0) {
            ss_answer_error(a, 400, "invalid_request_error", "parameter_unknown", k,
                            "Received unknown parameter: %s", k);
            return;
        }
    }
    json_t *entry = json_object_get(st->disputes, dp);
    if (entry == NULL) {
        /* A dispute seen for the first time: the fixture's shape in its
         * needs_response state, with no evidence yet. */
        json_t *d = json_deep_copy(st->fx.dispute_200);
        ss_set_str(d, "id", dp);
        ss_set_str(d, "status", "needs_response");
        json_t *ev = json_object_get(d, "evidence");
        const char *ek;
        json_t *evv;
        void *tmp;
        json_object_foreach_safe(ev, tmp, ek, evv) json_object_set_new(ev, ek, json_null());
        json_t *det = json_object_get(d, "evidence_details");
        json_object_set_new(det, "has_evidence", json_false());
        json_object_set_new(det, "submission_count", json_integer(0));
        json_object_set_new(d, "metadata", json_object());
        entry = json_pack("{s:o,s:b}", "dispute", d, "adhoc", 1);
        json_object_set_new(st->disputes, dp, entry);
    }
    json_t *d = json_object_get(entry, "dispute");
    bool adhoc = json_is_true(json_object_get(entry, "adhoc"));
    if (!adhoc && ss_dispute_closed(d)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, NULL,
                        "Dispute %s is already closed (%s): its evidence can no longer be "
                        "updated.",
                        dp, json_string_value(json_object_get(d, "status")));
        a->store = true;
        return;
    }
    json_t *before = json_deep_copy(d);
    json_t *given = ss_form_sub(p, "evidence");
    json_object_update(json_object_get(d, "evidence"), given);
    json_decref(given);
    json_t *meta = ss_form_sub(p, "metadata");
    json_object_update(json_object_get(d, "metadata"), meta);
    json_decref(meta);
    json_t *det = json_object_get(d, "evidence_details");
    bool has = false;
    json_object_foreach(json_object_get(d, "evidence"), k, v) has = has || !json_is_null(v);
    json_object_set_new(det, "has_evidence", json_boolean(has));
    if (submit) {
        ss_set_str(d, "status", "under_review");
        json_object_set_new(
            det, "submission_count",
            json_integer(json_integer_value(json_object_get(det, "submission_count")) + 1));
    }
    if (!adhoc) {
        json_t *prev = ss_dispute_previous(before, d);
        if (json_object_size(prev) > 0)
            ss_event_log_locked(st, st->fx.evt_dp_updated, "charge.dispute.updated", d, prev, rq);
        else
            json_decref(prev);
    }
    json_decref(before);
    st->disputes_updated++;
    a->status = 200;
    a->body = json_deep_copy(d);
    a->store = true;
    snprintf(a->object_id, sizeof a->object_id, "%s", dp);
}

/* Every dispute opened through /__standin/dispute, oldest first (borrowed). */
static json_t *ss_disputes_opened(ss_state *st)
{
    json_t *all = json_array();
    const char *k;
    json_t *e;
    json_object_foreach(st->disputes, k, e)
    {
        if (!json_is_true(json_object_get(e, "adhoc")))
            json_array_append(all, json_object_get(e, "dispute"));
    }
    return all;
}

json_t *ss_dispute_all_locked(ss_state *st)
{
    json_t *all = ss_disputes_opened(st);
    json_t *copy = json_deep_copy(all);
    json_decref(all);
    return copy;
}

static bool ss_dispute_match(const json_t *d, void *ctx)
{
    const json_t *p = ctx;
    const char *ch = ss_param(p, "charge"), *pi = ss_param(p, "payment_intent");
    const char *dch = json_string_value(json_object_get(d, "charge"));
    const char *dpi = json_string_value(json_object_get(d, "payment_intent"));
    if (ch != NULL && (dch == NULL || strcmp(ch, dch) != 0))
        return false;
    if (pi != NULL && (dpi == NULL || strcmp(pi, dpi) != 0))
        return false;
    return true;
}

void ss_dispute_list_locked(ss_state *st, const json_t *p, ss_answer *a)
{
    static const char *const params[] = {"charge", "payment_intent", NULL};
    ss_list_spec spec = {.url = "/v1/disputes",
                         .noun = "dispute",
                         .params = params,
                         .match = ss_dispute_match,
                         .ctx = (void *)p};
    json_t *all = ss_disputes_opened(st);
    ss_list_answer(all, p, &spec, a);
    json_decref(all);
}

void ss_dispute_get_locked(ss_state *st, const char *id, ss_answer *a)
{
    json_t *d = json_object_get(json_object_get(st->disputes, id), "dispute");
    if (d == NULL) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "dispute",
                        "No such dispute: '%s'", id);
        return;
    }
    a->status = 200;
    a->body = json_deep_copy(d);
    snprintf(a->object_id, sizeof a->object_id, "%s", id);
}

/* Stripe's dispute reasons. */
static const char *const ss_dispute_reasons[] = {"bank_cannot_process",
                                                 "check_returned",
                                                 "credit_not_processed",
                                                 "customer_initiated",
                                                 "debit_not_authorized",
                                                 "duplicate",
                                                 "fraudulent",
                                                 "general",
                                                 "incorrect_account_details",
                                                 "insufficient_funds",
                                                 "product_not_received",
                                                 "product_unacceptable",
                                                 "subscription_canceled",
                                                 "unrecognized",
                                                 NULL};

/* A balance transaction of the dispute, from a fixture's: amount moves
 * sign * amount, the fee the other way. */
static json_t *ss_dispute_txn(ss_state *st, const json_t *tmpl, const char *dp, const char *ch,
                              const char *currency, int64_t amount, int sign, const char *what)
{
    json_t *t = json_deep_copy(tmpl);
    char id[40], desc[160];
    ss_random_id(id, sizeof id, "txn_", 24);
    int64_t now = ss_clock_locked(st);
    int64_t fee = json_integer_value(json_object_get(t, "fee"));
    if (fee < 0)
        fee = -fee;
    snprintf(desc, sizeof desc, "%s for %s", what, ch);
    json_object_set_new(t, "amount", json_integer(sign * amount));
    json_object_set_new(t, "available_on", json_integer(now));
    json_object_set_new(t, "created", json_integer(now));
    ss_set_str(t, "currency", currency);
    ss_set_str(t, "description", desc);
    json_object_set_new(t, "fee", json_integer(-sign * fee));
    ss_set_str(t, "id", id);
    json_object_set_new(t, "net", json_integer(sign * (amount + fee)));
    ss_set_str(t, "source", dp);
    size_t i;
    json_t *fd;
    json_array_foreach(json_object_get(t, "fee_details"), i, fd)
    {
        json_object_set_new(fd, "amount", json_integer(-sign * fee));
        ss_set_str(fd, "currency", currency);
    }
    return t;
}

void ss_dispute_open_locked(ss_state *st, const json_t *req, ss_answer *a)
{
    const char *pi = json_string_value(json_object_get(req, "payment_intent"));
    const char *ch = json_string_value(json_object_get(req, "charge"));
    const char *reason = json_string_value(json_object_get(req, "reason"));
    if (pi == NULL && ch == NULL) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "payment_intent",
                        "payment_intent (pi_...) or charge (ch_...) is required");
        return;
    }
    if (pi != NULL) {
        json_t *entry = json_object_get(st->intents, pi);
        if (entry == NULL) {
            ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "payment_intent",
                            "No such payment_intent: '%s'", pi);
            return;
        }
        const char *pich = json_string_value(json_object_get(entry, "charge"));
        if (ch != NULL && strcmp(ch, pich) != 0) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "charge",
                            "Charge %s does not belong to PaymentIntent %s.", ch, pi);
            return;
        }
        ch = pich;
    }
    json_t *charge = json_object_get(st->charges, ch);
    if (charge == NULL) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "charge",
                        "No such charge: '%s'", ch);
        return;
    }
    const char *cst = json_string_value(json_object_get(charge, "status"));
    if (strcmp(cst, "succeeded") != 0) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "charge",
                        "Charge %s is %s: only a succeeded charge can be disputed.", ch, cst);
        return;
    }
    const char *had = json_string_value(json_object_get(charge, "dispute"));
    if (had != NULL) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "charge",
                        "Charge %s is already disputed (%s).", ch, had);
        return;
    }
    int64_t total = json_integer_value(json_object_get(charge, "amount"));
    int64_t amount = total - json_integer_value(json_object_get(charge, "refunded"));
    if (json_object_get(req, "amount") != NULL &&
        (!ss_json_i64(req, "amount", &amount) || amount < 1 || amount > total)) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_integer", "amount",
                        "amount must be an integer from 1 to the charge's amount (%lld).",
                        (long long)total);
        return;
    }
    if (amount < 1) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "charge",
                        "Charge %s is fully refunded: nothing is left to dispute.", ch);
        return;
    }
    if (reason == NULL)
        reason = "fraudulent";
    bool known = false;
    for (size_t i = 0; ss_dispute_reasons[i] != NULL; i++)
        known = known || strcmp(reason, ss_dispute_reasons[i]) == 0;
    if (!known) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "reason",
                        "reason %s is not one of Stripe's dispute reasons", reason);
        return;
    }
    const char *currency = json_string_value(json_object_get(charge, "currency"));
    const char *cpi = json_string_value(json_object_get(charge, "payment_intent"));
    char dp[40];
    ss_random_id(dp, sizeof dp, "dp_", 24);
    int64_t now = ss_clock_locked(st);
    json_t *d =
        json_deep_copy(json_object_get(json_object_get(st->fx.evt_dp_created, "data"), "object"));
    const json_t *wtmpl = json_array_get(json_object_get(d, "balance_transactions"), 0);
    json_t *txns = json_array();
    if (wtmpl != NULL)
        json_array_append_new(
            txns, ss_dispute_txn(st, wtmpl, dp, ch, currency, amount, -1, "Chargeback withdrawal"));
    json_object_set_new(d, "amount", json_integer(amount));
    json_object_set_new(d, "balance_transactions", txns);
    ss_set_str(d, "charge", ch);
    json_object_set_new(d, "created", json_integer(now));
    ss_set_str(d, "currency", currency);
    json_t *ev = json_object_get(d, "evidence");
    const char *ek;
    json_t *evv;
    void *tmp;
    json_object_foreach_safe(ev, tmp, ek, evv) json_object_set_new(ev, ek, json_null());
    json_t *det = json_object_get(d, "evidence_details");
    json_object_set_new(det, "due_by", json_integer(now + SS_DISPUTE_RESPONSE_S));
    json_object_set_new(det, "has_evidence", json_false());
    json_object_set_new(det, "past_due", json_false());
    json_object_set_new(det, "submission_count", json_integer(0));
    ss_set_str(d, "id", dp);
    json_object_set_new(d, "metadata", json_object());
    ss_set_str(d, "payment_intent", cpi);
    ss_set_str(d, "reason", reason);
    ss_set_str(d, "status", "needs_response");
    json_object_set_new(st->disputes, dp, json_pack("{s:o,s:b}", "dispute", d, "adhoc", 0));
    ss_set_str(charge, "dispute", dp);
    json_t *evt =
        ss_event_log_locked(st, st->fx.evt_dp_created, "charge.dispute.created", d, NULL, NULL);
    a->status = 200;
    a->body = json_deep_copy(evt);
    snprintf(a->object_id, sizeof a->object_id, "%s", dp);
}

void ss_dispute_close_locked(ss_state *st, const json_t *req, ss_answer *a)
{
    const char *dp = json_string_value(json_object_get(req, "dispute"));
    const char *to = json_string_value(json_object_get(req, "status"));
    json_t *entry = dp != NULL ? json_object_get(st->disputes, dp) : NULL;
    if (entry == NULL || json_is_true(json_object_get(entry, "adhoc"))) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "dispute",
                        "No such dispute opened through /__standin/dispute: '%s'",
                        dp != NULL ? dp : "");
        return;
    }
    if (to == NULL || (strcmp(to, "won") != 0 && strcmp(to, "lost") != 0)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "status",
                        "status must be won or lost");
        return;
    }
    json_t *d = json_object_get(entry, "dispute");
    if (ss_dispute_closed(d)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "dispute",
                        "Dispute %s is already closed (%s).", dp,
                        json_string_value(json_object_get(d, "status")));
        return;
    }
    json_t *evt;
    if (strcmp(to, "lost") == 0) {
        ss_event_log_locked(st, st->fx.evt_dp_withdrawn, "charge.dispute.funds_withdrawn", d, NULL,
                            NULL);
        ss_set_str(d, "status", "lost");
        evt = ss_event_log_locked(st, st->fx.evt_dp_lost, "charge.dispute.closed", d, NULL, NULL);
    } else {
        /* Won: the money comes back (the won fixture's reinstatement). */
        const json_t *rtmpl = json_array_get(
            json_object_get(json_object_get(json_object_get(st->fx.evt_dp_won, "data"), "object"),
                            "balance_transactions"),
            1);
        json_array_append_new(json_object_get(d, "balance_transactions"),
                              ss_dispute_txn(st, rtmpl, dp,
                                             json_string_value(json_object_get(d, "charge")),
                                             json_string_value(json_object_get(d, "currency")),
                                             json_integer_value(json_object_get(d, "amount")), 1,
                                             "Chargeback reversal"));
        ss_set_str(d, "status", "won");
        evt = ss_event_log_locked(st, st->fx.evt_dp_won, "charge.dispute.closed", d, NULL, NULL);
    }
    a->status = 200;
    a->body = json_deep_copy(evt);
    snprintf(a->object_id, sizeof a->object_id, "%s", dp);
}
