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
 * GET /readyz asks the broker for metadata off the pool threads: its
 * connection is suspended and ready.c's helper thread resumes it.
 *
 * Per request, the hot path allocates the request state and the body only:
 * the constant answers are libmicrohttpd responses built once at start and
 * shared by every connection (they are reference counted), the body is
 * handed to librdkafka instead of copied, and the metrics are atomics.
 *
 * Slow-loris: the header and body deadlines are deadlines.c's; the body
 * handlers here take part in its one-answer rule (the body word's
 * compare-and-swap).
 *
 * Memory: a body buffer grows as bytes arrive (doubling from 4 KiB, never
 * past INGESTER_MAX_BODY or the announced Content-Length), so an announced
 * size pins nothing. Every buffer is reserved against INGESTER_MAX_BUFFERED
 * (stats_body_reserve) until its request ends (after the publish, since
 * librdkafka holds the bytes until the delivery report); a body that finds
 * no room is dropped at once and answered 503, which Stripe retries.
 *
 * INGESTER_ADMIN_LISTEN, when set, starts a second daemon for /healthz,
 * /readyz and /metrics; /metrics is then 404 on the public listener.
 */
#include "ingester.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "ledgerline/log.h"
#include "ledgerline/clock.h"
#include "ledgerline/failf.h"
#include "ledgerline/worker_http.h"
#include "deadlines.h"
#include "ready.h"
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
    CANNED_BODY_TIMEOUT, /* 408, Connection: close */
    CANNED_BUSY,         /* 503 no room under INGESTER_MAX_BUFFERED */
    CANNED_HEALTHY,      /* 200 ok */
    CANNED_READY,        /* 200 ready */
    CANNED_NOT_READY,    /* 503 broker unreachable */
    CANNED_COUNT
} http_canned;

typedef struct http_req http_req;

/* One listening daemon: the public one, or the admin one
 * (INGESTER_ADMIN_LISTEN). */
typedef struct {
    ingester_http *h;
    bool admin;
} http_listener;

struct ingester_http {
    struct MHD_Daemon *d, *admin_d;
    http_listener pub_l, admin_l;
    ingester *ing;
    struct MHD_Response *canned[CANNED_COUNT];
    unsigned canned_code[CANNED_COUNT];
    ready_checker *ready; /* /readyz checks (ready.c) */
    deadlines *dl;        /* open connections and their deadlines (deadlines.c) */
};

/* Bytes of an oversized chunked body read and discarded before the
 * connection is simply closed (a 413 is sent when the body ends first). */
#define HTTP_DISCARD_FACTOR 4

/* First size of a body buffer; it doubles from there as bytes arrive. */
#define HTTP_BODY_MIN 4096u

/* Admin listener: a few scrapers and probes. */
#define HTTP_ADMIN_MAX_CONNECTIONS 64u

typedef enum { REFUSE_NONE = 0, REFUSE_TOO_LARGE, REFUSE_BUSY } http_refusal;

typedef enum { EP_WEBHOOK = 0, EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_NONE } http_endpoint;

struct http_req {
    http_endpoint ep;
    stats_route route; /* metrics label */
    ready_check ready; /* /readyz: the suspended connection and its outcome */
    /* webhook body */
    http_conn *hc;          /* the connection's tracker; NULL: untracked */
    uint64_t body_word;     /* what hc->body was set to at the headers */
    uint64_t body_start_ms; /* headers complete */
    bool has_len;
    uint64_t clen;   /* Content-Length, when has_len */
    char *buf;       /* grows as bytes arrive; NULL until the first */
    size_t len, cap; /* bytes held, buffer size (cap + 1 allocated) */
    size_t seen;     /* body bytes received, kept or not */
    size_t reserved; /* bytes reserved under INGESTER_MAX_BUFFERED */
    http_refusal refused;
    publish_wait *wait; /* set while / after the event is published */
    route_event ev;
};

static const char json_unavailable[] =
    "{\"error\":\"event could not be durably published; retry later\"}";

/* The response every canned answer shares the headers of; NULL when out of
 * memory. */
static struct MHD_Response *http_canned_new(const char *ctype, const char *body, const char *allow,
                                            bool close)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return NULL;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        MHD_add_response_header(r, "Cache-Control", "no-store") != MHD_YES ||
        (allow != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES) ||
        (close && MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
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
        bool close;
    } def[CANNED_COUNT] = {
        [CANNED_RECEIVED] = {MHD_HTTP_OK, "application/json", "{\"received\":true}", NULL},
        [CANNED_IGNORED] = {MHD_HTTP_OK, "application/json", "{\"received\":true,\"ignored\":true}",
                            NULL},
        [CANNED_UNAVAILABLE] = {MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", json_unavailable,
                                NULL},
        [CANNED_NOT_FOUND] = {MHD_HTTP_NOT_FOUND, "application/json", "{\"error\":\"not found\"}",
                              NULL},
        [CANNED_POST_ONLY] = {MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                              "{\"error\":\"method not allowed\"}", "POST"},
        [CANNED_GET_ONLY] = {MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                             "{\"error\":\"method not allowed\"}", "GET, HEAD"},
        [CANNED_TOO_LARGE] = {MHD_HTTP_CONTENT_TOO_LARGE, "application/json",
                              "{\"error\":\"body larger than INGESTER_MAX_BODY\"}", NULL},
        [CANNED_BODY_TIMEOUT] = {MHD_HTTP_REQUEST_TIMEOUT, "application/json", deadlines_408_body,
                                 NULL, true},
        [CANNED_BUSY] = {MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                         "{\"error\":\"too many request bodies in memory "
                         "(INGESTER_MAX_BUFFERED); retry later\"}",
                         NULL},
        [CANNED_HEALTHY] = {MHD_HTTP_OK, "text/plain", "ok\n", NULL},
        [CANNED_READY] = {MHD_HTTP_OK, "text/plain", "ready\n", NULL},
        [CANNED_NOT_READY] = {MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "broker unreachable\n",
                              NULL},
    };
    for (size_t i = 0; i < CANNED_COUNT; i++) {
        h->canned[i] = http_canned_new(def[i].ctype, def[i].body, def[i].allow, def[i].close);
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
                                    unsigned code, const char *ctype, const void *body, size_t len,
                                    const char *allow)
{
    enum MHD_Result ret = worker_http_respond(c, code, ctype, body, len, allow);
    if (ret == MHD_NO)
        return MHD_NO;
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
        int n = snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
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
        log_msg(LL_LOG_WARN, "webhook refused: signature", "reason", signature_result_text(sr),
                NULL);
        return http_error(c, ing, rq->route, MHD_HTTP_BAD_REQUEST, signature_result_text(sr));
    }

    route_event ev;
    char err[160];
    if (route_event_parse(rq->buf, rq->len, &ev, err, sizeof err) != 0) {
        log_msg(LL_LOG_WARN, "webhook refused: envelope", "reason", err, NULL);
        return http_error(c, ing, rq->route, MHD_HTTP_BAD_REQUEST, err);
    }
    if (ev.dest == ROUTE_IGNORED) {
        stats_ignored(ing->stats);
        log_msg(LL_LOG_INFO, "webhook ignored", "event_id", ev.id, "event_type", ev.type, NULL);
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
static enum MHD_Result http_webhook_done(struct MHD_Connection *c, ingester_http *h, http_req *rq)
{
    ingester *ing = h->ing;
    const route_event *ev = &rq->ev;
    const char *topic = ev->dest == ROUTE_PAYMENTS ? ing->topic_payments : ing->topic_disputes;
    char kerr[256];
    uint64_t dt = 0;
    kafka_status ks = publish_wait_result(rq->wait, &dt, kerr, sizeof kerr);
    if (ks != KAFKA_OK) {
        stats_publish_failure(ing->stats, ks == KAFKA_TIMEOUT);
        log_msg(LL_LOG_ERROR, "webhook not published, answering 503", "event_id", ev->id,
                "event_type", ev->type, "topic", topic, "error", kerr, NULL);
        return http_send(c, h, rq->route, CANNED_UNAVAILABLE);
    }
    stats_publish_duration_us(ing->stats, dt);
    stats_published(ing->stats, ev->known);
    log_msg(LL_LOG_INFO, "webhook published", "event_id", ev->id, "event_type", ev->type, "topic",
            topic, "key", ev->key, NULL);
    return http_send(c, h, rq->route, CANNED_RECEIVED);
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
    *con_cls = rq;
    if (!ready_checker_submit(h->ready, &rq->ready, c)) {
        *con_cls = NULL;
        free(rq);
        return http_send(c, h, route, CANNED_NOT_READY);
    }
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
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
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
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
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

/* First call of a webhook POST: the headers are complete, the body
 * deadline starts. Nothing is allocated for the body yet. */
static enum MHD_Result http_body_start(struct MHD_Connection *c, ingester_http *h, http_conn *hc,
                                       http_endpoint ep, stats_route route, void **con_cls)
{
    ingester *ing = h->ing;
    uint64_t clen = 0;
    bool has_len = http_content_length(c, &clen);
    if (has_len && clen > ing->max_body) {
        stats_body_refused(ing->stats, STATS_BODY_TOO_LARGE);
        return http_send(c, h, route, CANNED_TOO_LARGE);
    }
    http_req *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        return MHD_NO;
    rq->ep = ep;
    rq->route = route;
    rq->has_len = has_len;
    rq->clen = clen;
    rq->body_start_ms = clock_mono_ms();
    rq->hc = hc;
    if (rq->hc != NULL) {
        atomic_store(&rq->hc->route, (int)route);
        rq->body_word = rq->body_start_ms << 2 | BODY_READING;
        atomic_store(&rq->hc->body, rq->body_word);
    }
    *con_cls = rq;
    return MHD_YES;
}

/* Frees the body and gives its reservation back. */
static void http_body_release(ingester_http *h, http_req *rq)
{
    free(rq->buf);
    rq->buf = NULL;
    rq->len = rq->cap = 0;
    if (rq->reserved > 0) {
        stats_body_release(h->ing->stats, rq->reserved);
        rq->reserved = 0;
    }
}

/* Makes room for n more bytes (a buffer of at least 1 byte for the
 * terminator when n is 0): doubles, from HTTP_BODY_MIN, up to
 * INGESTER_MAX_BODY and the announced Content-Length, each byte reserved
 * under INGESTER_MAX_BUFFERED. 0, 1 when there is no room (the request is
 * then refused with 503), -1 out of memory. */
static int http_body_room(ingester_http *h, http_req *rq, size_t n)
{
    ingester *ing = h->ing;
    size_t want = rq->len + n; /* <= max_body: checked by the caller */
    if (rq->buf != NULL && want <= rq->cap)
        return 0;
    size_t cap = rq->cap * 2;
    if (cap < HTTP_BODY_MIN)
        cap = HTTP_BODY_MIN;
    if (cap < want)
        cap = want;
    if (cap > ing->max_body)
        cap = ing->max_body;
    if (rq->has_len && rq->clen < cap && rq->clen >= want)
        cap = (size_t)rq->clen;
    size_t total = cap + 1; /* the terminator http_webhook needs */
    if (total > rq->reserved) {
        if (!stats_body_reserve(ing->stats, total - rq->reserved, ing->max_buffered))
            return 1;
        rq->reserved = total;
    }
    char *b = realloc(rq->buf, total);
    if (b == NULL)
        return -1; /* the reservation goes back when the request ends */
    rq->buf = b;
    rq->cap = cap;
    return 0;
}

/* A piece of a webhook body. */
static enum MHD_Result http_body_data(ingester_http *h, http_req *rq, const char *data, size_t n)
{
    ingester *ing = h->ing;
    rq->seen = n > SIZE_MAX - rq->seen ? SIZE_MAX : rq->seen + n;
    /* Answered 408 by the sweeper: nothing more is kept. */
    if (rq->hc != NULL && BODY_PHASE(atomic_load(&rq->hc->body)) == BODY_EXPIRED)
        return MHD_YES;
    if (rq->refused != REFUSE_TOO_LARGE && rq->seen > ing->max_body) {
        rq->refused = REFUSE_TOO_LARGE;
        http_body_release(h, rq);
    }
    if (rq->refused == REFUSE_TOO_LARGE)
        /* Do not read an endless body just to answer it. */
        return rq->seen > ing->max_body * HTTP_DISCARD_FACTOR ? MHD_NO : MHD_YES;
    if (rq->refused == REFUSE_BUSY)
        return MHD_YES;
    int room = http_body_room(h, rq, n);
    if (room < 0)
        return MHD_NO;
    if (room > 0) {
        http_body_release(h, rq);
        rq->refused = REFUSE_BUSY;
        return MHD_YES;
    }
    memcpy(rq->buf + rq->len, data, n);
    rq->len += n;
    return MHD_YES;
}

/* The last call of a webhook POST: the whole body is there. */
static enum MHD_Result http_body_end(struct MHD_Connection *c, ingester_http *h, http_req *rq)
{
    ingester *ing = h->ing;
    bool late = clock_mono_ms() - rq->body_start_ms >= (uint64_t)ing->body_timeout_s * 1000u;
    if (rq->hc != NULL) {
        uint64_t w = rq->body_word;
        uint64_t next = (w & ~(uint64_t)3u) | (late ? BODY_EXPIRED : BODY_DONE);
        if (!atomic_compare_exchange_strong(&rq->hc->body, &w, next))
            return MHD_NO; /* the sweeper answered 408 and closes the connection */
    }
    if (late) {
        http_body_release(h, rq);
        stats_body_refused(ing->stats, STATS_BODY_DEADLINE);
        log_msg(LL_LOG_WARN, "webhook refused: body not received within INGESTER_BODY_TIMEOUT",
                NULL);
        return http_send(c, h, rq->route, CANNED_BODY_TIMEOUT);
    }
    if (rq->refused == REFUSE_TOO_LARGE) {
        stats_body_refused(ing->stats, STATS_BODY_TOO_LARGE);
        return http_send(c, h, rq->route, CANNED_TOO_LARGE);
    }
    if (rq->refused == REFUSE_NONE) {
        int room = http_body_room(h, rq, 0); /* an empty body has no buffer yet */
        if (room < 0)
            return MHD_NO;
        if (room > 0) {
            http_body_release(h, rq);
            rq->refused = REFUSE_BUSY;
        }
    }
    if (rq->refused == REFUSE_BUSY) {
        char held[32];
        snprintf(held, sizeof held, "%" PRIu64, stats_body_bytes(ing->stats));
        stats_body_refused(ing->stats, STATS_BODY_BUFFER_FULL);
        log_msg(LL_LOG_WARN, "webhook refused: INGESTER_MAX_BUFFERED reached, answering 503",
                "buffered_bytes", held, NULL);
        return http_send(c, h, rq->route, CANNED_BUSY);
    }
    rq->buf[rq->len] = '\0';
    return http_webhook(c, h, rq);
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)version;
    const http_listener *l = cls;
    ingester_http *h = l->h;
    http_req *rq = *con_cls;

    if (rq == NULL) {
        http_conn *hc = deadlines_conn_of(c);
        if (hc != NULL) /* the header deadline no longer applies */
            atomic_store(&hc->in_request, true);
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
        /* Webhooks only on the public listener; /metrics only on the admin
         * one when there is one. */
        if ((l->admin && ep == EP_WEBHOOK) || (!l->admin && ep == EP_METRICS && h->admin_d != NULL))
            ep = EP_NONE;
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
        return http_body_start(c, h, hc, ep, route, con_cls);
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return http_body_data(h, rq, upload_data, n);
    }

    if (rq->ep == EP_READYZ) /* resumed by ready.c's thread */
        return http_send(c, h, rq->route, rq->ready.ok ? CANNED_READY : CANNED_NOT_READY);
    if (rq->wait != NULL)
        return http_webhook_done(c, h, rq);
    return http_body_end(c, h, rq);
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    ingester_http *h = cls;
    (void)toe;
    /* A keep-alive connection's next request gets its own deadlines. */
    http_conn *hc = deadlines_conn_of(c);
    if (hc != NULL) {
        atomic_store(&hc->body, (uint64_t)BODY_NONE);
        atomic_store(&hc->since_ms, clock_mono_ms());
        atomic_store(&hc->in_request, false);
    }
    http_req *rq = *con_cls;
    if (rq == NULL)
        return;
    publish_wait_release(rq->wait);
    http_body_release(h, rq);
    free(rq);
    *con_cls = NULL;
}

/* Address resolution is shared with the workers' listener (worker_http.c). */
static int http_resolve(const char *host, int port, struct sockaddr_in *sa, char *err,
                        size_t errlen)
{
    return worker_http_resolve("INGESTER_LISTEN", host, port, sa, err, errlen);
}

/* Per-connection memory of libmicrohttpd (request line, headers and the
 * read buffer the body passes through): its default, spelled out because
 * the memory limits of the deployment are sized from it
 * (docs/INGESTER.md, "Memory"). */
#define HTTP_CONN_MEMORY ((size_t)32 * 1024)

static void http_start_failed(ingester_http *h)
{
    ready_checker_free(h->ready);
    http_canned_free(h);
    deadlines_free(h->dl);
    free(h);
}

ingester_http *ingester_http_start(ingester *ing, char *err, size_t errlen)
{
    struct sockaddr_in sa, admin_sa;
    if (http_resolve(ing->host, ing->port, &sa, err, errlen) != 0)
        return NULL;
    if (ing->admin_port > 0 && worker_http_resolve("INGESTER_ADMIN_LISTEN", ing->admin_host,
                                                   ing->admin_port, &admin_sa, err, errlen) != 0)
        return NULL;
    ingester_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        ll_failf(err, errlen, "could not start the HTTP server: out of memory");
        return NULL;
    }
    h->ing = ing;
    h->pub_l = (http_listener){h, false};
    h->admin_l = (http_listener){h, true};
    if (http_canned_build(h) != 0) {
        ll_failf(err, errlen, "could not build the canned answers: out of memory");
        http_start_failed(h);
        return NULL;
    }
    h->ready = ready_checker_start(ing->pub, err, errlen);
    if (h->ready == NULL) {
        http_start_failed(h);
        return NULL;
    }
    /* Before any connection: the deadlines hold from the first one. */
    h->dl =
        deadlines_start(ing->connection_timeout_s, ing->body_timeout_s, ing->stats, err, errlen);
    if (h->dl == NULL) {
        http_start_failed(h);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    /* One thread is the internal polling thread alone: the pool option is
     * left out (libmicrohttpd warns on a pool of 0 or 1). */
    struct MHD_OptionItem pool[] = {
        {ing->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)ing->threads,
         NULL},
        {MHD_OPTION_END, 0, NULL}};
    h->d = MHD_start_daemon(
        flags, (uint16_t)ing->port, NULL, NULL, http_handler, &h->pub_l, MHD_OPTION_EXTERNAL_LOGGER,
        worker_http_mhd_log, (void *)NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_ARRAY, pool, MHD_OPTION_CONNECTION_LIMIT, ing->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, ing->per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        ing->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, http_completed,
        (void *)h, MHD_OPTION_NOTIFY_CONNECTION, deadlines_notify, (void *)h->dl, MHD_OPTION_END);
    if (h->d == NULL) {
        ll_failf(err, errlen, "could not listen on %s:%d: the address is in use or not permitted",
                 ing->host[0] ? ing->host : "0.0.0.0", ing->port);
        ll_hintf(err, errlen,
                 "Set INGESTER_LISTEN to a free host:port, or stop what holds this "
                 "one.");
        http_start_failed(h);
        return NULL;
    }
    if (ing->admin_port > 0) {
        /* /healthz, /readyz, /metrics for probes and scrapers: one thread. */
        h->admin_d = MHD_start_daemon(
            flags, (uint16_t)ing->admin_port, NULL, NULL, http_handler, &h->admin_l,
            MHD_OPTION_EXTERNAL_LOGGER, worker_http_mhd_log, (void *)NULL, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&admin_sa, MHD_OPTION_CONNECTION_LIMIT, HTTP_ADMIN_MAX_CONNECTIONS,
            MHD_OPTION_CONNECTION_TIMEOUT, ing->connection_timeout_s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
            http_completed, (void *)h, MHD_OPTION_NOTIFY_CONNECTION, deadlines_notify,
            (void *)h->dl, MHD_OPTION_END);
        if (h->admin_d == NULL) {
            ll_failf(err, errlen,
                     "could not listen on %s:%d: the address is in use or not permitted",
                     ing->admin_host[0] ? ing->admin_host : "0.0.0.0", ing->admin_port);
            ll_hintf(err, errlen,
                     "Set INGESTER_ADMIN_LISTEN to a free host:port, or stop what "
                     "holds this one.");

            ingester_http_stop(h);
            return NULL;
        }
    }
    return h;
}

void ingester_http_quiesce(ingester_http *h)
{
    if (h != NULL && h->d != NULL)
        MHD_quiesce_daemon(h->d);
    /* The admin listener keeps answering probes until the stop. */
}

void ingester_http_drain(ingester_http *h, int timeout_ms)
{
    for (int waited = 0;
         h != NULL && (publisher_pending(h->ing->pub) > 0 || ready_checker_pending(h->ready) > 0) &&
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
    ready_checker_stop(h->ready);
    deadlines_stop(h->dl);
    /* libmicrohttpd reports each connection closed (deadlines.c) while it stops. */
    if (h->admin_d != NULL)
        MHD_stop_daemon(h->admin_d);
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    ready_checker_free(h->ready);
    http_canned_free(h);
    deadlines_free(h->dl);
    free(h);
}
