/* date.h: civil (calendar) dates and billing periods.
 *
 * Business dates are proleptic Gregorian calendar dates with no time zone;
 * they are never computed through time_t. A civil_date is stored as the
 * number of days since 1970-01-01 so that comparison and day arithmetic are
 * plain integer operations; conversions go through year/month/day.
 * Supported range: years 1 .. 9999.
 */
#ifndef LEDGERLINE_DATE_H
#define LEDGERLINE_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/money.h"

typedef struct {
    int32_t days; /* days since 1970-01-01 */
} civil_date;

typedef struct {
    int year;  /* 1 .. 9999 */
    int month; /* 1 .. 12 */
    int day;   /* 1 .. days in month */
} civil_ymd;

bool date_is_leap_year(int year);
int date_days_in_month(int year, int month);

/* false when y/m/d is not a real date in range. */
bool date_from_ymd(int year, int month, int day, civil_date *out);
civil_ymd date_to_ymd(civil_date d);

/* Parses exactly "YYYY-MM-DD"; false on anything else (including 2026-02-30). */
bool date_parse(const char *text, civil_date *out);
/* Writes "YYYY-MM-DD" (needs 11 bytes). Returns buf, or NULL when bufsz < 11
 * or d lies outside years 1 .. 9999 (buf then holds "" if bufsz > 0). */
char *date_format(civil_date d, char *buf, size_t bufsz);

/* Day and month arithmetic saturates at 0001-01-01 and 9999-12-31. */
civil_date date_add_days(civil_date d, int32_t n);
/* Adds n calendar months, clamping the day to the target month's end
 * (01-31 + 1 month = 02-28 or 02-29). */
civil_date date_add_months(civil_date d, int32_t n);
/* b - a in days (saturating at INT32_MIN/INT32_MAX for hand-built dates). */
int32_t date_diff_days(civil_date a, civil_date b);
/* Inclusive count of days from a to b (a <= b): same day is 1. */
int32_t date_days_inclusive(civil_date a, civil_date b);

/* Today's date in UTC from the wall clock: only for the scheduler's "which
 * business date is it"; workers use the date carried by the tick. */
civil_date date_today_utc(void);

/* Billing schedules of an engagement. */
typedef enum {
    SCHEDULE_MONTHLY = 0,
    SCHEDULE_QUARTERLY,
    SCHEDULE_ANNUAL,
    SCHEDULE_ONE_TIME
} billing_schedule;

/* "monthly", "quarterly", "annual", "one_time" <-> enum (exact, case-sensitive).
 * schedule_name returns NULL for a value outside the enum. */
bool schedule_parse(const char *text, billing_schedule *out);
const char *schedule_name(billing_schedule s);

/* A billing period. Ends are inclusive (March: 03-01 .. 03-31). */
typedef struct {
    civil_date start;      /* clipped start */
    civil_date end;        /* clipped end (inclusive) */
    civil_date full_start; /* unclipped period start */
    civil_date full_end;   /* unclipped period end (inclusive) */
    bool clipped;          /* start/end differ from the full period */
} billing_period;

typedef enum {
    PERIOD_OK = 0,
    PERIOD_NOT_STARTED, /* the engagement starts after the business date */
    PERIOD_ENDED,       /* the engagement ended before the period began */
    PERIOD_INVALID      /* bad input (one_time without end date, end < start) */
} period_status;

/* The period of `schedule` containing `business_date`, clipped to the
 * engagement's [eng_start, eng_end] (eng_end NULL = open-ended).
 * one_time: the whole engagement range (requires eng_end) and is "containing"
 * only once the engagement has started.
 * Checks in order: PERIOD_INVALID (NULL out, unknown schedule, eng_end <
 * eng_start, one_time without eng_end), PERIOD_NOT_STARTED, PERIOD_ENDED.
 * *out is written only on PERIOD_OK. */
period_status period_for_date(billing_schedule schedule, civil_date business_date,
                              civil_date eng_start, const civil_date *eng_end, billing_period *out);

/* The fee for a period: the full fee when not clipped or not prorating, else
 * fee x clipped days / full days (inclusive), rounded half up.
 * MONEY_INVALID for NULL arguments or a clipped range that is empty or wider
 * than the full one. */
money_status period_fee(const billing_period *p, int64_t fee, bool prorate, int64_t *out);

#endif
