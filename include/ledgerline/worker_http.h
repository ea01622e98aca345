/* worker_http.h: the small HTTP listener of every long-running process
 * other than the ingester (workers, scheduler), on WORKER_HTTP_LISTEN:
 *
 *   GET /healthz  200 {"status":"ok"} while the process runs
 *   GET /readyz   200 {"status":"ready"} when the caller's readiness check
 *                 passes, else 503 {"status":"not ready"}
 *   GET /metrics  Prometheus text (exposition format 0.0.4) of a registry
 *   other paths 404, other methods 405 (HEAD is answered like GET)
 *
 *   metrics_registry *m = metrics_new();
 *   worker_readiness rd = {.database_url = url, .producer = producer};
 *   worker_http *h;
 *   if (worker_http_start_from_env(m, worker_ready_db_kafka, &rd, &h, err, sizeof err) != 0)
 *       ... log err, exit 1 ...
 *   ... run ...
 *   worker_http_stop(h);   // before freeing m / the readiness context
 *
 * The server runs in its own libmicrohttpd thread, so the readiness callback
 * and the registry must be thread-safe (metrics_registry is).
 */
#ifndef LEDGERLINE_WORKER_HTTP_H
#define LEDGERLINE_WORKER_HTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <netinet/in.h>

#include "ledgerline/kafka.h"
#include "ledgerline/metrics.h"
#include "ledgerline/stripe.h"

typedef struct worker_http worker_http;
struct MHD_Connection;

/* Queues an answer on a libmicrohttpd connection (the body copied), with
 * Content-Type ctype, Cache-Control: no-store and, when allow is not NULL,
 * Allow: the one writer of an HTTP answer, here and in the ingester.
 * Returns libmicrohttpd's MHD_YES / MHD_NO. */
int worker_http_respond(struct MHD_Connection *c, unsigned code, const char *ctype,
                        const void *body, size_t len, const char *allow);

/* libmicrohttpd's error log (MHD_OPTION_EXTERNAL_LOGGER) as a JSON warning
 * line, for every listener (here and in the ingester). */
void worker_http_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Readiness check: true when the process can do its work. Called from the
 * HTTP thread; NULL means always ready. */
typedef bool (*worker_ready_fn)(void *ctx);

/* Reads WORKER_HTTP_LISTEN (host:port; host empty = all interfaces). Unset or
 * empty: no listener, returns 0 with *out = NULL. Malformed: prints one line
 * naming the variable and exits 2 (like every configuration error at start).
 * Returns -1 with err when the address cannot be bound. */
int worker_http_start_from_env(metrics_registry *m, worker_ready_fn ready, void *ctx,
                               worker_http **out, char *err, size_t errlen);

/* The same with an explicit address (tests). host "" = all interfaces; port
 * 0 = any free port (see worker_http_port). NULL with err on failure. */
worker_http *worker_http_start(const char *host, int port, metrics_registry *m,
                               worker_ready_fn ready, void *ctx, char *err, size_t errlen);

/* The port actually listened on. */
int worker_http_port(const worker_http *h);

/* Stops the server (waits for requests in hand); NULL is fine. */
void worker_http_stop(worker_http *h);

/* Resolves an IPv4 host ("" = INADDR_ANY, dotted quad, or a name) into sa.
 * var names the setting in err. Shared with the ingester's listener. */
int worker_http_resolve(const char *var, const char *host, int port, struct sockaddr_in *sa,
                        char *err, size_t errlen);

/* A readiness check for the common case: PostgreSQL accepts connections
 * (PQping on database_url, when set), a Kafka broker answers a metadata
 * request through producer (when set) within 2 s, and Stripe does not
 * refuse our key (stripe, when set: rule 11.6). */
typedef struct {
    const char *database_url;
    kafka_producer *producer;
    const stripe_client *stripe;
} worker_readiness;
bool worker_ready_db_kafka(void *ctx);

#endif
