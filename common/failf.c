/* failf.c: formatting a failure into the caller's buffer (see failf.h). */
#include "ledgerline/failf.h"

#include <stdarg.h>
#include <stdio.h>

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
