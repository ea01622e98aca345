/* test_log.c: JSON log lines (log.h): shape, levels, redaction, escaping and
 * whole lines under concurrent writers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ledgerline/log.h"

static int pipe_fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(pipe_fds) != 0)
        return -1;
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    log_set_fd(pipe_fds[1]);
    unsetenv("LOG_LEVEL");
    if (log_init("test-log") != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_fd(STDERR_FILENO);
    log_set_level(LL_LOG_INFO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Everything written so far, as text. */
static char *drain(void)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t r = read(pipe_fds[0], buf + n, cap - n - 1);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return buf;
}

/* Exactly one line written since the last call, parsed. */
static json_t *one_line(void)
{
    char *text = drain();
    size_t len = strlen(text);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    assert_ptr_equal(strchr(text, '\n'), text + len - 1);
    json_error_t jerr;
    json_t *j = json_loadb(text, len - 1, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON: %s: %s", jerr.text, text);
    assert_true(json_is_object(j));
    free(text);
    return j;
}

static void assert_nothing_written(void)
{
    char *text = drain();
    assert_string_equal(text, "");
    free(text);
}

static const char *str_field(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_string(v))
        fail_msg("field %s missing or not a string", key);
    return json_string_value(v);
}

static void assert_ts_format(const char *ts)
{
    /* 2026-11-24T02:00:00.123Z */
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    assert_int_equal(strlen(ts), strlen(pattern));
    for (size_t i = 0; pattern[i] != '\0'; i++) {
        if (pattern[i] == 'd')
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        else
            assert_int_equal(ts[i], pattern[i]);
    }
}

static void test_line_shape(void **state)
{
    (void)state;
    log_msg(LL_LOG_INFO, "invoice created", "invoice_id", "42", "firm", "acme", NULL);
    json_t *j = one_line();
    assert_ts_format(str_field(j, "ts"));
    assert_string_equal(str_field(j, "level"), "info");
    assert_string_equal(str_field(j, "component"), "test-log");
    assert_string_equal(str_field(j, "msg"), "invoice created");
    assert_string_equal(str_field(j, "invoice_id"), "42");
    assert_string_equal(str_field(j, "firm"), "acme");
    assert_int_equal(json_object_size(j), 6);
    json_decref(j);

    /* Fixed keys come first, in this order. */
    log_msg(LL_LOG_ERROR, "x", "a", "b", NULL);
    char *text = drain();
    assert_int_equal(strncmp(text, "{\"ts\":\"", 7), 0);
    assert_non_null(strstr(text, "\",\"level\":\"error\",\"component\":\"test-log\",\"msg\":\"x\","
                                 "\"a\":\"b\"}\n"));
    free(text);
}

static void test_null_value_and_reserved_keys(void **state)
{
    (void)state;
    log_msg(LL_LOG_WARN, "odd fields", "detail", NULL, NULL);
    json_t *j = one_line();
    assert_true(json_is_null(json_object_get(j, "detail")));
    assert_string_equal(str_field(j, "level"), "warn");
    json_decref(j);

    log_msg(LL_LOG_WARN, "real message", "msg", "sneaky", "level", "debug", NULL);
    j = one_line();
    assert_string_equal(str_field(j, "msg"), "real message");
    assert_string_equal(str_field(j, "level"), "warn");
    assert_string_equal(str_field(j, "field_msg"), "sneaky");
    assert_string_equal(str_field(j, "field_level"), "debug");
    json_decref(j);
}

static void test_levels(void **state)
{
    (void)state;
    log_set_level(LL_LOG_WARN);
    log_msg(LL_LOG_DEBUG, "d", NULL);
    log_msg(LL_LOG_INFO, "i", NULL);
    log_json(LL_LOG_INFO, "i", NULL);
    assert_nothing_written();
    log_msg(LL_LOG_WARN, "w", NULL);
    json_t *j = one_line();
    assert_string_equal(str_field(j, "level"), "warn");
    json_decref(j);
    log_msg(LL_LOG_ERROR, "e", NULL);
    j = one_line();
    assert_string_equal(str_field(j, "level"), "error");
    json_decref(j);

    log_set_level(LL_LOG_DEBUG);
    log_msg(LL_LOG_DEBUG, "d", NULL);
    j = one_line();
    assert_string_equal(str_field(j, "level"), "debug");
    json_decref(j);

    log_set_level(LL_LOG_ERROR);
    log_msg(LL_LOG_WARN, "w", NULL);
    assert_nothing_written();
}

static void test_level_parse_and_init(void **state)
{
    (void)state;
    log_level l;
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LL_LOG_DEBUG);
    assert_int_equal(log_level_parse("info", &l), 0);
    assert_int_equal(l, LL_LOG_INFO);
    assert_int_equal(log_level_parse("warn", &l), 0);
    assert_int_equal(l, LL_LOG_WARN);
    assert_int_equal(log_level_parse("ERROR", &l), 0);
    assert_int_equal(l, LL_LOG_ERROR);
    assert_int_equal(log_level_parse("verbose", &l), -1);
    assert_int_equal(log_level_parse("", &l), -1);
    assert_int_equal(log_level_parse(NULL, &l), -1);
    assert_int_equal(log_level_parse("info ", &l), -1);

    setenv("LOG_LEVEL", "debug", 1);
    assert_int_equal(log_init("test-log"), 0);
    log_msg(LL_LOG_DEBUG, "visible", NULL);
    json_t *j = one_line();
    json_decref(j);

    setenv("LOG_LEVEL", "loud", 1);
    assert_int_equal(log_init("test-log"), -1);

    setenv("LOG_LEVEL", "", 1);
    assert_int_equal(log_init("test-log"), 0);
    log_msg(LL_LOG_DEBUG, "hidden", NULL);
    assert_nothing_written();
    log_msg(LL_LOG_INFO, "shown", NULL);
    j = one_line();
    json_decref(j);
    unsetenv("LOG_LEVEL");
}

static void test_secret_keys(void **state)
{
    (void)state;
    assert_true(log_key_is_secret("secret"));
    assert_true(log_key_is_secret("STRIPE_WEBHOOK_SECRET"));
    assert_true(log_key_is_secret("password"));
    assert_true(log_key_is_secret("db_Password"));
    assert_true(log_key_is_secret("Authorization"));
    assert_true(log_key_is_secret("stripe_api_key"));
    assert_true(log_key_is_secret("access_token"));
    assert_true(log_key_is_secret("card_number"));
    assert_false(log_key_is_secret("invoice_id"));
    assert_false(log_key_is_secret("error"));
    assert_false(log_key_is_secret("key"));
    assert_false(log_key_is_secret(NULL));

    log_msg(LL_LOG_INFO, "calling stripe", "Authorization", "Bearer sk_live_abc", "api_key",
            "sk_live_abc", "webhook_secret", "whsec_abc", "card", "4242424242424242", "invoice_id",
            "7", NULL);
    char *text = drain();
    assert_null(strstr(text, "sk_live"));
    assert_null(strstr(text, "whsec"));
    assert_null(strstr(text, "4242"));
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    assert_string_equal(str_field(j, "Authorization"), "[redacted]");
    assert_string_equal(str_field(j, "api_key"), "[redacted]");
    assert_string_equal(str_field(j, "webhook_secret"), "[redacted]");
    assert_string_equal(str_field(j, "card"), "[redacted]");
    assert_string_equal(str_field(j, "invoice_id"), "7");
    json_decref(j);
    free(text);
}

static void test_log_json_fields(void **state)
{
    (void)state;
    json_t *fields = json_pack("{s:I, s:b, s:n, s:s, s:{s:s, s:i}, s:[{s:s}, i], s:{s:s}}",
                               "invoice_id", (json_int_t)9007199254740993LL, "ok", 1, "none",
                               "note", "plain", "stripe", "api_key", "sk_live_x", "attempt", 2,
                               "items", "token", "tok_x", 5, "password", "inner", "p");
    assert_non_null(fields);
    log_json(LL_LOG_INFO, "structured", fields);
    char *text = drain();
    assert_null(strstr(text, "sk_live_x"));
    assert_null(strstr(text, "tok_x"));
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "invoice_id")), 9007199254740993LL);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_true(json_is_null(json_object_get(j, "none")));
    assert_string_equal(str_field(j, "note"), "plain");
    json_t *stripe = json_object_get(j, "stripe");
    assert_string_equal(str_field(stripe, "api_key"), "[redacted]");
    assert_int_equal(json_integer_value(json_object_get(stripe, "attempt")), 2);
    json_t *items = json_object_get(j, "items");
    assert_string_equal(str_field(json_array_get(items, 0), "token"), "[redacted]");
    assert_int_equal(json_integer_value(json_array_get(items, 1)), 5);
    assert_string_equal(str_field(j, "password"), "[redacted]");
    json_decref(j);

    /* fields is borrowed and left as it was. */
    assert_int_equal(fields->refcount, 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(fields, "stripe"), "api_key")),
        "sk_live_x");
    json_decref(fields);

    log_json(LL_LOG_INFO, "no fields", NULL);
    j = one_line();
    assert_int_equal(json_object_size(j), 4);
    json_decref(j);
}

static void test_escaping(void **state)
{
    (void)state;
    const char *msg = "quote \" backslash \\ newline \n tab \t cr \r ctl \x01 done";
    const char *val = "multi\nline\n{\"json\":true}";
    log_msg(LL_LOG_INFO, msg, "detail", val, "key \"with\"\nnewline", "v", NULL);
    json_t *j = one_line(); /* one line despite the newlines */
    assert_string_equal(str_field(j, "msg"), msg);
    assert_string_equal(str_field(j, "detail"), val);
    assert_string_equal(str_field(j, "key \"with\"\nnewline"), "v");
    json_decref(j);

    /* Bytes that are not UTF-8 must not cost the line. */
    log_msg(LL_LOG_INFO, "bad \xff\xfe byte", "detail", "x\xc3(y", "k\x80", "v", NULL);
    j = one_line();
    assert_string_equal(str_field(j, "msg"), "bad ?? byte");
    assert_string_equal(str_field(j, "detail"), "x?(y");
    assert_string_equal(str_field(j, "k?"), "v");
    json_decref(j);

    /* Valid multi-byte text passes through unchanged. */
    log_msg(LL_LOG_INFO, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb8", NULL);
    j = one_line();
    assert_string_equal(str_field(j, "msg"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb8");
    json_decref(j);
}

static void test_long_line(void **state)
{
    (void)state;
    size_t n = 20000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    log_msg(LL_LOG_INFO, "big", "detail", big, NULL);
    json_t *j = one_line();
    assert_string_equal(str_field(j, "detail"), big);
    json_decref(j);
    free(big);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    errno = ENOENT;
    log_msg(LL_LOG_INFO, "x", NULL);
    assert_int_equal(errno, ENOENT);
    errno = EAGAIN;
    log_json(LL_LOG_INFO, "x", NULL);
    assert_int_equal(errno, EAGAIN);
    char *text = drain();
    free(text);
}

#define THREADS 8
#define PER_THREAD 300

static void *writer(void *arg)
{
    char id[16], payload[6000];
    snprintf(id, sizeof id, "%d", (int)(intptr_t)arg);
    /* Longer than PIPE_BUF and the stack buffer, so the heap path and large
     * writes are exercised too. */
    memset(payload, 'a' + (int)(intptr_t)arg, sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    for (int i = 0; i < PER_THREAD; i++)
        log_msg(LL_LOG_INFO, "concurrent", "thread", id, "payload", i % 2 ? payload : "short",
                NULL);
    return NULL;
}

static void test_concurrent_lines_whole(void **state)
{
    (void)state;
    char path[] = "/tmp/test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fcntl(fd, F_SETFL, O_APPEND);
    log_set_fd(fd);

    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    log_set_fd(pipe_fds[1]);

    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 0);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    close(fd);

    int lines = 0;
    int per[THREADS] = {0};
    for (char *p = text; *p != '\0';) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, NULL);
        assert_non_null(j);
        int id = atoi(str_field(j, "thread"));
        assert_true(id >= 0 && id < THREADS);
        const char *payload = str_field(j, "payload");
        if (strcmp(payload, "short") != 0) {
            assert_int_equal(strlen(payload), 5999);
            assert_int_equal(payload[0], 'a' + id);
            assert_int_equal(payload[5998], 'a' + id);
        }
        per[id]++;
        lines++;
        json_decref(j);
        p = nl + 1;
    }
    assert_int_equal(lines, THREADS * PER_THREAD);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(per[i], PER_THREAD);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_value_and_reserved_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_parse_and_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_json_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_lines_whole, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
