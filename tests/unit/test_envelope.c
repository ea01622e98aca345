/* test_envelope.c: tick and invoice event messages (envelope.h): exact wire
 * form, round trips, and every kind of malformed input a consumer may see. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ledgerline/envelope.h"

static const char contract_tick[] =
    "{\"type\":\"tick.invoicing\",\"idempotency_key\":\"tick:invoicing:2026-11-24:all:3/12\","
    "\"business_date\":\"2026-11-24\",\"as_of\":\"2026-11-24T02:00:00Z\",\"shard\":3,"
    "\"shards\":12,\"firm_id\":null}";

static const char issued_json[] =
    "{\"type\":\"invoice.issued\",\"idempotency_key\":\"invoice.issued:42\",\"invoice_id\":42,"
    "\"firm_id\":7,\"client_id\":9,\"status\":\"sent\",\"total_cents\":125000,"
    "\"currency\":\"usd\",\"occurred_at\":\"2026-11-24T02:00:00Z\"}";

static char err[512];

static civil_date day(const char *text)
{
    civil_date d;
    assert_true(date_parse(text, &d));
    return d;
}

/* A JSON value from its text (reals included, without C floating point). */
static json_t *raw(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

/* ---- ticks ---- */

static void test_tick_kind_names(void **state)
{
    (void)state;
    tick_kind k;
    assert_string_equal(tick_kind_name(TICK_INVOICING), "invoicing");
    assert_string_equal(tick_kind_name(TICK_AUTOPAY), "autopay");
    assert_string_equal(tick_kind_name(TICK_RETRY), "retry");
    assert_string_equal(tick_kind_name(TICK_REMINDERS), "reminders");
    assert_null(tick_kind_name((tick_kind)4));
    assert_true(tick_kind_parse("reminders", &k));
    assert_int_equal(k, TICK_REMINDERS);
    assert_true(tick_kind_parse("autopay", &k));
    assert_int_equal(k, TICK_AUTOPAY);
    assert_true(tick_kind_parse("retry", &k));
    assert_int_equal(k, TICK_RETRY);
    assert_false(tick_kind_parse("tick.retry", &k));
    assert_false(tick_kind_parse("Retry", &k));
    assert_false(tick_kind_parse("", &k));
}

static void test_tick_contract_form(void **state)
{
    (void)state;
    tick_msg t;
    assert_int_equal(
        tick_init(&t, TICK_INVOICING, day("2026-11-24"), "2026-11-24T02:00:00Z", 3, 12, 0), 0);
    assert_string_equal(t.idempotency_key, "tick:invoicing:2026-11-24:all:3/12");
    char *json = tick_to_json(&t);
    assert_non_null(json);
    assert_string_equal(json, contract_tick);
    free(json);

    tick_msg p;
    assert_int_equal(tick_parse(contract_tick, strlen(contract_tick), &p, err, sizeof err), 0);
    assert_int_equal(p.kind, TICK_INVOICING);
    assert_string_equal(p.idempotency_key, "tick:invoicing:2026-11-24:all:3/12");
    assert_int_equal(p.business_date.days, day("2026-11-24").days);
    assert_string_equal(p.as_of, "2026-11-24T02:00:00Z");
    assert_int_equal(p.shard, 3);
    assert_int_equal(p.shards, 12);
    assert_int_equal(p.firm_id, 0);
}

static void test_tick_firm_scoped(void **state)
{
    (void)state;
    tick_msg t, p;
    assert_int_equal(
        tick_init(&t, TICK_INVOICING, day("2026-11-24"), "2026-11-24T02:00:00Z", 3, 12, 7), 0);
    assert_string_equal(t.idempotency_key, "tick:invoicing:2026-11-24:firm-7:3/12");
    char *json = tick_to_json(&t);
    assert_non_null(json);
    assert_string_equal(json, "{\"type\":\"tick.invoicing\",\"idempotency_key\":"
                              "\"tick:invoicing:2026-11-24:firm-7:3/12\",\"business_date\":"
                              "\"2026-11-24\",\"as_of\":\"2026-11-24T02:00:00Z\",\"shard\":3,"
                              "\"shards\":12,\"firm_id\":7}");
    assert_int_equal(tick_parse(json, strlen(json), &p, err, sizeof err), 0);
    assert_int_equal(p.firm_id, 7);
    assert_string_equal(p.idempotency_key, t.idempotency_key);
    free(json);
}

static void test_tick_round_trip_all_kinds(void **state)
{
    (void)state;
    static const struct {
        tick_kind kind;
        const char *date, *as_of;
        int shard, shards;
        int64_t firm;
        const char *key;
    } cases[] = {
        {TICK_AUTOPAY, "2026-01-01", NULL, 0, 1, 0, "tick:autopay:2026-01-01:all:0/1"},
        {TICK_RETRY, "2024-02-29", "2024-02-29T03:30:00Z", 11, 12, 0,
         "tick:retry:2024-02-29:all:11/12"},
        {TICK_RETRY, "9999-12-31", "9999-12-31T23:59:59Z", 1023, 1024, INT64_MAX,
         "tick:retry:9999-12-31:firm-9223372036854775807:1023/1024"},
        {TICK_INVOICING, "0001-01-01", "", 0, 2, 1, "tick:invoicing:0001-01-01:firm-1:0/2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tick_msg t, p;
        assert_int_equal(tick_init(&t, cases[i].kind, day(cases[i].date), cases[i].as_of,
                                   cases[i].shard, cases[i].shards, cases[i].firm),
                         0);
        assert_string_equal(t.idempotency_key, cases[i].key);
        if (cases[i].as_of == NULL || cases[i].as_of[0] == '\0') {
            char want[32];
            snprintf(want, sizeof want, "%sT00:00:00Z", cases[i].date);
            assert_string_equal(t.as_of, want);
        }
        char *json = tick_to_json(&t);
        assert_non_null(json);
        assert_int_equal(tick_parse(json, strlen(json), &p, err, sizeof err), 0);
        assert_memory_equal(&p, &t, sizeof t); /* both zero-filled before being set */
        free(json);
    }
}

static void test_tick_init_rejects(void **state)
{
    (void)state;
    tick_msg t;
    civil_date d = day("2026-11-24");
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, 0, 0, 0), -1);
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, 0, 1025, 0), -1);
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, 12, 12, 0), -1);
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, -1, 12, 0), -1);
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, 0, 12, -7), -1);
    assert_int_equal(tick_init(&t, (tick_kind)9, d, NULL, 0, 12, 0), -1);
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, "2026-11-24", 0, 12, 0), -1);
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, "2026-11-24T25:00:00Z", 0, 12, 0), -1);
    civil_date far = {.days = 3000000};
    assert_int_equal(tick_init(&t, TICK_INVOICING, far, NULL, 0, 12, 0), -1);

    /* A struct nobody validated does not serialise. */
    assert_int_equal(tick_init(&t, TICK_INVOICING, d, NULL, 0, 12, 0), 0);
    tick_msg bad = t;
    bad.shard = 12;
    assert_null(tick_to_json(&bad));
    bad = t;
    bad.idempotency_key[0] = '\0';
    assert_null(tick_to_json(&bad));
    bad = t;
    memset(bad.as_of, 'x', sizeof bad.as_of);
    assert_null(tick_to_json(&bad));
}

/* The contract tick with one field replaced (value) or removed (NULL). */
static char *tick_with(const char *key, json_t *value)
{
    json_t *root = json_loads(contract_tick, 0, NULL);
    assert_non_null(root);
    if (value == NULL)
        json_object_del(root, key);
    else
        json_object_set_new(root, key, value);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    assert_non_null(s);
    return s;
}

static void expect_tick_error(const char *json, size_t len, const char *needle)
{
    tick_msg t;
    memset(&t, 0xab, sizeof t);
    tick_msg before = t;
    err[0] = '\0';
    if (tick_parse(json, len, &t, err, sizeof err) != -1)
        fail_msg("accepted: %.*s", (int)len, json);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\" for %.*s", err, needle, (int)len, json);
    assert_memory_equal(&t, &before, sizeof t); /* untouched on failure */
}

static void expect_tick_field_error(const char *key, json_t *value, const char *needle)
{
    char *s = tick_with(key, value);
    expect_tick_error(s, strlen(s), needle);
    free(s);
}

static void test_tick_missing_fields(void **state)
{
    (void)state;
    static const char *const keys[] = {"type",  "idempotency_key", "business_date", "as_of",
                                       "shard", "shards",          "firm_id"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "missing field \"%s\"", keys[i]);
        expect_tick_field_error(keys[i], NULL, needle);
    }
}

static void test_tick_wrong_types(void **state)
{
    (void)state;
    expect_tick_field_error("type", json_integer(1), "\"type\" must be a string, got an integer");
    expect_tick_field_error("idempotency_key", json_integer(5),
                            "\"idempotency_key\" must be a string");
    expect_tick_field_error("business_date", json_integer(20261124),
                            "\"business_date\" must be a string");
    expect_tick_field_error("as_of", json_null(), "\"as_of\" must be a string, got null");
    expect_tick_field_error("shard", json_string("3"), "\"shard\" must be an integer");
    expect_tick_field_error(
        "shard", raw("3.0"),
        "\"shard\" must be an integer between 0 and 11 (shards - 1), got a real number");
    expect_tick_field_error("shards", raw("12.0"),
                            "\"shards\" must be an integer between 1 and 1024, got a real number");
    expect_tick_field_error("shards", json_true(), "got a boolean");
    expect_tick_field_error("firm_id", json_string("7"),
                            "\"firm_id\" must be null or a positive integer, got a string");
    expect_tick_field_error("firm_id", raw("7.0"),
                            "\"firm_id\" must be null or a positive integer, got a real number");
    expect_tick_field_error("firm_id", json_false(), "\"firm_id\"");
    expect_tick_field_error("firm_id", json_object(), "got an object");
    expect_tick_field_error("shard", json_array(), "got an array");

    /* Reals written by hand, as a foreign producer would. */
    static const char real_shard[] =
        "{\"type\":\"tick.invoicing\",\"idempotency_key\":\"k\",\"business_date\":\"2026-11-24\","
        "\"as_of\":\"2026-11-24T02:00:00Z\",\"shard\":3e0,\"shards\":12,\"firm_id\":null}";
    expect_tick_error(real_shard, strlen(real_shard), "\"shard\"");
}

static void test_tick_bad_values(void **state)
{
    (void)state;
    expect_tick_field_error("type", json_string("tick.billing"),
                            "\"type\" must be tick.invoicing, tick.autopay or tick.retry");
    expect_tick_field_error("type", json_string("invoicing"), "\"type\"");
    expect_tick_field_error("type", json_string("tick."), "\"type\"");
    expect_tick_field_error("type", json_string("TICK.INVOICING"), "\"type\"");
    expect_tick_field_error("idempotency_key", json_string(""),
                            "\"idempotency_key\" must not be empty");
    char longkey[ENVELOPE_KEY_MAX + 1];
    memset(longkey, 'k', ENVELOPE_KEY_MAX);
    longkey[ENVELOPE_KEY_MAX] = '\0';
    expect_tick_field_error("idempotency_key", json_string(longkey),
                            "\"idempotency_key\" is too long");
    longkey[ENVELOPE_KEY_MAX - 1] = '\0'; /* 255 bytes fits, but is not the derived key */
    expect_tick_field_error("idempotency_key", json_string(longkey),
                            "\"idempotency_key\" must be \"tick:invoicing:2026-11-24:all:3/12\"");

    static const char *const bad_dates[] = {
        "2026-02-30", "2026-13-01", "2026-00-10", "26-11-24", "2026-11-24T00:00:00Z",
        "2026/11/24", "0000-01-01", "2026-11-4",  "",         "2025-02-29"};
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++)
        expect_tick_field_error("business_date", json_string(bad_dates[i]), "\"business_date\"");

    static const char *const bad_as_of[] = {
        "2026-11-24T24:00:00Z",      "2026-11-24 02:00:00Z",     "2026-11-24T02:00:00",
        "2026-11-24T02:00:00+00:00", "2026-02-30T02:00:00Z",     "2026-11-24T02:60:00Z",
        "2026-11-24T02:00:60Z",      "2026-11-24T02:00:00.000Z", "2026-11-24t02:00:00z",
        "2026-11-24T2:00:00Z",       "2026-11-24Tab:00:00Z",     "",
        "2026-11-24T-1:00:00Z",      "0000-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad_as_of / sizeof bad_as_of[0]; i++)
        expect_tick_field_error("as_of", json_string(bad_as_of[i]), "\"as_of\"");

    expect_tick_field_error("shard", json_integer(12),
                            "\"shard\" must be an integer between 0 and 11 (shards - 1), got 12");
    expect_tick_field_error("shard", json_integer(-1), "got -1");
    expect_tick_field_error("shard", json_integer((json_int_t)1 << 40), "\"shard\"");
    expect_tick_field_error("shards", json_integer(0),
                            "\"shards\" must be an integer between 1 and 1024, got 0");
    expect_tick_field_error("shards", json_integer(1025), "got 1025");
    expect_tick_field_error("shards", json_integer(-12), "\"shards\"");
    expect_tick_field_error("shards", json_integer(3),
                            "\"shard\" must be an integer between 0 and 2"); /* shard 3 of 3 */
    expect_tick_field_error("firm_id", json_integer(0),
                            "\"firm_id\" must be null or a positive integer, got 0");
    expect_tick_field_error("firm_id", json_integer(-7), "got -7");
}

/* A tick's key is derived from its fields, never taken from the message: a
 * forged tick with the key of another date (or kind, scope or shard) would
 * have that key recorded as applied, and the real tick would be skipped. */
static void test_tick_forged_key(void **state)
{
    (void)state;
    static const char *const forged[] = {
        "tick:invoicing:2026-12-01:all:3/12", /* a future date's key on a harmless date */
        "tick:invoicing:2026-11-23:all:3/12",
        "tick:autopay:2026-11-24:all:3/12",   /* another kind */
        "tick:invoicing:2026-11-24:all:4/12", /* another shard */
        "tick:invoicing:2026-11-24:all:3/13",
        "tick:invoicing:2026-11-24:firm-7:3/12", /* another scope */
        "tick:invoicing:2026-11-24:all:03/12",
        "tick:invoicing:2026-11-24:all:3/12 ",
        "TICK:INVOICING:2026-11-24:ALL:3/12",
        "tick:invoicing:2026-11-24:all:3/12\n",
        "k",
    };
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
        expect_tick_field_error("idempotency_key", json_string(forged[i]),
                                "tick: field \"idempotency_key\" must be "
                                "\"tick:invoicing:2026-11-24:all:3/12\"");

    /* Any other field changed without the key: refused the same way. */
    expect_tick_field_error("business_date", json_string("2026-12-01"),
                            "must be \"tick:invoicing:2026-12-01:all:3/12\"");
    expect_tick_field_error("type", json_string("tick.retry"),
                            "must be \"tick:retry:2026-11-24:all:3/12\"");
    expect_tick_field_error("firm_id", json_integer(7),
                            "must be \"tick:invoicing:2026-11-24:firm-7:3/12\"");
    expect_tick_field_error("shard", json_integer(4),
                            "must be \"tick:invoicing:2026-11-24:all:4/12\"");
    expect_tick_field_error("shards", json_integer(24),
                            "must be \"tick:invoicing:2026-11-24:all:3/24\"");

    /* The error quotes at most 80 bytes of what was sent. */
    char longkey[200];
    memset(longkey, 'z', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    char *s = tick_with("idempotency_key", json_string(longkey));
    tick_msg t;
    assert_int_equal(tick_parse(s, strlen(s), &t, err, sizeof err), -1);
    free(s);
    assert_null(strstr(err, longkey + 100));
    assert_non_null(strstr(err, "zzz...\""));

    /* as_of is not part of the key: the same tick at another hour is the
     * same tick (and is applied once). */
    s = tick_with("as_of", json_string("2026-11-24T23:59:59Z"));
    assert_int_equal(tick_parse(s, strlen(s), &t, err, sizeof err), 0);
    assert_string_equal(t.idempotency_key, "tick:invoicing:2026-11-24:all:3/12");
    free(s);

    /* A struct with a forged key does not serialise either. */
    assert_int_equal(tick_init(&t, TICK_INVOICING, day("2026-11-24"), NULL, 3, 12, 0), 0);
    snprintf(t.idempotency_key, sizeof t.idempotency_key, "tick:invoicing:2026-12-01:all:3/12");
    assert_null(tick_to_json(&t));
}

static void test_tick_not_json(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"", "not valid JSON"},
        {"not json", "not valid JSON"},
        {"42", "not valid JSON"},
        {"\"tick\"", "not valid JSON"},
        {"null", "not valid JSON"},
        {"[1,2]", "must be a JSON object, got an array"},
        {"[]", "must be a JSON object"},
        {"{}", "missing field \"type\""},
        {"{\"type\":\"tick.retry\",\"type\":\"tick.retry\"}", "not valid JSON"}, /* duplicate key */
        {"{\"shard\":99999999999999999999999}", "not valid JSON"},
        {"{\"type\":\"tick.retry\"} x", "not valid JSON"},
        {"{\"type\":\"tick\\u0000.retry\"}", "not valid JSON"},
        {"{\"type\":\"\xff\"}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_tick_error(cases[i].text, strlen(cases[i].text), cases[i].needle);

    tick_msg t;
    assert_int_equal(tick_parse(NULL, 0, &t, err, sizeof err), -1);
}

static void test_tick_truncated_and_length(void **state)
{
    (void)state;
    size_t len = strlen(contract_tick);
    for (size_t n = 0; n < len; n++)
        expect_tick_error(contract_tick, n, "tick: ");

    /* The length bounds the message: trailing bytes beyond it are not read,
     * and the buffer need not be NUL-terminated. */
    char *buf = malloc(len + 8);
    assert_non_null(buf);
    memcpy(buf, contract_tick, len);
    memcpy(buf + len, "garbage!", 8);
    tick_msg t;
    assert_int_equal(tick_parse(buf, len, &t, err, sizeof err), 0);
    assert_int_equal(t.shard, 3);

    /* An embedded NUL inside the given length is part of the message. */
    buf[len] = '\0';
    expect_tick_error(buf, len + 8, "not valid JSON");
    expect_tick_error(buf, len + 1, "not valid JSON");
    memcpy(buf, contract_tick, len);
    buf[20] = '\0'; /* inside the "type" string */
    expect_tick_error(buf, len, "not valid JSON");
    free(buf);
}

static void test_tick_extra_fields_ignored(void **state)
{
    (void)state;
    char *s = tick_with("trace_id", json_string("abc"));
    tick_msg t;
    assert_int_equal(tick_parse(s, strlen(s), &t, err, sizeof err), 0);
    free(s);
}

/* ---- invoice events ---- */

static const char *const event_names[] = {
    "invoice.issued",   "invoice.paid",     "invoice.payment_failed",
    "invoice.overdue",  "invoice.disputed", "invoice.charged_back",
    "invoice.refunded", "invoice.voided",   "invoice.credited"};
#define EVENT_TYPES ((int)(sizeof event_names / sizeof event_names[0]))

static invoice_event sample_event(invoice_event_type type)
{
    invoice_event e;
    memset(&e, 0, sizeof e);
    e.type = type;
    e.invoice_id = 42;
    e.firm_id = 7;
    e.client_id = 9;
    strcpy(e.status, "sent");
    e.total_cents = 125000;
    strcpy(e.currency, "usd");
    strcpy(e.occurred_at, "2026-11-24T02:00:00Z");
    return e;
}

static void test_event_type_names(void **state)
{
    (void)state;
    for (int i = 0; i < EVENT_TYPES; i++) {
        invoice_event_type t;
        assert_string_equal(invoice_event_type_name((invoice_event_type)i), event_names[i]);
        assert_true(invoice_event_type_parse(event_names[i], &t));
        assert_int_equal(t, i);
    }
    invoice_event_type t;
    assert_null(invoice_event_type_name((invoice_event_type)EVENT_TYPES));
    assert_false(invoice_event_type_parse("invoice.created", &t));
    assert_false(invoice_event_type_parse("issued", &t));
    assert_false(invoice_event_type_parse("", &t));
}

static void test_event_contract_form(void **state)
{
    (void)state;
    invoice_event e = sample_event(INVOICE_EVENT_ISSUED);
    assert_int_equal(invoice_event_init_key(&e, 0), 0);
    assert_string_equal(e.idempotency_key, "invoice.issued:42");
    char *json = invoice_event_to_json(&e);
    assert_non_null(json);
    assert_string_equal(json, issued_json);
    free(json);

    invoice_event p;
    assert_int_equal(invoice_event_parse(issued_json, strlen(issued_json), &p, err, sizeof err), 0);
    assert_memory_equal(&p, &e, sizeof e);
}

static void test_event_round_trip_all_types(void **state)
{
    (void)state;
    for (int i = 0; i < 7; i++) {
        for (int seq = 0; seq <= 2; seq++) {
            invoice_event e = sample_event((invoice_event_type)i), p;
            assert_int_equal(invoice_event_init_key(&e, seq), 0);
            char want[64];
            if (seq > 0)
                snprintf(want, sizeof want, "%s:42:%d", event_names[i], seq);
            else
                snprintf(want, sizeof want, "%s:42", event_names[i]);
            assert_string_equal(e.idempotency_key, want);
            char *json = invoice_event_to_json(&e);
            assert_non_null(json);
            char prefix[160];
            snprintf(prefix, sizeof prefix, "{\"type\":\"%s\",\"idempotency_key\":\"%s\",",
                     event_names[i], want);
            assert_int_equal(strncmp(json, prefix, strlen(prefix)), 0);
            assert_int_equal(invoice_event_parse(json, strlen(json), &p, err, sizeof err), 0);
            assert_memory_equal(&p, &e, sizeof e);
            free(json);
        }
    }
    invoice_event e = sample_event(INVOICE_EVENT_PAYMENT_FAILED);
    assert_int_equal(invoice_event_init_key(&e, 2), 0);
    assert_string_equal(e.idempotency_key, "invoice.payment_failed:42:2");

    /* Extremes survive the trip exactly (no floating point on the way). */
    e = sample_event(INVOICE_EVENT_REFUNDED);
    e.invoice_id = INT64_MAX;
    e.firm_id = 9007199254740993LL; /* not representable as a double */
    e.total_cents = 0;
    strcpy(e.status, "refunded_partially_x_xx"); /* 23 bytes: the most that fits */
    strcpy(e.occurred_at, "2026-11-24T02:00:00.123456+00:00");
    assert_int_equal(invoice_event_init_key(&e, 0), 0);
    char *json = invoice_event_to_json(&e);
    assert_non_null(json);
    invoice_event p;
    assert_int_equal(invoice_event_parse(json, strlen(json), &p, err, sizeof err), 0);
    assert_memory_equal(&p, &e, sizeof e);
    free(json);
}

static void test_event_builders_reject(void **state)
{
    (void)state;
    invoice_event e = sample_event(INVOICE_EVENT_PAID);
    assert_int_equal(invoice_event_init_key(&e, -1), -1);
    e.invoice_id = 0;
    assert_int_equal(invoice_event_init_key(&e, 0), -1);
    e = sample_event((invoice_event_type)EVENT_TYPES);
    assert_int_equal(invoice_event_init_key(&e, 0), -1);

    invoice_event good = sample_event(INVOICE_EVENT_PAID);
    assert_int_equal(invoice_event_init_key(&good, 0), 0);
    e = good;
    e.idempotency_key[0] = '\0';
    assert_null(invoice_event_to_json(&e));
    e = good;
    e.client_id = -1;
    assert_null(invoice_event_to_json(&e));
    e = good;
    e.total_cents = -1;
    assert_null(invoice_event_to_json(&e));
    e = good;
    strcpy(e.currency, "USD");
    assert_null(invoice_event_to_json(&e));
    e = good;
    e.status[0] = '\0';
    assert_null(invoice_event_to_json(&e));
    e = good;
    memset(e.occurred_at, 'x', sizeof e.occurred_at);
    assert_null(invoice_event_to_json(&e));
    e = good;
    e.type = (invoice_event_type)99;
    assert_null(invoice_event_to_json(&e));
}

static char *event_with(const char *key, json_t *value)
{
    json_t *root = json_loads(issued_json, 0, NULL);
    assert_non_null(root);
    if (value == NULL)
        json_object_del(root, key);
    else
        json_object_set_new(root, key, value);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    assert_non_null(s);
    return s;
}

static void expect_event_error(const char *json, size_t len, const char *needle)
{
    invoice_event e;
    memset(&e, 0xcd, sizeof e);
    invoice_event before = e;
    err[0] = '\0';
    if (invoice_event_parse(json, len, &e, err, sizeof err) != -1)
        fail_msg("accepted: %.*s", (int)len, json);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\" for %.*s", err, needle, (int)len, json);
    assert_memory_equal(&e, &before, sizeof e);
}

static void expect_event_field_error(const char *key, json_t *value, const char *needle)
{
    char *s = event_with(key, value);
    expect_event_error(s, strlen(s), needle);
    free(s);
}

static void test_event_missing_fields(void **state)
{
    (void)state;
    static const char *const keys[] = {"type",        "idempotency_key", "invoice_id",
                                       "firm_id",     "client_id",       "status",
                                       "total_cents", "currency",        "occurred_at"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "missing field \"%s\"", keys[i]);
        expect_event_field_error(keys[i], NULL, needle);
    }
}

static void test_event_bad_fields(void **state)
{
    (void)state;
    expect_event_field_error("type", json_string("invoice.created"),
                             "\"type\" is not an invoice event type");
    expect_event_field_error("type", json_string("tick.invoicing"), "\"type\"");
    expect_event_field_error("type", json_integer(0), "\"type\" must be a string");
    expect_event_field_error("idempotency_key", json_string(""),
                             "\"idempotency_key\" must not be empty");
    expect_event_field_error("idempotency_key", json_null(),
                             "\"idempotency_key\" must be a string, got null");

    static const char *const ids[] = {"invoice_id", "firm_id", "client_id"};
    for (size_t i = 0; i < 3; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"%s\" must be a positive integer", ids[i]);
        expect_event_field_error(ids[i], json_integer(0), needle);
        expect_event_field_error(ids[i], json_integer(-1), needle);
        expect_event_field_error(ids[i], raw("42.0"), "got a real number");
        expect_event_field_error(ids[i], json_string("42"), "got a string");
        expect_event_field_error(ids[i], json_null(), "got null");
    }
    expect_event_field_error("total_cents", json_integer(-1),
                             "\"total_cents\" must be a non-negative integer, got -1");
    expect_event_field_error("total_cents", raw("1250.5"),
                             "\"total_cents\" must be a non-negative integer, got a real number");
    expect_event_field_error("total_cents", raw("1250.0"), "got a real number");
    expect_event_field_error("total_cents", json_string("1250"), "got a string");

    static const char *const bad_currency[] = {"USD", "us", "usdd", "", "u$d", "eu1"};
    for (size_t i = 0; i < sizeof bad_currency / sizeof bad_currency[0]; i++)
        expect_event_field_error("currency", json_string(bad_currency[i]), "\"currency\"");
    expect_event_field_error("currency", json_integer(840), "\"currency\" must be a string");

    expect_event_field_error("status", json_string(""), "\"status\" must not be empty");
    expect_event_field_error("status", json_string("a_status_that_is_too_long"),
                             "\"status\" is too long");
    expect_event_field_error("status", json_true(), "\"status\" must be a string, got a boolean");
    expect_event_field_error("occurred_at", json_string(""), "\"occurred_at\" must not be empty");
    expect_event_field_error("occurred_at", json_integer(1764000000),
                             "\"occurred_at\" must be a string");
    expect_event_field_error("occurred_at",
                             json_string("2026-11-24T02:00:00.123456789+00:00:00:00:00"),
                             "\"occurred_at\" is too long");

    /* Reals and exponents written by hand. */
    static const char exp_total[] =
        "{\"type\":\"invoice.paid\",\"idempotency_key\":\"invoice.paid:1\",\"invoice_id\":1,"
        "\"firm_id\":1,\"client_id\":1,\"status\":\"paid\",\"total_cents\":1e3,"
        "\"currency\":\"usd\",\"occurred_at\":\"x\"}";
    expect_event_error(exp_total, strlen(exp_total), "\"total_cents\"");
}

static void test_event_not_json(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"", "invoice event: not valid JSON"},
        {"{", "not valid JSON"},
        {"[{}]", "must be a JSON object, got an array"},
        {"7", "not valid JSON"},
        {"{}", "missing field \"type\""},
        {"{\"invoice_id\":1,\"invoice_id\":2}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_event_error(cases[i].text, strlen(cases[i].text), cases[i].needle);

    size_t len = strlen(issued_json);
    for (size_t n = 0; n < len; n++)
        expect_event_error(issued_json, n, "invoice event: ");

    char *buf = malloc(len + 4);
    assert_non_null(buf);
    memcpy(buf, issued_json, len);
    memcpy(buf + len, "\0xyz", 4);
    invoice_event e;
    assert_int_equal(invoice_event_parse(buf, len, &e, err, sizeof err), 0);
    expect_event_error(buf, len + 4, "not valid JSON");
    free(buf);

    assert_int_equal(invoice_event_parse(NULL, 0, &e, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tick_kind_names),
        cmocka_unit_test(test_tick_contract_form),
        cmocka_unit_test(test_tick_firm_scoped),
        cmocka_unit_test(test_tick_round_trip_all_kinds),
        cmocka_unit_test(test_tick_init_rejects),
        cmocka_unit_test(test_tick_forged_key),
        cmocka_unit_test(test_tick_missing_fields),
        cmocka_unit_test(test_tick_wrong_types),
        cmocka_unit_test(test_tick_bad_values),
        cmocka_unit_test(test_tick_not_json),
        cmocka_unit_test(test_tick_truncated_and_length),
        cmocka_unit_test(test_tick_extra_fields_ignored),
        cmocka_unit_test(test_event_type_names),
        cmocka_unit_test(test_event_contract_form),
        cmocka_unit_test(test_event_round_trip_all_types),
        cmocka_unit_test(test_event_builders_reject),
        cmocka_unit_test(test_event_missing_fields),
        cmocka_unit_test(test_event_bad_fields),
        cmocka_unit_test(test_event_not_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
