/* ticks.c: one day's tick of a kind, published as shard messages. */
#include "ledgerline/ticks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/topics.h"

int ticks_publish(kafka_producer *p, const char *prefix, tick_kind kind, civil_date business_date,
                  const char *as_of, int shards, int64_t firm_id, char *err, size_t errlen)
{
    char topic[TOPIC_NAME_MAX + 1], name[32];
    snprintf(name, sizeof name, "ticks.%s", tick_kind_name(kind));
    if (topic_name(prefix, name, topic, sizeof topic) != 0) {
        ll_failf(err, errlen, "cannot publish ticks: %s%s is not a legal topic name", prefix, name);
        return ll_hintf(err, errlen, "Check KAFKA_TOPIC_PREFIX.");
    }
    for (int s = 0; s < shards; s++) {
        tick_msg t;
        if (tick_init(&t, kind, business_date, as_of, s, shards, firm_id) != 0)
            return ll_failf(err, errlen, "cannot publish ticks: shard %d of %d is not a valid tick",
                            s, shards);
        char *json = tick_to_json(&t);
        if (json == NULL)
            return ll_failf(err, errlen, "could not encode tick shard %d of %d: out of memory", s,
                            shards);

        char key[16];
        snprintf(key, sizeof key, "%d", s);
        kafka_status st = kafka_produce_wait(p, topic, key, strlen(key), json, strlen(json), NULL,
                                             0, 30000, err, errlen);
        free(json);
        if (st != KAFKA_OK)
            return -1;
    }
    return 0;
}
