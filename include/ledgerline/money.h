/* money.h: integer money in a currency's minor unit, never floating point.
 *
 * An amount is an int64_t count of minor units (cents for usd) plus an ISO 4217
 * currency code in lower case ("usd"). Every operation that could overflow
 * reports it instead of wrapping; every division rounds half up (away from zero
 * for the non-negative amounts billing uses; negative inputs round half away
 * from zero too, so -0.5 cent becomes -1).
 * On any status other than MONEY_OK, *out is left unchanged; a NULL out is
 * MONEY_INVALID.
 */
#ifndef LEDGERLINE_MONEY_H
#define LEDGERLINE_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MONEY_CURRENCY_LEN 3

/* Result codes shared by every money function. */
typedef enum {
    MONEY_OK = 0,
    MONEY_OVERFLOW,   /* the exact result does not fit in int64_t */
    MONEY_INVALID     /* malformed input (text, currency, zero divisor, ...) */
} money_status;

/* true when cur is three lower-case ASCII letters. */
bool money_currency_valid(const char *cur);

/* Number of decimal places of cur's minor unit: 0 for zero-decimal currencies
 * (jpy, krw, ...), 2 otherwise; -1 when cur is not money_currency_valid(). */
int money_currency_exponent(const char *cur);

/* *out = a + b, a - b; MONEY_OVERFLOW when it does not fit. */
money_status money_add(int64_t a, int64_t b, int64_t *out);
money_status money_sub(int64_t a, int64_t b, int64_t *out);

/* *out = round_half_up(amount * num / den). den must be > 0.
 * The general primitive behind proration and rates. */
money_status money_muldiv(int64_t amount, int64_t num, int64_t den, int64_t *out);

/* Tax or any basis-point rate: round_half_up(amount * bp / 10000). */
money_status money_apply_bp(int64_t amount, int64_t bp, int64_t *out);

/* Hourly line: hours are hundredths of an hour (10.25h = 1025);
 * *out = round_half_up(hundredths * rate / 100). */
money_status money_hours_amount(int64_t hours_hundredths, int64_t rate, int64_t *out);

/* Proration by days: round_half_up(fee * days / days_in_period).
 * days < 0 or days_in_period <= 0 is MONEY_INVALID. */
money_status money_prorate(int64_t fee, int64_t days, int64_t days_in_period, int64_t *out);

/* Parses a decimal amount in major units ("12.34", "-0.5", "1000") for cur into
 * minor units. More decimals than the currency has is MONEY_INVALID (no silent
 * rounding of input). */
money_status money_parse(const char *text, const char *cur, int64_t *out);

/* Formats minor units as a decimal in major units ("12.34", "-0.05", "1000" for
 * jpy). Returns the length written, or -1 when buf is too small (buf then
 * holds "" if bufsz > 0), buf is NULL or cur is invalid. */
int money_format(int64_t amount, const char *cur, char *buf, size_t bufsz);

/* Parses hours with at most two decimals ("10", "7.5", "0.25") into hundredths.
 * Same grammar as money_parse without the sign: hours are never negative. */
money_status money_parse_hours(const char *text, int64_t *out);

#endif
