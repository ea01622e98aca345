/* main.c: billing-ingester: configuration, producer, HTTP server, wait for
 * SIGTERM/SIGINT, then stop accepting, finish in-flight requests, flush and
 * exit 0. Everything request-related lives in http.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingester.h"
#include "ledgerline/config.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"

int main(void)
{
    if (log_init("billing-ingester") != 0)
        config_die("LOG_LEVEL must be one of debug, info, warn, error");

    ingester ing = {0};
    char err[512];
    /* The shape first (exit 2 naming the variable, never its value). */
    const char *secrets = config_webhook_secrets("STRIPE_WEBHOOK_SECRET");
    if (signature_secrets_parse(secrets, &ing.secrets, err, sizeof err) != 0)
        config_die(err);
    ing.tolerance_s = config_int("STRIPE_WEBHOOK_TOLERANCE", 300, 1, 86400);
    config_hostport("INGESTER_LISTEN", "0.0.0.0:8080", ing.host, sizeof ing.host, &ing.port);
    ing.max_body = (size_t)config_int("INGESTER_MAX_BODY", 1048576, 1024, 64 * 1048576);
    ing.publish_timeout_ms = (int)config_int("INGESTER_PUBLISH_TIMEOUT_MS", 5000, 100, 60000);
    /* Half the CPUs by default: librdkafka's broker threads and the
     * delivery-report thread need the rest (docs/INGESTER.md, Benchmark). */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ing.threads = (unsigned)config_int("INGESTER_THREADS", cpus >= 4 ? cpus / 2 : 1, 1, 1024);
    ing.linger_us = (int)config_int("INGESTER_LINGER_US", 500, 0, 1000000);
    ing.max_connections = (unsigned)config_int("INGESTER_MAX_CONNECTIONS", 1024, 1, 60000);
    ing.per_ip_limit = (unsigned)config_int("INGESTER_PER_IP_LIMIT", 512, 0, 60000);
    ing.connection_timeout_s = (unsigned)config_int("INGESTER_CONNECTION_TIMEOUT", 30, 1, 3600);
    ing.body_timeout_s = (unsigned)config_int("INGESTER_BODY_TIMEOUT", 10, 1, 3600);
    /* Every connection at the largest body would be max_body x connections;
     * by default at most 64 MiB (or 4 bodies, when those are larger) is
     * held at once, which is what the deployments' memory limits assume. */
    int64_t all = (int64_t)ing.max_body * (int64_t)ing.max_connections;
    int64_t dflt = (int64_t)64 * 1048576;
    if (dflt < 4 * (int64_t)ing.max_body)
        dflt = 4 * (int64_t)ing.max_body;
    if (dflt > all)
        dflt = all;
    ing.max_buffered = (size_t)config_int("INGESTER_MAX_BUFFERED", dflt, (int64_t)ing.max_body,
                                          (int64_t)64 * 1024 * 1048576);
    if (config_str("INGESTER_ADMIN_LISTEN", "")[0] != '\0') {
        config_hostport("INGESTER_ADMIN_LISTEN", NULL, ing.admin_host, sizeof ing.admin_host,
                        &ing.admin_port);
        if (ing.admin_port == ing.port && strcmp(ing.admin_host, ing.host) == 0)
            config_die("INGESTER_ADMIN_LISTEN must differ from INGESTER_LISTEN");
    }
    const char *brokers = kafka_brokers_or_exit();
    const char *prefix = topic_prefix();
    if (topic_name(prefix, TOPIC_STRIPE_PAYMENTS, ing.topic_payments, sizeof ing.topic_payments) !=
            0 ||
        topic_name(prefix, TOPIC_STRIPE_DISPUTES, ing.topic_disputes, sizeof ing.topic_disputes) !=
            0)
        config_die("KAFKA_TOPIC_PREFIX makes an illegal topic name");

    shutdown_install();
    ing.stats = stats_new();
    if (ing.stats == NULL) {
        log_msg(LL_LOG_ERROR, "cannot create metrics", NULL);
        return 1;
    }
    /* librdkafka gives up on a message after the publish timeout, so a 503'd
     * event rarely lands later (if it does, the event id makes the
     * redelivery a no-op downstream). */
    ing.pub = publisher_new(brokers, ing.publish_timeout_ms, ing.linger_us, err, sizeof err);
    if (ing.pub == NULL)
        config_die(err);

    ingester_http *h = ingester_http_start(&ing, err, sizeof err);
    if (h == NULL) {
        log_msg(LL_LOG_ERROR, "cannot start the HTTP server", "error", err, NULL);
        publisher_destroy(ing.pub, 0);
        stats_free(ing.stats);
        signature_secrets_free(&ing.secrets);
        return 1;
    }
    char port[16], nsecrets[16];
    snprintf(port, sizeof port, "%d", ing.port);
    snprintf(nsecrets, sizeof nsecrets, "%zu", ing.secrets.count);
    char admin[300];
    if (ing.admin_port > 0)
        snprintf(admin, sizeof admin, "%s:%d", ing.admin_host[0] ? ing.admin_host : "0.0.0.0",
                 ing.admin_port);
    else
        snprintf(admin, sizeof admin, "none (/metrics on the public listener)");
    log_msg(LL_LOG_INFO, "ingester listening", "host", ing.host[0] ? ing.host : "0.0.0.0", "port",
            port, "admin", admin, "signing_keys_configured", nsecrets, "topic_payments",
            ing.topic_payments, "topic_disputes", ing.topic_disputes, NULL);

    while (shutdown_sleep_ms(1000)) {
    }
    log_msg(LL_LOG_INFO, "ingester stopping: finishing in-flight requests", NULL);
    ingester_http_quiesce(h);
    /* Every suspended request is answered (the backstop bounds this) before
     * the server stops, so no delivery report resumes a freed connection. */
    ingester_http_drain(h, ing.publish_timeout_ms + 5000);
    ingester_http_stop(h);
    publisher_destroy(ing.pub, 10000);
    stats_free(ing.stats);
    signature_secrets_free(&ing.secrets);
    char why[512];
    if (kafka_fatal(why, sizeof why)) {
        /* Non-zero so the supervisor starts a fresh producer. */
        log_msg(LL_LOG_ERROR, "ingester stopped after a fatal Kafka error", "error", why, NULL);
        return 1;
    }
    log_msg(LL_LOG_INFO, "ingester stopped", NULL);
    return 0;
}
