/* failf.h: the one way a library function says why it failed. The message
 * is formatted into the caller's buffer (cut to errlen; err may be NULL)
 * and -1 comes back, so a failure reads as one statement:
 *
 *     return ll_failf(err, errlen, "invoice %s does not exist", id);
 *
 * Messages follow PostgreSQL's style (its "Error Message Style Guide"):
 *
 * - the primary message: lower case, no final period, no function names,
 *   "could not" for what may pass on a retry, "cannot" for what never will,
 *   and always the reason, after a colon;
 * - a detail (ll_detailf), when the primary would grow too long: the facts
 *   (which value, which state), as complete sentences;
 * - a hint (ll_hintf), when there is something the reader can do about it.
 *
 * Detail and hint go after the primary, each on a line of its own, as
 * PostgreSQL prints them:
 *
 *     ll_failf(err, errlen, "cannot resume invoice %s: it is not parked", id);
 *     return ll_hintf(err, errlen, "Only an invoice in needs_attention is resumed.");
 *
 * gives "cannot resume invoice 7: it is not parked\nHINT: Only an invoice
 * in needs_attention is resumed." (billingctl prints it so; a JSON log line
 * carries it in one field). */
#ifndef LEDGERLINE_FAILF_H
#define LEDGERLINE_FAILF_H

#include <stddef.h>

int ll_failf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append "\nDETAIL: ..." / "\nHINT: ..." to the message already in err
 * (cut to errlen); return -1 like ll_failf. */
int ll_detailf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ll_hintf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
