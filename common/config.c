/* config.c: typed settings read from the environment (config.h).
 *
 * Owns parsing and validation of every environment variable and the single
 * start-up failure path (config_die). Messages name the variable, say what is
 * wrong and what form is expected; values of secret variables never appear.
 */
#define _GNU_SOURCE /* program_invocation_short_name */
#include "ledgerline/config.h"
#include "ledgerline/failf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

/* Hints for the contract's required variables, so the one line an operator
 * sees at start says what to put there. */
static const struct {
    const char *name;
    const char *hint;
} config_hints[] = {
    {"KAFKA_BROKERS", "bootstrap servers, e.g. 127.0.0.1:9092"},
    {"DATABASE_URL", "libpq connection string, e.g. postgresql://user@localhost/billing"},
    {"STRIPE_SECRET_KEY", "Stripe API key, sk_live_... or rk_live_..."},
    {"STRIPE_WEBHOOK_SECRET", "endpoint signing secrets, comma-separated, whsec_..."},
};

static bool config_name_is_secret(const char *name)
{
    static const char *const words[] = {"SECRET", "KEY", "PASSWORD", "TOKEN"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(name, words[i]) != NULL)
            return true;
    return false;
}

/* Unset and empty both mean "not configured": an empty assignment in a
 * compose file or shell is almost always an unfilled placeholder. */
static const char *config_lookup(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int config_required_msg(const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof config_hints / sizeof config_hints[0]; i++)
        if (strcmp(config_hints[i].name, name) == 0)
            return ll_failf(err, errlen, "%s is required but not set (%s)", name,
                            config_hints[i].hint);
    return ll_failf(err, errlen, "%s is required but not set", name);
}

/* ", got \"<value>\"" with control and non-ASCII bytes escaped and long values
 * cut, so the message stays one readable line; nothing for secrets. */
static void config_quote_value(const char *name, const char *value, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (config_name_is_secret(name)) {
        snprintf(out, outlen, " (value not shown: secret)");
        return;
    }
    size_t n = 0;
    const size_t limit = 64;
    n += (size_t)snprintf(out + n, outlen - n, ", got \"");
    size_t i = 0;
    for (; i < limit && n + 8 < outlen && value[i] != '\0'; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(out + n, outlen - n, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    snprintf(out + n, outlen - n, "%s\"", value[i] != '\0' ? "..." : "");
}

static int config_fail(char *err, size_t errlen, const char *name, const char *value,
                       const char *what)
{
    char quoted[320];
    config_quote_value(name, value, quoted, sizeof quoted);
    return ll_failf(err, errlen, "%s %s%s", name, what, quoted);
}

/* Strict decimal: optional '-', then digits only. strtoll alone would also
 * accept leading blanks and '+', so the characters are checked first and
 * strtoll only does the arithmetic and the overflow check. */
static bool config_parse_i64(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    size_t i = len > 0 && s[0] == '-' ? 1 : 0;
    if (len == i || len >= sizeof buf)
        return false;
    for (size_t j = i; j < len; j++)
        if (s[j] < '0' || s[j] > '9')
            return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    char *end = NULL;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || end != buf + len)
        return false;
    *out = (int64_t)v;
    return true;
}

int config_get_str(const char *name, const char *def, const char **out, char *err, size_t errlen)
{
    const char *v = config_lookup(name);
    if (v == NULL) {
        if (def == NULL)
            return config_required_msg(name, err, errlen);
        v = def;
    }
    *out = v;
    return 0;
}

int config_get_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
                   size_t errlen)
{
    const char *v = config_lookup(name);
    int64_t n = def;
    if (v != NULL) {
        if (!config_parse_i64(v, strlen(v), &n) || n < min || n > max) {
            char what[128];
            snprintf(what, sizeof what, "must be an integer between %" PRId64 " and %" PRId64, min,
                     max);
            return config_fail(err, errlen, name, v, what);
        }
    } else if (n < min || n > max) {
        /* A default outside its own range is a programming error; say so
         * rather than run with it. */
        return ll_failf(err, errlen,
                        "cannot use the default of %s: %" PRId64 " is outside %" PRId64
                        "..%" PRId64,
                        name, n, min, max);
    }
    *out = n;
    return 0;
}

int config_get_bool(const char *name, bool def, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    const char *v = config_lookup(name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return config_fail(err, errlen, name, v, "must be true or false (or 1/0, yes/no, on/off)");
}

int config_get_int_list(const char *name, const char *def, int64_t min, int64_t max,
                        config_int_list *out, char *err, size_t errlen)
{
    const char *v = config_lookup(name);
    if (v == NULL)
        v = def;
    if (v == NULL)
        return config_required_msg(name, err, errlen);
    char what[256];
    snprintf(what, sizeof what,
             "must be a comma-separated list of 1 to %d integers between %" PRId64 " and %" PRId64
             " (e.g. 3,7,14)",
             CONFIG_MAX_LIST, min, max);
    if (v[0] == '\0')
        return config_fail(err, errlen, name, v, what);

    config_int_list list = {.count = 0};
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        int64_t n = 0;
        if (list.count == CONFIG_MAX_LIST)
            return config_fail(err, errlen, name, v, what);
        if (!config_parse_i64(p, len, &n) || n < min || n > max)
            return config_fail(err, errlen, name, v, what);
        list.values[list.count++] = n;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = list;
    return 0;
}

static bool config_host_char_ok(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '-' || c == '_';
}

int config_get_hostport(const char *name, const char *def, char *host, size_t hostlen, int *port,
                        char *err, size_t errlen)
{
    static const char what[] = "must be host:port with a port between 1 and 65535 "
                               "(host may be empty for all interfaces, e.g. 0.0.0.0:8080)";
    const char *v = config_lookup(name);
    if (v == NULL)
        v = def;
    if (v == NULL)
        return config_required_msg(name, err, errlen);
    const char *colon = strrchr(v, ':');
    if (colon == NULL)
        return config_fail(err, errlen, name, v, what);
    size_t hlen = (size_t)(colon - v);
    for (size_t i = 0; i < hlen; i++)
        if (!config_host_char_ok((unsigned char)v[i]))
            return config_fail(err, errlen, name, v, what);
    int64_t p = 0;
    if (!config_parse_i64(colon + 1, strlen(colon + 1), &p) || p < 1 || p > 65535)
        return config_fail(err, errlen, name, v, what);
    if (hlen >= hostlen)
        return config_fail(err, errlen, name, v, "has a host name that is too long");
    memcpy(host, v, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

int config_get_hhmm(const char *name, const char *def, int *minutes, char *err, size_t errlen)
{
    static const char what[] = "must be a time of day HH:MM between 00:00 and 23:59";
    const char *v = config_lookup(name);
    if (v == NULL)
        v = def;
    if (v == NULL)
        return config_required_msg(name, err, errlen);
    if (strlen(v) != 5 || v[2] != ':')
        return config_fail(err, errlen, name, v, what);
    for (int i = 0; i < 5; i++)
        if (i != 2 && (v[i] < '0' || v[i] > '9'))
            return config_fail(err, errlen, name, v, what);
    int hh = (v[0] - '0') * 10 + (v[1] - '0');
    int mm = (v[3] - '0') * 10 + (v[4] - '0');
    if (hh > 23 || mm > 59)
        return config_fail(err, errlen, name, v, what);
    *minutes = hh * 60 + mm;
    return 0;
}

/* ---- Stripe settings ---- */

#define CONFIG_SECRET_MIN 16
#define CONFIG_KEY_MAX 240

/* Where the real values come from, for the operator who left a placeholder
 * (the values themselves are never shown). */
#define CONFIG_WEBHOOK_SECRET_HINT                                                                 \
    "Copy the endpoint's signing secret from its page in the Stripe Dashboard (Webhooks), or "     \
    "the one `stripe listen` prints for local testing."
#define CONFIG_STRIPE_KEY_HINT                                                                     \
    "Use a secret (sk_) or restricted (rk_) key from the API keys page of the Stripe "             \
    "Dashboard; a publishable key (pk_) does not work here."

static bool config_is_b64(unsigned char c)
{
    return isalnum(c) || c == '+' || c == '/' || c == '=';
}

int config_check_webhook_secrets(const char *name, const char *value, char *err, size_t errlen)
{
    static const char shape[] =
        "whsec_ followed by at least 16 characters of A-Z, a-z, 0-9, +, / or =";
    if (value == NULL || value[0] == '\0')
        return config_required_msg(name, err, errlen);
    int entry = 0;
    for (const char *p = value;; entry++) {
        const char *comma = strchr(p, ',');
        const char *a = p, *b = comma != NULL ? comma : p + strlen(p);
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        bool ok = (size_t)(b - a) >= 6 + CONFIG_SECRET_MIN && strncmp(a, "whsec_", 6) == 0;
        for (const char *q = a + 6; ok && q < b; q++)
            ok = config_is_b64((unsigned char)*q);
        if (!ok) {
            /* Which entry, never what it holds: it is a secret. */
            ll_failf(err, errlen,
                     "%s entry %d is not a Stripe endpoint secret (expected %s, "
                     "several separated by commas; value not shown: secret)",
                     name, entry + 1, shape);
            return ll_hintf(err, errlen, CONFIG_WEBHOOK_SECRET_HINT);
        }
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

int config_check_stripe_key(const char *name, const char *value, char *err, size_t errlen)
{
    if (value == NULL || value[0] == '\0')
        return config_required_msg(name, err, errlen);
    static const char *const prefixes[] = {"sk_test_", "sk_live_", "rk_test_", "rk_live_"};
    bool ok = false;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !ok; i++)
        ok = strncmp(value, prefixes[i], 8) == 0;
    size_t n = strlen(value);
    ok = ok && n >= 8 + CONFIG_SECRET_MIN && n <= 8 + CONFIG_KEY_MAX;
    for (size_t i = 8; ok && i < n; i++)
        ok = isalnum((unsigned char)value[i]) != 0;
    if (!ok) {
        ll_failf(err, errlen,
                 "%s is not a Stripe API key (expected sk_ or rk_, then test_ or live_, then "
                 "16 to %d letters and digits; value not shown: secret)",
                 name, CONFIG_KEY_MAX);
        return ll_hintf(err, errlen, CONFIG_STRIPE_KEY_HINT);
    }
    return 0;
}

/* One URL part, or NULL when it is absent (the caller curl_free()s). */
static char *config_url_part(CURLU *u, CURLUPart what)
{
    char *part = NULL;
    if (curl_url_get(u, what, &part, 0) != CURLUE_OK)
        return NULL;
    return part;
}

int config_check_api_base(const char *name, const char *value, bool *plain, char *err,
                          size_t errlen)
{
    static const char shape[] = "must be an https:// URL without user name, query or fragment "
                                "(plain http:// only on 127.0.0.1, localhost or [::1])";
    if (value == NULL || value[0] == '\0')
        return config_fail(err, errlen, name, "", shape);
    /* libcurl's own parser, so that what is checked here is what the
     * requests will reach: "http://localhost:1@evil.example" has the host
     * evil.example and the user "localhost". */
    CURLU *u = curl_url();
    if (u == NULL)
        return ll_failf(err, errlen, "could not check %s: out of memory", name);
    int rc = -1;
    char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL, *options = NULL;
    char *query = NULL, *fragment = NULL, *zone = NULL;
    if (curl_url_set(u, CURLUPART_URL, value, 0) != CURLUE_OK)
        goto out;
    scheme = config_url_part(u, CURLUPART_SCHEME);
    host = config_url_part(u, CURLUPART_HOST);
    user = config_url_part(u, CURLUPART_USER);
    password = config_url_part(u, CURLUPART_PASSWORD);
    options = config_url_part(u, CURLUPART_OPTIONS);
    query = config_url_part(u, CURLUPART_QUERY);
    fragment = config_url_part(u, CURLUPART_FRAGMENT);
    zone = config_url_part(u, CURLUPART_ZONEID);
    if (scheme == NULL || host == NULL || host[0] == '\0' || user != NULL || password != NULL ||
        options != NULL || query != NULL || fragment != NULL || zone != NULL)
        goto out;
    /* The original text must also not smuggle an '@' past the parser. */
    if (strchr(value, '@') != NULL)
        goto out;
    if (strcmp(scheme, "https") == 0) {
        rc = 0;
        if (plain != NULL)
            *plain = false;
    } else if (strcmp(scheme, "http") == 0 &&
               (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
                strcmp(host, "[::1]") == 0)) {
        rc = 0;
        if (plain != NULL)
            *plain = true;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_free(options);
    curl_free(query);
    curl_free(fragment);
    curl_free(zone);
    curl_url_cleanup(u);
    if (rc != 0)
        return config_fail(err, errlen, name, value, shape);
    return 0;
}

/* Turns each "\n" of a message in line[0..n) (before its final newline)
 * into "; ", cut to size, keeping the final newline. */
static void config_one_line(char *line, size_t n, size_t size)
{
    char out[1024];
    size_t o = 0, limit = size < sizeof out ? size : sizeof out;
    for (size_t i = 0; i + 1 < n && o + 3 < limit; i++) {
        if (line[i] == '\n') {
            out[o++] = ';';
            out[o++] = ' ';
        } else {
            out[o++] = line[i];
        }
    }
    out[o++] = '\n';
    out[o] = '\0';
    memcpy(line, out, o + 1);
}

void config_die(const char *msg)
{

    /* One write so the line cannot interleave with log lines from other
     * threads already running (librdkafka's, for instance). */
    char line[1024];
    int n = snprintf(line, sizeof line, "%s: configuration error: %s\n",
                     program_invocation_short_name, msg);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* Still one line: a DETAIL or HINT (failf.h) follows after "; ". */
    if (n > 0) {
        config_one_line(line, (size_t)n, sizeof line);
        n = (int)strlen(line);
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(STDERR_FILENO, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    exit(CONFIG_EXIT_STATUS);
}

const char *config_str(const char *name, const char *def)
{
    char err[512];
    const char *v = NULL;
    if (config_get_str(name, def, &v, err, sizeof err) != 0)
        config_die(err);
    return v;
}

const char *config_require(const char *name)
{
    return config_str(name, NULL);
}

int64_t config_int(const char *name, int64_t def, int64_t min, int64_t max)
{
    char err[512];
    int64_t v = 0;
    if (config_get_int(name, def, min, max, &v, err, sizeof err) != 0)
        config_die(err);
    return v;
}

bool config_bool(const char *name, bool def)
{
    char err[512];
    bool v = false;
    if (config_get_bool(name, def, &v, err, sizeof err) != 0)
        config_die(err);
    return v;
}

void config_int_list_or_exit(const char *name, const char *def, int64_t min, int64_t max,
                             config_int_list *out)
{
    char err[512];
    if (config_get_int_list(name, def, min, max, out, err, sizeof err) != 0)
        config_die(err);
}

void config_hostport(const char *name, const char *def, char *host, size_t hostlen, int *port)
{
    char err[512];
    if (config_get_hostport(name, def, host, hostlen, port, err, sizeof err) != 0)
        config_die(err);
}

int config_hhmm(const char *name, const char *def)
{
    char err[512];
    int v = 0;
    if (config_get_hhmm(name, def, &v, err, sizeof err) != 0)
        config_die(err);
    return v;
}

const char *config_webhook_secrets(const char *name)
{
    char err[512];
    const char *v = config_lookup(name);
    if (config_check_webhook_secrets(name, v, err, sizeof err) != 0)
        config_die(err);
    return v;
}

const char *config_stripe_key(const char *name)
{
    char err[512];
    const char *v = config_lookup(name);
    if (config_check_stripe_key(name, v, err, sizeof err) != 0)
        config_die(err);
    return v;
}

const char *config_api_base(const char *name, const char *def)
{
    char err[512];
    const char *v = config_lookup(name);
    if (v == NULL)
        v = def;
    if (config_check_api_base(name, v, NULL, err, sizeof err) != 0)
        config_die(err);
    return v;
}
