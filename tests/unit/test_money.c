/* test_money.c: unit tests of money.h (rounding, rates, overflow, parsing,
 * formatting, currencies, and rule 11.13's granularity of three-decimal
 * currencies). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ledgerline/money.h"

/* Any failing call must leave *out alone; this value proves it did. */
#define SENTINEL ((int64_t)0x5a5a5a5a)

static void expect_muldiv(int64_t a, int64_t n, int64_t d, int64_t want)
{
    int64_t out = SENTINEL;
    assert_int_equal(money_muldiv(a, n, d, &out), MONEY_OK);
    assert_int_equal(out, want);
}

static void expect_muldiv_fail(int64_t a, int64_t n, int64_t d, money_status st)
{
    int64_t out = SENTINEL;
    assert_int_equal(money_muldiv(a, n, d, &out), st);
    assert_int_equal(out, SENTINEL);
}

static void test_money_currency_valid(void **state)
{
    (void)state;
    assert_true(money_currency_valid("usd"));
    assert_true(money_currency_valid("jpy"));
    assert_true(money_currency_valid("eur"));
    assert_false(money_currency_valid(NULL));
    assert_false(money_currency_valid(""));
    assert_false(money_currency_valid("us"));
    assert_false(money_currency_valid("usdx"));
    assert_false(money_currency_valid("USD"));
    assert_false(money_currency_valid("Usd"));
    assert_false(money_currency_valid("us1"));
    assert_false(money_currency_valid("u d"));
    assert_false(money_currency_valid("us\xe9"));
}

static void test_money_currency_exponent(void **state)
{
    (void)state;
    static const char *const zero[] = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
                                       "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        assert_int_equal(money_currency_exponent(zero[i]), 0);
    /* Rule 11.13: three decimals. */
    static const char *const three[] = {"bhd", "jod", "kwd", "omr", "tnd"};
    for (size_t i = 0; i < sizeof three / sizeof three[0]; i++)
        assert_int_equal(money_currency_exponent(three[i]), 3);
    assert_int_equal(money_currency_exponent("usd"), 2);
    assert_int_equal(money_currency_exponent("eur"), 2);
    assert_int_equal(money_currency_exponent("aed"), 2);
    assert_int_equal(money_currency_exponent("iqd"), 2);
    assert_int_equal(money_currency_exponent("gbp"), 2);
    assert_int_equal(money_currency_exponent("xag"), 2);
    assert_int_equal(money_currency_exponent("JPY"), -1);
    assert_int_equal(money_currency_exponent("jp"), -1);
    assert_int_equal(money_currency_exponent(""), -1);
    assert_int_equal(money_currency_exponent(NULL), -1);
}

static void test_money_currency_granularity(void **state)
{
    (void)state;
    static const char *const three[] = {"bhd", "jod", "kwd", "omr", "tnd"};
    for (size_t i = 0; i < sizeof three / sizeof three[0]; i++)
        assert_int_equal(money_currency_granularity(three[i]), 10);
    assert_int_equal(money_currency_granularity("usd"), 1);
    assert_int_equal(money_currency_granularity("eur"), 1);
    assert_int_equal(money_currency_granularity("jpy"), 1);
    assert_int_equal(money_currency_granularity("krw"), 1);
    assert_int_equal(money_currency_granularity("KWD"), -1);
    assert_int_equal(money_currency_granularity("kw"), -1);
    assert_int_equal(money_currency_granularity("kwdx"), -1);
    assert_int_equal(money_currency_granularity(""), -1);
    assert_int_equal(money_currency_granularity(NULL), -1);
}

/* The functions answer exactly what MONEY_CURRENCY_MAP says, row by row, and
 * the defaults for every other code (all 26^3 of them). */
#define TEST_ROW(code, exp, gran) {#code, exp, gran},
static const struct {
    const char *code;
    int exp, gran;
} test_table[] = {MONEY_CURRENCY_MAP(TEST_ROW)};
#undef TEST_ROW

static void test_money_currency_table(void **state)
{
    (void)state;
    size_t n = sizeof test_table / sizeof test_table[0];
    assert_int_equal(n, 21); /* 16 zero-decimal + 5 three-decimal */
    size_t listed = 0;
    char cur[4] = {0};
    for (cur[0] = 'a'; cur[0] <= 'z'; cur[0]++)
        for (cur[1] = 'a'; cur[1] <= 'z'; cur[1]++)
            for (cur[2] = 'a'; cur[2] <= 'z'; cur[2]++) {
                int exp = MONEY_DEFAULT_EXPONENT, gran = MONEY_DEFAULT_GRANULARITY;
                for (size_t i = 0; i < n; i++)
                    if (strcmp(cur, test_table[i].code) == 0) {
                        exp = test_table[i].exp;
                        gran = test_table[i].gran;
                        listed++;
                    }
                assert_int_equal(money_currency_exponent(cur), exp);
                assert_int_equal(money_currency_granularity(cur), gran);
            }
    assert_int_equal(listed, n); /* every row is a valid code, listed once */
}

static void test_money_add_sub(void **state)
{
    (void)state;
    int64_t out = SENTINEL;
    assert_int_equal(money_add(1999, 1, &out), MONEY_OK);
    assert_int_equal(out, 2000);
    assert_int_equal(money_add(-5, 3, &out), MONEY_OK);
    assert_int_equal(out, -2);
    assert_int_equal(money_add(INT64_MAX, 0, &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX);
    assert_int_equal(money_add(INT64_MAX, INT64_MIN, &out), MONEY_OK);
    assert_int_equal(out, -1);
    assert_int_equal(money_add(INT64_MIN, 0, &out), MONEY_OK);
    assert_int_equal(out, INT64_MIN);
    assert_int_equal(money_sub(2000, 1, &out), MONEY_OK);
    assert_int_equal(out, 1999);
    assert_int_equal(money_sub(-1, INT64_MIN, &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX);
    assert_int_equal(money_sub(INT64_MIN + 1, 1, &out), MONEY_OK);
    assert_int_equal(out, INT64_MIN);

    out = SENTINEL;
    assert_int_equal(money_add(INT64_MAX, 1, &out), MONEY_OVERFLOW);
    assert_int_equal(money_add(1, INT64_MAX, &out), MONEY_OVERFLOW);
    assert_int_equal(money_add(INT64_MAX, INT64_MAX, &out), MONEY_OVERFLOW);
    assert_int_equal(money_add(INT64_MIN, -1, &out), MONEY_OVERFLOW);
    assert_int_equal(money_add(INT64_MIN, INT64_MIN, &out), MONEY_OVERFLOW);
    assert_int_equal(money_sub(INT64_MIN, 1, &out), MONEY_OVERFLOW);
    assert_int_equal(money_sub(0, INT64_MIN, &out), MONEY_OVERFLOW);
    assert_int_equal(money_sub(INT64_MAX, -1, &out), MONEY_OVERFLOW);
    assert_int_equal(money_sub(INT64_MAX, INT64_MIN, &out), MONEY_OVERFLOW);
    assert_int_equal(out, SENTINEL);
    assert_int_equal(money_add(1, 1, NULL), MONEY_INVALID);
    assert_int_equal(money_sub(1, 1, NULL), MONEY_INVALID);
}

static void test_money_muldiv_rounding(void **state)
{
    (void)state;
    /* Exactly .5 rounds up, just below stays, just above rounds up. */
    expect_muldiv(1, 1, 2, 1);
    expect_muldiv(5, 1, 10, 1);
    expect_muldiv(4, 1, 10, 0);
    expect_muldiv(6, 1, 10, 1);
    expect_muldiv(149, 1, 100, 1);
    expect_muldiv(150, 1, 100, 2);
    expect_muldiv(151, 1, 100, 2);
    expect_muldiv(1, 499999, 1000000, 0);
    expect_muldiv(1, 500000, 1000000, 1);
    expect_muldiv(1, 500001, 1000000, 1);
    expect_muldiv(1, 1, 3, 0);
    expect_muldiv(2, 1, 3, 1);
    expect_muldiv(3, 1, 2, 2);
    expect_muldiv(7, 1, 2, 4);
    /* Negative values: half away from zero. */
    expect_muldiv(-1, 1, 2, -1);
    expect_muldiv(1, -1, 2, -1);
    expect_muldiv(-149, 1, 100, -1);
    expect_muldiv(-150, 1, 100, -2);
    expect_muldiv(-151, 1, 100, -2);
    expect_muldiv(-4, 1, 10, 0);
    expect_muldiv(-1, -1, 2, 1);
    /* Exact results and identities. */
    expect_muldiv(0, 12345, 7, 0);
    expect_muldiv(12345, 0, 7, 0);
    expect_muldiv(100, 3, 3, 100);
    expect_muldiv(1, 1, INT64_MAX, 0);
    expect_muldiv(INT64_MAX, 1, INT64_MAX, 1);
    expect_muldiv(INT64_MAX / 2 + 1, 1, INT64_MAX, 1); /* just above half */
    expect_muldiv(INT64_MAX / 2, 1, INT64_MAX, 0);     /* just below half */
}

static void test_money_muldiv_limits(void **state)
{
    (void)state;
    /* Intermediates far beyond int64 are fine when the result fits. */
    expect_muldiv(INT64_MAX, 2, 2, INT64_MAX);
    expect_muldiv(INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX);
    expect_muldiv(INT64_MIN, INT64_MAX, INT64_MAX, INT64_MIN);
    expect_muldiv(INT64_MIN, 1, 1, INT64_MIN);
    expect_muldiv(INT64_MIN, -1, 2, (int64_t)1 << 62);
    expect_muldiv(INT64_MIN, 2, 4, INT64_MIN / 2);
    expect_muldiv(INT64_MIN + 1, -1, 1, INT64_MAX);
}

static void test_money_muldiv_overflow(void **state)
{
    (void)state;
    expect_muldiv_fail(INT64_MAX, 3, 2, MONEY_OVERFLOW);
    expect_muldiv_fail(INT64_MAX, INT64_MAX, 1, MONEY_OVERFLOW);
    expect_muldiv_fail(INT64_MIN, -1, 1, MONEY_OVERFLOW);
    expect_muldiv_fail(INT64_MIN, INT64_MIN, 1, MONEY_OVERFLOW);
    expect_muldiv_fail(INT64_MIN, INT64_MIN, INT64_MAX, MONEY_OVERFLOW);
    expect_muldiv_fail(INT64_MIN, 3, 2, MONEY_OVERFLOW);
    /* (2^64-1)/2 = INT64_MAX + 0.5: only the rounding overflows. */
    expect_muldiv_fail(6148914691236517205, 3, 2, MONEY_OVERFLOW);
    expect_muldiv(6148914691236517204, 3, 2, INT64_MAX - 1);
    /* -(INT64_MAX + 0.5) rounds away from zero onto INT64_MIN, which fits. */
    expect_muldiv(-6148914691236517205, 3, 2, INT64_MIN);
    /* Invalid divisors and output. */
    expect_muldiv_fail(1, 1, 0, MONEY_INVALID);
    expect_muldiv_fail(1, 1, -1, MONEY_INVALID);
    expect_muldiv_fail(1, 1, INT64_MIN, MONEY_INVALID);
    assert_int_equal(money_muldiv(1, 1, 1, NULL), MONEY_INVALID);
}

static void test_money_apply_bp(void **state)
{
    (void)state;
    int64_t out = SENTINEL;
    /* 8.25% of $19.99 = 164.9175 cents. */
    assert_int_equal(money_apply_bp(1999, 825, &out), MONEY_OK);
    assert_int_equal(out, 165);
    assert_int_equal(money_apply_bp(-1999, 825, &out), MONEY_OK);
    assert_int_equal(out, -165);
    assert_int_equal(money_apply_bp(10000, 825, &out), MONEY_OK);
    assert_int_equal(out, 825);
    assert_int_equal(money_apply_bp(1999, 0, &out), MONEY_OK);
    assert_int_equal(out, 0);
    assert_int_equal(money_apply_bp(1999, 10000, &out), MONEY_OK);
    assert_int_equal(out, 1999);
    /* 0.5 cent boundaries. */
    assert_int_equal(money_apply_bp(100, 50, &out), MONEY_OK);
    assert_int_equal(out, 1);
    assert_int_equal(money_apply_bp(100, 49, &out), MONEY_OK);
    assert_int_equal(out, 0);
    assert_int_equal(money_apply_bp(100, 51, &out), MONEY_OK);
    assert_int_equal(out, 1);
    assert_int_equal(money_apply_bp(5000, 1, &out), MONEY_OK);
    assert_int_equal(out, 1);
    assert_int_equal(money_apply_bp(4999, 1, &out), MONEY_OK);
    assert_int_equal(out, 0);
    assert_int_equal(money_apply_bp(5001, 1, &out), MONEY_OK);
    assert_int_equal(out, 1);
    assert_int_equal(money_apply_bp(15000, 1, &out), MONEY_OK); /* 1.5 -> 2 */
    assert_int_equal(out, 2);
    assert_int_equal(money_apply_bp(INT64_MAX, 10000, &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX);
    assert_int_equal(money_apply_bp(INT64_MIN, 10000, &out), MONEY_OK);
    assert_int_equal(out, INT64_MIN);
    assert_int_equal(money_apply_bp(INT64_MAX, 5000, &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX / 2 + 1); /* 4611686018427387903.5 */

    out = SENTINEL;
    assert_int_equal(money_apply_bp(INT64_MAX, 10001, &out), MONEY_OVERFLOW);
    assert_int_equal(money_apply_bp(INT64_MIN, -10000, &out), MONEY_OVERFLOW);
    assert_int_equal(money_apply_bp(INT64_MIN, 10001, &out), MONEY_OVERFLOW);
    assert_int_equal(money_apply_bp(INT64_MAX, INT64_MAX, &out), MONEY_OVERFLOW);
    assert_int_equal(out, SENTINEL);
    assert_int_equal(money_apply_bp(1, 1, NULL), MONEY_INVALID);
}

static void test_money_hours_amount(void **state)
{
    (void)state;
    int64_t out = SENTINEL;
    assert_int_equal(money_hours_amount(1000, 15000, &out), MONEY_OK); /* 10h @ 150.00 */
    assert_int_equal(out, 150000);
    assert_int_equal(money_hours_amount(1025, 15000, &out), MONEY_OK); /* 10.25h */
    assert_int_equal(out, 153750);
    assert_int_equal(money_hours_amount(1, 1, &out), MONEY_OK); /* 0.01h @ 1 cent */
    assert_int_equal(out, 0);
    assert_int_equal(money_hours_amount(49, 1, &out), MONEY_OK);
    assert_int_equal(out, 0);
    assert_int_equal(money_hours_amount(50, 1, &out), MONEY_OK);
    assert_int_equal(out, 1);
    assert_int_equal(money_hours_amount(51, 1, &out), MONEY_OK);
    assert_int_equal(out, 1);
    assert_int_equal(money_hours_amount(150, 1, &out), MONEY_OK);
    assert_int_equal(out, 2);
    assert_int_equal(money_hours_amount(100, 1, &out), MONEY_OK);
    assert_int_equal(out, 1);
    assert_int_equal(money_hours_amount(750, 12345, &out), MONEY_OK); /* 92587.5 */
    assert_int_equal(out, 92588);
    assert_int_equal(money_hours_amount(25, 333, &out), MONEY_OK); /* 83.25 */
    assert_int_equal(out, 83);
    assert_int_equal(money_hours_amount(0, 15000, &out), MONEY_OK);
    assert_int_equal(out, 0);
    assert_int_equal(money_hours_amount(INT64_MAX, 100, &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX);
    assert_int_equal(money_hours_amount(100, INT64_MAX, &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX);

    out = SENTINEL;
    assert_int_equal(money_hours_amount(INT64_MAX, 101, &out), MONEY_OVERFLOW);
    assert_int_equal(money_hours_amount(101, INT64_MAX, &out), MONEY_OVERFLOW);
    assert_int_equal(money_hours_amount(INT64_MAX, INT64_MAX, &out), MONEY_OVERFLOW);
    assert_int_equal(money_hours_amount(INT64_MIN, 101, &out), MONEY_OVERFLOW);
    assert_int_equal(out, SENTINEL);
    assert_int_equal(money_hours_amount(1, 1, NULL), MONEY_INVALID);
}

static void test_money_prorate(void **state)
{
    (void)state;
    int64_t out = SENTINEL;
    assert_int_equal(money_prorate(100000, 10, 31, &out), MONEY_OK); /* 32258.06 */
    assert_int_equal(out, 32258);
    assert_int_equal(money_prorate(100000, 22, 31, &out), MONEY_OK); /* 70967.74 */
    assert_int_equal(out, 70968);
    assert_int_equal(money_prorate(100000, 31, 31, &out), MONEY_OK);
    assert_int_equal(out, 100000);
    assert_int_equal(money_prorate(100000, 0, 31, &out), MONEY_OK);
    assert_int_equal(out, 0);
    assert_int_equal(money_prorate(1, 1, 2, &out), MONEY_OK); /* 0.5 */
    assert_int_equal(out, 1);
    assert_int_equal(money_prorate(3, 1, 2, &out), MONEY_OK); /* 1.5 */
    assert_int_equal(out, 2);
    assert_int_equal(money_prorate(1, 1, 3, &out), MONEY_OK);
    assert_int_equal(out, 0);
    assert_int_equal(money_prorate(INT64_MAX, 1, 1, &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX);
    assert_int_equal(money_prorate(INT64_MAX, 365, 366, &out), MONEY_OK);
    assert_int_equal(out, 9198171566808724507); /* (2^63-1)*365/366 rounded */

    out = SENTINEL;
    assert_int_equal(money_prorate(INT64_MAX, 2, 1, &out), MONEY_OVERFLOW);
    assert_int_equal(money_prorate(100000, 1, 0, &out), MONEY_INVALID);
    assert_int_equal(money_prorate(100000, 1, -31, &out), MONEY_INVALID);
    assert_int_equal(money_prorate(100000, -1, 31, &out), MONEY_INVALID);
    assert_int_equal(out, SENTINEL);
    assert_int_equal(money_prorate(1, 1, 1, NULL), MONEY_INVALID);
}

static void expect_round(int64_t amount, const char *cur, int64_t want)
{
    int64_t out = SENTINEL;
    assert_int_equal(money_round_to_granularity(amount, cur, &out), MONEY_OK);
    assert_int_equal(out, want);
}

static void expect_round_fail(int64_t amount, const char *cur, money_status st)
{
    int64_t out = SENTINEL;
    assert_int_equal(money_round_to_granularity(amount, cur, &out), st);
    assert_int_equal(out, SENTINEL);
}

static void test_money_round_to_granularity(void **state)
{
    (void)state;
    /* kwd: half up to a multiple of 10 minor units. */
    expect_round(1000, "kwd", 1000);
    expect_round(1001, "kwd", 1000);
    expect_round(1004, "kwd", 1000);
    expect_round(1005, "kwd", 1010);
    expect_round(1009, "kwd", 1010);
    expect_round(0, "kwd", 0);
    expect_round(4, "kwd", 0);
    expect_round(5, "kwd", 10);
    expect_round(-4, "kwd", 0);
    expect_round(-5, "kwd", -10); /* away from zero, as money_muldiv */
    expect_round(-1005, "kwd", -1010);
    expect_round(-1004, "kwd", -1000);
    for (int64_t v = -50; v <= 50; v++) {
        int64_t want = v >= 0 ? (v + 5) / 10 * 10 : -((-v + 5) / 10 * 10);
        expect_round(v, "bhd", want);
        expect_round(v, "jod", want);
        expect_round(v, "omr", want);
        expect_round(v, "tnd", want);
        /* Granularity 1: unchanged. */
        expect_round(v, "usd", v);
        expect_round(v, "jpy", v);
        expect_round(v, "eur", v);
    }
    expect_round(INT64_MAX, "usd", INT64_MAX);
    expect_round(INT64_MIN, "jpy", INT64_MIN);
    expect_round(INT64_MAX - 7, "kwd", INT64_MAX - 7);       /* ...800 */
    expect_round(INT64_MAX - 3, "kwd", INT64_MAX - 7);       /* ...804 */
    expect_round(INT64_MIN + 8, "kwd", INT64_MIN + 8);       /* -...800 */
    expect_round(INT64_MIN + 4, "kwd", INT64_MIN + 8);       /* -...804 */
    expect_round_fail(INT64_MAX, "kwd", MONEY_OVERFLOW);     /* ...807 -> ...810 */
    expect_round_fail(INT64_MAX - 2, "kwd", MONEY_OVERFLOW); /* ...805 -> ...810 */
    expect_round_fail(INT64_MIN, "kwd", MONEY_OVERFLOW);     /* -...808 -> -...810 */
    expect_round_fail(1005, "KWD", MONEY_INVALID);
    expect_round_fail(1005, NULL, MONEY_INVALID);
    assert_int_equal(money_round_to_granularity(1005, "kwd", NULL), MONEY_INVALID);
}

/* The invoice amounts: one rounding of the exact value to the granularity. */
static void test_money_amounts_cur(void **state)
{
    (void)state;
    int64_t out = SENTINEL;
    /* Hourly: 1.50h x 1003 = 1504.5 -> 1500 (rounding first to the fils would
     * give 1505 -> 1510). */
    assert_int_equal(money_hours_amount_cur(150, 1003, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 1500);
    assert_int_equal(money_hours_amount_cur(150, 1007, "kwd", &out), MONEY_OK); /* 1510.5 */
    assert_int_equal(out, 1510);
    assert_int_equal(money_hours_amount_cur(100, 1005, "kwd", &out), MONEY_OK); /* 1005 */
    assert_int_equal(out, 1010);
    assert_int_equal(money_hours_amount_cur(1000, 150000, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 1500000);
    assert_int_equal(money_hours_amount_cur(150, 1003, "usd", &out), MONEY_OK);
    assert_int_equal(out, 1505);
    assert_int_equal(money_hours_amount_cur(150, 1003, "jpy", &out), MONEY_OK);
    assert_int_equal(out, 1505);
    /* Proration: 100000 x 23/30 = 76666.67 -> 76670; 2009 x 1/2 = 1004.5 -> 1000. */
    assert_int_equal(money_prorate_cur(100000, 23, 30, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 76670);
    assert_int_equal(money_prorate_cur(2009, 1, 2, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 1000);
    assert_int_equal(money_prorate_cur(2010, 1, 2, "kwd", &out), MONEY_OK); /* 1005 */
    assert_int_equal(out, 1010);
    assert_int_equal(money_prorate_cur(100000, 23, 30, "usd", &out), MONEY_OK);
    assert_int_equal(out, 76667);
    assert_int_equal(money_prorate_cur(100000, 30, 30, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 100000);
    assert_int_equal(money_prorate_cur(100005, 30, 30, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 100010);
    /* Tax: 100010 x 8.25% = 8250.825 -> 8250; 10045 x 10% = 1004.5 -> 1000. */
    assert_int_equal(money_apply_bp_cur(100010, 825, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 8250);
    assert_int_equal(money_apply_bp_cur(10045, 1000, "kwd", &out), MONEY_OK);
    assert_int_equal(out, 1000);
    assert_int_equal(money_apply_bp_cur(10050, 1000, "kwd", &out), MONEY_OK); /* 1005 */
    assert_int_equal(out, 1010);
    assert_int_equal(money_apply_bp_cur(100010, 825, "usd", &out), MONEY_OK);
    assert_int_equal(out, 8251);
    assert_int_equal(money_muldiv_cur(7, 3, 2, "omr", &out), MONEY_OK); /* 10.5 -> 10 */
    assert_int_equal(out, 10);
    assert_int_equal(money_muldiv_cur(-7, 3, 2, "omr", &out), MONEY_OK);
    assert_int_equal(out, -10);
    /* Granularity 1: the same as the plain functions, everywhere. */
    for (int64_t a = -300; a <= 300; a += 7)
        for (int64_t n = 0; n <= 40; n += 3) {
            int64_t plain = SENTINEL, cur = SENTINEL;
            assert_int_equal(money_muldiv(a, n, 31, &plain), MONEY_OK);
            assert_int_equal(money_muldiv_cur(a, n, 31, "usd", &cur), MONEY_OK);
            assert_int_equal(cur, plain);
            assert_int_equal(money_muldiv_cur(a, n, 31, "jpy", &cur), MONEY_OK);
            assert_int_equal(cur, plain);
            /* Granularity 10: the exact a*n/31 rounded half up to a multiple
             * of 10, i.e. round_half_up(a*n/310) * 10. */
            assert_int_equal(money_muldiv(a, n, 310, &plain), MONEY_OK);
            assert_int_equal(money_muldiv_cur(a, n, 31, "kwd", &cur), MONEY_OK);
            assert_int_equal(cur, plain * 10);
        }
    /* Limits and refusals; out untouched on failure. */
    assert_int_equal(money_muldiv_cur(INT64_MAX, INT64_MAX, INT64_MAX, "kwd", &out),
                     MONEY_OVERFLOW);
    assert_int_equal(money_muldiv_cur(INT64_MAX - 7, 1, 1, "kwd", &out), MONEY_OK);
    assert_int_equal(out, INT64_MAX - 7);
    out = SENTINEL;
    assert_int_equal(money_muldiv_cur(INT64_MAX, 1, 1, "kwd", &out), MONEY_OVERFLOW);
    assert_int_equal(money_muldiv_cur(INT64_MAX, INT64_MAX, 1, "kwd", &out), MONEY_OVERFLOW);
    assert_int_equal(money_muldiv_cur(1, 1, 0, "kwd", &out), MONEY_INVALID);
    assert_int_equal(money_muldiv_cur(1, 1, 1, "Kwd", &out), MONEY_INVALID);
    assert_int_equal(money_prorate_cur(100, -1, 30, "kwd", &out), MONEY_INVALID);
    assert_int_equal(money_prorate_cur(100, 1, 0, "kwd", &out), MONEY_INVALID);
    assert_int_equal(money_apply_bp_cur(100, 1, NULL, &out), MONEY_INVALID);
    assert_int_equal(money_hours_amount_cur(100, 1, "", &out), MONEY_INVALID);
    assert_int_equal(out, SENTINEL);
    assert_int_equal(money_hours_amount_cur(100, 1, "kwd", NULL), MONEY_INVALID);
}

static void expect_parse(const char *text, const char *cur, int64_t want)
{
    int64_t out = SENTINEL;
    assert_int_equal(money_parse(text, cur, &out), MONEY_OK);
    assert_int_equal(out, want);
}

static void expect_parse_fail(const char *text, const char *cur, money_status st)
{
    int64_t out = SENTINEL;
    assert_int_equal(money_parse(text, cur, &out), st);
    assert_int_equal(out, SENTINEL);
}

static void test_money_parse_ok(void **state)
{
    (void)state;
    expect_parse("12.34", "usd", 1234);
    expect_parse("12.3", "usd", 1230);
    expect_parse("12", "usd", 1200);
    expect_parse("0", "usd", 0);
    expect_parse("0.00", "usd", 0);
    expect_parse("-0", "usd", 0);
    expect_parse("-0.00", "usd", 0);
    expect_parse("0.01", "usd", 1);
    expect_parse("0.1", "usd", 10);
    expect_parse("-0.5", "usd", -50);
    expect_parse("-0.05", "usd", -5);
    expect_parse("-12.34", "usd", -1234);
    expect_parse("1000", "usd", 100000);
    expect_parse("007.10", "usd", 710);
    expect_parse("0000000000000000000000000000000000000001.00", "usd", 100);
    expect_parse("92233720368547758.07", "usd", INT64_MAX);
    expect_parse("-92233720368547758.08", "usd", INT64_MIN);
    expect_parse("1000", "jpy", 1000);
    expect_parse("-5", "jpy", -5);
    expect_parse("0", "krw", 0);
    expect_parse("9223372036854775807", "jpy", INT64_MAX);
    expect_parse("-9223372036854775808", "jpy", INT64_MIN);
    /* Three decimals (rule 11.13); the granularity is not a parse rule. */
    expect_parse("150.000", "kwd", 150000);
    expect_parse("150.125", "kwd", 150125);
    expect_parse("150.5", "kwd", 150500);
    expect_parse("150.25", "bhd", 150250);
    expect_parse("150", "jod", 150000);
    expect_parse("0.001", "omr", 1);
    expect_parse("-0.005", "tnd", -5);
    expect_parse("9223372036854775.807", "kwd", INT64_MAX);
    expect_parse("-9223372036854775.808", "kwd", INT64_MIN);
}

static void test_money_parse_overflow(void **state)
{
    (void)state;
    expect_parse_fail("92233720368547758.08", "usd", MONEY_OVERFLOW);
    expect_parse_fail("-92233720368547758.09", "usd", MONEY_OVERFLOW);
    expect_parse_fail("92233720368547759", "usd", MONEY_OVERFLOW);
    expect_parse_fail("9223372036854775808", "usd", MONEY_OVERFLOW);
    expect_parse_fail("9223372036854775808", "jpy", MONEY_OVERFLOW);
    expect_parse_fail("-9223372036854775809", "jpy", MONEY_OVERFLOW);
    expect_parse_fail("9223372036854775.808", "kwd", MONEY_OVERFLOW);
    expect_parse_fail("-9223372036854775.809", "kwd", MONEY_OVERFLOW);
    expect_parse_fail("9223372036854776", "kwd", MONEY_OVERFLOW);
    expect_parse_fail("99999999999999999999999999999999999999999999999999.999", "kwd",
                      MONEY_OVERFLOW);
    expect_parse_fail("18446744073709551616", "jpy", MONEY_OVERFLOW); /* 2^64 */
    expect_parse_fail("99999999999999999999999999999999999999999999999999", "usd", MONEY_OVERFLOW);
    expect_parse_fail("-99999999999999999999999999999999999999999999999999.99", "usd",
                      MONEY_OVERFLOW);
}

static void test_money_parse_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",     "-",     ".",     "-.",       ".5",    "-.5",  "5.",  "-5.",   "1.234",  "0.001",
        "1..2", "1.2.3", " 1",    "1 ",       "1. 5",  "- 1",  "+1",  "+1.00", "--1",    "-+1",
        "1-",   "1,000", "1,00",  "1e3",      "1E3",   "0x10", "abc", "12.3a", "a12.3",  "\t1",
        "1\n",  "1.0\n", "1_000", "\xd9\xa1", "12.-3", "NaN",  "inf", "1.2e2", "$12.34", "12.34usd",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t out = SENTINEL;
        if (money_parse(bad[i], "usd", &out) != MONEY_INVALID || out != SENTINEL)
            fail_msg("accepted malformed amount \"%s\"", bad[i]);
    }
    /* Syntax is checked before magnitude. */
    expect_parse_fail("99999999999999999999.999", "usd", MONEY_INVALID);
    expect_parse_fail("99999999999999999999 ", "usd", MONEY_INVALID);
    /* Zero-decimal currencies take no '.' at all. */
    expect_parse_fail("1.0", "jpy", MONEY_INVALID);
    expect_parse_fail("1.", "jpy", MONEY_INVALID);
    expect_parse_fail("1.5", "krw", MONEY_INVALID);
    expect_parse_fail("0.00", "xof", MONEY_INVALID);
    expect_parse_fail("-1.0", "clp", MONEY_INVALID);
    /* Three-decimal currencies take at most three. */
    expect_parse_fail("1.2345", "kwd", MONEY_INVALID);
    expect_parse_fail("0.0001", "bhd", MONEY_INVALID);
    expect_parse_fail("1.", "kwd", MONEY_INVALID);
    expect_parse_fail("1.234", "usd", MONEY_INVALID);
    /* Bad currency or pointers. */
    expect_parse_fail("1.00", "USD", MONEY_INVALID);
    expect_parse_fail("1.00", "us", MONEY_INVALID);
    expect_parse_fail("1.00", "", MONEY_INVALID);
    expect_parse_fail("1.00", NULL, MONEY_INVALID);
    expect_parse_fail(NULL, "usd", MONEY_INVALID);
    assert_int_equal(money_parse("1.00", "usd", NULL), MONEY_INVALID);
}

static void expect_format(int64_t amount, const char *cur, const char *want)
{
    char buf[64];
    memset(buf, 'x', sizeof buf);
    int n = money_format(amount, cur, buf, sizeof buf);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_money_format(void **state)
{
    (void)state;
    expect_format(1234, "usd", "12.34");
    expect_format(0, "usd", "0.00");
    expect_format(5, "usd", "0.05");
    expect_format(50, "usd", "0.50");
    expect_format(-5, "usd", "-0.05");
    expect_format(-50, "usd", "-0.50");
    expect_format(100, "usd", "1.00");
    expect_format(-100, "usd", "-1.00");
    expect_format(-1234, "eur", "-12.34");
    expect_format(100000, "usd", "1000.00");
    expect_format(INT64_MAX, "usd", "92233720368547758.07");
    expect_format(INT64_MIN, "usd", "-92233720368547758.08");
    expect_format(1000, "jpy", "1000");
    expect_format(-1, "jpy", "-1");
    expect_format(0, "jpy", "0");
    expect_format(7, "vnd", "7");
    expect_format(INT64_MAX, "krw", "9223372036854775807");
    expect_format(INT64_MIN, "jpy", "-9223372036854775808");
    /* Three decimals (rule 11.13): 150.000 kwd, not 1500.00. */
    expect_format(150000, "kwd", "150.000");
    expect_format(1234, "bhd", "1.234");
    expect_format(1234, "jod", "1.234");
    expect_format(1234, "omr", "1.234");
    expect_format(1234, "tnd", "1.234");
    expect_format(1, "kwd", "0.001");
    expect_format(10, "kwd", "0.010");
    expect_format(0, "kwd", "0.000");
    expect_format(-5, "kwd", "-0.005");
    expect_format(-1000, "kwd", "-1.000");
    expect_format(INT64_MAX, "kwd", "9223372036854775.807");
    expect_format(INT64_MIN, "kwd", "-9223372036854775.808");
    expect_format(150000, "usd", "1500.00");
    expect_format(150000, "jpy", "150000");
}

static void test_money_format_buffer(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(money_format(1234, "usd", buf, 6), 5); /* exactly fits */
    assert_string_equal(buf, "12.34");
    memset(buf, 'x', sizeof buf);
    assert_int_equal(money_format(1234, "usd", buf, 5), -1); /* no room for NUL */
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[5], 'x');
    assert_int_equal(money_format(-1234, "usd", buf, 6), -1);
    assert_int_equal(money_format(-1234, "usd", buf, 7), 6);
    assert_string_equal(buf, "-12.34");
    assert_int_equal(money_format(0, "jpy", buf, 2), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(money_format(0, "jpy", buf, 1), -1);
    memset(buf, 'x', sizeof buf);
    assert_int_equal(money_format(0, "jpy", buf, 0), -1);
    assert_int_equal(buf[0], 'x'); /* bufsz 0: nothing written */
    assert_int_equal(money_format(1, "usd", NULL, 8), -1);
    assert_int_equal(money_format(1, "USD", buf, sizeof buf), -1);
    assert_int_equal(money_format(1, NULL, buf, sizeof buf), -1);
    char big[32];
    assert_int_equal(money_format(INT64_MIN, "usd", big, 22), 21);
    assert_int_equal(money_format(INT64_MIN, "usd", big, 21), -1);
}

static void test_money_roundtrip(void **state)
{
    (void)state;
    static const char *const curs[] = {"usd", "jpy", "eur", "krw", "kwd", "bhd", "tnd"};
    static const int64_t edges[] = {
        0,    1,    -1,        9,         10,        99,        100,           101,          -99,
        -100, -101, 123456789, -98765432, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1};
    char buf[32];
    for (size_t c = 0; c < sizeof curs / sizeof curs[0]; c++) {
        for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
            int64_t back = SENTINEL;
            assert_true(money_format(edges[i], curs[c], buf, sizeof buf) > 0);
            assert_int_equal(money_parse(buf, curs[c], &back), MONEY_OK);
            assert_int_equal(back, edges[i]);
        }
        for (int64_t v = -20000; v <= 20000; v++) {
            int64_t back = SENTINEL;
            assert_true(money_format(v, curs[c], buf, sizeof buf) > 0);
            assert_int_equal(money_parse(buf, curs[c], &back), MONEY_OK);
            assert_int_equal(back, v);
        }
    }
    /* Canonical texts survive parse -> format unchanged. */
    static const char *const canon[] = {"0.00",
                                        "0.01",
                                        "-0.01",
                                        "12.34",
                                        "-12.34",
                                        "1000.00",
                                        "92233720368547758.07",
                                        "-92233720368547758.08"};
    for (size_t i = 0; i < sizeof canon / sizeof canon[0]; i++) {
        int64_t v = SENTINEL;
        assert_int_equal(money_parse(canon[i], "usd", &v), MONEY_OK);
        assert_true(money_format(v, "usd", buf, sizeof buf) > 0);
        assert_string_equal(buf, canon[i]);
    }
    static const char *const canon3[] = {"0.000",
                                         "0.001",
                                         "-0.005",
                                         "150.125",
                                         "1000.000",
                                         "9223372036854775.807",
                                         "-9223372036854775.808"};
    for (size_t i = 0; i < sizeof canon3 / sizeof canon3[0]; i++) {
        int64_t v = SENTINEL;
        assert_int_equal(money_parse(canon3[i], "kwd", &v), MONEY_OK);
        assert_true(money_format(v, "kwd", buf, sizeof buf) > 0);
        assert_string_equal(buf, canon3[i]);
    }
}

static void expect_hours(const char *text, int64_t want)
{
    int64_t out = SENTINEL;
    assert_int_equal(money_parse_hours(text, &out), MONEY_OK);
    assert_int_equal(out, want);
}

static void test_money_parse_hours(void **state)
{
    (void)state;
    expect_hours("10", 1000);
    expect_hours("10.00", 1000);
    expect_hours("7.5", 750);
    expect_hours("0.25", 25);
    expect_hours("0.01", 1);
    expect_hours("0", 0);
    expect_hours("0.0", 0);
    expect_hours("010.5", 1050);
    expect_hours("92233720368547758.07", INT64_MAX);

    static const char *const bad[] = {"",    "-1",  "-0",   "-0.25", "1.234", "0.001", ".5",
                                      "5.",  "+1",  " 1",   "1 ",    "1..2",  "1.2.3", "1,5",
                                      "1e2", "abc", "7.5h", "-",     ".",     "1:30"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t out = SENTINEL;
        if (money_parse_hours(bad[i], &out) != MONEY_INVALID || out != SENTINEL)
            fail_msg("accepted malformed hours \"%s\"", bad[i]);
    }
    int64_t out = SENTINEL;
    assert_int_equal(money_parse_hours("92233720368547758.08", &out), MONEY_OVERFLOW);
    assert_int_equal(money_parse_hours("99999999999999999999", &out), MONEY_OVERFLOW);
    assert_int_equal(out, SENTINEL);
    assert_int_equal(money_parse_hours(NULL, &out), MONEY_INVALID);
    assert_int_equal(money_parse_hours("1", NULL), MONEY_INVALID);

    /* Parsed hours feed the hourly line directly. */
    int64_t h = 0, amt = 0;
    assert_int_equal(money_parse_hours("7.5", &h), MONEY_OK);
    assert_int_equal(money_hours_amount(h, 15000, &amt), MONEY_OK);
    assert_int_equal(amt, 112500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_money_currency_valid),
        cmocka_unit_test(test_money_currency_exponent),
        cmocka_unit_test(test_money_currency_granularity),
        cmocka_unit_test(test_money_currency_table),
        cmocka_unit_test(test_money_add_sub),
        cmocka_unit_test(test_money_muldiv_rounding),
        cmocka_unit_test(test_money_muldiv_limits),
        cmocka_unit_test(test_money_muldiv_overflow),
        cmocka_unit_test(test_money_apply_bp),
        cmocka_unit_test(test_money_hours_amount),
        cmocka_unit_test(test_money_prorate),
        cmocka_unit_test(test_money_round_to_granularity),
        cmocka_unit_test(test_money_amounts_cur),
        cmocka_unit_test(test_money_parse_ok),
        cmocka_unit_test(test_money_parse_overflow),
        cmocka_unit_test(test_money_parse_malformed),
        cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_money_format_buffer),
        cmocka_unit_test(test_money_roundtrip),
        cmocka_unit_test(test_money_parse_hours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
