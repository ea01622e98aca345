/* form.c: decodes application/x-www-form-urlencoded bodies and query strings
 * the way Stripe reads them: '&'-separated pairs, '+' is a space, %XX escapes;
 * bracket keys (metadata[invoice_id]) stay flat here and are grouped on demand
 * (ss_form_sub), which is all the endpoints need. */
#include "stripe_standin.h"

#include <stdlib.h>
#include <string.h>

static int ss_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into a new NUL-terminated string; NULL on a bad escape or
 * an encoded NUL (which no Stripe parameter may contain). */
static char *ss_form_unescape(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int hi = ss_hex(s[i + 1]), lo = ss_hex(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '\0') {
            free(out);
            return NULL;
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

json_t *ss_form_decode(const char *text, size_t len)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && text[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && text[eq] != '=')
                eq++;
            char *k = ss_form_unescape(text + i, eq - i);
            char *v =
                eq < end ? ss_form_unescape(text + eq + 1, end - eq - 1) : ss_form_unescape("", 0);
            json_t *jv = v != NULL ? json_string(v) : NULL; /* NULL when not UTF-8 */
            if (k == NULL || jv == NULL || *k == '\0' || json_object_set_new(obj, k, jv) != 0) {
                free(k);
                free(v);
                json_decref(obj);
                return NULL;
            }
            free(k);
            free(v);
        }
        i = end + 1;
    }
    return obj;
}

json_t *ss_body_object(const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i < len && text[i] == '{') {
        json_t *j = json_loadb(text, len, 0, NULL);
        if (j != NULL && !json_is_object(j)) {
            json_decref(j);
            return NULL;
        }
        return j;
    }
    return ss_form_decode(text, len);
}

json_t *ss_form_sub(const json_t *flat, const char *prefix)
{
    json_t *out = json_object();
    size_t pl = strlen(prefix);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)flat, k, v)
    {
        size_t kl = strlen(k);
        if (kl > pl + 2 && strncmp(k, prefix, pl) == 0 && k[pl] == '[' && k[kl - 1] == ']') {
            char name[256];
            size_t nl = kl - pl - 2;
            if (nl >= sizeof name)
                continue;
            memcpy(name, k + pl + 1, nl);
            name[nl] = '\0';
            json_object_set(out, name, v);
        }
    }
    return out;
}
