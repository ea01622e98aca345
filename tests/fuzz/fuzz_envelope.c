/* fuzz_envelope.c: libFuzzer target for the event envelope check and the
 * routing (route_event_parse). Input: a webhook body. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    route_event ev;
    char err[160];
    if (route_event_parse(data, size, &ev, err, sizeof err) == 0) {
        /* Accepted events always carry a Stripe id, a bounded type and, when
         * routed, a key of the shape of a Stripe id. */
        if (!stripe_id_valid(ev.id, strlen(ev.id)) || ev.type[0] == '\0' ||
            strlen(ev.type) > ROUTE_FIELD_MAX)
            __builtin_trap();
        if (ev.dest != ROUTE_IGNORED &&
            (!stripe_id_valid(ev.key, strlen(ev.key)) || route_topic(ev.dest) == NULL))
            __builtin_trap();
    }
    return 0;
}
