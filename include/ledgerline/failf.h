/* failf.h: the one way a library function says why it failed. The message
 * is formatted into the caller's buffer (cut to errlen; err may be NULL)
 * and -1 comes back, so a failure reads as one statement:
 *
 *     return ll_failf(err, errlen, "invoice %s does not exist", id);
 *
 * Messages follow PostgreSQL's style: a lower-case primary message without
 * a final period, "could not" for what may pass on a retry, "cannot" for
 * what never will, and the reason after a colon. */
#ifndef LEDGERLINE_FAILF_H
#define LEDGERLINE_FAILF_H

#include <stddef.h>

int ll_failf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
