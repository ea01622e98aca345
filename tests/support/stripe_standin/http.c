/* http.c: libmicrohttpd glue for the stand-in: collects request bodies,
 * sends /v1 requests to api.c and /__standin/ ones to control.c, and puts
 * Stripe's response headers (Request-Id, Idempotent-Replayed,
 * Stripe-Should-Retry, ...) on every answer, or drops the connection when an
 * answer is to be lost. */
#include "stripe_standin.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* Per-request state; born in the URI log callback, which is the one place
 * MHD shows the raw request target (with its query string). */
typedef struct {
    char *uri;
    char *body;
    size_t len, cap;
    bool started, too_big;
} ss_http_req;

static void *ss_http_uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    ss_http_req *r = calloc(1, sizeof *r);
    if (r != NULL)
        r->uri = strdup(uri != NULL ? uri : "");
    return r;
}

static void ss_http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    ss_http_req *r = *con_cls;
    if (r != NULL) {
        free(r->uri);
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

static bool ss_http_append(ss_http_req *r, const char *data, size_t n)
{
    if (r->len + n > SS_MAX_BODY) {
        r->too_big = true;
        return true;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL)
            return false;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return true;
}

static enum MHD_Result ss_http_send(struct MHD_Connection *c, const ss_request *rq, int status,
                                    char *text, bool replayed, const char *should_retry)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "Request-Id", rq->request_id);
    MHD_add_response_header(resp, "Stripe-Version",
                            rq->stripe_version != NULL ? rq->stripe_version : SS_API_VERSION);
    MHD_add_response_header(resp, "Cache-Control", "no-cache, no-store");
    if (rq->idempotency_key != NULL && strcmp(rq->method, "POST") == 0)
        MHD_add_response_header(resp, "Idempotency-Key", rq->idempotency_key);
    if (replayed)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    if (should_retry != NULL)
        MHD_add_response_header(resp, "Stripe-Should-Retry", should_retry);
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"Stripe\"");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static char *ss_http_dump(json_t *body)
{
    char *s = body != NULL ? json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    return s != NULL ? s : strdup("{}");
}

static enum MHD_Result ss_http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    (void)version;
    ss_state *st = cls;
    ss_http_req *r = *con_cls;
    if (r == NULL || r->uri == NULL)
        return MHD_NO;
    if (!r->started) {
        r->started = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!ss_http_append(r, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }

    ss_request rq = {0};
    rq.method = method;
    rq.path = url;
    const char *q = strchr(r->uri, '?');
    rq.query = q != NULL ? q + 1 : "";
    rq.body = r->body;
    rq.body_len = r->len;
    rq.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    rq.idempotency_key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    rq.stripe_version = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Stripe-Version");
    ss_random_id(rq.request_id, sizeof rq.request_id, "req_", 14);

    ss_answer a = {0};
    if (r->too_big) {
        ss_answer_error(&a, 413, "invalid_request_error", NULL, NULL,
                        "Request body larger than %d bytes.", SS_MAX_BODY);
        enum MHD_Result ret = ss_http_send(c, &rq, a.status, ss_http_dump(a.body), false, NULL);
        json_decref(a.body);
        return ret;
    }
    if (strncmp(url, "/__standin/", 11) == 0) {
        ss_control_handle(st, &rq, &a);
        enum MHD_Result ret = ss_http_send(c, &rq, a.status, ss_http_dump(a.body), false, NULL);
        json_decref(a.body);
        return ret;
    }
    if (strncmp(url, "/v1/", 4) == 0) {
        ss_result res;
        ss_api_handle(st, &rq, &res);
        if (res.lost) {
            /* POST /__standin/fail {"mode":"lose_answer"}: Stripe did the
             * work, the answer never reached the client. MHD_NO closes the
             * connection without a byte of response. */
            free(res.body_text);
            json_decref(res.a.body);
            return MHD_NO;
        }
        enum MHD_Result ret =
            ss_http_send(c, &rq, res.a.status, res.body_text, res.replayed, res.a.should_retry);
        json_decref(res.a.body);
        return ret;
    }
    ss_answer_error(&a, 404, "invalid_request_error", NULL, NULL,
                    "Unrecognized request URL (%s: %s).", method, url);
    enum MHD_Result ret = ss_http_send(c, &rq, a.status, ss_http_dump(a.body), false, NULL);
    json_decref(a.body);
    return ret;
}

struct MHD_Daemon *ss_http_start(ss_state *st, const struct sockaddr_in *addr, char *err,
                                 size_t errlen)
{
    /* Thread per connection: the injected latency is a plain sleep in the
     * handler, and a benchmark keeps 30+ requests in flight at once. Poll,
     * not select, so descriptors above FD_SETSIZE are fine. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, ss_http_handler, st, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)2048, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned int)1024, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_URI_LOG_CALLBACK, ss_http_uri_log, NULL, MHD_OPTION_NOTIFY_COMPLETED,
        ss_http_completed, NULL, MHD_OPTION_END);
    if (d == NULL)
        snprintf(err, errlen, "cannot listen (address in use or not a local address?)");
    return d;
}

int ss_http_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info != NULL ? (int)info->port : -1;
}
