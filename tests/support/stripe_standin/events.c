/* events.c: the log of webhook events Stripe would send for what happened in
 * the stand-in (GET /__standin/events), and the Charge objects charge.*
 * events carry.
 *
 * Every envelope is a copy of a fixture event with a new evt_ id, created =
 * the stand-in's clock, the type, data.object and data.previous_attributes
 * replaced, and request = the API request that caused it ({"id":"req_…",
 * "idempotency_key":key|null}) or nulls when Stripe acted on its own. The
 * log only records; nothing is delivered (a test signs and publishes what it
 * needs). */
#include "stripe_standin.h"

#include <stdio.h>
#include <string.h>

json_t *ss_event_log_locked(ss_state *st, const json_t *tmpl, const char *type,
                            const json_t *object, json_t *previous, const ss_request *rq)
{
    json_t *evt = json_deep_copy(tmpl);
    char id[40];
    ss_random_id(id, sizeof id, "evt_", 24);
    ss_set_str(evt, "id", id);
    json_object_set_new(evt, "created", json_integer(ss_clock_locked(st)));
    json_t *data = json_object_get(evt, "data");
    json_object_set_new(data, "object", json_deep_copy(object));
    if (previous != NULL)
        json_object_set_new(data, "previous_attributes", previous);
    else
        json_object_del(data, "previous_attributes");
    const char *key = rq != NULL && strcmp(rq->method, "POST") == 0 ? rq->idempotency_key : NULL;
    json_object_set_new(
        evt, "request",
        json_pack("{s:s?,s:s?}", "id", rq != NULL ? rq->request_id : NULL, "idempotency_key", key));
    ss_set_str(evt, "type", type);
    json_array_append_new(st->events,
                          json_pack("{s:I,s:O}", "seq", (json_int_t)++st->event_seq, "event", evt));
    json_decref(evt); /* the log holds it */
    return evt;
}

json_t *ss_charge_object_locked(ss_state *st, const char *ch)
{
    json_t *c = ch != NULL ? json_object_get(st->charges, ch) : NULL;
    if (c == NULL)
        return NULL;
    const char *pi = json_string_value(json_object_get(c, "payment_intent"));
    json_t *entry = pi != NULL ? json_object_get(st->intents, pi) : NULL;
    json_t *intent = json_object_get(entry, "intent");
    const char *status = json_string_value(json_object_get(c, "status"));
    bool ok = status != NULL && strcmp(status, "succeeded") == 0;
    int64_t amount = json_integer_value(json_object_get(c, "amount"));
    int64_t refunded = json_integer_value(json_object_get(c, "refunded"));

    json_t *o =
        json_deep_copy(json_object_get(json_object_get(st->fx.evt_refunded, "data"), "object"));
    json_object_set_new(o, "amount", json_integer(amount));
    json_object_set_new(o, "amount_captured", json_integer(ok ? amount : 0));
    json_object_set_new(o, "amount_refunded", json_integer(refunded));
    json_object_set(o, "balance_transaction",
                    ok ? json_object_get(c, "balance_transaction") : json_null());
    json_object_set_new(o, "captured", json_boolean(ok));
    json_object_set(o, "created", json_object_get(c, "created"));
    json_object_set(o, "currency", json_object_get(c, "currency"));
    json_object_set_new(
        o, "customer",
        json_deep_copy(intent != NULL ? json_object_get(intent, "customer") : json_null()));
    json_object_set_new(o, "disputed", json_boolean(json_object_get(c, "dispute") != NULL));
    ss_set_str(o, "id", ch);
    json_t *meta = intent != NULL ? json_object_get(intent, "metadata") : NULL;
    json_object_set_new(o, "metadata", meta != NULL ? json_deep_copy(meta) : json_object());
    json_object_set_new(o, "paid", json_boolean(ok));
    ss_set_str(o, "payment_intent", pi);
    json_object_set(o, "payment_method",
                    json_object_get(entry, "payment_method") != NULL
                        ? json_object_get(entry, "payment_method")
                        : json_null());
    json_object_set_new(o, "refunded", json_boolean(amount > 0 && refunded >= amount));
    ss_set_str(o, "status", status);
    json_t *card = json_object_get(json_object_get(o, "payment_method_details"), "card");
    if (json_is_object(card))
        json_object_set_new(card, "amount_authorized", json_integer(amount));
    json_t *lpe = intent != NULL ? json_object_get(intent, "last_payment_error") : NULL;
    if (!ok && json_is_object(lpe)) {
        json_object_set(o, "failure_code", json_object_get(lpe, "code"));
        json_object_set(o, "failure_message", json_object_get(lpe, "message"));
    }
    return o;
}

json_t *ss_charge_all_locked(ss_state *st)
{
    json_t *all = json_array();
    const char *ch;
    json_t *c;
    json_object_foreach(st->charges, ch, c)
    {
        (void)c;
        json_array_append_new(all, ss_charge_object_locked(st, ch));
    }
    return all;
}
