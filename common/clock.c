/* clock.c: the monotonic clock (see clock.h). */
#include "ledgerline/clock.h"

#include <time.h>

uint64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000u;
}
