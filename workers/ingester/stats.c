/* stats.c: billing-ingester's lock-free metrics and their Prometheus text
 * (stats.h).
 *
 * Why not the shared registry (common/metrics.c): it formats the label text
 * and looks the series up by string under one process-wide mutex on every
 * update, four times per published event. The ingester's label sets are all
 * fixed, so plain arrays of relaxed atomics do the same job; a scrape reads
 * each counter once (the figures of one scrape are not a snapshot of one
 * instant, which Prometheus does not need).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/metrics.h"
#include "ledgerline/vocab.h"
#include "route.h"
#include "signature.h"

const char *const stats_route_names[STATS_NROUTES] = {
    "/webhooks/stripe", "/api/webhooks/stripe/", "/healthz", "/readyz", "/metrics", "other"};

static const unsigned stats_codes[] = {200, 400, 404, 405, 408, 413, 500, 503};
#define STATS_NCODES (sizeof stats_codes / sizeof stats_codes[0] + 1) /* + "other" */

/* route_known_types + "other". (It was a hand-kept 12 for 12 types, so
 * charge.refund.updated was counted as "other".) */
#define STATS_NTYPES (STRIPE_EVENT_COUNT + 1)

/* signature_result values 1..6 (0 is OK and never counted). */
static const char *const stats_sig_reasons[] = {"ok",    "missing", "malformed", "no_v1",
                                                "stale", "future",  "mismatch"};
#define STATS_NREASONS (sizeof stats_sig_reasons / sizeof stats_sig_reasons[0])

/* Bucket upper bounds in microseconds and as printed (seconds). */
static const uint64_t stats_bucket_us[] = {500,     1000,    2500,    5000,    10000,
                                           25000,   50000,   100000,  250000,  500000,
                                           1000000, 2500000, 5000000, 10000000};
static const char *const stats_bucket_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                                "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                                "1",      "2.5",   "5",      "10"};
#define STATS_NBUCKETS (sizeof stats_bucket_us / sizeof stats_bucket_us[0])

typedef _Atomic uint64_t stats_counter;

struct ingester_stats {
    stats_counter http[STATS_NROUTES][STATS_NCODES];
    stats_counter published[STATS_NTYPES];
    stats_counter ignored;
    stats_counter sig_fail[STATS_NREASONS];
    stats_counter pub_fail[2];                /* timeout, failed */
    stats_counter bucket[STATS_NBUCKETS + 1]; /* non-cumulative; last = above every bound */
    stats_counter sum_us;
    stats_counter body_refused[STATS_NBODY];
    stats_counter body_bytes; /* a gauge */
};

static const char *const stats_body_reasons[STATS_NBODY] = {"deadline", "buffer_full", "too_large"};

static void stats_add(stats_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t stats_get(stats_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

ingester_stats *stats_new(void)
{
    ingester_stats *s = malloc(sizeof *s);
    if (s == NULL)
        return NULL;
    /* Atomic objects are initialised one by one (C17 7.17.2.2). */
    for (size_t r = 0; r < STATS_NROUTES; r++)
        for (size_t c = 0; c < STATS_NCODES; c++)
            atomic_init(&s->http[r][c], 0);
    for (size_t i = 0; i < STATS_NTYPES; i++)
        atomic_init(&s->published[i], 0);
    atomic_init(&s->ignored, 0);
    for (size_t i = 0; i < STATS_NREASONS; i++)
        atomic_init(&s->sig_fail[i], 0);
    atomic_init(&s->pub_fail[0], 0);
    atomic_init(&s->pub_fail[1], 0);
    for (size_t i = 0; i <= STATS_NBUCKETS; i++)
        atomic_init(&s->bucket[i], 0);
    atomic_init(&s->sum_us, 0);
    for (size_t i = 0; i < STATS_NBODY; i++)
        atomic_init(&s->body_refused[i], 0);
    atomic_init(&s->body_bytes, 0);
    return s;
}

void stats_free(ingester_stats *s)
{
    free(s);
}

static size_t stats_code_index(unsigned code)
{
    for (size_t i = 0; i < STATS_NCODES - 1; i++)
        if (stats_codes[i] == code)
            return i;
    return STATS_NCODES - 1;
}

void stats_http(ingester_stats *s, stats_route route, unsigned code)
{
    if ((unsigned)route >= STATS_NROUTES)
        route = STATS_ROUTE_OTHER;
    stats_add(&s->http[route][stats_code_index(code)], 1);
}

uint64_t stats_http_count(ingester_stats *s, stats_route route, unsigned code)
{
    if ((unsigned)route >= STATS_NROUTES)
        return 0;
    return stats_get(&s->http[route][stats_code_index(code)]);
}

void stats_published(ingester_stats *s, int known)
{
    stats_add(&s->published[known >= 0 && known < STATS_NTYPES - 1 ? known : STATS_NTYPES - 1], 1);
}

void stats_ignored(ingester_stats *s)
{
    stats_add(&s->ignored, 1);
}

void stats_signature_failure(ingester_stats *s, int reason)
{
    if (reason > 0 && (size_t)reason < STATS_NREASONS)
        stats_add(&s->sig_fail[reason], 1);
}

void stats_publish_failure(ingester_stats *s, bool timeout)
{
    stats_add(&s->pub_fail[timeout ? 0 : 1], 1);
}

void stats_publish_duration_us(ingester_stats *s, uint64_t us)
{
    size_t b = 0;
    while (b < STATS_NBUCKETS && us > stats_bucket_us[b])
        b++;
    stats_add(&s->bucket[b], 1);
    stats_add(&s->sum_us, us);
}

void stats_body_refused(ingester_stats *s, stats_body_reason why)
{
    if ((unsigned)why < STATS_NBODY)
        stats_add(&s->body_refused[why], 1);
}

bool stats_body_reserve(ingester_stats *s, size_t n, size_t limit)
{
    uint64_t cur = atomic_load_explicit(&s->body_bytes, memory_order_relaxed);
    do {
        if (n > limit || cur > limit - n)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&s->body_bytes, &cur, cur + n,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

void stats_body_release(ingester_stats *s, size_t n)
{
    atomic_fetch_sub_explicit(&s->body_bytes, n, memory_order_relaxed);
}

uint64_t stats_body_bytes(ingester_stats *s)
{
    return stats_get(&s->body_bytes);
}

static void stats_family(metrics_text *o, const char *name, const char *type, const char *help)
{
    metrics_text_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *stats_render(ingester_stats *s, size_t *len)
{
    metrics_text o = {.buf = malloc(4096), .cap = 4096};
    if (o.buf == NULL)
        return NULL;
    o.buf[0] = '\0';

    stats_family(&o, "ingester_http_requests_total", "counter",
                 "HTTP requests answered, by route and status code.");
    for (size_t r = 0; r < STATS_NROUTES; r++)
        for (size_t c = 0; c < STATS_NCODES; c++) {
            uint64_t v = stats_get(&s->http[r][c]);
            if (v == 0)
                continue;
            char code[16];
            if (c < STATS_NCODES - 1)
                snprintf(code, sizeof code, "%u", stats_codes[c]);
            else
                snprintf(code, sizeof code, "other");
            metrics_text_printf(
                &o, "ingester_http_requests_total{route=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                stats_route_names[r], code, v);
        }

    stats_family(&o, "ingester_events_published_total", "counter",
                 "Stripe events acknowledged by Kafka, by event type.");
    for (size_t t = 0; t < STATS_NTYPES; t++) {
        uint64_t v = stats_get(&s->published[t]);
        if (v != 0)
            metrics_text_printf(&o, "ingester_events_published_total{type=\"%s\"} %" PRIu64 "\n",
                                t < STATS_NTYPES - 1 ? route_known_types[t] : "other", v);
    }

    stats_family(&o, "ingester_events_ignored_total", "counter",
                 "Verified Stripe events of types the system does not handle.");
    metrics_text_printf(&o, "ingester_events_ignored_total %" PRIu64 "\n", stats_get(&s->ignored));

    stats_family(&o, "ingester_signature_failures_total", "counter",
                 "Requests refused by signature verification, by reason.");
    for (size_t i = 1; i < STATS_NREASONS; i++) {
        uint64_t v = stats_get(&s->sig_fail[i]);
        if (v != 0)
            metrics_text_printf(&o,
                                "ingester_signature_failures_total{reason=\"%s\"} %" PRIu64 "\n",
                                stats_sig_reasons[i], v);
    }

    stats_family(&o, "ingester_publish_failures_total", "counter",
                 "Events answered 503 because Kafka did not acknowledge them in time.");
    static const char *const why[2] = {"timeout", "failed"};
    for (size_t i = 0; i < 2; i++) {
        uint64_t v = stats_get(&s->pub_fail[i]);
        if (v != 0)
            metrics_text_printf(&o, "ingester_publish_failures_total{reason=\"%s\"} %" PRIu64 "\n",
                                why[i], v);
    }

    stats_family(&o, "ingester_body_refusals_total", "counter",
                 "Request bodies refused: too slow (408), no room under INGESTER_MAX_BUFFERED "
                 "(503), too large (413).");
    for (size_t i = 0; i < STATS_NBODY; i++) {
        uint64_t v = stats_get(&s->body_refused[i]);
        if (v != 0)
            metrics_text_printf(&o, "ingester_body_refusals_total{reason=\"%s\"} %" PRIu64 "\n",
                                stats_body_reasons[i], v);
    }
    stats_family(&o, "ingester_body_buffered_bytes", "gauge",
                 "Bytes held by request bodies across connections, until each request ends.");
    metrics_text_printf(&o, "ingester_body_buffered_bytes %" PRIu64 "\n",
                        stats_get(&s->body_bytes));

    stats_family(&o, "ingester_publish_duration_seconds", "histogram",
                 "Time from produce to the broker's delivery report.");
    /* Read the buckets first and derive the total from them, so the +Inf
     * bucket always equals the sum of the finite ones plus the overflow. */
    uint64_t cum = 0;
    for (size_t b = 0; b < STATS_NBUCKETS; b++) {
        cum += stats_get(&s->bucket[b]);
        metrics_text_printf(&o, "ingester_publish_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                            stats_bucket_text[b], cum);
    }
    cum += stats_get(&s->bucket[STATS_NBUCKETS]);
    uint64_t sum = stats_get(&s->sum_us);
    metrics_text_printf(&o, "ingester_publish_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                        cum);
    metrics_text_printf(&o, "ingester_publish_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n",
                        sum / 1000000, sum % 1000000);
    metrics_text_printf(&o, "ingester_publish_duration_seconds_count %" PRIu64 "\n", cum);

    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    if (len != NULL)
        *len = o.len;
    return o.buf;
}
