/* stripe_id.h: the shape of a Stripe id (CONTRACT.md, "Additions of
 * 2026-12-03 / Hardening"): ids taken from events or answers, before they
 * go into SQL keys, Kafka keys or URLs, match
 *
 *     ^[a-z]{1,12}_[A-Za-z0-9_]{1,255}$
 *
 * (evt_1PgafzB7WZ01zgkWd7Nc0aQe, pi_..., ch_..., and test tokens such as
 * pm_card_visa). One owner of the rule: the ingester checks event ids and
 * routing keys with it, the workers the ids they read.
 */
#ifndef LEDGERLINE_STRIPE_ID_H
#define LEDGERLINE_STRIPE_ID_H

#include <stdbool.h>
#include <stddef.h>

#define STRIPE_ID_PREFIX_MAX 12
#define STRIPE_ID_REST_MAX 255
/* The shape as text, for error messages. */
#define STRIPE_ID_PATTERN "^[a-z]{1,12}_[A-Za-z0-9_]{1,255}$"
/* The longest id of that shape, in bytes (no terminator). */
#define STRIPE_ID_SHAPE_MAX (STRIPE_ID_PREFIX_MAX + 1 + STRIPE_ID_REST_MAX)

/* Whether the len bytes at s are a Stripe id (s need not be terminated; a
 * NUL inside is refused). */
bool stripe_id_valid(const char *s, size_t len);

#endif
