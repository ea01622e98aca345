/* kafkatest.c: see kafkatest.h. */
#include "kafkatest.h"

#include <setjmp.h>
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
    assert_int_equal(rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err),
                     0);
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
