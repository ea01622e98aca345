/* stripe_event.h: reading the Stripe events that arrive on the stripe.*
 * topics (the exact bodies Stripe sent): no database here (finding the
 * invoice an event is about is stripe_match.h's). Shared by the autopay,
 * retry and dispute workers and the Stripe HTTP client.
 *
 * An event is accepted only with a string id ("evt_..."), a string type and
 * an object at data.object; everything else is read with the json helpers
 * below, which treat a missing key, JSON null and a value of the wrong type
 * alike (Stripe sends null for absent optional fields).
 */
#ifndef LEDGERLINE_STRIPE_EVENT_H
#define LEDGERLINE_STRIPE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct {
    char id[128];    /* evt_... */
    char type[64];   /* payment_intent.succeeded, ... */
    int64_t created; /* unix seconds, 0 when absent */
    json_t *root;    /* owned */
    json_t *object;  /* borrowed from root: data.object */
} stripe_event;

/* Parses and validates the envelope; -1 with a message in err (such an event
 * can never be applied: dlq). */
int stripe_event_parse(const void *body, size_t len, stripe_event *out, char *err, size_t errlen);
void stripe_event_free(stripe_event *e);

/* Dotted-path readers ("last_payment_error.decline_code"): NULL / dflt when
 * a key is missing, null, or of another type. */
const char *stripe_json_str(const json_t *obj, const char *path);
int64_t stripe_json_i64(const json_t *obj, const char *path, int64_t dflt);
const json_t *stripe_json_get(const json_t *obj, const char *path);

/* The ids an event's object carries that can lead to an invoice: for a
 * PaymentIntent (object "payment_intent") its id and latest_charge; for a
 * Stripe invoice, charge or dispute its payment_intent and charge; and
 * metadata.invoice_id. Missing ones are empty strings. */
typedef struct {
    char payment_intent[128];
    char charge[128];
    char metadata_invoice_id[32];
    char metadata_firm_id[32];
    char metadata_attempt_key[96]; /* rule 11.5: the attempt that created the intent */
} stripe_event_refs;
void stripe_event_refs_of(const json_t *object, stripe_event_refs *out);

/* A positive decimal id without sign, spaces or leading zeros (metadata
 * values we wrote ourselves). */
bool stripe_event_decimal_id(const char *s);

#endif
