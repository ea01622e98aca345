/* ready.h: the ingester's GET /readyz checks, off libmicrohttpd's threads.
 *
 * A check asks the broker for metadata (publisher_reachable, up to 2 s).
 * That wait would hold a pool thread, and with one pool thread (the default
 * on 2 CPUs) stop every other request, /healthz included, while the broker
 * is down; so the connection is suspended and one helper thread does the
 * check and resumes it. One metadata request answers every check that was
 * waiting when it started. */
#ifndef INGESTER_READY_H
#define INGESTER_READY_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "publish.h"

/* One waiting check, owned by the request it belongs to. */
typedef struct ready_check {
    struct MHD_Connection *conn;
    bool done, ok; /* read by the handler once the connection is resumed */
    struct ready_check *next;
} ready_check;

typedef struct ready_checker ready_checker;

/* Starts the helper thread. NULL with err when it cannot. */
ready_checker *ready_checker_start(publisher *pub, char *err, size_t errlen);

/* Suspends chk->conn and queues the check; false (nothing suspended) when
 * the checker is stopping: the caller answers "not ready" itself. */
bool ready_checker_submit(ready_checker *r, ready_check *chk, struct MHD_Connection *conn);

/* Checks queued and not yet answered. */
size_t ready_checker_pending(ready_checker *r);

/* Answers what is still waiting (so no connection stays suspended) and
 * stops the thread; later submits return false. Then, once no request can
 * come any more (the daemons stopped), ready_checker_free. NULL is a no-op
 * for both. */
void ready_checker_stop(ready_checker *r);
void ready_checker_free(ready_checker *r);

#endif
