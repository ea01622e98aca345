/* api.c: the request pipeline of the stand-in's /v1 endpoints (request log,
 * auth, injected faults, lost answers, idempotency with Stripe's 24 h key
 * expiry, latency), the routing, and the PaymentIntent endpoints (create,
 * retrieve, list, search, completing processing ones).
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

const char *ss_param(const json_t *p, const char *key)
{
    return json_string_value(json_object_get(p, key));
}

bool ss_parse_i64(const char *s, int64_t *out)
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

bool ss_json_i64(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    return json_is_string(v) && ss_parse_i64(json_string_value(v), out);
}

void ss_doc_url(char *out, size_t outlen, const char *code)
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

void ss_set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v != NULL ? json_string(v) : json_null());
}

void ss_request_log_url_locked(const ss_state *st, json_t *err, const char *request_id)
{
    if (json_object_get(err, "request_log_url") == NULL)
        return;
    char url[160];
    snprintf(url, sizeof url, "https://dashboard.stripe.com/test/logs/%s?t=%lld", request_id,
             (long long)ss_clock_locked(st));
    json_object_set_new(err, "request_log_url", json_string(url));
}

/* The key as Stripe shows it in errors: only its last four characters. */
static void ss_key_hint(const ss_request *rq, char *out, size_t outlen)
{
    const char *given = rq->authorization != NULL && strncmp(rq->authorization, "Bearer ", 7) == 0
                            ? rq->authorization + 7
                            : "";
    size_t gl = strlen(given);
    snprintf(out, outlen, "%s%s",
             gl == 0 ? "(none; send Authorization: Bearer sk_test_...)" : "sk_****",
             gl >= 4 ? given + gl - 4 : "");
}

/* "/v1/<kind>/<id>" -> the noun and id of a retrieve/update path. */
static bool ss_path_object(const char *path, char *noun, size_t nl, const char **id)
{
    static const struct {
        const char *prefix, *noun;
    } kinds[] = {{"/v1/payment_intents/", "payment_intent"},
                 {"/v1/refunds/", "refund"},
                 {"/v1/disputes/", "dispute"},
                 {"/v1/charges/", "charge"},
                 {"/v1/customers/", "customer"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t pl = strlen(kinds[i].prefix);
        if (strncmp(path, kinds[i].prefix, pl) == 0 && path[pl] != '\0' &&
            strchr(path + pl, '/') == NULL) {
            snprintf(noun, nl, "%s", kinds[i].noun);
            *id = path + pl;
            return true;
        }
    }
    return false;
}

void ss_api_fault_answer_locked(ss_state *st, int status, const char *should_retry,
                                const ss_request *rq, ss_answer *a)
{
    char hint[96];
    ss_key_hint(rq, hint, sizeof hint);
    if (status == 429 || status == 500) {
        json_decref(a->body);
        a->body = json_deep_copy(status == 429 ? st->fx.err_429 : st->fx.err_500);
        ss_request_log_url_locked(st, json_object_get(a->body, "error"), rq->request_id);
        a->status = status;
    } else if (status == 401) {
        ss_answer_error(a, 401, "invalid_request_error", NULL, NULL, "Invalid API Key provided: %s",
                        hint);
    } else if (status == 403) {
        ss_answer_error(a, 403, "invalid_request_error", "secret_key_required", NULL,
                        "The provided key '%s' does not have the required permissions for this "
                        "endpoint on account 'acct_standin'. Use a secret key (sk_...) with "
                        "write access to %s.",
                        hint, rq->path);
    } else {
        char noun[32];
        const char *id;
        if (ss_path_object(rq->path, noun, sizeof noun, &id))
            ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "id",
                            "No such %s: '%s'", noun, id);
        else
            ss_answer_error(a, 404, "invalid_request_error", NULL, NULL,
                            "Unrecognized request URL (%s: %s). Please see "
                            "https://stripe.com/docs or we can help at "
                            "https://support.stripe.com/.",
                            rq->method, rq->path);
    }
    a->should_retry = should_retry;
    a->store = false;
}

/* A fixture error body (429 / 500) answered without running anything. */
static void ss_answer_fault(ss_state *st, int status, const char *should_retry,
                            const ss_request *rq, ss_answer *a)
{
    ss_api_fault_answer_locked(st, status, should_retry, rq, a);
}

/* ---- PaymentIntents ----------------------------------------------------- */

typedef struct {
    int64_t amount;
    const char *currency, *customer, *payment_method;
    json_t *metadata; /* owned */
    const char *idempotency_key, *request_id;
    const ss_request *rq; /* for the events it causes */
} ss_pi_params;

static void ss_pi_patch(ss_state *st, json_t *intent, const ss_pi_params *pp, const char *pi,
                        const char *ch, const char *status, int64_t received)
{
    char secret[128], tail[32];
    ss_random_id(tail, sizeof tail, "", 25);
    snprintf(secret, sizeof secret, "%s_secret_%s", pi, tail);
    ss_set_str(intent, "id", pi);
    ss_set_str(intent, "client_secret", secret);
    json_object_set_new(intent, "created", json_integer(ss_clock_locked(st)));
    json_object_set_new(intent, "amount", json_integer(pp->amount));
    json_object_set_new(intent, "amount_received", json_integer(received));
    ss_set_str(intent, "currency", pp->currency);
    ss_set_str(intent, "customer", pp->customer);
    ss_set_str(intent, "latest_charge", ch);
    json_object_set_new(intent, "metadata", json_deep_copy(pp->metadata));
    ss_set_str(intent, "status", status);
}

/* What the search index holds of an intent from now on (the search lag
 * makes it visible search_lag_s clock seconds later). */
static void ss_pi_index_locked(ss_state *st, json_t *entry)
{
    json_t *versions = json_object_get(entry, "versions");
    if (!json_is_array(versions)) {
        versions = json_array();
        json_object_set_new(entry, "versions", versions);
    }
    json_array_append_new(versions, json_pack("[I,o]", (json_int_t)ss_clock_locked(st),
                                              json_deep_copy(json_object_get(entry, "intent"))));
}

/* Stores the intent and its charge, logs the event its creation makes
 * Stripe send (type), and puts it in the search index. */
static void ss_pi_remember(ss_state *st, json_t *intent, const ss_pi_params *pp, const char *pi,
                           const char *ch, const char *charge_status, const json_t *evt_tmpl,
                           const char *evt_type)
{
    char txn[40];
    ss_random_id(txn, sizeof txn, "txn_", 24);
    json_t *entry = json_pack("{s:O,s:s,s:s,s:s,s:s?}", "intent", intent, "charge", ch,
                              "payment_method", pp->payment_method, "request_id", pp->request_id,
                              "idempotency_key", pp->idempotency_key);
    json_object_set_new(st->intents, pi, entry);
    json_object_set_new(st->charges, ch,
                        json_pack("{s:s,s:I,s:s,s:s,s:I,s:O,s:s}", "payment_intent", pi, "amount",
                                  (json_int_t)pp->amount, "currency", pp->currency, "status",
                                  charge_status, "refunded", (json_int_t)0, "created",
                                  json_object_get(intent, "created"), "balance_transaction", txn));
    ss_pi_index_locked(st, entry);
    ss_event_log_locked(st, evt_tmpl, evt_type, intent, NULL, pp->rq);
}

static void ss_pi_success(ss_state *st, const ss_pi_params *pp, bool processing, ss_answer *a)
{
    char pi[40], ch[40];
    ss_random_id(pi, sizeof pi, "pi_", 24);
    ss_random_id(ch, sizeof ch, "ch_", 24);
    json_t *intent = json_deep_copy(st->fx.pi_200);
    ss_pi_patch(st, intent, pp, pi, ch, processing ? "processing" : "succeeded",
                processing ? 0 : pp->amount);
    ss_set_str(intent, "payment_method", pp->payment_method);
    /* No processing fixture: the succeeded envelope with the type replaced. */
    ss_pi_remember(st, intent, pp, pi, ch, processing ? "pending" : "succeeded",
                   st->fx.evt_succeeded,
                   processing ? "payment_intent.processing" : "payment_intent.succeeded");
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
    ss_pi_patch(st, intent, pp, pi, ch, "requires_payment_method", 0);
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
    ss_request_log_url_locked(st, err, pp->request_id);
    ss_pi_remember(st, intent, pp, pi, ch, "failed", st->fx.evt_failed,
                   "payment_intent.payment_failed");
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
    pp.rq = rq;
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
        ss_answer_fault(st, 500, "true", rq, a);
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
            ss_answer_fault(st, fail_status, "true", rq, a);
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
    json_t *obj;
    if (ok) {
        ss_set_str(intent, "status", "succeeded");
        json_object_set(intent, "amount_received", json_object_get(intent, "amount"));
        obj = json_deep_copy(intent);
        ss_set_str(charge, "status", "succeeded");
    } else {
        /* The failed shape (last_payment_error, payment_method detached) is
         * the payment_failed fixture's, carrying this intent's identity. */
        obj = json_deep_copy(json_object_get(json_object_get(st->fx.evt_failed, "data"), "object"));
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
    ss_pi_index_locked(st, entry);
    /* Stripe moved the intent on by itself, not because of an API call. */
    json_t *evt = ss_event_log_locked(
        st, ok ? st->fx.evt_succeeded : st->fx.evt_failed,
        ok ? "payment_intent.succeeded" : "payment_intent.payment_failed", obj, NULL, NULL);
    json_decref(obj);
    a->status = 200;
    a->body = json_deep_copy(evt);
    snprintf(a->object_id, sizeof a->object_id, "%s",
             json_string_value(json_object_get(evt, "id")));
}

/* ---- reading PaymentIntents ------------------------------------------- */

/* Every stored intent object, oldest first (borrowed; seeded ids have none). */
static json_t *ss_pi_objects(ss_state *st)
{
    json_t *all = json_array();
    const char *k;
    json_t *e;
    json_object_foreach(st->intents, k, e)
    {
        json_t *intent = json_object_get(e, "intent");
        if (intent != NULL)
            json_array_append(all, intent);
    }
    return all;
}

json_t *ss_pi_all_locked(ss_state *st)
{
    json_t *all = ss_pi_objects(st);
    json_t *copy = json_deep_copy(all);
    json_decref(all);
    return copy;
}

void ss_pi_get_locked(ss_state *st, const char *id, ss_answer *a)
{
    json_t *intent = json_object_get(json_object_get(st->intents, id), "intent");
    if (intent == NULL) {
        ss_answer_error(a, 404, "invalid_request_error", "resource_missing", "intent",
                        "No such payment_intent: '%s'", id);
        return;
    }
    a->status = 200;
    a->body = json_deep_copy(intent);
    snprintf(a->object_id, sizeof a->object_id, "%s", id);
}

static bool ss_pi_match(const json_t *intent, void *ctx)
{
    const char *cus = ss_param(ctx, "customer");
    const char *have = json_string_value(json_object_get(intent, "customer"));
    return cus == NULL || (have != NULL && strcmp(have, cus) == 0);
}

void ss_pi_list_locked(ss_state *st, const json_t *p, ss_answer *a)
{
    static const char *const params[] = {"customer", NULL};
    ss_list_spec spec = {.url = "/v1/payment_intents",
                         .noun = "payment_intent",
                         .params = params,
                         .match = ss_pi_match,
                         .ctx = (void *)p};
    json_t *all = ss_pi_objects(st);
    ss_list_answer(all, p, &spec, a);
    json_decref(all);
}

void ss_pi_search_locked(ss_state *st, const json_t *p, ss_answer *a)
{
    /* Stripe's search is eventually consistent: what the index holds of an
     * intent is its state search_lag_s clock seconds ago (nothing before
     * that), while the objects answered are the current ones. */
    int64_t seen_until = ss_clock_locked(st) - st->search_lag_s;
    json_t *current = json_array(), *indexed = json_array();
    const char *k;
    json_t *e;
    json_object_foreach(st->intents, k, e)
    {
        json_t *intent = json_object_get(e, "intent");
        if (intent == NULL)
            continue;
        json_t *seen = json_null();
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(e, "versions"), i, v)
        {
            if (json_integer_value(json_array_get(v, 0)) <= seen_until)
                seen = json_array_get(v, 1);
        }
        json_array_append(current, intent);
        json_array_append(indexed, seen);
    }
    ss_search_answer(current, indexed, p, "/v1/payment_intents/search", a);
    json_decref(current);
    json_decref(indexed);
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

/* The id after prefix when the path is prefix + one segment, else NULL. */
static const char *ss_path_id(const char *path, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0 || path[pl] == '\0' || strchr(path + pl, '/') != NULL)
        return NULL;
    return path + pl;
}

static void ss_route_locked(ss_state *st, const ss_request *rq, const json_t *params,
                            const char *canon, ss_answer *a)
{
    bool post = strcmp(rq->method, "POST") == 0, get = strcmp(rq->method, "GET") == 0;
    const char *p = rq->path, *id;
    if (post && strcmp(p, "/v1/payment_intents") == 0)
        ss_pi_create(st, rq, params, canon, a);
    else if (get && strcmp(p, "/v1/payment_intents") == 0)
        ss_pi_list_locked(st, params, a);
    else if (get && strcmp(p, "/v1/payment_intents/search") == 0)
        ss_pi_search_locked(st, params, a);
    else if (get && (id = ss_path_id(p, "/v1/payment_intents/")) != NULL)
        ss_pi_get_locked(st, id, a);
    else if (post && strcmp(p, "/v1/refunds") == 0)
        ss_refund_create_locked(st, rq, params, a);
    else if (get && strcmp(p, "/v1/refunds") == 0)
        ss_refund_list_locked(st, params, a);
    else if (get && (id = ss_path_id(p, "/v1/refunds/")) != NULL)
        ss_refund_get_locked(st, id, a);
    else if (post && (id = ss_path_id(p, "/v1/disputes/")) != NULL)
        ss_dispute_update_locked(st, rq, id, params, a);
    else if (get && strcmp(p, "/v1/disputes") == 0)
        ss_dispute_list_locked(st, params, a);
    else if (get && (id = ss_path_id(p, "/v1/disputes/")) != NULL)
        ss_dispute_get_locked(st, id, a);
    else
        ss_answer_error(a, 404, "invalid_request_error", NULL, NULL,
                        "Unrecognized request URL (%s: %s). The stand-in serves POST|GET "
                        "/v1/payment_intents, GET /v1/payment_intents/search, GET "
                        "/v1/payment_intents/{id}, POST|GET /v1/refunds, GET /v1/refunds/{id}, "
                        "GET /v1/disputes, GET|POST /v1/disputes/{id}.",
                        rq->method, p);
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

typedef enum { SS_EXECUTE, SS_ANSWERED, SS_REPLAY } ss_next;

/* Idempotency (fixtures README, wire fact 5): a new key reserves an entry
 * (*entry, own ref) for the endpoint to fill; a finished key with the same
 * request replays; other parameters, or a key still in flight, are refused.
 * A key older than SS_IDEMPOTENCY_TTL_S clock seconds is forgotten first,
 * as Stripe prunes them: the request then executes as new. */
static ss_next ss_idem_locked(ss_state *st, const ss_request *rq, const char *key,
                              const char *canon, ss_result *out, json_t **entry)
{
    ss_answer *a = &out->a;
    int64_t now = ss_clock_locked(st);
    json_t *e = json_object_get(st->idem, key);
    if (e != NULL && strcmp(json_string_value(json_object_get(e, "state")), "done") == 0 &&
        now >= json_integer_value(json_object_get(e, "first_at")) + SS_IDEMPOTENCY_TTL_S) {
        json_object_del(st->idem, key);
        e = NULL;
    }
    if (e == NULL) {
        *entry = json_pack("{s:s,s:s,s:s,s:s,s:I}", "method", rq->method, "path", rq->path,
                           "params", canon, "state", "in_flight", "first_at", (json_int_t)now);
        json_object_set(st->idem, key, *entry);
        return SS_EXECUTE;
    }
    if (strcmp(json_string_value(json_object_get(e, "state")), "in_flight") == 0) {
        json_decref(a->body);
        a->body =
            json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "idempotency_key_in_use", "message",
                      "There is currently another in-progress request using this Idempotent Key "
                      "(that probably means you submitted twice, and the other request is still "
                      "going through). Please retry this request later.",
                      "type", "idempotency_error");
        a->status = 409;
        return SS_ANSWERED;
    }
    if (strcmp(json_string_value(json_object_get(e, "method")), rq->method) != 0 ||
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
        ss_request_log_url_locked(st, err, rq->request_id);
        a->status = 400;
        return SS_ANSWERED;
    }
    a->status = (int)json_integer_value(json_object_get(e, "status"));
    out->body_text = strdup(json_string_value(json_object_get(e, "body")));
    const char *retry = json_string_value(json_object_get(e, "should_retry"));
    /* retry points into e: answer a static literal */
    a->should_retry = retry == NULL ? NULL : strcmp(retry, "true") == 0 ? "true" : "false";
    const char *oid = json_string_value(json_object_get(e, "object_id"));
    snprintf(a->object_id, sizeof a->object_id, "%s", oid != NULL ? oid : "");
    out->replayed = true;
    st->replays++;
    return SS_REPLAY;
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

    json_t *rec =
        json_pack("{s:I,s:s,s:s,s:s,s:s?,s:s?,s:O,s:n,s:b,s:n,s:i,s:b}", "seq", (json_int_t)0,
                  "method", rq->method, "path", rq->path, "query", rq->query, "idempotency_key",
                  rq->idempotency_key, "stripe_version", rq->stripe_version, "params", params,
                  "status", "replayed", 0, "object_id", "latency_injected_ms", 0, "answer_lost", 0);
    json_t *entry = NULL; /* our idempotency entry while we execute (own ref) */
    ss_next what = SS_EXECUTE;

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

    if (!authed || st->auth_refused) {
        /* A wrong key, or the window of POST /__standin/auth {"valid":false}. */
        ss_api_fault_answer_locked(st, 401, NULL, rq, a);
        what = SS_ANSWERED;
    } else if (bad_form) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, NULL,
                        "Invalid request body: not application/x-www-form-urlencoded UTF-8.");
        what = SS_ANSWERED;
    } else if (st->fault_count > 0) {
        st->fault_count--;
        ss_answer_fault(st, st->fault_status, st->fault_should_retry, rq, a);
        what = SS_ANSWERED;
    } else {
        /* From here on Stripe does what it is asked; a lost answer is lost
         * on the way back. */
        if (post && st->lose_count > 0) {
            st->lose_count--;
            out->lost = true;
        }
        if (key != NULL && (strlen(key) > SS_IDEMPOTENCY_KEY_MAX || *key == '\0')) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "Idempotency-Key",
                            "Idempotency-Key must be 1 to %d characters.", SS_IDEMPOTENCY_KEY_MAX);
            what = SS_ANSWERED;
        } else if (key != NULL) {
            what = ss_idem_locked(st, rq, key, canon, out, &entry);
        }
    }
    pthread_mutex_unlock(&st->mu);

    if (latency > 0)
        ss_sleep_ms(latency);

    pthread_mutex_lock(&st->mu);
    if (what == SS_EXECUTE) {
        ss_route_locked(st, rq, params, canon, a);
        if (a->pi_created)
            st->pi_created++;
        if (a->pi_succeeded)
            st->pi_succeeded++;
    }
    if (what != SS_REPLAY)
        out->body_text = ss_dump(a->body);
    if (entry != NULL) {
        /* Still ours unless a reset dropped it meanwhile. */
        if (json_object_get(st->idem, key) == entry) {
            if (a->store) {
                json_object_set_new(entry, "state", json_string("done"));
                json_object_set_new(entry, "status", json_integer(a->status));
                json_object_set_new(entry, "body", json_string(out->body_text));
                json_object_set_new(entry, "should_retry",
                                    a->should_retry != NULL ? json_string(a->should_retry)
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
    json_object_set_new(rec, "answer_lost", json_boolean(out->lost));
    st->in_flight--;
    pthread_mutex_unlock(&st->mu);

    json_decref(rec);
    json_decref(params);
    free(canon);
}
