/* kafka.h: the producer and the consumer-group loop every process shares.
 *
 * Producer: acks=all, idempotent; kafka_produce_wait() returns only once the
 * broker acknowledged the message (or the bounded wait ran out), which is what
 * lets the ingester promise "never a 2xx for an event not in Kafka".
 *
 * Consumer: one message at a time is handed to a handler. The handler commits
 * its database transaction (recording the idempotency key) and then says how
 * it went:
 *   KAFKA_MSG_OK        -> the offset is stored and committed after it;
 *   KAFKA_MSG_PERMANENT -> the message goes to the dlq topic with the
 *                          contract's headers, then its offset is stored;
 *   KAFKA_MSG_TRANSIENT -> nothing is stored; the partition is rewound to the
 *                          message and it is retried after a backoff.
 * Offsets are stored only after the handler returned (enable.auto.offset.store
 * is off), so a crash replays at most the messages whose transaction may not
 * have committed; the handler's idempotency key makes that replay harmless.
 */
#ifndef LEDGERLINE_KAFKA_H
#define LEDGERLINE_KAFKA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "ledgerline/metrics.h"

typedef struct {
    const char *name;
    const void *value;
    size_t len;
} kafka_header;

typedef enum {
    KAFKA_OK = 0,
    KAFKA_TIMEOUT, /* no delivery report in time: the message may or may not land */
    KAFKA_FAILED   /* the broker refused it, the queue is full, or it could not be sent */
} kafka_status;

/* The contract's client credentials (CONTRACT.md "Kafka clusters and
 * credentials"). Strings point into the environment. */
typedef struct {
    char protocol[16];         /* plaintext (default), ssl, sasl_plaintext, sasl_ssl */
    char mechanism[16];        /* PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; "" without SASL */
    const char *username;      /* KAFKA_SASL_USERNAME (SASL only) */
    const char *password;      /* KAFKA_SASL_PASSWORD (SASL only; secret) */
    const char *ca_location;   /* KAFKA_SSL_CA_LOCATION (TLS only, optional) */
    const char *cert_location; /* KAFKA_SSL_CERTIFICATE_LOCATION (TLS only, with the key) */
    const char *key_location;  /* KAFKA_SSL_KEY_LOCATION (TLS only, with the certificate) */
} kafka_security;

/* Reads KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
 * KAFKA_SASL_PASSWORD, KAFKA_SSL_CA_LOCATION, KAFKA_SSL_CERTIFICATE_LOCATION
 * and KAFKA_SSL_KEY_LOCATION. 0, or -1 with a message naming the variable
 * (never echoing a secret): an unknown protocol or mechanism, SASL without a
 * mechanism, user name or password, a certificate without its key (or the
 * reverse), a file that cannot be read, or a SASL/TLS setting given with a
 * protocol that does not use it. */
int kafka_security_from_env(kafka_security *out, char *err, size_t errlen);
/* Sets security.protocol, sasl.* and ssl.* on conf from s. */
int kafka_security_apply(const kafka_security *s, rd_kafka_conf_t *conf, char *err, size_t errlen);
/* KAFKA_BROKERS (required) with the credentials above validated: exits 2
 * with a line naming the variable when one is wrong. Every process calls it
 * at start. */
const char *kafka_brokers_or_exit(void);
/* A new librdkafka configuration for brokers with the credentials from the
 * environment, logs and errors routed to the JSON log and fatal errors
 * recorded (kafka_fatal). Every producer, consumer and admin client of the
 * system starts from it. NULL with err on a bad setting. */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *err, size_t errlen);

/* true once any Kafka client of this process reported a fatal error (an
 * idempotent producer fenced or refused, ...), with the reason in why. Such a
 * client never accepts more work: the process answers 503 on /readyz (and
 * the ingester on its webhooks), stops (shutdown_request() is called when the
 * error is recorded) and exits non-zero so its supervisor restarts it. */
bool kafka_fatal(char *why, size_t whylen);
/* Records a fatal error by hand (the first one is kept); for tests. */
void kafka_fatal_record(const char *reason);

typedef struct kafka_producer kafka_producer;

/* The producer settings every process shares (acks=all, idempotence,
 * message.timeout.ms, linger, logs and errors routed to the JSON log), for a
 * caller that needs its own delivery-report callback (the ingester resumes
 * suspended HTTP connections from it). NULL with err on a bad setting. */
rd_kafka_conf_t *kafka_producer_conf(const char *brokers, int message_timeout_ms, char *err,
                                     size_t errlen);

/* The producer core both producers share (this file's kafka_producer and
 * the ingester's publisher, which owns its own delivery-report thread):
 * message headers in librdkafka's form (NULL for none; owned by the
 * message once produced); whether the client can publish now (no fatal
 * error, and a broker answered a metadata request within wait_ms); and
 * the stop: deliver what is queued for up to flush_ms, then fail whatever
 * is left, so that every message gets its delivery report. */
rd_kafka_headers_t *kafka_headers_new(const kafka_header *headers, size_t n);
/* Creates the producer of conf (taken either way) into *rk and then starts
 * its delivery-report thread, poll(arg), into *poller (the thread may read
 * *rk at once). 0, or -1 with err and *rk NULL. */
int kafka_producer_start(rd_kafka_conf_t *conf, rd_kafka_t **rk, pthread_t *poller,
                         void *(*poll)(void *), void *arg, char *err, size_t errlen);
bool kafka_client_reachable(rd_kafka_t *rk, int wait_ms);
void kafka_client_drain(rd_kafka_t *rk, int flush_ms);

/* Creates a producer for brokers; message_timeout_ms bounds how long
 * librdkafka keeps trying one message. NULL with err on bad settings. */
kafka_producer *kafka_producer_new(const char *brokers, int message_timeout_ms, char *err,
                                   size_t errlen);
/* Produces one message and waits up to wait_ms for its delivery report. */
kafka_status kafka_produce_wait(kafka_producer *p, const char *topic, const void *key,
                                size_t keylen, const void *value, size_t valuelen,
                                const kafka_header *headers, size_t nheaders, int wait_ms,
                                char *err, size_t errlen);
/* One message of a batch (nothing is copied until the call). */
typedef struct {
    const char *topic;
    const void *key;
    size_t keylen;
    const void *value;
    size_t valuelen;
    const kafka_header *headers;
    size_t nheaders;
} kafka_out_msg;

/* Enqueues all n messages, then waits (up to wait_ms in all) for every
 * delivery report. results[i] (n entries, filled by the call) says how
 * message i went, as kafka_produce_wait would: KAFKA_OK only for messages the
 * broker acknowledged. Returns KAFKA_OK when all were, else the first
 * non-OK result, with err describing it. Per partition and key, messages
 * keep their order in msgs. */
kafka_status kafka_produce_batch_wait(kafka_producer *p, const kafka_out_msg *msgs, size_t n,
                                      int wait_ms, kafka_status *results, char *err, size_t errlen);
/* true when at least one broker answered a metadata request within wait_ms. */
bool kafka_producer_reachable(kafka_producer *p, int wait_ms);
/* Flushes for at most flush_ms, then frees. */
void kafka_producer_destroy(kafka_producer *p, int flush_ms);

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const void *raw; /* rd_kafka_message_t */
} kafka_msg;

/* Looks up the last header called name; false when absent. */
bool kafka_msg_header(const kafka_msg *m, const char *name, const void **value, size_t *len);

typedef enum { KAFKA_MSG_OK = 0, KAFKA_MSG_PERMANENT, KAFKA_MSG_TRANSIENT } kafka_result;

typedef kafka_result (*kafka_handler_fn)(void *ctx, const kafka_msg *m, char *err, size_t errlen);

typedef struct {
    const char *brokers;
    const char *group_id;      /* also the "consumer" dlq header */
    const char *const *topics; /* full (prefixed) names */
    size_t ntopics;
    const char *dlq_topic; /* full name */
    kafka_handler_fn handler;
    void *ctx;
    int max_backoff_ms; /* transient retry cap; 0 = 30000 */
    /* Optional (NULL: none). When set, the loop records
     *   billing_messages_total{topic,outcome="ok|permanent|transient"}
     *   billing_message_processing_seconds{topic}        (histogram, handler time)
     *   billing_dlq_messages_total{topic}                 (source topic)
     *   billing_consumer_lag{topic,partition}             (gauge: high watermark -
     *       position, refreshed at most every KAFKA_LAG_REFRESH_MS; 0 once revoked)
     * The registry must outlive the consumer. */
    metrics_registry *metrics;
} kafka_consumer_config;

#define KAFKA_LAG_REFRESH_MS 5000

/* Declares the consumer families above in m (already declared ones are
 * kept); kafka_consumer_new calls it. 0, or -1 when m is unusable. */
int kafka_consumer_metrics_declare(metrics_registry *m);

typedef struct kafka_consumer kafka_consumer;

kafka_consumer *kafka_consumer_new(const kafka_consumer_config *cfg, char *err, size_t errlen);
/* Waits up to timeout_ms for one message and handles it. Returns 1 when a
 * message was handled (any outcome), 0 when none came, -1 on a fatal
 * consumer error (err filled). */
int kafka_consumer_poll_once(kafka_consumer *c, int timeout_ms, char *err, size_t errlen);
/* The standard loop: poll_once until shutdown_requested(); returns 0, or -1 on
 * a fatal error. */
int kafka_consumer_run(kafka_consumer *c);
/* Commits stored offsets now (synchronously). */
int kafka_consumer_commit(kafka_consumer *c);
/* Commits stored offsets, leaves the group, frees. */
void kafka_consumer_close(kafka_consumer *c);

/* Counters for metrics and tests. */
typedef struct {
    uint64_t ok, permanent, transient, dlq_failed;
} kafka_consumer_stats;
kafka_consumer_stats kafka_consumer_get_stats(const kafka_consumer *c);

#endif
