/* date.c: proleptic Gregorian civil dates, billing schedules and billing
 * periods with proration (see date.h). No time_t except for date_today_utc. */
#include "ledgerline/date.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Day numbers of 0001-01-01 and 9999-12-31: the supported range. Arithmetic
 * saturates here so that no result ever needs an out-of-range year. */
#define DATE_MIN_DAYS (-719162)
#define DATE_MAX_DAYS 2932896

bool date_is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int date_days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    if (month == 2 && date_is_leap_year(year))
        return 29;
    return days[month - 1];
}

/* Howard Hinnant's days_from_civil: counts in 400-year eras starting March 1
 * so the leap day falls at the end of each computational year. */
static int64_t date_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Howard Hinnant's civil_from_days, the inverse of the above. */
static civil_ymd date_civil_from_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    civil_ymd r = {(int)(y + (m <= 2)), (int)m, (int)d};
    return r;
}

static civil_date date_saturate(int64_t days)
{
    civil_date r;
    if (days < DATE_MIN_DAYS)
        days = DATE_MIN_DAYS;
    if (days > DATE_MAX_DAYS)
        days = DATE_MAX_DAYS;
    r.days = (int32_t)days;
    return r;
}

bool date_from_ymd(int year, int month, int day, civil_date *out)
{
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 ||
        day > date_days_in_month(year, month))
        return false;
    if (out)
        out->days = (int32_t)date_days_from_civil(year, month, day);
    return true;
}

civil_ymd date_to_ymd(civil_date d)
{
    return date_civil_from_days(d.days);
}

static int date_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool date_parse(const char *text, civil_date *out)
{
    if (!text || strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return false;
    int y = date_digits(text, 4), m = date_digits(text + 5, 2), d = date_digits(text + 8, 2);
    if (y < 0 || m < 0 || d < 0)
        return false;
    return date_from_ymd(y, m, d, out);
}

char *date_format(civil_date d, char *buf, size_t bufsz)
{
    if (!buf || bufsz < 11) {
        if (buf && bufsz > 0)
            buf[0] = '\0';
        return NULL;
    }
    civil_ymd v = date_to_ymd(d);
    /* A hand-built civil_date can lie outside the range; never print a
     * five-digit or negative year as if it were a date. */
    if (v.year < 1 || v.year > 9999) {
        buf[0] = '\0';
        return NULL;
    }
    snprintf(buf, bufsz, "%04d-%02d-%02d", v.year, v.month, v.day);
    return buf;
}

civil_date date_add_days(civil_date d, int32_t n)
{
    return date_saturate((int64_t)d.days + n);
}

civil_date date_add_months(civil_date d, int32_t n)
{
    civil_ymd v = date_to_ymd(d);
    int64_t idx = (int64_t)v.year * 12 + (v.month - 1) + n;
    if (idx < 12) /* before 0001-01 */
        return date_saturate(DATE_MIN_DAYS);
    if (idx >= 10000 * 12) /* after 9999-12 */
        return date_saturate(DATE_MAX_DAYS);
    int y = (int)(idx / 12), m = (int)(idx % 12) + 1;
    int dim = date_days_in_month(y, m);
    civil_date r = {(int32_t)date_days_from_civil(y, m, v.day < dim ? v.day : dim)};
    return r;
}

int32_t date_diff_days(civil_date a, civil_date b)
{
    /* Widen first: two arbitrary int32 day numbers can differ by more than
     * int32 holds; saturate rather than overflow. */
    int64_t diff = (int64_t)b.days - a.days;
    if (diff > INT32_MAX)
        return INT32_MAX;
    if (diff < INT32_MIN)
        return INT32_MIN;
    return (int32_t)diff;
}

int32_t date_days_inclusive(civil_date a, civil_date b)
{
    int32_t diff = date_diff_days(a, b);
    return diff == INT32_MAX ? INT32_MAX : diff + 1;
}

civil_date date_today_utc(void)
{
    time_t now = time(NULL);
    struct tm tm;
    civil_date r = {0};
    if (gmtime_r(&now, &tm))
        (void)date_from_ymd(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, &r);
    return r;
}

static const char *const schedule_names[] = {
    [SCHEDULE_MONTHLY] = "monthly",
    [SCHEDULE_QUARTERLY] = "quarterly",
    [SCHEDULE_ANNUAL] = "annual",
    [SCHEDULE_ONE_TIME] = "one_time",
};
#define SCHEDULE_COUNT (sizeof schedule_names / sizeof schedule_names[0])

bool schedule_parse(const char *text, billing_schedule *out)
{
    if (!text)
        return false;
    for (size_t i = 0; i < SCHEDULE_COUNT; i++) {
        if (strcmp(text, schedule_names[i]) == 0) {
            if (out)
                *out = (billing_schedule)i;
            return true;
        }
    }
    return false;
}

const char *schedule_name(billing_schedule s)
{
    if ((unsigned)s >= SCHEDULE_COUNT)
        return NULL;
    return schedule_names[s];
}

period_status period_for_date(billing_schedule schedule, civil_date business_date,
                              civil_date eng_start, const civil_date *eng_end, billing_period *out)
{
    if (!out || (unsigned)schedule >= SCHEDULE_COUNT)
        return PERIOD_INVALID;
    if (eng_end && eng_end->days < eng_start.days)
        return PERIOD_INVALID;
    if (schedule == SCHEDULE_ONE_TIME && !eng_end)
        return PERIOD_INVALID;
    if (eng_start.days > business_date.days)
        return PERIOD_NOT_STARTED;

    if (schedule == SCHEDULE_ONE_TIME) {
        out->start = out->full_start = eng_start;
        out->end = out->full_end = *eng_end;
        out->clipped = false;
        return PERIOD_OK;
    }

    civil_ymd v = date_to_ymd(business_date);
    int first_month, months;
    switch (schedule) {
    case SCHEDULE_MONTHLY:
        first_month = v.month;
        months = 1;
        break;
    case SCHEDULE_QUARTERLY:
        first_month = (v.month - 1) / 3 * 3 + 1;
        months = 3;
        break;
    case SCHEDULE_ANNUAL:
        first_month = 1;
        months = 12;
        break;
    case SCHEDULE_ONE_TIME: /* returned above */
    default: return PERIOD_INVALID;
    }
    int last_month = first_month + months - 1;
    civil_date full_start, full_end;
    /* A business date outside 1..9999 cannot name a calendar period. */
    if (!date_from_ymd(v.year, first_month, 1, &full_start) ||
        !date_from_ymd(v.year, last_month, date_days_in_month(v.year, last_month), &full_end))
        return PERIOD_INVALID;

    if (eng_end && eng_end->days < full_start.days)
        return PERIOD_ENDED;

    out->full_start = full_start;
    out->full_end = full_end;
    out->start = eng_start.days > full_start.days ? eng_start : full_start;
    out->end = (eng_end && eng_end->days < full_end.days) ? *eng_end : full_end;
    out->clipped = out->start.days != full_start.days || out->end.days != full_end.days;
    return PERIOD_OK;
}

money_status period_fee(const billing_period *p, int64_t fee, bool prorate, int64_t *out)
{
    if (!p || !out)
        return MONEY_INVALID;
    if (!p->clipped || !prorate) {
        *out = fee;
        return MONEY_OK;
    }
    int32_t days = date_days_inclusive(p->start, p->end);
    int32_t full = date_days_inclusive(p->full_start, p->full_end);
    /* A hand-built period could be inverted or wider than its full range. */
    if (days < 1 || full < 1 || days > full)
        return MONEY_INVALID;
    return money_prorate(fee, days, full, out);
}
