/* route.h: the event envelope check and the contract's routing table.
 *
 * A verified body must be a JSON object with a string "id" of the shape of
 * a Stripe id (stripe_id.h) and a non-empty string "type" (printable ASCII,
 * at most ROUTE_FIELD_MAX bytes). Routed types go to stripe.payments (key:
 * the PaymentIntent id, else the object id) or stripe.disputes (key: the
 * charge id); every other type is ignored. A routing key that is present
 * but not a Stripe id refuses the event (it would become a Kafka key and,
 * downstream, SQL keys and URLs).
 */
#ifndef INGESTER_ROUTE_H
#define INGESTER_ROUTE_H

#include <stddef.h>

#include "ledgerline/stripe_id.h"

#define ROUTE_FIELD_MAX 255

typedef enum { ROUTE_IGNORED = 0, ROUTE_PAYMENTS, ROUTE_DISPUTES } route_dest;

typedef struct {
    route_dest dest;
    int known; /* its stripe_event_type (vocab.h), the index in route_known_types; or -1 */
    char id[STRIPE_ID_SHAPE_MAX + 1];
    char type[ROUTE_FIELD_MAX + 1];
    char key[STRIPE_ID_SHAPE_MAX + 1]; /* a Stripe id; empty when ignored */
} route_event;

/* Checks the envelope and routes it. Returns 0, or -1 with the reason in err
 * ("body is not JSON", "event has no id", ...). */
int route_event_parse(const void *body, size_t len, route_event *out, char *err, size_t errlen);

/* Unprefixed topic name for a destination (NULL for ROUTE_IGNORED). */
const char *route_topic(route_dest d);

/* The routed event types, for metrics labels (NULL-terminated), generated
 * from vocab.h's LL_STRIPE_EVENT_MAP. */
extern const char *const route_known_types[];

#endif
