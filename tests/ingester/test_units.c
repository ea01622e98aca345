/* test_units.c: Stripe-Signature parsing and verification edge cases, the
 * secret list, the envelope check and routing table (and its JSON scanner),
 * the shape of Stripe ids (common/stripe_id.c) and the refusal of events
 * carrying other ids, the start-up refusals of the body deadline, buffer
 * cap and admin listener settings (exit 2 naming the variable), the
 * metrics registry, and a cross-check of the test signer against the
 * fixtures' sign.sh. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "ledgerline/metrics.h"
#include "ledgerline/stripe_id.h"
#include "route.h"
#include "signature.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static signature_result parse(const char *h, signature_header *out)
{
    return signature_parse(h, strlen(h), out);
}

static void test_parse_edges(void **state)
{
    (void)state;
    signature_header h;
    assert_int_equal(parse("t=1700000000,v1=" HEX_A, &h), SIGNATURE_OK);
    assert_int_equal(h.t, 1700000000);
    assert_int_equal(h.nv1, 1);
    assert_int_equal(h.v1[0][0], 0xaa);
    /* several v1, unknown schemes, v0, any order, spaces around items */
    assert_int_equal(parse(" v0=" HEX_A " , v1=" HEX_A ",x9=whatever, t=5 ,v1=" HEX_B " ", &h),
                     SIGNATURE_OK);
    assert_int_equal(h.t, 5);
    assert_int_equal(h.nv1, 2);
    assert_int_equal(h.v1[1][31], 0xbb);
    /* v1 values that are not 64 hex digits are skipped, not fatal */
    assert_int_equal(parse("t=5,v1=abc,v1=" HEX_A, &h), SIGNATURE_OK);
    assert_int_equal(h.nv1, 1);
    assert_int_equal(parse("t=5,v1=abc", &h), SIGNATURE_NO_V1);
    assert_int_equal(parse("t=5,v1=" HEX_A "00", &h), SIGNATURE_NO_V1);
    assert_int_equal(parse("t=5,v1="
                           "zz" HEX_A,
                           &h),
                     SIGNATURE_NO_V1);
    /* 64 characters with a non-hex one inside (found by the fuzzer) */
    assert_int_equal(
        parse("t=5,v1=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaiaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &h),
        SIGNATURE_NO_V1);
    assert_int_equal(parse("t=5,v0=" HEX_A, &h), SIGNATURE_NO_V1);
    assert_int_equal(parse("t=5", &h), SIGNATURE_NO_V1);
    /* missing, duplicate, empty, non-numeric, signed, huge t */
    assert_int_equal(parse("v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=1,t=2,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=abc,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=-5,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=+5,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=1.5,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=99999999999999999999999,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=999999999999999999,v1=" HEX_A, &h), SIGNATURE_OK); /* 18 digits */
    /* structure */
    assert_int_equal(parse("", &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse(",", &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=5,,v1=" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=5,v1=" HEX_A ",", &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=5,v1", &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=5,=x", &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("garbage", &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=5,v1 =" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=5,v1=\t" HEX_A, &h), SIGNATURE_MALFORMED);
    assert_int_equal(parse("t=5,v1=" HEX_A "\x01", &h), SIGNATURE_MALFORMED);
    assert_int_equal(signature_parse(NULL, 0, &h), SIGNATURE_MISSING);
    /* embedded NUL within the given length */
    assert_int_equal(signature_parse("t=5\0,v1=" HEX_A, 9 + 64, &h), SIGNATURE_MALFORMED);
    /* too many v1 */
    char many[2048] = "t=5";
    for (int i = 0; i <= SIGNATURE_MAX_V1; i++)
        strcat(many, ",v1=" HEX_A);
    assert_int_equal(parse(many, &h), SIGNATURE_MALFORMED);
    /* too long */
    char *longh = malloc(SIGNATURE_HEADER_MAX + 2);
    memset(longh, 'x', SIGNATURE_HEADER_MAX + 1);
    memcpy(longh, "t=5,x=", 6);
    longh[SIGNATURE_HEADER_MAX + 1] = '\0';
    assert_int_equal(parse(longh, &h), SIGNATURE_MALFORMED);
    free(longh);
}

static void test_verify(void **state)
{
    (void)state;
    signature_secrets s;
    char err[256];
    assert_int_equal(signature_secrets_parse(" whsec_one , whsec_two", &s, err, sizeof err), 0);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.secret[1], "whsec_two");
    const char body[] = "{\"id\":\"evt_1\",\"type\":\"x\"}";
    int64_t now = 1700000000;
    char sig[256], hex1[65], hex2[65], mine[65];
    h_sign("whsec_two", now, body, sizeof body - 1, sig, sizeof sig);
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now, 300), SIGNATURE_OK);
    /* the module's own HMAC agrees with the test's */
    h_sign_hex("whsec_one", now, body, sizeof body - 1, hex1);
    assert_int_equal(signature_compute_hex("whsec_one", 9, now, body, sizeof body - 1, mine), 0);
    assert_string_equal(hex1, mine);
    /* tolerance both ways, inclusive at the edge */
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now + 300, 300),
                     SIGNATURE_OK);
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now - 300, 300),
                     SIGNATURE_OK);
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now + 301, 300),
                     SIGNATURE_STALE);
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now - 301, 300),
                     SIGNATURE_FUTURE);
    /* huge t is simply far in the future */
    assert_int_equal(
        signature_verify("t=999999999999999999,v1=" HEX_A, body, sizeof body - 1, &s, now, 300),
        SIGNATURE_FUTURE);
    assert_int_equal(signature_verify("t=0,v1=" HEX_A, body, sizeof body - 1, &s, now, 300),
                     SIGNATURE_STALE);
    /* any v1 may match; the wrong ones around it do not matter */
    h_sign_hex("whsec_other", now, body, sizeof body - 1, hex2);
    h_sign_hex("whsec_one", now, body, sizeof body - 1, hex1);
    snprintf(sig, sizeof sig, "t=%lld,v1=%s,v1=%s", (long long)now, hex2, hex1);
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now, 300), SIGNATURE_OK);
    snprintf(sig, sizeof sig, "t=%lld,v1=%s", (long long)now, hex2);
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now, 300),
                     SIGNATURE_MISMATCH);
    /* upper-case hex of the right digest is the same digest */
    for (char *p = hex1; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    snprintf(sig, sizeof sig, "t=%lld,v1=%s", (long long)now, hex1);
    assert_int_equal(signature_verify(sig, body, sizeof body - 1, &s, now, 300), SIGNATURE_OK);
    assert_int_equal(signature_verify(NULL, body, sizeof body - 1, &s, now, 300),
                     SIGNATURE_MISSING);
    signature_secrets_free(&s);

    assert_int_equal(signature_secrets_parse("whsec_a,,whsec_b", &s, err, sizeof err), -1);
    assert_null(strstr(err, "whsec_a"));
    assert_int_equal(signature_secrets_parse(" ", &s, err, sizeof err), -1);
    assert_int_equal(signature_secrets_parse("a,b,c,d,e,f,g,h,i", &s, err, sizeof err), -1);
}

/* sign.sh and this test's signer produce the same header. */
static void test_matches_sign_sh(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sh '%s/sign.sh' '%s/payment_intent.succeeded.json' whsec_test 1700000000",
             LL_FIXTURES_DIR, LL_FIXTURES_DIR);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = "";
    char *got = fgets(line, sizeof line, p);
    int st = pclose(p);
    if (got == NULL || st != 0)
        skip(); /* no openssl binary */
    line[strcspn(line, "\n")] = '\0';
    size_t len;
    char *body = h_fixture("payment_intent.succeeded.json", &len);
    char mine[256];
    h_sign("whsec_test", 1700000000, body, len, mine, sizeof mine);
    assert_string_equal(line, mine);
    free(body);
}

static int route(const char *json, route_event *ev, char *err)
{
    return route_event_parse(json, strlen(json), ev, err, 200);
}

static void test_route(void **state)
{
    (void)state;
    route_event ev;
    char err[200];
    assert_int_equal(route("{\"id\":\"evt_1\",\"type\":\"payment_intent.processing\",\"data\":"
                           "{\"object\":{\"id\":\"pi_9\"}}}",
                           &ev, err),
                     0);
    assert_int_equal(ev.dest, ROUTE_PAYMENTS);
    assert_string_equal(ev.key, "pi_9");
    /* invoice: its payment_intent, expanded or not, else the invoice id */
    assert_int_equal(route("{\"id\":\"e_1\",\"type\":\"invoice.payment_failed\",\"data\":"
                           "{\"object\":{\"id\":\"in_1\",\"payment_intent\":{\"id\":\"pi_x\"}}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.key, "pi_x");
    assert_int_equal(route("{\"id\":\"evt_1\",\"type\":\"invoice.payment_succeeded\",\"data\":"
                           "{\"object\":{\"id\":\"in_1\",\"payment_intent\":null}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.key, "in_1");
    /* disputes by charge; the funds_reinstated type is routed too */
    assert_int_equal(route("{\"id\":\"e_1\",\"type\":\"charge.dispute.funds_reinstated\",\"data\":"
                           "{\"object\":{\"id\":\"dp_1\",\"charge\":\"ch_7\"}}}",
                           &ev, err),
                     0);
    assert_int_equal(ev.dest, ROUTE_DISPUTES);
    assert_string_equal(ev.key, "ch_7");
    assert_int_equal(route("{\"id\":\"evt_1\",\"type\":\"charge.refunded\",\"data\":"
                           "{\"object\":{\"id\":\"ch_8\"}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.key, "ch_8");
    /* no data at all: keyed by the event id rather than refused */
    assert_int_equal(route("{\"id\":\"evt_z\",\"type\":\"charge.dispute.closed\"}", &ev, err), 0);
    assert_string_equal(ev.key, "evt_z");
    /* other types are ignored, including near misses */
    const char *ignored[] = {"customer.created",         "charge.succeeded",
                             "payment_intent.created",   "charge.dispute",
                             "PAYMENT_INTENT.SUCCEEDED", "payment_intent.succeeded.extra"};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"id\":\"evt_1\",\"type\":\"%s\"}", ignored[i]);
        assert_int_equal(route(json, &ev, err), 0);
        assert_int_equal(ev.dest, ROUTE_IGNORED);
    }
    /* refusals */
    assert_int_equal(route("nope", &ev, err), -1);
    assert_int_equal(route("\"str\"", &ev, err), -1);
    assert_int_equal(route("{\"id\":\"evt_1\"}", &ev, err), -1);
    assert_int_equal(route("{\"type\":\"customer.created\"}", &ev, err), -1);
    assert_int_equal(route("{\"id\":\"has space\",\"type\":\"customer.created\"}", &ev, err), -1);
    assert_int_equal(route("{\"id\":\"e_1\",\"id\":\"f\",\"type\":\"customer.created\"}", &ev, err),
                     -1);
    assert_int_equal(route_event_parse("{\"id\":\"e_1\",\"type\":\"x\"}\0junk", 30, &ev, err, 200),
                     -1);
    char big[600];
    snprintf(big, sizeof big, "{\"id\":\"%0300d\",\"type\":\"customer.created\"}", 1);
    assert_int_equal(route(big, &ev, err), -1);
}

/* The envelope's own JSON scanner (route.c): strict RFC 8259, UTF-8,
 * escapes, duplicate keys after decoding, nesting, and the values routing
 * reads through escapes. */
static void test_route_json(void **state)
{
    (void)state;
    route_event ev;
    char err[200];
    /* valid documents with every kind of value */
    assert_int_equal(route("  {\"id\":\"evt_1\",\"type\":\"x\",\"a\":[1,-0.5,2e10,1E-3,true,false,"
                           "null,{},[],\"s\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"]}\r\n",
                           &ev, err),
                     0);
    /* integers beyond int64 are valid JSON (jansson refused them) */
    assert_int_equal(route("{\"id\":\"evt_1\",\"type\":\"x\",\"n\":123456789012345678901234567890,"
                           "\"r\":1e999}",
                           &ev, err),
                     0);
    /* raw UTF-8 inside strings */
    assert_int_equal(
        route("{\"id\":\"e_1\",\"type\":\"x\",\"d\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", &ev, err),
        0);
    /* escapes are decoded before the checks and the routing */
    assert_int_equal(route("{\"\\u0069d\":\"evt\\u005f1\",\"type\":\"charge.refunded\",\"data\":"
                           "{\"object\":{\"i\\u0064\":\"ch\\u005f1\"}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.id, "evt_1");
    assert_string_equal(ev.key, "ch_1");
    assert_int_equal(ev.dest, ROUTE_DISPUTES);
    assert_int_equal(ev.known, 10);
    /* a decoded id that is not printable ASCII is refused */
    assert_int_equal(route("{\"id\":\"e\\u00e9\",\"type\":\"x\"}", &ev, err), -1);
    assert_non_null(strstr(err, "\"id\""));
    assert_int_equal(route("{\"id\":\"e\\n\",\"type\":\"x\"}", &ev, err), -1);
    /* an expanded charge object gives its id; a number does not */
    assert_int_equal(route("{\"id\":\"e_1\",\"type\":\"charge.dispute.created\",\"data\":"
                           "{\"object\":{\"id\":\"dp_1\",\"charge\":{\"id\":\"ch_2\","
                           "\"x\":[{\"id\":\"no\"}]}}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.key, "ch_2");
    assert_int_equal(route("{\"id\":\"e_1\",\"type\":\"charge.dispute.created\",\"data\":"
                           "{\"object\":{\"id\":\"dp_1\",\"charge\":7}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.key, "dp_1");
    /* a nested "id" elsewhere is not the event's id */
    assert_int_equal(route("{\"x\":{\"id\":\"inner\"},\"type\":\"x\"}", &ev, err), -1);

    /* refusals: every one says "not valid JSON" */
    const char *bad[] = {
        "{",
        "{}}",
        "{\"id\":\"evt_1\",\"type\":\"x\",}",
        "{\"id\":\"evt_1\",\"type\":\"x\" \"a\":1}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":[1,]}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":01}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":1.}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":-}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":1e}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":+1}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":tru}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":NaN}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":'s'}",
        "{id:\"e\",\"type\":\"x\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\\x\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\\u12\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\\u0000\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\\ud800\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\\ud800\\u0041\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\\udc00\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"tab\there\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\xc3\"}",             /* truncated */
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\xc0\xaf\"}",         /* overlong */
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\xed\xa0\x80\"}",     /* surrogate */
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\xf4\x90\x80\x80\"}", /* > U+10FFFF */
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"\xff\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\"} {}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":\"unterminated}",
        /* duplicates, also after decoding and inside nested objects */
        "{\"id\":\"evt_1\",\"type\":\"x\",\"i\\u0064\":\"f\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"data\":{\"object\":{\"a\":1,\"b\":2,\"a\":3}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (route(bad[i], &ev, err) != -1 || strstr(err, "not valid JSON") == NULL)
            fail_msg("accepted or wrong error for %s: %s", bad[i], err);
    }
    assert_int_equal(route("{\"id\":\"evt_1\",\"type\":\"x\",\"a\":1,\"a\":1}", &ev, err), -1);
    assert_non_null(strstr(err, "duplicate key"));

    /* many keys: the duplicate is found by sorting, and a clean one passes */
    size_t cap = 200000;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap, "{\"id\":\"evt_1\",\"type\":\"x\"");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(big + n, cap - n, ",\"k%d\":%d", i, i);
    big[n] = '}';
    assert_int_equal(route_event_parse(big, n + 1, &ev, err, sizeof err), 0);
    n += (size_t)snprintf(big + n, cap - n, ",\"k\\u00342\":0}"); /* "k42" again */
    assert_int_equal(route_event_parse(big, n, &ev, err, sizeof err), -1);
    assert_non_null(strstr(err, "duplicate key"));

    /* nesting: 512 levels are fine, 513 are not */
    n = 0;
    n += (size_t)snprintf(big, cap, "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":");
    for (int i = 0; i < 511; i++)
        big[n++] = '[';
    for (int i = 0; i < 511; i++)
        big[n++] = ']';
    big[n++] = '}';
    assert_int_equal(route_event_parse(big, n, &ev, err, sizeof err), 0);
    n = 0;
    n += (size_t)snprintf(big, cap, "{\"id\":\"evt_1\",\"type\":\"x\",\"a\":");
    for (int i = 0; i < 512; i++)
        big[n++] = '[';
    for (int i = 0; i < 512; i++)
        big[n++] = ']';
    big[n++] = '}';
    assert_int_equal(route_event_parse(big, n, &ev, err, sizeof err), -1);
    assert_non_null(strstr(err, "nested too deeply"));
    free(big);
}

static bool id_ok(const char *s)
{
    return stripe_id_valid(s, strlen(s));
}

/* ^[a-z]{1,12}_[A-Za-z0-9_]{1,255}$ (CONTRACT.md, Hardening). */
static void test_stripe_id(void **state)
{
    (void)state;
    const char *good[] = {"evt_1PgafzB7WZ01zgkWd7Nc0aQe",
                          "pi_1PgafyB7WZ01zgkWSjxsAJo3",
                          "ch_1PgafuB7WZ01zgkWXYmPNZs8",
                          "cus_QXg1o8vcGmoR32",
                          "pm_card_visa",
                          "txn_1PioQfB7WZ01zgkWc3Lx8YvT",
                          "re_FLT00000001a",
                          "a_b",
                          "a__",
                          "abcdefghijkl_x",
                          "evt_T123x4x1700000000"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!id_ok(good[i]))
            fail_msg("%s refused", good[i]);
    const char *bad[] = {"",
                         "e",
                         "evt",
                         "evt_",
                         "_1",
                         "__",
                         "Evt_1",
                         "EVT_1",
                         "1pi_x",
                         "abcdefghijklm_x",
                         "evt-1",
                         "evt_1-2",
                         "ch/1",
                         "pi_x/../../v1/charges",
                         "pi_x?expand=y",
                         "pi_%2F",
                         "evt_1 ",
                         " evt_1",
                         "evt_1\n",
                         "evt_1'",
                         "evt_1;DROP",
                         "\xc3\xa9vt_1",
                         "evt_\xc3\xa9",
                         "evt.1",
                         "evt_1.2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (id_ok(bad[i]))
            fail_msg("'%s' accepted", bad[i]);
    /* lengths: a 255-character rest and a 12-letter prefix, one more each */
    char id[STRIPE_ID_SHAPE_MAX + 8];
    memcpy(id, "abcdefghijkl_", 13);
    memset(id + 13, 'Z', 255);
    assert_true(stripe_id_valid(id, 13 + 255));
    assert_int_equal(13 + 255, STRIPE_ID_SHAPE_MAX);
    id[13 + 255] = 'Z';
    assert_false(stripe_id_valid(id, 13 + 256));
    /* the length is what counts: a NUL inside is refused, a prefix of a
     * longer buffer is checked alone */
    assert_false(stripe_id_valid("evt_1\0x", 7));
    assert_true(stripe_id_valid("evt_1!junk", 5));
    assert_false(stripe_id_valid("evt_1!junk", 6));
    assert_false(stripe_id_valid(NULL, 0));
}

/* Events whose id or routing key is not a Stripe id are refused, naming
 * the field; a key field that holds no string still falls back. */
static void test_route_ids(void **state)
{
    (void)state;
    route_event ev;
    char err[200];
    static const struct {
        const char *json, *words;
    } refused[] = {
        {"{\"id\":\"evt-1\",\"type\":\"customer.created\"}", "\"id\" is not a Stripe id"},
        {"{\"id\":\"EVT_1\",\"type\":\"payment_intent.succeeded\"}", "\"id\" is not a Stripe id"},
        {"{\"id\":\"evt_1/../x\",\"type\":\"charge.refunded\"}", "\"id\" is not a Stripe id"},
        {"{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
         "{\"id\":\"pi_1/../../v1/refunds\"}}}",
         "data.object.id is not a Stripe id"},
        {"{\"id\":\"evt_1\",\"type\":\"charge.refunded\",\"data\":{\"object\":{\"id\":\"\"}}}",
         "data.object.id is not a Stripe id"},
        {"{\"id\":\"evt_1\",\"type\":\"invoice.payment_failed\",\"data\":{\"object\":"
         "{\"id\":\"in_1\",\"payment_intent\":\"pi 1\"}}}",
         "data.object.payment_intent is not a Stripe id"},
        {"{\"id\":\"evt_1\",\"type\":\"invoice.payment_failed\",\"data\":{\"object\":"
         "{\"id\":\"in_1\",\"payment_intent\":{\"id\":\"pi_1?expand[]=x\"}}}}",
         "data.object.payment_intent is not a Stripe id"},
        {"{\"id\":\"evt_1\",\"type\":\"invoice.payment_succeeded\",\"data\":{\"object\":"
         "{\"id\":\"in_1'--\",\"payment_intent\":null}}}",
         "data.object.id is not a Stripe id"},
        {"{\"id\":\"evt_1\",\"type\":\"charge.dispute.created\",\"data\":{\"object\":"
         "{\"id\":\"dp_1\",\"charge\":\"ch_1\\u0000\"}}}",
         "not valid JSON"},
        {"{\"id\":\"evt_1\",\"type\":\"charge.dispute.created\",\"data\":{\"object\":"
         "{\"id\":\"dp_1\",\"charge\":\"ch_\\u00e9\"}}}",
         "data.object.charge is not a Stripe id"},
        {"{\"id\":\"evt_1\",\"type\":\"charge.dispute.closed\",\"data\":{\"object\":"
         "{\"id\":\"dp_1\",\"charge\":{\"id\":\"ch_1%2F\"}}}}",
         "data.object.charge is not a Stripe id"},
        /* the charge is a number: falls back to the dispute id, which is bad */
        {"{\"id\":\"evt_1\",\"type\":\"charge.dispute.closed\",\"data\":{\"object\":"
         "{\"id\":\"dp 1\",\"charge\":7}}}",
         "data.object.id is not a Stripe id"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (route(refused[i].json, &ev, err) != -1 || strstr(err, refused[i].words) == NULL)
            fail_msg("%s: accepted or wrong error (%s)", refused[i].json, err);
    }
    /* the longest id of the shape is an id, and keys the event without an object */
    char big[600], id[STRIPE_ID_SHAPE_MAX + 2];
    memcpy(id, "abcdefghijkl_", 13);
    memset(id + 13, 'q', 255);
    id[STRIPE_ID_SHAPE_MAX] = '\0';
    snprintf(big, sizeof big, "{\"id\":\"%s\",\"type\":\"charge.dispute.closed\"}", id);
    assert_int_equal(route(big, &ev, err), 0);
    assert_string_equal(ev.id, id);
    assert_string_equal(ev.key, id);
    id[STRIPE_ID_SHAPE_MAX] = 'q';
    id[STRIPE_ID_SHAPE_MAX + 1] = '\0';
    snprintf(big, sizeof big, "{\"id\":\"%s\",\"type\":\"charge.dispute.closed\"}", id);
    assert_int_equal(route(big, &ev, err), -1);
    /* test tokens are ids; an expanded object without a string id falls back */
    assert_int_equal(route("{\"id\":\"evt_1\",\"type\":\"invoice.payment_failed\",\"data\":"
                           "{\"object\":{\"id\":\"in_1\",\"payment_intent\":{\"id\":null}}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.key, "in_1");
    assert_int_equal(route("{\"id\":\"evt_1\",\"type\":\"charge.refunded\",\"data\":"
                           "{\"object\":{\"id\":\"ch_test_card_visa\"}}}",
                           &ev, err),
                     0);
    assert_string_equal(ev.key, "ch_test_card_visa");
    /* every fixture's event id and routing key are ids */
    const char *fixtures[] = {"payment_intent.succeeded.json",
                              "payment_intent.payment_failed.json",
                              "invoice.payment_succeeded.json",
                              "invoice.payment_failed.json",
                              "charge.refunded.json",
                              "charge.refunded.partial.json",
                              "charge.dispute.created.json",
                              "charge.dispute.updated.json",
                              "charge.dispute.closed.won.json",
                              "charge.dispute.closed.lost.json",
                              "charge.dispute.funds_withdrawn.json",
                              "customer.created.json"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        size_t len;
        char *body = h_fixture(fixtures[i], &len);
        assert_non_null(body);
        if (route_event_parse(body, len, &ev, err, sizeof err) != 0)
            fail_msg("%s refused: %s", fixtures[i], err);
        assert_true(id_ok(ev.id));
        assert_true(ev.dest == ROUTE_IGNORED || id_ok(ev.key));
        free(body);
    }
}

/* Runs the ingester with exactly env; its exit status, and its stderr in
 * out. */
static int run_ingester(const char *const *env, char *out, size_t outlen)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        char *argv[] = {(char *)LL_INGESTER_BIN, NULL};
        execve(LL_INGESTER_BIN, argv, (char *const *)env);
        _exit(127);
    }
    close(pipefd[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(pipefd[0], out + got, outlen - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(pipefd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The settings of the hardening are validated at start: exit 2, one line
 * naming the variable. */
static void test_config_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *var, *value, *extra;
    } bad[] = {
        {"INGESTER_BODY_TIMEOUT", "INGESTER_BODY_TIMEOUT=0", NULL},
        {"INGESTER_BODY_TIMEOUT", "INGESTER_BODY_TIMEOUT=10s", NULL},
        {"INGESTER_BODY_TIMEOUT", "INGESTER_BODY_TIMEOUT=3601", NULL},
        /* the cap must hold at least one body of INGESTER_MAX_BODY */
        {"INGESTER_MAX_BUFFERED", "INGESTER_MAX_BUFFERED=1048575", NULL},
        {"INGESTER_MAX_BUFFERED", "INGESTER_MAX_BUFFERED=lots", NULL},
        {"INGESTER_MAX_BUFFERED", "INGESTER_MAX_BUFFERED=4096", "INGESTER_MAX_BODY=8192"},
        {"INGESTER_ADMIN_LISTEN", "INGESTER_ADMIN_LISTEN=metrics", NULL},
        {"INGESTER_ADMIN_LISTEN", "INGESTER_ADMIN_LISTEN=127.0.0.1:0", NULL},
        {"INGESTER_ADMIN_LISTEN", "INGESTER_ADMIN_LISTEN=127.0.0.1:8080",
         "INGESTER_LISTEN=127.0.0.1:8080"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {"STRIPE_WEBHOOK_SECRET=whsec_0123456789abcdefABCDEF",
                             "KAFKA_BROKERS=127.0.0.1:1",
                             "LOG_LEVEL=error",
                             bad[i].value,
                             bad[i].extra,
                             NULL};
        char out[2048];
        int st = run_ingester(env, out, sizeof out);
        if (st != 2 || strstr(out, bad[i].var) == NULL ||
            strstr(out, "configuration error") == NULL)
            fail_msg("%s%s%s: exit %d, %s", bad[i].value, bad[i].extra ? " " : "",
                     bad[i].extra ? bad[i].extra : "", st, out);
    }
}

static void test_metrics(void **state)
{
    (void)state;
    metrics_registry *m = metrics_new();
    assert_int_equal(metrics_declare(m, "a_total", METRICS_COUNTER, "A\nthing \\ here."), 0);
    assert_int_equal(metrics_declare(m, "a_total", METRICS_COUNTER, "dup"), -1);
    assert_int_equal(metrics_declare(m, "9bad", METRICS_COUNTER, "x"), -1);
    assert_int_equal(metrics_declare(m, "lat_seconds", METRICS_HISTOGRAM, "Latency."), 0);
    assert_int_equal(metrics_counter_add(m, "a_total", 2, "k", "v\"1\\\n", NULL), 0);
    assert_int_equal(metrics_counter_add(m, "a_total", 3, "k", "v\"1\\\n", NULL), 0);
    assert_int_equal(metrics_counter_add(m, "a_total", 1, NULL), 0);
    assert_int_equal(metrics_counter_add(m, "missing", 1, NULL), -1);
    assert_int_equal(metrics_counter_add(m, "lat_seconds", 1, NULL), -1);
    assert_int_equal(metrics_counter_add(m, "a_total", 1, "bad-key", "v", NULL), -1);
    assert_int_equal(metrics_counter_get(m, "a_total", "k", "v\"1\\\n", NULL), 5);
    assert_int_equal(metrics_histogram_observe_us(m, "lat_seconds", 4000, NULL), 0);
    assert_int_equal(metrics_histogram_observe_us(m, "lat_seconds", 5000, NULL), 0);
    assert_int_equal(metrics_histogram_observe_us(m, "lat_seconds", 20000000, NULL), 0);
    size_t len;
    char *text = metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    const char *want[] = {
        "# HELP a_total A\\nthing \\\\ here.\n# TYPE a_total counter\n",
        "a_total{k=\"v\\\"1\\\\\\n\"} 5\n",
        "a_total 1\n",
        "# TYPE lat_seconds histogram\n",
        "lat_seconds_bucket{le=\"0.0025\"} 0\n",
        "lat_seconds_bucket{le=\"0.005\"} 2\n",
        "lat_seconds_bucket{le=\"10\"} 2\n",
        "lat_seconds_bucket{le=\"+Inf\"} 3\n",
        "lat_seconds_sum 20.009000\n",
        "lat_seconds_count 3\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("missing '%s' in:\n%s", want[i], text);
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_edges),     cmocka_unit_test(test_verify),
        cmocka_unit_test(test_matches_sign_sh), cmocka_unit_test(test_route),
        cmocka_unit_test(test_route_json),      cmocka_unit_test(test_stripe_id),
        cmocka_unit_test(test_route_ids),       cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
