/* schedule.h: the scheduler's pure logic (no I/O): which (business date, tick
 * kind) pairs are due at a given instant, given the last date published per
 * kind. Kept apart from main.c so it can be reasoned about and tested alone. */
#ifndef BILLING_SCHEDULER_SCHEDULE_H
#define BILLING_SCHEDULER_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/envelope.h"

#define SCHED_KINDS 4
#define SCHED_MAX_CATCHUP_DAYS 35

typedef struct {
    tick_kind kind;
    int minutes;     /* UTC time of day, minutes after midnight */
    bool has_last;   /* false: never published (very first start) */
    civil_date last; /* last business date published */
} sched_kind_state;

/* An instant as UTC seconds since 1970-01-01 (no floating point, no time_t
 * arithmetic through the C library). */
typedef int64_t sched_instant;

civil_date sched_date_of(sched_instant t);
int sched_minute_of(sched_instant t);
sched_instant sched_instant_at(civil_date d, int minutes);

/* Parses "YYYY-MM-DDTHH:MM:SSZ"; false when malformed. */
bool sched_parse_instant(const char *text, sched_instant *out);

/* The first business date of kind k still to publish at `now`, and whether it
 * is due yet (*due_at is when it becomes due). Missed days further back than
 * SCHED_MAX_CATCHUP_DAYS before today are skipped; the very first start
 * begins with today. */
civil_date sched_next_date(const sched_kind_state *k, sched_instant now, sched_instant *due_at);

/* Formats the tick's as_of "<date>T<HH:MM>:00Z" (buf >= 32). */
void sched_as_of(civil_date d, int minutes, char *buf, size_t bufsz);

#endif
