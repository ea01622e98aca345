/* route.c: envelope validation and event type -> topic + key (route.h). */
#include "route.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ledgerline/topics.h"

typedef enum { KEY_PAYMENT_INTENT, KEY_CHARGE } route_key_rule;

static const struct {
    const char *type;
    route_dest dest;
} route_table[] = {
    {"payment_intent.succeeded", ROUTE_PAYMENTS},
    {"payment_intent.payment_failed", ROUTE_PAYMENTS},
    {"payment_intent.processing", ROUTE_PAYMENTS},
    {"invoice.payment_succeeded", ROUTE_PAYMENTS},
    {"invoice.payment_failed", ROUTE_PAYMENTS},
    {"charge.dispute.created", ROUTE_DISPUTES},
    {"charge.dispute.updated", ROUTE_DISPUTES},
    {"charge.dispute.closed", ROUTE_DISPUTES},
    {"charge.dispute.funds_withdrawn", ROUTE_DISPUTES},
    {"charge.dispute.funds_reinstated", ROUTE_DISPUTES},
    {"charge.refunded", ROUTE_DISPUTES},
};

const char *const route_known_types[] = {
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing",
    "invoice.payment_succeeded", "invoice.payment_failed", "charge.dispute.created",
    "charge.dispute.updated", "charge.dispute.closed", "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated", "charge.refunded", NULL};

const char *route_topic(route_dest d)
{
    switch (d) {
    case ROUTE_PAYMENTS: return TOPIC_STRIPE_PAYMENTS;
    case ROUTE_DISPUTES: return TOPIC_STRIPE_DISPUTES;
    case ROUTE_IGNORED: break;
    }
    return NULL;
}

/* Printable ASCII, 1..ROUTE_FIELD_MAX bytes: safe as a Kafka key, header,
 * log field and metrics label. */
static bool route_field_ok(const char *s, size_t len)
{
    if (len == 0 || len > ROUTE_FIELD_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* A Stripe reference: an id string, or an expanded object with an "id". */
static const char *route_ref_id(json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "id");
    if (!json_is_string(v) || !route_field_ok(json_string_value(v), json_string_length(v)))
        return NULL;
    return json_string_value(v);
}

static int route_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

int route_event_parse(const void *body, size_t len, route_event *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return route_fail(err, errlen, "body is not valid JSON");
    int rc = -1;
    if (!json_is_object(root)) {
        route_fail(err, errlen, "body is not a JSON object");
        goto out;
    }
    json_t *id = json_object_get(root, "id"), *type = json_object_get(root, "type");
    if (!json_is_string(id) || !route_field_ok(json_string_value(id), json_string_length(id))) {
        route_fail(err, errlen, "event has no valid \"id\" (non-empty printable string)");
        goto out;
    }
    if (!json_is_string(type) ||
        !route_field_ok(json_string_value(type), json_string_length(type))) {
        route_fail(err, errlen, "event has no valid \"type\" (non-empty printable string)");
        goto out;
    }
    memcpy(out->id, json_string_value(id), json_string_length(id) + 1);
    memcpy(out->type, json_string_value(type), json_string_length(type) + 1);
    out->dest = ROUTE_IGNORED;
    for (size_t i = 0; i < sizeof route_table / sizeof route_table[0]; i++)
        if (strcmp(route_table[i].type, out->type) == 0)
            out->dest = route_table[i].dest;
    if (out->dest == ROUTE_IGNORED) {
        rc = 0;
        goto out;
    }
    json_t *obj = json_object_get(json_object_get(root, "data"), "object");
    const char *key = NULL;
    if (strncmp(out->type, "payment_intent.", 15) == 0)
        key = route_ref_id(obj);                                 /* the intent itself */
    else if (strncmp(out->type, "invoice.", 8) == 0)
        key = route_ref_id(json_object_get(obj, "payment_intent")); /* else object id */
    else if (strcmp(out->type, "charge.refunded") == 0)
        key = route_ref_id(obj);                                 /* the charge itself */
    else
        key = route_ref_id(json_object_get(obj, "charge"));     /* dispute's charge */
    if (key == NULL)
        key = route_ref_id(obj);
    if (key == NULL)
        key = out->id; /* no usable object: keep the event's own order by its id */
    snprintf(out->key, sizeof out->key, "%s", key);
    rc = 0;
out:
    json_decref(root);
    return rc;
}
