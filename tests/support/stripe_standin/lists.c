/* lists.c: how the stand-in answers Stripe's list and search endpoints.
 *
 * Lists: newest first (created, then creation order, descending), `created`
 * filters (created=N, created[gte|gt|lte|lt]=N), `limit` 1..100 (default 10),
 * `starting_after` / `ending_before` (an id of the same kind; the page nearest
 * the cursor), `has_more`; the answer is {"object":"list","data","has_more",
 * "url"}.
 *
 * Search: the subset of Stripe's query language the system may use, parsed
 * strictly (metadata['K']:'V', customer:'cus_…', status:'…', created>N,
 * created<N, created>=N, created<=N, joined by AND); `limit`, `page` (the
 * next_page of an earlier answer); the answer is {"object":"search_result",
 * "data","has_more","next_page","url"}. */
#include "stripe_standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SS_PAGE_PREFIX "spg_"

static int64_t ss_max(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t ss_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* "created" or "created[...]" (not "created_by"). */
static bool ss_is_created_key(const char *k)
{
    return strncmp(k, "created", 7) == 0 && (k[7] == '\0' || k[7] == '[');
}

bool ss_created_parse(const json_t *p, ss_created_range *r, ss_answer *a)
{
    r->lo = INT64_MIN;
    r->hi = INT64_MAX;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)p, k, v)
    {
        if (!ss_is_created_key(k))
            continue;
        const char *op = k + 7;
        bool known = *op == '\0' || strcmp(op, "[gte]") == 0 || strcmp(op, "[gt]") == 0 ||
                     strcmp(op, "[lte]") == 0 || strcmp(op, "[lt]") == 0;
        if (!known) {
            ss_answer_error(a, 400, "invalid_request_error", "parameter_unknown", k,
                            "Received unknown parameter: %s", k);
            return false;
        }
        int64_t n = 0;
        const char *s = json_string_value(v);
        if (!ss_parse_i64(s, &n)) {
            ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_integer", k,
                            "Invalid integer: %s", s != NULL ? s : "");
            return false;
        }
        if (*op == '\0') {
            r->lo = ss_max(r->lo, n);
            r->hi = ss_min(r->hi, n);
        } else if (strcmp(op, "[gte]") == 0) {
            r->lo = ss_max(r->lo, n);
        } else if (strcmp(op, "[gt]") == 0) {
            r->lo = ss_max(r->lo, n + 1);
        } else if (strcmp(op, "[lte]") == 0) {
            r->hi = ss_min(r->hi, n);
        } else {
            r->hi = ss_min(r->hi, n - 1);
        }
    }
    return true;
}

typedef struct {
    json_t *o;
    int64_t created;
    size_t idx;
} ss_item;

static int ss_item_newest_first(const void *pa, const void *pb)
{
    const ss_item *a = pa, *b = pb;
    if (a->created != b->created)
        return a->created > b->created ? -1 : 1;
    return a->idx > b->idx ? -1 : (a->idx < b->idx ? 1 : 0);
}

/* items (oldest first) as a newest-first vector; *n its length. */
static ss_item *ss_items_sorted(const json_t *items, size_t *n)
{
    *n = json_array_size(items);
    ss_item *v = calloc(*n > 0 ? *n : 1, sizeof *v);
    if (v == NULL)
        abort(); /* a test helper out of memory has nothing better to do */
    for (size_t i = 0; i < *n; i++) {
        v[i].o = json_array_get(items, i);
        v[i].created = json_integer_value(json_object_get(v[i].o, "created"));
        v[i].idx = i;
    }
    qsort(v, *n, sizeof *v, ss_item_newest_first);
    return v;
}

static size_t ss_items_find(const ss_item *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        const char *oid = json_string_value(json_object_get(v[i].o, "id"));
        if (oid != NULL && strcmp(oid, id) == 0)
            return i;
    }
    return n;
}

static bool ss_limit_parse(const json_t *p, int64_t *limit, ss_answer *a)
{
    const char *s = ss_param(p, "limit");
    *limit = 10;
    if (s != NULL && (!ss_parse_i64(s, limit) || *limit < 1 || *limit > 100)) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_invalid_integer", "limit",
                        "Invalid integer: %s (limit is 1 to 100).", s);
        return false;
    }
    return true;
}

static bool ss_param_allowed(const char *k, const char *const *base, const char *const *more)
{
    for (size_t i = 0; base[i] != NULL; i++)
        if (strcmp(k, base[i]) == 0)
            return true;
    for (size_t i = 0; more != NULL && more[i] != NULL; i++)
        if (strcmp(k, more[i]) == 0)
            return true;
    return false;
}

void ss_list_answer(const json_t *items, const json_t *p, const ss_list_spec *spec, ss_answer *a)
{
    static const char *const base[] = {"limit", "starting_after", "ending_before", NULL};
    if (spec->params != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)p, k, v)
        {
            if (!ss_is_created_key(k) && !ss_param_allowed(k, base, spec->params)) {
                ss_answer_error(a, 400, "invalid_request_error", "parameter_unknown", k,
                                "Received unknown parameter: %s", k);
                return;
            }
        }
    }
    int64_t limit;
    if (!ss_limit_parse(p, &limit, a))
        return;
    const char *after = ss_param(p, "starting_after"), *before = ss_param(p, "ending_before");
    if (after != NULL && before != NULL) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "starting_after",
                        "You may only specify one of these parameters: ending_before, "
                        "starting_after.");
        return;
    }
    ss_created_range cr;
    if (!ss_created_parse(p, &cr, a))
        return;
    size_t n;
    ss_item *v = ss_items_sorted(items, &n);
    /* The cursor is any object of the kind; the page is what matches on
     * its far (starting_after) or near (ending_before) side. */
    const char *cursor = after != NULL ? after : before;
    size_t cpos = 0;
    if (cursor != NULL) {
        cpos = ss_items_find(v, n, cursor);
        if (cpos == n) {
            free(v);
            ss_answer_error(a, 404, "invalid_request_error", "resource_missing",
                            after != NULL ? "starting_after" : "ending_before", "No such %s: '%s'",
                            spec->noun, cursor);
            return;
        }
    }
    json_t *all = json_array(); /* matches, newest first (borrowed) */
    for (size_t i = 0; i < n; i++) {
        if (after != NULL && i <= cpos)
            continue;
        if (before != NULL && i >= cpos)
            break;
        if (v[i].created < cr.lo || v[i].created > cr.hi)
            continue;
        if (spec->match != NULL && !spec->match(v[i].o, spec->ctx))
            continue;
        json_array_append(all, v[i].o);
    }
    free(v);
    size_t from = 0, to = json_array_size(all); /* the window [from, to) */
    bool more = to - from > (size_t)limit;
    if (more) {
        if (before != NULL)
            from = to - (size_t)limit; /* the page nearest the cursor */
        else
            to = from + (size_t)limit;
    }
    json_t *data = json_array();
    for (size_t i = from; i < to; i++)
        json_array_append_new(data, json_deep_copy(json_array_get(all, i)));
    json_decref(all);
    a->status = 200;
    a->body = json_pack("{s:s,s:o,s:b,s:s}", "object", "list", "data", data, "has_more", more,
                        "url", spec->url);
}

/* ---- search ------------------------------------------------------------- */

static const char *ss_skip_spaces(const char *s)
{
    while (*s == ' ')
        s++;
    return s;
}

/* A '...' or "..." string (backslash escapes the next character) into out;
 * the position after it, or NULL. */
static const char *ss_quoted(const char *s, char *out, size_t outlen, const char *what, char *err,
                             size_t errlen)
{
    char q = *s;
    if (q != '\'' && q != '"') {
        snprintf(err, errlen, "%s must be a quoted string ('...' or \"...\") at: %s", what, s);
        return NULL;
    }
    size_t o = 0;
    for (s++; *s != '\0' && *s != q; s++) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        if (o + 1 >= outlen) {
            snprintf(err, errlen, "%s is too long", what);
            return NULL;
        }
        out[o++] = *s;
    }
    if (*s != q) {
        snprintf(err, errlen, "unterminated string in %s", what);
        return NULL;
    }
    out[o] = '\0';
    return s + 1;
}

static const char *ss_clause_parse(const char *s, ss_clause *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (strncmp(s, "metadata[", 9) == 0) {
        c->kind = SS_Q_METADATA;
        s = ss_quoted(s + 9, c->key, sizeof c->key, "a metadata key", err, errlen);
        if (s == NULL)
            return NULL;
        if (s[0] != ']' || s[1] != ':') {
            snprintf(err, errlen, "expected ]: after metadata[KEY] at: %s", s);
            return NULL;
        }
        return ss_quoted(s + 2, c->value, sizeof c->value, "a metadata value", err, errlen);
    }
    if (strncmp(s, "customer:", 9) == 0) {
        c->kind = SS_Q_CUSTOMER;
        return ss_quoted(s + 9, c->value, sizeof c->value, "customer", err, errlen);
    }
    if (strncmp(s, "status:", 7) == 0) {
        c->kind = SS_Q_STATUS;
        return ss_quoted(s + 7, c->value, sizeof c->value, "status", err, errlen);
    }
    if (strncmp(s, "created", 7) == 0 && (s[7] == '>' || s[7] == '<')) {
        c->kind = SS_Q_CREATED;
        s += 7;
        size_t ol = s[1] == '=' ? 2 : 1;
        memcpy(c->op, s, ol);
        c->op[ol] = '\0';
        s += ol;
        const char *d = s;
        int64_t n = 0;
        while (*s >= '0' && *s <= '9' && s - d < 18)
            n = n * 10 + (*s++ - '0');
        if (s == d || (*s != '\0' && *s != ' ')) {
            snprintf(err, errlen, "created%s needs a unix timestamp at: %s", c->op, d);
            return NULL;
        }
        c->n = n;
        return s;
    }
    snprintf(err, errlen,
             "unsupported search clause at: %s (the stand-in supports metadata['KEY']:'VALUE', "
             "customer:'cus_...', status:'...', created>N, created<N, created>=N, created<=N "
             "joined by AND)",
             s);
    return NULL;
}

bool ss_query_parse(const char *q, ss_query *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *s = ss_skip_spaces(q);
    if (*s == '\0') {
        snprintf(err, errlen, "the search query is empty");
        return false;
    }
    for (;;) {
        if (out->n == sizeof out->c / sizeof out->c[0]) {
            snprintf(err, errlen, "a search query has at most 10 clauses");
            return false;
        }
        s = ss_clause_parse(s, &out->c[out->n], err, errlen);
        if (s == NULL)
            return false;
        out->n++;
        const char *t = ss_skip_spaces(s);
        if (*t == '\0')
            return true;
        if (t == s || strncmp(t, "AND ", 4) != 0) {
            snprintf(err, errlen,
                     "expected ' AND ' between clauses at: %s (OR, parentheses "
                     "and negation are not supported)",
                     t);
            return false;
        }
        s = ss_skip_spaces(t + 4);
    }
}

bool ss_query_match(const ss_query *q, const json_t *obj)
{
    for (size_t i = 0; i < q->n; i++) {
        const ss_clause *c = &q->c[i];
        const char *have = NULL;
        switch (c->kind) {
        case SS_Q_METADATA:
            have = json_string_value(json_object_get(json_object_get(obj, "metadata"), c->key));
            break;
        case SS_Q_CUSTOMER: have = json_string_value(json_object_get(obj, "customer")); break;
        case SS_Q_STATUS: have = json_string_value(json_object_get(obj, "status")); break;
        case SS_Q_CREATED: {
            int64_t t = json_integer_value(json_object_get(obj, "created"));
            bool ok = strcmp(c->op, ">") == 0    ? t > c->n
                      : strcmp(c->op, "<") == 0  ? t < c->n
                      : strcmp(c->op, ">=") == 0 ? t >= c->n
                                                 : t <= c->n;
            if (!ok)
                return false;
            continue;
        }
        }
        if (have == NULL || strcmp(have, c->value) != 0)
            return false;
    }
    return true;
}

void ss_search_answer(const json_t *current, const json_t *indexed, const json_t *p,
                      const char *url, ss_answer *a)
{
    const char *k;
    json_t *jv;
    json_object_foreach((json_t *)p, k, jv)
    {
        if (strcmp(k, "query") != 0 && strcmp(k, "limit") != 0 && strcmp(k, "page") != 0) {
            ss_answer_error(a, 400, "invalid_request_error", "parameter_unknown", k,
                            "Received unknown parameter: %s", k);
            return;
        }
    }
    const char *qs = ss_param(p, "query"), *page = ss_param(p, "page");
    if (qs == NULL) {
        ss_answer_error(a, 400, "invalid_request_error", "parameter_missing", "query",
                        "Missing required param: query.");
        return;
    }
    ss_query q;
    char err[512];
    if (!ss_query_parse(qs, &q, err, sizeof err)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "query", "Invalid query: %s", err);
        return;
    }
    int64_t limit;
    if (!ss_limit_parse(p, &limit, a))
        return;
    size_t n;
    ss_item *v = ss_items_sorted(current, &n);
    size_t start = 0;
    if (page != NULL) {
        size_t pos = strncmp(page, SS_PAGE_PREFIX, strlen(SS_PAGE_PREFIX)) == 0
                         ? ss_items_find(v, n, page + strlen(SS_PAGE_PREFIX))
                         : n;
        if (pos == n) {
            free(v);
            ss_answer_error(a, 400, "invalid_request_error", NULL, "page",
                            "Invalid page: %s (pass the next_page of an earlier answer).", page);
            return;
        }
        start = pos + 1;
    }
    json_t *data = json_array();
    bool more = false;
    const char *last = NULL;
    for (size_t i = start; i < n; i++) {
        const json_t *seen = json_array_get(indexed, v[i].idx);
        if (json_is_null(seen) || seen == NULL || !ss_query_match(&q, seen))
            continue;
        if (json_array_size(data) == (size_t)limit) {
            more = true;
            break;
        }
        json_array_append_new(data, json_deep_copy(v[i].o));
        last = json_string_value(json_object_get(v[i].o, "id"));
    }
    char next[96];
    snprintf(next, sizeof next, "%s%s", SS_PAGE_PREFIX, last != NULL ? last : "");
    free(v);
    a->status = 200;
    a->body = json_pack("{s:s,s:o,s:b,s:s?,s:s}", "object", "search_result", "data", data,
                        "has_more", more, "next_page", more ? next : NULL, "url", url);
}
