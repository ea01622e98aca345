/* publish.c: asynchronous acknowledged publishing (publish.h).
 *
 * Each in-flight request has a publish_wait shared by the request (one
 * reference) and the delivery report (one reference); atomics count them so
 * whichever side finishes last frees it. The outcome is decided once, under
 * the publisher's mutex, by the first of: the delivery report, or the
 * deadline (the publish timeout) checked by the poll thread every 50 ms:
 * librdkafka's own message.timeout.ms is enforced by a coarse scan and can
 * report a second or more late. The decider resumes the connection.
 */
#include "publish.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "ledgerline/log.h"

struct publish_wait {
    atomic_int refs;
    bool done;                 /* under publisher.mu */
    kafka_status status;
    rd_kafka_resp_err_t err;
    struct MHD_Connection *conn;
    uint64_t start_us, deadline_us, end_us;
    publish_wait *prev, *next; /* pending list, under publisher.mu */
};

struct publisher {
    rd_kafka_t *rk;
    pthread_t poller;
    atomic_int stopping;
    pthread_mutex_t mu;
    publish_wait *head;
    size_t pending;
    int timeout_ms;
};

static uint64_t publish_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void publish_wait_release(publish_wait *w)
{
    if (w != NULL && atomic_fetch_sub(&w->refs, 1) == 1)
        free(w);
}

/* Decides the outcome once and resumes the connection; mu held. */
static void publish_finish_locked(publisher *p, publish_wait *w, kafka_status st,
                                  rd_kafka_resp_err_t err)
{
    if (w->done)
        return;
    w->done = true;
    w->status = st;
    w->err = err;
    w->end_us = publish_now_us();
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        p->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    p->pending--;
    MHD_resume_connection(w->conn);
}

static void publish_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    publisher *p = opaque;
    publish_wait *w = m->_private;
    if (w == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    publish_finish_locked(p, w, m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? KAFKA_OK : KAFKA_FAILED,
                          m->err);
    pthread_mutex_unlock(&p->mu);
    publish_wait_release(w);
}

/* Serves delivery reports and the backstop deadline. */
static void *publish_poll_thread(void *arg)
{
    publisher *p = arg;
    while (!atomic_load(&p->stopping)) {
        rd_kafka_poll(p->rk, 50);
        uint64_t now = publish_now_us();
        pthread_mutex_lock(&p->mu);
        for (publish_wait *w = p->head, *next; w != NULL; w = next) {
            next = w->next;
            if (now >= w->deadline_us)
                publish_finish_locked(p, w, KAFKA_TIMEOUT, RD_KAFKA_RESP_ERR__TIMED_OUT);
        }
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

publisher *publisher_new(const char *brokers, int timeout_ms, int linger_us, char *err,
                         size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_producer_conf(brokers, timeout_ms, err, errlen);
    if (conf == NULL)
        return NULL;
    /* Every request waits for its own acknowledgement, so the linger is
     * paid in latency by every request; a short one still gathers the
     * events of concurrent requests into one ProduceRequest (librdkafka
     * takes fractions of a millisecond). Allow a deep queue. */
    char linger[32];
    snprintf(linger, sizeof linger, "%d.%03d", linger_us / 1000, linger_us % 1000);
    if (rd_kafka_conf_set(conf, "linger.ms", linger, err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "100000", err, errlen) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    publisher *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    p->timeout_ms = timeout_ms;
    pthread_mutex_init(&p->mu, NULL);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, publish_dr_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (p->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    if (pthread_create(&p->poller, NULL, publish_poll_thread, p) != 0) {
        snprintf(err, errlen, "cannot start the delivery-report thread");
        rd_kafka_destroy(p->rk);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

publish_wait *publish_start(publisher *p, struct MHD_Connection *conn, const char *topic,
                            const char *key, char **value, size_t len,
                            const kafka_header *headers, size_t nheaders)
{
    publish_wait *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    atomic_init(&w->refs, 2); /* the request + the delivery report */
    w->conn = conn;
    w->start_us = publish_now_us();
    w->deadline_us = w->start_us + (uint64_t)p->timeout_ms * 1000u;

    /* Suspend before producing so the report can never resume a connection
     * that is not suspended yet. */
    MHD_suspend_connection(conn);
    pthread_mutex_lock(&p->mu);
    w->next = p->head;
    if (p->head != NULL)
        p->head->prev = w;
    p->head = w;
    p->pending++;
    pthread_mutex_unlock(&p->mu);

    rd_kafka_headers_t *h = rd_kafka_headers_new(nheaders);
    for (size_t i = 0; i < nheaders; i++)
        rd_kafka_header_add(h, headers[i].name, -1, headers[i].value, (ssize_t)headers[i].len);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(*value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        *value = NULL; /* librdkafka frees it with the message */
    } else {
        /* Not enqueued (queue full, unknown topic...): no report will come. */
        rd_kafka_headers_destroy(h);
        pthread_mutex_lock(&p->mu);
        publish_finish_locked(p, w, KAFKA_FAILED, e);
        pthread_mutex_unlock(&p->mu);
        publish_wait_release(w); /* the report's reference */
    }
    return w;
}

kafka_status publish_wait_result(publish_wait *w, uint64_t *elapsed_us, char *err,
                                 size_t errlen)
{
    /* Read after the resume, which happened under the publisher's mutex;
     * the fields are not written again once done is set. */
    if (elapsed_us != NULL)
        *elapsed_us = w->end_us - w->start_us;
    if (w->status == KAFKA_TIMEOUT)
        snprintf(err, errlen, "no delivery report from the broker in time");
    else if (w->status != KAFKA_OK)
        snprintf(err, errlen, "delivery failed: %s", rd_kafka_err2str(w->err));
    return w->status;
}

size_t publisher_pending(publisher *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->pending;
    pthread_mutex_unlock(&p->mu);
    return n;
}

bool publisher_reachable(publisher *p, int wait_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(p->rk, 0, NULL, &md, wait_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool ok = md->broker_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return ok;
}

void publisher_destroy(publisher *p, int flush_ms)
{
    if (p == NULL)
        return;
    rd_kafka_flush(p->rk, flush_ms);
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(p->rk, 1000);
    atomic_store(&p->stopping, 1);
    pthread_join(p->poller, NULL);
    rd_kafka_poll(p->rk, 0);
    rd_kafka_destroy(p->rk);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
