/* deadlines.h: the ingester's header and body deadlines (slow-loris).
 *
 * libmicrohttpd's MHD_OPTION_CONNECTION_TIMEOUT is an idle timeout, so a
 * client sending one byte a second holds its connection (and a slot of
 * INGESTER_MAX_CONNECTIONS / INGESTER_PER_IP_LIMIT) forever. Every
 * connection is therefore tracked (deadlines_notify, libmicrohttpd's
 * connection callback) and one sweeper thread enforces two deadlines:
 * - the request headers: not complete INGESTER_CONNECTION_TIMEOUT seconds
 *   after the connection opened, or after its previous request ended: the
 *   connection is shut down (tests/ingester/test_hostile.c);
 * - the body: not all there INGESTER_BODY_TIMEOUT seconds after the headers:
 *   408 and the connection is closed (tests/ingester/test_slow_body.c).
 *   libmicrohttpd 0.9.75 cannot queue a response in the middle of an upload
 *   (MHD_queue_response refuses it in that state), so the sweeper writes the
 *   408 on the socket itself (plain HTTP only: TLS ends at the proxy), shuts
 *   down the sending side and, a second later, the whole socket; the
 *   handler (http.c) stops taking the body. One atomic word per connection
 *   (the body's phase and start) decides once, by compare-and-swap, whether
 *   the sweeper or the handler answers, so a request never gets two
 *   answers. A body that completes late is answered 408 by the handler
 *   through libmicrohttpd. */
#ifndef INGESTER_DEADLINES_H
#define INGESTER_DEADLINES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "stats.h"

/* The phase of a request body, in the low 2 bits of http_conn.body; the
 * other bits are the monotonic ms at which its headers were complete, so a
 * compare-and-swap by the sweeper can only ever hit the request it looked
 * at, never the next one on the same keep-alive connection. */
#define BODY_NONE 0u    /* no webhook body being read */
#define BODY_READING 1u /* reading; the deadline runs */
#define BODY_DONE 2u    /* complete in time: the handler answers */
#define BODY_EXPIRED 3u /* late: answered 408 (by the sweeper or the handler) */
#define BODY_PHASE(w) ((unsigned)((w)&3u))
#define BODY_START_MS(w) ((w) >> 2)

/* One open connection, for the header and body deadlines
 * (the sweeper). Linked under the tracker's lock; the atomics are set by the
 * pool threads, the plain fields are the sweeper's. */
typedef struct http_conn http_conn;
struct http_conn {
    int fd;
    _Atomic uint64_t since_ms; /* opened, or its previous request ended */
    atomic_bool in_request;    /* headers complete, the handler has it */
    _Atomic uint64_t body;     /* BODY_* phase | start ms << 2 */
    atomic_int route;          /* stats_route of the request, for counting a 408 */
    uint64_t answered_ms;      /* when the sweeper wrote a 408 (0: never) */
    bool shut;
    http_conn *prev, *next;
};

/* The 408's JSON body, also the canned answer the handler sends. */
extern const char deadlines_408_body[];

typedef struct deadlines deadlines;

/* Starts the sweeper before any connection, so the deadlines hold from the
 * first one (0 s: that deadline is off). NULL with err when it cannot. */
deadlines *deadlines_start(unsigned header_timeout_s, unsigned body_timeout_s,
                           ingester_stats *stats, char *err, size_t errlen);

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback; cls is the
 * deadlines. */
void deadlines_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The connection's tracker, or NULL when it is not tracked. */
http_conn *deadlines_conn_of(struct MHD_Connection *c);

/* Stops the sweeper (no more deadlines enforced). Then, after
 * MHD_stop_daemon (every connection reported closed) or when the daemon
 * never started, deadlines_free. NULL is a no-op for both. */
void deadlines_stop(deadlines *d);
void deadlines_free(deadlines *d);

#endif
