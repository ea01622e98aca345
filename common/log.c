/* log.c: structured logging, one JSON object per line (log.h).
 *
 * Owns the line format, the level threshold, secret redaction and the output
 * descriptor. Each line is built in memory owned by the calling thread and
 * written with one write(2), so there is no lock and no shared buffer.
 */
#include "ledgerline/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Set once at start (log_init, tests); atomics only so that a test changing
 * them while another thread logs is still well-defined. */
static atomic_int log_threshold = LL_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static char log_component[64] = "ledgerline";

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *text, log_level *out)
{
    if (text == NULL)
        return -1;
    for (int i = LL_LOG_DEBUG; i <= LL_LOG_ERROR; i++) {
        if (strcasecmp(text, log_level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_init(const char *component)
{
    if (component != NULL && component[0] != '\0')
        snprintf(log_component, sizeof log_component, "%s", component);
    const char *text = getenv("LOG_LEVEL");
    if (text == NULL || text[0] == '\0') {
        log_set_level(LL_LOG_INFO);
        return 0;
    }
    log_level lvl;
    if (log_level_parse(text, &lvl) != 0)
        return -1;
    log_set_level(lvl);
    return 0;
}

void log_set_level(log_level level)
{
    atomic_store(&log_threshold, (int)level);
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

/* strcasestr is a GNU extension; this is the portable few lines. */
static bool log_contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

int log_key_is_secret(const char *key)
{
    static const char *const words[] = {"secret",  "password", "authorization",
                                        "api_key", "token",    "card"};
    if (key == NULL)
        return 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (log_contains_nocase(key, words[i]))
            return 1;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (as jansson judges it: no
 * overlongs, surrogates or code points above U+10FFFF), 0 when invalid. */
static size_t log_utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0u) != 0x80u)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string for arbitrary bytes: a message from a library or a peer may
 * not be UTF-8, and losing the whole line over one byte would be worse than
 * showing '?' in its place. */
static json_t *log_string(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p != '\0') {
        size_t n = log_utf8_seq(p);
        if (n == 0) {
            copy[o++] = '?';
            p++;
        } else {
            memcpy(copy + o, p, n);
            o += n;
            p += n;
        }
    }
    copy[o] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

/* A copy of v with the value under every secret key replaced, at any depth:
 * a nested {"stripe":{"api_key":...}} must not leak either. */
static json_t *log_redact(json_t *v)
{
    if (json_is_object(v)) {
        json_t *copy = json_object();
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child)
        {
            json_t *c = log_key_is_secret(k) ? json_string("[redacted]") : log_redact(child);
            json_object_set_new(copy, k, c);
        }
        return copy;
    }
    if (json_is_array(v)) {
        json_t *copy = json_array();
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            json_array_append_new(copy, log_redact(child));
        }
        return copy;
    }
    return json_incref(v);
}

static bool log_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = log_utf8_seq(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

/* Callers' fields never replace the fixed keys; a clashing key is kept under
 * "field_<key>" so nothing is lost. Takes ownership of value. */
static void log_set_field(json_t *line, const char *key, json_t *value)
{
    static const char *const reserved[] = {"ts", "level", "component", "msg"};
    json_t *fixed = NULL;
    if (!log_utf8_valid(key)) {
        fixed = log_string(key);
        key = fixed != NULL ? json_string_value(fixed) : "?";
    }
    char renamed[80];
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strcmp(key, reserved[i]) == 0) {
            snprintf(renamed, sizeof renamed, "field_%s", key);
            key = renamed;
            break;
        }
    }
    json_object_set_new(line, key, value);
    json_decref(fixed);
}

static json_t *log_line_start(log_level level, const char *msg)
{
    struct timespec now;
    struct tm tm;
    char ts[64];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000L));
    int lv = (int)level;
    if (lv < LL_LOG_DEBUG || lv > LL_LOG_ERROR)
        lv = LL_LOG_ERROR;

    json_t *line = json_object();
    if (line == NULL)
        return NULL;
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(log_level_names[lv]));
    json_object_set_new(line, "component", log_string(log_component));
    json_object_set_new(line, "msg", log_string(msg != NULL ? msg : ""));
    return line;
}

static void log_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

static void log_emit(json_t *line)
{
    char stack[2048];
    char *buf = stack;
    size_t n = json_dumpb(line, stack, sizeof stack - 1, JSON_COMPACT);
    if (n == 0)
        return;
    if (n > sizeof stack - 1) {
        buf = malloc(n + 1);
        if (buf == NULL)
            return;
        if (json_dumpb(line, buf, n, JSON_COMPACT) != n) {
            free(buf);
            return;
        }
    }
    /* The newline goes into the same buffer: one write(2) per line is what
     * keeps concurrent lines whole. */
    buf[n] = '\n';
    log_write_all(atomic_load(&log_fd), buf, n + 1);
    if (buf != stack)
        free(buf);
}

static bool log_enabled(log_level level)
{
    return (int)level >= atomic_load(&log_threshold);
}

void log_msg(log_level level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;
    json_t *line = log_line_start(level, msg);
    if (line != NULL) {
        va_list ap;
        va_start(ap, msg);
        for (const char *key = va_arg(ap, const char *); key != NULL;
             key = va_arg(ap, const char *)) {
            const char *value = va_arg(ap, const char *);
            json_t *v = log_key_is_secret(key) ? json_string("[redacted]") : log_string(value);
            log_set_field(line, key, v);
        }
        va_end(ap);
        log_emit(line);
        json_decref(line);
    }
    errno = saved_errno;
}

void log_json(log_level level, const char *msg, json_t *fields)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;
    json_t *line = log_line_start(level, msg);
    if (line != NULL) {
        if (json_is_object(fields)) {
            const char *k;
            json_t *child;
            json_object_foreach(fields, k, child)
            {
                json_t *v = log_key_is_secret(k) ? json_string("[redacted]") : log_redact(child);
                log_set_field(line, k, v);
            }
        } else if (fields != NULL) {
            log_set_field(line, "fields", log_redact(fields));
        }
        log_emit(line);
        json_decref(line);
    }
    errno = saved_errno;
}
