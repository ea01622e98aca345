/* stripe_id.c: the shape check of Stripe ids (stripe_id.h).
 *
 * The prefix is lower-case letters only, so the first '_' always ends it:
 * the check is one pass, no regular expression and no locale (isalpha and
 * friends depend on it).
 */
#include "ledgerline/stripe_id.h"

static bool stripe_id_lower(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static bool stripe_id_rest_char(unsigned char c)
{
    return stripe_id_lower(c) || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool stripe_id_valid(const char *s, size_t len)
{
    if (s == NULL || len < 3 || len > STRIPE_ID_SHAPE_MAX)
        return false;
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    while (k < len && stripe_id_lower(u[k]))
        k++;
    if (k == 0 || k > STRIPE_ID_PREFIX_MAX || k >= len || u[k] != '_')
        return false;
    size_t rest = len - k - 1;
    if (rest == 0 || rest > STRIPE_ID_REST_MAX)
        return false;
    for (size_t i = k + 1; i < len; i++)
        if (!stripe_id_rest_char(u[i]))
            return false;
    return true;
}
