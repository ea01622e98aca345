/* metrics.c: the Prometheus registry (metrics.h).
 *
 * Owns families, series, label escaping and the text exposition format.
 * Storage is plain arrays under one mutex: the number of series is small and
 * bounded by the callers (they only use labels from fixed sets).
 */
#include "ledgerline/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t metrics_bucket_us[METRICS_NBUCKETS] = {500,     1000,    2500,    5000,    10000,
                                                      25000,   50000,   100000,  250000,  500000,
                                                      1000000, 2500000, 5000000, 10000000};
static const char *const metrics_bucket_text[METRICS_NBUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

#define METRICS_LABELS_MAX 512

typedef struct {
    char *labels;                       /* rendered: key="value",key2="value2" (may be empty) */
    uint64_t value;                     /* counter */
    int64_t gauge;                      /* gauge */
    uint64_t buckets[METRICS_NBUCKETS]; /* histogram, non-cumulative */
    uint64_t count, sum_us;
} metrics_series;

typedef struct {
    char *name;
    char *help;
    metrics_type type;
    metrics_series *series;
    size_t nseries, cap;
} metrics_family;

struct metrics_registry {
    pthread_mutex_t mu;
    metrics_family *fam;
    size_t nfam, cap;
};

metrics_registry *metrics_new(void)
{
    metrics_registry *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_free(metrics_registry *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfam; i++) {
        for (size_t j = 0; j < m->fam[i].nseries; j++)
            free(m->fam[i].series[j].labels);
        free(m->fam[i].series);
        free(m->fam[i].name);
        free(m->fam[i].help);
    }
    free(m->fam);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static bool metrics_name_ok(const char *s, bool colon_ok)
{
    if (s == NULL || *s == '\0')
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static metrics_family *metrics_find(metrics_registry *m, const char *name)
{
    for (size_t i = 0; i < m->nfam; i++)
        if (strcmp(m->fam[i].name, name) == 0)
            return &m->fam[i];
    return NULL;
}

int metrics_declare(metrics_registry *m, const char *name, metrics_type type, const char *help)
{
    if (!metrics_name_ok(name, true))
        return -1;
    int rc = -1;
    pthread_mutex_lock(&m->mu);
    if (metrics_find(m, name) != NULL)
        goto out;
    if (m->nfam == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        metrics_family *f = realloc(m->fam, cap * sizeof *f);
        if (f == NULL)
            goto out;
        m->fam = f;
        m->cap = cap;
    }
    metrics_family *f = &m->fam[m->nfam];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    f->type = type;
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        goto out;
    }
    m->nfam++;
    rc = 0;
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Renders the label pairs into buf; -1 when malformed or too long. */
static int metrics_labels(va_list ap, char *buf, size_t buflen)
{
    size_t n = 0;
    buf[0] = '\0';
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            return 0;
        const char *v = va_arg(ap, const char *);
        if (v == NULL || !metrics_name_ok(k, false))
            return -1;
        int w = snprintf(buf + n, buflen - n, "%s%s=\"", n ? "," : "", k);
        if (w < 0 || (size_t)w >= buflen - n)
            return -1;
        n += (size_t)w;
        for (const char *p = v; *p != '\0'; p++) {
            const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
            size_t need = esc ? 2 : 1;
            if (n + need + 2 >= buflen)
                return -1;
            if (esc) {
                memcpy(buf + n, esc, 2);
            } else {
                buf[n] = *p;
            }
            n += need;
        }
        buf[n++] = '"';
        buf[n] = '\0';
    }
}

/* Finds or creates the series; called with the mutex held. */
static metrics_series *metrics_series_get(metrics_family *f, const char *labels, bool create)
{
    for (size_t i = 0; i < f->nseries; i++)
        if (strcmp(f->series[i].labels, labels) == 0)
            return &f->series[i];
    if (!create)
        return NULL;
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        metrics_series *s = realloc(f->series, cap * sizeof *s);
        if (s == NULL)
            return NULL;
        f->series = s;
        f->cap = cap;
    }
    metrics_series *s = &f->series[f->nseries];
    memset(s, 0, sizeof *s);
    s->labels = strdup(labels);
    if (s->labels == NULL)
        return NULL;
    f->nseries++;
    return s;
}

/* Adds value to a counter, observes it (microseconds) in a histogram, or
 * sets a gauge to gauge_value, for the series named by the label pairs in ap.
 * -1 when the family is unknown, of another type, or the labels do not fit. */
static int metrics_update(metrics_registry *m, const char *name, metrics_type type, uint64_t value,
                          int64_t gauge_value, va_list ap)
{
    char labels[METRICS_LABELS_MAX];
    if (metrics_labels(ap, labels, sizeof labels) != 0)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&m->mu);
    metrics_family *f = metrics_find(m, name);
    metrics_series *s = f != NULL && f->type == type ? metrics_series_get(f, labels, true) : NULL;
    if (s != NULL && type == METRICS_COUNTER) {
        s->value += value;
        rc = 0;
    } else if (s != NULL && type == METRICS_GAUGE) {
        s->gauge = gauge_value;
        rc = 0;
    } else if (s != NULL) {
        for (size_t i = 0; i < METRICS_NBUCKETS; i++) {
            if (value <= metrics_bucket_us[i]) {
                s->buckets[i]++;
                break;
            }
        }
        s->count++;
        s->sum_us += value;
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int metrics_counter_add(metrics_registry *m, const char *name, uint64_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    int rc = metrics_update(m, name, METRICS_COUNTER, n, 0, ap);
    va_end(ap);
    return rc;
}

int metrics_histogram_observe_us(metrics_registry *m, const char *name, uint64_t us, ...)
{
    va_list ap;
    va_start(ap, us);
    int rc = metrics_update(m, name, METRICS_HISTOGRAM, us, 0, ap);
    va_end(ap);
    return rc;
}

int metrics_gauge_set(metrics_registry *m, const char *name, int64_t value, ...)
{
    va_list ap;
    va_start(ap, value);
    int rc = metrics_update(m, name, METRICS_GAUGE, 0, value, ap);
    va_end(ap);
    return rc;
}

/* The value of one series (0 when absent or of another type). */
static int64_t metrics_read(metrics_registry *m, const char *name, metrics_type type, va_list ap)
{
    char labels[METRICS_LABELS_MAX];
    if (metrics_labels(ap, labels, sizeof labels) != 0)
        return 0;
    int64_t v = 0;
    pthread_mutex_lock(&m->mu);
    metrics_family *f = metrics_find(m, name);
    if (f != NULL && f->type == type) {
        metrics_series *s = metrics_series_get(f, labels, false);
        if (s != NULL)
            v = type == METRICS_GAUGE ? s->gauge : (int64_t)s->value;
    }
    pthread_mutex_unlock(&m->mu);
    return v;
}

int64_t metrics_gauge_get(metrics_registry *m, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    int64_t v = metrics_read(m, name, METRICS_GAUGE, ap);
    va_end(ap);
    return v;
}

uint64_t metrics_counter_get(metrics_registry *m, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    uint64_t v = (uint64_t)metrics_read(m, name, METRICS_COUNTER, ap);
    va_end(ap);
    return v;
}

void metrics_text_printf(metrics_text *o, const char *fmt, ...)
{
    while (!o->failed) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)w < o->cap - o->len) {
            o->len += (size_t)w;
            return;
        }
        size_t cap = (o->cap + (size_t)w) * 2;
        char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->failed = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

/* Help text escaping: backslash and newline only. */
static void metrics_help(metrics_text *o, const char *help)
{
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\')
            metrics_text_printf(o, "\\\\");
        else if (*p == '\n')
            metrics_text_printf(o, "\\n");
        else
            metrics_text_printf(o, "%c", *p);
    }
}

char *metrics_render(metrics_registry *m, size_t *len)
{
    metrics_text o = {.buf = malloc(4096), .len = 0, .cap = 4096};
    if (o.buf == NULL)
        return NULL;
    o.buf[0] = '\0';
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nfam; i++) {
        const metrics_family *f = &m->fam[i];
        metrics_text_printf(&o, "# HELP %s ", f->name);
        metrics_help(&o, f->help);
        metrics_text_printf(&o, "\n# TYPE %s %s\n", f->name,
                            f->type == METRICS_COUNTER ? "counter"
                            : f->type == METRICS_GAUGE ? "gauge"
                                                       : "histogram");
        for (size_t j = 0; j < f->nseries; j++) {
            const metrics_series *s = &f->series[j];
            bool has = s->labels[0] != '\0';
            if (f->type == METRICS_COUNTER) {
                metrics_text_printf(&o, "%s%s%s%s %" PRIu64 "\n", f->name, has ? "{" : "",
                                    s->labels, has ? "}" : "", s->value);
                continue;
            }
            if (f->type == METRICS_GAUGE) {
                metrics_text_printf(&o, "%s%s%s%s %" PRId64 "\n", f->name, has ? "{" : "",
                                    s->labels, has ? "}" : "", s->gauge);
                continue;
            }
            uint64_t cum = 0;
            for (size_t b = 0; b < METRICS_NBUCKETS; b++) {
                cum += s->buckets[b];
                metrics_text_printf(&o, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name,
                                    s->labels, has ? "," : "", metrics_bucket_text[b], cum);
            }
            metrics_text_printf(&o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", f->name, s->labels,
                                has ? "," : "", s->count);
            metrics_text_printf(&o, "%s_sum%s%s%s %" PRIu64 ".%06" PRIu64 "\n", f->name,
                                has ? "{" : "", s->labels, has ? "}" : "", s->sum_us / 1000000,
                                s->sum_us % 1000000);
            metrics_text_printf(&o, "%s_count%s%s%s %" PRIu64 "\n", f->name, has ? "{" : "",
                                s->labels, has ? "}" : "", s->count);
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    if (len != NULL)
        *len = o.len;
    return o.buf;
}
