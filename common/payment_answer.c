/* payment_answer.c: what Stripe's answer to a charge means for the books
 * (rules 5, 6, 11.6), and finding out at Stripe what became of an attempt
 * whose answer never came (rule 11.2). payments.c records the outcome; this
 * file only reads answers and asks Stripe. */
#include "ledgerline/payments.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/stripe_event.h"
#include "ledgerline/stripe_id.h"

/* A 400 invalid_request_error names the parameter it objects to: when that
 * is the client's stored payment method or customer, the customer's data
 * caused it (the method was detached or deleted): the customer must act. */
static bool pay_answer_customer_param(const char *param)
{
    return strcmp(param, "payment_method") == 0 || strcmp(param, "customer") == 0;
}

static void pay_answer_code(char *code, size_t codelen, const char *a, const char *b,
                            const char *fallback)
{
    snprintf(code, codelen, "%s", a && a[0] ? a : b && b[0] ? b : fallback);
}

payments_answer payments_answer_of(const stripe_result *res, char *code, size_t codelen)
{
    code[0] = '\0';
    if (stripe_result_transient(res))
        return PAYMENTS_ANSWER_TRANSIENT;
    switch (res->outcome) {
    case STRIPE_OK: {
        const char *s = res->object_status;
        if (res->object_id[0] == '\0')
            break;
        if (strcmp(s, "succeeded") == 0)
            return PAYMENTS_ANSWER_PAID;
        if (strcmp(s, "processing") == 0)
            return PAYMENTS_ANSWER_PROCESSING;
        if (strcmp(s, "requires_action") == 0) {
            snprintf(code, codelen, "authentication_required");
            return PAYMENTS_ANSWER_DECLINED;
        }
        if (strcmp(s, "requires_payment_method") == 0) {
            pay_answer_code(code, codelen,
                            stripe_json_str(res->body, "last_payment_error.decline_code"),
                            stripe_json_str(res->body, "last_payment_error.code"),
                            "payment_intent_requires_payment_method");
            return PAYMENTS_ANSWER_DECLINED;
        }
        if (strcmp(s, "canceled") == 0) {
            snprintf(code, codelen, "payment_intent_canceled");
            return PAYMENTS_ANSWER_DECLINED;
        }
        /* requires_confirmation, requires_capture: we asked for confirm=true
         * and automatic capture, so Stripe did not do what we meant. */
        snprintf(code, codelen, "unexpected_status_%.40s", s);
        return PAYMENTS_ANSWER_OUR_FAULT;
    }
    case STRIPE_CARD_ERROR:
        pay_answer_code(code, codelen, res->decline_code, res->code, "card_declined");
        return PAYMENTS_ANSWER_DECLINED;
    case STRIPE_IDEMPOTENCY_ERROR:
        snprintf(code, codelen, "idempotency_error");
        return PAYMENTS_ANSWER_CONFLICT;
    case STRIPE_INVALID_REQUEST:
        if (res->http_status == 400 && pay_answer_customer_param(res->param)) {
            /* No usable stored method: the same as having none. */
            snprintf(code, codelen, "payment_method_missing");
            return PAYMENTS_ANSWER_DECLINED;
        }
        break;
    default: break;
    }
    if (res->http_status > 0)
        snprintf(code, codelen, "http_%ld", res->http_status);
    else
        snprintf(code, codelen, "integration_error");
    return PAYMENTS_ANSWER_OUR_FAULT;
}

const char *payments_answer_name(payments_answer a)
{
    static const char *const names[] = {"paid",      "processing", "declined",
                                        "our_fault", "conflict",   "transient"};
    return (size_t)a < sizeof names / sizeof names[0] ? names[a] : "unknown";
}

/* ---- Looking an attempt up at Stripe (11.2) ----------------------------- */

/* The PaymentIntent in `list` (a Stripe list or search_result) whose
 * metadata.attempt_key is key, as a new reference; NULL when none. Sets
 * *more and copies the last id into last (for starting_after). */
static json_t *pay_lookup_pick(const json_t *list, const char *key, bool *more, char *last,
                               size_t lastlen)
{
    const json_t *data = stripe_json_get(list, "data");
    *more = json_is_true(stripe_json_get(list, "has_more"));
    json_t *found = NULL;
    size_t i;
    const json_t *pi;
    json_array_foreach(data, i, pi)
    {
        const char *id = stripe_json_str(pi, "id");
        if (id != NULL)
            snprintf(last, lastlen, "%s", id);
        const char *k = stripe_json_str(pi, "metadata.attempt_key");
        if (found == NULL && k != NULL && strcmp(k, key) == 0)
            found = json_incref((json_t *)pi);
    }
    return found;
}

/* One GET; the body on success, NULL otherwise (*failed: the lookup cannot
 * conclude now, with the reason in err). */
static json_t *pay_lookup_get(stripe_client *sc, const char *path, stripe_form *f, bool *failed,
                              char *err, size_t errlen)
{
    stripe_call call = {.method = "GET", .path = path, .form = f};
    char cerr[256] = "";
    json_t *body = NULL;
    if (stripe_perform(sc, &call, cerr, sizeof cerr) != 0) {
        ll_failf(err, errlen, "could not look up the attempt at Stripe: %s", cerr);
        ll_detailf(err, errlen, "The request was GET %s.", path);
        *failed = true;
    } else if (call.result.outcome != STRIPE_OK || !json_is_object(call.result.body)) {
        ll_failf(err, errlen, "could not look up the attempt at Stripe: %s (HTTP %ld): %s",
                 stripe_outcome_name(call.result.outcome), call.result.http_status,
                 call.result.message);
        ll_detailf(err, errlen, "The request was GET %s.", path);
        *failed = true;
    } else {
        body = json_incref(call.result.body);
    }
    stripe_result_free(&call.result);
    stripe_form_free(f);
    return body;
}

/* The search by metadata, then (search is eventually consistent) the
 * customer's PaymentIntents created since the attempt, newest first. */
static json_t *pay_lookup_by_key(stripe_client *sc, const payments_lookup *l, bool *failed,
                                 char *err, size_t errlen)
{
    char query[PAYMENTS_KEY_MAX + 40], last[STRIPE_ID_MAX] = "";
    snprintf(query, sizeof query, "metadata['attempt_key']:'%s'", l->attempt_key);
    bool more = false;
    stripe_form *f = stripe_form_new();
    if (f == NULL || stripe_form_add(f, "query", query) != 0 ||
        stripe_form_add_i64(f, "limit", 100) != 0) {
        stripe_form_free(f);
        *failed = true;
        ll_failf(err, errlen, "could not look up the attempt at Stripe: out of memory");
        return NULL;
    }
    json_t *body = pay_lookup_get(sc, "/v1/payment_intents/search", f, failed, err, errlen);
    /* One key names at most a handful of intents: the first page is all. */
    json_t *found = body ? pay_lookup_pick(body, l->attempt_key, &more, last, sizeof last) : NULL;
    json_decref(body);
    if (found != NULL || *failed || l->customer[0] == '\0')
        return found;
    /* Strongly consistent: every intent of the customer since the attempt. */
    last[0] = '\0';
    for (int page = 0; page < 100 && found == NULL; page++) {
        f = stripe_form_new();
        if (f == NULL || stripe_form_add(f, "customer", l->customer) != 0 ||
            stripe_form_add_i64(f, "created[gte]", l->since_unix) != 0 ||
            stripe_form_add_i64(f, "limit", 100) != 0 ||
            (last[0] && stripe_form_add(f, "starting_after", last) != 0)) {
            stripe_form_free(f);
            *failed = true;
            ll_failf(err, errlen, "could not look up the attempt at Stripe: out of memory");
            return NULL;
        }
        body = pay_lookup_get(sc, "/v1/payment_intents", f, failed, err, errlen);
        if (body == NULL)
            return NULL;
        found = pay_lookup_pick(body, l->attempt_key, &more, last, sizeof last);
        json_decref(body);
        if (!more)
            break;
    }
    return found;
}

int payments_lookup_attempt(stripe_client *sc, const payments_lookup *l, stripe_result *out,
                            char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    bool failed = false;
    json_t *pi = NULL;
    if (l->payment_intent[0] != '\0') {
        if (!stripe_id_valid(l->payment_intent, strlen(l->payment_intent)))
            return ll_failf(err, errlen,
                            "cannot look up PaymentIntent \"%.40s\": it is not a Stripe id",
                            l->payment_intent);
        char path[STRIPE_ID_MAX + 32];
        snprintf(path, sizeof path, "/v1/payment_intents/%s", l->payment_intent);
        pi = pay_lookup_get(sc, path, NULL, &failed, err, errlen);
    } else {
        pi = pay_lookup_by_key(sc, l, &failed, err, errlen);
    }
    if (failed)
        return -1;
    if (pi == NULL)
        return 0;
    /* Read as if it were the charge's own answer. */
    char *text = json_dumps(pi, JSON_COMPACT);
    json_decref(pi);
    if (text == NULL)
        return ll_failf(err, errlen, "could not read Stripe's answer to the lookup: out of memory");

    stripe_classify(200, NULL, NULL, text, strlen(text), NULL, out);
    free(text);
    return 1;
}
