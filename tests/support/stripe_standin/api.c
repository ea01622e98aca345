/* api.c: the /v1 endpoints of the stand-in and the machinery around them
 * (request log, auth, injected faults, idempotency, latency).
 *
 * Every body is a deep copy of a fixture file with ids, amounts, metadata and
 * status patched, so the shapes the system parses are Stripe's own. What the
 * payment method of a PaymentIntent is decides its outcome (Stripe's
 * documented test methods plus a few pm_standin_* ones, see README.md). */
#include "stripe_standin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- small helpers ------------------------------------------------------ */

static const char *ss_param(const json_t *p, const char *key)
{
    return json_string_value(json_object_get(p, key));
}

/* A strictly decimal, non-negative int64 (what Stripe accepts for amounts). */
static bool ss_parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || strlen(s) > 18)
        return false;
    int64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return true;
}

static void ss_doc_url(char *out, size_t outlen, const char *code)
{
    int n = snprintf(out, outlen, "https://stripe.com/docs/error-codes/%s", code);
    for (int i = n - (int)strlen(code); i >= 0 && i < n && (size_t)i < outlen; i++)
        if (out[i] == '_')
            out[i] = '-';
}

void ss_answer_error(ss_answer *a, int status, const char *type, const char *code,
                     const char *param, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Member order as Stripe sends it: code, doc_url, message, param, type. */
    json_t *e = json_object();
    if (code != NULL) {
        char doc[256];
        ss_doc_url(doc, sizeof doc, code);
        json_object_set_new(e, "code", json_string(code));
        json_object_set_new(e, "doc_url", json_string(doc));
    }
    json_object_set_new(e, "message", json_string(msg));
    if (param != NULL)
        json_object_set_new(e, "param", json_string(param));
    json_object_set_new(e, "type", json_string(type));
    json_decref(a->body);
    a->body = json_pack("{s:o}", "error", e);
    a->status = status;
}

static void ss_set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v != NULL ? json_string(v) : json_null());
}

static void ss_request_log_url(json_t *err, const char *request_id)
{
    if (json_object_get(err, "request_log_url") == NULL)
        return;
    char url[160];
    snprintf(url, sizeof url, "https://dashboard.stripe.com/test/logs/%s?t=%lld", request_id,
             (long long)ss_now_unix());
    json_object_set_new(err, "request_log_url", json_string(url));
}

/* A fixture error body (429 / 500) answered without running anything. */
static void ss_answer_fault(ss_state *st, int status, const char *should_retry,
                            const char *request_id, ss_answer *a)
{
    json_t *tmpl = status == 429 ? st->fx.err_429 : st->fx.err_500;
    json_decref(a->body);
    a->body = json_deep_copy(tmpl);
    ss_request_log_url(json_object_get(a->body, "error"), request_id);
    a->status = status;
    a->should_retry = should_retry;
    a->store = false;
}

/* ---- PaymentIntents ----------------------------------------------------- */

typedef struct {
    int64_t amount;
    const char *currency, *customer, *payment_method;
    json_t *metadata;          /* owned */
    const char *idempotency_key, *request_id;
} ss_pi_params;

static void ss_pi_patch(json_t *intent, const ss_pi_params *pp, const char *pi, const char *ch,
                        const char *status, int64_t received)
{
    char secret[128], tail[32];
    ss_random_id(tail, sizeof tail, "", 25);
    snprintf(secret, sizeof secret, "%s_secret_%s", pi, tail);
    ss_set_str(intent, "id", pi);
    ss_set_str(intent, "client_secret", secret);
    json_object_set_new(intent, "created", json_integer(ss_now_unix()));
    json_object_set_new(intent, "amount", json_integer(pp->amount));
    json_object_set_new(intent, "amount_received", json_integer(received));
    ss_set_str(intent, "currency", pp->currency);
    ss_set_str(intent, "customer", pp->customer);
    ss_set_str(intent, "latest_charge", ch);
    json_object_set_new(intent, "metadata", json_deep_copy(pp->metadata));
    ss_set_str(intent, "status", status);
}

static void ss_pi_remember(ss_state *st, json_t *intent, const ss_pi_params *pp, const char *pi,
                           const char *ch, const char *charge_status)
{
    json_object_set_new(st->intents, pi,
                        json_pack("{s:O,s:s,s:s,s:s,s:s?}", "intent", intent, "charge", ch,
                                  "payment_method", pp->payment_method, "request_id",
                                  pp->request_id, "idempotency_key", pp->idempotency_key));
    json_object_set_new(st->charges, ch,
                        json_pack("{s:s,s:I,s:s,s:s,s:I}", "payment_intent", pi, "amount",
                                  (json_int_t)pp->amount, "currency", pp->currency, "status",
                                  charge_status, "refunded", (json_int_t)0));
}

static void ss_pi_success(ss_state *st, const ss_pi_params *pp, bool processing, ss_answer *a)
{
    char pi[40], ch[40];
    ss_random_id(pi, sizeof pi, "pi_", 24);
    ss_random_id(ch, sizeof ch, "ch_", 24);
    json_t *intent = json_deep_copy(st->fx.pi_200);
    ss_pi_patch(intent, pp, pi, ch, processing ? "processing" : "succeeded",
                processing ? 0 : pp->amount);
    ss_set_str(intent, "payment_method", pp->payment_method);
    ss_pi_remember(st, intent, pp, pi, ch, processing ? "pending" : "succeeded");
    a->status = 200;
    a->body = intent;
    a->store = true;
    a->pi_created = true;
    a->pi_succeeded = !processing;
    snprintf(a->object_id, sizeof a->object_id, "%s", pi);
}

/* A 402 from a card-error fixture; code == NULL keeps the fixture's code,
 * decline_code and message (authentication_required). */
static void ss_pi_decline(ss_state *st, const ss_pi_params *pp, const json_t *tmpl,
                          const char *code, const char *decline_code, const char *message,
                          ss_answer *a)
{
    char pi[40], ch[40], doc[256];
    ss_random_id(pi, sizeof pi, "pi_", 24);
    ss_random_id(ch, sizeof ch, "ch_", 24);
    json_t *body = json_deep_copy(tmpl);
    json_t *err = json_object_get(body, "error");
    json_t *intent = json_object_get(err, "payment_intent");
    json_t *lpe = json_object_get(intent, "last_payment_error");
    ss_pi_patch(intent, pp, pi, ch, "requires_payment_method", 0);
    json_t *targets[] = {err, lpe};
    for (size_t i = 0; i < 2; i++) {
        json_t *t = targets[i];
        if (!json_is_object(t))
            continue;
        ss_set_str(t, "charge", ch);
        if (code != NULL) {
            ss_doc_url(doc, sizeof doc, code);
            ss_set_str(t, "code", code);
            ss_set_str(t, "decline_code", decline_code);
            ss_set_str(t, "doc_url", doc);
            ss_set_str(t, "message", message);
        }
        json_t *pm = json_object_get(t, "payment_method");
        if (json_is_object(pm)) {
            ss_set_str(pm, "id", pp->payment_method);
            ss_set_str(pm, "customer", pp->customer);
        }
    }
    ss_request_log_url(err, pp->request_id);
    ss_pi_remember(st, intent, pp, pi, ch, "failed");
    a->status = 402;
    a->body = body;
    a->store = true;
    a->pi_created = true;
    snprintf(a->object_id, sizeof a->object_id, "%s", pi);
}

/* Stripe's documented declining test payment methods. */
static const struct {
    const char *pm, *code, *decline_code, *message;
} ss_declines[] = {
    {"pm_card_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."},
    {"pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
     "Your card has insufficient funds."},
    {"pm_card_chargeDeclinedLostCard", "card_declined", "lost_card", "Your card was declined."},
    {"pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card", "Your card was declined."},
    {"pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent", "Your card was declined."},
    {"pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "Your card has expired."},
    {"pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc",
     "Your card's security code is incorrect."},
    {"pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error",
     "An error occurred while processing your card. Try again in a little bit."},
    {"pm_card_chargeDeclinedPickupCard", "card_declined", "pickup_card", "Your card was declined."},
    {"pm_card_chargeDeclinedCardNotSupported", "card_declined", "card_not_supported",
     "Your card does not support this type of purchase."},
    {"pm_card_chargeDeclinedIncorrectNumber", "incorrect_number", "incorrect_number",
     "Your card number is incorrect."},
    {"pm_card_chargeDeclinedInvalidAccount", "card_declined", "invalid_account",
     "Your card was declined."},
};

static bool ss_pi_validate(const json_t *p, ss_pi_params *pp, ss_answer *a)
{
    const char *amount = ss_param(p, "amount");
    if (amount == NULL) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "amount",
                        "Missing required param: amount.");
        return false;
    }
    if (!ss_parse_i64(amount, &pp->amount) || pp->amount < 1 || pp->amount > 99999999) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_integer", "amount",
                        "Invalid integer: %s (amount must be a positive integer of minor units, "
                        "at most 99999999).",
                        amount);
        return false;
    }
    pp->currency = ss_param(p, "currency");
    if (pp->currency == NULL) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "currency",
                        "Missing required param: currency.");
        return false;
    }
    const char *c = pp->currency;
    if (strlen(c) != 3 || c[0] < 'a' || c[0] > 'z' || c[1] < 'a' || c[1] > 'z' || c[2] < 'a' ||
        c[2] > 'z') {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "currency",
                        "Invalid currency: %s. Currencies are three-letter lowercase ISO codes.",
                        c);
        return false;
    }
    pp->payment_method = ss_param(p, "payment_method");
    if (pp->payment_method == NULL || *pp->payment_method == '\0') {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "payment_method",
                        "Missing required param: payment_method (off-session confirmation needs "
                        "a saved payment method).");
        return false;
    }
    /* The system only ever confirms off-session at creation; anything else
     * is a bug in the caller that the stand-in should surface, not model. */
    const char *confirm = ss_param(p, "confirm");
    if (confirm == NULL || strcmp(confirm, "true") != 0) {
        ss_answer_error(a, 400, "invalid_request_error",
                        confirm == NULL ? "parameter_missing" : "parameter_invalid_boolean",
                        "confirm", "The stand-in models confirm=true only (got %s).",
                        confirm != NULL ? confirm : "nothing");
        return false;
    }
    const char *off = ss_param(p, "off_session");
    if (off == NULL || (strcmp(off, "true") != 0 && strcmp(off, "one_off") != 0 &&
                        strcmp(off, "recurring") != 0)) {
        ss_answer_error(a, 400, "invalid_request_error",
                        off == NULL ? "parameter_missing" : "parameter_invalid_boolean",
                        "off_session", "The stand-in models off_session=true only (got %s).",
                        off != NULL ? off : "nothing");
        return false;
    }
    pp->customer = ss_param(p, "customer");
    if (pp->customer != NULL && strncmp(pp->customer, "cus_", 4) != 0) {
        ss_answer_error(a, 400, "invalid_request_error", "resource_missing", "customer",
                        "No such customer: '%s'", pp->customer);
        return false;
    }
    return true;
}

static void ss_pi_create(ss_state *st, const ss_request *rq, const json_t *p, const char *canon,
                         ss_answer *a)
{
    ss_pi_params pp = {0};
    pp.idempotency_key = rq->idempotency_key;
    pp.request_id = rq->request_id;
    if (!ss_pi_validate(p, &pp, a))
        return;
    pp.metadata = ss_form_sub(p, "metadata");
    const char *pm = pp.payment_method;
    unsigned long declines = 0;
    int consumed = 0;

    for (size_t i = 0; i < sizeof ss_declines / sizeof ss_declines[0]; i++)
        if (strcmp(pm, ss_declines[i].pm) == 0) {
            ss_pi_decline(st, &pp, st->fx.pi_402_declined, ss_declines[i].code,
                          ss_declines[i].decline_code, ss_declines[i].message, a);
            goto done;
        }
    if (strcmp(pm, "pm_card_authenticationRequired") == 0) {
        ss_pi_decline(st, &pp, st->fx.pi_402_auth, NULL, NULL, NULL, a);
    } else if (strcmp(pm, "pm_standin_processing") == 0) {
        ss_pi_success(st, &pp, true, a);
    } else if (strcmp(pm, "pm_standin_500_always") == 0) {
        ss_answer_fault(st, 500, "true", rq->request_id, a);
    } else if (strcmp(pm, "pm_standin_500_then_visa") == 0 ||
               strcmp(pm, "pm_standin_429_then_visa") == 0) {
        int fail_status = pm[11] == '5' ? 500 : 429; /* after "pm_standin_" */
        /* The first request of a key fails as if before the endpoint ran (not
         * stored), so the retry with the same key executes for real. Without
         * a key the request's parameters stand for it. */
        char id[1024];
        snprintf(id, sizeof id, "%s|%s", pm,
                 rq->idempotency_key != NULL ? rq->idempotency_key : canon);
        if (json_object_get(st->fail_once_seen, id) == NULL) {
            json_object_set_new(st->fail_once_seen, id, json_true());
            ss_answer_fault(st, fail_status, "true", rq->request_id, a);
        } else {
            ss_pi_success(st, &pp, false, a);
        }
    } else if (sscanf(pm, "pm_standin_declines_%lu_then_visa%n", &declines, &consumed) == 1 &&
               consumed > 0 && pm[consumed] == '\0') {
        const char *inv = json_string_value(json_object_get(pp.metadata, "invoice_id"));
        char id[512];
        snprintf(id, sizeof id, "%s|%s", pm, inv != NULL ? inv : "");
        json_int_t seen = json_integer_value(json_object_get(st->decline_counts, id));
        if ((unsigned long)seen < declines) {
            json_object_set_new(st->decline_counts, id, json_integer(seen + 1));
            ss_pi_decline(st, &pp, st->fx.pi_402_declined, "card_declined", "insufficient_funds",
                          "Your card has insufficient funds.", a);
        } else {
            ss_pi_success(st, &pp, false, a);
        }
    } else if (strncmp(pm, "pm_standin_", 11) == 0 || strncmp(pm, "pm_", 3) != 0) {
        /* An unknown stand-in method is a typo in a test: refuse it loudly. */
        ss_answer_error(a, 400, "invalid_request_error", "resource_missing", "payment_method",
                        "No such PaymentMethod: '%s'", pm);
    } else {
        ss_pi_success(st, &pp, false, a); /* pm_card_visa, pm_card_mastercard, pm_1... */
    }
done:
    json_decref(pp.metadata);
}

/* ---- Refunds ------------------------------------------------------------- */

static json_t *ss_refund_build(ss_state *st, const char *id, const char *ch, const char *pi,
                               int64_t amount, const char *currency, const char *reason,
                               json_t *metadata)
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
    json_object_set_new(r, "created", json_integer(ss_now_unix()));
    ss_set_str(r, "currency", currency);
    ss_set_str(r, "id", id);
    json_object_set_new(r, "metadata", metadata != NULL ? metadata : json_object());
    ss_set_str(r, "payment_intent", pi);
    ss_set_str(r, "reason", reason);
    ss_set_str(r, "status", "succeeded");
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

static void ss_refund_create(ss_state *st, const json_t *p, ss_answer *a)
{
    const char *pi = ss_param(p, "payment_intent"), *ch = ss_param(p, "charge");
    const char *amount_s = ss_param(p, "amount"), *reason = ss_param(p, "reason");
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
    if (!ss_refund_fits(charge, ch, &amount, a))
        return;
    json_t *r = ss_refund_build(st, NULL, ch,
                                json_string_value(json_object_get(charge, "payment_intent")),
                                amount, json_string_value(json_object_get(charge, "currency")),
                                reason, ss_form_sub(p, "metadata"));
    json_object_set_new(charge, "refunded",
                        json_integer(json_integer_value(json_object_get(charge, "refunded")) +
                                     amount));
    json_array_append(st->refunds, r);
    st->refunds_created++;
    a->status = 200;
    a->body = r;
    a->store = true;
    snprintf(a->object_id, sizeof a->object_id, "%s", json_string_value(json_object_get(r, "id")));
}

/* GET /v1/refunds: filtered by charge / payment_intent, newest first, with
 * Stripe's cursor pagination (limit, starting_after, ending_before). */
static void ss_refund_list(ss_state *st, const json_t *p, ss_answer *a)
{
    const char *ch = ss_param(p, "charge"), *pi = ss_param(p, "payment_intent");
    const char *limit_s = ss_param(p, "limit");
    const char *after = ss_param(p, "starting_after"), *before = ss_param(p, "ending_before");
    int64_t limit = 10;
    if (limit_s != NULL && (!ss_parse_i64(limit_s, &limit) || limit < 1 || limit > 100)) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_integer", "limit",
                        "Invalid integer: %s (limit is 1 to 100).", limit_s);
        return;
    }
    if (after != NULL && before != NULL) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "starting_after",
                        "You may only specify one of these parameters: ending_before, "
                        "starting_after.");
        return;
    }
    /* Every match, newest first (borrowed references). */
    json_t *all = json_array();
    for (size_t i = json_array_size(st->refunds); i-- > 0;) {
        json_t *r = json_array_get(st->refunds, i);
        const char *rch = json_string_value(json_object_get(r, "charge"));
        const char *rpi = json_string_value(json_object_get(r, "payment_intent"));
        if (ch != NULL && (rch == NULL || strcmp(ch, rch) != 0))
            continue;
        if (pi != NULL && (rpi == NULL || strcmp(pi, rpi) != 0))
            continue;
        json_array_append(all, r);
    }
    size_t from = 0, to = json_array_size(all); /* the window [from, to) */
    const char *cursor = after != NULL ? after : before;
    if (cursor != NULL) {
        size_t at = 0;
        while (at < to &&
               strcmp(json_string_value(json_object_get(json_array_get(all, at), "id")), cursor) != 0)
            at++;
        if (at == to) {
            json_decref(all);
            ss_answer_error(a, 404, "invalid_request_error", "resource_missing",
                            after != NULL ? "starting_after" : "ending_before",
                            "No such refund: '%s'", cursor);
            return;
        }
        if (after != NULL)
            from = at + 1;
        else
            to = at;
    }
    bool more = to - from > (size_t)limit;
    if (more) {
        if (before != NULL)
            from = to - (size_t)limit; /* the page nearest the cursor */
        else
            to = from + (size_t)limit;
    }
    json_t *data = json_array();
    for (size_t i = from; i < to; i++)
        json_array_append_new(data, json_deep_copy(json_array_get(all, i)));
    json_decref(all);
    a->status = 200;
    a->body = json_pack("{s:s,s:o,s:b,s:s}", "object", "list", "data", data, "has_more", more,
                        "url", "/v1/refunds");
}

/* ---- Disputes ------------------------------------------------------------ */

static void ss_dispute_update(ss_state *st, const char *dp, const json_t *p, ss_answer *a)
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
    json_object_foreach((json_t *)p, k, v) {
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
            if (nl >= sizeof name || (memcpy(name, k + 9, nl), name[nl] = '\0',
                                      json_object_get(known, name) == NULL)) {
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
    json_t *d = json_object_get(st->disputes, dp);
    if (d == NULL) {
        /* A dispute seen for the first time: the fixture's shape in its
         * needs_response state, with no evidence yet. */
        d = json_deep_copy(st->fx.dispute_200);
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
        json_object_set_new(st->disputes, dp, d);
    }
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
    st->disputes_updated++;
    a->status = 200;
    a->body = json_deep_copy(d);
    a->store = true;
    snprintf(a->object_id, sizeof a->object_id, "%s", dp);
}

/* ---- test-control hooks (called from control.c under the lock) ----------- */

void ss_api_complete_locked(ss_state *st, const char *pi, const char *outcome, ss_answer *a)
{
    json_t *entry = pi != NULL ? json_object_get(st->intents, pi) : NULL;
    if (entry == NULL) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "payment_intent",
                        "No such payment_intent: '%s'", pi != NULL ? pi : "");
        return;
    }
    json_t *intent = json_object_get(entry, "intent");
    const char *status = json_string_value(json_object_get(intent, "status"));
    if (status == NULL || strcmp(status, "processing") != 0) {
        ss_answer_error(a, 400, "invalid_request_error", "payment_intent_unexpected_state",
                        "payment_intent", "PaymentIntent %s is %s, not processing.", pi,
                        status != NULL ? status : "seeded");
        return;
    }
    bool ok;
    if (outcome != NULL && strcmp(outcome, "succeeded") == 0)
        ok = true;
    else if (outcome != NULL && strcmp(outcome, "failed") == 0)
        ok = false;
    else {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "outcome",
                        "outcome must be succeeded or failed");
        return;
    }
    const char *ch = json_string_value(json_object_get(entry, "charge"));
    json_t *charge = json_object_get(st->charges, ch);
    json_t *evt = json_deep_copy(ok ? st->fx.evt_succeeded : st->fx.evt_failed);
    json_t *obj;
    if (ok) {
        ss_set_str(intent, "status", "succeeded");
        json_object_set(intent, "amount_received", json_object_get(intent, "amount"));
        obj = json_deep_copy(intent);
        ss_set_str(charge, "status", "succeeded");
    } else {
        /* The failed shape (last_payment_error, payment_method detached) is
         * the payment_failed fixture's, carrying this intent's identity. */
        obj = json_deep_copy(json_object_get(json_object_get(st->fx.evt_failed, "data"),
                                             "object"));
        const char *keys[] = {"id",       "client_secret", "created",       "amount",
                              "currency", "customer",      "latest_charge", "metadata"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            json_object_set(obj, keys[i], json_object_get(intent, keys[i]));
        json_object_set_new(obj, "amount_received", json_integer(0));
        json_object_set_new(obj, "payment_method", json_null());
        ss_set_str(obj, "status", "requires_payment_method");
        json_t *lpe = json_object_get(obj, "last_payment_error");
        if (json_is_object(lpe)) {
            ss_set_str(lpe, "charge", ch);
            json_t *pm = json_object_get(lpe, "payment_method");
            if (json_is_object(pm)) {
                json_object_set(pm, "id", json_object_get(entry, "payment_method"));
                json_object_set(pm, "customer", json_object_get(intent, "customer"));
            }
        }
        json_object_set_new(entry, "intent", json_deep_copy(obj));
        ss_set_str(charge, "status", "failed");
    }
    char evt_id[40];
    ss_random_id(evt_id, sizeof evt_id, "evt_", 24);
    ss_set_str(evt, "id", evt_id);
    json_object_set_new(evt, "created", json_integer(ss_now_unix()));
    json_object_set_new(json_object_get(evt, "data"), "object", obj);
    /* Stripe moved the intent on by itself, not because of an API call. */
    json_object_set_new(evt, "request", json_pack("{s:n,s:n}", "id", "idempotency_key"));
    a->status = 200;
    a->body = evt;
    snprintf(a->object_id, sizeof a->object_id, "%s", evt_id);
}

static bool ss_json_i64(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    return json_is_string(v) && ss_parse_i64(json_string_value(v), out);
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
    for (size_t i = 0; id != NULL && i < json_array_size(st->refunds); i++)
        if (strcmp(id, json_string_value(json_object_get(json_array_get(st->refunds, i), "id"))) ==
            0) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "id",
                            "refund %s already exists", id);
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
        charge = json_pack("{s:s?,s:I,s:s,s:s,s:I}", "payment_intent", pi, "amount",
                           (json_int_t)charge_amount, "currency",
                           currency != NULL ? currency : "usd", "status", "succeeded",
                           "refunded", (json_int_t)0);
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
                                NULL);
    json_object_set_new(charge, "refunded",
                        json_integer(json_integer_value(json_object_get(charge, "refunded")) +
                                     amount));
    json_array_append(st->refunds, r);
    a->status = 200;
    a->body = r;
    snprintf(a->object_id, sizeof a->object_id, "%s", json_string_value(json_object_get(r, "id")));
}

/* ---- the request pipeline ----------------------------------------------- */

static bool ss_auth_ok(const ss_state *st, const char *authorization)
{
    if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *key = authorization + 7;
    if (st->api_key != NULL)
        return strcmp(key, st->api_key) == 0;
    return strncmp(key, "sk_test_", 8) == 0 && key[8] != '\0';
}

static void ss_route_locked(ss_state *st, const ss_request *rq, const json_t *params,
                            const char *canon, ss_answer *a)
{
    bool post = strcmp(rq->method, "POST") == 0, get = strcmp(rq->method, "GET") == 0;
    if (post && strcmp(rq->path, "/v1/payment_intents") == 0)
        ss_pi_create(st, rq, params, canon, a);
    else if (post && strcmp(rq->path, "/v1/refunds") == 0)
        ss_refund_create(st, params, a);
    else if (get && strcmp(rq->path, "/v1/refunds") == 0)
        ss_refund_list(st, params, a);
    else if (post && strncmp(rq->path, "/v1/disputes/", 13) == 0 && strchr(rq->path + 13, '/') == NULL)
        ss_dispute_update(st, rq->path + 13, params, a);
    else
        ss_answer_error(a, 404, "invalid_request_error", NULL, NULL,
                        "Unrecognized request URL (%s: %s). The stand-in serves POST "
                        "/v1/payment_intents, POST|GET /v1/refunds, POST /v1/disputes/{id}.",
                        rq->method, rq->path);
}

static void ss_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static char *ss_dump(const json_t *body)
{
    char *s = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s == NULL)
        s = strdup("{}");
    return s;
}

void ss_api_handle(ss_state *st, const ss_request *rq, ss_result *out)
{
    memset(out, 0, sizeof *out);
    ss_answer *a = &out->a;
    bool post = strcmp(rq->method, "POST") == 0;
    json_t *params = post ? ss_form_decode(rq->body != NULL ? rq->body : "", rq->body_len)
                          : ss_form_decode(rq->query, strlen(rq->query));
    bool bad_form = params == NULL;
    if (bad_form)
        params = json_object();
    char *canon = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    bool authed = ss_auth_ok(st, rq->authorization);
    const char *key = post ? rq->idempotency_key : NULL; /* Stripe ignores keys on GET */

    json_t *rec = json_pack("{s:I,s:s,s:s,s:s,s:s?,s:s?,s:O,s:n,s:b,s:n,s:i}", "seq",
                            (json_int_t)0, "method", rq->method, "path", rq->path, "query",
                            rq->query, "idempotency_key", rq->idempotency_key, "stripe_version",
                            rq->stripe_version, "params", params, "status", "replayed", 0,
                            "object_id", "latency_injected_ms", 0);
    json_t *entry = NULL;  /* our idempotency entry while we execute (own ref) */
    enum { EXECUTE, ANSWERED, REPLAY } what = EXECUTE;

    pthread_mutex_lock(&st->mu);
    json_object_set_new(rec, "seq", json_integer((json_int_t)++st->seq));
    json_array_append(st->records, rec);
    if (st->n_arrivals == st->cap_arrivals) {
        size_t cap = st->cap_arrivals ? st->cap_arrivals * 2 : 1024;
        uint64_t *n = realloc(st->arrivals, cap * sizeof *n);
        if (n != NULL) {
            st->arrivals = n;
            st->cap_arrivals = cap;
        }
    }
    if (st->n_arrivals < st->cap_arrivals)
        st->arrivals[st->n_arrivals++] = ss_now_mono_ns();
    if (++st->in_flight > st->max_in_flight)
        st->max_in_flight = st->in_flight;
    int latency = st->latency_ms;
    json_object_set_new(rec, "latency_injected_ms", json_integer(latency));

    if (!authed) {
        const char *given = rq->authorization != NULL && strncmp(rq->authorization, "Bearer ", 7) == 0
                                ? rq->authorization + 7
                                : "";
        size_t gl = strlen(given);
        /* Like Stripe, show only the key's last four characters. */
        ss_answer_error(a, 401, "invalid_request_error", NULL, NULL,
                        "Invalid API Key provided: %s%s",
                        gl == 0 ? "(none; send Authorization: Bearer sk_test_...)" : "sk_****",
                        gl >= 4 ? given + gl - 4 : "");
        what = ANSWERED;
    } else if (bad_form) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, NULL,
                        "Invalid request body: not application/x-www-form-urlencoded UTF-8.");
        what = ANSWERED;
    } else if (st->fault_count > 0) {
        st->fault_count--;
        ss_answer_fault(st, st->fault_status, st->fault_should_retry, rq->request_id, a);
        what = ANSWERED;
    } else if (key != NULL && (strlen(key) > SS_IDEMPOTENCY_KEY_MAX || *key == '\0')) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "Idempotency-Key",
                        "Idempotency-Key must be 1 to %d characters.", SS_IDEMPOTENCY_KEY_MAX);
        what = ANSWERED;
    } else if (key != NULL) {
        json_t *e = json_object_get(st->idem, key);
        if (e == NULL) {
            entry = json_pack("{s:s,s:s,s:s,s:s}", "method", rq->method, "path", rq->path,
                              "params", canon, "state", "in_flight");
            json_object_set(st->idem, key, entry);
        } else if (strcmp(json_string_value(json_object_get(e, "state")), "in_flight") == 0) {
            json_decref(a->body);
            a->body = json_pack(
                "{s:{s:s,s:s,s:s}}", "error", "code", "idempotency_key_in_use", "message",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                "going through). Please retry this request later.",
                "type", "idempotency_error");
            a->status = 409;
            what = ANSWERED;
        } else if (strcmp(json_string_value(json_object_get(e, "method")), rq->method) != 0 ||
                   strcmp(json_string_value(json_object_get(e, "path")), rq->path) != 0 ||
                   strcmp(json_string_value(json_object_get(e, "params")), canon) != 0) {
            json_decref(a->body);
            a->body = json_deep_copy(st->fx.err_400_idem);
            json_t *err = json_object_get(a->body, "error");
            char msg[512];
            snprintf(msg, sizeof msg,
                     "Keys for idempotent requests can only be used with the same parameters "
                     "they were first used with. Try using a key other than '%s' if you meant "
                     "to execute a different request.",
                     key);
            ss_set_str(err, "message", msg);
            ss_request_log_url(err, rq->request_id);
            a->status = 400;
            what = ANSWERED;
        } else {
            a->status = (int)json_integer_value(json_object_get(e, "status"));
            out->body_text = strdup(json_string_value(json_object_get(e, "body")));
            a->should_retry = json_string_value(json_object_get(e, "should_retry"));
            /* should_retry points into e: copy to a static literal */
            if (a->should_retry != NULL)
                a->should_retry = strcmp(a->should_retry, "true") == 0 ? "true" : "false";
            snprintf(a->object_id, sizeof a->object_id, "%s",
                     json_string_value(json_object_get(e, "object_id")) != NULL
                         ? json_string_value(json_object_get(e, "object_id"))
                         : "");
            out->replayed = true;
            st->replays++;
            what = REPLAY;
        }
    }
    pthread_mutex_unlock(&st->mu);

    if (latency > 0)
        ss_sleep_ms(latency);

    pthread_mutex_lock(&st->mu);
    if (what == EXECUTE) {
        ss_route_locked(st, rq, params, canon, a);
        if (a->pi_created)
            st->pi_created++;
        if (a->pi_succeeded)
            st->pi_succeeded++;
    }
    if (what != REPLAY)
        out->body_text = ss_dump(a->body);
    if (entry != NULL) {
        /* Still ours unless a reset dropped it meanwhile. */
        if (json_object_get(st->idem, key) == entry) {
            if (a->store) {
                json_object_set_new(entry, "state", json_string("done"));
                json_object_set_new(entry, "status", json_integer(a->status));
                json_object_set_new(entry, "body", json_string(out->body_text));
                json_object_set_new(entry, "should_retry", a->should_retry != NULL
                                                               ? json_string(a->should_retry)
                                                               : json_null());
                json_object_set_new(entry, "object_id",
                                    a->object_id[0] ? json_string(a->object_id) : json_null());
            } else {
                json_object_del(st->idem, key);
            }
        }
        json_decref(entry);
    }
    /* The body may share objects with the state: release it under the lock
     * (what goes out is body_text). */
    json_decref(a->body);
    a->body = NULL;
    json_object_set_new(rec, "status", json_integer(a->status));
    json_object_set_new(rec, "replayed", json_boolean(out->replayed));
    json_object_set_new(rec, "object_id",
                        a->object_id[0] ? json_string(a->object_id) : json_null());
    st->in_flight--;
    pthread_mutex_unlock(&st->mu);

    json_decref(rec);
    json_decref(params);
    free(canon);
}
