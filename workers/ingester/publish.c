/* publish.c: asynchronous acknowledged publishing (publish.h).
 *
 * Each in-flight request has a publish_wait with three references: the
 * request's, the delivery report's and the deadline list's; atomics count
 * them so whichever side finishes last frees it. The outcome is decided
 * once (an atomic exchange) by the first of: the delivery report, or the
 * deadline (the publish timeout) checked by the poll thread every 50 ms:
 * librdkafka's own message.timeout.ms is enforced by a coarse scan and can
 * report a second or more late. The decider resumes the connection.
 *
 * No mutex is shared between the request path and the report path: a
 * request pushes its wait onto a lock-free stack, and the poll thread, which
 * also serves the delivery reports, alone keeps the deadline list. (With a
 * mutex, the libmicrohttpd thread and the poll thread met on it for about
 * every other request, each time a futex call and often a context switch.)
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
#include "ledgerline/clock.h"
#include "ledgerline/failf.h"

struct publish_wait {
    atomic_int refs;
    atomic_bool done;    /* the outcome is decided (once) */
    kafka_status status; /* written by the decider before the resume */
    rd_kafka_resp_err_t err;
    struct MHD_Connection *conn;
    uint64_t start_us, deadline_us, end_us;
    publish_wait *pushed;      /* the incoming stack's link */
    publish_wait *prev, *next; /* the poll thread's deadline list */
    bool listed;               /* on the deadline list (poll thread only) */
};

struct publisher {
    rd_kafka_t *rk;
    pthread_t poller;
    atomic_int stopping;
    /* Requests push their wait here without a lock; only the poll thread
     * takes them off, into the deadline list it alone touches. The
     * delivery reports are served on the same thread, so the request path
     * and the report path never share a mutex. */
    _Atomic(publish_wait *) incoming;
    publish_wait *head, *tail; /* oldest first: the deadlines' order */
    atomic_size_t pending;
    int timeout_ms;
};

void publish_wait_release(publish_wait *w)
{
    if (w != NULL && atomic_fetch_sub(&w->refs, 1) == 1)
        free(w);
}

/* Decides the outcome unless it is decided already, and resumes the
 * connection. Any thread; the atomic exchange makes the first one win. */
static void publish_decide(publisher *p, publish_wait *w, kafka_status st, rd_kafka_resp_err_t err)
{
    if (atomic_exchange(&w->done, true))
        return;
    w->status = st;
    w->err = err;
    w->end_us = clock_mono_us();
    atomic_fetch_sub(&p->pending, 1);
    /* libmicrohttpd's resume takes its own lock, which orders the fields
     * above before the resumed handler reads them. */
    MHD_resume_connection(w->conn);
}

/* Poll thread only. */
static void publish_unlist(publisher *p, publish_wait *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        p->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        p->tail = w->prev;
    w->prev = w->next = NULL;
    w->listed = false;
    publish_wait_release(w); /* the list's reference */
}

/* Poll thread only: moves the pushed waits onto the deadline list, oldest
 * first; one already decided (its report came first) is dropped. */
static void publish_take_incoming(publisher *p)
{
    publish_wait *w = atomic_exchange(&p->incoming, NULL), *rev = NULL;
    while (w != NULL) { /* the stack is newest first */
        publish_wait *n = w->pushed;
        w->pushed = rev;
        rev = w;
        w = n;
    }
    for (w = rev; w != NULL;) {
        publish_wait *n = w->pushed;
        w->pushed = NULL;
        if (atomic_load(&w->done)) {
            publish_wait_release(w); /* the list's reference, never listed */
        } else {
            w->prev = p->tail;
            w->next = NULL;
            if (p->tail != NULL)
                p->tail->next = w;
            else
                p->head = w;
            p->tail = w;
            w->listed = true;
        }
        w = n;
    }
}

/* Served by the poll thread (rd_kafka_poll). */
static void publish_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    publisher *p = opaque;
    publish_wait *w = m->_private;
    if (w == NULL)
        return;
    publish_decide(p, w, m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? KAFKA_OK : KAFKA_FAILED, m->err);
    if (w->listed)
        publish_unlist(p, w);
    publish_wait_release(w); /* the report's reference */
}

/* Serves delivery reports and the backstop deadline. */
static void *publish_poll_thread(void *arg)
{
    publisher *p = arg;
    while (!atomic_load(&p->stopping)) {
        publish_take_incoming(p);
        rd_kafka_poll(p->rk, 50);
        publish_take_incoming(p);
        /* The timeout is the same for every request, so the list is in
         * deadline order, give or take the pool threads' interleaving. */
        uint64_t now = clock_mono_us();
        while (p->head != NULL && now >= p->head->deadline_us) {
            publish_wait *w = p->head;
            publish_decide(p, w, KAFKA_TIMEOUT, RD_KAFKA_RESP_ERR__TIMED_OUT);
            publish_unlist(p, w);
        }
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
        ll_failf(err, errlen, "could not create the publisher: out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    p->timeout_ms = timeout_ms;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, publish_dr_cb);
    if (kafka_producer_start(conf, &p->rk, &p->poller, publish_poll_thread, p, err, errlen) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

publish_wait *publish_start(publisher *p, struct MHD_Connection *conn, const char *topic,
                            const char *key, char **value, size_t len, const kafka_header *headers,
                            size_t nheaders)
{
    publish_wait *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    atomic_init(&w->refs, 3); /* the request + the delivery report + the list */
    atomic_init(&w->done, false);
    w->conn = conn;
    w->start_us = clock_mono_us();
    w->deadline_us = w->start_us + (uint64_t)p->timeout_ms * 1000u;
    atomic_fetch_add(&p->pending, 1);

    /* Suspend before producing so the report can never resume a connection
     * that is not suspended yet. */
    MHD_suspend_connection(conn);
    rd_kafka_headers_t *h = kafka_headers_new(headers, nheaders);
    /* A fatal error (here or in another client of the process) means this
     * producer sends nothing more: 503 at once rather than after a wait. */
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FATAL;
    if (!kafka_fatal(NULL, 0))
        e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(*value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Not enqueued (queue full, unknown topic...): no report will come
         * and the deadline list never sees it. */
        if (h != NULL)
            rd_kafka_headers_destroy(h);
        publish_decide(p, w, KAFKA_FAILED, e);
        atomic_fetch_sub(&w->refs, 2); /* the report's and the list's; the request's stays */
        return w;
    }
    *value = NULL; /* librdkafka frees it with the message */
    /* Lock-free push for the poll thread's deadline list. */
    publish_wait *top = atomic_load(&p->incoming);
    do {
        w->pushed = top;
    } while (!atomic_compare_exchange_weak(&p->incoming, &top, w));
    return w;
}

kafka_status publish_wait_result(publish_wait *w, uint64_t *elapsed_us, char *err, size_t errlen)
{
    /* Read after the resume, which happened under the publisher's mutex;
     * the fields are not written again once done is set. */
    if (elapsed_us != NULL)
        *elapsed_us = w->end_us - w->start_us;
    if (w->status == KAFKA_TIMEOUT)
        ll_failf(err, errlen, "could not publish: no delivery report from the broker in time");
    else if (w->status != KAFKA_OK)
        ll_failf(err, errlen, "could not publish: %s", rd_kafka_err2str(w->err));

    return w->status;
}

size_t publisher_pending(publisher *p)
{
    return atomic_load(&p->pending);
}

bool publisher_reachable(publisher *p, int wait_ms)
{
    return kafka_client_reachable(p->rk, wait_ms);
}

void publisher_destroy(publisher *p, int flush_ms)
{
    if (p == NULL)
        return;
    kafka_client_drain(p->rk, flush_ms);
    atomic_store(&p->stopping, 1);
    pthread_join(p->poller, NULL);
    rd_kafka_poll(p->rk, 0);
    /* Every request was answered before this call, so what is left on the
     * list (or still pushed) is decided: only the list's references remain. */
    publish_take_incoming(p);
    while (p->head != NULL)
        publish_unlist(p, p->head);
    rd_kafka_destroy(p->rk);
    free(p);
}
