/* metrics.h: a small Prometheus registry shared by every process.
 *
 * Families (counters, gauges, histograms) are declared once with their help text;
 * series are created on first use from NULL-terminated label pairs. All
 * values are integers: histogram observations are microseconds and bucket
 * bounds / sums are printed in seconds as decimal text, with no floating
 * point anywhere. Thread-safe (one mutex; updates are short).
 *
 *   metrics_registry *m = metrics_new();
 *   metrics_declare(m, "http_requests_total", METRICS_COUNTER, "HTTP requests.");
 *   metrics_counter_add(m, "http_requests_total", 1, "route", "/x", "code", "200", NULL);
 *   char *text = metrics_render(m, &len);   // caller frees
 */
#ifndef LEDGERLINE_METRICS_H
#define LEDGERLINE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { METRICS_COUNTER = 0, METRICS_HISTOGRAM, METRICS_GAUGE } metrics_type;

typedef struct metrics_registry metrics_registry;

/* Latency bucket upper bounds, microseconds (le="0.001" ... le="10"). */
#define METRICS_NBUCKETS 14
extern const uint64_t metrics_bucket_us[METRICS_NBUCKETS];

metrics_registry *metrics_new(void);
void metrics_free(metrics_registry *m);

/* Declares a family; name must match [a-zA-Z_:][a-zA-Z0-9_:]*. Returns 0, or
 * -1 on a bad name, a duplicate or no memory. */
int metrics_declare(metrics_registry *m, const char *name, metrics_type type, const char *help);

/* Label arguments: NULL-terminated (key, value) pairs; values are escaped.
 * Return 0, or -1 when the family is undeclared, of the other type, or the
 * labels are malformed. */
int metrics_counter_add(metrics_registry *m, const char *name, uint64_t n, ...)
    __attribute__((sentinel));
int metrics_histogram_observe_us(metrics_registry *m, const char *name, uint64_t us, ...)
    __attribute__((sentinel));

/* Sets a gauge series to value (which may be negative). Same labels and
 * return values as metrics_counter_add. */
int metrics_gauge_set(metrics_registry *m, const char *name, int64_t value, ...)
    __attribute__((sentinel));

/* Current value of one gauge series (tests); 0 when absent. */
int64_t metrics_gauge_get(metrics_registry *m, const char *name, ...) __attribute__((sentinel));

/* Current value of one counter series (tests); 0 when absent. */
uint64_t metrics_counter_get(metrics_registry *m, const char *name, ...) __attribute__((sentinel));

/* A growing text buffer for exposition output (shared with the ingester's
 * own lock-free counters). Start with buf = malloc(cap); on an allocation or
 * format failure `failed` is set and further writes are ignored. */
typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} metrics_text;
void metrics_text_printf(metrics_text *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prometheus text exposition format 0.0.4; malloc'd, NUL-terminated. */
char *metrics_render(metrics_registry *m, size_t *len);

#endif
