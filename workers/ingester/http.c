/* http.c: billing-ingester's HTTP server on libmicrohttpd: routing of paths
 * and methods, body limits (413 from Content-Length before reading, and while
 * accumulating), the webhook pipeline (signature first, then the JSON
 * envelope, then a publish that waits for the broker's acknowledgement),
 * /healthz, /readyz, /metrics, and request metrics (stats.c).
 *
 * Threading: an internal epoll thread pool. A webhook whose event is being
 * published has its connection suspended (publish.c) and resumed from the
 * delivery report, so no pool thread waits on the broker; the resumed call of
 * the access handler answers 200 or 503.
 *
 * GET /readyz asks the broker for metadata (up to 2 s). That wait would
 * hold a pool thread, and with one pool thread (the default on 2 CPUs) stop
 * every other request, /healthz included, while the broker is down; so the
 * connection is suspended and a helper thread does the check and resumes
 * it (http_ready_thread).
 *
 * Per request, the hot path allocates the request state and the body only:
 * the constant answers are libmicrohttpd responses built once at start and
 * shared by every connection (they are reference counted), the body is
 * handed to librdkafka instead of copied, and the metrics are atomics.
 *
 * Slow-loris: libmicrohttpd's MHD_OPTION_CONNECTION_TIMEOUT is an idle
 * timeout, so a client sending one header byte a second holds its connection
 * (and a slot of INGESTER_MAX_CONNECTIONS / INGESTER_PER_IP_LIMIT) forever.
 * Every connection is therefore tracked (http_conn_notify) and one whose
 * request headers are not complete INGESTER_CONNECTION_TIMEOUT seconds after
 * it opened, or after its previous request ended, is shut down by
 * http_sweep_thread (tests/ingester/test_hostile.c).
 */
#include "ingester.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "ledgerline/log.h"
#include "ledgerline/worker_http.h"
#include "route.h"

/* Answers whose bytes never change, built once (http_canned). */
typedef enum {
    CANNED_RECEIVED = 0, /* 200 {"received":true} */
    CANNED_IGNORED,      /* 200 {"received":true,"ignored":true} */
    CANNED_UNAVAILABLE,  /* 503 not durably published */
    CANNED_NOT_FOUND,    /* 404 */
    CANNED_POST_ONLY,    /* 405, Allow: POST */
    CANNED_GET_ONLY,     /* 405, Allow: GET, HEAD */
    CANNED_TOO_LARGE,    /* 413 */
    CANNED_HEALTHY,      /* 200 ok */
    CANNED_READY,        /* 200 ready */
    CANNED_NOT_READY,    /* 503 broker unreachable */
    CANNED_COUNT
} http_canned;

typedef struct http_req http_req;

/* One open connection, for the request-header deadline (http_sweep_thread).
 * Linked under conn_mu; the two atomics are set by the pool threads. */
typedef struct http_conn http_conn;
struct http_conn {
    int fd;
    _Atomic uint64_t since_ms; /* opened, or its previous request ended */
    atomic_bool in_request;    /* headers complete, the handler has it */
    bool shut;
    http_conn *prev, *next;
};

struct ingester_http {
    struct MHD_Daemon *d;
    ingester *ing;
    struct MHD_Response *canned[CANNED_COUNT];
    unsigned canned_code[CANNED_COUNT];
    /* /readyz checks waiting for the helper thread (under ready_mu) */
    pthread_t ready_thread;
    bool ready_started, ready_stop;
    pthread_mutex_t ready_mu;
    pthread_cond_t ready_cv;
    http_req *ready_head;
    size_t ready_pending;
    /* open connections and the thread enforcing the header deadline */
    pthread_mutex_t conn_mu;
    pthread_cond_t sweep_cv;
    http_conn *conns;
    pthread_t sweep_thread;
    bool sweep_started, sweep_stop;
};

/* Bytes of an oversized chunked body read and discarded before the
 * connection is simply closed (a 413 is sent when the body ends first). */
#define HTTP_DISCARD_FACTOR 4

typedef enum { EP_WEBHOOK = 0, EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_NONE } http_endpoint;

struct http_req {
    http_endpoint ep;
    stats_route route; /* metrics label */
    /* /readyz: the suspended connection, the outcome, the helper's list */
    struct MHD_Connection *conn;
    bool ready_done, ready_ok;
    http_req *ready_next;
    char *buf;
    size_t len, cap;
    bool too_large;
    size_t discarded;
    publish_wait *wait; /* set while / after the event is published */
    route_event ev;
};

static const char json_unavailable[] =
    "{\"error\":\"event could not be durably published; retry later\"}";

/* The response every canned answer shares the headers of; NULL when out of
 * memory. */
static struct MHD_Response *http_canned_new(const char *ctype, const char *body,
                                            const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return NULL;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        MHD_add_response_header(r, "Cache-Control", "no-store") != MHD_YES ||
        (allow != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

static int http_canned_build(ingester_http *h)
{
    static const struct {
        unsigned code;
        const char *ctype, *body, *allow;
    } def[CANNED_COUNT] = {
        [CANNED_RECEIVED] = {MHD_HTTP_OK, "application/json", "{\"received\":true}", NULL},
        [CANNED_IGNORED] = {MHD_HTTP_OK, "application/json",
                            "{\"received\":true,\"ignored\":true}", NULL},
        [CANNED_UNAVAILABLE] = {MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                                json_unavailable, NULL},
        [CANNED_NOT_FOUND] = {MHD_HTTP_NOT_FOUND, "application/json",
                              "{\"error\":\"not found\"}", NULL},
        [CANNED_POST_ONLY] = {MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                              "{\"error\":\"method not allowed\"}", "POST"},
        [CANNED_GET_ONLY] = {MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                             "{\"error\":\"method not allowed\"}", "GET, HEAD"},
        [CANNED_TOO_LARGE] = {MHD_HTTP_CONTENT_TOO_LARGE, "application/json",
                              "{\"error\":\"body larger than INGESTER_MAX_BODY\"}", NULL},
        [CANNED_HEALTHY] = {MHD_HTTP_OK, "text/plain", "ok\n", NULL},
        [CANNED_READY] = {MHD_HTTP_OK, "text/plain", "ready\n", NULL},
        [CANNED_NOT_READY] = {MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                              "broker unreachable\n", NULL},
    };
    for (size_t i = 0; i < CANNED_COUNT; i++) {
        h->canned[i] = http_canned_new(def[i].ctype, def[i].body, def[i].allow);
        h->canned_code[i] = def[i].code;
        if (h->canned[i] == NULL)
            return -1;
    }
    return 0;
}

static void http_canned_free(ingester_http *h)
{
    for (size_t i = 0; i < CANNED_COUNT; i++) {
        if (h->canned[i] != NULL)
            MHD_destroy_response(h->canned[i]);
        h->canned[i] = NULL;
    }
}

/* Queues a canned answer and counts it. */
static enum MHD_Result http_send(struct MHD_Connection *c, ingester_http *h, stats_route route,
                                 http_canned which)
{
    stats_http(h->ing->stats, route, h->canned_code[which]);
    return MHD_queue_response(c, h->canned_code[which], h->canned[which]);
}

/* Takes a body that MHD copies; counts the answer by route and code. */
static enum MHD_Result http_respond(struct MHD_Connection *c, ingester *ing, stats_route route,
                                    unsigned code, const char *ctype, const void *body,
                                    size_t len, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    stats_http(ing->stats, route, code);
    return ret;
}

static enum MHD_Result http_json(struct MHD_Connection *c, ingester *ing, stats_route route,
                                 unsigned code, const char *json)
{
    return http_respond(c, ing, route, code, "application/json", json, strlen(json), NULL);
}

/* An error whose text varies (refusals: not the hot path). */
static enum MHD_Result http_error(struct MHD_Connection *c, ingester *ing, stats_route route,
                                  unsigned code, const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    enum MHD_Result ret = http_json(c, ing, route, code, text ? text : "{\"error\":\"error\"}");
    free(text);
    return ret;
}

/* "2026-11-24T07:42:13.123Z". The date and time part is formatted once per
 * second per thread. */
#define HTTP_RFC3339_LEN 64
static void http_now_rfc3339(char buf[HTTP_RFC3339_LEN])
{
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[HTTP_RFC3339_LEN - 8];
    static _Thread_local size_t cached_len;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        int n = snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
        cached_len = n > 0 && (size_t)n < sizeof cached ? (size_t)n : 0;
        cached_sec = now.tv_sec;
    }
    memcpy(buf, cached, cached_len);
    int ms = (int)(now.tv_nsec / 1000000L);
    buf[cached_len] = (char)('0' + ms / 100);
    buf[cached_len + 1] = (char)('0' + ms / 10 % 10);
    buf[cached_len + 2] = (char)('0' + ms % 10);
    buf[cached_len + 3] = 'Z';
    buf[cached_len + 4] = '\0';
}

static enum MHD_Result http_webhook(struct MHD_Connection *c, ingester_http *h, http_req *rq)
{
    ingester *ing = h->ing;
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Stripe-Signature");
    signature_result sr = signature_verify(sig, rq->buf, rq->len, &ing->secrets,
                                           (int64_t)time(NULL), ing->tolerance_s);
    if (sr != SIGNATURE_OK) {
        stats_signature_failure(ing->stats, (int)sr);
        log_msg(LOG_WARN, "webhook refused: signature", "reason", signature_result_text(sr),
                NULL);
        return http_error(c, ing, rq->route, MHD_HTTP_BAD_REQUEST, signature_result_text(sr));
    }

    route_event ev;
    char err[160];
    if (route_event_parse(rq->buf, rq->len, &ev, err, sizeof err) != 0) {
        log_msg(LOG_WARN, "webhook refused: envelope", "reason", err, NULL);
        return http_error(c, ing, rq->route, MHD_HTTP_BAD_REQUEST, err);
    }
    if (ev.dest == ROUTE_IGNORED) {
        stats_ignored(ing->stats);
        log_msg(LOG_INFO, "webhook ignored", "event_id", ev.id, "event_type", ev.type, NULL);
        return http_send(c, h, rq->route, CANNED_IGNORED);
    }

    const char *topic = ev.dest == ROUTE_PAYMENTS ? ing->topic_payments : ing->topic_disputes;
    char received_at[HTTP_RFC3339_LEN];
    http_now_rfc3339(received_at);
    kafka_header hdrs[] = {
        {"stripe-event-id", ev.id, strlen(ev.id)},
        {"stripe-event-type", ev.type, strlen(ev.type)},
        {"received-at", received_at, strlen(received_at)},
    };
    rq->ev = ev;
    /* Suspends the connection; the handler is called again once the outcome
     * is known (http_webhook_done). The body goes to librdkafka as is
     * (rq->buf becomes NULL once it is librdkafka's). */
    rq->wait = publish_start(ing->pub, c, topic, ev.key, &rq->buf, rq->len, hdrs, 3);
    if (rq->wait == NULL)
        return http_send(c, h, rq->route, CANNED_UNAVAILABLE);
    return MHD_YES;
}

/* The resumed call: the broker acknowledged the event, or not in time. */
static enum MHD_Result http_webhook_done(struct MHD_Connection *c, ingester_http *h,
                                         http_req *rq)
{
    ingester *ing = h->ing;
    const route_event *ev = &rq->ev;
    const char *topic = ev->dest == ROUTE_PAYMENTS ? ing->topic_payments : ing->topic_disputes;
    char kerr[256];
    uint64_t dt = 0;
    kafka_status ks = publish_wait_result(rq->wait, &dt, kerr, sizeof kerr);
    if (ks != KAFKA_OK) {
        stats_publish_failure(ing->stats, ks == KAFKA_TIMEOUT);
        log_msg(LOG_ERROR, "webhook not published, answering 503", "event_id", ev->id,
                "event_type", ev->type, "topic", topic, "error", kerr, NULL);
        return http_send(c, h, rq->route, CANNED_UNAVAILABLE);
    }
    stats_publish_duration_us(ing->stats, dt);
    stats_published(ing->stats, ev->known);
    log_msg(LOG_INFO, "webhook published", "event_id", ev->id, "event_type", ev->type, "topic",
            topic, "key", ev->key, NULL);
    return http_send(c, h, rq->route, CANNED_RECEIVED);
}

/* Serves the /readyz checks: one metadata request answers every check that
 * was waiting when it started. Before exiting (ready_stop) it answers what
 * is left, so no connection stays suspended. */
static void *http_ready_thread(void *arg)
{
    ingester_http *h = arg;
    pthread_mutex_lock(&h->ready_mu);
    for (;;) {
        while (!h->ready_stop && h->ready_head == NULL)
            pthread_cond_wait(&h->ready_cv, &h->ready_mu);
        if (h->ready_head == NULL)
            break; /* stopping, nothing left */
        http_req *list = h->ready_head;
        h->ready_head = NULL;
        pthread_mutex_unlock(&h->ready_mu);
        bool ok = publisher_reachable(h->ing->pub, 2000);
        pthread_mutex_lock(&h->ready_mu);
        while (list != NULL) {
            http_req *rq = list;
            list = rq->ready_next;
            /* rq is the connection's; not touched once it is resumed. */
            rq->ready_ok = ok;
            rq->ready_done = true;
            h->ready_pending--;
            MHD_resume_connection(rq->conn);
        }
    }
    pthread_mutex_unlock(&h->ready_mu);
    return NULL;
}

/* First call of GET /readyz: hand the check to the helper thread. */
static enum MHD_Result http_readyz_start(struct MHD_Connection *c, ingester_http *h,
                                         stats_route route, void **con_cls)
{
    http_req *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        return MHD_NO;
    rq->ep = EP_READYZ;
    rq->route = route;
    rq->conn = c;
    pthread_mutex_lock(&h->ready_mu);
    if (h->ready_stop) {
        pthread_mutex_unlock(&h->ready_mu);
        free(rq);
        return http_send(c, h, route, CANNED_NOT_READY);
    }
    *con_cls = rq;
    /* Suspended before the helper can see it, so it never resumes a
     * connection that is not suspended. */
    MHD_suspend_connection(c);
    rq->ready_next = h->ready_head;
    h->ready_head = rq;
    h->ready_pending++;
    pthread_cond_signal(&h->ready_cv);
    pthread_mutex_unlock(&h->ready_mu);
    return MHD_YES;
}

static enum MHD_Result http_get(struct MHD_Connection *c, ingester_http *h, http_endpoint ep,
                                stats_route route)
{
    ingester *ing = h->ing;
    if (ep == EP_HEALTHZ)
        return http_send(c, h, route, CANNED_HEALTHY);
    /* Count this request first so the rendered text includes it. */
    stats_http(ing->stats, route, MHD_HTTP_OK);
    size_t len = 0;
    char *text = stats_render(ing->stats, &len);
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* Strict decimal Content-Length; false when absent or malformed. */
static bool http_content_length(struct MHD_Connection *c, uint64_t *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v == NULL || *v == '\0')
        return false;
    uint64_t n = 0;
    for (const char *p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > UINT64_MAX / 10 - 10)
            return false;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *out = n;
    return true;
}

static uint64_t http_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The connection's tracker, or NULL when it is not tracked. */
static http_conn *http_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* The request's headers have arrived: the deadline no longer applies (the
 * body is bounded by INGESTER_MAX_BODY and the idle timeout, the publish by
 * INGESTER_PUBLISH_TIMEOUT_MS). */
static void http_conn_headers_done(struct MHD_Connection *c)
{
    http_conn *hc = http_conn_of(c);
    if (hc != NULL)
        atomic_store(&hc->in_request, true);
}

/* Tracks connections from open to close. libmicrohttpd calls CLOSED before
 * it closes the socket, and the sweeper only touches fd under conn_mu, so
 * it never shuts down a descriptor that was reused. */
static void http_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode code)
{
    ingester_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *hc = ci != NULL ? calloc(1, sizeof *hc) : NULL;
        if (hc == NULL)
            return; /* untracked: only the idle timeout applies */
        hc->fd = ci->connect_fd;
        atomic_store(&hc->since_ms, http_mono_ms());
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

/* Twice a second, shuts down (both directions) every connection whose
 * request headers are overdue. shutdown() leaves the descriptor to
 * libmicrohttpd, which sees the end of the stream and closes the
 * connection itself. */
static void *http_sweep_thread(void *arg)
{
    ingester_http *h = arg;
    uint64_t limit_ms = (uint64_t)h->ing->connection_timeout_s * 1000u;
    pthread_mutex_lock(&h->conn_mu);
    while (!h->sweep_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 500 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->sweep_cv, &h->conn_mu, &until);
        if (h->sweep_stop || limit_ms == 0)
            continue;
        uint64_t now = http_mono_ms();
        unsigned shut = 0;
        for (http_conn *hc = h->conns; hc != NULL; hc = hc->next) {
            if (hc->shut || atomic_load(&hc->in_request) ||
                now - atomic_load(&hc->since_ms) < limit_ms)
                continue;
            shutdown(hc->fd, SHUT_RDWR);
            hc->shut = true;
            shut++;
        }
        if (shut > 0) {
            char n[16];
            snprintf(n, sizeof n, "%u", shut);
            log_msg(LOG_WARN, "closed connections whose request headers were overdue",
                    "connections", n, NULL);
        }
    }
    pthread_mutex_unlock(&h->conn_mu);
    return NULL;
}

static void http_sweep_stop(ingester_http *h)
{
    if (!h->sweep_started)
        return;
    pthread_mutex_lock(&h->conn_mu);
    h->sweep_stop = true;
    pthread_cond_signal(&h->sweep_cv);
    pthread_mutex_unlock(&h->conn_mu);
    pthread_join(h->sweep_thread, NULL);
    h->sweep_started = false;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)version;
    ingester_http *h = cls;
    ingester *ing = h->ing;
    http_req *rq = *con_cls;

    if (rq == NULL) {
        http_conn_headers_done(c);
        http_endpoint ep = EP_NONE;
        stats_route route = STATS_ROUTE_OTHER;
        if (strcmp(url, "/webhooks/stripe") == 0) {
            ep = EP_WEBHOOK;
            route = STATS_ROUTE_WEBHOOK;
        } else if (strcmp(url, "/api/webhooks/stripe/") == 0) {
            ep = EP_WEBHOOK;
            route = STATS_ROUTE_API_WEBHOOK;
        } else if (strcmp(url, "/healthz") == 0) {
            ep = EP_HEALTHZ;
            route = STATS_ROUTE_HEALTHZ;
        } else if (strcmp(url, "/readyz") == 0) {
            ep = EP_READYZ;
            route = STATS_ROUTE_READYZ;
        } else if (strcmp(url, "/metrics") == 0) {
            ep = EP_METRICS;
            route = STATS_ROUTE_METRICS;
        }
        if (ep == EP_NONE)
            return http_send(c, h, route, CANNED_NOT_FOUND);
        if (ep != EP_WEBHOOK) {
            if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
                strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return http_send(c, h, route, CANNED_GET_ONLY);
            if (ep == EP_READYZ)
                return http_readyz_start(c, h, route, con_cls);
            return http_get(c, h, ep, route);
        }
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return http_send(c, h, route, CANNED_POST_ONLY);
        uint64_t clen = 0;
        bool has_len = http_content_length(c, &clen);
        if (has_len && clen > ing->max_body)
            return http_send(c, h, route, CANNED_TOO_LARGE);
        rq = calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        rq->ep = ep;
        rq->route = route;
        rq->cap = has_len ? (size_t)clen : 4096;
        rq->buf = malloc(rq->cap + 1);
        if (rq->buf == NULL) {
            free(rq);
            return MHD_NO;
        }
        *con_cls = rq;
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!rq->too_large && n > ing->max_body - rq->len) {
            rq->too_large = true;
            rq->discarded = rq->len;
            rq->len = 0;
        }
        if (rq->too_large) {
            rq->discarded += n;
            /* Do not read an endless body just to answer it. */
            return rq->discarded > ing->max_body * HTTP_DISCARD_FACTOR ? MHD_NO : MHD_YES;
        }
        if (rq->len + n > rq->cap) {
            size_t cap = rq->cap * 2 > rq->len + n ? rq->cap * 2 : rq->len + n;
            if (cap > ing->max_body)
                cap = ing->max_body;
            char *b = realloc(rq->buf, cap + 1);
            if (b == NULL)
                return MHD_NO;
            rq->buf = b;
            rq->cap = cap;
        }
        memcpy(rq->buf + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }

    if (rq->ep == EP_READYZ) /* resumed by http_ready_thread */
        return http_send(c, h, rq->route, rq->ready_ok ? CANNED_READY : CANNED_NOT_READY);
    if (rq->wait != NULL)
        return http_webhook_done(c, h, rq);
    if (rq->too_large)
        return http_send(c, h, rq->route, CANNED_TOO_LARGE);
    rq->buf[rq->len] = '\0';
    return http_webhook(c, h, rq);
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    /* A keep-alive connection's next request gets its own deadline. */
    http_conn *hc = http_conn_of(c);
    if (hc != NULL) {
        atomic_store(&hc->since_ms, http_mono_ms());
        atomic_store(&hc->in_request, false);
    }
    http_req *rq = *con_cls;
    if (rq == NULL)
        return;
    publish_wait_release(rq->wait);
    free(rq->buf);
    free(rq);
    *con_cls = NULL;
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    log_msg(LOG_WARN, "libmicrohttpd", "detail", buf, NULL);
}

/* Address resolution is shared with the workers' listener (worker_http.c). */
static int http_resolve(const char *host, int port, struct sockaddr_in *sa, char *err,
                        size_t errlen)
{
    return worker_http_resolve("INGESTER_LISTEN", host, port, sa, err, errlen);
}

/* Stops the readiness thread (it answers what is waiting first) and frees
 * its lock. */
static void http_ready_destroy(ingester_http *h)
{
    if (h->ready_started) {
        pthread_mutex_lock(&h->ready_mu);
        h->ready_stop = true;
        pthread_cond_signal(&h->ready_cv);
        pthread_mutex_unlock(&h->ready_mu);
        pthread_join(h->ready_thread, NULL);
        h->ready_started = false;
    }
    pthread_cond_destroy(&h->ready_cv);
    pthread_mutex_destroy(&h->ready_mu);
}

/* After MHD_stop_daemon (every connection reported closed) or when the
 * daemon never started. */
static void http_conns_destroy(ingester_http *h)
{
    http_sweep_stop(h);
    pthread_cond_destroy(&h->sweep_cv);
    pthread_mutex_destroy(&h->conn_mu);
}

ingester_http *ingester_http_start(ingester *ing, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (http_resolve(ing->host, ing->port, &sa, err, errlen) != 0)
        return NULL;
    ingester_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->ing = ing;
    pthread_mutex_init(&h->ready_mu, NULL);
    pthread_cond_init(&h->ready_cv, NULL);
    pthread_mutex_init(&h->conn_mu, NULL);
    pthread_cond_init(&h->sweep_cv, NULL);
    if (http_canned_build(h) != 0) {
        snprintf(err, errlen, "out of memory");
        http_canned_free(h);
        http_ready_destroy(h);
        http_conns_destroy(h);
        free(h);
        return NULL;
    }
    if (pthread_create(&h->ready_thread, NULL, http_ready_thread, h) != 0) {
        snprintf(err, errlen, "cannot start the readiness thread");
        http_canned_free(h);
        http_ready_destroy(h);
        http_conns_destroy(h);
        free(h);
        return NULL;
    }
    h->ready_started = true;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* One thread is the internal polling thread alone: the pool option is
     * left out (libmicrohttpd warns on a pool of 0 or 1). */
    struct MHD_OptionItem pool[] = {
        {ing->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)ing->threads,
         NULL},
        {MHD_OPTION_END, 0, NULL}};
    h->d = MHD_start_daemon(
        flags, (uint16_t)ing->port, NULL, NULL, http_handler, h,
        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, (void *)NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_ARRAY, pool,
        MHD_OPTION_CONNECTION_LIMIT, ing->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, ing->per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, ing->connection_timeout_s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, (void *)NULL,
        MHD_OPTION_NOTIFY_CONNECTION, http_conn_notify, (void *)h,
        MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not permitted)",
                 ing->host[0] ? ing->host : "0.0.0.0", ing->port);
        http_ready_destroy(h);
        http_canned_free(h);
        http_conns_destroy(h);
        free(h);
        return NULL;
    }
    if (pthread_create(&h->sweep_thread, NULL, http_sweep_thread, h) == 0)
        h->sweep_started = true;
    else /* only the idle timeout applies then */
        log_msg(LOG_ERROR, "cannot start the header deadline thread", NULL);
    return h;
}

void ingester_http_quiesce(ingester_http *h)
{
    if (h != NULL && h->d != NULL)
        MHD_quiesce_daemon(h->d);
}

static size_t http_ready_pending(ingester_http *h)
{
    pthread_mutex_lock(&h->ready_mu);
    size_t n = h->ready_pending;
    pthread_mutex_unlock(&h->ready_mu);
    return n;
}

void ingester_http_drain(ingester_http *h, int timeout_ms)
{
    for (int waited = 0;
         h != NULL && (publisher_pending(h->ing->pub) > 0 || http_ready_pending(h) > 0) &&
         waited < timeout_ms;
         waited += 20) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void ingester_http_stop(ingester_http *h)
{
    if (h == NULL)
        return;
    /* Answers the /readyz checks still waiting before the server stops. */
    http_ready_destroy(h);
    http_sweep_stop(h);
    /* libmicrohttpd reports each connection closed (conn_mu) while it stops. */
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    http_canned_free(h);
    http_conns_destroy(h);
    free(h);
}
