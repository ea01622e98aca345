/* worker_http.c: the workers' and scheduler's /healthz, /readyz and /metrics
 * listener on libmicrohttpd (worker_http.h), plus the IPv4 address
 * resolution every listener of the system shares.
 *
 * Thread per connection: a probe that waits on the database (readyz) never
 * holds up a Prometheus scrape. Connections are few (a probe and a scraper),
 * so the limit is small, and every answer is a small in-memory body.
 */
#include "ledgerline/worker_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>
#include <microhttpd.h>

#include "ledgerline/config.h"
#include "ledgerline/failf.h"
#include "ledgerline/log.h"

#define WORKER_HTTP_VAR "WORKER_HTTP_LISTEN"

struct worker_http {
    struct MHD_Daemon *d;
    metrics_registry *metrics;
    worker_ready_fn ready;
    void *ctx;
    int port;
};

int worker_http_resolve(const char *var, const char *host, int port, struct sockaddr_in *sa,
                        char *err, size_t errlen)
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
    if (e != 0 || res == NULL)
        return ll_failf(err, errlen, "could not resolve the host %s of %s: %s", host, var,
                        gai_strerror(e));
    sa->sin_addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

bool worker_ready_db_kafka(void *ctx)
{
    const worker_readiness *r = ctx;
    if (r == NULL)
        return true;
    /* PQping opens and closes its own connection: the worker's connection
     * belongs to its consumer thread and must not be shared. */
    if (r->database_url != NULL && PQping(r->database_url) != PQPING_OK)
        return false;
    if (r->producer != NULL && !kafka_producer_reachable(r->producer, 2000))
        return false;
    return !stripe_client_key_refused(r->stripe);
}

/* Queues body (copied) with its content type. */
int worker_http_respond(struct MHD_Connection *c, unsigned code, const char *ctype,
                        const void *body, size_t len, const char *allow)
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
    return (int)ret;
}

static enum MHD_Result worker_http_json(struct MHD_Connection *c, unsigned code, const char *json)
{
    return worker_http_respond(c, code, "application/json", json, strlen(json), NULL);
}

static enum MHD_Result worker_http_metrics(struct MHD_Connection *c, worker_http *h)
{
    size_t len = 0;
    char *text = h->metrics != NULL ? metrics_render(h->metrics, &len) : strdup("");
    if (text == NULL)
        return worker_http_json(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "{\"error\":\"cannot render metrics\"}");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result worker_http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                           const char *method, const char *version,
                                           const char *upload_data, size_t *upload_data_size,
                                           void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    worker_http *h = cls;
    /* Every answer is queued on the first call (headers only), which MHD
     * allows; a body sent to these endpoints is never read. */
    *upload_data_size = 0;

    enum { EP_NONE, EP_HEALTHZ, EP_READYZ, EP_METRICS } ep = EP_NONE;
    if (strcmp(url, "/healthz") == 0)
        ep = EP_HEALTHZ;
    else if (strcmp(url, "/readyz") == 0)
        ep = EP_READYZ;
    else if (strcmp(url, "/metrics") == 0)
        ep = EP_METRICS;
    if (ep == EP_NONE)
        return worker_http_json(c, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char body[] = "{\"error\":\"method not allowed\"}";
        return worker_http_respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json", body,
                                   sizeof body - 1, "GET, HEAD");
    }
    if (ep == EP_HEALTHZ)
        return worker_http_json(c, MHD_HTTP_OK, "{\"status\":\"ok\"}");
    if (ep == EP_READYZ) {
        if (h->ready == NULL || h->ready(h->ctx))
            return worker_http_json(c, MHD_HTTP_OK, "{\"status\":\"ready\"}");
        return worker_http_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"status\":\"not ready\"}");
    }
    return worker_http_metrics(c, h);
}

void worker_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    log_msg(LL_LOG_WARN, "libmicrohttpd", "detail", buf, NULL);
}

worker_http *worker_http_start(const char *host, int port, metrics_registry *m,
                               worker_ready_fn ready, void *ctx, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (port < 0 || port > 65535) {
        ll_failf(err, errlen, "cannot listen on port %d: a port is between 0 and 65535", port);
        ll_hintf(err, errlen, "Check %s.", WORKER_HTTP_VAR);
        return NULL;
    }
    if (worker_http_resolve(WORKER_HTTP_VAR, host, port, &sa, err, errlen) != 0)
        return NULL;
    worker_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        ll_failf(err, errlen, "could not start the metrics listener: out of memory");
        return NULL;
    }
    h->metrics = m;
    h->ready = ready;
    h->ctx = ctx;
    h->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO |
            MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, worker_http_handler, h, MHD_OPTION_EXTERNAL_LOGGER,
        worker_http_mhd_log, (void *)NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (h->d == NULL) {
        ll_failf(err, errlen, "could not listen on %s:%d: the address is in use or not permitted",
                 host[0] ? host : "0.0.0.0", port);
        ll_hintf(err, errlen, "Set %s to a free host:port, or stop what holds this one.",
                 WORKER_HTTP_VAR);

        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL && info->port != 0 ? (int)info->port : port;
    return h;
}

int worker_http_start_from_env(metrics_registry *m, worker_ready_fn ready, void *ctx,
                               worker_http **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *v = getenv(WORKER_HTTP_VAR);
    if (v == NULL || *v == '\0')
        return 0;
    char host[256], cerr[512];
    int port = 0;
    if (config_get_hostport(WORKER_HTTP_VAR, NULL, host, sizeof host, &port, cerr, sizeof cerr) !=
        0)
        config_die(cerr);
    *out = worker_http_start(host, port, m, ready, ctx, err, errlen);
    if (*out == NULL)
        return -1;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", (*out)->port);
    log_msg(LL_LOG_INFO, "metrics listening", "host", host[0] ? host : "0.0.0.0", "port", ports,
            NULL);
    return 0;
}

int worker_http_port(const worker_http *h)
{
    return h != NULL ? h->port : 0;
}

void worker_http_stop(worker_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
