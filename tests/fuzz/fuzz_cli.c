/* fuzz_cli.c: libFuzzer target for billingctl's argument parsing (issue 9):
 * ids and cents (args.c), dates (common/date.c), `--line
 * TYPE:QUANTITY:RATE_CENTS:DESCRIPTION` (cmd_invoice.c), the tick options
 * (cmd_ticks.c), `credit add` / `credit apply` options (cmd_credit.c) and
 * the dispute evidence document check (common/disputes.c).
 * Input: words separated by NUL or newline bytes, given to every parser as
 * argv[1..] (argv[0] is the verb); the whole input is also the evidence
 * file. Only the pure parsers run (nothing connects or exits). Each accepted
 * value is checked against the parser's contract with __builtin_trap(). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/date.h"
#include "ledgerline/disputes.h"
#include "ledgerline/money.h"
#include "ledgerline/stripe.h"
#include "ticks_cli.h"

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(fuzz_err, "fuzz_cli: contract broken at line %d: %s\n", __LINE__, #cond);      \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* The real stderr, kept for contract messages: the parsers' usage messages
 * go to /dev/null (they would flood the test log at every execution). */
static FILE *fuzz_err;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_err = stderr;
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull != NULL)
        stderr = devnull;
    return 0;
}

/* Reference grammar of ids and cents: 1..19 ASCII digits, value <= INT64_MAX. */
static bool ref_digits(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19)
        return false;
    unsigned __int128 v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool is_blank(const char *s)
{
    if (s == NULL)
        return true;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* True when p is one of the argv words (the parsers return pointers into argv). */
static bool in_argv(const char *p, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (p == argv[i])
            return true;
    return false;
}

static void check_word(const char *w)
{
    int64_t v = -1, ref = -1;
    bool ok = args_parse_id(w, &v), rok = ref_digits(w, &ref);
    CHECK(ok == (rok && ref > 0));
    if (ok)
        CHECK(v > 0 && v == ref);

    v = -1;
    ok = args_parse_cents(w, &v);
    CHECK(ok == rok);
    if (ok)
        CHECK(v >= 0 && v == ref);

    /* A date the parser accepts formats back to exactly the same text. */
    civil_date d;
    if (date_parse(w, &d)) {
        char buf[16];
        CHECK(date_format(d, buf, sizeof buf) != NULL);
        CHECK(strcmp(buf, w) == 0);
    }

    inv_line l;
    memset(&l, 0xA5, sizeof l);
    if (invoice_cli_parse_line(w, &l)) {
        const char *c1 = strchr(w, ':');
        CHECK(c1 != NULL);
        const char *c2 = strchr(c1 + 1, ':');
        CHECK(c2 != NULL);
        const char *c3 = strchr(c2 + 1, ':');
        CHECK(c3 != NULL);
        /* The description is everything after the third colon. */
        CHECK(l.description == c3 + 1);
        size_t tl = (size_t)(c1 - w);
        CHECK(strlen(l.type) == tl && memcmp(l.type, w, tl) == 0);
        CHECK(strcmp(l.type, "package_fee") == 0 || strcmp(l.type, "hourly") == 0 ||
              strcmp(l.type, "adjustment") == 0);
        CHECK(l.hundredths > 0 && l.rate >= 0 && l.amount >= 0);
        /* Rate: the second field, digits only. */
        char rbuf[32];
        size_t rl = (size_t)(c3 - c2 - 1);
        CHECK(rl > 0 && rl < sizeof rbuf);
        memcpy(rbuf, c2 + 1, rl);
        rbuf[rl] = '\0';
        int64_t rref;
        CHECK(ref_digits(rbuf, &rref) && rref == l.rate);
        /* Amount = quantity x rate, half up, computed independently. */
        __int128 prod = (__int128)l.hundredths * l.rate;
        __int128 amt = (prod + 50) / 100;
        CHECK(amt == l.amount);
        /* The printed quantity parses back to the same hundredths. */
        int64_t h;
        CHECK(money_parse_hours(l.quantity, &h) == MONEY_OK && h == l.hundredths);
        CHECK(strtoll(l.rate_s, NULL, 10) == l.rate);
        CHECK(strtoll(l.amount_s, NULL, 10) == l.amount);
    }
}

static void check_argv(int argc, char **argv)
{
    tick_cli_args t;
    if (tick_cli_parse(argc, argv, "fuzz", &t) == CLI_OK) {
        CHECK(t.firm_id >= 0);
        char buf[16];
        CHECK(date_format(t.date, buf, sizeof buf) != NULL);
        bool any_dry = false;
        for (int i = 1; i < argc; i++)
            any_dry |= strcmp(argv[i], "--dry-run") == 0;
        if (t.dry_run)
            CHECK(any_dry);
    }

    credit_add_params p;
    int rc = credit_cli_parse_add(argc, argv, "fuzz", &p);
    CHECK(rc == CLI_OK || rc == CLI_USAGE || rc == CLI_REFUSED);
    if (rc == CLI_OK) {
        CHECK(p.client_id > 0 && p.amount_cents > 0 && p.source_invoice_id >= 0);
        CHECK(p.source != NULL && in_argv(p.source, argc, argv));
        CHECK(strcmp(p.source, "overpayment") == 0 || strcmp(p.source, "refund") == 0 ||
              strcmp(p.source, "goodwill") == 0 || strcmp(p.source, "promotional") == 0 ||
              strcmp(p.source, "correction") == 0);
        CHECK(!is_blank(p.description) && in_argv(p.description, argc, argv));
        if (strcmp(p.source, "overpayment") == 0)
            CHECK(p.source_invoice_id > 0);
        if (strcmp(p.source, "goodwill") == 0 || strcmp(p.source, "correction") == 0)
            CHECK(!is_blank(p.reason) && !is_blank(p.approved_by));
        if (p.has_expiry) {
            char buf[16];
            CHECK(date_format(p.expires_at, buf, sizeof buf) != NULL);
        }
        if (p.created_by != NULL)
            CHECK(in_argv(p.created_by, argc, argv));
    }

    int64_t inv = -1, max = -1;
    civil_date on;
    const char *by = NULL;
    rc = credit_cli_parse_apply(argc, argv, "fuzz", &inv, &max, &on, &by);
    CHECK(rc == CLI_OK || rc == CLI_USAGE);
    if (rc == CLI_OK) {
        CHECK(inv > 0 && max >= 0);
        char buf[16];
        CHECK(date_format(on, buf, sizeof buf) != NULL);
        if (by != NULL)
            CHECK(in_argv(by, argc, argv));
    }
}

/* The evidence file: what `dispute evidence --file` loads and checks. */
static void check_evidence(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL)
        return;
    char err[512];
    if (dispute_evidence_validate(doc, err, sizeof err) == 0) {
        CHECK(json_is_object(doc) && json_object_size(doc) > 0);
        const char *key;
        json_t *v;
        json_object_foreach(doc, key, v)
        {
            CHECK(dispute_evidence_field_known(key));
            CHECK(json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 20000);
            CHECK(strlen(json_string_value(v)) == json_string_length(v));
        }
        stripe_form *f = dispute_evidence_form(doc);
        CHECK(f != NULL);
        CHECK(strstr(stripe_form_body(f), "submit=true") != NULL);
        stripe_form_free(f);
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    check_evidence(data, size);

    /* A private NUL-terminated copy, split in place into words. */
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[FUZZ_MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "fuzz";
    char *w = buf;
    for (size_t i = 0; i <= size && argc <= FUZZ_MAX_ARGS; i++) {
        if (buf[i] == '\0' || buf[i] == '\n') {
            buf[i] = '\0';
            argv[argc++] = w;
            w = buf + i + 1;
        }
    }
    argv[argc] = NULL;
    for (int i = 1; i < argc; i++)
        check_word(argv[i]);
    check_argv(argc, argv);
    free(buf);
    return 0;
}
