/* log.h: one JSON object per line on stderr.
 *
 * Every line has "ts" (UTC, RFC 3339 with milliseconds), "level", "component",
 * "msg" and the caller's key/value fields. Field values whose key names a
 * secret ("secret", "password", "authorization", "api_key", "token", "card",
 * case-insensitive substring) are replaced by "[redacted]" so a careless call
 * cannot leak one. Lines are written with a single write(2) so concurrent
 * threads never interleave within a line.
 */
#ifndef LEDGERLINE_LOG_H
#define LEDGERLINE_LOG_H

#include <stdint.h>
#include <jansson.h>

/* LL_-prefixed: <syslog.h> defines LOG_DEBUG, LOG_INFO and LOG_ERR as macros. */
typedef enum { LL_LOG_DEBUG = 0, LL_LOG_INFO, LL_LOG_WARN, LL_LOG_ERROR } log_level;

/* Sets the component name and the threshold from LOG_LEVEL (debug, info,
 * warn, error; default info). Returns -1 on a malformed LOG_LEVEL. */
int log_init(const char *component);
void log_set_level(log_level level);
/* Parses "debug"/"info"/"warn"/"error"; -1 when unknown. */
int log_level_parse(const char *text, log_level *out);
/* Redirects output (tests); fd 2 by default. */
void log_set_fd(int fd);

/* Fields are NULL-terminated pairs of (const char *key, const char *value):
 *   log_msg(LL_LOG_INFO, "invoice created", "invoice_id", "42", NULL);           */
void log_msg(log_level level, const char *msg, ...) __attribute__((sentinel));
/* Same with a JSON object of fields (any JSON types); fields is borrowed. */
void log_json(log_level level, const char *msg, json_t *fields);

/* True when key names something secret (see above). */
int log_key_is_secret(const char *key);

#endif
