/* envelope.c: the JSON messages we produce ourselves (envelope.h): daily
 * ticks and invoice lifecycle events.
 *
 * Owns their exact wire form (field order as in the contract, compact) and
 * their validation. Builders refuse what parsers would refuse, so a message
 * we publish always parses; parsers reject anything ambiguous (wrong JSON
 * types, reals where integers belong, duplicate keys) because such a message
 * can never succeed and belongs on the dlq, with an error naming the field.
 */
#include "ledgerline/envelope.h"
#include "ledgerline/failf.h"
#include "ledgerline/vocab.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* 0001-01-01 and 9999-12-31 as days since 1970-01-01 (date.h's range). */
#define ENVELOPE_MIN_DAYS (-719162)
#define ENVELOPE_MAX_DAYS 2932896
#define ENVELOPE_MAX_SHARDS 1024

static const char *const tick_kind_names[] = {"invoicing", "autopay", "retry", "reminders"};
#define TICK_KIND_COUNT (sizeof tick_kind_names / sizeof tick_kind_names[0])

static const char *const invoice_event_names[] = {
    "invoice.issued",   "invoice.paid",     "invoice.payment_failed",
    "invoice.overdue",  "invoice.disputed", "invoice.charged_back",
    "invoice.refunded", "invoice.voided",   "invoice.credited"};
#define INVOICE_EVENT_COUNT (sizeof invoice_event_names / sizeof invoice_event_names[0])

static const ll_vocab tick_kinds = {tick_kind_names, TICK_KIND_COUNT};
static const ll_vocab invoice_event_types = {invoice_event_names, INVOICE_EVENT_COUNT};

static const char *envelope_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

static bool envelope_date_in_range(civil_date d)
{
    return d.days >= ENVELOPE_MIN_DAYS && d.days <= ENVELOPE_MAX_DAYS;
}

/* True when s is a C string shorter than cap (struct fields may be garbage). */
static bool envelope_fits(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

static int envelope_2digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Exactly "YYYY-MM-DDTHH:MM:SSZ": the one form ticks use, so that every
 * consumer reads the same instant without a general RFC 3339 parser. */
static bool envelope_as_of_valid(const char *s)
{
    char date[11];
    civil_date d;
    if (strlen(s) != 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return false;
    memcpy(date, s, 10);
    date[10] = '\0';
    if (!date_parse(date, &d) || !envelope_date_in_range(d))
        return false;
    int hh = envelope_2digits(s + 11), mm = envelope_2digits(s + 14), ss = envelope_2digits(s + 17);
    return hh >= 0 && hh <= 23 && mm >= 0 && mm <= 59 && ss >= 0 && ss <= 59;
}

/* ---- JSON field access with messages naming the field ---- */

static json_t *envelope_field(json_t *obj, const char *what, const char *name, char *err,
                              size_t errlen)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL)
        ll_failf(err, errlen, "%s: missing field \"%s\"", what, name);
    return v;
}

static int envelope_get_int(json_t *obj, const char *what, const char *name, json_int_t min,
                            json_int_t max, const char *expect, json_int_t *out, char *err,
                            size_t errlen)
{
    json_t *v = envelope_field(obj, what, name, err, errlen);
    if (v == NULL)
        return -1;
    if (!json_is_integer(v))
        return ll_failf(err, errlen, "%s: field \"%s\" must be %s, got %s", what, name, expect,
                        envelope_json_type(v));
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return ll_failf(err, errlen, "%s: field \"%s\" must be %s, got %" JSON_INTEGER_FORMAT, what,
                        name, expect, n);
    *out = n;
    return 0;
}

/* A non-empty string shorter than cap. */
static int envelope_get_str(json_t *obj, const char *what, const char *name, size_t cap,
                            const char **out, char *err, size_t errlen)
{
    json_t *v = envelope_field(obj, what, name, err, errlen);
    if (v == NULL)
        return -1;
    if (!json_is_string(v))
        return ll_failf(err, errlen, "%s: field \"%s\" must be a string, got %s", what, name,
                        envelope_json_type(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0)
        return ll_failf(err, errlen, "%s: field \"%s\" must not be empty", what, name);
    if (strlen(s) != len)
        return ll_failf(err, errlen, "%s: field \"%s\" contains a NUL character", what, name);
    if (len >= cap)
        return ll_failf(err, errlen, "%s: field \"%s\" is too long (%zu bytes, at most %zu)", what,
                        name, len, cap - 1);
    *out = s;
    return 0;
}

static json_t *envelope_load(const char *what, const char *json, size_t len, char *err,
                             size_t errlen)
{
    if (json == NULL) {
        ll_failf(err, errlen, "%s: no message", what);
        return NULL;
    }
    json_error_t jerr;
    /* Duplicate keys would let two readers see different values. */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        ll_failf(err, errlen, "%s: not valid JSON: %s (at byte %d)", what, jerr.text,
                 jerr.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        ll_failf(err, errlen, "%s: must be a JSON object, got %s", what, envelope_json_type(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---- ticks ---- */

const char *tick_kind_name(tick_kind k)
{
    return ll_vocab_name(&tick_kinds, (int)k);
}

bool tick_kind_parse(const char *text, tick_kind *out)
{
    int i = ll_vocab_find(&tick_kinds, text);
    if (i >= 0)
        *out = (tick_kind)i;
    return i >= 0;
}

/* The one idempotency key a tick's fields give (CONTRACT "Topics and
 * messages"). A tick's key is never taken on trust: a forged tick carrying
 * the key of another date (or scope, or shard) would have that key recorded
 * as applied, and the real tick would then be skipped as a replay. */
static void tick_key(const tick_msg *t, char *out, size_t outlen)
{
    char date[16];
    date_format(t->business_date, date, sizeof date);
    if (t->firm_id > 0)
        snprintf(out, outlen, "tick:%s:%s:firm-%" PRId64 ":%d/%d", tick_kind_names[t->kind], date,
                 t->firm_id, t->shard, t->shards);
    else
        snprintf(out, outlen, "tick:%s:%s:all:%d/%d", tick_kind_names[t->kind], date, t->shard,
                 t->shards);
}

/* What every tick must satisfy, whoever built it. */
static int tick_validate(const tick_msg *t, char *err, size_t errlen)
{
    if (tick_kind_name(t->kind) == NULL)
        return ll_failf(err, errlen, "tick: unknown kind %d", (int)t->kind);
    if (!envelope_fits(t->idempotency_key, sizeof t->idempotency_key) ||
        t->idempotency_key[0] == '\0')
        return ll_failf(err, errlen, "tick: idempotency_key is empty or unterminated");
    if (!envelope_date_in_range(t->business_date))
        return ll_failf(err, errlen, "tick: business_date out of range");
    if (!envelope_fits(t->as_of, sizeof t->as_of) || !envelope_as_of_valid(t->as_of))
        return ll_failf(err, errlen, "tick: as_of must be YYYY-MM-DDTHH:MM:SSZ");
    if (t->shards < 1 || t->shards > ENVELOPE_MAX_SHARDS)
        return ll_failf(err, errlen, "tick: shards must be between 1 and %d, got %d",
                        ENVELOPE_MAX_SHARDS, t->shards);
    if (t->shard < 0 || t->shard >= t->shards)
        return ll_failf(err, errlen, "tick: shard must be between 0 and %d, got %d", t->shards - 1,
                        t->shard);
    if (t->firm_id < 0)
        return ll_failf(err, errlen, "tick: firm_id must be positive or 0 (all firms)");
    char want[ENVELOPE_KEY_MAX];
    tick_key(t, want, sizeof want);
    if (strcmp(t->idempotency_key, want) != 0)
        return ll_failf(err, errlen,
                        "tick: field \"idempotency_key\" must be \"%s\" (derived from "
                        "type, business_date, firm_id, shard and shards), got \"%.80s%s\"",
                        want, t->idempotency_key, strlen(t->idempotency_key) > 80 ? "..." : "");
    return 0;
}

int tick_init(tick_msg *t, tick_kind kind, civil_date business_date, const char *as_of, int shard,
              int shards, int64_t firm_id)
{
    tick_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.business_date = business_date;
    m.shard = shard;
    m.shards = shards;
    m.firm_id = firm_id;
    if (tick_kind_name(kind) == NULL || !envelope_date_in_range(business_date))
        return -1;
    char date[16];
    date_format(business_date, date, sizeof date);
    if (as_of == NULL || as_of[0] == '\0')
        snprintf(m.as_of, sizeof m.as_of, "%sT00:00:00Z", date);
    else if (strlen(as_of) < sizeof m.as_of)
        memcpy(m.as_of, as_of, strlen(as_of) + 1);
    else
        return -1;
    tick_key(&m, m.idempotency_key, sizeof m.idempotency_key);
    if (tick_validate(&m, NULL, 0) != 0)
        return -1;
    *t = m;
    return 0;
}

char *tick_to_json(const tick_msg *t)
{
    if (t == NULL || tick_validate(t, NULL, 0) != 0)
        return NULL;
    char type[32], date[16];
    snprintf(type, sizeof type, "tick.%s", tick_kind_names[t->kind]);
    date_format(t->business_date, date, sizeof date);
    json_t *firm = t->firm_id > 0 ? json_integer((json_int_t)t->firm_id) : json_null();
    /* json_pack keeps insertion order, which is the contract's field order. */
    json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:o}", "type", type, "idempotency_key",
                             t->idempotency_key, "business_date", date, "as_of", t->as_of, "shard",
                             t->shard, "shards", t->shards, "firm_id", firm);
    if (root == NULL)
        return NULL;
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

static int tick_from_json(json_t *root, tick_msg *m, char *err, size_t errlen)
{
    static const char what[] = "tick";
    const char *s;
    json_int_t shards, shard;

    if (envelope_get_str(root, what, "type", 32, &s, err, errlen) != 0)
        return -1;
    if (strncmp(s, "tick.", 5) != 0 || !tick_kind_parse(s + 5, &m->kind))
        return ll_failf(err, errlen,
                        "tick: field \"type\" must be tick.invoicing, tick.autopay or "
                        "tick.retry, got \"%s\"",
                        s);

    if (envelope_get_str(root, what, "idempotency_key", sizeof m->idempotency_key, &s, err,
                         errlen) != 0)
        return -1;
    memcpy(m->idempotency_key, s, strlen(s) + 1);

    if (envelope_get_str(root, what, "business_date", 16, &s, err, errlen) != 0)
        return -1;
    if (!date_parse(s, &m->business_date) || !envelope_date_in_range(m->business_date))
        return ll_failf(err, errlen,
                        "tick: field \"business_date\" must be a date YYYY-MM-DD, got \"%s\"", s);

    if (envelope_get_str(root, what, "as_of", sizeof m->as_of, &s, err, errlen) != 0)
        return -1;
    if (!envelope_as_of_valid(s))
        return ll_failf(err, errlen,
                        "tick: field \"as_of\" must be a UTC time YYYY-MM-DDTHH:MM:SSZ, "
                        "got \"%s\"",
                        s);
    memcpy(m->as_of, s, strlen(s) + 1);

    if (envelope_get_int(root, what, "shards", 1, ENVELOPE_MAX_SHARDS,
                         "an integer between 1 and 1024", &shards, err, errlen) != 0)
        return -1;
    char expect[64];
    snprintf(expect, sizeof expect, "an integer between 0 and %d (shards - 1)", (int)shards - 1);
    if (envelope_get_int(root, what, "shard", 0, shards - 1, expect, &shard, err, errlen) != 0)
        return -1;
    m->shards = (int)shards;
    m->shard = (int)shard;

    json_t *firm = envelope_field(root, what, "firm_id", err, errlen);
    if (firm == NULL)
        return -1;
    if (json_is_null(firm)) {
        m->firm_id = 0;
    } else {
        json_int_t id;
        if (envelope_get_int(root, what, "firm_id", 1, INT64_MAX, "null or a positive integer", &id,
                             err, errlen) != 0)
            return -1;
        m->firm_id = (int64_t)id;
    }
    return tick_validate(m, err, errlen);
}

int tick_parse(const char *json, size_t len, tick_msg *out, char *err, size_t errlen)
{
    json_t *root = envelope_load("tick", json, len, err, errlen);
    if (root == NULL)
        return -1;
    tick_msg m;
    memset(&m, 0, sizeof m);
    int rc = tick_from_json(root, &m, err, errlen);
    json_decref(root);
    if (rc == 0)
        *out = m;
    return rc;
}

/* ---- invoice events ---- */

const char *invoice_event_type_name(invoice_event_type t)
{
    return ll_vocab_name(&invoice_event_types, (int)t);
}

bool invoice_event_type_parse(const char *text, invoice_event_type *out)
{
    int i = ll_vocab_find(&invoice_event_types, text);
    if (i >= 0)
        *out = (invoice_event_type)i;
    return i >= 0;
}

static bool envelope_currency_valid(const char *c)
{
    for (int i = 0; i < 3; i++)
        if (c[i] < 'a' || c[i] > 'z')
            return false;
    return c[3] == '\0';
}

static int invoice_event_validate(const invoice_event *e, char *err, size_t errlen)
{
    static const char what[] = "invoice event";
    if (invoice_event_type_name(e->type) == NULL)
        return ll_failf(err, errlen, "%s: unknown type %d", what, (int)e->type);
    if (!envelope_fits(e->idempotency_key, sizeof e->idempotency_key) ||
        e->idempotency_key[0] == '\0')
        return ll_failf(err, errlen, "%s: idempotency_key is empty or unterminated", what);
    if (e->invoice_id <= 0 || e->firm_id <= 0 || e->client_id <= 0)
        return ll_failf(err, errlen, "%s: invoice_id, firm_id and client_id must be positive",
                        what);
    if (!envelope_fits(e->status, sizeof e->status) || e->status[0] == '\0')
        return ll_failf(err, errlen, "%s: status is empty or unterminated", what);
    if (e->total_cents < 0)
        return ll_failf(err, errlen, "%s: total_cents must not be negative", what);
    if (!envelope_currency_valid(e->currency))
        return ll_failf(err, errlen, "%s: currency must be 3 lower-case letters", what);
    if (!envelope_fits(e->occurred_at, sizeof e->occurred_at) || e->occurred_at[0] == '\0')
        return ll_failf(err, errlen, "%s: occurred_at is empty or unterminated", what);
    return 0;
}

int invoice_event_init_key(invoice_event *e, int seq)
{
    const char *name = invoice_event_type_name(e->type);
    if (name == NULL || e->invoice_id <= 0 || seq < 0)
        return -1;
    if (seq > 0)
        snprintf(e->idempotency_key, sizeof e->idempotency_key, "%s:%" PRId64 ":%d", name,
                 e->invoice_id, seq);
    else
        snprintf(e->idempotency_key, sizeof e->idempotency_key, "%s:%" PRId64, name, e->invoice_id);
    return 0;
}

char *invoice_event_to_json(const invoice_event *e)
{
    if (e == NULL || invoice_event_validate(e, NULL, 0) != 0)
        return NULL;
    json_t *root = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:s}", "type",
                             invoice_event_names[e->type], "idempotency_key", e->idempotency_key,
                             "invoice_id", (json_int_t)e->invoice_id, "firm_id",
                             (json_int_t)e->firm_id, "client_id", (json_int_t)e->client_id,
                             "status", e->status, "total_cents", (json_int_t)e->total_cents,
                             "currency", e->currency, "occurred_at", e->occurred_at);
    if (root == NULL)
        return NULL;
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

static int invoice_event_from_json(json_t *root, invoice_event *e, char *err, size_t errlen)
{
    static const char what[] = "invoice event";
    static const char positive[] = "a positive integer";
    const char *s;
    json_int_t n;

    if (envelope_get_str(root, what, "type", 64, &s, err, errlen) != 0)
        return -1;
    if (!invoice_event_type_parse(s, &e->type))
        return ll_failf(err, errlen,
                        "%s: field \"type\" is not an invoice event type, got "
                        "\"%s\"",
                        what, s);

    if (envelope_get_str(root, what, "idempotency_key", sizeof e->idempotency_key, &s, err,
                         errlen) != 0)
        return -1;
    memcpy(e->idempotency_key, s, strlen(s) + 1);

    if (envelope_get_int(root, what, "invoice_id", 1, INT64_MAX, positive, &n, err, errlen) != 0)
        return -1;
    e->invoice_id = (int64_t)n;
    if (envelope_get_int(root, what, "firm_id", 1, INT64_MAX, positive, &n, err, errlen) != 0)
        return -1;
    e->firm_id = (int64_t)n;
    if (envelope_get_int(root, what, "client_id", 1, INT64_MAX, positive, &n, err, errlen) != 0)
        return -1;
    e->client_id = (int64_t)n;

    if (envelope_get_str(root, what, "status", sizeof e->status, &s, err, errlen) != 0)
        return -1;
    memcpy(e->status, s, strlen(s) + 1);

    if (envelope_get_int(root, what, "total_cents", 0, INT64_MAX, "a non-negative integer", &n, err,
                         errlen) != 0)
        return -1;
    e->total_cents = (int64_t)n;

    if (envelope_get_str(root, what, "currency", 16, &s, err, errlen) != 0)
        return -1;
    if (!envelope_currency_valid(s))
        return ll_failf(err, errlen,
                        "%s: field \"currency\" must be 3 lower-case letters, got \"%s\"", what, s);
    memcpy(e->currency, s, 4);

    if (envelope_get_str(root, what, "occurred_at", sizeof e->occurred_at, &s, err, errlen) != 0)
        return -1;
    memcpy(e->occurred_at, s, strlen(s) + 1);
    return invoice_event_validate(e, err, errlen);
}

int invoice_event_parse(const char *json, size_t len, invoice_event *out, char *err, size_t errlen)
{
    json_t *root = envelope_load("invoice event", json, len, err, errlen);
    if (root == NULL)
        return -1;
    invoice_event e;
    memset(&e, 0, sizeof e);
    int rc = invoice_event_from_json(root, &e, err, errlen);
    json_decref(root);
    if (rc == 0)
        *out = e;
    return rc;
}
