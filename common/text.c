/* text.c: blank values and bounded copies (text.h). */
#include "ledgerline/text.h"

#include <ctype.h>
#include <string.h>

bool ll_blank(const char *s)
{
    if (s == NULL)
        return true;
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

bool ll_copy(char *dst, size_t dstsz, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= dstsz)
        return false;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return true;
}
