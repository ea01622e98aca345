/* dlq.c: reading the dead-letter topic and replaying dead letters to their
 * source topic (see dlq.h). Owns nothing else: how messages get dead-lettered
 * is common/kafka.c's consumer loop. */
#include "ledgerline/dlq.h"
#include "ledgerline/clock.h"
#include "ledgerline/failf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "ledgerline/kafka.h"
#include "ledgerline/topics.h"

static char *dlq_header(const rd_kafka_message_t *m, const char *name)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || v == NULL)
        len = 0;
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    if (len > 0)
        memcpy(s, v, len);
    s[len] = '\0';
    return s;
}

static void *dlq_dup(const void *p, size_t n)
{
    if (p == NULL)
        return NULL;
    void *d = malloc(n ? n : 1);
    if (d != NULL && n > 0)
        memcpy(d, p, n);
    return d;
}

static void dlq_entry_free(dlq_entry *e)
{
    free(e->key);
    free(e->value);
    free(e->error);
    free(e->source_topic);
    free(e->source_partition);
    free(e->source_offset);
    free(e->consumer);
}

void dlq_entries_free(dlq_entries *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        dlq_entry_free(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int dlq_add(dlq_entries *l, size_t *cap, const rd_kafka_message_t *m)
{
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        dlq_entry *g = realloc(l->items, nc * sizeof *g);
        if (g == NULL)
            return -1;
        l->items = g;
        *cap = nc;
    }
    dlq_entry *e = &l->items[l->n];
    memset(e, 0, sizeof *e);
    e->partition = m->partition;
    e->offset = m->offset;
    e->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
    e->key = dlq_dup(m->key, m->key_len);
    e->key_len = m->key ? m->key_len : 0;
    e->value = dlq_dup(m->payload ? m->payload : "", m->len);
    e->value_len = m->len;
    e->error = dlq_header(m, "error");
    e->source_topic = dlq_header(m, "source-topic");
    e->source_partition = dlq_header(m, "source-partition");
    e->source_offset = dlq_header(m, "source-offset");
    e->consumer = dlq_header(m, "consumer");
    l->n++;
    if (e->value == NULL || e->error == NULL || e->source_topic == NULL ||
        e->source_partition == NULL || e->source_offset == NULL || e->consumer == NULL)
        return -1;
    return 0;
}

static int dlq_cmp(const void *a, const void *b)
{
    const dlq_entry *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int dlq_read(const char *brokers, const char *dlq_topic, int timeout_ms, dlq_entries *out,
             char *err, size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    int64_t deadline = (int64_t)clock_mono_ms() + timeout_ms;
    char group[96];
    snprintf(group, sizeof group, "billingctl.dlq-reader.%ld", (long)getpid());
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, err, errlen); /* with the credentials */
    if (conf == NULL)
        return -1;
    /* Assigned partitions only: the group id is required by librdkafka but
     * nothing is ever committed under it. */
    if (rd_kafka_conf_set(conf, "group.id", group, err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", err, errlen) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    int rc = -1;
    rd_kafka_topic_partition_list_t *assign = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, dlq_topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md == NULL || md->topic_cnt != 1) {
        ll_failf(err, errlen, "could not read the metadata of topic %s: %s", dlq_topic,
                 rd_kafka_err2str(e));
        goto done;
    }
    const rd_kafka_metadata_topic_t *t = &md->topics[0];
    if (t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        t->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        rc = 0; /* no topic: nothing was ever dead-lettered */
        goto done;
    }
    if (t->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ll_failf(err, errlen, "could not read topic %s: %s", dlq_topic, rd_kafka_err2str(t->err));
        goto done;
    }
    assign = rd_kafka_topic_partition_list_new(t->partition_cnt);
    int pending = 0;
    for (int i = 0; i < t->partition_cnt; i++) {
        int64_t lo = 0, hi = 0;
        int32_t p = t->partitions[i].id;
        int left = (int)(deadline - (int64_t)clock_mono_ms());
        e = rd_kafka_query_watermark_offsets(rk, dlq_topic, p, &lo, &hi, left > 0 ? left : 1);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            ll_failf(err, errlen,
                     "could not read the offsets of topic %s partition %" PRId32 ": %s", dlq_topic,
                     p, rd_kafka_err2str(e));
            goto done;
        }
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(assign, dlq_topic, p)->offset = lo;
            pending++;
        }
    }
    if (pending == 0) {
        rc = 0;
        goto done;
    }
    e = rd_kafka_assign(rk, assign);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ll_failf(err, errlen, "could not assign the partitions of topic %s: %s", dlq_topic,
                 rd_kafka_err2str(e));
        goto done;
    }
    size_t cap = 0;
    while (pending > 0) {
        int left = (int)(deadline - (int64_t)clock_mono_ms());
        if (left <= 0) {
            ll_failf(err, errlen, "could not read topic %s to its end: timed out", dlq_topic);
            ll_detailf(err, errlen, "%d partitions were not read to the end.", pending);
            goto done;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, left < 500 ? left : 500);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            pending--;
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            ll_failf(err, errlen, "could not read topic %s: %s", dlq_topic,
                     rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto done;
        } else if (dlq_add(out, &cap, m) != 0) {
            ll_failf(err, errlen, "could not keep the dead letters: out of memory");
            rd_kafka_message_destroy(m);
            goto done;
        }
        rd_kafka_message_destroy(m);
    }
    qsort(out->items, out->n, sizeof *out->items, dlq_cmp);
    rc = 0;
done:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (assign != NULL)
        rd_kafka_topic_partition_list_destroy(assign);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (rc != 0)
        dlq_entries_free(out);
    return rc;
}

size_t dlq_find(const dlq_entries *l, int32_t partition, int64_t offset, const dlq_entry **first)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const dlq_entry *e = &l->items[i];
        if (e->offset == offset && (partition < 0 || e->partition == partition)) {
            if (n == 0 && first != NULL)
                *first = e;
            n++;
        }
    }
    return n;
}

int dlq_replay(kafka_producer *p, const char *dlq_topic, const dlq_entry *e, char *err,
               size_t errlen)
{
    const char *t = e->source_topic;
    char check[TOPIC_NAME_MAX + 1];
    if (t == NULL || t[0] == '\0' || topic_name("", t, check, sizeof check) != 0) {
        return ll_failf(err, errlen,
                        "cannot replay dead letter %" PRId32 ":%" PRId64
                        ": it has no valid source-topic header",
                        e->partition, e->offset);
    }
    if (strcmp(t, dlq_topic) == 0) {
        return ll_failf(err, errlen,
                        "cannot replay dead letter %" PRId32 ":%" PRId64
                        ": its source topic is the dead-letter topic itself",
                        e->partition, e->offset);
    }
    char of[48];
    snprintf(of, sizeof of, "%" PRId32 ":%" PRId64, e->partition, e->offset);
    kafka_header h[1] = {{"dlq-replay-of", of, strlen(of)}};
    kafka_status st = kafka_produce_wait(p, t, e->key, e->key_len, e->value, e->value_len, h, 1,
                                         30000, err, errlen);
    return st == KAFKA_OK ? 0 : -1;
}
