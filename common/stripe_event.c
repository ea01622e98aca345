/* stripe_event.c: parsing Stripe event envelopes and reading their fields
 * (see stripe_event.h). Owns nothing else: which invoice an event is about
 * is stripe_match.c's, what it does to the invoice the applying worker's. */
#include "ledgerline/stripe_event.h"
#include "ledgerline/failf.h"

#include "ledgerline/stripe_id.h"
#include "ledgerline/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const json_t *stripe_json_get(const json_t *obj, const char *path)
{
    char key[128];
    const json_t *cur = obj;
    while (cur != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n == 0 || n >= sizeof key || !json_is_object(cur))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        cur = json_object_get(cur, key);
        path += n + (dot ? 1 : 0);
    }
    return json_is_null(cur) ? NULL : cur;
}

const char *stripe_json_str(const json_t *obj, const char *path)
{
    const json_t *v = stripe_json_get(obj, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t stripe_json_i64(const json_t *obj, const char *path, int64_t dflt)
{
    const json_t *v = stripe_json_get(obj, path);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

int stripe_event_parse(const void *body, size_t len, stripe_event *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return ll_failf(err, errlen, "stripe event: not JSON (%s at byte %d)", je.text,
                        je.position);
    const char *id = stripe_json_str(root, "id");
    const char *type = stripe_json_str(root, "type");
    const json_t *object = stripe_json_get(root, "data.object");
    const char *why = NULL;
    if (!json_is_object(root))
        why = "not a JSON object";
    else if (id == NULL || id[0] == '\0')
        why = "no string \"id\"";
    else if (!ll_copy(out->id, sizeof out->id, id) || !stripe_id_valid(id, strlen(id)))
        why = "\"id\" is not a Stripe id (" STRIPE_ID_PATTERN ")";
    else if (type == NULL || type[0] == '\0')
        why = "no string \"type\"";
    else if (!ll_copy(out->type, sizeof out->type, type))
        why = "\"type\" too long";
    else if (!json_is_object(object))
        why = "no object at data.object";
    if (why != NULL) {
        json_decref(root);
        return ll_failf(err, errlen, "stripe event: %s", why);
    }
    out->created = stripe_json_i64(root, "created", 0);
    out->root = root;
    out->object = (json_t *)object;
    return 0;
}

void stripe_event_free(stripe_event *e)
{
    if (e == NULL)
        return;
    json_decref(e->root);
    e->root = NULL;
    e->object = NULL;
}

void stripe_event_refs_of(const json_t *object, stripe_event_refs *out)
{
    memset(out, 0, sizeof *out);
    const char *kind = stripe_json_str(object, "object");
    const char *pi = NULL, *charge = NULL;
    if (kind != NULL && strcmp(kind, "payment_intent") == 0) {
        pi = stripe_json_str(object, "id");
        charge = stripe_json_str(object, "latest_charge");
    } else if (kind != NULL && strcmp(kind, "charge") == 0) {
        pi = stripe_json_str(object, "payment_intent");
        charge = stripe_json_str(object, "id");
    } else {
        /* invoice, dispute, refund: they point at both. */
        pi = stripe_json_str(object, "payment_intent");
        charge = stripe_json_str(object, "charge");
    }
    /* Only ids of Stripe's shape go into SQL keys and URLs (the contract's
     * hardening); anything else is as good as absent. */
    if (!ll_copy(out->payment_intent, sizeof out->payment_intent, pi) ||
        (pi != NULL && !stripe_id_valid(pi, strlen(pi))))
        out->payment_intent[0] = '\0';
    if (!ll_copy(out->charge, sizeof out->charge, charge) ||
        (charge != NULL && !stripe_id_valid(charge, strlen(charge))))
        out->charge[0] = '\0';
    const char *meta = stripe_json_str(object, "metadata.invoice_id");
    if (!ll_copy(out->metadata_invoice_id, sizeof out->metadata_invoice_id, meta))
        out->metadata_invoice_id[0] = '\0';
    meta = stripe_json_str(object, "metadata.firm_id");
    if (!ll_copy(out->metadata_firm_id, sizeof out->metadata_firm_id, meta))
        out->metadata_firm_id[0] = '\0';
    meta = stripe_json_str(object, "metadata.attempt_key");
    if (!ll_copy(out->metadata_attempt_key, sizeof out->metadata_attempt_key, meta))
        out->metadata_attempt_key[0] = '\0';
}

bool stripe_event_decimal_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}
