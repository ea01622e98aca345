/* route.c: envelope validation and event type -> topic + key (route.h).
 *
 * The body is checked by a strict one-pass JSON scanner of our own rather
 * than by building a jansson tree: the profile of the benchmark showed the
 * tree (a malloc per value, a hash table per object) as the largest user
 * space cost per request. The scanner validates the whole document (RFC 8259
 * grammar, UTF-8, escapes and surrogate pairs, no \u0000, no duplicate keys
 * in any object, nesting at most ROUTE_JSON_MAX_DEPTH) and on the way keeps
 * only the few values routing needs: id, type, data.object and its id,
 * payment_intent and charge (each possibly an expanded object's id). It
 * allocates nothing for a usual Stripe event.
 *
 * Differences from jansson's json_loadb(JSON_REJECT_DUPLICATES), on purpose:
 * integers outside int64 and reals outside double are valid JSON and are
 * accepted (the value is passed on byte for byte); nesting is limited to
 * ROUTE_JSON_MAX_DEPTH levels instead of 2048.
 */
#include "route.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/stripe_id.h"
#include "ledgerline/topics.h"
#include "ledgerline/vocab.h"

/* The routed types are vocab.h's LL_STRIPE_EVENT_MAP, in its order. */
const char *const route_known_types[] = {
#define LL_X(tok, type, stream, object, family) type,
    LL_STRIPE_EVENT_MAP(LL_X)
#undef LL_X
        NULL};

static route_dest route_dest_of(stripe_stream s)
{
    return s == STRIPE_STREAM_PAYMENTS ? ROUTE_PAYMENTS : ROUTE_DISPUTES;
}

const char *route_topic(route_dest d)
{
    switch (d) {
    case ROUTE_PAYMENTS: return TOPIC_STRIPE_PAYMENTS;
    case ROUTE_DISPUTES: return TOPIC_STRIPE_DISPUTES;
    case ROUTE_IGNORED: break;
    }
    return NULL;
}

/* ---- the scanner -------------------------------------------------------- */

/* Places in the document whose values routing needs. A value's slot is
 * decided by its parent's slot and its key (route_child). */
typedef enum {
    SLOT_NONE = 0,
    SLOT_ROOT,       /* the document */
    SLOT_DATA,       /* data */
    SLOT_OBJECT,     /* data.object */
    SLOT_EV_ID,      /* id */
    SLOT_EV_TYPE,    /* type */
    SLOT_OBJ_ID,     /* data.object.id */
    SLOT_OBJ_PI,     /* data.object.payment_intent */
    SLOT_OBJ_CHARGE, /* data.object.charge */
    SLOT_PI_ID,      /* data.object.payment_intent.id */
    SLOT_CHARGE_ID,  /* data.object.charge.id */
    SLOT_COUNT
} route_slot;

typedef enum { KIND_ABSENT = 0, KIND_STRING, KIND_OBJECT, KIND_OTHER } route_kind;

/* A captured string keeps up to ROUTE_CAPTURE_MAX decoded bytes: the
 * longest Stripe id or the longest type, whichever is longer. */
#define ROUTE_CAPTURE_MAX                                                                          \
    (STRIPE_ID_SHAPE_MAX > ROUTE_FIELD_MAX ? STRIPE_ID_SHAPE_MAX : ROUTE_FIELD_MAX)

typedef struct {
    route_kind kind;
    bool usable; /* a string of 1..ROUTE_FIELD_MAX printable ASCII bytes */
    size_t len;  /* decoded length, even beyond ROUTE_CAPTURE_MAX */
    char s[ROUTE_CAPTURE_MAX + 1];
} route_capture;

/* A key of an object being scanned: bytes in the body (no escapes) or, once
 * decoded, in the arena. */
typedef struct {
    size_t off, len;
    uint64_t hash;
    bool in_arena;
} route_key;

#define ROUTE_INLINE_KEYS 64

typedef struct {
    const unsigned char *b;
    size_t len, pos;
    const char *why; /* first error */
    route_key inline_keys[ROUTE_INLINE_KEYS];
    route_key *keys; /* a stack: the keys of every open object */
    size_t nkeys, capkeys;
    char *arena; /* decoded bytes of keys that contain escapes */
    size_t arena_len, arena_cap;
    route_capture cap[SLOT_COUNT];
} route_json;

/* Nesting limit (objects and arrays), so the recursion stays shallow. */
#define ROUTE_JSON_MAX_DEPTH 512

/* A string byte needing no attention: printable ASCII but '"' and '\\'. */
static inline bool route_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static int route_json_fail(route_json *p, const char *why)
{
    if (p->why == NULL)
        p->why = why;
    return -1;
}

/* The same, pointing the error at byte `at`. */
static int route_json_fail_at(route_json *p, size_t at, const char *why)
{
    p->pos = at;
    return route_json_fail(p, why);
}

static void route_ws(route_json *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->b[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        p->pos++;
    }
}

static int route_hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF) at s, or 0. */
static size_t route_utf8(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* Decoded output of a string: its FNV-1a hash and/or its bytes, up to cap
 * (len counts every byte, even those that did not fit). */
typedef struct {
    bool want_hash;
    uint64_t hash;
    char *out;
    size_t cap, len;
} route_sink;

static void route_emit(route_sink *k, const unsigned char *s, size_t n)
{
    if (k == NULL)
        return;
    if (k->want_hash)
        for (size_t i = 0; i < n; i++)
            k->hash = (k->hash ^ s[i]) * 0x100000001b3ull;
    if (k->out != NULL && k->len < k->cap)
        memcpy(k->out + k->len, s, n < k->cap - k->len ? n : k->cap - k->len);
    k->len += n;
}

/* Scans a string; p->pos is at the opening quote. Validates it and passes
 * its decoded bytes to sink (may be NULL). On return p->pos is past the
 * closing quote; [*start, *end) are its raw bytes; *escaped says whether any
 * escape occurred. */
static int route_string(route_json *p, route_sink *sink, size_t *start, size_t *end, bool *escaped)
{
    const unsigned char *b = p->b;
    size_t i = ++p->pos;
    *start = i;
    *escaped = false;
    size_t run = i; /* first byte not yet given to the sink */
    for (;;) {
        while (i < p->len && route_plain(b[i]))
            i++;
        if (i >= p->len)
            return route_json_fail_at(p, i, "unterminated string");
        unsigned char c = b[i];
        if (c == '"') {
            route_emit(sink, b + run, i - run);
            *end = i;
            p->pos = i + 1;
            return 0;
        }
        if (c < 0x20)
            return route_json_fail_at(p, i, "control character in string");
        if (c >= 0x80) {
            size_t n = route_utf8(b + i, p->len - i);
            if (n == 0)
                return route_json_fail_at(p, i, "invalid UTF-8");
            i += n;
            continue;
        }
        /* a backslash */
        route_emit(sink, b + run, i - run);
        *escaped = true;
        if (i + 1 >= p->len)
            return route_json_fail_at(p, i, "unterminated string");
        unsigned char e = b[i + 1], one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': one = 0; break;
        default: return route_json_fail_at(p, i, "invalid escape in string");
        }
        if (e != 'u') {
            route_emit(sink, &one, 1);
            i += 2;
            run = i;
            continue;
        }
        unsigned cp, lo;
        if (p->len - i < 6 || route_hex4(b + i + 2, &cp) != 0)
            return route_json_fail_at(p, i, "invalid \\u escape in string");
        i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return route_json_fail_at(p, i, "lone low surrogate in string");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (p->len - i < 6 || b[i] != '\\' || b[i + 1] != 'u' ||
                route_hex4(b + i + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                return route_json_fail_at(p, i, "lone high surrogate in string");
            i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0)
            return route_json_fail_at(p, i, "\\u0000 in string");
        unsigned char u[4];
        size_t n;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp;
            n = 1;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6);
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12);
            u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | cp >> 18);
            u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        route_emit(sink, u, n);
        run = i;
    }
}

static int route_number(route_json *p)
{
    const unsigned char *b = p->b;
    size_t i = p->pos, n = p->len;
    if (i < n && b[i] == '-')
        i++;
    if (i >= n || b[i] < '0' || b[i] > '9')
        return route_json_fail_at(p, i, "invalid number");
    if (b[i] == '0')
        i++;
    else
        while (i < n && b[i] >= '0' && b[i] <= '9')
            i++;
    if (i < n && b[i] == '.') {
        i++;
        if (i >= n || b[i] < '0' || b[i] > '9')
            return route_json_fail_at(p, i, "invalid number");
        while (i < n && b[i] >= '0' && b[i] <= '9')
            i++;
    }
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < n && (b[i] == '+' || b[i] == '-'))
            i++;
        if (i >= n || b[i] < '0' || b[i] > '9')
            return route_json_fail_at(p, i, "invalid number");
        while (i < n && b[i] >= '0' && b[i] <= '9')
            i++;
    }
    p->pos = i;
    return 0;
}

static int route_literal(route_json *p, const char *word, size_t wlen)
{
    if (p->len - p->pos < wlen || memcmp(p->b + p->pos, word, wlen) != 0)
        return route_json_fail(p, "unexpected character");
    p->pos += wlen;
    return 0;
}

static bool route_key_is(const char *k, size_t klen, const char *name)
{
    size_t n = strlen(name);
    return klen == n && memcmp(k, name, n) == 0;
}

/* Slot of a member, from its object's slot and its (decoded) key. */
static route_slot route_child(route_slot parent, const char *k, size_t klen)
{
    switch (parent) {
    case SLOT_ROOT:
        if (route_key_is(k, klen, "id"))
            return SLOT_EV_ID;
        if (route_key_is(k, klen, "type"))
            return SLOT_EV_TYPE;
        if (route_key_is(k, klen, "data"))
            return SLOT_DATA;
        return SLOT_NONE;
    case SLOT_DATA: return route_key_is(k, klen, "object") ? SLOT_OBJECT : SLOT_NONE;
    case SLOT_OBJECT:
        if (route_key_is(k, klen, "id"))
            return SLOT_OBJ_ID;
        if (route_key_is(k, klen, "payment_intent"))
            return SLOT_OBJ_PI;
        if (route_key_is(k, klen, "charge"))
            return SLOT_OBJ_CHARGE;
        return SLOT_NONE;
    case SLOT_OBJ_PI: return route_key_is(k, klen, "id") ? SLOT_PI_ID : SLOT_NONE;
    case SLOT_OBJ_CHARGE: return route_key_is(k, klen, "id") ? SLOT_CHARGE_ID : SLOT_NONE;
    default: return SLOT_NONE;
    }
}

static const char *route_key_bytes(const route_json *p, const route_key *k)
{
    return k->in_arena ? p->arena + k->off : (const char *)p->b + k->off;
}

typedef struct {
    const char *s;
    size_t len;
    uint64_t hash;
} route_key_view;

static int route_key_cmp(const void *a, const void *b)
{
    const route_key_view *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

/* Whether two keys among keys[from..nkeys) are equal (decoded). Small
 * objects are compared pairwise; large ones are sorted, so a body made of
 * many keys costs n log n, not n squared. */
static int route_dup_check(route_json *p, size_t from)
{
    size_t n = p->nkeys - from;
    const route_key *k = p->keys + from;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (k[i].hash == k[j].hash && k[i].len == k[j].len &&
                    memcmp(route_key_bytes(p, &k[i]), route_key_bytes(p, &k[j]), k[i].len) == 0)
                    return route_json_fail(p, "duplicate key");
        return 0;
    }
    route_key_view *v = malloc(n * sizeof *v);
    if (v == NULL)
        return route_json_fail(p, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = (route_key_view){route_key_bytes(p, &k[i]), k[i].len, k[i].hash};
    qsort(v, n, sizeof *v, route_key_cmp);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (route_key_cmp(&v[i - 1], &v[i]) == 0)
            rc = route_json_fail(p, "duplicate key");
    free(v);
    return rc;
}

static int route_push_key(route_json *p, route_key k)
{
    if (p->nkeys == p->capkeys) {
        size_t cap = p->capkeys * 2;
        route_key *nk = p->keys == p->inline_keys ? malloc(cap * sizeof *nk)
                                                  : realloc(p->keys, cap * sizeof *nk);
        if (nk == NULL)
            return route_json_fail(p, "out of memory");
        if (p->keys == p->inline_keys)
            memcpy(nk, p->inline_keys, sizeof p->inline_keys);
        p->keys = nk;
        p->capkeys = cap;
    }
    p->keys[p->nkeys++] = k;
    return 0;
}

/* Makes room for n more arena bytes. */
static int route_arena_reserve(route_json *p, size_t n)
{
    if (p->arena_cap - p->arena_len >= n)
        return 0;
    size_t cap = p->arena_cap ? p->arena_cap : 256;
    while (cap - p->arena_len < n)
        cap *= 2;
    char *a = realloc(p->arena, cap);
    if (a == NULL)
        return route_json_fail(p, "out of memory");
    p->arena = a;
    p->arena_cap = cap;
    return 0;
}

static int route_value(route_json *p, route_slot slot, unsigned depth);

static int route_object(route_json *p, route_slot slot, unsigned depth)
{
    size_t key_base = p->nkeys, arena_base = p->arena_len;
    p->pos++; /* '{' */
    route_ws(p);
    if (p->pos < p->len && p->b[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (p->pos >= p->len || p->b[p->pos] != '"')
            return route_json_fail(p, "expected a string key");
        size_t ks, ke;
        bool esc;
        route_sink hs = {.want_hash = true, .hash = 0xcbf29ce484222325ull};
        size_t at = p->pos;
        if (route_string(p, &hs, &ks, &ke, &esc) != 0)
            return -1;
        route_key k = {.off = ks, .len = hs.len, .hash = hs.hash, .in_arena = false};
        if (esc) {
            /* Rare: decode once more, into the arena (hs.len bytes). */
            if (route_arena_reserve(p, hs.len) != 0)
                return -1;
            route_sink ds = {.out = p->arena + p->arena_len, .cap = hs.len};
            size_t save = p->pos, s2, e2;
            bool esc2;
            p->pos = at;
            route_string(p, &ds, &s2, &e2, &esc2); /* validated above */
            p->pos = save;
            k.off = p->arena_len;
            k.in_arena = true;
            p->arena_len += hs.len;
        }
        if (route_push_key(p, k) != 0)
            return -1;
        route_slot child = route_child(slot, route_key_bytes(p, &k), k.len);
        route_ws(p);
        if (p->pos >= p->len || p->b[p->pos] != ':')
            return route_json_fail(p, "expected ':'");
        p->pos++;
        if (route_value(p, child, depth) != 0)
            return -1;
        route_ws(p);
        if (p->pos < p->len && p->b[p->pos] == ',') {
            p->pos++;
            route_ws(p);
            continue;
        }
        if (p->pos < p->len && p->b[p->pos] == '}') {
            p->pos++;
            break;
        }
        return route_json_fail(p, "expected ',' or '}'");
    }
    if (route_dup_check(p, key_base) != 0)
        return -1;
    p->nkeys = key_base;
    p->arena_len = arena_base;
    return 0;
}

static int route_array(route_json *p, unsigned depth)
{
    p->pos++; /* '[' */
    route_ws(p);
    if (p->pos < p->len && p->b[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (route_value(p, SLOT_NONE, depth) != 0)
            return -1;
        route_ws(p);
        if (p->pos < p->len && p->b[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->b[p->pos] == ']') {
            p->pos++;
            return 0;
        }
        return route_json_fail(p, "expected ',' or ']'");
    }
}

/* Printable ASCII, 1..ROUTE_FIELD_MAX bytes: safe as a Kafka key, header,
 * log field and metrics label. */
static bool route_field_ok(const char *s, size_t len)
{
    if (len == 0 || len > ROUTE_FIELD_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static int route_value(route_json *p, route_slot slot, unsigned depth)
{
    route_ws(p);
    if (p->pos >= p->len)
        return route_json_fail(p, "unexpected end");
    route_capture *c = &p->cap[slot];
    unsigned char ch = p->b[p->pos];
    if (ch == '{' || ch == '[') {
        if (depth >= ROUTE_JSON_MAX_DEPTH)
            return route_json_fail(p, "nested too deeply");
        c->kind = ch == '{' ? KIND_OBJECT : KIND_OTHER;
        return ch == '{' ? route_object(p, slot, depth + 1) : route_array(p, depth + 1);
    }
    if (ch == '"') {
        size_t s, e;
        bool esc;
        if (slot == SLOT_NONE || slot == SLOT_ROOT || slot == SLOT_DATA)
            return route_string(p, NULL, &s, &e, &esc);
        route_sink sink = {.out = c->s, .cap = ROUTE_CAPTURE_MAX};
        if (route_string(p, &sink, &s, &e, &esc) != 0)
            return -1;
        c->kind = KIND_STRING;
        c->len = sink.len;
        c->usable = sink.len <= ROUTE_FIELD_MAX && route_field_ok(c->s, sink.len);
        c->s[sink.len <= ROUTE_CAPTURE_MAX ? sink.len : 0] = '\0';
        return 0;
    }
    c->kind = KIND_OTHER;
    if (ch == 't')
        return route_literal(p, "true", 4);
    if (ch == 'f')
        return route_literal(p, "false", 5);
    if (ch == 'n')
        return route_literal(p, "null", 4);
    if (ch == '-' || (ch >= '0' && ch <= '9'))
        return route_number(p);
    return route_json_fail(p, "unexpected character");
}

typedef enum { REF_NONE = 0, REF_OK, REF_BAD } route_ref_status;

/* A Stripe reference: an id string, or an expanded object with an "id".
 * REF_NONE when there is no string there (absent, null, a number, an
 * object without a string id: the routing falls back), REF_BAD for a
 * string that is not a Stripe id (the event is refused). */
static route_ref_status route_ref(const route_json *p, route_slot slot, route_slot id_slot,
                                  const char **out)
{
    const route_capture *c = &p->cap[slot];
    if (c->kind == KIND_OBJECT)
        c = &p->cap[id_slot];
    if (c->kind != KIND_STRING)
        return REF_NONE;
    if (!stripe_id_valid(c->s, c->len))
        return REF_BAD;
    *out = c->s;
    return REF_OK;
}

int route_event_parse(const void *body, size_t len, route_event *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* On the stack; the inline key array is left uninitialised. */
    route_json pj;
    route_json *p = &pj;
    p->b = body;
    p->len = len;
    p->pos = 0;
    p->why = NULL;
    p->keys = p->inline_keys;
    p->capkeys = ROUTE_INLINE_KEYS;
    p->nkeys = 0;
    p->arena = NULL;
    p->arena_len = p->arena_cap = 0;
    memset(p->cap, 0, sizeof p->cap);

    int rc = -1;
    if (route_value(p, SLOT_ROOT, 0) == 0) {
        route_ws(p);
        if (p->pos != p->len)
            route_json_fail(p, "unexpected data after the document");
    }
    if (p->why != NULL) {
        ll_failf(err, errlen, "body is not valid JSON: %s at byte %zu", p->why, p->pos);
        goto out;
    }
    if (p->cap[SLOT_ROOT].kind != KIND_OBJECT) {
        ll_failf(err, errlen, "body is not a JSON object");
        goto out;
    }
    const route_capture *id = &p->cap[SLOT_EV_ID], *type = &p->cap[SLOT_EV_TYPE];
    if (id->kind != KIND_STRING) {
        ll_failf(err, errlen, "event has no valid \"id\" (a string)");
        goto out;
    }
    if (!stripe_id_valid(id->s, id->len)) {
        ll_failf(err, errlen, "event \"id\" is not a Stripe id (" STRIPE_ID_PATTERN ")");
        goto out;
    }
    if (type->kind != KIND_STRING || !type->usable) {
        ll_failf(err, errlen, "event has no valid \"type\" (non-empty printable string)");
        goto out;
    }
    memcpy(out->id, id->s, strlen(id->s) + 1);
    memcpy(out->type, type->s, strlen(type->s) + 1);
    stripe_event_type t = stripe_event_type_of(out->type);
    out->known = t; /* STRIPE_EVENT_UNKNOWN is -1 */
    if (t == STRIPE_EVENT_UNKNOWN) {
        out->dest = ROUTE_IGNORED;
        rc = 0;
        goto out;
    }
    out->dest = route_dest_of(stripe_event_stream(t));
    /* The field that keys the event, then data.object.id, then the event
     * id. A field that holds a string must hold a Stripe id. */
    route_slot slot = SLOT_OBJECT, id_slot = SLOT_OBJ_ID;
    const char *field = "data.object.id";
    stripe_object object = stripe_event_object(t);
    if (object == STRIPE_OBJECT_INVOICE) { /* its PaymentIntent, else the invoice */
        slot = SLOT_OBJ_PI;
        id_slot = SLOT_PI_ID;
        field = "data.object.payment_intent";
    } else if (object == STRIPE_OBJECT_DISPUTE) { /* the dispute's charge */
        slot = SLOT_OBJ_CHARGE;
        id_slot = SLOT_CHARGE_ID;
        field = "data.object.charge";
    } /* a PaymentIntent, a charge or a refund: the object itself */
    const char *key = NULL;
    route_ref_status st = route_ref(p, slot, id_slot, &key);
    if (st == REF_NONE && slot != SLOT_OBJECT) {
        field = "data.object.id";
        st = route_ref(p, SLOT_OBJECT, SLOT_OBJ_ID, &key);
    }
    if (st == REF_BAD) {
        ll_failf(err, errlen, "event's %s is not a Stripe id (%s)", field, STRIPE_ID_PATTERN);
        goto out;
    }
    if (st == REF_NONE)
        key = out->id; /* no usable object: keep the event's own order by its id */
    snprintf(out->key, sizeof out->key, "%s", key);
    rc = 0;
out:
    if (p->keys != p->inline_keys)
        free(p->keys);
    free(p->arena);
    return rc;
}
