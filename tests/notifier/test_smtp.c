/* test_smtp.c: common/smtp.c against the test SMTP server
 * (tests/support/smtp_sink.c) over real TCP: the stored message is MIME
 * multipart/mixed whose text part and PDF attachment decode to exactly what
 * was sent, with the caller's Message-ID and base64 lines of 76 characters;
 * AUTH PLAIN and LOGIN; 5xx replies are permanent, 4xx replies, refused
 * connections and timeouts transient; STARTTLS required and not offered
 * sends nothing; the SMTP_* settings and header injection refused. No
 * database (label unit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/smtp.h"
#include "support/smtp_sink.h"

static smtp_sink *sink;

static int setup(void **state)
{
    (void)state;
    sink = smtp_sink_start("127.0.0.1", 0, NULL);
    return sink ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    smtp_sink_stop(sink);
    return 0;
}

static void config(smtp_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->url, sizeof c->url, "smtp://127.0.0.1:%d", smtp_sink_port(sink));
    snprintf(c->from, sizeof c->from, "billing@acme.example");
    c->connect_timeout_ms = 2000;
    c->timeout_ms = 5000;
}

static unsigned char pdf_bytes[20000];

static smtp_message message(void)
{
    for (size_t i = 0; i < sizeof pdf_bytes; i++)
        pdf_bytes[i] = (unsigned char)((i * 131 + 7) % 256);
    memcpy(pdf_bytes, "%PDF-1.5\n", 9);
    return (smtp_message){
        .to = "ap@client.example",
        .subject = "Invoice ACME-2026-000042 from Acme \xc3\x89tudes LLP",
        .body =
            "Dear client,\n\n.A line starting with a dot\nInvoice ACME-2026-000042: 4444.41 USD due 2026-04-03.\n",
        .message_id = "<invoice_issued.42.0.0@ledgerline>",
        .date = "Wed, 04 Mar 2026 09:00:00 +0000",
        .pdf = pdf_bytes,
        .pdf_len = sizeof pdf_bytes,
        .pdf_name = "ACME-2026-000042.pdf"};
}

static void test_message_arrives_whole(void **state)
{
    (void)state;
    smtp_config c;
    config(&c);
    smtp_message m = message();
    size_t before = smtp_sink_count(sink);
    char err[512];
    smtp_result r = smtp_send(&c, &m, err, sizeof err);
    if (r != SMTP_SENT)
        fail_msg("send: %s", err);
    assert_int_equal(smtp_sink_wait(sink, before + 1, 5000), before + 1);
    smtp_sink_msg got;
    assert_int_equal(smtp_sink_get(sink, before, &got), 0);
    assert_string_equal(got.mail_from, "billing@acme.example");
    assert_string_equal(got.rcpt, "ap@client.example");
    char *h = smtp_sink_header(got.data, "Message-ID");
    assert_string_equal(h, "<invoice_issued.42.0.0@ledgerline>");
    free(h);
    h = smtp_sink_header(got.data, "To");
    assert_string_equal(h, "ap@client.example");
    free(h);
    h = smtp_sink_header(got.data, "Subject");
    assert_non_null(strstr(h, "=?UTF-8?B?"));
    free(h);
    h = smtp_sink_header(got.data, "Content-Type");
    assert_non_null(strstr(h, "multipart/mixed"));
    free(h);
    size_t n;
    unsigned char *text = smtp_sink_part(got.data, "text/plain", &n);
    assert_non_null(text);
    assert_int_equal(n, strlen(m.body));
    assert_memory_equal(text, m.body, n);
    free(text);
    unsigned char *pdf = smtp_sink_part(got.data, "application/pdf", &n);
    assert_non_null(pdf);
    assert_int_equal(n, sizeof pdf_bytes);
    assert_memory_equal(pdf, pdf_bytes, n);
    free(pdf);
    assert_non_null(strstr(got.data, "filename=\"ACME-2026-000042.pdf\""));
    /* Every line at most 78 characters; the base64 ones exactly 76 but the last. */
    size_t b64_full = 0;
    for (const char *p = got.data; *p;) {
        const char *e = strstr(p, "\r\n");
        size_t l = e ? (size_t)(e - p) : strlen(p);
        assert_true(l <= 78);
        b64_full += l == 76;
        p = e ? e + 2 : p + l;
    }
    assert_true(b64_full >= sizeof pdf_bytes * 4 / 3 / 76 - 1);
    smtp_sink_msg_free(&got);
}

static void test_auth_plain_and_login(void **state)
{
    (void)state;
    const char *mechs[] = {"PLAIN", "LOGIN"};
    for (int i = 0; i < 2; i++) {
        smtp_sink_require_auth(sink, "mailer", "s3cret-pass", mechs[i]);
        smtp_config c;
        config(&c);
        snprintf(c.username, sizeof c.username, "mailer");
        snprintf(c.password, sizeof c.password, "s3cret-pass");
        smtp_message m = message();
        size_t before = smtp_sink_count(sink);
        char err[512];
        smtp_result r = smtp_send(&c, &m, err, sizeof err);
        if (r != SMTP_SENT)
            fail_msg("%s: %s", mechs[i], err);
        smtp_sink_msg got;
        assert_int_equal(smtp_sink_get(sink, before, &got), 0);
        assert_string_equal(got.auth_user, "mailer");
        smtp_sink_msg_free(&got);
        /* Wrong password: refused (535), transient (configuration), nothing stored. */
        snprintf(c.password, sizeof c.password, "wrong");
        before = smtp_sink_count(sink);
        assert_int_equal(smtp_send(&c, &m, err, sizeof err), SMTP_TRANSIENT);
        assert_null(strstr(err, "wrong"));
        assert_int_equal(smtp_sink_count(sink), before);
        /* No credentials where AUTH is required: 530 on MAIL, transient too. */
        c.username[0] = c.password[0] = '\0';
        assert_int_equal(smtp_send(&c, &m, err, sizeof err), SMTP_TRANSIENT);
        assert_non_null(strstr(err, "530"));
        assert_int_equal(smtp_sink_count(sink), before);
    }
    /* Back to no AUTH for the other tests: a fresh sink. */
    smtp_sink_stop(sink);
    sink = smtp_sink_start("127.0.0.1", 0, NULL);
    assert_non_null(sink);
}

static void test_replies_classified(void **state)
{
    (void)state;
    struct {
        const char *stage;
        int code;
        smtp_result want;
    } cases[] = {{"RCPT", 550, SMTP_PERMANENT}, {"RCPT", 450, SMTP_TRANSIENT},
                 {"MAIL", 451, SMTP_TRANSIENT}, {"MAIL", 553, SMTP_PERMANENT},
                 {"DATA", 554, SMTP_PERMANENT}, {"DATA", 452, SMTP_TRANSIENT}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_sink_force(sink, cases[i].stage, cases[i].code, 1);
        smtp_config c;
        config(&c);
        smtp_message m = message();
        size_t before = smtp_sink_count(sink);
        char err[512] = "";
        smtp_result r = smtp_send(&c, &m, err, sizeof err);
        if (r != cases[i].want)
            fail_msg("%s %d: %s, want %s (%s)", cases[i].stage, cases[i].code, smtp_result_name(r),
                     smtp_result_name(cases[i].want), err);
        char code[8];
        snprintf(code, sizeof code, "%d", cases[i].code);
        assert_non_null(strstr(err, code));
        assert_int_equal(smtp_sink_count(sink), before);
    }
    /* The next one goes through again. */
    smtp_config c;
    config(&c);
    smtp_message m = message();
    char err[512];
    assert_int_equal(smtp_send(&c, &m, err, sizeof err), SMTP_SENT);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_connection_failures_transient(void **state)
{
    (void)state;
    /* A port nobody listens on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    smtp_config c;
    config(&c);
    snprintf(c.url, sizeof c.url, "smtp://127.0.0.1:%d", ntohs(a.sin_port));
    smtp_message m = message();
    char err[512];
    assert_int_equal(smtp_send(&c, &m, err, sizeof err), SMTP_TRANSIENT);
    /* A server that accepts the connection and never greets: the timeout. */
    assert_int_equal(listen(fd, 4), 0);
    c.timeout_ms = 700;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(smtp_send(&c, &m, err, sizeof err), SMTP_TRANSIENT);
    long took = elapsed_ms(&t0);
    assert_true(took < 5000);
    close(fd);
}

static void test_starttls_required_sends_nothing_in_clear(void **state)
{
    (void)state;
    smtp_config c;
    config(&c);
    c.starttls = true;
    smtp_message m = message();
    size_t before = smtp_sink_count(sink);
    char err[512];
    assert_int_equal(smtp_send(&c, &m, err, sizeof err), SMTP_TRANSIENT);
    assert_int_equal(smtp_sink_count(sink), before);
}

static void test_settings(void **state)
{
    (void)state;
    smtp_config c;
    char err[512];
    unsetenv("SMTP_URL");
    setenv("SMTP_FROM", "billing@acme.example", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "SMTP_URL"));
    setenv("SMTP_URL", "http://mail.example.com", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), -1);
    setenv("SMTP_URL", "smtp://user:pw@mail.example.com", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), -1);
    assert_null(strstr(err, "pw"));
    setenv("SMTP_URL", "smtp://mail.example.com:587", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), 0);
    assert_true(c.starttls);
    assert_int_equal(c.connect_timeout_ms, 10000);
    setenv("SMTP_URL", "smtp://127.0.0.1:2525", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), 0);
    assert_false(c.starttls);
    setenv("SMTP_STARTTLS", "on", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), 0);
    assert_true(c.starttls);
    unsetenv("SMTP_STARTTLS");
    setenv("SMTP_URL", "smtps://mail.example.com", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), 0);
    assert_false(c.starttls); /* implicit TLS */
    setenv("SMTP_FROM", "Billing <billing@acme.example>", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "SMTP_FROM"));
    setenv("SMTP_FROM", "billing@acme.example", 1);
    setenv("SMTP_PASSWORD", "line\nbreak-secret", 1);
    assert_int_equal(smtp_config_from_env(&c, err, sizeof err), -1);
    assert_null(strstr(err, "break-secret"));
    unsetenv("SMTP_PASSWORD");
    unsetenv("SMTP_URL");
    unsetenv("SMTP_FROM");
}

static void test_header_injection_refused(void **state)
{
    (void)state;
    smtp_config c;
    config(&c);
    char err[512];
    size_t len;
    smtp_message m = message();
    m.subject = "Invoice\r\nBcc: victim@example.com";
    assert_null(smtp_build(&c, &m, &len, err, sizeof err));
    m = message();
    m.to = "ap@client.example>\r\nRCPT TO:<x@y.z";
    assert_null(smtp_build(&c, &m, &len, err, sizeof err));
    assert_int_equal(smtp_send(&c, &m, err, sizeof err), SMTP_PERMANENT);
    m = message();
    m.message_id = "no-angle@ledgerline";
    assert_null(smtp_build(&c, &m, &len, err, sizeof err));
    m = message();
    m.pdf_name = "../../etc/passwd";
    assert_null(smtp_build(&c, &m, &len, err, sizeof err));
    assert_false(smtp_address_valid("a b@c.d"));
    assert_false(smtp_address_valid("@c.d"));
    assert_false(smtp_address_valid("a@b@c"));
    assert_true(smtp_address_valid("ap+billing@client.example"));
    /* Same message, same bytes (the Date is given). */
    m = message();
    char *a = smtp_build(&c, &m, &len, err, sizeof err);
    size_t len2;
    char *b = smtp_build(&c, &m, &len2, err, sizeof err);
    assert_int_equal(len, len2);
    assert_memory_equal(a, b, len);
    free(a);
    free(b);
}

static void test_base64_lines(void **state)
{
    (void)state;
    size_t n;
    char *b = smtp_base64((const unsigned char *)"hello world", 11, 0, &n);
    assert_string_equal(b, "aGVsbG8gd29ybGQ=");
    free(b);
    unsigned char d[120];
    memset(d, 0xff, sizeof d);
    b = smtp_base64(d, sizeof d, 76, &n);
    assert_int_equal(n, 160 + 2 * 2);
    assert_int_equal(strstr(b, "\r\n") - b, 76);
    size_t dl;
    unsigned char *back = smtp_sink_b64decode(b, n, &dl);
    assert_int_equal(dl, sizeof d);
    assert_memory_equal(back, d, dl);
    free(back);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_arrives_whole),
        cmocka_unit_test(test_auth_plain_and_login),
        cmocka_unit_test(test_replies_classified),
        cmocka_unit_test(test_connection_failures_transient),
        cmocka_unit_test(test_starttls_required_sends_nothing_in_clear),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_header_injection_refused),
        cmocka_unit_test(test_base64_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
