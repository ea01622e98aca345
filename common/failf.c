/* failf.c: formatting a failure into the caller's buffer (see failf.h). */
#include "ledgerline/failf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ll_failf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Appends "\n<label>: <fmt ...>" after the message in err, cut to errlen. */
static int fail_append(char *err, size_t errlen, const char *label, const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return -1;
    size_t len = strnlen(err, errlen - 1);
    int n = snprintf(err + len, errlen - len, "\n%s: ", label);
    if (n > 0 && (size_t)n < errlen - len)
        vsnprintf(err + len + (size_t)n, errlen - len - (size_t)n, fmt, ap);
    return -1;
}

int ll_detailf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_append(err, errlen, "DETAIL", fmt, ap);
    va_end(ap);
    return -1;
}

int ll_hintf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_append(err, errlen, "HINT", fmt, ap);
    va_end(ap);
    return -1;
}
