/* refunds.c: the Refund endpoints of the stand-in (POST /v1/refunds, GET
 * /v1/refunds, GET /v1/refunds/{id}), seeded refunds of foreign charges, and
 * a refund's later life (POST /__standin/refund_update: pending -> succeeded,
 * failed or canceled; succeeded -> failed), with the charge's
 * amount_refunded and the webhook events each step makes Stripe send.
 *
 * A charge's "refunded" is the sum of its refunds that count: pending and
 * succeeded ones (Stripe counts a pending refund in amount_refunded; a failed
 * or canceled one gives the money back to the charge). */
#include "stripe_standin.h"

#include <stdio.h>
#include <string.h>

static bool ss_refund_counts(const char *status)
{
    return status != NULL && (strcmp(status, "pending") == 0 || strcmp(status, "succeeded") == 0);
}

static json_t *ss_refund_find(ss_state *st, const char *id)
{
    size_t i;
    json_t *r;
    json_array_foreach(st->refunds, i, r)
    {
        const char *rid = json_string_value(json_object_get(r, "id"));
        if (id != NULL && rid != NULL && strcmp(rid, id) == 0)
            return r;
    }
    return NULL;
}

static json_t *ss_refund_build(ss_state *st, const char *id, const char *ch, const char *pi,
                               int64_t amount, const char *currency, const char *reason,
                               json_t *metadata, const char *status)
{
    char re[40], txn[40];
    if (id == NULL) {
        ss_random_id(re, sizeof re, "re_", 24);
        id = re;
    }
    ss_random_id(txn, sizeof txn, "txn_", 24);
    json_t *r = json_deep_copy(st->fx.refund_200);
    json_object_set_new(r, "amount", json_integer(amount));
    ss_set_str(r, "balance_transaction", txn);
    ss_set_str(r, "charge", ch);
    json_object_set_new(r, "created", json_integer(ss_clock_locked(st)));
    ss_set_str(r, "currency", currency);
    ss_set_str(r, "id", id);
    json_object_set_new(r, "metadata", metadata != NULL ? metadata : json_object());
    ss_set_str(r, "payment_intent", pi);
    ss_set_str(r, "reason", reason);
    ss_set_str(r, "status", status);
    return r;
}

/* Checks amount (0 = the rest) against what is left of the charge. */
static bool ss_refund_fits(json_t *charge, const char *ch, int64_t *amount, ss_answer *a)
{
    int64_t total = json_integer_value(json_object_get(charge, "amount"));
    int64_t done = json_integer_value(json_object_get(charge, "refunded"));
    int64_t left = total - done;
    if (left <= 0) {
        ss_answer_error(a, 400, "invalid_request_error", "charge_already_refunded", NULL,
                        "Charge %s has already been refunded.", ch);
        a->store = true;
        return false;
    }
    if (*amount == 0)
        *amount = left;
    if (*amount > left) {
        ss_answer_error(a, 400, "invalid_request_error", "amount_too_large", "amount",
                        "Refund amount (%lld) is greater than unrefunded amount on charge "
                        "(%lld), in minor units.",
                        (long long)*amount, (long long)left);
        a->store = true;
        return false;
    }
    return true;
}

static void ss_charge_add_refunded(json_t *charge, int64_t delta)
{
    json_object_set_new(
        charge, "refunded",
        json_integer(json_integer_value(json_object_get(charge, "refunded")) + delta));
}

/* charge.refunded with the charge as it now is. */
static void ss_log_charge_refunded(ss_state *st, const char *ch, const ss_request *rq)
{
    json_t *c = ss_charge_object_locked(st, ch);
    if (c != NULL)
        ss_event_log_locked(st, st->fx.evt_refunded, "charge.refunded", c, NULL, rq);
    json_decref(c);
}

void ss_refund_create_locked(ss_state *st, const ss_request *rq, const json_t *p, ss_answer *a)
{
    const char *pi = ss_param(p, "payment_intent"), *ch = ss_param(p, "charge");
    const char *amount_s = ss_param(p, "amount"), *reason = ss_param(p, "reason");
    const char *want = ss_param(p, "metadata[standin_status]");
    int64_t amount = 0;
    if (pi == NULL && ch == NULL) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "charge",
                        "One of the following params should be provided for this request: "
                        "payment_intent or charge.");
        return;
    }
    if (amount_s != NULL && (!ss_parse_i64(amount_s, &amount) || amount < 1)) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_integer", "amount",
                        "Invalid integer: %s (a refund amount is a positive integer of minor "
                        "units).",
                        amount_s);
        return;
    }
    if (reason != NULL && strcmp(reason, "duplicate") != 0 && strcmp(reason, "fraudulent") != 0 &&
        strcmp(reason, "requested_by_customer") != 0) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "reason",
                        "Invalid reason: must be one of duplicate, fraudulent, or "
                        "requested_by_customer");
        return;
    }
    /* The stand-in's own switch: a refund that starts pending. */
    if (want != NULL && strcmp(want, "pending") != 0 && strcmp(want, "succeeded") != 0) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "metadata[standin_status]",
                        "metadata[standin_status] must be pending or succeeded (got %s).", want);
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
    if (strcmp(json_string_value(json_object_get(charge, "status")), "succeeded") != 0) {
        ss_answer_error(a, 400, "invalid_request_error", "charge_not_refundable", NULL,
                        "Charge %s has not succeeded (it is %s), so it cannot be refunded.", ch,
                        json_string_value(json_object_get(charge, "status")));
        a->store = true;
        return;
    }
    /* A charge under dispute (or lost to one) cannot be refunded. */
    const char *dp = json_string_value(json_object_get(charge, "dispute"));
    if (dp != NULL) {
        json_t *d = json_object_get(json_object_get(st->disputes, dp), "dispute");
        const char *ds = json_string_value(json_object_get(d, "status"));
        if (ds == NULL || strcmp(ds, "won") != 0) {
            ss_answer_error(a, 400, "invalid_request_error", "charge_disputed", NULL,
                            "The charge you're attempting to refund has been charged back "
                            "(%s, dispute %s).",
                            ch, dp);
            a->store = true;
            return;
        }
    }
    if (!ss_refund_fits(charge, ch, &amount, a))
        return;
    const char *status = want != NULL ? want : st->refund_status_default;
    json_t *r =
        ss_refund_build(st, NULL, ch, json_string_value(json_object_get(charge, "payment_intent")),
                        amount, json_string_value(json_object_get(charge, "currency")), reason,
                        ss_form_sub(p, "metadata"), status);
    ss_charge_add_refunded(charge, amount);
    json_array_append(st->refunds, r);
    st->refunds_created++;
    ss_log_charge_refunded(st, ch, rq);
    a->status = 200;
    a->body = r;
    a->store = true;
    snprintf(a->object_id, sizeof a->object_id, "%s", json_string_value(json_object_get(r, "id")));
}

static bool ss_refund_match(const json_t *r, void *ctx)
{
    const json_t *p = ctx;
    const char *ch = ss_param(p, "charge"), *pi = ss_param(p, "payment_intent");
    const char *rch = json_string_value(json_object_get(r, "charge"));
    const char *rpi = json_string_value(json_object_get(r, "payment_intent"));
    if (ch != NULL && (rch == NULL || strcmp(ch, rch) != 0))
        return false;
    if (pi != NULL && (rpi == NULL || strcmp(pi, rpi) != 0))
        return false;
    return true;
}

/* GET /v1/refunds: by charge and/or payment_intent (or all), created filters,
 * newest first, Stripe's cursors. Other parameters are ignored, as before. */
void ss_refund_list_locked(ss_state *st, const json_t *p, ss_answer *a)
{
    /* Like Stripe, a charge it does not hold is not an empty list. */
    const char *ch = json_string_value(json_object_get(p, "charge"));
    if (ch != NULL && json_object_get(st->charges, ch) == NULL) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "charge",
                        "No such charge: '%s'", ch);
        return;
    }
    ss_list_spec spec = {.url = "/v1/refunds",
                         .noun = "refund",
                         .params = NULL,
                         .match = ss_refund_match,
                         .ctx = (void *)p};
    ss_list_answer(st->refunds, p, &spec, a);
}

void ss_refund_get_locked(ss_state *st, const char *id, ss_answer *a)
{
    json_t *r = ss_refund_find(st, id);
    if (r == NULL) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "refund",
                        "No such refund: '%s'", id);
        return;
    }
    a->status = 200;
    a->body = json_deep_copy(r);
    snprintf(a->object_id, sizeof a->object_id, "%s", id);
}

void ss_api_seed_refund_locked(ss_state *st, const json_t *req, ss_answer *a)
{
    const char *ch = json_string_value(json_object_get(req, "charge"));
    const char *pi = json_string_value(json_object_get(req, "payment_intent"));
    const char *id = json_string_value(json_object_get(req, "id"));
    const char *currency = json_string_value(json_object_get(req, "currency"));
    const char *reason = json_string_value(json_object_get(req, "reason"));
    int64_t amount = 0, charge_amount = 0;
    if (ch == NULL || strncmp(ch, "ch_", 3) != 0) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "charge",
                        "charge (ch_...) is required");
        return;
    }
    if (!ss_json_i64(req, "amount", &amount) || amount < 1) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_integer", "amount",
                        "amount must be a positive integer of minor units");
        return;
    }
    if (id != NULL && strncmp(id, "re_", 3) != 0) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "id", "id must start with re_");
        return;
    }
    if (id != NULL && ss_refund_find(st, id) != NULL) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "id", "refund %s already exists",
                        id);
        return;
    }
    json_t *charge = json_object_get(st->charges, ch);
    if (charge == NULL) {
        if (!ss_json_i64(req, "charge_amount", &charge_amount) || charge_amount < 1) {
            ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "charge_amount",
                            "charge %s is unknown: charge_amount (positive integer) is required",
                            ch);
            return;
        }
        char txn[40];
        ss_random_id(txn, sizeof txn, "txn_", 24);
        charge =
            json_pack("{s:s?,s:I,s:s,s:s,s:I,s:I,s:s}", "payment_intent", pi, "amount",
                      (json_int_t)charge_amount, "currency", currency != NULL ? currency : "usd",
                      "status", "succeeded", "refunded", (json_int_t)0, "created",
                      (json_int_t)ss_clock_locked(st), "balance_transaction", txn);
        json_object_set_new(st->charges, ch, charge);
        /* So a refund by payment_intent finds the seeded charge too. */
        if (pi != NULL && json_object_get(st->intents, pi) == NULL)
            json_object_set_new(st->intents, pi, json_pack("{s:s,s:b}", "charge", ch, "seeded", 1));
    }
    if (!ss_refund_fits(charge, ch, &amount, a))
        return;
    if (pi == NULL)
        pi = json_string_value(json_object_get(charge, "payment_intent"));
    json_t *r = ss_refund_build(st, id, ch, pi, amount,
                                json_string_value(json_object_get(charge, "currency")), reason,
                                NULL, "succeeded");
    ss_charge_add_refunded(charge, amount);
    json_array_append(st->refunds, r);
    /* Made outside the API calls the stand-in saw (say, in the Dashboard). */
    ss_log_charge_refunded(st, ch, NULL);
    a->status = 200;
    a->body = r;
    snprintf(a->object_id, sizeof a->object_id, "%s", json_string_value(json_object_get(r, "id")));
}

/* Stripe's documented refund failure reasons. */
static const char *const ss_failure_reasons[] = {"lost_or_stolen_card",
                                                 "expired_or_canceled_card",
                                                 "charge_for_pending_refund_disputed",
                                                 "insufficient_funds",
                                                 "declined",
                                                 "merchant_request",
                                                 "unknown",
                                                 NULL};

void ss_refund_update_locked(ss_state *st, const json_t *req, ss_answer *a)
{
    const char *id = json_string_value(json_object_get(req, "refund"));
    const char *to = json_string_value(json_object_get(req, "status"));
    const char *why = json_string_value(json_object_get(req, "failure_reason"));
    json_t *r = ss_refund_find(st, id);
    if (r == NULL) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "refund",
                        "No such refund: '%s'", id != NULL ? id : "");
        return;
    }
    if (to == NULL || (strcmp(to, "succeeded") != 0 && strcmp(to, "failed") != 0 &&
                       strcmp(to, "canceled") != 0)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "status",
                        "status must be succeeded, failed or canceled");
        return;
    }
    char from[32];
    snprintf(from, sizeof from, "%s", json_string_value(json_object_get(r, "status")));
    /* Stripe's refund life: pending settles one way or the other; a
     * succeeded card refund can still fail later; failed and canceled are
     * final. */
    bool ok = strcmp(from, "pending") == 0 ||
              (strcmp(from, "succeeded") == 0 && strcmp(to, "failed") == 0);
    if (!ok) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "status",
                        "Refund %s is %s; it cannot become %s.", id, from, to);
        return;
    }
    if (strcmp(to, "failed") == 0) {
        if (why == NULL)
            why = "unknown";
        bool known = false;
        for (size_t i = 0; ss_failure_reasons[i] != NULL; i++)
            known = known || strcmp(why, ss_failure_reasons[i]) == 0;
        if (!known) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "failure_reason",
                            "failure_reason must be one of Stripe's (lost_or_stolen_card, "
                            "expired_or_canceled_card, charge_for_pending_refund_disputed, "
                            "insufficient_funds, declined, merchant_request, unknown)");
            return;
        }
    } else if (why != NULL) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "failure_reason",
                        "failure_reason is for status failed only");
        return;
    }
    const char *ch = json_string_value(json_object_get(r, "charge"));
    json_t *charge = json_object_get(st->charges, ch);
    ss_set_str(r, "status", to);
    if (why != NULL)
        ss_set_str(r, "failure_reason", why);
    bool changed = ss_refund_counts(from) && !ss_refund_counts(to);
    if (changed && charge != NULL)
        ss_charge_add_refunded(charge, -json_integer_value(json_object_get(r, "amount")));
    json_t *evt = ss_event_log_locked(st, st->fx.evt_refunded, "charge.refund.updated", r,
                                      json_pack("{s:s}", "status", from), NULL);
    a->status = 200;
    a->body = json_deep_copy(evt);
    if (changed)
        ss_log_charge_refunded(st, ch, NULL);
    snprintf(a->object_id, sizeof a->object_id, "%s", id);
}
