/* test_billingctl_usage.c: billingctl's command table is its only usage
 * text. Run as a real process (LL_BILLINGCTL_BIN), no database needed:
 * `billingctl` without a command (and `--help`) lists every command of the
 * table, one "  billingctl <usage>" line each; every one of those commands,
 * given an option it does not know, exits 2 and prints exactly its own table
 * line, once, as the last line of stderr; and a command whose database is
 * down exits 1 (refused), not 2 (usage), saying it could not connect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/ctltest.h"

static char out[65536], errout[65536];

/* The commands of main.c's table, in its order. */
static const char *const COMMANDS[] = {
    "db migrate",         "invoices generate",  "time approve",     "time revoke",
    "engagement renew",   "invoice create",     "invoice show",     "invoice issue",
    "invoice adjust",     "invoice void",       "invoice pdf",      "credit-note pdf",
    "statement",          "notifications list", "report wip",       "report aging",
    "credit-note create", "firm settings",      "autopay run",      "autopay resume",
    "retry run",          "reminders run",      "report failures",  "report revenue",
    "credit add",         "credit apply",       "credit balance",   "credit expire",
    "report credits",     "health check",       "dispute evidence", "refund",
    "report disputes",    "dlq list",           "dlq replay",       "verify",
    "reconcile",
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

#define LIST_HEAD "usage: billingctl [--json] COMMAND ...\ncommands:\n"
#define LINE_HEAD "  billingctl "

/* The usage lines of a listing (after LINE_HEAD, up to the newline) into
 * lines[], pointing into text (the newlines become NULs). */
static size_t listed(char *text, char **lines, size_t max)
{
    assert_memory_equal(text, LIST_HEAD, strlen(LIST_HEAD));
    size_t n = 0;
    for (char *p = text + strlen(LIST_HEAD); *p != '\0' && n < max;) {
        assert_memory_equal(p, LINE_HEAD, strlen(LINE_HEAD));
        p += strlen(LINE_HEAD);
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

/* line starts with the command's words and then ends or goes on with a
 * space. */
static bool line_of(const char *line, const char *command)
{
    size_t k = strlen(command);
    return strncmp(line, command, k) == 0 && (line[k] == '\0' || line[k] == ' ');
}

/* `billingctl --help`: exit 0 and the same listing as errout holds. */
static int ctl_help(void)
{
    static char help_err[65536];
    int rc = ctltest(out, sizeof out, help_err, sizeof help_err, NULL, "--help", NULL);
    assert_string_equal(help_err, errout);
    return rc;
}

static void test_no_command_lists_the_table(void **state)
{
    (void)state;
    static char lines_text[65536];
    char *lines[128];
    const char *const none[] = {NULL};
    assert_int_equal(ctltest_argv(out, sizeof out, errout, sizeof errout, NULL, none), 2);
    assert_string_equal(out, "");
    snprintf(lines_text, sizeof lines_text, "%s", errout);
    size_t n = listed(lines_text, lines, 128);
    assert_int_equal(n, NCOMMANDS);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!line_of(lines[i], COMMANDS[i]))
            fail_msg("line %zu is '%s', not command '%s'", i, lines[i], COMMANDS[i]);
    /* --help prints the same list, on stderr, with exit 0. */
    assert_int_equal(ctl_help(), 0);
}

/* Splits "group verb" into argv words followed by the bad option. */
static void run_bad_option(const char *command, const char *usage_line)
{
    char words[64];
    snprintf(words, sizeof words, "%s", command);
    const char *argv[4] = {0};
    int n = 0;
    for (char *t = strtok(words, " "); t != NULL; t = strtok(NULL, " "))
        argv[n++] = t;
    argv[n++] = "--no-such-option";
    argv[n] = NULL;
    int rc = ctltest_argv(out, sizeof out, errout, sizeof errout, NULL, argv);
    if (rc != 2)
        fail_msg("'%s --no-such-option' exited %d, not 2: %s", command, rc, errout);
    char want[1024];
    snprintf(want, sizeof want, "usage: billingctl %s\n", usage_line);
    size_t el = strlen(errout), wl = strlen(want);
    if (el < wl || strcmp(errout + el - wl, want) != 0)
        fail_msg("'%s --no-such-option' printed\n%s\nnot ending in\n%s", command, errout, want);
    /* Exactly one usage line. */
    if (strstr(errout, "usage:") != errout + el - wl)
        fail_msg("'%s --no-such-option' printed more than one usage line:\n%s", command, errout);
}

static void test_bad_option_prints_the_table_line(void **state)
{
    (void)state;
    static char lines_text[65536];
    char *lines[128];
    assert_int_equal(ctltest(out, sizeof out, errout, sizeof errout, NULL, "--help", NULL), 0);
    snprintf(lines_text, sizeof lines_text, "%s", errout);
    size_t n = listed(lines_text, lines, 128);
    assert_int_equal(n, NCOMMANDS);
    for (size_t i = 0; i < n; i++)
        run_bad_option(COMMANDS[i], lines[i]);
}

/* Valid invocations of commands that connect first, with DATABASE_URL on a
 * port where nothing listens: each exits 1 with the reason, writes nothing
 * to stdout and leaves no output file. */
static void test_database_down_is_refused_not_usage(void **state)
{
    (void)state;
    static const char *const invocations[][8] = {
        {"notifications", "list", NULL},
        {"invoice", "pdf", "1", "-o", "/tmp/ll-ctl-down.pdf", NULL},
        {"credit-note", "pdf", "1", "-o", "/tmp/ll-ctl-down.pdf", NULL},
        {"statement", "--client", "1", "-o", "/tmp/ll-ctl-down.pdf", NULL},
        {"invoice", "show", "1", NULL},
        {"credit", "balance", "--client", "1", NULL},
        {"report", "aging", "--firm-id", "1", "--date", "2026-12-01", NULL},
        {"db", "migrate", NULL},
    };
    const char *const env[] = {"DATABASE_URL=postgresql://ll@127.0.0.1:1/none?connect_timeout=2",
                               NULL};
    unlink("/tmp/ll-ctl-down.pdf");
    for (size_t i = 0; i < sizeof invocations / sizeof invocations[0]; i++) {
        int rc = ctltest_argv(out, sizeof out, errout, sizeof errout, env, invocations[i]);
        if (rc != 1 || strstr(errout, "billingctl: could not connect to DATABASE_URL") == NULL)
            fail_msg("'%s %s' with the database down exited %d: %s", invocations[i][0],
                     invocations[i][1], rc, errout);
        assert_string_equal(out, "");
        assert_int_equal(access("/tmp/ll-ctl-down.pdf", F_OK), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_command_lists_the_table),
        cmocka_unit_test(test_bad_option_prints_the_table_line),
        cmocka_unit_test(test_database_down_is_refused_not_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
