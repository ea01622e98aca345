/* kafkatest.h: reading a topic back in tests, with a plain librdkafka
 * consumer in a group of its own that starts at the earliest offset, and
 * creating a topic before a worker subscribes to it. */
#ifndef LEDGERLINE_TESTS_KAFKATEST_H
#define LEDGERLINE_TESTS_KAFKATEST_H

#include <librdkafka/rdkafka.h>

/* A consumer subscribed to topic on brokers; fails the test when it cannot
 * be created. Close with rd_kafka_consumer_close() + rd_kafka_destroy(). */
rd_kafka_t *kafkatest_reader(const char *brokers, const char *topic);

/* Creates topic on brokers (the broker's auto-creation, asked for by a
 * metadata request) and waits until its partitions have leaders; fails the
 * test after 60 s. For a test whose worker subscribes before anything is
 * published: on Apache Kafka a consumer sees a topic created after it
 * subscribed only at its next metadata refresh (minutes); in production
 * provisioning creates the topics first. */
void kafkatest_create_topic(const char *brokers, const char *topic);

#endif
