/* kafkatest.h: reading a topic back in tests, with a plain librdkafka
 * consumer in a group of its own that starts at the earliest offset. */
#ifndef LEDGERLINE_TESTS_KAFKATEST_H
#define LEDGERLINE_TESTS_KAFKATEST_H

#include <librdkafka/rdkafka.h>

/* A consumer subscribed to topic on brokers; fails the test when it cannot
 * be created. Close with rd_kafka_consumer_close() + rd_kafka_destroy(). */
rd_kafka_t *kafkatest_reader(const char *brokers, const char *topic);

#endif
