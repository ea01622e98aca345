/* http.c: billing-ingester's HTTP server on libmicrohttpd: routing of paths
 * and methods, body limits (413 from Content-Length before reading, and while
 * accumulating), the webhook pipeline (signature first, then the JSON
 * envelope, then a publish that waits for the broker's acknowledgement),
 * /healthz, /readyz, /metrics, and request metrics.
 *
 * Threading: an internal epoll thread pool. A webhook whose event is being
 * published has its connection suspended (publish.c) and resumed from the
 * delivery report, so no pool thread waits on the broker; the resumed call of
 * the access handler answers 200 or 503.
 */
#include "ingester.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "ledgerline/log.h"
#include "route.h"

struct ingester_http {
    struct MHD_Daemon *d;
    ingester *ing;
};

/* Bytes of an oversized chunked body read and discarded before the
 * connection is simply closed (a 413 is sent when the body ends first). */
#define HTTP_DISCARD_FACTOR 4

typedef enum { EP_WEBHOOK = 0, EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_NONE } http_endpoint;

typedef struct {
    http_endpoint ep;
    const char *route; /* metrics label */
    char *buf;
    size_t len, cap;
    bool too_large;
    size_t discarded;
    publish_wait *wait; /* set while / after the event is published */
    route_event ev;
} http_req;

static const char json_received[] = "{\"received\":true}";
static const char json_ignored[] = "{\"received\":true,\"ignored\":true}";

int ingester_metrics_declare(ingester *ing)
{
    metrics_registry *m = ing->metrics;
    int rc = 0;
    rc |= metrics_declare(m, "ingester_http_requests_total", METRICS_COUNTER,
                          "HTTP requests answered, by route and status code.");
    rc |= metrics_declare(m, "ingester_events_published_total", METRICS_COUNTER,
                          "Stripe events acknowledged by Kafka, by event type.");
    rc |= metrics_declare(m, "ingester_events_ignored_total", METRICS_COUNTER,
                          "Verified Stripe events of types the system does not handle.");
    rc |= metrics_declare(m, "ingester_signature_failures_total", METRICS_COUNTER,
                          "Requests refused by signature verification, by reason.");
    rc |= metrics_declare(m, "ingester_publish_failures_total", METRICS_COUNTER,
                          "Events answered 503 because Kafka did not acknowledge them in time.");
    rc |= metrics_declare(m, "ingester_publish_duration_seconds", METRICS_HISTOGRAM,
                          "Time from produce to the broker's delivery report.");
    return rc == 0 ? 0 : -1;
}

/* Takes a body that MHD copies; counts the answer by route and code. */
static enum MHD_Result http_respond(struct MHD_Connection *c, ingester *ing, const char *route,
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
    char codes[8];
    snprintf(codes, sizeof codes, "%u", code);
    metrics_counter_add(ing->metrics, "ingester_http_requests_total", 1, "route", route, "code",
                        codes, NULL);
    return ret;
}

static enum MHD_Result http_json(struct MHD_Connection *c, ingester *ing, const char *route,
                                 unsigned code, const char *json)
{
    return http_respond(c, ing, route, code, "application/json", json, strlen(json), NULL);
}

static enum MHD_Result http_error(struct MHD_Connection *c, ingester *ing, const char *route,
                                  unsigned code, const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    enum MHD_Result ret = http_json(c, ing, route, code, text ? text : "{\"error\":\"error\"}");
    free(text);
    return ret;
}

static void http_now_rfc3339(char *buf, size_t len)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000L));
}

/* Label for events_published: routed types are a fixed set. */
static const char *http_type_label(const char *type)
{
    for (size_t i = 0; route_known_types[i] != NULL; i++)
        if (strcmp(route_known_types[i], type) == 0)
            return route_known_types[i];
    return "other";
}

static enum MHD_Result http_webhook(struct MHD_Connection *c, ingester *ing, http_req *rq)
{
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Stripe-Signature");
    signature_result sr = signature_verify(sig, rq->buf, rq->len, &ing->secrets,
                                           (int64_t)time(NULL), ing->tolerance_s);
    if (sr != SIGNATURE_OK) {
        static const char *const reasons[] = {"ok", "missing", "malformed", "no_v1",
                                              "stale", "future", "mismatch"};
        metrics_counter_add(ing->metrics, "ingester_signature_failures_total", 1, "reason",
                            reasons[sr], NULL);
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
        metrics_counter_add(ing->metrics, "ingester_events_ignored_total", 1, NULL);
        log_msg(LOG_INFO, "webhook ignored", "event_id", ev.id, "event_type", ev.type, NULL);
        return http_json(c, ing, rq->route, MHD_HTTP_OK, json_ignored);
    }

    const char *topic = ev.dest == ROUTE_PAYMENTS ? ing->topic_payments : ing->topic_disputes;
    char received_at[64];
    http_now_rfc3339(received_at, sizeof received_at);
    kafka_header hdrs[] = {
        {"stripe-event-id", ev.id, strlen(ev.id)},
        {"stripe-event-type", ev.type, strlen(ev.type)},
        {"received-at", received_at, strlen(received_at)},
    };
    rq->ev = ev;
    /* Suspends the connection; the handler is called again once the outcome
     * is known (http_webhook_done). */
    rq->wait = publish_start(ing->pub, c, topic, ev.key, rq->buf, rq->len, hdrs, 3);
    if (rq->wait == NULL)
        return http_error(c, ing, rq->route, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "event could not be durably published; retry later");
    return MHD_YES;
}

/* The resumed call: the broker acknowledged the event, or not in time. */
static enum MHD_Result http_webhook_done(struct MHD_Connection *c, ingester *ing, http_req *rq)
{
    const route_event *ev = &rq->ev;
    const char *topic = ev->dest == ROUTE_PAYMENTS ? ing->topic_payments : ing->topic_disputes;
    char kerr[256];
    uint64_t dt = 0;
    kafka_status ks = publish_wait_result(rq->wait, &dt, kerr, sizeof kerr);
    if (ks != KAFKA_OK) {
        metrics_counter_add(ing->metrics, "ingester_publish_failures_total", 1, "reason",
                            ks == KAFKA_TIMEOUT ? "timeout" : "failed", NULL);
        log_msg(LOG_ERROR, "webhook not published, answering 503", "event_id", ev->id,
                "event_type", ev->type, "topic", topic, "error", kerr, NULL);
        return http_error(c, ing, rq->route, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "event could not be durably published; retry later");
    }
    metrics_histogram_observe_us(ing->metrics, "ingester_publish_duration_seconds", dt, NULL);
    metrics_counter_add(ing->metrics, "ingester_events_published_total", 1, "type",
                        http_type_label(ev->type), NULL);
    log_msg(LOG_INFO, "webhook published", "event_id", ev->id, "event_type", ev->type, "topic",
            topic, "key", ev->key, NULL);
    return http_json(c, ing, rq->route, MHD_HTTP_OK, json_received);
}

static enum MHD_Result http_get(struct MHD_Connection *c, ingester *ing, http_endpoint ep,
                                const char *route)
{
    if (ep == EP_HEALTHZ)
        return http_respond(c, ing, route, MHD_HTTP_OK, "text/plain", "ok\n", 3, NULL);
    if (ep == EP_READYZ) {
        if (publisher_reachable(ing->pub, 2000))
            return http_respond(c, ing, route, MHD_HTTP_OK, "text/plain", "ready\n", 6, NULL);
        return http_respond(c, ing, route, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                            "broker unreachable\n", 19, NULL);
    }
    /* Count this request first so the rendered text includes it. */
    metrics_counter_add(ing->metrics, "ingester_http_requests_total", 1, "route", route, "code",
                        "200", NULL);
    size_t len = 0;
    char *text = metrics_render(ing->metrics, &len);
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

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)version;
    ingester *ing = cls;
    http_req *rq = *con_cls;

    if (rq == NULL) {
        http_endpoint ep = EP_NONE;
        const char *route = "other";
        if (strcmp(url, "/webhooks/stripe") == 0) {
            ep = EP_WEBHOOK;
            route = "/webhooks/stripe";
        } else if (strcmp(url, "/api/webhooks/stripe/") == 0) {
            ep = EP_WEBHOOK;
            route = "/api/webhooks/stripe/";
        } else if (strcmp(url, "/healthz") == 0) {
            ep = EP_HEALTHZ;
            route = "/healthz";
        } else if (strcmp(url, "/readyz") == 0) {
            ep = EP_READYZ;
            route = "/readyz";
        } else if (strcmp(url, "/metrics") == 0) {
            ep = EP_METRICS;
            route = "/metrics";
        }
        if (ep == EP_NONE)
            return http_error(c, ing, route, MHD_HTTP_NOT_FOUND, "not found");
        if (ep != EP_WEBHOOK) {
            if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
                strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
                static const char body[] = "{\"error\":\"method not allowed\"}";
                return http_respond(c, ing, route, MHD_HTTP_METHOD_NOT_ALLOWED,
                                    "application/json", body, sizeof body - 1, "GET, HEAD");
            }
            return http_get(c, ing, ep, route);
        }
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
            static const char body[] = "{\"error\":\"method not allowed\"}";
            return http_respond(c, ing, route, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                                body, sizeof body - 1, "POST");
        }
        uint64_t clen = 0;
        bool has_len = http_content_length(c, &clen);
        if (has_len && clen > ing->max_body)
            return http_error(c, ing, route, MHD_HTTP_CONTENT_TOO_LARGE,
                              "body larger than INGESTER_MAX_BODY");
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

    if (rq->wait != NULL)
        return http_webhook_done(c, ing, rq);
    if (rq->too_large)
        return http_error(c, ing, rq->route, MHD_HTTP_CONTENT_TOO_LARGE,
                          "body larger than INGESTER_MAX_BODY");
    rq->buf[rq->len] = '\0';
    return http_webhook(c, ing, rq);
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
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

static int http_resolve(const char *host, int port, struct sockaddr_in *sa, char *err,
                        size_t errlen)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (host[0] == '\0') {
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int e = getaddrinfo(host, NULL, &hints, &res);
    if (e != 0 || res == NULL) {
        snprintf(err, errlen, "INGESTER_LISTEN host %s does not resolve: %s", host,
                 gai_strerror(e));
        return -1;
    }
    sa->sin_addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    h->d = MHD_start_daemon(
        flags, (uint16_t)ing->port, NULL, NULL, http_handler, ing,
        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, (void *)NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, ing->threads,
        MHD_OPTION_CONNECTION_LIMIT, ing->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, ing->per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, ing->connection_timeout_s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, (void *)NULL,
        MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not permitted)",
                 ing->host[0] ? ing->host : "0.0.0.0", ing->port);
        free(h);
        return NULL;
    }
    return h;
}

void ingester_http_quiesce(ingester_http *h)
{
    if (h != NULL && h->d != NULL)
        MHD_quiesce_daemon(h->d);
}

void ingester_http_drain(ingester_http *h, int timeout_ms)
{
    for (int waited = 0; h != NULL && publisher_pending(h->ing->pub) > 0 && waited < timeout_ms;
         waited += 20) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void ingester_http_stop(ingester_http *h)
{
    if (h == NULL)
        return;
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    free(h);
}
