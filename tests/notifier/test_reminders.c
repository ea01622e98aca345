/* test_reminders.c: the reminder ladder (label notifier; needs DATABASE_URL,
 * migrated; docs/NOTIFICATIONS.md "Reminders"): billing.reminders_due
 * (sql/017) through common/reminders.c asks for step s of the firm's
 * reminder_days on due_date + s, never for a paid, void or disputed
 * invoice, a paused client or a firm with reminders off, and follows a
 * firm's own ladder; reminders_run mails each due step once through the test
 * SMTP server (real SMTP over TCP, in process) with the Message-ID of the
 * notification key, records it sent, and a second run mails nothing; a
 * client without an address gets one failed row per step; `billingctl
 * reminders run --dry-run` lists the same and writes nothing. Fixture
 * invoices are issued 2026-03-01, due 2026-03-31. Each test makes its own
 * firm, and every query is scoped to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/date.h"
#include "ledgerline/document.h"
#include "ledgerline/log.h"
#include "ledgerline/reminders.h"
#include "notifier/nmail.h"
#include "notifier/ntest.h"
#include "support/ctltest.h"
#include "support/dbtest.h"
#include "support/smtp_sink.h"

#define I ntest_i

static nmail m_;
static PGconn *pg;
static db_conn *db;
static smtp_sink *sink;
static smtp_config smtp;
static char out[65536], errout[65536];
#define ctl(...) ctltest(out, sizeof out, errout, sizeof errout, NULL, __VA_ARGS__)

static int setup(void **state)
{
    (void)state;
    if (nmail_setup(&m_, "test_reminders") != 0)
        return -1;
    pg = m_.pg;
    db = m_.db;
    sink = m_.sink;
    smtp = m_.smtp;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nmail_teardown(&m_);
    return 0;
}

static civil_date day(const char *s)
{
    civil_date d;
    assert_true(date_parse(s, &d));
    return d;
}

/* The invoicing fixture needs the owner's connection (it runs as the
 * invoicing worker would, with the owner's rights in these tests). */
static int64_t invoice(int64_t firm, int64_t client, int64_t fee)
{
    char err[512];
    db_conn *owner = db_connect(dbtest_owner_url(), 0, err, sizeof err);
    if (owner == NULL)
        fail_msg("connect: %s", err);
    int64_t inv = ntest_issued_invoice(pg, owner, firm, client, "usd", fee);
    db_close(owner);
    return inv;
}

typedef struct {
    char text[4096];
    int n;
} due_text;

static void describe(const reminder_due *r, void *arg)
{
    due_text *t = arg;
    size_t len = strlen(t->text);
    snprintf(t->text + len, sizeof t->text - len, "%lld:%d ", (long long)r->invoice_id, r->step);
    t->n++;
}

/* "INV:STEP INV:STEP " of the reminders due on date for firm. */
static const char *due_on(int64_t firm, const char *date)
{
    static due_text t;
    memset(&t, 0, sizeof t);
    char err[512];
    if (reminders_due(db, day(date), firm, 0, 1, describe, &t, err, sizeof err) != DB_OK)
        fail_msg("reminders_due: %s", err);
    return t.text;
}

static const char *pair(int64_t inv, int step)
{
    static char ring[8][48];
    static unsigned n;
    char *b = ring[n++ % 8];
    snprintf(b, sizeof ring[0], "%lld:%d ", (long long)inv, step);
    return b;
}

static void test_the_ladder_and_who_gets_none(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "RLD");
    int64_t cl = ntest_client(pg, f, "Globex", "ap@globex.example");
    int64_t inv = invoice(f, cl, 100000);
    /* Default ladder {-3,7,21,35,65} around 2026-03-31. */
    assert_string_equal(due_on(f, "2026-03-28"), pair(inv, -3));
    assert_string_equal(due_on(f, "2026-04-07"), pair(inv, 7));
    assert_string_equal(due_on(f, "2026-04-21"), pair(inv, 21));
    assert_string_equal(due_on(f, "2026-05-05"), pair(inv, 35));
    assert_string_equal(due_on(f, "2026-06-04"), pair(inv, 65));
    assert_string_equal(due_on(f, "2026-03-31"), "");
    assert_string_equal(due_on(f, "2026-03-29"), "");
    /* Another firm's filter sees nothing of this one. */
    int64_t other = ntest_firm(pg, "RLO");
    assert_string_equal(due_on(other, "2026-03-28"), "");
    /* Shards split the invoices: exactly one of two shards has it. */
    due_text t0 = {0}, t1 = {0};
    char err[512];
    assert_int_equal(reminders_due(db, day("2026-03-28"), f, 0, 2, describe, &t0, err, sizeof err),
                     DB_OK);
    assert_int_equal(reminders_due(db, day("2026-03-28"), f, 1, 2, describe, &t1, err, sizeof err),
                     DB_OK);
    assert_int_equal(t0.n + t1.n, 1);
    assert_int_equal(reminders_due(db, day("2026-03-28"), f, 2, 2, describe, &t1, err, sizeof err),
                     DB_PERMANENT);

    /* The client paused: none; resumed: back. */
    const char *pc[] = {I(cl)};
    dbtest_ok(pg, "UPDATE billing.clients SET reminders_paused = true WHERE id = $1 RETURNING id",
              1, pc);
    assert_string_equal(due_on(f, "2026-03-28"), "");
    dbtest_ok(pg, "UPDATE billing.clients SET reminders_paused = false WHERE id = $1 RETURNING id",
              1, pc);
    assert_string_equal(due_on(f, "2026-03-28"), pair(inv, -3));

    /* The firm's reminders off: none. Its own ladder: only its steps. */
    const char *pf[] = {I(f)};
    dbtest_ok(pg,
              "UPDATE billing.firm_settings SET reminders_enabled = false WHERE firm_id = $1"
              " RETURNING firm_id",
              1, pf);
    assert_string_equal(due_on(f, "2026-03-28"), "");
    dbtest_ok(pg,
              "UPDATE billing.firm_settings SET reminders_enabled = true,"
              " reminder_days = '{1,10}' WHERE firm_id = $1 RETURNING firm_id",
              1, pf);
    assert_string_equal(due_on(f, "2026-03-28"), "");
    assert_string_equal(due_on(f, "2026-04-07"), "");
    assert_string_equal(due_on(f, "2026-04-01"), pair(inv, 1));
    assert_string_equal(due_on(f, "2026-04-10"), pair(inv, 10));
}

static void test_paid_void_and_disputed_get_none(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "RPV");
    int64_t cl = ntest_client(pg, f, "Initech", "ap@initech.example");
    int64_t paid = invoice(f, cl, 100000);
    int64_t cl2 = ntest_client(pg, f, "Hooli", "ap@hooli.example");
    int64_t voided = invoice(f, cl2, 50000);
    int64_t cl3 = ntest_client(pg, f, "Vandelay", "ap@vandelay.example");
    int64_t disputed = invoice(f, cl3, 70000);
    int64_t cl4 = ntest_client(pg, f, "Kramerica", "ap@kramerica.example");
    int64_t partly = invoice(f, cl4, 20000);
    char want[256];
    snprintf(want, sizeof want, "%s%s%s%s", pair(paid, 7), pair(voided, 7), pair(disputed, 7),
             pair(partly, 7));
    assert_string_equal(due_on(f, "2026-04-07"), want);

    /* Paid: a credit note for the whole total leaves nothing due. */
    const char *pp[] = {I(paid)};
    ntest_credit_note(
        pg, paid, dbtest_ok(pg, "SELECT total_cents FROM billing.invoices WHERE id = $1", 1, pp));
    assert_string_equal(dbtest_text(pg, "SELECT status FROM billing.invoices WHERE id = $1", 1, pp),
                        "paid");
    /* Void. */
    const char *pv[] = {I(voided)};
    dbtest_ok(pg, "SELECT released FROM billing.void_invoice($1, 'issued in error', 'pat')", 1, pv);
    /* Disputed. */
    const char *pd[] = {I(disputed)};
    dbtest_ok(pg,
              "UPDATE billing.invoices SET status_before_dispute = status, status = 'disputed'"
              " WHERE id = $1 RETURNING id",
              1, pd);
    /* Partly credited: still owed, still reminded. */
    ntest_credit_note(pg, partly, 1000);
    assert_string_equal(due_on(f, "2026-04-07"), pair(partly, 7));
}

static size_t messages_to(const char *rcpt, smtp_sink_msg *first)
{
    size_t n = 0, total = smtp_sink_count(sink);
    for (size_t i = 0; i < total; i++) {
        smtp_sink_msg m;
        if (smtp_sink_get(sink, i, &m) != 0)
            break;
        bool match = strcmp(m.rcpt, rcpt) == 0;
        if (match && n++ == 0 && first != NULL) {
            *first = m;
            continue;
        }
        smtp_sink_msg_free(&m);
    }
    return n;
}

static void test_run_mails_each_step_once(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "RRN");
    char addr[128];
    snprintf(addr, sizeof addr, "ap-%s@umbrella.example", dbtest_unique());
    int64_t cl = ntest_client(pg, f, "Umbrella plc", addr);
    int64_t inv = invoice(f, cl, 100000);
    int64_t nomail = ntest_client(pg, f, "No Mail Ltd", NULL);
    int64_t inv2 = invoice(f, nomail, 30000);
    notify_ctx ctx = {.db = db, .smtp = &smtp, .max_attempts = 3};
    reminders_stats s;
    char err[1024];
    assert_int_equal(reminders_run(&ctx, day("2026-03-28"), f, 0, 1, &s, err, sizeof err), DB_OK);
    assert_int_equal(s.due, 2);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.retry, 0);

    /* The mail: to the client, the notification key's Message-ID, the text. */
    smtp_sink_msg m;
    assert_int_equal(messages_to(addr, &m), 1);
    char mid[96];
    snprintf(mid, sizeof mid, "<reminder.%lld.0.-3@ledgerline>", (long long)inv);
    char *h = smtp_sink_header(m.data, "Message-ID");
    assert_non_null(h);
    assert_string_equal(h, mid);
    free(h);
    const char *pi[] = {I(inv)};
    char legal[64];
    snprintf(legal, sizeof legal, "%s",
             dbtest_text(pg, "SELECT legal_number FROM billing.invoices WHERE id = $1", 1, pi));
    char subject[160];
    snprintf(subject, sizeof subject, "Reminder: invoice %s is due on 2026-03-31", legal);
    h = smtp_sink_header(m.data, "Subject");
    assert_non_null(h);
    assert_string_equal(h, subject);
    free(h);
    size_t blen;
    char *body = (char *)smtp_sink_part(m.data, "text/plain", &blen);
    assert_non_null(body);
    char *b = calloc(1, blen + 1);
    memcpy(b, body, blen);
    if (strstr(b, "is due on 2026-03-31, in 3 days. Balance due: 1100.00 USD") == NULL)
        fail_msg("body: %s", b);
    free(b);
    free(body);
    smtp_sink_msg_free(&m);

    /* The rows: sent with its step; the client without an address failed. */
    char want[160];
    snprintf(want, sizeof want, "sent -3 1 %s", mid);
    assert_string_equal(dbtest_text(pg,
                                    "SELECT status || ' ' || step || ' ' || attempts || ' '"
                                    " || message_id FROM billing.notifications"
                                    " WHERE kind = 'reminder' AND invoice_id = $1",
                                    1, pi),
                        want);
    const char *pi2[] = {I(inv2)};
    snprintf(want, sizeof want, "failed: client %lld has no primary_contact_email",
             (long long)nomail);
    assert_string_equal(dbtest_text(pg,
                                    "SELECT status || ': ' || error FROM billing.notifications"
                                    " WHERE kind = 'reminder' AND invoice_id = $1",
                                    1, pi2),
                        want);

    /* Again, the same day: nothing due, nothing mailed. */
    assert_int_equal(reminders_run(&ctx, day("2026-03-28"), f, 0, 1, &s, err, sizeof err), DB_OK);
    assert_int_equal(s.due, 0);
    assert_int_equal(messages_to(addr, NULL), 1);

    /* The next step is another mail, another row. */
    assert_int_equal(reminders_run(&ctx, day("2026-04-07"), f, 0, 1, &s, err, sizeof err), DB_OK);
    assert_int_equal(s.sent, 1);
    assert_int_equal(messages_to(addr, NULL), 2);
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.notifications WHERE kind = 'reminder'"
                               " AND invoice_id = $1 AND status = 'sent'",
                               1, pi),
                     2);
}

/* A transient SMTP failure leaves the step queued and the run transient; the
 * next run sends it (the queued row is still due). */
static void test_transient_failure_is_retried(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "RTR");
    char addr[128];
    snprintf(addr, sizeof addr, "ap-%s@soylent.example", dbtest_unique());
    int64_t cl = ntest_client(pg, f, "Soylent", addr);
    int64_t inv = invoice(f, cl, 40000);
    smtp_sink_force_to(sink, addr, "RCPT", 451, 1);
    notify_ctx ctx = {.db = db, .smtp = &smtp, .max_attempts = 3};
    reminders_stats s;
    char err[1024];
    assert_int_equal(reminders_run(&ctx, day("2026-03-28"), f, 0, 1, &s, err, sizeof err),
                     DB_TRANSIENT);
    assert_int_equal(s.retry, 1);
    assert_int_equal(messages_to(addr, NULL), 0);
    const char *pi[] = {I(inv)};
    assert_string_equal(dbtest_text(pg,
                                    "SELECT status FROM billing.notifications"
                                    " WHERE kind = 'reminder' AND invoice_id = $1",
                                    1, pi),
                        "queued");
    assert_int_equal(reminders_run(&ctx, day("2026-03-28"), f, 0, 1, &s, err, sizeof err), DB_OK);
    assert_int_equal(s.sent, 1);
    assert_int_equal(messages_to(addr, NULL), 1);
    assert_string_equal(dbtest_text(pg,
                                    "SELECT status || ' ' || attempts FROM billing.notifications"
                                    " WHERE kind = 'reminder' AND invoice_id = $1",
                                    1, pi),
                        "sent 2");
}

static void test_billingctl_dry_run(void **state)
{
    (void)state;
    int64_t f = ntest_firm(pg, "RCT");
    int64_t cl = ntest_client(pg, f, "Wonka", "ap@wonka.example");
    int64_t inv = invoice(f, cl, 100000);
    assert_int_equal(ctl("--json", "reminders", "run", "--date", "2026-04-07", "--firm-id", I(f),
                         "--dry-run", NULL),
                     0);
    json_error_t je;
    json_t *a = json_loads(out, 0, &je);
    if (!json_is_array(a))
        fail_msg("not a JSON array: %s (stderr %s)", out, errout);
    assert_int_equal(json_array_size(a), 1);
    json_t *r = json_array_get(a, 0);
    assert_int_equal(json_integer_value(json_object_get(r, "invoice_id")), inv);
    assert_int_equal(json_integer_value(json_object_get(r, "step")), 7);
    assert_int_equal(json_integer_value(json_object_get(r, "balance_due_cents")), 110000);
    assert_string_equal(json_string_value(json_object_get(r, "due_date")), "2026-03-31");
    assert_string_equal(json_string_value(json_object_get(r, "to_address")), "ap@wonka.example");
    json_decref(a);
    assert_int_equal(
        ctl("reminders", "run", "--date", "2026-04-07", "--firm-id", I(f), "--dry-run", NULL), 0);
    if (strstr(out, "1 reminder(s) (dry run: nothing sent, nothing written)") == NULL)
        fail_msg("out: %s", out);
    assert_int_equal(
        ctl("reminders", "run", "--date", "2026-04-08", "--firm-id", I(f), "--dry-run", NULL), 0);
    if (strstr(out, "0 reminder(s)") == NULL)
        fail_msg("out: %s", out);
    const char *pi[] = {I(inv)};
    assert_int_equal(
        dbtest_ok(pg, "SELECT count(*) FROM billing.notifications WHERE invoice_id = $1", 1, pi),
        0);
    assert_int_equal(ctl("reminders", "run", "--date", "2026-13-01", "--dry-run", NULL), 2);
    assert_int_equal(ctl("reminders", "run", "--firm-id", "x", "--dry-run", NULL), 2);
    assert_int_equal(ctl("reminders", "run", "--bogus", NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_ladder_and_who_gets_none),
        cmocka_unit_test(test_paid_void_and_disputed_get_none),
        cmocka_unit_test(test_run_mails_each_step_once),
        cmocka_unit_test(test_transient_failure_is_retried),
        cmocka_unit_test(test_billingctl_dry_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
