/* test_kafka_real.c: the system's Kafka clients on a real 3-node Apache Kafka
 * cluster (KRaft, replication factor 3, min.insync.replicas 2), label
 * kafka_real (skipped when java/mvn or the broker are not to be had):
 *
 *   1. the topics kafka-up.sh made have 3 in-sync replicas per partition and
 *      min.insync.replicas=2;
 *   2. a round trip through the system's producer (acks=all, idempotent)
 *      and consumer-group loop: every message consumed once;
 *   3. the leader of a stripe.payments partition is SIGKILLed while the
 *      ingester is under load, and started again: every event answered 200
 *      is in the topic exactly once, none twice (idempotent producer
 *      sequence continuity across the leader election), the rest (503)
 *      at most once;
 *   4. with 2 of 3 nodes down (no acks=all acknowledgement possible under
 *      min.insync.replicas=2) the ingester answers 503, never 200, and 200
 *      again once they are back.
 *
 * The figures (answers, failover latency) go to stderr for docs/RELIABILITY.md. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ingester/harness.h"
#include "kreal.h"
#include "ledgerline/kafka.h"

#define PREFIX "billing."
#define TOPIC_PAYMENTS PREFIX "stripe.payments"

static kr_cluster C;
static char run_tag[32]; /* distinguishes this run's events on a reused cluster */
static char *fixture;
static size_t fixture_len;

/* ------------------------------------------------------------- helpers */

/* The real fixture with its event id and payment intent id replaced, so each
 * event is distinct and the keys spread over the partitions. */
static char *event_body(const char *evt_id, int intent, size_t *len)
{
    static const char *const old_evt = "evt_1PgafzB7WZ01zgkWd7Nc0aQe";
    static const char *const old_pi = "pi_1PgafyB7WZ01zgkWSjxsAJo3";
    char pi[64];
    snprintf(pi, sizeof pi, "pi_kreal%s%03d", run_tag, intent);
    size_t cap = fixture_len * 2 + 256, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    const char *p = fixture;
    while (*p != '\0') {
        if (strncmp(p, old_evt, strlen(old_evt)) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", evt_id);
            p += strlen(old_evt);
        } else if (strncmp(p, old_pi, strlen(old_pi)) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", pi);
            p += strlen(old_pi);
        } else {
            out[n++] = *p++;
        }
        assert_true(n + 64 < cap);
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* Posts event i of this run; the HTTP status (0: no answer). */
static long post_event(const char *phase, int i)
{
    char id[96];
    snprintf(id, sizeof id, "evt_kreal_%s_%s_%05d", run_tag, phase, i);
    size_t len = 0;
    char *body = event_body(id, i % 97, &len);
    h_resp r;
    long code = h_post_signed(H_SECRET_A, body, len, &r) == 0 ? r.code : 0;
    h_resp_free(&r);
    free(body);
    return code;
}

/* Occurrences of each of this run's event ids of phase in the topic. */
typedef struct {
    int n;
    int *count; /* by event index */
    int other;  /* this run and phase, index out of range */
} seen_ids;

static seen_ids read_phase(const char *phase, int max_index, int want)
{
    seen_ids s = {.n = max_index, .count = calloc((size_t)max_index + 1, sizeof(int))};
    assert_non_null(s.count);
    h_msg *msgs = NULL;
    /* Everything of the topic (a reused cluster holds more than this run). */
    size_t n = h_read_topic(TOPIC_PAYMENTS, (size_t)want, 90000, 3000, &msgs);
    char pfx[96];
    snprintf(pfx, sizeof pfx, "evt_kreal_%s_%s_", run_tag, phase);
    for (size_t k = 0; k < n; k++) {
        if (strncmp(msgs[k].event_id, pfx, strlen(pfx)) != 0)
            continue;
        int i = atoi(msgs[k].event_id + strlen(pfx));
        if (i >= 0 && i <= max_index)
            s.count[i]++;
        else
            s.other++;
    }
    h_msgs_free(msgs, n);
    return s;
}

/* -------------------------------------------------------------- tests */

static void test_topics_replicated(void **state)
{
    (void)state;
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(C.brokers, err, sizeof err);
    assert_non_null(conf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, TOPIC_PAYMENTS, NULL);
    const struct rd_kafka_metadata *md = NULL;
    /* A broker that has not caught up with the metadata log yet may not
     * know the topic (or its ISR) for a moment after it was made. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(rd_kafka_metadata(rk, 0, t, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(md->topic_cnt, 1);
        bool full = md->topics[0].partition_cnt > 0;
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            full = full && md->topics[0].partitions[p].isr_cnt == 3;
        if (full)
            break;
        rd_kafka_metadata_destroy(md);
        md = NULL;
        kr_sleep_ms(300);
    }
    assert_non_null(md);
    assert_int_equal(md->topics[0].partition_cnt, 12);
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        assert_int_equal(md->topics[0].partitions[p].replica_cnt, 3);
        assert_int_equal(md->topics[0].partitions[p].isr_cnt, 3);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);

    /* min.insync.replicas=2 on the topic itself. */
    rd_kafka_ConfigResource_t *res =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, TOPIC_PAYMENTS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    assert_int_equal(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR);
    size_t nres = 0, ncfg = 0;
    const rd_kafka_ConfigResource_t **rs =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
    assert_int_equal(nres, 1);
    const rd_kafka_ConfigEntry_t **cfg = rd_kafka_ConfigResource_configs(rs[0], &ncfg);
    const char *isr = NULL;
    for (size_t i = 0; i < ncfg; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(cfg[i]), "min.insync.replicas") == 0)
            isr = rd_kafka_ConfigEntry_value(cfg[i]);
    assert_non_null(isr);
    assert_string_equal(isr, "2");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_destroy(rk);
}

#define RT_MESSAGES 200

typedef struct {
    int count[RT_MESSAGES];
    int total;
    char tag[64];
} rt_state;

static kafka_result rt_handler(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    rt_state *s = ctx;
    size_t tl = strlen(s->tag);
    if (m->key_len > tl && memcmp(m->key, s->tag, tl) == 0) {
        char num[16] = {0};
        size_t nl = m->key_len - tl < sizeof num - 1 ? m->key_len - tl : sizeof num - 1;
        memcpy(num, (const char *)m->key + tl, nl);
        int i = atoi(num);
        if (i >= 0 && i < RT_MESSAGES) {
            s->count[i]++;
            s->total++;
        }
    }
    return KAFKA_MSG_OK;
}

static void test_roundtrip(void **state)
{
    (void)state;
    char err[512];
    static rt_state s;
    snprintf(s.tag, sizeof s.tag, "kreal-%s-", run_tag);
    const char *topic = PREFIX "invoices";

    kafka_producer *p = kafka_producer_new(C.brokers, 30000, err, sizeof err);
    assert_non_null(p);
    static char keys[RT_MESSAGES][96], values[RT_MESSAGES][32];
    kafka_out_msg msgs[RT_MESSAGES];
    kafka_status results[RT_MESSAGES];
    for (int i = 0; i < RT_MESSAGES; i++) {
        snprintf(keys[i], sizeof keys[i], "%s%d", s.tag, i);
        snprintf(values[i], sizeof values[i], "{\"n\":%d}", i);
        msgs[i] = (kafka_out_msg){.topic = topic,
                                  .key = keys[i],
                                  .keylen = strlen(keys[i]),
                                  .value = values[i],
                                  .valuelen = strlen(values[i])};
    }
    unsigned long long t0 = kr_mono_ms();
    kafka_status st =
        kafka_produce_batch_wait(p, msgs, RT_MESSAGES, 30000, results, err, sizeof err);
    if (st != KAFKA_OK)
        fail_msg("produce: %s", err);
    unsigned long long produced_ms = kr_mono_ms() - t0;
    kafka_producer_destroy(p, 5000);

    char group[96];
    snprintf(group, sizeof group, "kreal-roundtrip-%s", run_tag);
    const char *topics[] = {topic};
    kafka_consumer_config cc = {.brokers = C.brokers,
                                .group_id = group,
                                .topics = topics,
                                .ntopics = 1,
                                .dlq_topic = PREFIX "dlq",
                                .handler = rt_handler,
                                .ctx = &s};
    kafka_consumer *c = kafka_consumer_new(&cc, err, sizeof err);
    assert_non_null(c);
    unsigned long long end = kr_mono_ms() + 90000;
    while (s.total < RT_MESSAGES && kr_mono_ms() < end)
        assert_true(kafka_consumer_poll_once(c, 200, err, sizeof err) >= 0);
    /* A little longer: a duplicate would show now. */
    unsigned long long settle = kr_mono_ms() + 2000;
    while (kr_mono_ms() < settle)
        kafka_consumer_poll_once(c, 200, err, sizeof err);
    kafka_consumer_close(c);
    kr_say("round trip: %d messages acknowledged (acks=all) in %llu ms, consumed %d", RT_MESSAGES,
           produced_ms, s.total);
    for (int i = 0; i < RT_MESSAGES; i++)
        if (s.count[i] != 1)
            fail_msg("message %d consumed %d times", i, s.count[i]);
    assert_int_equal(s.total, RT_MESSAGES);
}

/* The load: one thread posting events one after another until stopped. */
typedef struct {
    volatile int stop;
    int next;
    long codes[4096];
    unsigned long long ms[4096];
    const char *phase;
} load_t;

static void *load_thread(void *arg)
{
    load_t *l = arg;
    while (!l->stop && l->next < 4096) {
        int i = l->next;
        unsigned long long t0 = kr_mono_ms();
        l->codes[i] = post_event(l->phase, i);
        l->ms[i] = kr_mono_ms() - t0;
        l->next = i + 1;
    }
    return NULL;
}

static void test_leader_killed_under_load(void **state)
{
    (void)state;
    static load_t l = {.phase = "failover"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, load_thread, &l), 0);
    kr_sleep_ms(3000);
    int leader = kr_leader(TOPIC_PAYMENTS, 0);
    assert_true(leader >= 1 && leader <= KR_NODES);
    int before = l.next;
    unsigned long long t_kill = kr_mono_ms();
    assert_int_equal(kr_node(&C, "kill", leader), 0);
    kr_say("SIGKILLed node %d (leader of %s[0]) after %d events", leader, TOPIC_PAYMENTS, before);
    /* A new leader is elected once the controller fences the dead broker. */
    int new_leader = -1;
    while (kr_mono_ms() - t_kill < 60000) {
        new_leader = kr_leader(TOPIC_PAYMENTS, 0);
        if (new_leader >= 1 && new_leader != leader)
            break;
        kr_sleep_ms(200);
    }
    unsigned long long elected_ms = kr_mono_ms() - t_kill;
    assert_true(new_leader >= 1 && new_leader != leader);
    kr_sleep_ms(3000);
    int during = l.next;
    assert_int_equal(kr_node(&C, "start", leader), 0);
    unsigned long long t_start = kr_mono_ms();
    kr_sleep_ms(5000);
    l.stop = 1;
    pthread_join(th, NULL);

    int n = l.next, ok = 0, unavailable = 0, other = 0;
    unsigned long long worst = 0;
    for (int i = 0; i < n; i++) {
        if (l.codes[i] == 200)
            ok++;
        else if (l.codes[i] == 503)
            unavailable++;
        else
            other++;
        if (l.ms[i] > worst)
            worst = l.ms[i];
    }
    seen_ids s = read_phase(l.phase, n, ok);
    int lost = 0, dup = 0, late = 0;
    for (int i = 0; i < n; i++) {
        if (l.codes[i] == 200 && s.count[i] == 0)
            lost++;
        if (s.count[i] > 1)
            dup++;
        if (l.codes[i] != 200 && s.count[i] == 1)
            late++;
    }
    kr_say("leader failover: %d events posted (%d before the kill, %d until the restart "
           "%llu ms later), %d answered 200, %d answered 503, %d other; new leader of [0] "
           "after %llu ms; slowest answer %llu ms; in the topic: %d lost, %d duplicated, "
           "%d of the 503s landed anyway",
           n, before, during, t_start - t_kill, ok, unavailable, other, elected_ms, worst, lost,
           dup, late);
    free(s.count);
    assert_int_equal(other, 0);
    assert_int_equal(lost, 0);
    assert_int_equal(dup, 0);
    assert_int_equal(s.other, 0);
    assert_true(ok > 0);
}

/* Waits until every node is registered again (bounded). */
static void wait_all_nodes(void)
{
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(C.brokers, err, sizeof err);
    assert_non_null(conf);
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    unsigned long long end = kr_mono_ms() + 120000;
    int brokers = 0;
    while (kr_mono_ms() < end) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            brokers = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (brokers == KR_NODES)
                break;
        }
        kr_sleep_ms(250);
    }
    rd_kafka_destroy(rk);
    assert_int_equal(brokers, KR_NODES);
}

static void test_two_of_three_down(void **state)
{
    (void)state;
    wait_all_nodes();
    /* Whichever two: no partition keeps two in-sync replicas, and the
     * controller quorum is gone too. */
    assert_int_equal(kr_node(&C, "kill", 2), 0);
    assert_int_equal(kr_node(&C, "kill", 3), 0);
    unsigned long long t_down = kr_mono_ms();
    int n = 6, ok = 0, unavailable = 0;
    for (int i = 0; i < n; i++) {
        long code = post_event("minority", i);
        if (code == 200)
            ok++;
        else if (code == 503)
            unavailable++;
        else
            fail_msg("event %d: HTTP %ld while 2 of 3 nodes are down", i, code);
    }
    unsigned long long down_ms = kr_mono_ms() - t_down;
    assert_int_equal(kr_node(&C, "start", 2), 0);
    assert_int_equal(kr_node(&C, "start", 3), 0);
    wait_all_nodes();
    unsigned long long t_up = kr_mono_ms();
    /* Back: the same ingester (no restart) publishes again. */
    int after_ok = 0;
    for (int i = 0; i < 200 && after_ok < 3; i++) {
        long code = post_event("recovered", i);
        if (code == 200)
            after_ok++;
        else
            assert_int_equal(code, 503);
    }
    kr_say("2 of 3 nodes down for %llu ms: %d events posted, %d answered 200, %d answered "
           "503; after the restart, 200 again within %llu ms",
           down_ms, n, ok, unavailable, kr_mono_ms() - t_up);
    assert_int_equal(ok, 0);
    assert_int_equal(unavailable, n);
    assert_int_equal(after_ok, 3);
}

int main(void)
{
    snprintf(run_tag, sizeof run_tag, "%ld%ld", (long)getpid(), (long)time(NULL) % 100000);
    kr_up(&C, false, NULL, PREFIX);
    fixture = h_fixture("payment_intent.succeeded.json", &fixture_len);
    if (fixture == NULL) {
        kr_say("cannot read the payment_intent.succeeded fixture");
        return 1;
    }
    /* A short publish timeout keeps the outage phases short; what counts
     * is the answer, never its timing. */
    static const char *const env[] = {"INGESTER_PUBLISH_TIMEOUT_MS=3000", "LOG_LEVEL=warn", NULL};
    if (h_start_on(C.brokers, env) != 0) {
        kr_say("the ingester did not start");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topics_replicated),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_leader_killed_under_load),
        cmocka_unit_test(test_two_of_three_down),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    h_stop_ingester(20000);
    free(fixture);
    kr_down(&C);
    return h_done(rc);
}
