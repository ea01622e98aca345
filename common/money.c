/* money.c: integer money arithmetic, the currency table (exponents and
 * granularities, rule 11.13), the rounding of invoice amounts to a
 * currency's granularity, and decimal parsing/formatting of amounts and
 * hours (see money.h). */
#include "ledgerline/money.h"

#include <string.h>

typedef struct {
    const char *code;
    int exponent;
    int granularity;
} money_currency_row;

/* The one table (money.h's MONEY_CURRENCY_MAP). */
#define MONEY_ROW(code, exp, gran) {#code, exp, gran},
static const money_currency_row money_currencies[] = {MONEY_CURRENCY_MAP(MONEY_ROW)};
#undef MONEY_ROW

/* Every row is a valid code with an exponent the parser can scale by and a
 * positive granularity (checked at compile time, row by row). */
#define MONEY_ROW_CHECK(code, exp, gran)                                                           \
    _Static_assert(sizeof #code == MONEY_CURRENCY_LEN + 1 && (exp) >= 0 &&                         \
                       (exp) <= MONEY_MAX_EXPONENT && (gran) >= 1,                                 \
                   "bad MONEY_CURRENCY_MAP row " #code);
MONEY_CURRENCY_MAP(MONEY_ROW_CHECK)
#undef MONEY_ROW_CHECK

/* 2^63: the magnitude of INT64_MIN, the largest magnitude a parse may yield. */
#define MONEY_MAG_LIMIT ((unsigned __int128)1 << 63)

/* A sign and a magnitude as int64: -2^63 .. 2^63 - 1, else MONEY_OVERFLOW. */
static money_status money_signed(bool neg, unsigned __int128 mag, int64_t *out)
{
    if (mag > (neg ? MONEY_MAG_LIMIT : (unsigned __int128)INT64_MAX))
        return MONEY_OVERFLOW;
    *out = !neg ? (int64_t)mag : mag == MONEY_MAG_LIMIT ? INT64_MIN : -(int64_t)mag;
    return MONEY_OK;
}

bool money_currency_valid(const char *cur)
{
    if (!cur)
        return false;
    for (int i = 0; i < MONEY_CURRENCY_LEN; i++)
        if (cur[i] < 'a' || cur[i] > 'z')
            return false; /* also stops at an early NUL */
    return cur[MONEY_CURRENCY_LEN] == '\0';
}

/* cur's row, or NULL for a currency with the defaults. cur must be valid. */
static const money_currency_row *money_currency_find(const char *cur)
{
    for (size_t i = 0; i < sizeof money_currencies / sizeof money_currencies[0]; i++)
        if (memcmp(cur, money_currencies[i].code, MONEY_CURRENCY_LEN + 1) == 0)
            return &money_currencies[i];
    return NULL;
}

int money_currency_exponent(const char *cur)
{
    if (!money_currency_valid(cur))
        return -1;
    const money_currency_row *r = money_currency_find(cur);
    return r ? r->exponent : MONEY_DEFAULT_EXPONENT;
}

int money_currency_granularity(const char *cur)
{
    if (!money_currency_valid(cur))
        return -1;
    const money_currency_row *r = money_currency_find(cur);
    return r ? r->granularity : MONEY_DEFAULT_GRANULARITY;
}

money_status money_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (!out)
        return MONEY_INVALID;
    if (__builtin_add_overflow(a, b, &r))
        return MONEY_OVERFLOW;
    *out = r;
    return MONEY_OK;
}

money_status money_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (!out)
        return MONEY_INVALID;
    if (__builtin_sub_overflow(a, b, &r))
        return MONEY_OVERFLOW;
    *out = r;
    return MONEY_OK;
}

/* *out = gran * round_half_up(amount * num / (den * gran)): the exact
 * quotient rounded once to a multiple of gran (1 = to the minor unit). */
static money_status money_muldiv_gran(int64_t amount, int64_t num, int64_t den, int64_t gran,
                                      int64_t *out)
{
    if (!out || den <= 0 || gran <= 0)
        return MONEY_INVALID;
    /* |amount * num| <= 2^126, so the exact product fits in 128 bits, and so
     * does den * gran (< 2^126). */
    __int128 prod = (__int128)amount * num;
    bool neg = prod < 0;
    unsigned __int128 mag = (unsigned __int128)(neg ? -prod : prod);
    unsigned __int128 d = (unsigned __int128)den * (unsigned __int128)gran;
    unsigned __int128 q = mag / d;
    unsigned __int128 r = mag % d;
    /* Rounding the magnitude makes halves go away from zero for both signs. */
    if (r >= d - r)
        q++;
    /* Any q above 2^63 overflows whatever gran is; below it, q * gran
     * (gran < 2^63) fits in 128 bits. */
    if (q > MONEY_MAG_LIMIT)
        return MONEY_OVERFLOW;
    return money_signed(neg, q * (unsigned __int128)gran, out);
}

money_status money_muldiv(int64_t amount, int64_t num, int64_t den, int64_t *out)
{
    return money_muldiv_gran(amount, num, den, 1, out);
}

money_status money_apply_bp(int64_t amount, int64_t bp, int64_t *out)
{
    return money_muldiv(amount, bp, 10000, out);
}

money_status money_hours_amount(int64_t hours_hundredths, int64_t rate, int64_t *out)
{
    return money_muldiv(hours_hundredths, rate, 100, out);
}

money_status money_prorate(int64_t fee, int64_t days, int64_t days_in_period, int64_t *out)
{
    /* A negative day count has no billing meaning; refuse rather than credit. */
    if (days < 0)
        return MONEY_INVALID;
    return money_muldiv(fee, days, days_in_period, out);
}

money_status money_muldiv_cur(int64_t amount, int64_t num, int64_t den, const char *cur,
                              int64_t *out)
{
    int gran = money_currency_granularity(cur);
    if (gran < 0)
        return MONEY_INVALID;
    return money_muldiv_gran(amount, num, den, gran, out);
}

money_status money_round_to_granularity(int64_t amount, const char *cur, int64_t *out)
{
    return money_muldiv_cur(amount, 1, 1, cur, out);
}

money_status money_apply_bp_cur(int64_t amount, int64_t bp, const char *cur, int64_t *out)
{
    return money_muldiv_cur(amount, bp, 10000, cur, out);
}

money_status money_hours_amount_cur(int64_t hours_hundredths, int64_t rate, const char *cur,
                                    int64_t *out)
{
    return money_muldiv_cur(hours_hundredths, rate, 100, cur, out);
}

money_status money_prorate_cur(int64_t fee, int64_t days, int64_t days_in_period, const char *cur,
                               int64_t *out)
{
    if (days < 0)
        return MONEY_INVALID;
    return money_muldiv_cur(fee, days, days_in_period, cur, out);
}

/* Shared grammar of amounts and hours: ['-'] digits ['.' 1..exp digits].
 * The whole text is validated before any arithmetic so that malformed input
 * is always MONEY_INVALID, even when its digits would also overflow. */
static money_status money_parse_decimal(const char *text, int exp, bool allow_neg, int64_t *out)
{
    if (!text || !out || exp < 0 || exp > MONEY_MAX_EXPONENT)
        return MONEY_INVALID;
    const char *p = text;
    bool neg = false;
    if (*p == '-') {
        if (!allow_neg)
            return MONEY_INVALID;
        neg = true;
        p++;
    }
    const char *int_start = p;
    while (*p >= '0' && *p <= '9')
        p++;
    const char *int_end = p;
    if (int_end == int_start)
        return MONEY_INVALID;
    const char *frac_start = p, *frac_end = p;
    if (*p == '.') {
        p++;
        frac_start = p;
        while (*p >= '0' && *p <= '9')
            p++;
        frac_end = p;
        long nfrac = frac_end - frac_start;
        if (nfrac < 1 || nfrac > exp)
            return MONEY_INVALID;
    }
    if (*p != '\0')
        return MONEY_INVALID;

    /* Accumulate the magnitude in 128 bits and stop as soon as it passes 2^63;
     * leading zeros keep it small, so any length of "000..." is fine. */
    unsigned __int128 mag = 0;
    for (const char *q = int_start; q < int_end; q++) {
        mag = mag * 10 + (unsigned)(*q - '0');
        if (mag > MONEY_MAG_LIMIT)
            return MONEY_OVERFLOW;
    }
    int scaled = 0;
    for (const char *q = frac_start; q < frac_end; q++, scaled++)
        mag = mag * 10 + (unsigned)(*q - '0');
    for (; scaled < exp; scaled++)
        mag *= 10;
    /* exp <= MONEY_MAX_EXPONENT (3) here, so mag < 2^63 * 1000 cannot overflow
     * 128 bits. */
    return money_signed(neg, mag, out);
}

money_status money_parse(const char *text, const char *cur, int64_t *out)
{
    int exp = money_currency_exponent(cur);
    if (exp < 0)
        return MONEY_INVALID;
    return money_parse_decimal(text, exp, true, out);
}

money_status money_parse_hours(const char *text, int64_t *out)
{
    return money_parse_decimal(text, 2, false, out);
}

int money_format(int64_t amount, const char *cur, char *buf, size_t bufsz)
{
    int exp = money_currency_exponent(cur);
    if (exp < 0 || !buf)
        return -1;
    /* Negate after +1 so INT64_MIN's magnitude is formed without overflow. */
    uint64_t mag = amount < 0 ? (uint64_t)(-(amount + 1)) + 1 : (uint64_t)amount;
    char tmp[32];
    size_t n = 0;
    /* Build the text backwards: fraction digits, '.', integer digits, sign. */
    for (int i = 0; i < exp; i++) {
        tmp[n++] = (char)('0' + mag % 10);
        mag /= 10;
    }
    if (exp > 0)
        tmp[n++] = '.';
    do {
        tmp[n++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag > 0);
    if (amount < 0)
        tmp[n++] = '-';
    if (n + 1 > bufsz) {
        if (bufsz > 0)
            buf[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return (int)n;
}
