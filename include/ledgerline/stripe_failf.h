/* stripe_failf.h: a Stripe call that did not succeed, said as an
 * operator's error message (common/stripe_failf.c): one wording for every
 * command that sends an operator's request to Stripe (refunds, dispute
 * evidence). */
#ifndef LEDGERLINE_STRIPE_FAILF_H
#define LEDGERLINE_STRIPE_FAILF_H

#include <stddef.h>

#include "ledgerline/stripe.h"

/* After stripe_perform returned rc (cerr its message) with r: formats
 * "could not <what>: ..." (no answer, or an answer that may pass when sent
 * again) or "cannot <what>: Stripe answered ..." (a refusal), then detail
 * (a full sentence; NULL: none) as its DETAIL, and, when it may pass, a
 * HINT that re-running sends the same idempotency key; returns -1 like
 * ll_failf. */
int stripe_call_failf(char *err, size_t errlen, const char *what, int rc, const char *cerr,
                      const stripe_result *r, const char *detail);

#endif
