/* text.h: the two text checks every module needs: whether an operator's
 * value is blank, and a bounded copy into a fixed field that says when it
 * does not fit (a Stripe id or name longer than our column is refused, not
 * cut). */
#ifndef LEDGERLINE_TEXT_H
#define LEDGERLINE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* true for NULL, "" and only white space (isspace). */
bool ll_blank(const char *s);

/* Copies src (NULL = "") into dst; false, leaving dst alone, when it does
 * not fit in dstsz bytes with its NUL. */
bool ll_copy(char *dst, size_t dstsz, const char *src);

#endif
