/* kafka.c: the shared producer (acks=all, idempotent, wait for delivery) and
 * the consumer-group loop (store offsets only after the handler committed,
 * dead-letter permanent failures, rewind and back off on transient ones).
 *
 * Modelled on librdkafka's examples/producer.c and consumer.c: delivery
 * reports through dr_msg_cb, an explicit rebalance callback, and a clean
 * close that commits what was processed.
 *
 * Credentials: every client's configuration starts from kafka_conf_new(),
 * which applies the contract's KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* /
 * KAFKA_SSL_* settings (kafka_security_from_env validates them; the
 * password is handed to librdkafka and never logged).
 *
 * Fatal errors: an idempotent producer that hits a fatal error (e.g. it was
 * fenced, or its principal lost the right to write) can never send again.
 * kafka_error_cb records it process-wide (kafka_fatal()), so /readyz fails
 * and the process stops and exits non-zero instead of retrying forever.
 *
 * Consumer metrics (optional, kafka_consumer_config.metrics): outcomes and
 * handler latency per message, dead-lettered messages, and the lag of each
 * assigned partition (cached high watermark - position, as librdkafka's
 * rd_kafka_get_watermark_offsets()/rd_kafka_position() give them without a
 * broker round trip; the committed offset stands in for partitions this
 * instance has not consumed from yet).
 */
#include "ledgerline/kafka.h"
#include "ledgerline/clock.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ledgerline/config.h"
#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"

/* ---------------------------------------------------------------- shared */

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug. */
    log_level lvl = level <= 3   ? LL_LOG_ERROR
                    : level == 4 ? LL_LOG_WARN
                    : level <= 6 ? LL_LOG_INFO
                                 : LL_LOG_DEBUG;
    log_msg(lvl, "librdkafka", "facility", fac, "detail", buf, NULL);
}

/* The first fatal error of any client of this process; set once. */
static atomic_bool kafka_fatal_seen;
static char kafka_fatal_text[512];
static pthread_mutex_t kafka_fatal_mu = PTHREAD_MUTEX_INITIALIZER;

void kafka_fatal_record(const char *reason)
{
    pthread_mutex_lock(&kafka_fatal_mu);
    if (!atomic_load(&kafka_fatal_seen)) {
        snprintf(kafka_fatal_text, sizeof kafka_fatal_text, "%s", reason);
        atomic_store(&kafka_fatal_seen, true);
    }
    pthread_mutex_unlock(&kafka_fatal_mu);
}

bool kafka_fatal(char *why, size_t whylen)
{
    if (!atomic_load(&kafka_fatal_seen))
        return false;
    if (why != NULL && whylen > 0) {
        pthread_mutex_lock(&kafka_fatal_mu);
        snprintf(why, whylen, "%s", kafka_fatal_text);
        pthread_mutex_unlock(&kafka_fatal_mu);
    }
    return true;
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* The underlying error says why (fenced, unauthorized, ...); the
         * client accepts nothing more, so neither does the process. */
        char why[400];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        char text[sizeof kafka_fatal_text - 1];
        snprintf(text, sizeof text, "%s: %s", rd_kafka_err2name(orig), why);
        kafka_fatal_record(text);
        log_msg(LL_LOG_ERROR, "fatal kafka error: the client accepts no more work", "error",
                rd_kafka_err2name(orig), "reason", why, NULL);
        shutdown_request();
        return;
    }
    /* Broker transport failures are normal while a broker restarts; librdkafka
     * reconnects by itself. */
    log_msg(LL_LOG_WARN, "kafka error", "error", rd_kafka_err2name((rd_kafka_resp_err_t)err),
            "reason", reason, NULL);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen)
{
    if (rd_kafka_conf_set(conf, name, value, err, errlen) != RD_KAFKA_CONF_OK)
        return -1;
    return 0;
}

/* ----------------------------------------------------------- credentials */

static const char *sec_lookup(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Copies v lower- or upper-cased into out; -1 when it does not fit. */
static int sec_fold(const char *v, bool upper, char *out, size_t outlen)
{
    size_t i = 0;
    for (; v[i] != '\0'; i++) {
        if (i + 1 >= outlen)
            return -1;
        out[i] = (char)(upper ? toupper((unsigned char)v[i]) : tolower((unsigned char)v[i]));
    }
    out[i] = '\0';
    return 0;
}

/* A readable file (or, for the CA, a directory of certificates). */
static int sec_path(const char *name, const char *v, char *err, size_t errlen)
{
    if (access(v, R_OK) != 0)
        return ll_failf(err, errlen, "%s names a file that cannot be read: %s", name,
                        strerror(errno));
    return 0;
}

int kafka_security_from_env(kafka_security *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *proto = sec_lookup("KAFKA_SECURITY_PROTOCOL");
    if (proto == NULL)
        proto = "plaintext";
    if (sec_fold(proto, false, out->protocol, sizeof out->protocol) != 0 ||
        (strcmp(out->protocol, "plaintext") != 0 && strcmp(out->protocol, "ssl") != 0 &&
         strcmp(out->protocol, "sasl_plaintext") != 0 && strcmp(out->protocol, "sasl_ssl") != 0)) {
        return ll_failf(
            err, errlen,
            "KAFKA_SECURITY_PROTOCOL must be plaintext, ssl, sasl_plaintext or sasl_ssl");
    }
    bool sasl = strncmp(out->protocol, "sasl_", 5) == 0;
    bool ssl = strcmp(out->protocol, "ssl") == 0 || strcmp(out->protocol, "sasl_ssl") == 0;

    static const char *const sasl_vars[] = {"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
                                            "KAFKA_SASL_PASSWORD"};
    static const char *const ssl_vars[] = {
        "KAFKA_SSL_CA_LOCATION", "KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION"};
    /* A credential for a protocol that does not use it is a mistake (most
     * often a forgotten KAFKA_SECURITY_PROTOCOL): say so rather than connect
     * without it. */
    for (size_t i = 0; i < 3; i++) {
        if (!sasl && sec_lookup(sasl_vars[i]) != NULL) {
            ll_failf(err, errlen, "%s is set but KAFKA_SECURITY_PROTOCOL=%s does not use SASL",
                     sasl_vars[i], out->protocol);
            return ll_hintf(err, errlen,
                            "Set KAFKA_SECURITY_PROTOCOL to sasl_plaintext or sasl_ssl, or unset "
                            "%s.",
                            sasl_vars[i]);
        }
        if (!ssl && sec_lookup(ssl_vars[i]) != NULL) {
            ll_failf(err, errlen, "%s is set but KAFKA_SECURITY_PROTOCOL=%s does not use TLS",
                     ssl_vars[i], out->protocol);
            return ll_hintf(err, errlen,
                            "Set KAFKA_SECURITY_PROTOCOL to ssl or sasl_ssl, or unset %s.",
                            ssl_vars[i]);
        }
    }
    if (sasl) {
        const char *mech = sec_lookup("KAFKA_SASL_MECHANISM");
        if (mech == NULL)
            return ll_failf(err, errlen,
                            "KAFKA_SASL_MECHANISM is required with KAFKA_SECURITY_PROTOCOL=%s "
                            "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                            out->protocol);
        if (sec_fold(mech, true, out->mechanism, sizeof out->mechanism) != 0 ||
            (strcmp(out->mechanism, "PLAIN") != 0 && strcmp(out->mechanism, "SCRAM-SHA-256") != 0 &&
             strcmp(out->mechanism, "SCRAM-SHA-512") != 0)) {
            return ll_failf(err, errlen,
                            "KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
        }
        out->username = sec_lookup("KAFKA_SASL_USERNAME");
        out->password = sec_lookup("KAFKA_SASL_PASSWORD");
        if (out->username == NULL)
            return ll_failf(err, errlen,
                            "KAFKA_SASL_USERNAME is required with KAFKA_SECURITY_PROTOCOL=%s",
                            out->protocol);
        if (out->password == NULL)
            return ll_failf(err, errlen,
                            "KAFKA_SASL_PASSWORD is required with KAFKA_SECURITY_PROTOCOL=%s",
                            out->protocol);
    }
    if (ssl) {
        out->ca_location = sec_lookup("KAFKA_SSL_CA_LOCATION");
        out->cert_location = sec_lookup("KAFKA_SSL_CERTIFICATE_LOCATION");
        out->key_location = sec_lookup("KAFKA_SSL_KEY_LOCATION");
        if ((out->cert_location == NULL) != (out->key_location == NULL))
            return ll_failf(err, errlen,
                            "%s is required with %s (a client certificate needs its key)",
                            out->cert_location == NULL ? "KAFKA_SSL_CERTIFICATE_LOCATION"
                                                       : "KAFKA_SSL_KEY_LOCATION",
                            out->cert_location == NULL ? "KAFKA_SSL_KEY_LOCATION"
                                                       : "KAFKA_SSL_CERTIFICATE_LOCATION");
        if ((out->ca_location != NULL &&
             sec_path("KAFKA_SSL_CA_LOCATION", out->ca_location, err, errlen) != 0) ||
            (out->cert_location != NULL &&
             sec_path("KAFKA_SSL_CERTIFICATE_LOCATION", out->cert_location, err, errlen) != 0) ||
            (out->key_location != NULL &&
             sec_path("KAFKA_SSL_KEY_LOCATION", out->key_location, err, errlen) != 0))
            return -1;
    }
    return 0;
}

int kafka_security_apply(const kafka_security *s, rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    if (conf_set(conf, "security.protocol", s->protocol, err, errlen) != 0)
        return -1;
    if (s->mechanism[0] != '\0' &&
        (conf_set(conf, "sasl.mechanisms", s->mechanism, err, errlen) != 0 ||
         conf_set(conf, "sasl.username", s->username, err, errlen) != 0 ||
         conf_set(conf, "sasl.password", s->password, err, errlen) != 0))
        return -1;
    if ((s->ca_location != NULL &&
         conf_set(conf, "ssl.ca.location", s->ca_location, err, errlen) != 0) ||
        (s->cert_location != NULL &&
         conf_set(conf, "ssl.certificate.location", s->cert_location, err, errlen) != 0) ||
        (s->key_location != NULL &&
         conf_set(conf, "ssl.key.location", s->key_location, err, errlen) != 0))
        return -1;
    return 0;
}

const char *kafka_brokers_or_exit(void)
{
    const char *brokers = config_require("KAFKA_BROKERS");
    kafka_security s;
    char err[512];
    if (kafka_security_from_env(&s, err, sizeof err) != 0)
        config_die(err);
    return brokers;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *err, size_t errlen)
{
    kafka_security sec;
    if (kafka_security_from_env(&sec, err, errlen) != 0)
        return NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", brokers, err, errlen) != 0 ||
        kafka_security_apply(&sec, conf, err, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    return conf;
}

/* -------------------------------------------------------------- producer */

/* One waiter per produced message. Shared by the producing thread and the
 * delivery-report callback; whichever finishes last frees it, so a caller
 * that gave up waiting never leaves the callback a dangling pointer. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done;
    rd_kafka_resp_err_t err;
} delivery_waiter;

static void waiter_release(delivery_waiter *w)
{
    pthread_mutex_lock(&w->mu);
    int left = --w->refs;
    pthread_mutex_unlock(&w->mu);
    if (left == 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

struct kafka_producer {
    rd_kafka_t *rk;
    pthread_t poller;
    volatile int stopping;
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    delivery_waiter *w = m->_private;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->err = m->err;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    waiter_release(w);
}

/* Serves delivery reports so that many threads can wait at once. */
static void *producer_poll_thread(void *arg)
{
    kafka_producer *p = arg;
    while (!p->stopping)
        rd_kafka_poll(p->rk, 100);
    return NULL;
}

rd_kafka_conf_t *kafka_producer_conf(const char *brokers, int message_timeout_ms, char *err,
                                     size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, err, errlen);
    if (conf == NULL)
        return NULL;
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%d", message_timeout_ms > 0 ? message_timeout_ms : 30000);
    if (conf_set(conf, "enable.idempotence", "true", err, errlen) != 0 ||
        conf_set(conf, "acks", "all", err, errlen) != 0 ||
        conf_set(conf, "message.timeout.ms", timeout, err, errlen) != 0 ||
        conf_set(conf, "linger.ms", "5", err, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

kafka_producer *kafka_producer_new(const char *brokers, int message_timeout_ms, char *err,
                                   size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_producer_conf(brokers, message_timeout_ms, err, errlen);
    if (conf == NULL)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);

    kafka_producer *p = calloc(1, sizeof *p);
    if (p == NULL) {
        ll_failf(err, errlen, "could not create the Kafka producer: out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (kafka_producer_start(conf, &p->rk, &p->poller, producer_poll_thread, p, err, errlen) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

int kafka_producer_start(rd_kafka_conf_t *conf, rd_kafka_t **rk, pthread_t *poller,
                         void *(*poll)(void *), void *arg, char *err, size_t errlen)
{
    *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (*rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    int prc = pthread_create(poller, NULL, poll, arg);
    if (prc != 0) {
        ll_failf(err, errlen, "could not start the delivery-report thread: %s", strerror(prc));
        rd_kafka_destroy(*rk);
        *rk = NULL;
        return -1;
    }
    return 0;
}

rd_kafka_headers_t *kafka_headers_new(const kafka_header *headers, size_t n)
{
    if (n == 0)
        return NULL;
    rd_kafka_headers_t *h = rd_kafka_headers_new(n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_header_add(h, headers[i].name, -1, headers[i].value, (ssize_t)headers[i].len);
    return h;
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static delivery_waiter *waiter_new(void)
{
    delivery_waiter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->refs = 2; /* the producing call + the delivery report */
    return w;
}

/* Enqueues one message with w as its opaque. On failure nothing was enqueued,
 * no report will come, and the caller's reference is the only one left. */
static rd_kafka_resp_err_t produce_one(kafka_producer *p, const char *topic, const void *key,
                                       size_t keylen, const void *value, size_t valuelen,
                                       const kafka_header *headers, size_t nheaders,
                                       delivery_waiter *w)
{
    rd_kafka_headers_t *hdrs = kafka_headers_new(headers, nheaders);
    rd_kafka_resp_err_t perr = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
        RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Not enqueued: the headers are still ours. */
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        w->refs = 1;
    }
    return perr;
}

/* Waits for w's report until deadline, then drops the caller's reference.
 * Returns whether the report came; *derr gets its error. */
static bool waiter_wait(delivery_waiter *w, const struct timespec *deadline,
                        rd_kafka_resp_err_t *derr)
{
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->cv, &w->mu, deadline);
    bool done = w->done;
    *derr = w->err;
    pthread_mutex_unlock(&w->mu);
    waiter_release(w);
    return done;
}

kafka_status kafka_produce_wait(kafka_producer *p, const char *topic, const void *key,
                                size_t keylen, const void *value, size_t valuelen,
                                const kafka_header *headers, size_t nheaders, int wait_ms,
                                char *err, size_t errlen)
{
    delivery_waiter *w = waiter_new();
    if (w == NULL) {
        ll_failf(err, errlen, "could not produce to %s: out of memory", topic);
        return KAFKA_FAILED;
    }
    rd_kafka_resp_err_t perr =
        produce_one(p, topic, key, keylen, value, valuelen, headers, nheaders, w);
    if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ll_failf(err, errlen, "could not produce to %s: %s", topic, rd_kafka_err2str(perr));
        waiter_release(w);
        return KAFKA_FAILED;
    }

    struct timespec deadline;
    deadline_after(&deadline, wait_ms);
    rd_kafka_resp_err_t derr;
    bool done = waiter_wait(w, &deadline, &derr);
    if (!done) {
        ll_failf(err, errlen,
                 "could not deliver to %s: no delivery report from the broker within %d ms", topic,
                 wait_ms);
        return KAFKA_TIMEOUT;
    }
    if (derr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ll_failf(err, errlen, "could not deliver to %s: %s", topic, rd_kafka_err2str(derr));
        return KAFKA_FAILED;
    }
    return KAFKA_OK;
}

kafka_status kafka_produce_batch_wait(kafka_producer *p, const kafka_out_msg *msgs, size_t n,
                                      int wait_ms, kafka_status *results, char *err, size_t errlen)
{
    if (n == 0)
        return KAFKA_OK;
    delivery_waiter **ws = calloc(n, sizeof *ws);
    if (ws == NULL) {
        ll_failf(err, errlen, "could not produce a batch of %zu messages: out of memory", n);
        for (size_t i = 0; i < n; i++)
            results[i] = KAFKA_FAILED;
        return KAFKA_FAILED;
    }
    kafka_status first = KAFKA_OK;
    /* Enqueue everything first, so librdkafka sends the batch in as few
     * requests as it can; then collect every report against one deadline. */
    for (size_t i = 0; i < n; i++) {
        const kafka_out_msg *m = &msgs[i];
        results[i] = KAFKA_FAILED;
        ws[i] = waiter_new();
        if (ws[i] == NULL) {
            if (first == KAFKA_OK)
                ll_failf(err, errlen, "could not produce to %s: out of memory", m->topic);
            first = first == KAFKA_OK ? KAFKA_FAILED : first;
            continue;
        }
        rd_kafka_resp_err_t perr = produce_one(p, m->topic, m->key, m->keylen, m->value,
                                               m->valuelen, m->headers, m->nheaders, ws[i]);
        if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (first == KAFKA_OK)
                ll_failf(err, errlen, "could not produce to %s: %s", m->topic,
                         rd_kafka_err2str(perr));
            first = first == KAFKA_OK ? KAFKA_FAILED : first;
            waiter_release(ws[i]);
            ws[i] = NULL;
        }
    }
    struct timespec deadline;
    deadline_after(&deadline, wait_ms);
    for (size_t i = 0; i < n; i++) {
        if (ws[i] == NULL)
            continue;
        rd_kafka_resp_err_t derr;
        if (!waiter_wait(ws[i], &deadline, &derr)) {
            results[i] = KAFKA_TIMEOUT;
            if (first == KAFKA_OK)
                ll_failf(err, errlen,
                         "could not deliver to %s: no delivery report from the broker within %d ms",
                         msgs[i].topic, wait_ms);
        } else if (derr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            results[i] = KAFKA_FAILED;
            if (first == KAFKA_OK)
                ll_failf(err, errlen, "could not deliver to %s: %s", msgs[i].topic,
                         rd_kafka_err2str(derr));
        } else {
            results[i] = KAFKA_OK;
        }
        if (first == KAFKA_OK)
            first = results[i];
    }
    free(ws);
    return first;
}

bool kafka_client_reachable(rd_kafka_t *rk, int wait_ms)
{
    if (kafka_fatal(NULL, 0))
        return false; /* it accepts no more work: not ready, whatever the brokers say */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, wait_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool ok = md->broker_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return ok;
}

bool kafka_producer_reachable(kafka_producer *p, int wait_ms)
{
    return kafka_client_reachable(p->rk, wait_ms);
}

void kafka_client_drain(rd_kafka_t *rk, int flush_ms)
{
    rd_kafka_flush(rk, flush_ms);
    /* Whatever is still queued fails now, so every waiter gets its report. */
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk, 1000);
}

void kafka_producer_destroy(kafka_producer *p, int flush_ms)
{
    if (p == NULL)
        return;
    kafka_client_drain(p->rk, flush_ms);
    p->stopping = 1;
    pthread_join(p->poller, NULL);
    rd_kafka_poll(p->rk, 0);
    rd_kafka_destroy(p->rk);
    free(p);
}

/* -------------------------------------------------------------- consumer */

struct kafka_consumer {
    rd_kafka_t *rk;
    kafka_consumer_config cfg;
    kafka_producer *dlq;
    char *brokers;
    char *group_id;
    char *dlq_topic;
    int backoff_ms;
    kafka_consumer_stats stats;
    int64_t lag_next_ms; /* monotonic ms of the next lag refresh */
};

int kafka_consumer_metrics_declare(metrics_registry *m)
{
    if (m == NULL)
        return -1;
    /* metrics_declare refuses duplicates: a process with two consumers (or a
     * caller that declared them first) keeps the existing families. */
    metrics_declare(m, "billing_messages_total", METRICS_COUNTER,
                    "Messages handled, by source topic and outcome (ok, permanent = "
                    "dead-lettered, transient = will be retried).");
    metrics_declare(m, "billing_message_processing_seconds", METRICS_HISTOGRAM,
                    "Time the handler took for one message, by source topic.");
    metrics_declare(m, "billing_dlq_messages_total", METRICS_COUNTER,
                    "Messages written to the dlq topic, by source topic.");
    metrics_declare(m, "billing_consumer_lag", METRICS_GAUGE,
                    "Messages behind the high watermark, per assigned partition.");
    return 0;
}

static void consumer_count(kafka_consumer *c, const char *topic, const char *outcome,
                           int64_t handler_us)
{
    metrics_registry *m = c->cfg.metrics;
    if (m == NULL)
        return;
    metrics_counter_add(m, "billing_messages_total", 1, "topic", topic, "outcome", outcome, NULL);
    metrics_histogram_observe_us(m, "billing_message_processing_seconds",
                                 handler_us > 0 ? (uint64_t)handler_us : 0, "topic", topic, NULL);
}

static void consumer_lag_set(kafka_consumer *c, const char *topic, int32_t partition, int64_t lag)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%" PRId32, partition);
    metrics_gauge_set(c->cfg.metrics, "billing_consumer_lag", lag < 0 ? 0 : lag, "topic", topic,
                      "partition", ps, NULL);
}

/* Refreshes billing_consumer_lag for every assigned partition, at most every
 * KAFKA_LAG_REFRESH_MS. Called from the polling thread only. */
static void consumer_refresh_lag(kafka_consumer *c)
{
    if (c->cfg.metrics == NULL)
        return;
    int64_t now_ms = (int64_t)clock_mono_us() / 1000;
    if (now_ms < c->lag_next_ms)
        return;
    c->lag_next_ms = now_ms + KAFKA_LAG_REFRESH_MS;

    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return;
    rd_kafka_position(c->rk, parts);
    /* Partitions with no message consumed by this instance have no
     * position: their committed offset is where consumption resumes. */
    rd_kafka_topic_partition_list_t *unknown = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(unknown, parts->elems[i].topic,
                                              parts->elems[i].partition);
    if (unknown->cnt > 0 && rd_kafka_committed(c->rk, unknown, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < unknown->cnt; i++)
            unknown->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t low = RD_KAFKA_OFFSET_INVALID, high = RD_KAFKA_OFFSET_INVALID;
        if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &low, &high) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0)
            continue; /* nothing fetched yet: unknown, not zero */
        int64_t pos = p->offset;
        if (pos < 0) {
            rd_kafka_topic_partition_t *u =
                rd_kafka_topic_partition_list_find(unknown, p->topic, p->partition);
            pos = u != NULL ? u->offset : RD_KAFKA_OFFSET_INVALID;
        }
        if (pos < 0)
            /* No commit either: the group starts at the earliest offset. */
            pos = low >= 0 ? low : high == 0 ? 0 : RD_KAFKA_OFFSET_INVALID;
        if (pos >= 0)
            consumer_lag_set(c, p->topic, p->partition, high - pos);
    }
    rd_kafka_topic_partition_list_destroy(unknown);
    rd_kafka_topic_partition_list_destroy(parts);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_consumer *c = opaque;
    char count[16];
    snprintf(count, sizeof count, "%d", parts->cnt);
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_msg(LL_LOG_INFO, "partitions assigned", "partitions", count, NULL);
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
        return;
    }
    log_msg(LL_LOG_INFO, "partitions revoked", "partitions", count, "reason", rd_kafka_err2str(err),
            NULL);
    /* Their lag is now the new owner's to report; summing over instances
     * must not count it twice. */
    if (c != NULL && c->cfg.metrics != NULL)
        for (int i = 0; i < parts->cnt; i++)
            consumer_lag_set(c, parts->elems[i].topic, parts->elems[i].partition, 0);
    /* Hand over with everything processed so far committed, so the next
     * owner starts right after it. */
    rd_kafka_commit(rk, NULL, 0);
    if (cooperative)
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    else
        rd_kafka_assign(rk, NULL);
}

/* What a consumer holds, its client closed or never started; the DLQ
 * producer gets dlq_flush_ms to deliver what it holds. */
static void kafka_consumer_free(kafka_consumer *c, int dlq_flush_ms)
{
    if (c->rk != NULL)
        rd_kafka_destroy(c->rk);
    kafka_producer_destroy(c->dlq, dlq_flush_ms);
    free(c->brokers);
    free(c->group_id);
    free(c->dlq_topic);
    free(c);
}

kafka_consumer *kafka_consumer_new(const kafka_consumer_config *cfg, char *err, size_t errlen)
{
    kafka_consumer *c = calloc(1, sizeof *c);
    if (c == NULL) {
        ll_failf(err, errlen, "could not create the Kafka consumer: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->brokers = strdup(cfg->brokers);
    c->group_id = strdup(cfg->group_id);
    c->dlq_topic = strdup(cfg->dlq_topic);
    c->cfg.brokers = c->brokers;
    c->cfg.group_id = c->group_id;
    c->cfg.dlq_topic = c->dlq_topic;
    if (c->cfg.max_backoff_ms <= 0)
        c->cfg.max_backoff_ms = 30000;

    rd_kafka_conf_t *conf = kafka_conf_new(cfg->brokers, err, errlen);
    if (conf == NULL)
        goto fail;
    if (conf_set(conf, "group.id", cfg->group_id, err, errlen) != 0 ||
        conf_set(conf, "auto.offset.reset", "earliest", err, errlen) != 0 ||
        /* A killed worker's partitions move to a live one after this long
         * (librdkafka's default is 45 s; heartbeats go every 3 s). */
        conf_set(conf, "session.timeout.ms", "10000", err, errlen) != 0 ||
        conf_set(conf, "enable.auto.offset.store", "false", err, errlen) != 0 ||
        conf_set(conf, "enable.auto.commit", "true", err, errlen) != 0 ||
        conf_set(conf, "auto.commit.interval.ms", "1000", err, errlen) != 0 ||
        conf_set(conf, "enable.partition.eof", "false", err, errlen) != 0 ||
        /* How long a fetch that found nothing waits at the broker. Apache
         * Kafka answers as soon as a message arrives, so this only sets
         * how often an idle consumer asks again (10 a second per broker).
         * librdkafka's mock cluster (the dev broker) always waits the
         * whole time, so its default of 500 ms was up to half a second on
         * every hop of the local stack and the tests (docs/BENCHMARKS.md,
         * "End to end"). */
        conf_set(conf, "fetch.wait.max.ms", "100", err, errlen) != 0 ||
        /* Ask the broker to create a subscribed topic that does not exist
         * yet; a broker with auto.create.topics.enable=false (production:
         * topics come from deploy/kafka/create-topics.sh) refuses. */
        conf_set(conf, "allow.auto.create.topics", "true", err, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    if (c->cfg.metrics != NULL)
        kafka_consumer_metrics_declare(c->cfg.metrics);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);

    c->dlq = kafka_producer_new(cfg->brokers, 30000, err, errlen);
    if (c->dlq == NULL)
        goto fail;

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)cfg->ntopics);
    for (size_t i = 0; i < cfg->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, cfg->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (serr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ll_failf(err, errlen, "could not subscribe to the topics: %s", rd_kafka_err2str(serr));
        goto fail;
    }
    return c;

fail:
    kafka_consumer_free(c, 0);
    return NULL;
}

bool kafka_msg_header(const kafka_msg *m, const char *name, const void **value, size_t *len)
{
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers((const rd_kafka_message_t *)m->raw, &h) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    return rd_kafka_header_get_last(h, name, value, len) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void store_next_offset(kafka_consumer *c, const rd_kafka_message_t *rm)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(rm->rkt), rm->partition)->offset =
        rm->offset + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        /* The partition was revoked meanwhile: its next owner replays the
         * message, and the idempotency key absorbs it. */
        log_msg(LL_LOG_WARN, "offset not stored", "error", rd_kafka_err2str(e), NULL);
}

/* Puts the partition back at the failed message so the next poll returns it
 * again; other partitions keep flowing meanwhile. */
static void rewind_to(kafka_consumer *c, const rd_kafka_message_t *rm)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(rm->rkt), rm->partition)->offset =
        rm->offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
    if (e != NULL) {
        log_msg(LL_LOG_WARN, "seek failed", "error", rd_kafka_error_string(e), NULL);
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static kafka_status send_to_dlq(kafka_consumer *c, const rd_kafka_message_t *rm, const char *reason,
                                char *err, size_t errlen)
{
    char partition[16], offset[32];
    snprintf(partition, sizeof partition, "%" PRId32, rm->partition);
    snprintf(offset, sizeof offset, "%" PRId64, rm->offset);
    const char *topic = rd_kafka_topic_name(rm->rkt);
    kafka_header h[5] = {
        {"error", reason, strlen(reason)},
        {"source-topic", topic, strlen(topic)},
        {"source-partition", partition, strlen(partition)},
        {"source-offset", offset, strlen(offset)},
        {"consumer", c->group_id, strlen(c->group_id)},
    };
    return kafka_produce_wait(c->dlq, c->dlq_topic, rm->key, rm->key_len, rm->payload, rm->len, h,
                              5, 30000, err, errlen);
}

static void log_message(log_level lvl, const char *what, const rd_kafka_message_t *rm,
                        const char *detail)
{
    char partition[16], offset[32];
    snprintf(partition, sizeof partition, "%" PRId32, rm->partition);
    snprintf(offset, sizeof offset, "%" PRId64, rm->offset);
    log_msg(lvl, what, "topic", rd_kafka_topic_name(rm->rkt), "partition", partition, "offset",
            offset, "error", detail, NULL);
}

static void handle_message(kafka_consumer *c, const rd_kafka_message_t *rm)
{
    kafka_msg m = {
        .topic = rd_kafka_topic_name(rm->rkt),
        .partition = rm->partition,
        .offset = rm->offset,
        .key = rm->key,
        .key_len = rm->key_len,
        .value = rm->payload,
        .value_len = rm->len,
        .raw = rm,
    };
    char herr[512] = "";
    int64_t t0 = (int64_t)clock_mono_us();
    kafka_result res = c->cfg.handler(c->cfg.ctx, &m, herr, sizeof herr);
    int64_t handler_us = (int64_t)clock_mono_us() - t0;

    if (res == KAFKA_MSG_PERMANENT) {
        char derr[256];
        if (send_to_dlq(c, rm, herr[0] ? herr : "permanent failure", derr, sizeof derr) !=
            KAFKA_OK) {
            /* Never drop a message: if the dlq is unreachable, retry it all. */
            c->stats.dlq_failed++;
            log_message(LL_LOG_ERROR, "dead-lettering failed, will retry", rm, derr);
            res = KAFKA_MSG_TRANSIENT;
        } else {
            c->stats.permanent++;
            log_message(LL_LOG_WARN, "message dead-lettered", rm, herr);
            consumer_count(c, m.topic, "permanent", handler_us);
            if (c->cfg.metrics != NULL)
                metrics_counter_add(c->cfg.metrics, "billing_dlq_messages_total", 1, "topic",
                                    m.topic, NULL);
        }
    }
    if (res == KAFKA_MSG_TRANSIENT) {
        c->stats.transient++;
        consumer_count(c, m.topic, "transient", handler_us);
        c->backoff_ms = c->backoff_ms == 0 ? 200 : c->backoff_ms * 2;
        if (c->backoff_ms > c->cfg.max_backoff_ms)
            c->backoff_ms = c->cfg.max_backoff_ms;
        log_message(LL_LOG_WARN, "transient failure, retrying", rm, herr);
        rewind_to(c, rm);
        shutdown_sleep_ms(c->backoff_ms);
        return;
    }
    if (res == KAFKA_MSG_OK) {
        c->stats.ok++;
        consumer_count(c, m.topic, "ok", handler_us);
    }
    c->backoff_ms = 0;
    store_next_offset(c, rm);
}

int kafka_consumer_poll_once(kafka_consumer *c, int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_message_t *rm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    consumer_refresh_lag(c);
    if (rm == NULL)
        return 0;
    if (rm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        int rc = 0;
        if (rm->err == RD_KAFKA_RESP_ERR__FATAL) {
            char why[256];
            rd_kafka_fatal_error(c->rk, why, sizeof why);
            rc = ll_failf(err, errlen, "cannot consume any more: fatal consumer error: %s", why);

        } else {
            log_msg(LL_LOG_WARN, "consumer error", "error", rd_kafka_message_errstr(rm), NULL);
        }
        rd_kafka_message_destroy(rm);
        return rc;
    }
    handle_message(c, rm);
    rd_kafka_message_destroy(rm);
    return 1;
}

int kafka_consumer_run(kafka_consumer *c)
{
    char err[512];
    while (!shutdown_requested()) {
        if (kafka_consumer_poll_once(c, 500, err, sizeof err) < 0) {
            log_msg(LL_LOG_ERROR, "consumer stopped", "error", err, NULL);
            return -1;
        }
    }
    return 0;
}

int kafka_consumer_commit(kafka_consumer *c)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 0);
    /* _NO_OFFSET: nothing new to commit, which is fine. */
    return (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET) ? 0 : -1;
}

void kafka_consumer_close(kafka_consumer *c)
{
    if (c == NULL)
        return;
    kafka_consumer_commit(c);
    rd_kafka_consumer_close(c->rk);
    kafka_consumer_free(c, 5000);
}

kafka_consumer_stats kafka_consumer_get_stats(const kafka_consumer *c)
{
    return c->stats;
}
