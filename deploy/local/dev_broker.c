/* dev_broker.c: billing-dev-broker, a Kafka broker for development, demos and
 * tests, served by librdkafka's in-memory mock cluster.
 *
 *   billing-dev-broker [--partitions N] [--brokers N] [--topic-prefix P]
 *                      [--bootstrap-file PATH]
 *
 * Creates the contract's topics (N partitions, default 12), prints the
 * bootstrap address as the first line of stdout, writes it to PATH when given
 * (atomically, so a waiting script never reads half a line), and serves until
 * SIGTERM or SIGINT. Nothing is persisted: a restart starts empty.
 *
 * Fault injection for tests: SIGUSR1 takes every broker down (connections are
 * closed and refused, as if the cluster were unreachable), SIGUSR2 brings them
 * back up.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/topics.h"

static volatile sig_atomic_t want_down, want_up;

static void on_usr(int sig)
{
    if (sig == SIGUSR1)
        want_down = 1;
    else
        want_up = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: billing-dev-broker [--partitions N] [--brokers N] "
                    "[--topic-prefix P] [--bootstrap-file PATH]\n");
    exit(2);
}

static int parse_count(const char *text, int max)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 1 || v > max)
        usage();
    return (int)v;
}

static int write_bootstrap_file(const char *path, const char *bootstraps)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int ok = fprintf(f, "%s\n", bootstraps) > 0;
    ok = (fclose(f) == 0) && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static void set_all_brokers(rd_kafka_mock_cluster_t *mc, int nbrokers, int up)
{
    for (int b = 1; b <= nbrokers; b++) {
        if (up)
            rd_kafka_mock_broker_set_up(mc, b);
        else
            rd_kafka_mock_broker_set_down(mc, b);
    }
    log_msg(LL_LOG_INFO, up ? "brokers up" : "brokers down", NULL);
}

int main(int argc, char **argv)
{
    int partitions = 12, nbrokers = 3;
    const char *prefix = TOPIC_DEFAULT_PREFIX, *bootstrap_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--partitions") == 0)
            partitions = parse_count(argv[++i], 1000);
        else if (strcmp(argv[i], "--brokers") == 0)
            nbrokers = parse_count(argv[++i], 9);
        else if (strcmp(argv[i], "--topic-prefix") == 0)
            prefix = argv[++i];
        else if (strcmp(argv[i], "--bootstrap-file") == 0)
            bootstrap_file = argv[++i];
        else
            usage();
    }
    if (log_init("billing-dev-broker") != 0) {
        fprintf(stderr, "billing-dev-broker: configuration error: LOG_LEVEL must be one of "
                        "debug, info, warn, error\n");
        return 2;
    }
    shutdown_install();
    signal(SIGUSR1, on_usr);
    signal(SIGUSR2, on_usr);

    /* The mock cluster hangs off a client handle; it is never used to send. */
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) {
        log_msg(LL_LOG_ERROR, "cannot create client handle", "error", err, NULL);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (mc == NULL) {
        log_msg(LL_LOG_ERROR, "cannot start the mock cluster", NULL);
        rd_kafka_destroy(rk);
        return 1;
    }
    int rf = nbrokers < 3 ? nbrokers : 3;
    for (size_t i = 0; i < topics_count; i++) {
        char name[TOPIC_NAME_MAX + 1];
        if (topic_name(prefix, topics_all[i], name, sizeof name) != 0) {
            fprintf(stderr, "billing-dev-broker: illegal topic prefix '%s'\n", prefix);
            return 2;
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, partitions, rf);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_msg(LL_LOG_ERROR, "cannot create topic", "topic", name, "error",
                    rd_kafka_err2str(e), NULL);
            return 1;
        }
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    printf("%s\n", bootstraps);
    fflush(stdout);
    if (bootstrap_file != NULL && write_bootstrap_file(bootstrap_file, bootstraps) != 0) {
        log_msg(LL_LOG_ERROR, "cannot write the bootstrap file", "path", bootstrap_file, NULL);
        return 1;
    }
    log_msg(LL_LOG_INFO, "dev broker serving", "bootstrap", bootstraps, "prefix", prefix, NULL);

    while (shutdown_sleep_ms(200)) {
        if (want_down) {
            want_down = 0;
            set_all_brokers(mc, nbrokers, 0);
        }
        if (want_up) {
            want_up = 0;
            set_all_brokers(mc, nbrokers, 1);
        }
    }
    log_msg(LL_LOG_INFO, "dev broker stopping", NULL);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
