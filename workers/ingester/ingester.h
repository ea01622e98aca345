/* ingester.h: the state billing-ingester's HTTP layer works on, filled by
 * main.c from the environment. */
#ifndef INGESTER_INGESTER_H
#define INGESTER_INGESTER_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/kafka.h"
#include "ledgerline/topics.h"
#include "publish.h"
#include "signature.h"
#include "stats.h"

typedef struct {
    char host[256];
    int port;
    char admin_host[256]; /* INGESTER_ADMIN_LISTEN; admin_port 0 when unset */
    int admin_port;
    size_t max_body;
    size_t max_buffered; /* bytes of request bodies held at once, all connections */
    unsigned body_timeout_s;
    int64_t tolerance_s;
    int publish_timeout_ms;
    int linger_us;
    unsigned threads;
    unsigned max_connections;
    unsigned per_ip_limit;
    unsigned connection_timeout_s;
    signature_secrets secrets;
    char topic_payments[TOPIC_NAME_MAX + 1];
    char topic_disputes[TOPIC_NAME_MAX + 1];
    publisher *pub;
    ingester_stats *stats;
} ingester;

typedef struct ingester_http ingester_http;

/* Starts listening; NULL with err on failure. */
ingester_http *ingester_http_start(ingester *ing, char *err, size_t errlen);
/* Stops accepting new connections (in-flight requests continue). */
void ingester_http_quiesce(ingester_http *h);
/* Waits up to timeout_ms for every in-flight publish to be answered. */
void ingester_http_drain(ingester_http *h, int timeout_ms);
/* Finishes in-flight requests, closes everything, frees. */
void ingester_http_stop(ingester_http *h);

#endif
