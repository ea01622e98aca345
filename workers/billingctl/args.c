/* args.c: shared argument and database helpers of billingctl's commands:
 * the option-table parser every command's argument loop goes through, id
 * and cents parsing, connecting and refusals (see args.h). */
#include "args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ledgerline/config.h"

static bool parse_digits(const char *text, int64_t *out)
{
    if (text == NULL || *text == '\0' || strlen(text) > 19)
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

bool args_parse_id(const char *text, int64_t *out)
{
    int64_t v;
    if (!parse_digits(text, &v) || v <= 0)
        return false;
    *out = v;
    return true;
}

bool args_parse_cents(const char *text, int64_t *out)
{
    return parse_digits(text, out);
}

int args_usage(const char *usage, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "billingctl: %s\nusage: billingctl %s\n", msg, usage);
    return CLI_USAGE;
}

int args_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

/* 1 when argv[*i] is an option of the table (its value taken), -1 when
 * its value is missing, 0 when it is none of them. */
static int args_match(int argc, char **argv, int *i, const args_option *opts, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (strcmp(argv[*i], opts[k].name) != 0)
            continue;
        if (opts[k].value == NULL) {
            *opts[k].flag = true;
            return 1;
        }
        return args_opt(argc, argv, i, opts[k].name, opts[k].value);
    }
    return 0;
}

int args_parse_each(int argc, char **argv, const char *usage, const args_option *opts, size_t n,
                    args_each_fn each, void *ctx)
{
    for (int i = 1; i < argc; i++) {
        int g = args_match(argc, argv, &i, opts, n);
        if (g < 0)
            return args_usage(usage, "%s needs a value", argv[i]);
        if (g > 0)
            continue;
        int rc = each(argv[i], usage, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* args_parse's one positional (ctx: where it goes; NULL: none allowed). */
static int args_one(const char *arg, const char *usage, void *ctx)
{
    const char **positional = ctx;
    if (positional == NULL || arg[0] == '-' || *positional != NULL)
        return args_usage(usage, "unexpected argument '%s'", arg);
    *positional = arg;
    return 0;
}

int args_parse(int argc, char **argv, const char *usage, const args_option *opts, size_t n,
               const char **positional)
{
    return args_parse_each(argc, argv, usage, opts, n, args_one, positional);
}

db_conn *args_connect(void)
{
    const char *url = config_require("DATABASE_URL");
    char err[1024];
    db_conn *c = db_connect(url, 10000, err, sizeof err);
    if (c == NULL)
        fprintf(stderr, "billingctl: could not connect to DATABASE_URL: %s\n", err);
    return c;
}

stripe_client *args_stripe_client(const stripe_config *cfg)
{
    char err[1024];
    stripe_client *sc = stripe_client_new(cfg, err, sizeof err);
    if (sc == NULL)
        fprintf(stderr, "billingctl: configuration error: %s\n", err);
    return sc;
}

int args_run_tx(const char *what, db_work_fn fn, void *arg)
{
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = db_run_tx(c, fn, arg, err, sizeof err);
    db_close(c);
    return st == DB_OK ? CLI_OK : args_refused(what, err);
}

/* A DETAIL or HINT line of ll_detailf / ll_hintf ("DETAIL: x"); the
 * server's own ("DETAIL:  x", two spaces) are not ours to show. */
static bool args_failf_line(const char *line)
{
    size_t k = strncmp(line, "DETAIL: ", 8) == 0 ? 8 : strncmp(line, "HINT: ", 6) == 0 ? 6 : 0;
    return k > 0 && line[k] != ' ' && line[k] != '\0' && line[k] != '\n';
}

int args_refused(const char *what, const char *err)
{
    /* The server's message starts with "ERROR:  "; keep the rule text. */
    const char *m = err;
    if (strncmp(m, "ERROR:", 6) == 0) {
        m += 6;
        while (*m == ' ')
            m++;
    }
    /* The first line, then only the DETAIL / HINT lines of ll_failf's
     * convention: the server's CONTEXT / DETAIL lines are dropped. */
    int n = (int)strcspn(m, "\n");
    fprintf(stderr, "billingctl: %s refused: %.*s\n", what, n, m);
    for (const char *l = m + n; *l == '\n'; l += n) {
        l++;
        n = (int)strcspn(l, "\n");
        if (args_failf_line(l))
            fprintf(stderr, "%.*s\n", n, l);
    }
    return CLI_REFUSED;
}

long long args_jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}
