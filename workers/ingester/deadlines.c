/* deadlines.c: tracking the ingester's connections and the sweeper thread
 * that enforces their header and body deadlines (see deadlines.h). */
#include "deadlines.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ledgerline/clock.h"
#include "ledgerline/failf.h"
#include "ledgerline/log.h"

/* How long a connection answered 408 by the sweeper may still read before
 * it is shut down both ways: time for the client to read the answer
 * before unread bytes make the kernel reset the connection. */
#define DEADLINES_LINGER_MS 1000u

/* How often the sweeper checks the deadlines. */
#define DEADLINES_SWEEP_MS 250

const char deadlines_408_body[] =
    "{\"error\":\"request body not received within INGESTER_BODY_TIMEOUT\"}";

struct deadlines {
    uint64_t header_ms, body_ms; /* 0: off */
    ingester_stats *stats;
    pthread_mutex_t conn_mu;
    pthread_cond_t sweep_cv;
    http_conn *conns; /* open connections, under conn_mu */
    pthread_t sweep_thread;
    bool sweep_started, sweep_stop;
};

http_conn *deadlines_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* Tracks connections from open to close. libmicrohttpd calls CLOSED before
 * it closes the socket, and the sweeper only touches fd under conn_mu, so
 * it never writes to or shuts down a descriptor that was reused. */
void deadlines_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    deadlines *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *hc = ci != NULL ? calloc(1, sizeof *hc) : NULL;
        if (hc == NULL)
            return; /* untracked: only the idle timeout applies */
        hc->fd = ci->connect_fd;
        atomic_init(&hc->since_ms, clock_mono_ms());
        atomic_init(&hc->in_request, false);
        atomic_init(&hc->body, (uint64_t)BODY_NONE);
        atomic_init(&hc->route, (int)STATS_ROUTE_OTHER);
        pthread_mutex_lock(&h->conn_mu);
        hc->next = h->conns;
        if (h->conns != NULL)
            h->conns->prev = hc;
        h->conns = hc;
        pthread_mutex_unlock(&h->conn_mu);
        *socket_context = hc;
        return;
    }
    http_conn *hc = *socket_context;
    if (hc == NULL)
        return;
    pthread_mutex_lock(&h->conn_mu);
    if (hc->prev != NULL)
        hc->prev->next = hc->next;
    else
        h->conns = hc->next;
    if (hc->next != NULL)
        hc->next->prev = hc->prev;
    pthread_mutex_unlock(&h->conn_mu);
    free(hc);
    *socket_context = NULL;
}

/* Writes the 408 of a body past its deadline straight to the socket (see
 * the top of the file for why) and ends the sending side. The socket is
 * non-blocking and nothing else is written during an upload, so the answer
 * fits in the empty send buffer. */
static void deadlines_write_408(int fd)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    /* IMF-fixdate; the C locale's day and month names are the HTTP ones. */
    if (strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        date[0] = '\0';
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nDate: %s\r\n"
                     "Content-Type: application/json\r\nCache-Control: no-store\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     date, strlen(deadlines_408_body), deadlines_408_body);
    if (n > 0 && (size_t)n < sizeof buf) {
        ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w; /* a client that has gone gets nothing either way */
    }
    shutdown(fd, SHUT_WR);
}

/* Every DEADLINES_SWEEP_MS: shuts down (both directions) every connection whose
 * request headers are overdue; answers 408 to every body past
 * INGESTER_BODY_TIMEOUT, and shuts those down DEADLINES_LINGER_MS later.
 * shutdown() leaves the descriptor to libmicrohttpd, which sees the end of
 * the stream and closes the connection itself. */
static void *deadlines_thread(void *arg)
{
    deadlines *h = arg;
    uint64_t header_ms = h->header_ms, body_ms = h->body_ms;
    pthread_mutex_lock(&h->conn_mu);
    while (!h->sweep_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += DEADLINES_SWEEP_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->sweep_cv, &h->conn_mu, &until);
        if (h->sweep_stop)
            continue;
        uint64_t now = clock_mono_ms();
        unsigned shut = 0, late = 0;
        for (http_conn *hc = h->conns; hc != NULL; hc = hc->next) {
            if (hc->shut)
                continue;
            if (hc->answered_ms != 0) {
                if (now - hc->answered_ms >= DEADLINES_LINGER_MS) {
                    shutdown(hc->fd, SHUT_RDWR);
                    hc->shut = true;
                }
                continue;
            }
            uint64_t w = atomic_load(&hc->body);
            if (BODY_PHASE(w) == BODY_READING && body_ms > 0 && now - BODY_START_MS(w) >= body_ms) {
                /* Decides against the handler's final call: one answer. */
                uint64_t expired = (w & ~(uint64_t)3u) | BODY_EXPIRED;
                if (atomic_compare_exchange_strong(&hc->body, &w, expired)) {
                    deadlines_write_408(hc->fd);
                    hc->answered_ms = now;
                    stats_http(h->stats, (stats_route)atomic_load(&hc->route),
                               MHD_HTTP_REQUEST_TIMEOUT);
                    stats_body_refused(h->stats, STATS_BODY_DEADLINE);
                    late++;
                }
                continue;
            }
            if (atomic_load(&hc->in_request) || header_ms == 0 ||
                now - atomic_load(&hc->since_ms) < header_ms)
                continue;
            shutdown(hc->fd, SHUT_RDWR);
            hc->shut = true;
            shut++;
        }
        if (shut > 0) {
            char n[16];
            snprintf(n, sizeof n, "%u", shut);
            log_msg(LL_LOG_WARN, "closed connections whose request headers were overdue",
                    "connections", n, NULL);
        }
        if (late > 0) {
            char n[16];
            snprintf(n, sizeof n, "%u", late);
            log_msg(LL_LOG_WARN, "answered 408 to request bodies past INGESTER_BODY_TIMEOUT",
                    "connections", n, NULL);
        }
    }
    pthread_mutex_unlock(&h->conn_mu);
    return NULL;
}

void deadlines_stop(deadlines *h)
{
    if (h == NULL || !h->sweep_started)
        return;
    pthread_mutex_lock(&h->conn_mu);
    h->sweep_stop = true;
    pthread_cond_signal(&h->sweep_cv);
    pthread_mutex_unlock(&h->conn_mu);
    pthread_join(h->sweep_thread, NULL);
    h->sweep_started = false;
}

deadlines *deadlines_start(unsigned header_timeout_s, unsigned body_timeout_s,
                           ingester_stats *stats, char *err, size_t errlen)
{
    deadlines *d = calloc(1, sizeof *d);
    if (d == NULL) {
        ll_failf(err, errlen, "could not start the connection deadlines: out of memory");
        return NULL;
    }
    d->header_ms = (uint64_t)header_timeout_s * 1000u;
    d->body_ms = (uint64_t)body_timeout_s * 1000u;
    d->stats = stats;
    pthread_mutex_init(&d->conn_mu, NULL);
    pthread_cond_init(&d->sweep_cv, NULL);
    int prc = pthread_create(&d->sweep_thread, NULL, deadlines_thread, d);
    if (prc != 0) {
        ll_failf(err, errlen, "could not start the deadline thread: %s", strerror(prc));

        deadlines_free(d);
        return NULL;
    }
    d->sweep_started = true;
    return d;
}

void deadlines_free(deadlines *d)
{
    if (d == NULL)
        return;
    deadlines_stop(d);
    pthread_cond_destroy(&d->sweep_cv);
    pthread_mutex_destroy(&d->conn_mu);
    free(d);
}
