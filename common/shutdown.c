/* shutdown.c: the process-wide stop flag set by SIGTERM and SIGINT. */
#include "ledgerline/shutdown.h"

#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void shutdown_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool shutdown_requested(void)
{
    return stop_flag != 0;
}

void shutdown_request(void)
{
    stop_flag = 1;
}

bool shutdown_sleep_ms(int ms)
{
    while (ms > 0 && !stop_flag) {
        int slice = ms < 100 ? ms : 100;
        struct timespec ts = {slice / 1000, (long)(slice % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return !stop_flag;
}
