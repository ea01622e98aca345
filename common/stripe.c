/* stripe.c: the Stripe API client (see stripe.h). Owns the wire: form
 * encoding, headers, TLS and timeouts, the request-rate cap, concurrent
 * transfers over curl multi, and the classification of every answer. What a
 * charge or a refund means for an invoice lives in payments.c / disputes.c. */
#include "ledgerline/stripe.h"
#include "ledgerline/clock.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "ledgerline/config.h"
#include "ledgerline/failf.h"
#include "ledgerline/stripe_event.h"

#define STRIPE_MAX_BODY (4u * 1024u * 1024u) /* larger answers are not Stripe's */

/* ------------------------------------------------------------------------ */
/* Classification                                                            */

const char *stripe_outcome_name(stripe_outcome o)
{
    switch (o) {
    case STRIPE_OK: return "ok";
    case STRIPE_CARD_ERROR: return "card_error";
    case STRIPE_INVALID_REQUEST: return "invalid_request";
    case STRIPE_IDEMPOTENCY_ERROR: return "idempotency_error";
    case STRIPE_RATE_LIMITED: return "rate_limited";
    case STRIPE_SERVER_ERROR: return "server_error";
    case STRIPE_NETWORK_ERROR: return "network_error";
    }
    return "unknown";
}

static void stripe_copy(char *dst, size_t dstsz, const char *src)
{
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    snprintf(dst, dstsz, "%s", src);
}

/* The object the answer is about: the body itself, or for an error the
 * PaymentIntent it carries (a decline still created an intent). */
static void stripe_read_object(const json_t *obj, stripe_result *out)
{
    if (!json_is_object(obj))
        return;
    stripe_copy(out->object_id, sizeof out->object_id, stripe_json_str(obj, "id"));
    stripe_copy(out->object_status, sizeof out->object_status, stripe_json_str(obj, "status"));
    stripe_copy(out->latest_charge, sizeof out->latest_charge,
                stripe_json_str(obj, "latest_charge"));
    if (out->latest_charge[0] == '\0')
        stripe_copy(out->latest_charge, sizeof out->latest_charge, stripe_json_str(obj, "charge"));
    out->amount = stripe_json_i64(obj, "amount", -1);
}

void stripe_classify(long status, const char *should_retry, const char *request_id,
                     const char *body, size_t len, const char *net_error, stripe_result *out)
{
    memset(out, 0, sizeof *out);
    out->amount = -1;
    out->http_status = status;
    stripe_copy(out->request_id, sizeof out->request_id, request_id);
    if (status <= 0) {
        out->outcome = STRIPE_NETWORK_ERROR;
        out->retryable = true;
        stripe_copy(out->message, sizeof out->message,
                    net_error && *net_error ? net_error : "no answer from Stripe");
        return;
    }
    if (body != NULL && len > 0)
        out->body = json_loadb(body, len, 0, NULL);
    const json_t *error = stripe_json_get(out->body, "error");
    stripe_copy(out->error_type, sizeof out->error_type, stripe_json_str(error, "type"));
    stripe_copy(out->code, sizeof out->code, stripe_json_str(error, "code"));
    stripe_copy(out->decline_code, sizeof out->decline_code,
                stripe_json_str(error, "decline_code"));
    stripe_copy(out->message, sizeof out->message, stripe_json_str(error, "message"));
    stripe_copy(out->param, sizeof out->param, stripe_json_str(error, "param"));

    if (status >= 200 && status < 300 && json_is_object(out->body)) {
        out->outcome = STRIPE_OK;
        stripe_read_object(out->body, out);
    } else if (status >= 200 && status < 300) {
        /* A 2xx that is not a JSON object: we cannot know what happened, so
         * it is treated as an outage and the same key is replayed later. */
        out->outcome = STRIPE_SERVER_ERROR;
        out->retryable = true;
        stripe_copy(out->message, sizeof out->message, "2xx answer without a JSON object");
    } else if (status == 429 || (status == 400 && strcmp(out->code, "rate_limit") == 0)) {
        out->outcome = STRIPE_RATE_LIMITED; /* classified by status, as the fixtures say */
        out->retryable = true;
    } else if (status >= 500) {
        /* By status, whatever the body says: an outage is replayed with the
         * same key, never recorded as a decline. */
        out->outcome = STRIPE_SERVER_ERROR;
        out->retryable = true;
    } else if (status == 402 || strcmp(out->error_type, "card_error") == 0) {
        out->outcome = STRIPE_CARD_ERROR;
        stripe_read_object(stripe_json_get(error, "payment_intent"), out);
    } else if (status == 409) {
        out->outcome = STRIPE_IDEMPOTENCY_ERROR; /* the same key still in flight */
        out->retryable = true;
    } else if (strcmp(out->error_type, "idempotency_error") == 0) {
        out->outcome = STRIPE_IDEMPOTENCY_ERROR; /* same key, other parameters */
    } else {
        out->outcome = STRIPE_INVALID_REQUEST;
    }
    if (out->message[0] == '\0')
        snprintf(out->message, sizeof out->message, "HTTP %ld from Stripe", status);
    /* Stripe's own word wins over the rule of thumb (fixtures README fact 6). */
    if (should_retry != NULL && strcasecmp(should_retry, "true") == 0)
        out->retryable = true;
    else if (should_retry != NULL && strcasecmp(should_retry, "false") == 0)
        out->retryable = false;
}

void stripe_result_free(stripe_result *r)
{
    if (r == NULL)
        return;
    json_decref(r->body);
    r->body = NULL;
}

bool stripe_result_transient(const stripe_result *r)
{
    switch (r->outcome) {
    case STRIPE_RATE_LIMITED:
    case STRIPE_SERVER_ERROR:
    case STRIPE_NETWORK_ERROR:
    case STRIPE_IDEMPOTENCY_ERROR: return r->retryable;
    default: return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Form bodies                                                               */

struct stripe_form {
    char *buf;
    size_t len, cap;
};

stripe_form *stripe_form_new(void)
{
    stripe_form *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->buf = malloc(256);
    if (f->buf == NULL) {
        free(f);
        return NULL;
    }
    f->cap = 256;
    f->buf[0] = '\0';
    return f;
}

void stripe_form_free(stripe_form *f)
{
    if (f == NULL)
        return;
    free(f->buf);
    free(f);
}

static int stripe_form_putc(stripe_form *f, char ch)
{
    if (f->len + 2 > f->cap) {
        size_t cap = f->cap * 2;
        char *nb = realloc(f->buf, cap);
        if (nb == NULL)
            return -1;
        f->buf = nb;
        f->cap = cap;
    }
    f->buf[f->len++] = ch;
    f->buf[f->len] = '\0';
    return 0;
}

/* Percent-encodes s; brackets stay literal in keys (Stripe's nested keys,
 * as stripe-node sends them). */
static int stripe_form_put(stripe_form *f, const char *s, bool key)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (key && (*p == '[' || *p == ']')))
            rc = stripe_form_putc(f, (char)*p);
        else
            rc = stripe_form_putc(f, '%') | stripe_form_putc(f, hex[*p >> 4]) |
                 stripe_form_putc(f, hex[*p & 15]);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int stripe_form_add(stripe_form *f, const char *key, const char *value)
{
    if (f == NULL || key == NULL || key[0] == '\0' || value == NULL)
        return -1;
    if (f->len > 0 && stripe_form_putc(f, '&') != 0)
        return -1;
    if (stripe_form_put(f, key, true) != 0 || stripe_form_putc(f, '=') != 0 ||
        stripe_form_put(f, value, false) != 0)
        return -1;
    return 0;
}

int stripe_form_add_i64(stripe_form *f, const char *key, int64_t value)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, value);
    return stripe_form_add(f, key, buf);
}

const char *stripe_form_body(const stripe_form *f)
{
    return f ? f->buf : "";
}

/* A built form, or NULL (the form freed) when any field failed (rc != 0). */
static stripe_form *stripe_form_done(stripe_form *f, int rc)
{
    if (rc == 0)
        return f;
    stripe_form_free(f);
    return NULL;
}

stripe_form *stripe_form_payment_intent(int64_t amount, const char *currency, const char *customer,
                                        const char *payment_method, int64_t invoice_id,
                                        int64_t firm_id, const char *attempt_key)
{
    stripe_form *f = stripe_form_new();
    if (f == NULL)
        return NULL;
    int rc = stripe_form_add_i64(f, "amount", amount);
    rc |= stripe_form_add(f, "currency", currency);
    if (customer != NULL && customer[0] != '\0')
        rc |= stripe_form_add(f, "customer", customer);
    rc |= stripe_form_add(f, "payment_method", payment_method);
    rc |= stripe_form_add(f, "confirm", "true");
    rc |= stripe_form_add(f, "off_session", "true");
    rc |= stripe_form_add_i64(f, "metadata[invoice_id]", invoice_id);
    rc |= stripe_form_add_i64(f, "metadata[firm_id]", firm_id);
    rc |= stripe_form_add(f, "metadata[attempt_key]", attempt_key);
    return stripe_form_done(f, rc);
}

stripe_form *stripe_form_refund(const char *payment_intent, const char *charge, int64_t amount,
                                const char *reason, int64_t invoice_id)
{
    stripe_form *f = stripe_form_new();
    if (f == NULL)
        return NULL;
    int rc = 0;
    if (payment_intent != NULL && payment_intent[0] != '\0')
        rc |= stripe_form_add(f, "payment_intent", payment_intent);
    else
        rc |= stripe_form_add(f, "charge", charge);
    if (amount > 0)
        rc |= stripe_form_add_i64(f, "amount", amount);
    if (reason != NULL && reason[0] != '\0')
        rc |= stripe_form_add(f, "reason", reason);
    rc |= stripe_form_add_i64(f, "metadata[invoice_id]", invoice_id);
    return stripe_form_done(f, rc);
}

/* ------------------------------------------------------------------------ */
/* Client                                                                    */

struct stripe_client {
    char *base;        /* without a trailing slash */
    char *auth_header; /* "Authorization: Bearer sk_..." */
    bool plain_http;
    int max_rps;
    int connect_timeout_ms, timeout_ms, max_concurrency;
    uint64_t *starts; /* ring of the last max_rps start times, µs */
    size_t next;      /* oldest slot */
    uint64_t *sent;   /* ring of the last max_rps + 1 send times, µs (stats) */
    size_t sent_next;
    uint64_t paced_us; /* when the next start is due on an even pace, µs */
    CURLM *multi;
    stripe_stats stats;
    metrics_registry *metrics;
    /* Stripe refused our key (401/403) on the latest answer; read by the
     * metrics listener's thread for /readyz, hence atomic. */
    bool key_refused;
};

static pthread_once_t stripe_curl_once = PTHREAD_ONCE_INIT;
static void stripe_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void stripe_config_from_env(stripe_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* Shapes first (exit 2 naming the variable, never its value). */
    cfg->secret_key = config_stripe_key("STRIPE_SECRET_KEY");
    cfg->api_base = config_api_base("STRIPE_API_BASE", "https://api.stripe.com");
    cfg->max_rps = (int)config_int("STRIPE_MAX_RPS", 25, 1, 10000);
    char err[256];
    stripe_client *probe = stripe_client_new(cfg, err, sizeof err);
    if (probe == NULL) {
        char msg[400];
        ll_failf(
            msg, sizeof msg,
            "could not set up the Stripe client from STRIPE_API_BASE and STRIPE_SECRET_KEY: %s",
            err);
        config_die(msg);
    }
    stripe_client_free(probe);
}

stripe_client *stripe_client_new(const stripe_config *cfg, char *err, size_t errlen)
{
    pthread_once(&stripe_curl_once, stripe_curl_init);
    const char *base = cfg->api_base ? cfg->api_base : "https://api.stripe.com";
    /* The shapes of config.h, also for a client configured in code: http://
     * only for a stand-in on this machine, a key that cannot carry a header. */
    bool plain = false;
    if (config_check_api_base("API base", base, &plain, err, errlen) != 0 ||
        config_check_stripe_key("the secret key", cfg->secret_key, err, errlen) != 0)
        return NULL;
    if (cfg->max_rps < 1 && cfg->max_rps != 0) {
        ll_failf(err, errlen, "cannot create a Stripe client: max_rps must be at least 1");
        ll_detailf(err, errlen, "max_rps is %d (0 means the default, 25).", cfg->max_rps);
        return NULL;
    }
    stripe_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        ll_failf(err, errlen, "could not create a Stripe client: out of memory");
        return NULL;
    }
    c->max_rps = cfg->max_rps > 0 ? cfg->max_rps : 25;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    c->max_concurrency = cfg->max_concurrency > 0 ? cfg->max_concurrency : 256;
    c->plain_http = plain;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    c->base = strndup(base, blen);
    size_t alen = strlen(cfg->secret_key) + 32;
    c->auth_header = malloc(alen);
    c->starts = calloc((size_t)c->max_rps, sizeof *c->starts);
    c->sent = calloc((size_t)c->max_rps + 1, sizeof *c->sent);
    c->multi = curl_multi_init();
    if (c->base == NULL || c->auth_header == NULL || c->starts == NULL || c->sent == NULL ||
        c->multi == NULL) {
        stripe_client_free(c);
        ll_failf(err, errlen, "could not create a Stripe client: out of memory");
        return NULL;
    }
    snprintf(c->auth_header, alen, "Authorization: Bearer %s", cfg->secret_key);
    c->metrics = cfg->metrics;
    if (c->metrics != NULL) {
        /* Already declared by an earlier client of this registry: fine. */
        (void)metrics_declare(c->metrics, "billing_stripe_requests_total", METRICS_COUNTER,
                              "Stripe API requests by outcome.");
        (void)metrics_declare(c->metrics, "billing_stripe_request_seconds", METRICS_HISTOGRAM,
                              "Stripe API request latency.");
    }
    return c;
}

void stripe_client_free(stripe_client *c)
{
    if (c == NULL)
        return;
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->auth_header) {
        /* The key does not outlive the client in our memory. */
        memset(c->auth_header, 0, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c->base);
    free(c->starts);
    free(c->sent);
    free(c);
}

bool stripe_client_key_refused(const stripe_client *c)
{
    return c != NULL && __atomic_load_n(&c->key_refused, __ATOMIC_RELAXED);
}

stripe_stats stripe_client_stats(const stripe_client *c)
{
    return c->stats;
}

/* The window the cap is kept over, a little longer than one second: the
 * server counts arrivals, and a request sent on a fresh connection (the
 * first burst) reaches it a little later after its start than one sent on a
 * reused connection a second later; without the margin the server sees
 * max_rps + 1 in some one-second window. 1% of throughput. */
#define STRIPE_RATE_WINDOW_US 1020000u

/* Microseconds until one more request may start (0 = now): never more
 * than max_rps starts in any window, and starts spread evenly over it (at
 * most one interval ahead of the pace) rather than all at once at the top of
 * each second: a burst of max_rps requests on fresh connections reaches the
 * server spread over as long as it takes to accept them, which can let the
 * next second's burst into the same one-second window there. */
static uint64_t stripe_rate_wait(const stripe_client *c, uint64_t now)
{
    uint64_t interval = STRIPE_RATE_WINDOW_US / (uint64_t)c->max_rps;
    uint64_t wait = 0;
    uint64_t oldest = c->starts[c->next];
    if (oldest != 0 && now < oldest + STRIPE_RATE_WINDOW_US)
        wait = oldest + STRIPE_RATE_WINDOW_US - now;
    if (c->paced_us > now + interval && c->paced_us - interval - now > wait)
        wait = c->paced_us - interval - now;
    return wait;
}

/* Takes the oldest slot for a request starting now; returns the slot. */
static size_t stripe_rate_take(stripe_client *c, uint64_t now)
{
    size_t slot = c->next;
    c->starts[slot] = now;
    c->next = (c->next + 1) % (size_t)c->max_rps;
    c->paced_us =
        (c->paced_us > now ? c->paced_us : now) + STRIPE_RATE_WINDOW_US / (uint64_t)c->max_rps;
    return slot;
}

/* One transfer in flight. */
typedef struct {
    stripe_call *call;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *body;
    size_t body_len;
    bool too_big;
    char should_retry[16];
    bool has_should_retry;
    char request_id[64];
    char errbuf[CURL_ERROR_SIZE];
    uint64_t started_us;
    stripe_client *client;
    size_t slot;       /* its start time in client->starts */
    uint64_t stamp_us; /* the value it wrote there */
} stripe_xfer;

/* Called by curl just before the request goes out on its connection (after
 * connecting): the start time in the rate window becomes the time of
 * sending, so the time spent connecting a burst of fresh connections is not
 * counted as if those requests had been sent at once. Only ever moves a
 * start later (stricter), and only while the slot is still this request's. */
static int stripe_on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port,
                            int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    stripe_xfer *x = ud;
    stripe_client *c = x->client;
    uint64_t now = clock_mono_us();
    if (c->starts[x->slot] == x->stamp_us && now > x->stamp_us) {
        c->starts[x->slot] = now;
        x->stamp_us = now;
    }
    /* How many went out in the second up to now (this one included). */
    size_t ring = (size_t)c->max_rps + 1;
    c->sent[c->sent_next] = now;
    c->sent_next = (c->sent_next + 1) % ring;
    uint64_t in_window = 0;
    for (size_t i = 0; i < ring; i++)
        if (c->sent[i] != 0 && c->sent[i] + 1000000u > now)
            in_window++;
    if (in_window > c->stats.max_sent_in_window)
        c->stats.max_sent_in_window = in_window;
    return CURL_PREREQFUNC_OK;
}

static size_t stripe_on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    stripe_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->body_len + n > STRIPE_MAX_BODY) {
        x->too_big = true;
        return 0; /* aborts the transfer */
    }
    char *nb = realloc(x->body, x->body_len + n + 1);
    if (nb == NULL)
        return 0;
    memcpy(nb + x->body_len, data, n);
    x->body = nb;
    x->body_len += n;
    x->body[x->body_len] = '\0';
    return n;
}

/* Copies the value of header `name` from one header line. */
static bool stripe_header_value(const char *line, size_t n, const char *name, char *out,
                                size_t outsz)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= outsz)
        len = outsz - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

static size_t stripe_on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    stripe_xfer *x = ud;
    size_t n = size * nmemb;
    if (stripe_header_value(data, n, "Stripe-Should-Retry", x->should_retry,
                            sizeof x->should_retry))
        x->has_should_retry = true;
    else
        stripe_header_value(data, n, "Request-Id", x->request_id, sizeof x->request_id);
    return n;
}

static void stripe_xfer_free(stripe_xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->url);
    free(x->body);
    memset(x, 0, sizeof *x);
}

/* Validates a call before anything is sent; fills its result when refused. */
static bool stripe_call_valid(stripe_call *call)
{
    const char *why = NULL;
    bool get = call->method && strcmp(call->method, "GET") == 0;
    bool post = call->method && strcmp(call->method, "POST") == 0;
    if (!get && !post)
        why = "method must be GET or POST";
    else if (call->path == NULL || strncmp(call->path, "/v1/", 4) != 0)
        why = "path must start with /v1/";
    else if (post && (call->idempotency_key == NULL || call->idempotency_key[0] == '\0' ||
                      strlen(call->idempotency_key) > 255))
        why = "a POST needs an idempotency key of 1..255 characters";
    if (why == NULL)
        return true;
    memset(&call->result, 0, sizeof call->result);
    call->result.outcome = STRIPE_INVALID_REQUEST;
    call->result.amount = -1;
    snprintf(call->result.message, sizeof call->result.message, "not sent: %s", why);
    return false;
}

static int stripe_xfer_start(stripe_client *c, stripe_xfer *x, stripe_call *call)
{
    memset(x, 0, sizeof *x);
    x->call = call;
    bool post = strcmp(call->method, "POST") == 0;
    const char *form = stripe_form_body(call->form);
    size_t ulen = strlen(c->base) + strlen(call->path) + strlen(form) + 2;
    x->url = malloc(ulen);
    x->easy = curl_easy_init();
    if (x->url == NULL || x->easy == NULL)
        return -1;
    if (!post && form[0] != '\0')
        snprintf(x->url, ulen, "%s%s%c%s", c->base, call->path, strchr(call->path, '?') ? '&' : '?',
                 form);
    else
        snprintf(x->url, ulen, "%s%s", c->base, call->path);

    char idem[300];
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, c->auth_header);
    h = h ? curl_slist_append(h, "Stripe-Version: " STRIPE_API_VERSION) : NULL;
    h = h ? curl_slist_append(h, "Expect:") : NULL;
    if (h && post) {
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", call->idempotency_key);
        h = curl_slist_append(h, idem);
        h = h ? curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded") : NULL;
    }
    if (h == NULL)
        return -1;
    x->headers = h;

    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ledgerline/1 (libcurl)");
    /* Only the scheme the base allows; never follow redirects. */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->plain_http ? "http" : "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, stripe_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, stripe_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, stripe_on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    if (post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
    }
    x->started_us = clock_mono_us();
    return curl_multi_add_handle(c->multi, e) == CURLM_OK ? 0 : -1;
}

static void stripe_xfer_finish(stripe_client *c, stripe_xfer *x, CURLcode rc)
{
    long status = 0;
    char neterr[CURL_ERROR_SIZE + 64] = "";
    if (rc == CURLE_OK) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    } else if (x->too_big) {
        snprintf(neterr, sizeof neterr, "answer larger than %u bytes", STRIPE_MAX_BODY);
    } else {
        snprintf(neterr, sizeof neterr, "%s: %s", curl_easy_strerror(rc),
                 x->errbuf[0] ? x->errbuf : "no detail");
    }
    stripe_classify(status, x->has_should_retry ? x->should_retry : NULL,
                    x->request_id[0] ? x->request_id : NULL, x->body, x->body_len, neterr,
                    &x->call->result);
    x->call->latency_us = clock_mono_us() - x->started_us;
    if (status > 0)
        __atomic_store_n(&c->key_refused, status == 401 || status == 403, __ATOMIC_RELAXED);
    c->stats.requests++;
    c->stats.by_outcome[x->call->result.outcome]++;
    c->stats.latency_us_total += x->call->latency_us;
    if (c->metrics != NULL) {
        metrics_counter_add(c->metrics, "billing_stripe_requests_total", 1, "outcome",
                            stripe_outcome_name(x->call->result.outcome), NULL);
        metrics_histogram_observe_us(c->metrics, "billing_stripe_request_seconds",
                                     x->call->latency_us, NULL);
    }
    curl_multi_remove_handle(c->multi, x->easy);
    stripe_xfer_free(x);
}

/* The run loop shared by stripe_perform_many and stripe_perform_stream:
 * asks next() for a call whenever the cap and a free slot allow one more to
 * start, hands each finished call to done() (when given). */
static int stripe_run(stripe_client *c, size_t slots, stripe_next_fn next, stripe_done_fn done,
                      void *arg, char *err, size_t errlen)
{
    stripe_xfer *xs = calloc(slots, sizeof *xs); /* slots >= 1 */
    if (xs == NULL)
        return ll_failf(err, errlen, "could not call Stripe: out of memory");
    size_t inflight = 0;
    bool finished = false;
    int rc = 0;
    for (;;) {
        uint64_t wait_us = 0;
        bool idle = false; /* next() had nothing ready yet */
        /* Start what the cap and the slots allow. */
        while (!finished && inflight < slots) {
            wait_us = stripe_rate_wait(c, clock_mono_us());
            if (wait_us > 0)
                break;
            stripe_call *call = next(arg, &finished);
            if (call == NULL) {
                idle = !finished;
                break;
            }
            if (!stripe_call_valid(call)) {
                if (done != NULL)
                    done(call, arg);
                continue;
            }
            uint64_t now = clock_mono_us(); /* next() may have taken a while */
            size_t s = 0;
            while (xs[s].call != NULL)
                s++;
            if (stripe_xfer_start(c, &xs[s], call) != 0) {
                stripe_xfer_free(&xs[s]);
                stripe_classify(0, NULL, NULL, NULL, 0, "could not set up the request",
                                &call->result);
                if (done != NULL)
                    done(call, arg);
                continue;
            }
            xs[s].client = c;
            xs[s].slot = stripe_rate_take(c, now);
            xs[s].stamp_us = now;
            inflight++;
        }
        if (inflight == 0 && finished)
            break;
        int running = 0;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            rc = ll_failf(err, errlen, "could not call Stripe: libcurl's multi interface failed");

            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            stripe_xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            stripe_call *call = x->call;
            stripe_xfer_finish(c, x, msg->data.result);
            inflight--;
            if (done != NULL)
                done(call, arg);
        }
        if (inflight == 0 && finished)
            break;
        int timeout_ms = 100;
        if (!finished && inflight < slots && wait_us > 0)
            timeout_ms = (int)(wait_us / 1000u) + 1;
        else if (idle)
            timeout_ms = 5;
        if (timeout_ms > 100)
            timeout_ms = 100;
        curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL);
    }
    /* Only on a multi failure can transfers remain: give them an answer. */
    for (size_t s = 0; s < slots; s++) {
        if (xs[s].call != NULL) {
            stripe_call *call = xs[s].call;
            stripe_classify(0, NULL, NULL, NULL, 0, "aborted", &call->result);
            curl_multi_remove_handle(c->multi, xs[s].easy);
            stripe_xfer_free(&xs[s]);
            if (done != NULL)
                done(call, arg);
        }
    }
    free(xs);
    return rc;
}

typedef struct {
    stripe_call *calls;
    size_t n, next;
} stripe_array;

static stripe_call *stripe_array_next(void *arg, bool *finished)
{
    stripe_array *a = arg;
    if (a->next >= a->n) {
        *finished = true;
        return NULL;
    }
    return &a->calls[a->next++];
}

int stripe_perform_many(stripe_client *c, stripe_call *calls, size_t n, char *err, size_t errlen)
{
    stripe_array a = {.calls = calls, .n = n};
    size_t slots = (size_t)c->max_concurrency < n ? (size_t)c->max_concurrency : n;
    return stripe_run(c, slots ? slots : 1, stripe_array_next, NULL, &a, err, errlen);
}

int stripe_perform_stream(stripe_client *c, stripe_next_fn next, stripe_done_fn done, void *arg,
                          char *err, size_t errlen)
{
    return stripe_run(c, (size_t)c->max_concurrency, next, done, arg, err, errlen);
}

int stripe_perform(stripe_client *c, stripe_call *call, char *err, size_t errlen)
{
    return stripe_perform_many(c, call, 1, err, errlen);
}
