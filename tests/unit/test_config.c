/* test_config.c: environment parsing (config.h), including the exit path a
 * process takes on a bad setting at start. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ledgerline/config.h"

#define VAR "LL_TEST_VAR"

static char err[512];
static const char *progname;

static int reset_env(void **state)
{
    (void)state;
    unsetenv(VAR);
    unsetenv("STRIPE_SECRET_KEY");
    unsetenv("DB_PASSWORD");
    unsetenv("STRIPE_WEBHOOK_SECRET");
    unsetenv("STRIPE_API_BASE");
    err[0] = '\0';
    return 0;
}

static void test_str_default_and_required(void **state)
{
    (void)state;
    const char *v = NULL;
    assert_int_equal(config_get_str(VAR, "billing.", &v, err, sizeof err), 0);
    assert_string_equal(v, "billing.");

    setenv(VAR, "", 1); /* empty counts as unset */
    assert_int_equal(config_get_str(VAR, "billing.", &v, err, sizeof err), 0);
    assert_string_equal(v, "billing.");

    setenv(VAR, "acme.", 1);
    assert_int_equal(config_get_str(VAR, "billing.", &v, err, sizeof err), 0);
    assert_string_equal(v, "acme.");
    assert_string_equal(config_str(VAR, "x"), "acme.");
    assert_string_equal(config_require(VAR), "acme.");

    unsetenv(VAR);
    assert_int_equal(config_get_str(VAR, NULL, &v, err, sizeof err), -1);
    assert_string_equal(err, VAR " is required but not set");
}

static void test_required_hint(void **state)
{
    (void)state;
    const char *saved = getenv("KAFKA_BROKERS");
    char *copy = saved != NULL ? strdup(saved) : NULL;
    unsetenv("KAFKA_BROKERS");
    const char *v = NULL;
    assert_int_equal(config_get_str("KAFKA_BROKERS", NULL, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_BROKERS is required but not set"));
    assert_non_null(strstr(err, "127.0.0.1:9092"));
    if (copy != NULL) {
        setenv("KAFKA_BROKERS", copy, 1);
        free(copy);
    }
}

static void test_int_valid(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err), 0);
    assert_int_equal(v, 25);
    setenv(VAR, "1000", 1);
    assert_int_equal(config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err), 0);
    assert_int_equal(v, 1000);
    setenv(VAR, "1", 1);
    assert_int_equal(config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err), 0);
    assert_int_equal(v, 1);
    setenv(VAR, "-5", 1);
    assert_int_equal(config_get_int(VAR, 0, -10, 10, &v, err, sizeof err), 0);
    assert_int_equal(v, -5);
    setenv(VAR, "9223372036854775807", 1);
    assert_int_equal(config_get_int(VAR, 0, 0, INT64_MAX, &v, err, sizeof err), 0);
    assert_int_equal(v, INT64_MAX);
    setenv(VAR, "-9223372036854775808", 1);
    assert_int_equal(config_get_int(VAR, 0, INT64_MIN, 0, &v, err, sizeof err), 0);
    assert_true(v == INT64_MIN);
    setenv(VAR, "300", 1);
    assert_int_equal(config_int(VAR, 1, 1, 3600), 300);
}

static void test_int_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc",  "12abc", " 12", "12 ", "+12",   "1.5",
                                      "0x10", "-",     "--1", "1e3", "1,000", "12\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 77;
        setenv(VAR, bad[i], 1);
        assert_int_equal(config_get_int(VAR, 25, -1000, 1000, &v, err, sizeof err), -1);
        assert_int_equal(v, 77); /* untouched on failure */
        assert_non_null(strstr(err, VAR " must be an integer between -1000 and 1000, got \""));
        assert_null(strchr(err, '\n'));
    }
    setenv(VAR, "abc", 1);
    int64_t v;
    config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err);
    assert_string_equal(err, VAR " must be an integer between 1 and 1000, got \"abc\"");
    setenv(VAR, "12\n", 1);
    config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err);
    assert_string_equal(err, VAR " must be an integer between 1 and 1000, got \"12\\x0a\"");
}

static void test_int_out_of_range(void **state)
{
    (void)state;
    int64_t v;
    setenv(VAR, "0", 1);
    assert_int_equal(config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err), -1);
    assert_string_equal(err, VAR " must be an integer between 1 and 1000, got \"0\"");
    setenv(VAR, "1001", 1);
    assert_int_equal(config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err), -1);
    setenv(VAR, "-1", 1);
    assert_int_equal(config_get_int(VAR, 25, 1, 1000, &v, err, sizeof err), -1);
    setenv(VAR, "9223372036854775808", 1); /* overflows int64 */
    assert_int_equal(config_get_int(VAR, 0, 0, INT64_MAX, &v, err, sizeof err), -1);
    setenv(VAR, "-9223372036854775809", 1);
    assert_int_equal(config_get_int(VAR, 0, INT64_MIN, 0, &v, err, sizeof err), -1);
    setenv(VAR, "99999999999999999999999999999999999999", 1);
    assert_int_equal(config_get_int(VAR, 0, 0, INT64_MAX, &v, err, sizeof err), -1);
    /* A default outside its own range is refused too. */
    unsetenv(VAR);
    assert_int_equal(config_get_int(VAR, 0, 1, 10, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, VAR));
}

static void test_long_value_is_cut(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setenv(VAR, big, 1);
    int64_t v;
    assert_int_equal(config_get_int(VAR, 1, 1, 2, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "...\""));
    assert_true(strlen(err) < 200);
}

static void test_bool(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "1", "yes", "on", "TRUE", "Yes", "ON"};
    static const char *const no[] = {"false", "0", "no", "off", "False", "NO", "Off"};
    bool b;
    assert_int_equal(config_get_bool(VAR, true, &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(config_get_bool(VAR, false, &b, err, sizeof err), 0);
    assert_false(b);
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        setenv(VAR, yes[i], 1);
        b = false;
        assert_int_equal(config_get_bool(VAR, false, &b, err, sizeof err), 0);
        assert_true(b);
        setenv(VAR, no[i], 1);
        b = true;
        assert_int_equal(config_get_bool(VAR, true, &b, err, sizeof err), 0);
        assert_false(b);
    }
    static const char *const bad[] = {"maybe", "2", "tru", "yes ", "enabled", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(VAR, bad[i], 1);
        assert_int_equal(config_get_bool(VAR, false, &b, err, sizeof err), -1);
        assert_non_null(strstr(err, VAR " must be true or false"));
    }
    setenv(VAR, "on", 1);
    assert_true(config_bool(VAR, false));
}

static void test_int_list_valid(void **state)
{
    (void)state;
    config_int_list l;
    assert_int_equal(config_get_int_list(VAR, "3,7,14", 1, 365, &l, err, sizeof err), 0);
    assert_int_equal(l.count, 3);
    assert_int_equal(l.values[0], 3);
    assert_int_equal(l.values[1], 7);
    assert_int_equal(l.values[2], 14);

    setenv(VAR, "1,2", 1);
    assert_int_equal(config_get_int_list(VAR, "3,7,14", 1, 365, &l, err, sizeof err), 0);
    assert_int_equal(l.count, 2);
    assert_int_equal(l.values[0], 1);
    assert_int_equal(l.values[1], 2);

    setenv(VAR, "5", 1);
    assert_int_equal(config_get_int_list(VAR, "3,7,14", 1, 365, &l, err, sizeof err), 0);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.values[0], 5);

    /* Empty means unset: the default applies. */
    setenv(VAR, "", 1);
    assert_int_equal(config_get_int_list(VAR, "3,7,14", 1, 365, &l, err, sizeof err), 0);
    assert_int_equal(l.count, 3);

    setenv(VAR, "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", 1);
    assert_int_equal(config_get_int_list(VAR, NULL, 1, 365, &l, err, sizeof err), 0);
    assert_int_equal(l.count, CONFIG_MAX_LIST);
    assert_int_equal(l.values[15], 16);

    setenv(VAR, "2,4", 1);
    config_int_list_or_exit(VAR, "3", 1, 10, &l);
    assert_int_equal(l.count, 2);
}

static void test_int_list_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"3,,7",
                                      "3,x",
                                      ",3",
                                      "3,",
                                      "3, 7",
                                      " 3",
                                      "3;7",
                                      "0,1",
                                      "3,400",
                                      "1.5",
                                      ",",
                                      "3,-7",
                                      "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_int_list l = {.count = 99};
        setenv(VAR, bad[i], 1);
        assert_int_equal(config_get_int_list(VAR, "3,7,14", 1, 365, &l, err, sizeof err), -1);
        assert_int_equal(l.count, 99);
        assert_non_null(strstr(err, VAR " must be a comma-separated list of 1 to 16 integers "
                                        "between 1 and 365"));
    }
    setenv(VAR, "3,x", 1);
    config_int_list l;
    config_get_int_list(VAR, "3,7,14", 1, 365, &l, err, sizeof err);
    assert_non_null(strstr(err, "got \"3,x\""));

    /* An empty default is not a list. */
    unsetenv(VAR);
    assert_int_equal(config_get_int_list(VAR, "", 1, 365, &l, err, sizeof err), -1);
    assert_int_equal(config_get_int_list(VAR, NULL, 1, 365, &l, err, sizeof err), -1);
    assert_string_equal(err, VAR " is required but not set");
}

static void test_hostport(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(
        config_get_hostport(VAR, "0.0.0.0:8080", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 8080);

    setenv(VAR, ":9000", 1);
    assert_int_equal(config_get_hostport(VAR, NULL, host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 9000);

    setenv(VAR, "localhost:65535", 1);
    assert_int_equal(config_get_hostport(VAR, NULL, host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 65535);

    setenv(VAR, "ingest-1.internal:1", 1);
    config_hostport(VAR, NULL, host, sizeof host, &port);
    assert_string_equal(host, "ingest-1.internal");
    assert_int_equal(port, 1);

    static const char *const bad[] = {"8080",      "host:",    "host:0",   "host:65536",
                                      "host:http", "host:80x", "host: 80", "ho st:80",
                                      "a:b:80",    "host:-1",  ":",        "host:+80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(VAR, bad[i], 1);
        port = 7;
        assert_int_equal(config_get_hostport(VAR, NULL, host, sizeof host, &port, err, sizeof err),
                         -1);
        assert_int_equal(port, 7);
        assert_non_null(strstr(err, VAR " must be host:port"));
    }

    /* Host longer than the caller's buffer. */
    setenv(VAR, "averyveryverylonghostname:80", 1);
    assert_int_equal(config_get_hostport(VAR, NULL, host, 8, &port, err, sizeof err), -1);
    assert_non_null(strstr(err, VAR));

    unsetenv(VAR);
    assert_int_equal(config_get_hostport(VAR, NULL, host, sizeof host, &port, err, sizeof err), -1);
    assert_string_equal(err, VAR " is required but not set");
}

static void test_hhmm(void **state)
{
    (void)state;
    int m = -1;
    assert_int_equal(config_get_hhmm(VAR, "02:00", &m, err, sizeof err), 0);
    assert_int_equal(m, 120);
    setenv(VAR, "00:00", 1);
    assert_int_equal(config_get_hhmm(VAR, "02:00", &m, err, sizeof err), 0);
    assert_int_equal(m, 0);
    setenv(VAR, "23:59", 1);
    assert_int_equal(config_get_hhmm(VAR, "02:00", &m, err, sizeof err), 0);
    assert_int_equal(m, 23 * 60 + 59);
    setenv(VAR, "03:30", 1);
    assert_int_equal(config_hhmm(VAR, "02:00"), 210);

    static const char *const bad[] = {"24:00", "23:60",  "2:00",  "02:0",  "0200",   "02-00",
                                      "ab:cd", "02:00 ", " 2:00", "-1:00", "02:00Z", "99:99"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(VAR, bad[i], 1);
        m = -1;
        assert_int_equal(config_get_hhmm(VAR, "02:00", &m, err, sizeof err), -1);
        assert_int_equal(m, -1);
        assert_non_null(strstr(err, VAR " must be a time of day HH:MM"));
    }
    unsetenv(VAR);
    assert_int_equal(config_get_hhmm(VAR, NULL, &m, err, sizeof err), -1);
    assert_string_equal(err, VAR " is required but not set");
}

static void test_secret_not_echoed(void **state)
{
    (void)state;
    int64_t v;
    bool b;
    config_int_list l;
    char host[32];
    int port, m;

    setenv("STRIPE_SECRET_KEY", "sk_live_hunter2", 1);
    assert_int_equal(config_get_int("STRIPE_SECRET_KEY", 1, 1, 2, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "STRIPE_SECRET_KEY"));
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(config_get_bool("STRIPE_SECRET_KEY", false, &b, err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));

    setenv("DB_PASSWORD", "hunter2", 1);
    assert_int_equal(config_get_int_list("DB_PASSWORD", "1", 1, 2, &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "DB_PASSWORD"));
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(
        config_get_hostport("DB_PASSWORD", NULL, host, sizeof host, &port, err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(config_get_hhmm("DB_PASSWORD", NULL, &m, err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));

    setenv("API_TOKEN_X", "hunter2", 1);
    assert_int_equal(config_get_int("API_TOKEN_X", 1, 1, 2, &v, err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));
    unsetenv("API_TOKEN_X");

    /* A non-secret name does echo, which is what makes the message useful. */
    setenv(VAR, "hunter2", 1);
    assert_int_equal(config_get_int(VAR, 1, 1, 2, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "hunter2"));
}

/* Runs fn in a child with stderr on a pipe; returns the exit status and what
 * the child wrote. */
static int run_child(void (*fn)(void), char *out, size_t outlen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        fn();
        _exit(99); /* fn must not return */
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], out + n, outlen - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == outlen - 1)
            break;
    }
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void child_require_brokers(void)
{
    unsetenv("KAFKA_BROKERS");
    config_require("KAFKA_BROKERS");
}

static void child_bad_int(void)
{
    setenv("STRIPE_MAX_RPS", "abc", 1);
    config_int("STRIPE_MAX_RPS", 25, 1, 1000);
}

static void child_bad_secret_bool(void)
{
    setenv("STRIPE_SECRET_KEY", "sk_live_hunter2", 1);
    config_bool("STRIPE_SECRET_KEY", false);
}

/* ---- Stripe shapes (CONTRACT "Hardening") ---- */

/* 16 characters after the prefix: the shortest accepted. */
#define WHSEC16 "whsec_AbCdEfGh0123+/=="
#define KEY16 "0123456789abcdEF"

static void test_webhook_secret_shapes(void **state)
{
    (void)state;
    static const char *const ok[] = {
        WHSEC16, "whsec_5Rx3vSbOYqEXAMPLEoK4mFfS2Gm8Zt9Q",
        WHSEC16 "," WHSEC16 "xyz",                    /* a rotation list */
        " " WHSEC16 " , whsec_ZZZZZZZZZZZZZZZZZZZZ ", /* blanks around entries */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (config_check_webhook_secrets("STRIPE_WEBHOOK_SECRET", ok[i], err, sizeof err) != 0)
            fail_msg("refused %s: %s", ok[i], err);

    static const char *const bad[] = {
        "whsec_replace_me",          /* the old .env.example placeholder */
        "whsec_AbCdEfGh0123+/=",     /* 15 characters */
        "whsec_AbCdEfGh_0123456789", /* '_' is not in the alphabet */
        "whsec_AbCdEfGh 0123456789",
        "whsec_AbCdEfGh-0123456789",
        "WHSEC_AbCdEfGh0123456789",
        "sk_test_AbCdEfGh0123456789",
        "AbCdEfGh0123456789AbCdEfGh",
        "whsec_",
        WHSEC16 ",", /* an empty entry */
        WHSEC16 ",," WHSEC16,
        WHSEC16 ",whsec_short", /* the second entry is wrong */
        "whsec_AbCdEf\nGh0123456789",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (config_check_webhook_secrets("STRIPE_WEBHOOK_SECRET", bad[i], err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err, "STRIPE_WEBHOOK_SECRET"));
        assert_non_null(strstr(err, "whsec_ followed by at least 16 characters"));
        assert_null(strstr(err, "AbCdEfGh")); /* the value is never shown */
        assert_null(strstr(err, "replace_me"));
    }
    assert_int_equal(config_check_webhook_secrets("STRIPE_WEBHOOK_SECRET", WHSEC16 ",whsec_short",
                                                  err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "entry 2 "));
    assert_int_equal(config_check_webhook_secrets("STRIPE_WEBHOOK_SECRET", NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "STRIPE_WEBHOOK_SECRET is required but not set"));
    assert_int_equal(config_check_webhook_secrets("STRIPE_WEBHOOK_SECRET", "", err, sizeof err),
                     -1);
}

static void test_stripe_key_shapes(void **state)
{
    (void)state;
    static const char *const ok[] = {"sk_test_" KEY16, "sk_live_" KEY16, "rk_test_" KEY16,
                                     "rk_live_" KEY16,
                                     "sk_test_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (config_check_stripe_key("STRIPE_SECRET_KEY", ok[i], err, sizeof err) != 0)
            fail_msg("refused %s: %s", ok[i], err);

    char longkey[8 + 241 + 1];
    memcpy(longkey, "sk_live_", 8);
    memset(longkey + 8, 'a', 241);
    longkey[sizeof longkey - 1] = '\0';
    const char *const bad[] = {
        "sk_test_replace_me",        /* the old .env.example placeholder */
        "sk_test_0123456789abcdE",   /* 15 characters */
        "sk_test_0123456789_abcdEF", /* '_' after the prefix */
        "sk_test_0123456789abcdEF\r\nX-Evil: 1",
        "sk_test_0123456789abcd EF",
        "pk_test_0123456789abcdEF", /* a publishable key */
        "sk_prod_0123456789abcdEF",
        "SK_TEST_0123456789abcdEF",
        "whsec_0123456789abcdEF0123",
        "sk_0123456789abcdEF0123",
        "sk_test_",
        longkey,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (config_check_stripe_key("STRIPE_SECRET_KEY", bad[i], err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err, "STRIPE_SECRET_KEY is not a Stripe API key"));
        assert_null(strstr(err, "0123456789")); /* the value is never shown */
        assert_null(strstr(err, "replace_me"));
    }
    longkey[8 + 240] = '\0'; /* 240 characters: the longest accepted */
    assert_int_equal(config_check_stripe_key("STRIPE_SECRET_KEY", longkey, err, sizeof err), 0);
    assert_int_equal(config_check_stripe_key("STRIPE_SECRET_KEY", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "STRIPE_SECRET_KEY is required but not set"));
}

static void test_api_base_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        bool plain;
    } ok[] = {
        {"https://api.stripe.com", false},
        {"https://api.stripe.com/", false},
        {"https://stripe.internal:8443/p", false},
        {"HTTPS://api.stripe.com", false},
        {"http://127.0.0.1", true},
        {"http://127.0.0.1:8089", true},
        {"http://127.0.0.1:8089/", true},
        {"http://localhost:9", true},
        {"http://[::1]:8089", true},
        {"http://[::1]", true},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bool plain = !ok[i].plain;
        if (config_check_api_base("STRIPE_API_BASE", ok[i].url, &plain, err, sizeof err) != 0)
            fail_msg("refused %s: %s", ok[i].url, err);
        assert_int_equal(plain, ok[i].plain);
    }
    static const char *const bad[] = {
        "http://localhost:1@evil.example", /* user info: libcurl would go to evil.example */
        "http://localhost@evil.example",
        "http://127.0.0.1:8089@evil.example/",
        "https://user:pass@api.stripe.com",
        "https://sk_live_x@api.stripe.com",
        "http://evil.example#@localhost",
        "http://evil.example?@localhost",
        "http://localhost:1?x=@evil.example",
        "http://localhost:1#@evil.example",
        "https://api.stripe.com/?a=b",
        "http://api.stripe.com",
        "http://10.0.0.1:8089",
        "http://127.0.0.1.evil.test",
        "http://localhost.evil.test",
        "http://127.0.0.10",
        "http://[::1%25eth0]:8089",
        "http://[::2]:8089",
        "https://",
        "ftp://127.0.0.1",
        "file:///etc/passwd",
        "gopher://localhost:1/",
        "api.stripe.com",
        "localhost:8089",
        "",
        "HTTP://api.stripe.com",
        "http://local host:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (config_check_api_base("STRIPE_API_BASE", bad[i], NULL, err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err, "STRIPE_API_BASE must be an https:// URL"));
    }
}

static void child_placeholder_webhook_secret(void)
{
    setenv("STRIPE_WEBHOOK_SECRET", "whsec_replace_me", 1);
    config_webhook_secrets("STRIPE_WEBHOOK_SECRET");
}

static void child_placeholder_key(void)
{
    setenv("STRIPE_SECRET_KEY", "sk_test_replace_me", 1);
    config_stripe_key("STRIPE_SECRET_KEY");
}

static void child_evil_api_base(void)
{
    setenv("STRIPE_API_BASE", "http://localhost:1@evil.example", 1);
    config_api_base("STRIPE_API_BASE", "https://api.stripe.com");
}

static void child_good_shapes(void)
{
    setenv("STRIPE_WEBHOOK_SECRET", WHSEC16, 1);
    setenv("STRIPE_SECRET_KEY", "rk_live_" KEY16, 1);
    unsetenv("STRIPE_API_BASE");
    int ok = strcmp(config_webhook_secrets("STRIPE_WEBHOOK_SECRET"), WHSEC16) == 0 &&
             strcmp(config_stripe_key("STRIPE_SECRET_KEY"), "rk_live_" KEY16) == 0 &&
             strcmp(config_api_base("STRIPE_API_BASE", "https://api.stripe.com"),
                    "https://api.stripe.com") == 0;
    _exit(ok ? 0 : 1);
}

static void assert_one_line(const char *out)
{
    size_t len = strlen(out);
    assert_true(len > 1);
    assert_int_equal(out[len - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
}

static void test_exit_required_missing(void **state)
{
    (void)state;
    char out[2048];
    assert_int_equal(run_child(child_require_brokers, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_one_line(out);
    /* "<program>: configuration error: <msg>", the program being this test. */
    char want[256];
    snprintf(want, sizeof want, "%s: configuration error: KAFKA_BROKERS is required", progname);
    assert_int_equal(strncmp(out, want, strlen(want)), 0);
}

static void test_exit_malformed(void **state)
{
    (void)state;
    char out[2048];
    assert_int_equal(run_child(child_bad_int, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_one_line(out);
    assert_non_null(strstr(out, "configuration error: STRIPE_MAX_RPS must be an integer between "
                                "1 and 1000, got \"abc\"\n"));

    assert_int_equal(run_child(child_bad_secret_bool, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_one_line(out);
    assert_non_null(strstr(out, "STRIPE_SECRET_KEY"));
    assert_null(strstr(out, "hunter2"));
}

/* At start: exit 2, one line naming the variable, the value never printed. */
static void test_exit_stripe_shapes(void **state)
{
    (void)state;
    char out[2048];
    assert_int_equal(run_child(child_placeholder_webhook_secret, out, sizeof out),
                     CONFIG_EXIT_STATUS);
    assert_one_line(out);
    assert_non_null(strstr(out, "configuration error: STRIPE_WEBHOOK_SECRET entry 1 is not"));
    assert_null(strstr(out, "replace_me"));

    assert_int_equal(run_child(child_placeholder_key, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_one_line(out);
    assert_non_null(strstr(out, "configuration error: STRIPE_SECRET_KEY is not a Stripe API key"));
    assert_null(strstr(out, "replace_me"));

    assert_int_equal(run_child(child_evil_api_base, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_one_line(out);
    assert_non_null(strstr(out, "configuration error: STRIPE_API_BASE must be an https:// URL"));

    assert_int_equal(run_child(child_good_shapes, out, sizeof out), 0);
    assert_string_equal(out, "");
}

/* The error convention (failf.h), message by message: the variable named,
 * the shape expected, and for a placeholder secret a HINT saying where the
 * real value comes from. */
static void test_messages_exactly(void **state)
{
    (void)state;
    assert_int_equal(
        config_check_webhook_secrets("STRIPE_WEBHOOK_SECRET", "whsec_replace_me", err, sizeof err),
        -1);
    assert_string_equal(err, "STRIPE_WEBHOOK_SECRET entry 1 is not a Stripe endpoint secret "
                             "(expected whsec_ followed by at least 16 characters of A-Z, a-z, "
                             "0-9, +, / or =, several separated by commas; value not shown: "
                             "secret)\n"
                             "HINT: Copy the endpoint's signing secret from its page in the "
                             "Stripe Dashboard (Webhooks), or the one `stripe listen` prints for "
                             "local testing.");

    assert_int_equal(
        config_check_stripe_key("STRIPE_SECRET_KEY", "sk_test_replace_me", err, sizeof err), -1);
    assert_string_equal(err, "STRIPE_SECRET_KEY is not a Stripe API key (expected sk_ or rk_, "
                             "then test_ or live_, then 16 to 240 letters and digits; value not "
                             "shown: secret)\n"
                             "HINT: Use a secret (sk_) or restricted (rk_) key from the API keys "
                             "page of the Stripe Dashboard; a publishable key (pk_) does not work "
                             "here.");

    int64_t v;
    assert_int_equal(config_get_int(VAR, 0, 1, 10, &v, err, sizeof err), -1);
    assert_string_equal(err, "cannot use the default of " VAR ": 0 is outside 1..10");
}

/* At start the HINT stays on the one line, after "; ". */
static void test_exit_hint_on_one_line(void **state)
{
    (void)state;
    char out[2048];
    assert_int_equal(run_child(child_placeholder_key, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_one_line(out);
    char want[1024];
    snprintf(want, sizeof want,
             "%s: configuration error: STRIPE_SECRET_KEY is not a Stripe API key (expected sk_ "
             "or rk_, then test_ or live_, then 16 to 240 letters and digits; value not shown: "
             "secret); HINT: Use a secret (sk_) or restricted (rk_) key from the API keys page of "
             "the Stripe Dashboard; a publishable key (pk_) does not work here.\n",
             progname);
    assert_string_equal(out, want);
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    progname = slash != NULL ? slash + 1 : argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_str_default_and_required, reset_env),
        cmocka_unit_test_setup(test_required_hint, reset_env),
        cmocka_unit_test_setup(test_int_valid, reset_env),
        cmocka_unit_test_setup(test_int_malformed, reset_env),
        cmocka_unit_test_setup(test_int_out_of_range, reset_env),
        cmocka_unit_test_setup(test_long_value_is_cut, reset_env),
        cmocka_unit_test_setup(test_bool, reset_env),
        cmocka_unit_test_setup(test_int_list_valid, reset_env),
        cmocka_unit_test_setup(test_int_list_malformed, reset_env),
        cmocka_unit_test_setup(test_hostport, reset_env),
        cmocka_unit_test_setup(test_hhmm, reset_env),
        cmocka_unit_test_setup(test_secret_not_echoed, reset_env),
        cmocka_unit_test_setup(test_exit_required_missing, reset_env),
        cmocka_unit_test_setup(test_exit_malformed, reset_env),
        cmocka_unit_test_setup(test_webhook_secret_shapes, reset_env),
        cmocka_unit_test_setup(test_stripe_key_shapes, reset_env),
        cmocka_unit_test_setup(test_api_base_shapes, reset_env),
        cmocka_unit_test_setup(test_exit_stripe_shapes, reset_env),
        cmocka_unit_test_setup(test_messages_exactly, reset_env),
        cmocka_unit_test_setup(test_exit_hint_on_one_line, reset_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
