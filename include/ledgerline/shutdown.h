/* shutdown.h: SIGTERM/SIGINT turn into a flag every loop checks, so a process
 * finishes the message in hand, commits, flushes and exits 0. */
#ifndef LEDGERLINE_SHUTDOWN_H
#define LEDGERLINE_SHUTDOWN_H

#include <stdbool.h>

void shutdown_install(void);
bool shutdown_requested(void);
/* Asks for shutdown from inside the process (tests, fatal paths). */
void shutdown_request(void);
/* Sleeps up to ms, waking early when shutdown is requested. Returns false
 * when it was cut short by shutdown. */
bool shutdown_sleep_ms(int ms);

#endif
