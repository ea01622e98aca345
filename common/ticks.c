/* ticks.c: one day's tick of a kind, published as shard messages. */
#include "ledgerline/ticks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/topics.h"

int ticks_publish(kafka_producer *p, const char *prefix, tick_kind kind, civil_date business_date,
                  const char *as_of, int shards, int64_t firm_id, char *err, size_t errlen)
{
    char topic[TOPIC_NAME_MAX + 1], name[32];
    snprintf(name, sizeof name, "ticks.%s", tick_kind_name(kind));
    if (topic_name(prefix, name, topic, sizeof topic) != 0) {
        snprintf(err, errlen, "illegal topic name %s%s", prefix, name);
        return -1;
    }
    for (int s = 0; s < shards; s++) {
        tick_msg t;
        if (tick_init(&t, kind, business_date, as_of, s, shards, firm_id) != 0) {
            snprintf(err, errlen, "invalid tick (shard %d of %d)", s, shards);
            return -1;
        }
        char *json = tick_to_json(&t);
        if (json == NULL) {
            snprintf(err, errlen, "cannot encode tick");
            return -1;
        }
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
