/* schedule.c: the scheduler's date and time arithmetic: which business date
 * of each tick kind is next, and when it falls due. Pure functions; the
 * publishing loop is in main.c. */
#include "schedule.h"

#include <stdio.h>
#include <string.h>

civil_date sched_date_of(sched_instant t)
{
    int64_t days = t / 86400;
    if (t % 86400 < 0)
        days--;
    civil_date d = {(int32_t)days};
    return d;
}

int sched_minute_of(sched_instant t)
{
    int64_t s = t % 86400;
    if (s < 0)
        s += 86400;
    return (int)(s / 60);
}

sched_instant sched_instant_at(civil_date d, int minutes)
{
    return (int64_t)d.days * 86400 + (int64_t)minutes * 60;
}

static bool two_digits(const char *p, int max, int *out)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return false;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return *out <= max;
}

bool sched_parse_instant(const char *text, sched_instant *out)
{
    /* YYYY-MM-DDTHH:MM:SSZ */
    if (text == NULL || strlen(text) != 20 || text[10] != 'T' || text[13] != ':' ||
        text[16] != ':' || text[19] != 'Z')
        return false;
    char date[11];
    memcpy(date, text, 10);
    date[10] = '\0';
    civil_date d;
    int hh, mm, ss;
    if (!date_parse(date, &d) || !two_digits(text + 11, 23, &hh) ||
        !two_digits(text + 14, 59, &mm) || !two_digits(text + 17, 59, &ss))
        return false;
    *out = (int64_t)d.days * 86400 + hh * 3600 + mm * 60 + ss;
    return true;
}

civil_date sched_next_date(const sched_kind_state *k, sched_instant now, sched_instant *due_at)
{
    civil_date today = sched_date_of(now);
    civil_date next = today;
    if (k->has_last) {
        next = date_add_days(k->last, 1);
        civil_date oldest = date_add_days(today, -SCHED_MAX_CATCHUP_DAYS);
        if (next.days < oldest.days)
            next = oldest;
    }
    *due_at = sched_instant_at(next, k->minutes);
    return next;
}

void sched_as_of(civil_date d, int minutes, char *buf, size_t bufsz)
{
    char ds[11];
    date_format(d, ds, sizeof ds);
    snprintf(buf, bufsz, "%sT%02d:%02d:00Z", ds, minutes / 60, minutes % 60);
}
