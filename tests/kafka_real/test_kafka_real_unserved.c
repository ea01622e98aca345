/* test_kafka_real_unserved.c: how long a SIGKILLed worker's partitions stay
 * unserved on a real 3-node Apache Kafka cluster (label kafka_real; issue
 * 15, "Consumer settings"). Owns the measurement, not a timed assert.
 *
 * Two consumer processes (this program re-run as `--consumer`: the system's
 * consumer loop of common/kafka.c with its settings, kafka_consumer_new /
 * kafka_consumer_poll_once, one group) share a 6-partition topic while the
 * test writes a message to every partition every 50 ms. Once both consume,
 * one is SIGKILLed (no LeaveGroup: the coordinator only notices when its
 * session times out). Printed (stderr, for docs/RELIABILITY.md): the time
 * from the kill to the first message of the dead consumer's partitions the
 * survivor handles (first and last of those partitions), the longest pause
 * of the survivor's own partitions over the same span (an eager rebalance
 * revokes them too), and how many messages the survivor handled again
 * (handled by the dead one, offsets not committed yet: at-least-once).
 *
 * Asserted: every partition is served again, by the survivor, and no
 * message is lost (every offset the test wrote up to the end is handled at
 * least once by one of the two). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "kreal.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"

#define PARTS 6
#define MAX_OFFSETS 20000
#define PRODUCE_EVERY_MS 50

static kr_cluster C;
static char topic[128], group[128], dir[256];

/* ------------------------------------------------------- consumer side */

static volatile sig_atomic_t consumer_stop;
static FILE *consumer_out;

static void consumer_on_term(int sig)
{
    (void)sig;
    consumer_stop = 1;
}

/* One line per message handled: partition offset monotonic-ms. */
static kafka_result consumer_handle(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    (void)ctx, (void)err, (void)errlen;
    fprintf(consumer_out, "%d %lld %llu\n", (int)m->partition, (long long)m->offset, kr_mono_ms());
    fflush(consumer_out);
    return KAFKA_MSG_OK;
}

static int consumer_main(const char *t, const char *g, const char *out)
{
    consumer_out = fopen(out, "a");
    if (consumer_out == NULL)
        return 1;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct sigaction sa = {.sa_handler = consumer_on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    log_init("kreal-unserved-consumer");
    log_set_level(LL_LOG_WARN);
    char err[512], dlq[160];
    snprintf(dlq, sizeof dlq, "%s.dlq", t);
    const char *topics[] = {t};
    kafka_consumer_config cc = {.brokers = getenv("KAFKA_BROKERS"),
                                .group_id = g,
                                .topics = topics,
                                .ntopics = 1,
                                .dlq_topic = dlq,
                                .handler = consumer_handle};
    kafka_consumer *c = kafka_consumer_new(&cc, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    while (!consumer_stop)
        if (kafka_consumer_poll_once(c, 100, err, sizeof err) < 0) {
            fprintf(stderr, "consumer: %s\n", err);
            break;
        }
    kafka_consumer_close(c);
    fclose(consumer_out);
    return 0;
}

/* --------------------------------------------------------- test side */

typedef struct {
    pid_t pid;
    char out[320];
} consumer_proc;

static consumer_proc consumer_start(const char *name)
{
    consumer_proc p;
    snprintf(p.out, sizeof p.out, "%s/%s.handled", dir, name);
    char log[320];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    p.pid = fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char *argv[] = {(char *)"/proc/self/exe", (char *)"--consumer", topic, group, p.out, NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    return p;
}

typedef struct {
    int partition;
    long long offset;
    unsigned long long ms;
} handled;

/* Everything the consumer has handled so far. */
static size_t consumer_read(const consumer_proc *p, handled **out)
{
    FILE *f = fopen(p->out, "r");
    size_t n = 0, cap = 1024;
    handled *h = malloc(cap * sizeof *h);
    assert_non_null(h);
    int part;
    long long off;
    unsigned long long ms;
    while (f != NULL && fscanf(f, "%d %lld %llu", &part, &off, &ms) == 3) {
        if (n == cap) {
            cap *= 2;
            h = realloc(h, cap * sizeof *h);
            assert_non_null(h);
        }
        h[n++] = (handled){part, off, ms};
    }
    if (f != NULL)
        fclose(f);
    *out = h;
    return n;
}

/* The producer: a message to every partition every PRODUCE_EVERY_MS. */
typedef struct {
    volatile int stop;
    rd_kafka_t *rk;
    long long sent[PARTS];
} producer_t;

static void *producer_thread(void *arg)
{
    producer_t *p = arg;
    while (!p->stop) {
        for (int i = 0; i < PARTS; i++) {
            char v[32];
            snprintf(v, sizeof v, "%lld", p->sent[i]);
            if (rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i),
                                  RD_KAFKA_V_VALUE(v, strlen(v)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR)
                p->sent[i]++;
        }
        rd_kafka_poll(p->rk, 0);
        kr_sleep_ms(PRODUCE_EVERY_MS);
    }
    rd_kafka_flush(p->rk, 30000);
    return NULL;
}

static void create_topic(void)
{
    char spec[200];
    snprintf(spec, sizeof spec, "%s:%d", topic, PARTS);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {(char *)LL_BUILD_DIR "/deploy/local/billing-kafka-admin",
                        (char *)"create-topics",
                        (char *)"--replication-factor",
                        (char *)"3",
                        (char *)"--min-insync-replicas",
                        (char *)"2",
                        spec,
                        NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Partitions a consumer handled a message of after since. */
static unsigned partitions_since(const consumer_proc *p, unsigned long long since)
{
    handled *h;
    size_t n = consumer_read(p, &h);
    unsigned mask = 0;
    for (size_t i = 0; i < n; i++)
        if (h[i].ms >= since && h[i].partition >= 0 && h[i].partition < PARTS)
            mask |= 1u << h[i].partition;
    free(h);
    return mask;
}

static void test_killed_consumer_partitions(void **state)
{
    (void)state;
    create_topic();
    char err[512];
    rd_kafka_conf_t *conf = kafka_producer_conf(C.brokers, 30000, err, sizeof err);
    assert_non_null(conf);
    static producer_t prod;
    prod.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(prod.rk);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer_thread, &prod), 0);

    consumer_proc a = consumer_start("a"), b = consumer_start("b");
    /* Both consuming, together every partition, steadily for 2 s. */
    unsigned long long until = kr_mono_ms() + 120000, steady_since = 0;
    unsigned ma = 0, mb = 0;
    while (kr_mono_ms() < until) {
        kr_sleep_ms(250);
        unsigned long long recent = kr_mono_ms() - 1000;
        ma = partitions_since(&a, recent);
        mb = partitions_since(&b, recent);
        bool ok = ma != 0 && mb != 0 && (ma & mb) == 0 && (ma | mb) == (1u << PARTS) - 1;
        if (!ok)
            steady_since = 0;
        else if (steady_since == 0)
            steady_since = kr_mono_ms();
        else if (kr_mono_ms() - steady_since >= 2000)
            break;
    }
    assert_true(ma != 0 && mb != 0 && (ma | mb) == (1u << PARTS) - 1);

    unsigned long long t_kill = kr_mono_ms();
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    kr_say("SIGKILLed consumer a (partitions 0x%02x); b has 0x%02x", ma, mb);

    /* Until b handles a message of each of a's partitions (bounded). */
    unsigned long long first[PARTS] = {0};
    until = t_kill + 120000;
    unsigned got = 0;
    while (got != ma && kr_mono_ms() < until) {
        kr_sleep_ms(100);
        handled *h;
        size_t n = consumer_read(&b, &h);
        for (size_t i = 0; i < n; i++) {
            int p = h[i].partition;
            if (h[i].ms > t_kill && p >= 0 && p < PARTS && (ma & (1u << p)) && first[p] == 0) {
                first[p] = h[i].ms;
                got |= 1u << p;
            }
        }
        free(h);
    }
    kr_sleep_ms(3000); /* b settles; then everything written must be handled */
    prod.stop = 1;
    pthread_join(th, NULL);
    long long sent[PARTS];
    memcpy(sent, prod.sent, sizeof sent);
    rd_kafka_destroy(prod.rk);
    unsigned long long end = kr_mono_ms() + 60000;
    size_t nb = 0, na = 0;
    handled *hb = NULL, *ha = NULL;
    int missing = 0;
    do {
        free(hb);
        kr_sleep_ms(500);
        nb = consumer_read(&b, &hb);
        /* Highest offset handled per partition by anyone. */
        long long top[PARTS];
        for (int p = 0; p < PARTS; p++)
            top[p] = -1;
        for (size_t i = 0; i < nb; i++)
            if (hb[i].offset > top[hb[i].partition])
                top[hb[i].partition] = hb[i].offset;
        missing = 0;
        for (int p = 0; p < PARTS; p++)
            missing += top[p] + 1 < sent[p];
    } while (missing > 0 && kr_mono_ms() < end);
    kill(b.pid, SIGTERM);
    waitpid(b.pid, NULL, 0);
    na = consumer_read(&a, &ha);

    /* The figures. */
    unsigned long long lo = 0, hi = 0;
    for (int p = 0; p < PARTS; p++)
        if (ma & (1u << p)) {
            unsigned long long d = first[p] > 0 ? first[p] - t_kill : 0;
            lo = lo == 0 || d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
    /* Longest gap between two messages b handled of its own partitions,
     * from the kill until a's partitions were all served again. */
    unsigned long long last_own = t_kill, gap = 0, served = t_kill + hi;
    for (size_t i = 0; i < nb; i++) {
        if (hb[i].ms < t_kill || hb[i].ms > served + 1000 || !(mb & (1u << hb[i].partition)))
            continue;
        if (hb[i].ms - last_own > gap)
            gap = hb[i].ms - last_own;
        last_own = hb[i].ms;
    }
    /* Handled twice: by a before the kill and again by b (or b twice). */
    size_t twice = 0;
    static unsigned char seen[PARTS][MAX_OFFSETS];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < na; i++)
        if (ha[i].offset >= 0 && ha[i].offset < MAX_OFFSETS)
            seen[ha[i].partition][ha[i].offset] = 1;
    for (size_t i = 0; i < nb; i++) {
        unsigned char *s = hb[i].offset >= 0 && hb[i].offset < MAX_OFFSETS
                               ? &seen[hb[i].partition][hb[i].offset]
                               : NULL;
        if (s != NULL && *s)
            twice++;
        else if (s != NULL)
            *s = 1;
    }
    int lost = 0;
    for (int p = 0; p < PARTS; p++)
        for (long long o = 0; o < sent[p] && o < MAX_OFFSETS; o++)
            lost += !seen[p][o];
    kr_say("unserved after SIGKILL of a consumer (common/kafka.c settings): "
           "its %d partitions served again by the survivor %llu-%llu ms after the kill; the "
           "survivor's own %d partitions paused at most %llu ms meanwhile; %zu messages "
           "handled twice (at least once), %d lost of %lld written",
           __builtin_popcount(ma), lo, hi, __builtin_popcount(mb), gap, twice, lost,
           sent[0] + sent[1] + sent[2] + sent[3] + sent[4] + sent[5]);
    free(ha);
    free(hb);
    assert_int_equal(got, ma);
    assert_int_equal(missing, 0);
    assert_int_equal(lost, 0);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--consumer") == 0)
        return consumer_main(argv[2], argv[3], argv[4]);
    char tag[32];
    snprintf(tag, sizeof tag, "%ld%ld", (long)getpid(), (long)time(NULL) % 100000);
    kr_up(&C, false, NULL, "billing.");
    snprintf(topic, sizeof topic, "kreal.unserved.%s", tag);
    snprintf(group, sizeof group, "kreal-unserved-%s", tag);
    snprintf(dir, sizeof dir, "/tmp/ll-kreal-unserved-%s", tag);
    if (mkdir(dir, 0700) != 0) {
        kr_say("cannot create %s: %s", dir, strerror(errno));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_consumer_partitions),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        char *rm[] = {(char *)"/bin/rm", (char *)"-rf", dir, NULL};
        pid_t pid = fork();
        if (pid == 0) {
            execv(rm[0], rm);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    } else {
        kr_say("consumer logs kept in %s", dir);
    }
    kr_down(&C);
    return rc;
}
