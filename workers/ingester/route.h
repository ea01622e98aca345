/* route.h: the event envelope check and the contract's routing table.
 *
 * A verified body must be a JSON object with a non-empty string "id" and
 * "type" (printable ASCII, at most ROUTE_FIELD_MAX bytes). Routed types go to
 * stripe.payments (key: the PaymentIntent id, else the object id) or
 * stripe.disputes (key: the charge id); every other type is ignored.
 */
#ifndef INGESTER_ROUTE_H
#define INGESTER_ROUTE_H

#include <stddef.h>

#define ROUTE_FIELD_MAX 255

typedef enum { ROUTE_IGNORED = 0, ROUTE_PAYMENTS, ROUTE_DISPUTES } route_dest;

typedef struct {
    route_dest dest;
    int known; /* index of type in route_known_types, or -1 */
    char id[ROUTE_FIELD_MAX + 1];
    char type[ROUTE_FIELD_MAX + 1];
    char key[ROUTE_FIELD_MAX + 1]; /* empty when ignored */
} route_event;

/* Checks the envelope and routes it. Returns 0, or -1 with the reason in err
 * ("body is not JSON", "event has no id", ...). */
int route_event_parse(const void *body, size_t len, route_event *out, char *err, size_t errlen);

/* Unprefixed topic name for a destination (NULL for ROUTE_IGNORED). */
const char *route_topic(route_dest d);

/* The routed event types, for metrics labels (NULL-terminated). */
extern const char *const route_known_types[];

#endif
