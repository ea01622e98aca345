/* test_date.c: unit tests of date.h (civil dates, parsing, month arithmetic,
 * schedules, billing periods and their proration). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ledgerline/date.h"

#define SENTINEL_DAYS 123456

/* Test dates are written as text; a typo must fail loudly, not yield 0. */
static civil_date D(const char *text)
{
    civil_date d = {SENTINEL_DAYS};
    if (!date_parse(text, &d))
        fail_msg("bad test date \"%s\"", text);
    return d;
}

static void assert_date(civil_date got, const char *want)
{
    char buf[16];
    if (!date_format(got, buf, sizeof buf))
        fail_msg("unformattable date (days %d), want %s", (int)got.days, want);
    assert_string_equal(buf, want);
}

static void test_date_leap_years(void **state)
{
    (void)state;
    assert_false(date_is_leap_year(1900));
    assert_true(date_is_leap_year(2000));
    assert_true(date_is_leap_year(2024));
    assert_false(date_is_leap_year(2025));
    assert_false(date_is_leap_year(2026));
    assert_false(date_is_leap_year(2100));
    assert_true(date_is_leap_year(2400));
    assert_false(date_is_leap_year(1));
    assert_true(date_is_leap_year(4));
    assert_true(date_is_leap_year(9996));
    assert_false(date_is_leap_year(9999));
}

static void test_date_days_in_month(void **state)
{
    (void)state;
    static const int y2026[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++)
        assert_int_equal(date_days_in_month(2026, m), y2026[m - 1]);
    assert_int_equal(date_days_in_month(2024, 2), 29);
    assert_int_equal(date_days_in_month(2000, 2), 29);
    assert_int_equal(date_days_in_month(1900, 2), 28);
    assert_int_equal(date_days_in_month(2026, 0), 0);
    assert_int_equal(date_days_in_month(2026, 13), 0);
}

static void test_date_from_ymd_known(void **state)
{
    (void)state;
    civil_date d = {SENTINEL_DAYS};
    assert_true(date_from_ymd(1970, 1, 1, &d));
    assert_int_equal(d.days, 0);
    assert_true(date_from_ymd(1969, 12, 31, &d));
    assert_int_equal(d.days, -1);
    assert_true(date_from_ymd(2000, 3, 1, &d));
    assert_int_equal(d.days, 11017);
    assert_true(date_from_ymd(2024, 2, 29, &d));
    assert_int_equal(d.days, 19782);
    assert_true(date_from_ymd(2026, 3, 15, &d));
    assert_int_equal(d.days, 20527);
    assert_true(date_from_ymd(1, 1, 1, &d));
    assert_int_equal(d.days, -719162);
    assert_true(date_from_ymd(9999, 12, 31, &d));
    assert_int_equal(d.days, 2932896);
    assert_true(date_from_ymd(2026, 1, 1, NULL)); /* validation only */

    civil_ymd v = date_to_ymd((civil_date){20527});
    assert_int_equal(v.year, 2026);
    assert_int_equal(v.month, 3);
    assert_int_equal(v.day, 15);
}

static void test_date_from_ymd_invalid(void **state)
{
    (void)state;
    static const int bad[][3] = {
        {0, 1, 1},     {10000, 1, 1}, {-1, 1, 1},    {2026, 0, 1},   {2026, 13, 1},
        {2026, 1, 0},  {2026, 1, 32}, {2026, 2, 29}, {2024, 2, 30},  {1900, 2, 29},
        {2026, 4, 31}, {2026, 6, 31}, {2026, 9, 31}, {2026, 11, 31}, {2026, -1, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        civil_date d = {SENTINEL_DAYS};
        if (date_from_ymd(bad[i][0], bad[i][1], bad[i][2], &d) || d.days != SENTINEL_DAYS)
            fail_msg("accepted %d-%d-%d", bad[i][0], bad[i][1], bad[i][2]);
    }
}

/* Walks every supported day with a naive calendar counter and checks both
 * conversions against it: the algorithms agree with the calendar everywhere. */
static void test_date_every_day(void **state)
{
    (void)state;
    int y = 1, m = 1, d = 1;
    for (int32_t days = -719162; days <= 2932896; days++) {
        civil_date c;
        assert_true(date_from_ymd(y, m, d, &c));
        if (c.days != days)
            fail_msg("%d-%d-%d -> %d, want %d", y, m, d, (int)c.days, (int)days);
        civil_ymd v = date_to_ymd(c);
        if (v.year != y || v.month != m || v.day != d)
            fail_msg("%d -> %d-%d-%d, want %d-%d-%d", (int)days, v.year, v.month, v.day, y, m, d);
        if (++d > date_days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    assert_int_equal(y, 10000);
}

static void test_date_parse(void **state)
{
    (void)state;
    civil_date d = {SENTINEL_DAYS};
    assert_true(date_parse("2026-03-15", &d));
    assert_int_equal(d.days, 20527);
    assert_true(date_parse("2024-02-29", &d));
    assert_int_equal(d.days, 19782);
    assert_true(date_parse("2000-02-29", &d));
    assert_true(date_parse("0001-01-01", &d));
    assert_int_equal(d.days, -719162);
    assert_true(date_parse("9999-12-31", &d));
    assert_int_equal(d.days, 2932896);

    static const char *const bad[] = {
        "2026-02-29", "2024-02-30",  "1900-02-29",  "2026-13-01",           "2026-00-10",
        "2026-01-00", "2026-01-32",  "2026-04-31",  "0000-01-01",           "2026-1-01",
        "2026-01-1",  "26-01-01",    "2026-01-01x", "2026-01-01 ",          " 2026-01-01",
        "2026/01/01", "2026.01.01",  "20260101",    "2026-01-01T00:00:00Z", "",
        "2026-0a-01", "2026--1-01",  "-026-01-01",  "+026-01-01",           "2026-01- 1",
        "2026-01-+1", "12026-01-01", "2026-01",     "2026-01-01\n",         "2026_01_01",
        "abcd-ef-gh",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d.days = SENTINEL_DAYS;
        if (date_parse(bad[i], &d) || d.days != SENTINEL_DAYS)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_false(date_parse(NULL, &d));
}

static void test_date_format(void **state)
{
    (void)state;
    char buf[11];
    assert_ptr_equal(date_format(D("2026-03-05"), buf, sizeof buf), buf);
    assert_string_equal(buf, "2026-03-05");
    assert_date(D("0001-01-01"), "0001-01-01");
    assert_date(D("9999-12-31"), "9999-12-31");
    assert_date((civil_date){0}, "1970-01-01");
    assert_date((civil_date){-1}, "1969-12-31");

    char small[10];
    memset(small, 'x', sizeof small);
    assert_null(date_format(D("2026-03-05"), small, sizeof small));
    assert_int_equal(small[0], '\0');
    assert_null(date_format(D("2026-03-05"), NULL, 11));
    /* Hand-built days outside 0001..9999 are not printed as dates. */
    assert_null(date_format((civil_date){2932897}, buf, sizeof buf));
    assert_null(date_format((civil_date){-719163}, buf, sizeof buf));
    assert_null(date_format((civil_date){INT32_MAX}, buf, sizeof buf));
    assert_null(date_format((civil_date){INT32_MIN}, buf, sizeof buf));

    static const char *const texts[] = {"2024-02-29", "2025-12-31", "2026-01-01", "1900-03-01",
                                        "2000-12-31"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_date(D(texts[i]), texts[i]);
}

static void test_date_add_days(void **state)
{
    (void)state;
    assert_date(date_add_days(D("2025-12-31"), 1), "2026-01-01");
    assert_date(date_add_days(D("2026-01-01"), -1), "2025-12-31");
    assert_date(date_add_days(D("2024-02-28"), 1), "2024-02-29");
    assert_date(date_add_days(D("2024-02-28"), 2), "2024-03-01");
    assert_date(date_add_days(D("2026-02-28"), 1), "2026-03-01");
    assert_date(date_add_days(D("2024-03-01"), -1), "2024-02-29");
    assert_date(date_add_days(D("1900-02-28"), 1), "1900-03-01");
    assert_date(date_add_days(D("2025-06-15"), 365), "2026-06-15");
    assert_date(date_add_days(D("2024-01-01"), 366), "2025-01-01");
    assert_date(date_add_days(D("2026-03-15"), 0), "2026-03-15");
    assert_date(date_add_days(D("2026-03-15"), -400), "2025-02-08");
    /* Saturates at the supported range instead of leaving it. */
    assert_date(date_add_days(D("9999-12-31"), 1), "9999-12-31");
    assert_date(date_add_days(D("0001-01-01"), -1), "0001-01-01");
    assert_date(date_add_days(D("2026-03-15"), INT32_MAX), "9999-12-31");
    assert_date(date_add_days(D("2026-03-15"), INT32_MIN), "0001-01-01");
    assert_date(date_add_days((civil_date){INT32_MAX}, INT32_MAX), "9999-12-31");
}

static void test_date_add_months(void **state)
{
    (void)state;
    assert_date(date_add_months(D("2026-01-31"), 1), "2026-02-28");
    assert_date(date_add_months(D("2024-01-31"), 1), "2024-02-29");
    assert_date(date_add_months(D("2026-03-31"), -1), "2026-02-28");
    assert_date(date_add_months(D("2024-03-31"), -1), "2024-02-29");
    assert_date(date_add_months(D("2026-05-31"), 1), "2026-06-30");
    assert_date(date_add_months(D("2026-08-31"), 1), "2026-09-30");
    assert_date(date_add_months(D("2026-10-31"), 4), "2027-02-28");
    assert_date(date_add_months(D("2026-01-30"), 1), "2026-02-28");
    assert_date(date_add_months(D("2026-01-28"), 1), "2026-02-28");
    assert_date(date_add_months(D("2026-02-28"), 1), "2026-03-28"); /* no re-expansion */
    assert_date(date_add_months(D("2025-12-15"), 1), "2026-01-15");
    assert_date(date_add_months(D("2026-01-15"), -1), "2025-12-15");
    assert_date(date_add_months(D("2026-01-15"), 12), "2027-01-15");
    assert_date(date_add_months(D("2026-01-15"), -13), "2024-12-15");
    assert_date(date_add_months(D("2024-02-29"), 12), "2025-02-28");
    assert_date(date_add_months(D("2024-02-29"), 48), "2028-02-29");
    assert_date(date_add_months(D("2024-02-29"), -48), "2020-02-29");
    assert_date(date_add_months(D("2026-03-15"), 0), "2026-03-15");
    assert_date(date_add_months(D("2026-12-31"), 3), "2027-03-31");
    assert_date(date_add_months(D("2026-12-31"), 2), "2027-02-28");
    /* Saturation at the supported range. */
    assert_date(date_add_months(D("9999-12-15"), 1), "9999-12-31");
    assert_date(date_add_months(D("9999-11-30"), 1), "9999-12-30");
    assert_date(date_add_months(D("0001-01-15"), -1), "0001-01-01");
    assert_date(date_add_months(D("0001-02-15"), -1), "0001-01-15");
    assert_date(date_add_months(D("2026-03-15"), INT32_MAX), "9999-12-31");
    assert_date(date_add_months(D("2026-03-15"), INT32_MIN), "0001-01-01");
}

static void test_date_diff(void **state)
{
    (void)state;
    assert_int_equal(date_diff_days(D("2026-03-15"), D("2026-03-15")), 0);
    assert_int_equal(date_days_inclusive(D("2026-03-15"), D("2026-03-15")), 1);
    assert_int_equal(date_diff_days(D("2026-01-01"), D("2026-12-31")), 364);
    assert_int_equal(date_days_inclusive(D("2026-01-01"), D("2026-12-31")), 365);
    assert_int_equal(date_days_inclusive(D("2024-01-01"), D("2024-12-31")), 366);
    assert_int_equal(date_days_inclusive(D("2024-02-01"), D("2024-02-29")), 29);
    assert_int_equal(date_days_inclusive(D("2026-02-01"), D("2026-02-28")), 28);
    assert_int_equal(date_days_inclusive(D("2026-03-22"), D("2026-03-31")), 10);
    assert_int_equal(date_diff_days(D("2025-12-31"), D("2026-01-01")), 1);
    assert_int_equal(date_diff_days(D("2026-01-01"), D("2025-12-31")), -1);
    assert_int_equal(date_diff_days(D("0001-01-01"), D("9999-12-31")), 3652058);
    assert_int_equal(date_diff_days(D("9999-12-31"), D("0001-01-01")), -3652058);
    /* Hand-built extremes saturate rather than overflow. */
    assert_int_equal(date_diff_days((civil_date){INT32_MIN}, (civil_date){INT32_MAX}), INT32_MAX);
    assert_int_equal(date_diff_days((civil_date){INT32_MAX}, (civil_date){INT32_MIN}), INT32_MIN);
    assert_int_equal(date_days_inclusive((civil_date){INT32_MIN}, (civil_date){INT32_MAX}),
                     INT32_MAX);
}

static void test_date_today_utc(void **state)
{
    (void)state;
    civil_date t = date_today_utc();
    civil_ymd v = date_to_ymd(t);
    assert_true(v.year >= 2024);
    assert_true(v.year <= 9999);
    civil_date back;
    assert_true(date_from_ymd(v.year, v.month, v.day, &back));
    assert_int_equal(back.days, t.days);
    /* Consecutive calls agree unless midnight UTC passes in between. */
    assert_true(date_diff_days(t, date_today_utc()) <= 1);
}

static void test_date_schedule_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        billing_schedule s;
    } all[] = {{"monthly", SCHEDULE_MONTHLY},
               {"quarterly", SCHEDULE_QUARTERLY},
               {"annual", SCHEDULE_ANNUAL},
               {"one_time", SCHEDULE_ONE_TIME}};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        billing_schedule s = (billing_schedule)99;
        assert_true(schedule_parse(all[i].name, &s));
        assert_int_equal(s, all[i].s);
        assert_string_equal(schedule_name(all[i].s), all[i].name);
    }
    static const char *const bad[] = {"",         "Monthly", "MONTHLY",    "monthly ",
                                      " monthly", "yearly",  "annually",   "one-time",
                                      "onetime",  "month",   "quarterly\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        billing_schedule s = (billing_schedule)99;
        if (schedule_parse(bad[i], &s) || s != (billing_schedule)99)
            fail_msg("accepted schedule \"%s\"", bad[i]);
    }
    assert_false(schedule_parse(NULL, NULL));
    assert_null(schedule_name((billing_schedule)4));
    assert_null(schedule_name((billing_schedule)-1));
}

/* Runs period_for_date and checks status and, on success, the four dates
 * and the clipped flag. */
static void expect_period(billing_schedule s, const char *bd, const char *start, const char *end,
                          const char *want_start, const char *want_end, const char *want_full_start,
                          const char *want_full_end, bool want_clipped)
{
    civil_date e = {0};
    if (end)
        e = D(end);
    billing_period p;
    memset(&p, 0, sizeof p);
    period_status st = period_for_date(s, D(bd), D(start), end ? &e : NULL, &p);
    if (st != PERIOD_OK)
        fail_msg("bd %s [%s, %s]: status %d", bd, start, end ? end : "open", (int)st);
    assert_date(p.start, want_start);
    assert_date(p.end, want_end);
    assert_date(p.full_start, want_full_start);
    assert_date(p.full_end, want_full_end);
    assert_int_equal(p.clipped, want_clipped);
}

static void expect_period_status(billing_schedule s, const char *bd, const char *start,
                                 const char *end, period_status want)
{
    civil_date e = {0};
    if (end)
        e = D(end);
    billing_period p, untouched;
    memset(&p, 0xa5, sizeof p);
    memcpy(&untouched, &p, sizeof p);
    assert_int_equal(period_for_date(s, D(bd), D(start), end ? &e : NULL, &p), want);
    if (want != PERIOD_OK)
        assert_memory_equal(&p, &untouched, sizeof p);
}

static void test_period_monthly(void **state)
{
    (void)state;
    const billing_schedule M = SCHEDULE_MONTHLY;
    const char *s = "2020-01-01";
    expect_period(M, "2026-03-15", s, NULL, "2026-03-01", "2026-03-31", "2026-03-01", "2026-03-31",
                  false);
    expect_period(M, "2026-03-01", s, NULL, "2026-03-01", "2026-03-31", "2026-03-01", "2026-03-31",
                  false);
    expect_period(M, "2026-03-31", s, NULL, "2026-03-01", "2026-03-31", "2026-03-01", "2026-03-31",
                  false);
    expect_period(M, "2026-02-28", s, NULL, "2026-02-01", "2026-02-28", "2026-02-01", "2026-02-28",
                  false);
    expect_period(M, "2024-02-29", s, NULL, "2024-02-01", "2024-02-29", "2024-02-01", "2024-02-29",
                  false);
    expect_period(M, "2026-04-30", s, NULL, "2026-04-01", "2026-04-30", "2026-04-01", "2026-04-30",
                  false);
    expect_period(M, "2025-12-31", s, NULL, "2025-12-01", "2025-12-31", "2025-12-01", "2025-12-31",
                  false);
    expect_period(M, "2026-01-01", s, NULL, "2026-01-01", "2026-01-31", "2026-01-01", "2026-01-31",
                  false);
    /* Engagement bounds that coincide with the month are not a clip. */
    expect_period(M, "2026-03-10", "2026-03-01", "2026-03-31", "2026-03-01", "2026-03-31",
                  "2026-03-01", "2026-03-31", false);
}

static void test_period_quarterly(void **state)
{
    (void)state;
    const billing_schedule Q = SCHEDULE_QUARTERLY;
    const char *s = "2020-01-01";
    static const char *const cases[][3] = {
        {"2026-01-01", "2026-01-01", "2026-03-31"}, {"2026-02-28", "2026-01-01", "2026-03-31"},
        {"2026-03-31", "2026-01-01", "2026-03-31"}, {"2026-04-01", "2026-04-01", "2026-06-30"},
        {"2026-05-31", "2026-04-01", "2026-06-30"}, {"2026-06-30", "2026-04-01", "2026-06-30"},
        {"2026-07-01", "2026-07-01", "2026-09-30"}, {"2026-09-30", "2026-07-01", "2026-09-30"},
        {"2026-10-01", "2026-10-01", "2026-12-31"}, {"2026-12-31", "2026-10-01", "2026-12-31"},
        {"2024-02-29", "2024-01-01", "2024-03-31"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_period(Q, cases[i][0], s, NULL, cases[i][1], cases[i][2], cases[i][1], cases[i][2],
                      false);
}

static void test_period_annual(void **state)
{
    (void)state;
    const billing_schedule A = SCHEDULE_ANNUAL;
    const char *s = "2020-01-01";
    expect_period(A, "2026-01-01", s, NULL, "2026-01-01", "2026-12-31", "2026-01-01", "2026-12-31",
                  false);
    expect_period(A, "2026-12-31", s, NULL, "2026-01-01", "2026-12-31", "2026-01-01", "2026-12-31",
                  false);
    expect_period(A, "2027-01-01", s, NULL, "2027-01-01", "2027-12-31", "2027-01-01", "2027-12-31",
                  false);
    expect_period(A, "2024-02-29", s, NULL, "2024-01-01", "2024-12-31", "2024-01-01", "2024-12-31",
                  false);
    expect_period(A, "2026-06-15", "2026-03-10", "2026-09-20", "2026-03-10", "2026-09-20",
                  "2026-01-01", "2026-12-31", true);
    expect_period(A, "9999-12-31", s, NULL, "9999-01-01", "9999-12-31", "9999-01-01", "9999-12-31",
                  false);
}

static void test_period_clipping(void **state)
{
    (void)state;
    const billing_schedule M = SCHEDULE_MONTHLY, Q = SCHEDULE_QUARTERLY;
    /* Start mid-month. */
    expect_period(M, "2026-03-20", "2026-03-10", NULL, "2026-03-10", "2026-03-31", "2026-03-01",
                  "2026-03-31", true);
    /* Start on the business date itself. */
    expect_period(M, "2026-03-10", "2026-03-10", NULL, "2026-03-10", "2026-03-31", "2026-03-01",
                  "2026-03-31", true);
    /* Start on the last day of the month. */
    expect_period(M, "2026-03-31", "2026-03-31", NULL, "2026-03-31", "2026-03-31", "2026-03-01",
                  "2026-03-31", true);
    /* End mid-month, business date after the end but in the same month. */
    expect_period(M, "2026-03-31", "2026-01-01", "2026-03-20", "2026-03-01", "2026-03-20",
                  "2026-03-01", "2026-03-31", true);
    /* End mid-month, business date before the end. */
    expect_period(M, "2026-03-05", "2026-01-01", "2026-03-20", "2026-03-01", "2026-03-20",
                  "2026-03-01", "2026-03-31", true);
    /* End on the first day of the period. */
    expect_period(M, "2026-03-15", "2026-01-01", "2026-03-01", "2026-03-01", "2026-03-01",
                  "2026-03-01", "2026-03-31", true);
    /* Both ends inside one month. */
    expect_period(M, "2026-03-15", "2026-03-10", "2026-03-20", "2026-03-10", "2026-03-20",
                  "2026-03-01", "2026-03-31", true);
    /* Single-day engagement. */
    expect_period(M, "2026-03-15", "2026-03-15", "2026-03-15", "2026-03-15", "2026-03-15",
                  "2026-03-01", "2026-03-31", true);
    /* End after the month: only the start clips. */
    expect_period(M, "2026-03-15", "2026-03-10", "2026-06-30", "2026-03-10", "2026-03-31",
                  "2026-03-01", "2026-03-31", true);
    /* Quarter clipped at both ends. */
    expect_period(Q, "2026-03-31", "2026-02-15", "2026-03-30", "2026-02-15", "2026-03-30",
                  "2026-01-01", "2026-03-31", true);
    expect_period(Q, "2026-04-01", "2026-02-15", NULL, "2026-04-01", "2026-06-30", "2026-04-01",
                  "2026-06-30", false);
}

static void test_period_not_started_ended_invalid(void **state)
{
    (void)state;
    const billing_schedule M = SCHEDULE_MONTHLY, Q = SCHEDULE_QUARTERLY, A = SCHEDULE_ANNUAL,
                           O = SCHEDULE_ONE_TIME;
    expect_period_status(M, "2026-03-31", "2026-04-01", NULL, PERIOD_NOT_STARTED);
    expect_period_status(M, "2026-03-15", "2026-03-16", NULL, PERIOD_NOT_STARTED);
    expect_period_status(Q, "2026-03-31", "2026-04-01", NULL, PERIOD_NOT_STARTED);
    expect_period_status(A, "2025-12-31", "2026-01-01", "2026-12-31", PERIOD_NOT_STARTED);
    expect_period_status(O, "2026-03-09", "2026-03-10", "2026-05-20", PERIOD_NOT_STARTED);
    expect_period_status(M, "2026-04-01", "2026-04-01", NULL, PERIOD_OK);

    expect_period_status(M, "2026-03-01", "2026-01-01", "2026-02-28", PERIOD_ENDED);
    expect_period_status(M, "2026-03-31", "2026-01-01", "2026-02-28", PERIOD_ENDED);
    expect_period_status(M, "2027-03-15", "2026-01-01", "2026-02-28", PERIOD_ENDED);
    expect_period_status(Q, "2026-04-01", "2026-01-01", "2026-03-31", PERIOD_ENDED);
    expect_period_status(Q, "2026-03-31", "2026-01-01", "2026-03-31", PERIOD_OK);
    expect_period_status(A, "2026-01-01", "2025-01-01", "2025-12-31", PERIOD_ENDED);
    expect_period_status(A, "2025-12-31", "2025-01-01", "2025-12-31", PERIOD_OK);

    /* end < start is invalid whatever the business date. */
    expect_period_status(M, "2026-03-15", "2026-03-10", "2026-03-09", PERIOD_INVALID);
    expect_period_status(M, "2026-01-15", "2026-03-10", "2026-03-09", PERIOD_INVALID);
    expect_period_status(O, "2026-03-15", "2026-03-10", "2026-03-09", PERIOD_INVALID);
    expect_period_status(O, "2026-03-15", "2026-03-10", NULL, PERIOD_INVALID);
    expect_period_status((billing_schedule)4, "2026-03-15", "2026-03-10", NULL, PERIOD_INVALID);
    expect_period_status((billing_schedule)-1, "2026-03-15", "2026-03-10", NULL, PERIOD_INVALID);
    assert_int_equal(period_for_date(M, D("2026-03-15"), D("2026-03-10"), NULL, NULL),
                     PERIOD_INVALID);
}

static void test_period_one_time(void **state)
{
    (void)state;
    const billing_schedule O = SCHEDULE_ONE_TIME;
    expect_period(O, "2026-04-01", "2026-03-10", "2026-05-20", "2026-03-10", "2026-05-20",
                  "2026-03-10", "2026-05-20", false);
    expect_period(O, "2026-03-10", "2026-03-10", "2026-05-20", "2026-03-10", "2026-05-20",
                  "2026-03-10", "2026-05-20", false);
    expect_period(O, "2026-05-20", "2026-03-10", "2026-05-20", "2026-03-10", "2026-05-20",
                  "2026-03-10", "2026-05-20", false);
    /* Still the engagement's period once it has ended. */
    expect_period(O, "2027-01-01", "2026-03-10", "2026-05-20", "2026-03-10", "2026-05-20",
                  "2026-03-10", "2026-05-20", false);
    expect_period(O, "2026-03-10", "2026-03-10", "2026-03-10", "2026-03-10", "2026-03-10",
                  "2026-03-10", "2026-03-10", false);
}

static void expect_fee(billing_schedule s, const char *bd, const char *start, const char *end,
                       int64_t fee, bool prorate, int64_t want)
{
    civil_date e = {0};
    if (end)
        e = D(end);
    billing_period p;
    assert_int_equal(period_for_date(s, D(bd), D(start), end ? &e : NULL, &p), PERIOD_OK);
    int64_t out = -7;
    assert_int_equal(period_fee(&p, fee, prorate, &out), MONEY_OK);
    assert_int_equal(out, want);
}

static void test_period_fee(void **state)
{
    (void)state;
    const billing_schedule M = SCHEDULE_MONTHLY, Q = SCHEDULE_QUARTERLY, A = SCHEDULE_ANNUAL,
                           O = SCHEDULE_ONE_TIME;
    /* 10 of 31 days: 32258.06. */
    expect_fee(M, "2026-03-31", "2026-03-22", NULL, 100000, true, 32258);
    expect_fee(M, "2026-03-31", "2026-03-22", NULL, 100000, false, 100000);
    /* 22 of 31 days: 70967.74. */
    expect_fee(M, "2026-03-31", "2026-03-10", NULL, 100000, true, 70968);
    /* End clipped: 20 of 31 days: 64516.13. */
    expect_fee(M, "2026-03-31", "2026-01-01", "2026-03-20", 100000, true, 64516);
    /* Leap February, 15 of 29 days: 51724.14. */
    expect_fee(M, "2024-02-29", "2024-02-15", NULL, 100000, true, 51724);
    /* Exactly half a cent rounds up: 1 cent x 15/30. */
    expect_fee(M, "2026-04-30", "2026-04-16", NULL, 1, true, 1);
    expect_fee(M, "2026-04-30", "2026-04-17", NULL, 1, true, 0);
    /* Unclipped periods always bill the full fee. */
    expect_fee(M, "2026-03-15", "2026-01-01", NULL, 100000, true, 100000);
    expect_fee(M, "2026-03-15", "2026-03-01", "2026-03-31", 100000, true, 100000);
    /* Quarter: 30 of 90 days = 33333.33. */
    expect_fee(Q, "2026-03-31", "2026-03-02", NULL, 100000, true, 33333);
    /* Leap year: 184 of 366 days = 60327.87. */
    expect_fee(A, "2024-12-31", "2024-07-01", NULL, 120000, true, 60328);
    /* One-time is never prorated. */
    expect_fee(O, "2026-04-01", "2026-03-10", "2026-05-20", 250000, true, 250000);
    /* Proration of the largest fee cannot overflow (days <= full days). */
    expect_fee(M, "2026-03-31", "2026-03-02", NULL, INT64_MAX, true, 8925843906633654007);

    int64_t out = -7;
    billing_period p;
    assert_int_equal(period_for_date(M, D("2026-03-31"), D("2026-03-22"), NULL, &p), PERIOD_OK);
    assert_int_equal(period_fee(NULL, 100, true, &out), MONEY_INVALID);
    assert_int_equal(period_fee(&p, 100, true, NULL), MONEY_INVALID);
    /* A hand-built inverted or oversized period is refused, not billed. */
    billing_period bad = p;
    bad.start = D("2026-04-02");
    assert_int_equal(period_fee(&bad, 100, true, &out), MONEY_INVALID);
    bad = p;
    bad.start = D("2026-02-01");
    assert_int_equal(period_fee(&bad, 100, true, &out), MONEY_INVALID);
    assert_int_equal(out, -7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_leap_years),
        cmocka_unit_test(test_date_days_in_month),
        cmocka_unit_test(test_date_from_ymd_known),
        cmocka_unit_test(test_date_from_ymd_invalid),
        cmocka_unit_test(test_date_every_day),
        cmocka_unit_test(test_date_parse),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_date_add_days),
        cmocka_unit_test(test_date_add_months),
        cmocka_unit_test(test_date_diff),
        cmocka_unit_test(test_date_today_utc),
        cmocka_unit_test(test_date_schedule_names),
        cmocka_unit_test(test_period_monthly),
        cmocka_unit_test(test_period_quarterly),
        cmocka_unit_test(test_period_annual),
        cmocka_unit_test(test_period_clipping),
        cmocka_unit_test(test_period_not_started_ended_invalid),
        cmocka_unit_test(test_period_one_time),
        cmocka_unit_test(test_period_fee),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
