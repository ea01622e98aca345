/* clock.h: the monotonic clock every timeout, deadline and latency figure
 * is measured on (never the wall clock, which NTP may move). */
#ifndef LEDGERLINE_CLOCK_H
#define LEDGERLINE_CLOCK_H

#include <stdint.h>

/* Microseconds / milliseconds since an arbitrary fixed point. */
uint64_t clock_mono_us(void);
uint64_t clock_mono_ms(void);

#endif
