/* kafkatest.c: see kafkatest.h. */
#include "kafkatest.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

rd_kafka_t *kafkatest_reader(const char *brokers, const char *topic)
{
    static unsigned seq;
    char err[512], group[128];
    snprintf(group, sizeof group, "test.reader.%ld-%u-%ld", (long)getpid(), ++seq,
             (long)time(NULL));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, err, sizeof err), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL)
        fail_msg("cannot create a reader for %s: %s", topic, err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

void kafkatest_create_topic(const char *brokers, const char *topic)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "allow.auto.create.topics", "true", err, sizeof err),
                     0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL)
        fail_msg("cannot create a producer to create %s: %s", topic, err);
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    bool ready = false;
    for (int i = 0; i < 120 && !ready; i++) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ready = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topics[0].partition_cnt > 0;
            for (int p = 0; ready && p < md->topics[0].partition_cnt; p++)
                ready = md->topics[0].partitions[p].leader >= 0;
            rd_kafka_metadata_destroy(md);
        }
        if (!ready)
            usleep(500 * 1000);
    }
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    if (!ready)
        fail_msg("topic %s was not created on %s within 60 s", topic, brokers);
}
