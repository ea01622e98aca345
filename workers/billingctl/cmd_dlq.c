/* cmd_dlq.c: `billingctl dlq list` and `billingctl dlq replay OFFSET...`:
 * what operators do with dead letters (common/dlq.c).
 *
 * list: every message on <prefix>dlq with its partition, offset,
 * source-topic, error and original key (--json: an array of objects with
 * also source_partition, source_offset, consumer and timestamp_ms). Headers
 * and keys come from whoever could write to the topic: every byte that is
 * not printable ASCII (control characters, escape sequences that would
 * drive the operator's terminal, line breaks that would fake a row, bytes
 * that are not UTF-8) is printed as \xNN, and a backslash as \x5c, in both
 * forms.
 *
 * replay: re-publishes each named dead letter's original key and value to
 * its source-topic (after the operator fixed the cause, e.g. created the
 * missing invoice). The dlq topic has several partitions, so an offset alone
 * can name several dead letters: OFFSET is accepted when exactly one dead
 * letter has it, PARTITION:OFFSET (or --partition P for every bare OFFSET)
 * always names one. Every argument is checked before anything is
 * re-published. The consumers' idempotency keys make replaying a message
 * that was already applied harmless. Exit 1 when an argument names no (or
 * more than one) dead letter or a replay fails. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/config.h"
#include "ledgerline/dlq.h"
#include "ledgerline/kafka.h"
#include "ledgerline/topics.h"

#define DLQ_READ_TIMEOUT_MS 30000

static int dlq_read_or_fail(const char *what, dlq_entries *l, char *dlq_topic, size_t len)
{
    const char *brokers = kafka_brokers_or_exit();
    if (topic_name(topic_prefix(), TOPIC_DLQ, dlq_topic, len) != 0) {
        fprintf(stderr, "billingctl: configuration error: KAFKA_TOPIC_PREFIX makes an illegal"
                        " topic name\n");
        return CLI_USAGE;
    }
    char err[512];
    if (dlq_read(brokers, dlq_topic, DLQ_READ_TIMEOUT_MS, l, err, sizeof err) != 0) {
        fprintf(stderr, "billingctl: %s refused: %s\n", what, err);
        return CLI_REFUSED;
    }
    return CLI_OK;
}

/* n bytes as printable ASCII (see the header); malloc'd, NULL when out of
 * memory. */
static char *dlq_text(const void *bytes, size_t n)
{
    char *out = malloc(4 * n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
            out[o++] = (char)b[i];
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", b[i]);
    }
    out[o] = '\0';
    return out;
}

/* The printable form of one entry's key and headers. */
typedef struct {
    char *key, *error, *source_topic, *source_partition, *source_offset, *consumer;
} dlq_shown;

static void dlq_shown_free(dlq_shown *s)
{
    free(s->key);
    free(s->error);
    free(s->source_topic);
    free(s->source_partition);
    free(s->source_offset);
    free(s->consumer);
}

static bool dlq_show(const dlq_entry *e, dlq_shown *s)
{
    *s = (dlq_shown){
        .key = dlq_text(e->key, e->key != NULL ? e->key_len : 0),
        .error = dlq_text(e->error, strlen(e->error)),
        .source_topic = dlq_text(e->source_topic, strlen(e->source_topic)),
        .source_partition = dlq_text(e->source_partition, strlen(e->source_partition)),
        .source_offset = dlq_text(e->source_offset, strlen(e->source_offset)),
        .consumer = dlq_text(e->consumer, strlen(e->consumer)),
    };
    if (s->key && s->error && s->source_topic && s->source_partition && s->source_offset &&
        s->consumer)
        return true;
    dlq_shown_free(s);
    return false;
}

/* The key alone (replay messages). */
static void dlq_key_text(const dlq_entry *e, char *out, size_t outsz)
{
    char *k = dlq_text(e->key, e->key != NULL ? e->key_len : 0);
    snprintf(out, outsz, "%s", k != NULL ? k : "");
    free(k);
}

int cmd_dlq_list(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    if (argc > 1)
        return args_usage(usage, "unexpected argument '%s'", argv[1]);
    dlq_entries l = {0};
    char topic[TOPIC_NAME_MAX + 1];
    int rc = dlq_read_or_fail("dlq list", &l, topic, sizeof topic);
    if (rc != CLI_OK)
        return rc;
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-9s %-8s %-32s %-28s %s\n", "partition", "offset", "source-topic", "key", "error");
    for (size_t i = 0; i < l.n && rc == CLI_OK; i++) {
        const dlq_entry *e = &l.items[i];
        dlq_shown s;
        if (!dlq_show(e, &s)) {
            fprintf(stderr, "billingctl: dlq list failed: out of memory\n");
            rc = CLI_REFUSED;
            break;
        }
        if (json)
            json_array_append_new(
                arr, json_pack("{si sI ss ss ss ss ss ss sI}", "partition", (int)e->partition,
                               "offset", (json_int_t)e->offset, "source_topic", s.source_topic,
                               "source_partition", s.source_partition, "source_offset",
                               s.source_offset, "consumer", s.consumer, "error", s.error, "key",
                               s.key, "timestamp_ms", (json_int_t)e->timestamp_ms));
        else
            printf("%-9" PRId32 " %-8" PRId64 " %-32s %-28s %s\n", e->partition, e->offset,
                   s.source_topic, s.key, s.error);
        dlq_shown_free(&s);
    }
    if (rc == CLI_OK && json) {
        char *text = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", text ? text : "[]");
        free(text);
    } else if (rc == CLI_OK) {
        printf("(%zu dead letters on %s)\n", l.n, topic);
    }
    json_decref(arr);
    dlq_entries_free(&l);
    return rc;
}

/* "N" or "P:N" (digits only). */
static bool dlq_parse_ref(const char *text, int32_t dflt_partition, int32_t *partition,
                          int64_t *offset)
{
    const char *colon = strchr(text, ':');
    int64_t v;
    if (colon == NULL) {
        *partition = dflt_partition;
        return args_parse_cents(text, offset);
    }
    char p[16];
    size_t n = (size_t)(colon - text);
    if (n == 0 || n >= sizeof p)
        return false;
    memcpy(p, text, n);
    p[n] = '\0';
    if (!args_parse_cents(p, &v) || v > INT32_MAX)
        return false;
    *partition = (int32_t)v;
    return args_parse_cents(colon + 1, offset);
}

int cmd_dlq_replay(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    const char *part = NULL;
    int32_t dflt = -1;
    const char *refs[256];
    int nrefs = 0;
    for (int i = 1; i < argc; i++) {
        int g;
        if ((g = args_opt(argc, argv, &i, "--partition", &part))) {
            int64_t v;
            if (g < 0 || !args_parse_cents(part, &v) || v > INT32_MAX)
                return args_usage(usage, "--partition needs a partition number");
            dflt = (int32_t)v;
            continue;
        }
        if (argv[i][0] != '-' && nrefs < 256)
            refs[nrefs++] = argv[i];
        else
            return args_usage(usage, "unexpected argument '%s'", argv[i]);
    }
    if (nrefs == 0)
        return args_usage(usage, "at least one OFFSET is required");
    int32_t parts[256];
    int64_t offs[256];
    for (int i = 0; i < nrefs; i++)
        if (!dlq_parse_ref(refs[i], dflt, &parts[i], &offs[i]))
            return args_usage(usage, "'%s' is not an OFFSET or PARTITION:OFFSET", refs[i]);

    dlq_entries l = {0};
    char topic[TOPIC_NAME_MAX + 1];
    int rc = dlq_read_or_fail("dlq replay", &l, topic, sizeof topic);
    if (rc != CLI_OK)
        return rc;
    const dlq_entry *pick[256];
    rc = CLI_OK;
    for (int i = 0; i < nrefs; i++) {
        size_t n = dlq_find(&l, parts[i], offs[i], &pick[i]);
        if (n == 0) {
            fprintf(stderr, "billingctl: dlq replay refused: no dead letter at %s on %s\n", refs[i],
                    topic);
            rc = CLI_REFUSED;
        } else if (n > 1) {
            fprintf(stderr,
                    "billingctl: dlq replay refused: offset %s exists in %zu partitions of %s;"
                    " name one as PARTITION:OFFSET (see dlq list)\n",
                    refs[i], n, topic);
            rc = CLI_REFUSED;
        }
    }
    if (rc != CLI_OK) {
        dlq_entries_free(&l);
        return rc;
    }
    char err[512];
    kafka_producer *p = kafka_producer_new(kafka_brokers_or_exit(), 30000, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "billingctl: dlq replay refused: %s\n", err);
        dlq_entries_free(&l);
        return CLI_REFUSED;
    }
    json_t *done = json_array();
    char key[512];
    for (int i = 0; i < nrefs; i++) {
        const dlq_entry *e = pick[i];
        dlq_key_text(e, key, sizeof key);
        if (dlq_replay(p, topic, e, err, sizeof err) != 0) {
            fprintf(stderr, "billingctl: dlq replay of %" PRId32 ":%" PRId64 " failed: %s\n",
                    e->partition, e->offset, err);
            rc = CLI_REFUSED;
            continue;
        }
        char *to = dlq_text(e->source_topic, strlen(e->source_topic));
        if (json)
            json_array_append_new(done, json_pack("{si sI ss ss}", "partition", (int)e->partition,
                                                  "offset", (json_int_t)e->offset, "topic",
                                                  to != NULL ? to : "", "key", key));
        else
            printf("replayed %" PRId32 ":%" PRId64 " to %s (key %s)\n", e->partition, e->offset,
                   to != NULL ? to : "", key);
        free(to);
    }
    if (json) {
        char *s = json_dumps(done, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
        free(s);
    }
    json_decref(done);
    kafka_producer_destroy(p, 5000);
    dlq_entries_free(&l);
    return rc;
}
