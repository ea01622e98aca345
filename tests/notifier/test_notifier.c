/* test_notifier.c: billing-notifier as a real process (label notifier;
 * needs DATABASE_URL and KAFKA_BROKERS) against the test SMTP server of
 * tests/support/smtp_sink.c, over TCP. Events reach it as in production: the
 * invoicing batch, billing.create_credit_note, billing.land_money and
 * billing.invoice_event write the outbox, the notifier's own relay publishes
 * to <prefix>invoices, the notifier consumes them. Checked: an issued invoice
 * is mailed once to the client with its PDF attached, byte for byte the
 * stored document, whose text shows the legal number and balance due; a
 * credit note likewise; a receipt on payment; action_required for a hard
 * decline and payment_failed for a soft one; a client without an address
 * gets a failed row and no mail; a 5xx is recorded failed after one attempt;
 * 4xx replies are retried until sent; a redelivered event sends nothing
 * again; a SIGKILL after the server accepted a message and before the
 * notifier recorded it resends it once, with the same Message-ID; `billingctl
 * reminders run` publishes ticks.reminders and the notifier mails each due
 * step once, a replayed tick nothing. Each test
 * makes its own firm and client addresses, so mail of other tests' invoices
 * flowing meanwhile is told apart. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ledgerline/db.h"
#include "ledgerline/document.h"
#include "ledgerline/log.h"
#include "ledgerline/topics.h"
#include "notifier/ntest.h"
#include "notifier/pdftest.h"
#include "support/ctltest.h"
#include "support/dbtest.h"
#include "support/invworker.h"
#include "support/kafkatest.h"
#include "support/smtp_sink.h"

#define I ntest_i
#define WAIT_MS 120000

static PGconn *pg;
static db_conn *db;
static smtp_sink *sink;
static pid_t notifier = -1;
static char prefix[64], logpath[256];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start_notifier(void)
{
    notifier = invworker_spawn(LL_NOTIFIER_BIN, prefix, logpath);
}

static int setup(void **state)
{
    (void)state;
    log_init("test_notifier");
    pg = dbtest_connect();
    char err[512];
    db = db_connect(dbtest_owner_url(), 0, err, sizeof err);
    sink = smtp_sink_start("127.0.0.1", 0, NULL);
    if (db == NULL || sink == NULL)
        return -1;
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", smtp_sink_port(sink));
    setenv("SMTP_URL", url, 1);
    setenv("SMTP_FROM", "billing@ledgerline.test", 1);
    setenv("NOTIFIER_MAX_ATTEMPTS", "4", 1);
    snprintf(prefix, sizeof prefix, "ntf%d.", (int)getpid());
    snprintf(logpath, sizeof logpath, "/tmp/test_notifier-%d.log", (int)getpid());
    /* The notifier's topics exist before it subscribes, as provisioning
     * makes them in production (kafkatest_create_topic says why). */
    const char *topics[] = {TOPIC_INVOICES, TOPIC_TICKS_REMINDERS};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        char name[TOPIC_NAME_MAX + 1];
        assert_int_equal(topic_name(prefix, topics[i], name, sizeof name), 0);
        kafkatest_create_topic(getenv("KAFKA_BROKERS"), name);
    }
    start_notifier();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = invworker_stop_pid(notifier);
    if (rc != 0)
        invworker_dump_log(logpath);
    smtp_sink_stop(sink);
    db_close(db);
    PQfinish(pg);
    document_release_fonts();
    return rc == 0 ? 0 : -1; /* a clean stop (and, under ASan, no leak) */
}

/* A client address unique to this call. */
static const char *address(const char *tag)
{
    static char ring[8][128];
    static unsigned n;
    char *b = ring[n++ % 8];
    snprintf(b, sizeof ring[0], "%s-%s@client.example", tag, dbtest_unique());
    return b;
}

/* Waits for the notification (kind, invoice, step 0) to have status; fails
 * the test (with the notifier's log) after WAIT_MS. Returns its attempts. */
static int wait_status(const char *kind, int64_t inv, const char *status)
{
    const char *p[] = {kind, I(inv), status};
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        const char *t =
            dbtest_text(pg,
                        "SELECT attempts::text FROM billing.notifications WHERE kind = $1"
                        " AND invoice_id = $2::bigint AND status = $3",
                        3, p);
        if (t != NULL)
            return atoi(t);
        sleep_ms(100);
    }
    invworker_dump_log(logpath);
    fail_msg("notification %s of invoice %lld never became %s", kind, (long long)inv, status);
    return -1;
}

/* How many stored messages carry this Message-ID; *first gets a copy of
 * the first (when first != NULL and there is one). */
static int messages_with_id(const char *message_id, smtp_sink_msg *first)
{
    int n = 0;
    size_t total = smtp_sink_count(sink);
    for (size_t i = 0; i < total; i++) {
        smtp_sink_msg m;
        if (smtp_sink_get(sink, i, &m) != 0)
            break;
        char *h = smtp_sink_header(m.data, "Message-ID");
        bool match = h != NULL && strcmp(h, message_id) == 0;
        free(h);
        if (match && n++ == 0 && first != NULL) {
            *first = m;
            continue;
        }
        smtp_sink_msg_free(&m);
    }
    return n;
}

static const char *msgid(const char *kind, int64_t inv, int64_t cn)
{
    static char b[128];
    snprintf(b, sizeof b, "<%s.%lld.%lld.0@ledgerline>", kind, (long long)inv, (long long)cn);
    return b;
}

/* The PDF attached to m equals the stored document of (inv, cn); returns
 * its pdftotext text (malloc'd). */
static char *attached_pdf_is_stored(const smtp_sink_msg *m, int64_t inv, int64_t cn)
{
    size_t alen;
    unsigned char *att = smtp_sink_part(m->data, "application/pdf", &alen);
    assert_non_null(att);
    unsigned char *stored;
    size_t slen;
    char err[512];
    assert_int_equal(document_fetch(db, inv, cn, &stored, &slen, err, sizeof err), DB_OK);
    assert_int_equal(alen, slen);
    assert_memory_equal(att, stored, slen);
    char *path = pdftest_write(att, alen);
    char *text = pdftest_text(path, 0, 0);
    pdftest_remove(path);
    free(att);
    free(stored);
    assert_non_null(text);
    return text;
}

static char *body_text(const smtp_sink_msg *m)
{
    size_t n;
    unsigned char *b = smtp_sink_part(m->data, "text/plain", &n);
    assert_non_null(b);
    char *s = malloc(n + 1);
    memcpy(s, b, n);
    s[n] = '\0';
    free(b);
    return s;
}

static const char *legal_number(int64_t inv)
{
    static char b[64];
    const char *p[] = {I(inv)};
    snprintf(b, sizeof b, "%s",
             dbtest_text(pg, "SELECT legal_number FROM billing.invoices WHERE id = $1", 1, p));
    return b;
}

static void test_issued_invoice_mailed_with_its_pdf(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTA");
    const char *to = address("issued");
    char to_copy[128];
    snprintf(to_copy, sizeof to_copy, "%s", to);
    int64_t cl = ntest_client(pg, f, "Globex \xe6\x9d\xb1\xe4\xba\xac K.K.", to_copy);
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "jpy", 120000);
    assert_int_equal(wait_status("invoice_issued", inv, "sent"), 1);
    smtp_sink_msg m;
    assert_int_equal(messages_with_id(msgid("invoice_issued", inv, 0), &m), 1);
    assert_string_equal(m.rcpt, to_copy);
    char legal[64];
    snprintf(legal, sizeof legal, "%s", legal_number(inv));
    char *text = attached_pdf_is_stored(&m, inv, 0);
    /* 120000 JPY + 10% tax. */
    const char *want[] = {legal,
                          "Globex \xe6\x9d\xb1\xe4\xba\xac K.K.",
                          "Acme Legal LLP",
                          "120000 JPY",
                          "12000 JPY",
                          "132000 JPY",
                          "Balance due",
                          "IBAN GB29"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("'%s' not in the attached PDF:\n%s", want[i], text);
    free(text);
    char *body = body_text(&m);
    assert_non_null(strstr(body, legal));
    assert_non_null(strstr(body, "132000 JPY"));
    assert_non_null(strstr(body, "2026-03-31"));
    free(body);
    char *subject = smtp_sink_header(m.data, "Subject");
    assert_non_null(strstr(subject, legal));
    free(subject);
    smtp_sink_msg_free(&m);
    const char *pi[] = {I(inv)};
    assert_int_equal(
        dbtest_ok(pg,
                  "SELECT count(*) FROM billing.notifications WHERE invoice_id = $1"
                  " AND sent_at IS NOT NULL AND to_address IS NOT NULL"
                  " AND message_id = '<invoice_issued.' || $1::text || '.0.0@ledgerline>'",
                  1, pi),
        1);

    /* The same event again (a redelivery): nothing is sent twice. The
     * receipt that follows on the same key (partition) is the sentinel. */
    dbtest_ok(pg, "SELECT billing.invoice_event($1, 'invoice.issued', 0, NULL)", 1, pi);
    dbtest_ok(pg, "SELECT applied_cents FROM billing.land_money($1, 132000, '2026-03-05')", 1, pi);
    assert_int_equal(wait_status("receipt", inv, "sent"), 1);
    assert_int_equal(messages_with_id(msgid("invoice_issued", inv, 0), NULL), 1);
    assert_int_equal(messages_with_id(msgid("receipt", inv, 0), &m), 1);
    body = body_text(&m);
    assert_non_null(strstr(body, "received 132000 JPY"));
    assert_null(smtp_sink_part(m.data, "application/pdf", &(size_t){0}));
    free(body);
    smtp_sink_msg_free(&m);
}

static void test_credit_note_mailed_with_its_pdf(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTC");
    const char *to = address("credit");
    int64_t cl = ntest_client(pg, f, "Umbrella plc", to);
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "kwd", 150000);
    int64_t cn = ntest_credit_note(pg, inv, 11000);
    const char *pc[] = {I(cn)};
    char cn_legal[64];
    snprintf(cn_legal, sizeof cn_legal, "%s",
             dbtest_text(pg, "SELECT legal_number FROM billing.credit_notes WHERE id = $1", 1, pc));
    assert_int_equal(wait_status("credit_note", inv, "sent"), 1);
    smtp_sink_msg m;
    assert_int_equal(messages_with_id(msgid("credit_note", inv, cn), &m), 1);
    char *text = attached_pdf_is_stored(&m, inv, cn);
    if (strstr(text, cn_legal) == NULL || strstr(text, "11.000 KWD") == NULL ||
        strstr(text, "CREDIT NOTE") == NULL)
        fail_msg("credit note PDF:\n%s", text);
    free(text);
    smtp_sink_msg_free(&m);
    /* The invoice's own mail went too, with the invoice's document. */
    assert_int_equal(wait_status("invoice_issued", inv, "sent"), 1);
}

static void test_declines_hard_and_soft(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTD");
    int64_t hard = ntest_issued_invoice(pg, db, f, ntest_client(pg, f, "Hard Co", address("hard")),
                                        "usd", 10000);
    int64_t soft = ntest_issued_invoice(pg, db, f, ntest_client(pg, f, "Soft Co", address("soft")),
                                        "usd", 10000);
    const char *ph[] = {I(hard)}, *ps[] = {I(soft)};
    dbtest_ok(pg,
              "SELECT billing.invoice_event($1, 'invoice.payment_failed', 1,"
              " jsonb_build_object('failure_code', 'stolen_card', 'retry_count', 1))",
              1, ph);
    dbtest_ok(pg,
              "SELECT billing.invoice_event($1, 'invoice.payment_failed', 1,"
              " jsonb_build_object('failure_code', 'insufficient_funds', 'retry_count', 1))",
              1, ps);
    wait_status("action_required", hard, "sent");
    wait_status("payment_failed", soft, "sent");
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.notifications WHERE invoice_id = $1"
                               " AND kind IN ('payment_failed', 'action_required')",
                               1, ph),
                     1);
    smtp_sink_msg m;
    assert_int_equal(messages_with_id(msgid("action_required", hard, 0), &m), 1);
    char *body = body_text(&m);
    assert_non_null(strstr(body, "stolen_card"));
    assert_non_null(strstr(body, "update your payment method"));
    free(body);
    smtp_sink_msg_free(&m);
}

static void test_client_without_address_gets_failed_row(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTN");
    int64_t cl = ntest_client(pg, f, "Nobody Ltd", NULL);
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "eur", 5000);
    assert_int_equal(wait_status("invoice_issued", inv, "failed"), 0);
    const char *p[] = {I(inv)};
    const char *e =
        dbtest_text(pg, "SELECT error FROM billing.notifications WHERE invoice_id = $1", 1, p);
    assert_non_null(strstr(e, "has no primary_contact_email"));
    assert_int_equal(messages_with_id(msgid("invoice_issued", inv, 0), NULL), 0);
}

static void test_permanent_and_transient_replies(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTP");
    char to[128];
    snprintf(to, sizeof to, "%s", address("bounce"));
    smtp_sink_force_to(sink, to, "RCPT", 550, 1);
    int64_t inv = ntest_issued_invoice(pg, db, f, ntest_client(pg, f, "Bounce Co", to), "usd", 100);
    assert_int_equal(wait_status("invoice_issued", inv, "failed"), 1);
    const char *p[] = {I(inv)};
    assert_non_null(strstr(dbtest_text(pg,
                                       "SELECT error FROM billing.notifications"
                                       " WHERE invoice_id = $1",
                                       1, p),
                           "550"));
    assert_int_equal(messages_with_id(msgid("invoice_issued", inv, 0), NULL), 0);

    /* Two 4xx answers, then accepted: sent on the third attempt. */
    snprintf(to, sizeof to, "%s", address("greylist"));
    smtp_sink_force_to(sink, to, "RCPT", 451, 2);
    inv = ntest_issued_invoice(pg, db, f, ntest_client(pg, f, "Greylist Co", to), "usd", 100);
    assert_int_equal(wait_status("invoice_issued", inv, "sent"), 3);
    assert_int_equal(messages_with_id(msgid("invoice_issued", inv, 0), NULL), 1);
}

static void test_crash_after_acceptance_resends_once(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTK");
    char to[128];
    snprintf(to, sizeof to, "%s", address("crash"));
    /* The server stores the message and keeps its 250 back; the notifier is
     * killed meanwhile: accepted, never recorded. */
    smtp_sink_hold(sink, to, 60000);
    int64_t inv = ntest_issued_invoice(pg, db, f, ntest_client(pg, f, "Crash Co", to), "usd", 777);
    const char *id = msgid("invoice_issued", inv, 0);
    char id_copy[128];
    snprintf(id_copy, sizeof id_copy, "%s", id);
    for (int waited = 0; messages_with_id(id_copy, NULL) < 1; waited += 100) {
        if (waited > WAIT_MS) {
            invworker_dump_log(logpath);
            fail_msg("the message never reached the server");
        }
        sleep_ms(100);
    }
    kill(notifier, SIGKILL);
    waitpid(notifier, NULL, 0);
    const char *p[] = {I(inv)};
    assert_string_equal(dbtest_text(pg,
                                    "SELECT status || ':' || attempts FROM billing.notifications"
                                    " WHERE invoice_id = $1 AND kind = 'invoice_issued'",
                                    1, p),
                        "queued:1");
    smtp_sink_hold(sink, NULL, 0);
    start_notifier();
    assert_int_equal(wait_status("invoice_issued", inv, "sent"), 2);
    /* Exactly one resend, with the same Message-ID. */
    assert_int_equal(messages_with_id(id_copy, NULL), 2);
}

/* `billingctl reminders run` publishes the day's ticks.reminders tick; the
 * notifier mails each due step once (a replayed tick mails nothing again:
 * the next day's tick on the same shard keys is the sentinel). */
static void reminders_tick(int64_t firm, const char *date)
{
    static char out[4096], err[4096];
    char penv[96];
    snprintf(penv, sizeof penv, "KAFKA_TOPIC_PREFIX=%s", prefix);
    const char *env[] = {penv, NULL};
    const char *argv[] = {"reminders", "run", "--date", date, "--firm-id", I(firm), NULL};
    if (ctltest_argv(out, sizeof out, err, sizeof err, env, argv) != 0)
        fail_msg("billingctl reminders run: %s%s", out, err);
    assert_non_null(strstr(out, "published reminders tick for"));
}

static int wait_reminder(int64_t inv, int step)
{
    const char *p[] = {I(inv), I(step)};
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        const char *t = dbtest_text(pg,
                                    "SELECT attempts::text FROM billing.notifications"
                                    " WHERE kind = 'reminder' AND invoice_id = $1::bigint"
                                    " AND step = $2::int AND status = 'sent'",
                                    2, p);
        if (t != NULL)
            return atoi(t);
        sleep_ms(100);
    }
    invworker_dump_log(logpath);
    fail_msg("reminder %d of invoice %lld never sent", step, (long long)inv);
    return -1;
}

static void test_reminders_tick(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "NTR");
    const char *to = address("remind");
    char to_copy[128];
    snprintf(to_copy, sizeof to_copy, "%s", to);
    int64_t cl = ntest_client(pg, f, "Reminded Ltd", to_copy);
    int64_t inv = ntest_issued_invoice(pg, db, f, cl, "usd", 100000);
    assert_int_equal(wait_status("invoice_issued", inv, "sent"), 1);
    reminders_tick(f, "2026-03-28");
    assert_int_equal(wait_reminder(inv, -3), 1);
    char mid[96];
    snprintf(mid, sizeof mid, "<reminder.%lld.0.-3@ledgerline>", (long long)inv);
    smtp_sink_msg m;
    assert_int_equal(messages_with_id(mid, &m), 1);
    assert_string_equal(m.rcpt, to_copy);
    char *body = body_text(&m);
    assert_non_null(strstr(body, "is due on 2026-03-31, in 3 days"));
    free(body);
    smtp_sink_msg_free(&m);
    /* The same tick again, then the next step's. */
    reminders_tick(f, "2026-03-28");
    reminders_tick(f, "2026-04-07");
    assert_int_equal(wait_reminder(inv, 7), 1);
    assert_int_equal(messages_with_id(mid, NULL), 1);
    snprintf(mid, sizeof mid, "<reminder.%lld.0.7@ledgerline>", (long long)inv);
    assert_int_equal(messages_with_id(mid, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued_invoice_mailed_with_its_pdf),
        cmocka_unit_test(test_credit_note_mailed_with_its_pdf),
        cmocka_unit_test(test_declines_hard_and_soft),
        cmocka_unit_test(test_client_without_address_gets_failed_row),
        cmocka_unit_test(test_permanent_and_transient_replies),
        cmocka_unit_test(test_reminders_tick),
        cmocka_unit_test(test_crash_after_acceptance_resends_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
