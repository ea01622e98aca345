/* stripe_failf.c: a Stripe call that did not succeed, as an operator's
 * error message (stripe_failf.h). */
#include "ledgerline/stripe_failf.h"

#include <stdbool.h>

#include "ledgerline/failf.h"

int stripe_call_failf(char *err, size_t errlen, const char *what, int rc, const char *cerr,
                      const stripe_result *r, const char *detail)
{
    bool again = rc != 0 || stripe_result_transient(r);
    if (rc != 0)
        ll_failf(err, errlen, "could not %s: %s", what, cerr);
    else
        ll_failf(err, errlen, "%s %s: Stripe answered %s (HTTP %ld): %s",
                 again ? "could not" : "cannot", what, stripe_outcome_name(r->outcome),
                 r->http_status, r->message);
    if (detail != NULL)
        ll_detailf(err, errlen, "%s", detail);
    if (!again)
        return -1;
    return ll_hintf(err, errlen,
                    "Re-running the same command is safe: it sends the same idempotency key.");
}
