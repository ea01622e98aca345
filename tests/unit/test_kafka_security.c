/* test_kafka_security.c: the contract's Kafka credentials (common/kafka.c):
 * KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* validation, what reaches
 * librdkafka's configuration, the exit-2 line at start that names the
 * variable and never shows the password, and the process-wide fatal flag.
 * Needs no broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/config.h"
#include "ledgerline/kafka.h"

static const char *const vars[] = {"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM",
                                   "KAFKA_SASL_USERNAME",     "KAFKA_SASL_PASSWORD",
                                   "KAFKA_SSL_CA_LOCATION",   "KAFKA_SSL_CERTIFICATE_LOCATION",
                                   "KAFKA_SSL_KEY_LOCATION",  "KAFKA_BROKERS"};

static int reset_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    return 0;
}

static int check(char *err, size_t errlen)
{
    kafka_security s;
    err[0] = '\0';
    return kafka_security_from_env(&s, err, errlen);
}

/* The value librdkafka got for name. */
static void conf_value(rd_kafka_conf_t *conf, const char *name, char *out, size_t outlen)
{
    size_t n = outlen;
    assert_int_equal(rd_kafka_conf_get(conf, name, out, &n), RD_KAFKA_CONF_OK);
}

static void test_default_plaintext(void **state)
{
    (void)state;
    kafka_security s;
    char err[256];
    assert_int_equal(kafka_security_from_env(&s, err, sizeof err), 0);
    assert_string_equal(s.protocol, "plaintext");
    assert_string_equal(s.mechanism, "");
    /* An empty assignment is an unfilled placeholder: the default. */
    setenv("KAFKA_SECURITY_PROTOCOL", "", 1);
    assert_int_equal(kafka_security_from_env(&s, err, sizeof err), 0);
    assert_string_equal(s.protocol, "plaintext");
}

static void test_protocol_values(void **state)
{
    (void)state;
    char err[256];
    static const char *const ok[] = {"plaintext", "ssl", "SASL_PLAINTEXT", "sasl_ssl"};
    for (size_t i = 0; i < 4; i++) {
        setenv("KAFKA_SECURITY_PROTOCOL", ok[i], 1);
        if (strncasecmp(ok[i], "sasl", 4) == 0) {
            setenv("KAFKA_SASL_MECHANISM", "PLAIN", 1);
            setenv("KAFKA_SASL_USERNAME", "u", 1);
            setenv("KAFKA_SASL_PASSWORD", "p", 1);
        }
        assert_int_equal(check(err, sizeof err), 0);
        reset_env(NULL);
    }
    setenv("KAFKA_SECURITY_PROTOCOL", "tls", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SECURITY_PROTOCOL must be plaintext, ssl, "
                                "sasl_plaintext or sasl_ssl"));
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext_and_a_very_long_tail", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SECURITY_PROTOCOL"));
}

static void test_sasl_requires_each_setting(void **state)
{
    (void)state;
    char err[256];
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SASL_MECHANISM is required"));

    setenv("KAFKA_SASL_MECHANISM", "GSSAPI", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or "
                                "SCRAM-SHA-512"));

    setenv("KAFKA_SASL_MECHANISM", "scram-sha-512", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SASL_USERNAME is required"));

    setenv("KAFKA_SASL_USERNAME", "ingester", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SASL_PASSWORD is required"));

    setenv("KAFKA_SASL_PASSWORD", "hunter2-secret", 1);
    kafka_security s;
    assert_int_equal(kafka_security_from_env(&s, err, sizeof err), 0);
    assert_string_equal(s.mechanism, "SCRAM-SHA-512");
    assert_string_equal(s.username, "ingester");
}

static void test_settings_without_their_protocol(void **state)
{
    (void)state;
    char err[256];
    /* A forgotten KAFKA_SECURITY_PROTOCOL must not connect in clear text
     * with the credentials silently unused. */
    setenv("KAFKA_SASL_USERNAME", "ingester", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL="
                                "plaintext does not use SASL"));
    reset_env(NULL);
    setenv("KAFKA_SECURITY_PROTOCOL", "ssl", 1);
    setenv("KAFKA_SASL_PASSWORD", "hunter2-secret", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SASL_PASSWORD is set but"));
    assert_null(strstr(err, "hunter2"));
    reset_env(NULL);
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext", 1);
    setenv("KAFKA_SASL_MECHANISM", "PLAIN", 1);
    setenv("KAFKA_SASL_USERNAME", "u", 1);
    setenv("KAFKA_SASL_PASSWORD", "p", 1);
    setenv("KAFKA_SSL_CA_LOCATION", "/etc/hostname", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SSL_CA_LOCATION is set but KAFKA_SECURITY_PROTOCOL="
                                "sasl_plaintext does not use TLS"));
}

static void test_ssl_files(void **state)
{
    (void)state;
    char err[256];
    char path[] = "/tmp/test_kafka_security.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);

    setenv("KAFKA_SECURITY_PROTOCOL", "ssl", 1);
    setenv("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SSL_CA_LOCATION names a file that cannot be read"));

    setenv("KAFKA_SSL_CA_LOCATION", path, 1);
    assert_int_equal(check(err, sizeof err), 0);

    setenv("KAFKA_SSL_CERTIFICATE_LOCATION", path, 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SSL_KEY_LOCATION is required with "
                                "KAFKA_SSL_CERTIFICATE_LOCATION"));
    unsetenv("KAFKA_SSL_CERTIFICATE_LOCATION");
    setenv("KAFKA_SSL_KEY_LOCATION", path, 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SSL_CERTIFICATE_LOCATION is required with "
                                "KAFKA_SSL_KEY_LOCATION"));
    setenv("KAFKA_SSL_CERTIFICATE_LOCATION", "/nonexistent/cert.pem", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_non_null(strstr(err, "KAFKA_SSL_CERTIFICATE_LOCATION names a file"));
    setenv("KAFKA_SSL_CERTIFICATE_LOCATION", path, 1);
    kafka_security s;
    assert_int_equal(kafka_security_from_env(&s, err, sizeof err), 0);
    assert_string_equal(s.key_location, path);
    unlink(path);
}

static void test_conf_carries_credentials(void **state)
{
    (void)state;
    char err[256], v[256];
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext", 1);
    setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256", 1);
    setenv("KAFKA_SASL_USERNAME", "scheduler", 1);
    setenv("KAFKA_SASL_PASSWORD", "hunter2-secret", 1);
    rd_kafka_conf_t *conf = kafka_conf_new("127.0.0.1:9092", err, sizeof err);
    assert_non_null(conf);
    conf_value(conf, "bootstrap.servers", v, sizeof v);
    assert_string_equal(v, "127.0.0.1:9092");
    conf_value(conf, "security.protocol", v, sizeof v);
    assert_string_equal(v, "sasl_plaintext");
    conf_value(conf, "sasl.mechanisms", v, sizeof v);
    assert_string_equal(v, "SCRAM-SHA-256");
    conf_value(conf, "sasl.username", v, sizeof v);
    assert_string_equal(v, "scheduler");
    conf_value(conf, "sasl.password", v, sizeof v);
    assert_string_equal(v, "hunter2-secret");
    rd_kafka_conf_destroy(conf);

    /* The producer's and the ingester's configuration start from it too. */
    conf = kafka_producer_conf("127.0.0.1:9092", 1000, err, sizeof err);
    assert_non_null(conf);
    conf_value(conf, "sasl.username", v, sizeof v);
    assert_string_equal(v, "scheduler");
    conf_value(conf, "enable.idempotence", v, sizeof v);
    assert_string_equal(v, "true");
    rd_kafka_conf_destroy(conf);

    /* A bad setting means no configuration at all. */
    setenv("KAFKA_SASL_MECHANISM", "OAUTHBEARER", 1);
    assert_null(kafka_conf_new("127.0.0.1:9092", err, sizeof err));
    assert_non_null(strstr(err, "KAFKA_SASL_MECHANISM"));
    assert_null(kafka_producer_conf("127.0.0.1:9092", 1000, err, sizeof err));
}

/* Runs fn in a child with stderr captured; returns its exit status. */
static int run_child(void (*fn)(void), char *out, size_t outlen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < outlen - 1 && (r = read(fds[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void child_no_password(void)
{
    setenv("KAFKA_BROKERS", "127.0.0.1:9092", 1);
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl", 1);
    setenv("KAFKA_SASL_MECHANISM", "PLAIN", 1);
    setenv("KAFKA_SASL_USERNAME", "ingester", 1);
    kafka_brokers_or_exit();
}

static void child_password_without_sasl(void)
{
    setenv("KAFKA_BROKERS", "127.0.0.1:9092", 1);
    setenv("KAFKA_SASL_PASSWORD", "hunter2-secret", 1);
    kafka_brokers_or_exit();
}

static void child_good(void)
{
    setenv("KAFKA_BROKERS", "127.0.0.1:9092", 1);
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext", 1);
    setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", 1);
    setenv("KAFKA_SASL_USERNAME", "ingester", 1);
    setenv("KAFKA_SASL_PASSWORD", "hunter2-secret", 1);
    const char *b = kafka_brokers_or_exit();
    _exit(strcmp(b, "127.0.0.1:9092") == 0 ? 0 : 1);
}

static void test_exit_2_names_the_variable(void **state)
{
    (void)state;
    char out[2048];
    assert_int_equal(run_child(child_no_password, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_non_null(strstr(out, "configuration error: KAFKA_SASL_PASSWORD is required with "
                                "KAFKA_SECURITY_PROTOCOL=sasl_ssl"));
    assert_int_equal(run_child(child_password_without_sasl, out, sizeof out), CONFIG_EXIT_STATUS);
    assert_non_null(strstr(out, "KAFKA_SASL_PASSWORD is set but"));
    assert_null(strstr(out, "hunter2"));
    assert_int_equal(run_child(child_good, out, sizeof out), 0);
    assert_null(strstr(out, "hunter2"));
}

static void test_fatal_flag(void **state)
{
    (void)state;
    char why[128] = "untouched";
    assert_false(kafka_fatal(why, sizeof why));
    assert_string_equal(why, "untouched");
    kafka_fatal_record("PRODUCER_FENCED: fenced by a newer instance");
    kafka_fatal_record("second error"); /* the first one is kept */
    assert_true(kafka_fatal(NULL, 0));
    assert_true(kafka_fatal(why, sizeof why));
    assert_string_equal(why, "PRODUCER_FENCED: fenced by a newer instance");
}

/* The error convention (failf.h): a credential without its protocol says
 * how to fix it on a HINT line of its own. */
static void test_message_with_hint(void **state)
{
    (void)state;
    char err[512];
    setenv("KAFKA_SASL_USERNAME", "ingester", 1);
    assert_int_equal(check(err, sizeof err), -1);
    assert_string_equal(err, "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL=plaintext "
                             "does not use SASL\n"
                             "HINT: Set KAFKA_SECURITY_PROTOCOL to sasl_plaintext or sasl_ssl, or "
                             "unset KAFKA_SASL_USERNAME.");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_plaintext, reset_env),
        cmocka_unit_test_setup(test_protocol_values, reset_env),
        cmocka_unit_test_setup(test_sasl_requires_each_setting, reset_env),
        cmocka_unit_test_setup(test_settings_without_their_protocol, reset_env),
        cmocka_unit_test_setup(test_ssl_files, reset_env),
        cmocka_unit_test_setup(test_conf_carries_credentials, reset_env),
        cmocka_unit_test_setup(test_exit_2_names_the_variable, reset_env),
        cmocka_unit_test_setup(test_fatal_flag, reset_env),
        cmocka_unit_test_setup(test_message_with_hint, reset_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
