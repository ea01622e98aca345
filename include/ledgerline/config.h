/* config.h: typed settings from environment variables.
 *
 * Two layers: config_get_* report a problem through a message (testable), and
 * config_* (no "get") print one clear line naming the variable to stderr and
 * exit with status 2, which is what every process does at start per the
 * contract. Values of variables marked secret are never echoed in messages.
 */
#ifndef LEDGERLINE_CONFIG_H
#define LEDGERLINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_EXIT_STATUS 2
#define CONFIG_MAX_LIST 16

typedef struct {
    int64_t values[CONFIG_MAX_LIST];
    size_t count;
} config_int_list;

/* Each returns 0 on success, -1 with a message in err on failure.
 * An unset or empty variable takes the default; def == NULL (strings) makes
 * it required. */
int config_get_str(const char *name, const char *def, const char **out, char *err, size_t errlen);
int config_get_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
                   size_t errlen);
int config_get_bool(const char *name, bool def, bool *out, char *err, size_t errlen);
/* Comma-separated positive integers, e.g. RETRY_SCHEDULE_DAYS=3,7,14 (each in
 * [min,max], at least one, at most CONFIG_MAX_LIST). */
int config_get_int_list(const char *name, const char *def, int64_t min, int64_t max,
                        config_int_list *out, char *err, size_t errlen);
/* "host:port" (host may be empty or an IPv4 address or name). */
int config_get_hostport(const char *name, const char *def, char *host, size_t hostlen, int *port,
                        char *err, size_t errlen);
/* "HH:MM" in 24-hour time, into minutes after midnight. */
int config_get_hhmm(const char *name, const char *def, int *minutes, char *err, size_t errlen);

/* Shapes of the Stripe settings (CONTRACT "Hardening"). Each checks a value
 * already read (so a test or another caller can check one without the
 * environment) and fills err with a message that names `name` and says
 * which shape is expected, never the value itself (they are secrets):
 * - webhook secrets: a comma-separated list (blanks around an entry are
 *   ignored), each entry "whsec_" followed by at least 16 characters of
 *   [A-Za-z0-9+/=];
 * - secret key: (sk|rk)_(test|live)_ followed by 16 to 240 characters of
 *   [A-Za-z0-9];
 * - API base: parsed with libcurl's URL parser (the one the requests go
 *   through): https://host[:port][/path], or http:// only when the host is
 *   exactly 127.0.0.1, localhost or [::1]; never user info, a query or a
 *   fragment. *plain (when given) says whether it is http. */
int config_check_webhook_secrets(const char *name, const char *value, char *err, size_t errlen);
int config_check_stripe_key(const char *name, const char *value, char *err, size_t errlen);
int config_check_api_base(const char *name, const char *value, bool *plain, char *err,
                          size_t errlen);

/* Exit-on-error forms for process start-up (status CONFIG_EXIT_STATUS). */
const char *config_str(const char *name, const char *def);
const char *config_require(const char *name);
int64_t config_int(const char *name, int64_t def, int64_t min, int64_t max);
bool config_bool(const char *name, bool def);
void config_int_list_or_exit(const char *name, const char *def, int64_t min, int64_t max,
                             config_int_list *out);
void config_hostport(const char *name, const char *def, char *host, size_t hostlen, int *port);
int config_hhmm(const char *name, const char *def);
/* The variable, required and of the shape above (config_check_*). */
const char *config_webhook_secrets(const char *name);
const char *config_stripe_key(const char *name);
const char *config_api_base(const char *name, const char *def);

/* Prints "<program>: configuration error: <msg>" and exits 2. */
void config_die(const char *msg) __attribute__((noreturn));

#endif
