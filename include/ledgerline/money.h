/* money.h: integer money in a currency's minor unit, never floating point.
 *
 * An amount is an int64_t count of minor units (cents for usd, fils for kwd)
 * plus an ISO 4217 currency code in lower case ("usd"). Every operation that
 * could overflow reports it instead of wrapping; every division rounds half
 * up (away from zero for the non-negative amounts billing uses; negative
 * inputs round half away from zero too, so -0.5 cent becomes -1).
 * On any status other than MONEY_OK, *out is left unchanged; a NULL out is
 * MONEY_INVALID.
 *
 * Currencies (MONEY_CURRENCY_MAP below, the one table of them): a currency's
 * minor unit has an exponent (decimal places: 2 unless listed) and a
 * granularity, the multiple of minor units Stripe accepts in it (1 unless
 * listed). BILLING_RULES 11.13: bhd, jod, kwd, omr and tnd have three
 * decimals and a granularity of 10, so every invoice amount in them is
 * rounded half up to a multiple of 10 minor units: the *_cur functions below
 * round once, from the exact value, to the currency's granularity. The
 * database has the same rule in sql/011_currency_granularity.sql
 * (billing.currency_exponent, billing.currency_granularity,
 * billing.round_to_granularity); tests/db/test_currency.c compares the two
 * for every currency code.
 */
#ifndef LEDGERLINE_MONEY_H
#define LEDGERLINE_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MONEY_CURRENCY_LEN 3

/* Exponent and granularity of every currency not in MONEY_CURRENCY_MAP. */
#define MONEY_DEFAULT_EXPONENT 2
#define MONEY_DEFAULT_GRANULARITY 1

/* The currencies whose minor unit differs from the default, one row each:
 * X(code, exponent, granularity). The code is the row's C token; its name
 * is #code. Expand with a macro of three parameters, e.g.
 *   #define ROW(code, exp, gran) {#code, exp, gran},
 *   static const struct { const char *code; int exp, gran; } t[] = {
 *       MONEY_CURRENCY_MAP(ROW)};
 * Adding a currency here needs the same row in
 * sql/011_currency_granularity.sql's functions (in a new migration). */
#define MONEY_CURRENCY_MAP(X)                                                                      \
    /* Stripe's zero-decimal currencies: amounts are in major units. */                            \
    X(bif, 0, 1)                                                                                   \
    X(clp, 0, 1)                                                                                   \
    X(djf, 0, 1)                                                                                   \
    X(gnf, 0, 1)                                                                                   \
    X(jpy, 0, 1)                                                                                   \
    X(kmf, 0, 1)                                                                                   \
    X(krw, 0, 1)                                                                                   \
    X(mga, 0, 1)                                                                                   \
    X(pyg, 0, 1)                                                                                   \
    X(rwf, 0, 1)                                                                                   \
    X(ugx, 0, 1)                                                                                   \
    X(vnd, 0, 1)                                                                                   \
    X(vuv, 0, 1)                                                                                   \
    X(xaf, 0, 1)                                                                                   \
    X(xof, 0, 1)                                                                                   \
    X(xpf, 0, 1)                                                                                   \
    /* Three decimals; Stripe takes only multiples of 10 (rule 11.13). */                          \
    X(bhd, 3, 10)                                                                                  \
    X(jod, 3, 10)                                                                                  \
    X(kwd, 3, 10)                                                                                  \
    X(omr, 3, 10)                                                                                  \
    X(tnd, 3, 10)

/* The largest exponent of the table (parsing relies on it: money.c checks). */
#define MONEY_MAX_EXPONENT 3

/* Result codes shared by every money function. */
typedef enum {
    MONEY_OK = 0,
    MONEY_OVERFLOW, /* the exact result does not fit in int64_t */
    MONEY_INVALID   /* malformed input (text, currency, zero divisor, ...) */
} money_status;

/* true when cur is three lower-case ASCII letters. */
bool money_currency_valid(const char *cur);

/* Number of decimal places of cur's minor unit: 0 for zero-decimal currencies
 * (jpy, krw, ...), 3 for bhd, jod, kwd, omr, tnd, 2 otherwise; -1 when cur is
 * not money_currency_valid(). */
int money_currency_exponent(const char *cur);

/* The multiple of minor units an amount in cur must be (what Stripe
 * accepts): 10 for bhd, jod, kwd, omr, tnd, 1 otherwise; -1 when cur is not
 * money_currency_valid(). */
int money_currency_granularity(const char *cur);

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

/* Rule 11.13: amount rounded half up (away from zero) to a multiple of cur's
 * granularity (kwd: 1004 -> 1000, 1005 -> 1010; usd, jpy: unchanged).
 * MONEY_INVALID for an invalid currency, MONEY_OVERFLOW when the multiple
 * does not fit (near INT64_MAX). */
money_status money_round_to_granularity(int64_t amount, const char *cur, int64_t *out);

/* The invoice amounts of rule 11.13: as money_muldiv, money_apply_bp,
 * money_hours_amount and money_prorate, but the exact quotient is rounded
 * half up once, to a multiple of cur's granularity (never first to the
 * minor unit: kwd 1004.5 -> 1000, not 1005 -> 1010). Equal to the plain
 * functions for a currency of granularity 1. MONEY_INVALID also for an
 * invalid currency. */
money_status money_muldiv_cur(int64_t amount, int64_t num, int64_t den, const char *cur,
                              int64_t *out);
money_status money_apply_bp_cur(int64_t amount, int64_t bp, const char *cur, int64_t *out);
money_status money_hours_amount_cur(int64_t hours_hundredths, int64_t rate, const char *cur,
                                    int64_t *out);
money_status money_prorate_cur(int64_t fee, int64_t days, int64_t days_in_period, const char *cur,
                               int64_t *out);

/* Parses a decimal amount in major units ("12.34", "-0.5", "1000" for jpy,
 * "150.125" for kwd) for cur into minor units. More decimals than the
 * currency has is MONEY_INVALID (no silent rounding of input). The
 * granularity is not checked: parsing reads what is written (a kwd rate may
 * be 150.125); the amounts computed from it are rounded. */
money_status money_parse(const char *text, const char *cur, int64_t *out);

/* Formats minor units as a decimal in major units with exactly the
 * currency's decimals ("12.34", "-0.05", "1000" for jpy, "150.000" for kwd).
 * Returns the length written, or -1 when buf is too small (buf then holds ""
 * if bufsz > 0), buf is NULL or cur is invalid. billing.format_amount
 * (sql/011) writes the same text in SQL (invoice line descriptions). */
int money_format(int64_t amount, const char *cur, char *buf, size_t bufsz);

/* Parses hours with at most two decimals ("10", "7.5", "0.25") into hundredths.
 * Same grammar as money_parse without the sign: hours are never negative. */
money_status money_parse_hours(const char *text, int64_t *out);

#endif
