/* publish.h: asynchronous, acknowledged publishing for the ingester.
 *
 * The request's connection is suspended while its message is in flight and
 * resumed from the delivery report (or at the publish deadline), so a pool
 * thread never waits on the broker. Producer settings match common/kafka.c:
 * acks=all, enable.idempotence=true, message.timeout.ms = the publish
 * timeout, so librdkafka itself reports a failure by then.
 */
#ifndef INGESTER_PUBLISH_H
#define INGESTER_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/kafka.h"

struct MHD_Connection;
typedef struct publisher publisher;
typedef struct publish_wait publish_wait;

/* linger_us: librdkafka's linger.ms, in microseconds. */
publisher *publisher_new(const char *brokers, int timeout_ms, int linger_us, char *err,
                         size_t errlen);
/* Flushes for at most flush_ms, then frees. Call with no request pending. */
void publisher_destroy(publisher *p, int flush_ms);

/* Suspends conn and produces *value (a malloc'd buffer of len bytes): when
 * librdkafka accepts the message it takes the buffer (no copy) and *value
 * becomes NULL; otherwise the caller keeps it. Returns a wait handle owned
 * by the caller (release with publish_wait_release). conn is resumed exactly
 * once, when the outcome is known (possibly before this returns). NULL only
 * when out of memory (conn not suspended). */
publish_wait *publish_start(publisher *p, struct MHD_Connection *conn, const char *topic,
                            const char *key, char **value, size_t len, const kafka_header *headers,
                            size_t nheaders);
/* After resume: KAFKA_OK when the broker acknowledged; err says why not. */
kafka_status publish_wait_result(publish_wait *w, uint64_t *elapsed_us, char *err, size_t errlen);
void publish_wait_release(publish_wait *w);

/* Requests whose outcome is not known yet. */
size_t publisher_pending(publisher *p);
/* At least one broker answered a metadata request within wait_ms. */
bool publisher_reachable(publisher *p, int wait_ms);

#endif
