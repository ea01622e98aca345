/* stats.h: billing-ingester's metrics, kept in fixed arrays of atomic
 * counters so a request updates them without a lock, and rendered in the
 * Prometheus text format 0.0.4 for GET /metrics.
 *
 * Every label value comes from a fixed set (routes, status codes, routed
 * event types, signature failure reasons), so the series are known up
 * front; a labelled series is printed once it is non-zero. Histogram
 * observations are integer microseconds, printed in seconds as decimal
 * text: no floating point.
 */
#ifndef INGESTER_STATS_H
#define INGESTER_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    STATS_ROUTE_WEBHOOK = 0, /* /webhooks/stripe */
    STATS_ROUTE_API_WEBHOOK, /* /api/webhooks/stripe/ */
    STATS_ROUTE_HEALTHZ,
    STATS_ROUTE_READYZ,
    STATS_ROUTE_METRICS,
    STATS_ROUTE_OTHER,
    STATS_NROUTES
} stats_route;

/* The route label of each stats_route. */
extern const char *const stats_route_names[STATS_NROUTES];

typedef struct ingester_stats ingester_stats;

ingester_stats *stats_new(void);
void stats_free(ingester_stats *s);

/* One HTTP answer (codes outside the known set count as code="other"). */
void stats_http(ingester_stats *s, stats_route route, unsigned code);
/* A published event; known is its index in route_known_types, or -1. */
void stats_published(ingester_stats *s, int known);
void stats_ignored(ingester_stats *s);
/* reason: a signature_result other than SIGNATURE_OK. */
void stats_signature_failure(ingester_stats *s, int reason);
void stats_publish_failure(ingester_stats *s, bool timeout);
void stats_publish_duration_us(ingester_stats *s, uint64_t us);

/* Why a request body was refused (ingester_body_refusals_total{reason}). */
typedef enum {
    STATS_BODY_DEADLINE = 0, /* 408: not all there within INGESTER_BODY_TIMEOUT */
    STATS_BODY_BUFFER_FULL,  /* 503: INGESTER_MAX_BUFFERED reached */
    STATS_BODY_TOO_LARGE,    /* 413: past INGESTER_MAX_BODY */
    STATS_NBODY
} stats_body_reason;
void stats_body_refused(ingester_stats *s, stats_body_reason why);

/* The bytes held by request bodies across connections (the gauge
 * ingester_body_buffered_bytes and the INGESTER_MAX_BUFFERED cap):
 * reserve adds n unless the total would pass limit (false then, nothing
 * added); release gives n back. */
bool stats_body_reserve(ingester_stats *s, size_t n, size_t limit);
void stats_body_release(ingester_stats *s, size_t n);
uint64_t stats_body_bytes(ingester_stats *s);

/* Current value of http_requests_total for one route and code (tests). */
uint64_t stats_http_count(ingester_stats *s, stats_route route, unsigned code);

/* The exposition text; malloc'd, NUL-terminated; NULL when out of memory. */
char *stats_render(ingester_stats *s, size_t *len);

#endif
