/* test_dispute_worker.c: billing-dispute-worker as a real process
 * (LL_DISPUTE_WORKER_BIN) on the dev broker and PostgreSQL, with the Stripe
 * stand-in (LL_STRIPE_STANDIN_BIN) as STRIPE_API_BASE, and billingctl's
 * dispute evidence, refund, report disputes and dlq commands.
 *
 * Messages are the shared fixtures' exact shapes with fresh ids per test
 * (dispute, charge and PaymentIntent ids replaced everywhere they appear,
 * metadata.invoice_id set to the test's invoice), published straight to
 * <prefix>stripe.disputes with the contract's key (charge id) and headers.
 * One worker serves the whole file on a topic prefix of its own; each test
 * has its own firm. Every wait is bounded by a deadline and checks rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/db.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "ledgerline/stripe.h"
#include "support/ctltest.h"
#include "support/dbtest.h"
#include "support/kafkatest.h"
#include "support/standin.h"

#define ORIG_DP "dp_1Pgc71B7WZ01zgkWMevJiAUx"
#define ORIG_CH "ch_1PgafuB7WZ01zgkWXYmPNZs8"
#define ORIG_PI "pi_1PgafyB7WZ01zgkWSjxsAJo3"

static PGconn *pg;
static const char *brokers;
static standin *sd;
static kafka_producer *prod;
static pid_t worker = -1;
static char prefix[64], topic[128], dlq_topic[128], group[160], worker_log[128];
static unsigned seq;

static const char *I(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void dump_log(void)
{
    FILE *f = fopen(worker_log, "r");
    if (f == NULL)
        return;
    char line[2048];
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* ---- ids, fixtures, publishing ------------------------------------------ */

typedef struct {
    char dp[128], ch[128], pi[128];
} ids;

static ids fresh_ids(void)
{
    ids x;
    unsigned n = ++seq;
    snprintf(x.dp, sizeof x.dp, "dp_T%ldx%ux%ld", (long)getpid(), n, (long)time(NULL));
    snprintf(x.ch, sizeof x.ch, "ch_T%ldx%ux%ld", (long)getpid(), n, (long)time(NULL));
    snprintf(x.pi, sizeof x.pi, "pi_T%ldx%ux%ld", (long)getpid(), n, (long)time(NULL));
    return x;
}

/* Replaces the fixture's ids wherever they are a whole string value. */
static void replace_ids(json_t *j, const ids *x)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v)
        {
            if (json_is_string(v)) {
                const char *s = json_string_value(v);
                if (strcmp(s, ORIG_DP) == 0)
                    json_object_set_new(j, k, json_string(x->dp));
                else if (strcmp(s, ORIG_CH) == 0)
                    json_object_set_new(j, k, json_string(x->ch));
                else if (strcmp(s, ORIG_PI) == 0)
                    json_object_set_new(j, k, json_string(x->pi));
            } else {
                replace_ids(v, x);
            }
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) replace_ids(v, x);
    }
}

/* A fixture event with fresh ids: event id evt_<tag>..., the object's ids
 * from x, metadata.invoice_id = invoice (when > 0 and the object has
 * metadata.invoice_id), type overridden when type != NULL. */
static json_t *event(const char *file, const ids *x, int64_t invoice, const char *type)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", LL_FIXTURES_DIR, file);
    json_error_t je;
    json_t *e = json_load_file(path, 0, &je);
    if (e == NULL)
        fail_msg("cannot load %s: %s", path, je.text);
    replace_ids(e, x);
    char id[96];
    snprintf(id, sizeof id, "evt_T%ldx%ux%ld", (long)getpid(), ++seq, (long)time(NULL));
    json_object_set_new(e, "id", json_string(id));
    if (type != NULL)
        json_object_set_new(e, "type", json_string(type));
    json_t *meta =
        json_object_get(json_object_get(json_object_get(e, "data"), "object"), "metadata");
    if (json_object_get(meta, "invoice_id") != NULL)
        json_object_set_new(meta, "invoice_id", json_string(invoice > 0 ? I(invoice) : "0"));
    return e;
}

static const char *evt_id(const json_t *e)
{
    return json_string_value(json_object_get(e, "id"));
}

/* Publishes e to <prefix>stripe.disputes as the ingester would: key = the
 * charge id, headers stripe-event-id, stripe-event-type, received-at. */
static void publish(const json_t *e, const char *charge)
{
    char *body = json_dumps(e, JSON_COMPACT);
    const char *id = evt_id(e), *type = json_string_value(json_object_get(e, "type"));
    kafka_header h[3] = {{"stripe-event-id", id, strlen(id)},
                         {"stripe-event-type", type, strlen(type)},
                         {"received-at", "2026-11-24T09:00:00Z", 20}};
    char err[512];
    if (kafka_produce_wait(prod, topic, charge, strlen(charge), body, strlen(body), h, 3, 10000,
                           err, sizeof err) != KAFKA_OK)
        fail_msg("publish: %s", err);
    free(body);
}

static int64_t q(const char *sql, int n, const char *const *p)
{
    return dbtest_ok(pg, sql, n, p);
}

static const char *qt(const char *sql, int n, const char *const *p)
{
    return dbtest_text(pg, sql, n, p);
}

/* Waits until the worker recorded every event id (processed_messages). */
static void wait_applied(json_t *const *evs, size_t n)
{
    time_t deadline = time(NULL) + 90;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++) {
            const char *p[] = {group, evt_id(evs[i])};
            done += q("SELECT count(*) FROM billing.processed_messages"
                      " WHERE consumer = $1 AND idempotency_key = $2",
                      2, p) > 0;
        }
        if (done == n)
            return;
        if (time(NULL) > deadline) {
            dump_log();
            fail_msg("only %zu of %zu events applied in time", done, n);
        }
        sleep_ms(100);
    }
}

/* Waits until sql (one int64 column) returns want. */
static void wait_value(const char *sql, int n, const char *const *p, int64_t want)
{
    time_t deadline = time(NULL) + 90;
    int64_t got;
    while ((got = q(sql, n, p)) != want) {
        if (time(NULL) > deadline) {
            dump_log();
            fail_msg("waited for %lld, still %lld: %s", (long long)want, (long long)got, sql);
        }
        sleep_ms(100);
    }
}

/* A paid invoice of a new client of firm: total, amount paid, status, and
 * the Stripe ids (NULL: none). One adjustment line (rule 1.4). */
static int64_t seed_invoice(int64_t firm, int64_t total, int64_t paid, const char *status,
                            const char *pi, const char *ch)
{
    int64_t client = dbtest_client(pg, firm);
    char number[64];
    snprintf(number, sizeof number, "DSP-%u-%ld", ++seq, (long)getpid());
    const char *p[] = {I(firm), I(client), number, status, I(total), I(paid), pi, ch};
    /* invoice and line in one statement: rule 1.4 is checked at commit */
    int64_t inv = q("WITH i AS (INSERT INTO billing.invoices (firm_id, client_id,"
                    " engagement_override, engagement_override_reason, engagement_override_by,"
                    " invoice_number, status, subtotal_cents, tax_cents, total_cents,"
                    " amount_paid_cents, issue_date, due_date, stripe_payment_intent_id,"
                    " stripe_charge_id) VALUES ($1, $2, true, 'dispute test', 'tester', $3, $4,"
                    " $5, 0, $5, $6, '2026-11-01', '2026-12-01', $7, $8) RETURNING id, firm_id),"
                    " l AS (INSERT INTO billing.invoice_line_items (invoice_id, firm_id,"
                    " line_type, description, quantity, rate_cents, amount_cents)"
                    " SELECT id, firm_id, 'adjustment', 'Services', 1, $5, $5 FROM i)"
                    " SELECT id FROM i",
                    8, p);
    return inv;
}

static int64_t audit_count(int64_t invoice, const char *action)
{
    const char *p[] = {I(invoice), action};
    return q("SELECT count(*) FROM billing.audit_events WHERE action = $2"
             " AND metadata->>'invoice_id' = $1",
             2, p);
}

static int64_t outbox_count(const char *key)
{
    const char *p[] = {key};
    return q("SELECT count(*) FROM billing.outbox WHERE payload->>'idempotency_key' = $1", 1, p);
}

/* ---- billingctl ---------------------------------------------------------- */

static char out[65536], errout[65536];

#define ctl(...) ctltest(out, sizeof out, errout, sizeof errout, NULL, __VA_ARGS__)

/* ---- setup --------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    brokers = getenv("KAFKA_BROKERS");
    if (brokers == NULL || *brokers == '\0' || getenv("DATABASE_URL") == NULL) {
        fprintf(stderr, "DATABASE_URL / KAFKA_BROKERS not set: run through tests/run.sh\n");
        return -1;
    }
    log_init("test_dispute_worker");
    log_set_level(LL_LOG_WARN);
    pg = dbtest_connect();
    sd = standin_start(NULL);
    snprintf(prefix, sizeof prefix, "dsp%ld.", (long)getpid());
    snprintf(topic, sizeof topic, "%sstripe.disputes", prefix);
    snprintf(dlq_topic, sizeof dlq_topic, "%sdlq", prefix);
    snprintf(group, sizeof group, "%sbilling-dispute-worker", prefix);
    snprintf(worker_log, sizeof worker_log, "/tmp/dsp%ld-worker.log", (long)getpid());
    unlink(worker_log);
    /* The worker and every billingctl run inherit these. */
    setenv("KAFKA_TOPIC_PREFIX", prefix, 1);
    setenv("STRIPE_SECRET_KEY", "sk_test_DisputeTests0123456789", 1);
    setenv("STRIPE_API_BASE", standin_url(sd), 1);
    char err[512];
    prod = kafka_producer_new(brokers, 10000, err, sizeof err);
    if (prod == NULL) {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }
    worker = fork();
    if (worker == 0) {
        FILE *f = freopen(worker_log, "a", stderr);
        if (f == NULL || dup2(fileno(stderr), 1) < 0)
            _exit(126);
        setenv("LOG_LEVEL", "info", 1);
        setenv("DATABASE_URL", dbtest_worker_url(), 1); /* billing_worker, as deployed */
        execl(LL_DISPUTE_WORKER_BIN, LL_DISPUTE_WORKER_BIN, (char *)NULL);
        _exit(127);
    }
    return worker > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (worker > 0) {
        kill(worker, SIGTERM);
        int status = 0;
        for (int i = 0; i < 600 && waitpid(worker, &status, WNOHANG) != worker; i++)
            sleep_ms(100);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "worker did not exit 0 on SIGTERM (status %d)\n", status);
            kill(worker, SIGKILL);
            waitpid(worker, &status, 0);
            dump_log();
            rc = -1;
        }
    }
    kafka_producer_destroy(prod, 5000);
    standin_stop(sd);
    PQfinish(pg);
    return rc;
}

/* ---- disputes ------------------------------------------------------------ */

/* created then closed lost: charged back, amount paid reduced by the
 * disputed amount, and never below zero. */
static void test_lost_charged_back(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids(), b = fresh_ids();
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, a.ch);
    /* b: only 600 of 1099 paid (partial), disputed for the full 1099 */
    int64_t inv2 = seed_invoice(firm, 1099, 600, "partial", b.pi, NULL);
    json_t *ev[4] = {event("charge.dispute.created.json", &a, 0, NULL),
                     event("charge.dispute.closed.lost.json", &a, 0, NULL),
                     event("charge.dispute.created.json", &b, 0, NULL),
                     event("charge.dispute.closed.lost.json", &b, 0, NULL)};
    publish(ev[0], a.ch);
    publish(ev[1], a.ch);
    publish(ev[2], b.ch);
    publish(ev[3], b.ch);
    wait_applied(ev, 4);

    const char *p[] = {I(inv)};
    assert_string_equal(qt("SELECT status FROM billing.invoices WHERE id = $1", 1, p),
                        "charged_back");
    assert_int_equal(q("SELECT amount_paid_cents FROM billing.invoices WHERE id = $1", 1, p), 0);
    assert_string_equal(qt("SELECT status || '/' || resolution || '/' || amount_cents || '/' ||"
                           " reason FROM billing.payment_disputes WHERE invoice_id = $1",
                           1, p),
                        "closed/lost/1099/fraudulent");
    /* stripe_charge_id of the row is the event's charge */
    const char *pd[] = {a.dp};
    assert_string_equal(qt("SELECT stripe_charge_id FROM billing.payment_disputes"
                           " WHERE stripe_dispute_id = $1",
                           1, pd),
                        a.ch);
    assert_int_equal(q("SELECT count(*) FROM billing.payment_disputes WHERE stripe_dispute_id = $1"
                       " AND respond_by = to_timestamp(1723679999) AND closed_at IS NOT NULL",
                       1, pd),
                     1);
    assert_int_equal(audit_count(inv, "payment_disputed"), 1);
    assert_int_equal(audit_count(inv, "dispute_lost"), 1);
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE severity = 'CRITICAL'"
                       " AND action IN ('payment_disputed', 'dispute_lost')"
                       " AND metadata->>'invoice_id' = $1",
                       1, p),
                     2);
    char k1[64], k2[64];
    snprintf(k1, sizeof k1, "invoice.disputed:%lld", (long long)inv);
    snprintf(k2, sizeof k2, "invoice.charged_back:%lld", (long long)inv);
    assert_int_equal(outbox_count(k1), 1);
    assert_int_equal(outbox_count(k2), 1);
    /* not below zero */
    const char *p2[] = {I(inv2)};
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, p2),
                        "charged_back/0");
    for (int i = 0; i < 4; i++)
        json_decref(ev[i]);
}

/* created, updated, closed won: the invoice status before the dispute comes
 * back (paid, or partial for a partly paid one); evidence recorded. */
static void test_won_restores_status(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids(), b = fresh_ids();
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, NULL);
    int64_t inv2 = seed_invoice(firm, 2000, 1099, "partial", NULL, b.ch);
    json_t *ev[6] = {event("charge.dispute.created.json", &a, 0, NULL),
                     event("charge.dispute.updated.json", &a, 0, NULL),
                     event("charge.dispute.closed.won.json", &a, 0, NULL),
                     event("charge.dispute.created.json", &b, 0, NULL),
                     event("charge.dispute.updated.json", &b, 0, NULL),
                     event("charge.dispute.closed.won.json", &b, 0, NULL)};
    /* the invoice is disputed while the dispute is open */
    publish(ev[0], a.ch);
    wait_applied(ev, 1);
    const char *p[] = {I(inv)};
    assert_string_equal(qt("SELECT status || '/' || status_before_dispute FROM billing.invoices"
                           " WHERE id = $1",
                           1, p),
                        "disputed/paid");
    for (int i = 1; i < 6; i++)
        publish(ev[i], i < 3 ? a.ch : b.ch);
    wait_applied(ev, 6);
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents || '/' ||"
                           " coalesce(status_before_dispute, '-') FROM billing.invoices"
                           " WHERE id = $1",
                           1, p),
                        "paid/1099/-");
    assert_string_equal(qt("SELECT status || '/' || resolution || '/' || evidence_submitted"
                           " FROM billing.payment_disputes WHERE invoice_id = $1",
                           1, p),
                        "closed/won/true");
    assert_int_equal(audit_count(inv, "dispute_won"), 1);
    assert_int_equal(audit_count(inv, "dispute_lost"), 0);
    const char *p2[] = {I(inv2)};
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, p2),
                        "partial/1099");
    char k[64];
    snprintf(k, sizeof k, "invoice.charged_back:%lld", (long long)inv);
    assert_int_equal(outbox_count(k), 0);
    for (int i = 0; i < 6; i++)
        json_decref(ev[i]);
}

/* An inquiry (warning_needs_response) closed as warning_closed counts as won. */
static void test_inquiry_warning_closed(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids();
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, a.ch);
    json_t *ev[2] = {event("charge.dispute.created.json", &a, 0, NULL),
                     event("charge.dispute.closed.won.json", &a, 0, NULL)};
    json_t *o0 = json_object_get(json_object_get(ev[0], "data"), "object");
    json_t *o1 = json_object_get(json_object_get(ev[1], "data"), "object");
    json_object_set_new(o0, "status", json_string("warning_needs_response"));
    json_object_set_new(o1, "status", json_string("warning_closed"));
    publish(ev[0], a.ch);
    publish(ev[1], a.ch);
    wait_applied(ev, 2);
    const char *p[] = {I(inv)};
    assert_string_equal(qt("SELECT status || '/' || resolution || '/' || resolution_reason"
                           " FROM billing.payment_disputes WHERE invoice_id = $1",
                           1, p),
                        "closed/won/warning_closed");
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, p),
                        "paid/1099");
    assert_int_equal(audit_count(inv, "dispute_won"), 1);
    json_decref(ev[0]);
    json_decref(ev[1]);
}

/* The rows a dispute scenario ends in, as one comparable text. */
static const char *scenario_rows(int64_t inv)
{
    static char buf[4096];
    const char *p[] = {I(inv)};
    const char *d = qt("SELECT concat_ws('|', status, resolution, resolution_reason, amount_cents,"
                       " currency, reason, evidence_submitted, opened_at, respond_by, closed_at,"
                       " stripe_status, stripe_event_created) FROM billing.payment_disputes"
                       " WHERE invoice_id = $1",
                       1, p);
    snprintf(buf, sizeof buf, "%s", d ? d : "(no dispute)");
    const char *i = qt("SELECT concat_ws('|', status, amount_paid_cents,"
                       " coalesce(status_before_dispute, '-')) FROM billing.invoices WHERE id = $1",
                       1, p);
    size_t n = strlen(buf);
    snprintf(buf + n, sizeof buf - n, " || %s", i);
    const char *a = qt("SELECT string_agg(action || ':' || severity, ',' ORDER BY action)"
                       " FROM billing.audit_events WHERE metadata->>'invoice_id' = $1",
                       1, p);
    n = strlen(buf);
    snprintf(buf + n, sizeof buf - n, " || %s", a ? a : "");
    const char *o = qt("SELECT string_agg(split_part(payload->>'idempotency_key', ':', 1) || ':' ||"
                       " (payload->>'status'), ',' ORDER BY id) FROM billing.outbox"
                       " WHERE msg_key = $1",
                       1, p);
    n = strlen(buf);
    snprintf(buf + n, sizeof buf - n, " || %s", o ? o : "");
    return buf;
}

/* Every permutation of created / updated / closed, each delivered twice
 * (the whole sequence, then again), ends in the same rows as in order; for
 * a lost and for a won dispute. */
static void test_permutations_duplicates(void **state)
{
    (void)state;
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    static const char *const files[2][3] = {
        {"charge.dispute.created.json", "charge.dispute.updated.json",
         "charge.dispute.closed.lost.json"},
        {"charge.dispute.created.json", "charge.dispute.updated.json",
         "charge.dispute.closed.won.json"}};
    int64_t firm = dbtest_firm(pg);
    int64_t inv[2][6];
    json_t *ev[2][6][3];
    for (int w = 0; w < 2; w++) {
        for (int s = 0; s < 6; s++) {
            ids x = fresh_ids();
            inv[w][s] = seed_invoice(firm, 1099, 1099, "paid", x.pi, x.ch);
            for (int k = 0; k < 3; k++)
                ev[w][s][k] = event(files[w][k], &x, 0, NULL);
            for (int rep = 0; rep < 2; rep++)
                for (int k = 0; k < 3; k++)
                    publish(ev[w][s][perms[s][k]], x.ch);
        }
    }
    for (int w = 0; w < 2; w++)
        for (int s = 0; s < 6; s++)
            wait_applied(ev[w][s], 3);
    /* a duplicated message of the last scenario is still queued behind its
     * first copy on the same partition: wait until the duplicates are seen
     * too (the in-order rows are then final) */
    sleep_ms(1500);
    for (int w = 0; w < 2; w++) {
        char base[4096];
        snprintf(base, sizeof base, "%s", scenario_rows(inv[w][0]));
        assert_non_null(strstr(base, w == 0 ? "closed|lost|lost|1099" : "closed|won|won|1099"));
        assert_non_null(strstr(base, w == 0 ? "charged_back|0|-" : "paid|1099|-"));
        for (int s = 1; s < 6; s++) {
            const char *rows = scenario_rows(inv[w][s]);
            if (strcmp(rows, base) != 0)
                fail_msg("permutation %d (%s) differs:\n in order: %s\n this one: %s", s,
                         w == 0 ? "lost" : "won", base, rows);
        }
        for (int s = 0; s < 6; s++)
            for (int k = 0; k < 3; k++)
                json_decref(ev[w][s][k]);
    }
}

/* funds_withdrawn and funds_reinstated are audited once each; the invoice
 * amounts change only at closing. */
static void test_funds_audited(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids();
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, a.ch);
    json_t *ev[4] = {
        event("charge.dispute.created.json", &a, 0, NULL),
        event("charge.dispute.funds_withdrawn.json", &a, 0, NULL),
        event("charge.dispute.closed.won.json", &a, 0, NULL),
        /* no fixture of its own: the won dispute object with
         * its reinstatement balance transaction */
        event("charge.dispute.closed.won.json", &a, 0, "charge.dispute.funds_reinstated")};
    publish(ev[0], a.ch);
    publish(ev[1], a.ch);
    publish(ev[1], a.ch); /* duplicate */
    wait_applied(ev, 2);
    const char *p[] = {I(inv)};
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, p),
                        "disputed/1099");
    publish(ev[2], a.ch);
    publish(ev[3], a.ch);
    wait_applied(ev, 4);
    assert_int_equal(audit_count(inv, "dispute_funds_withdrawn"), 1);
    assert_int_equal(audit_count(inv, "dispute_funds_reinstated"), 1);
    assert_int_equal(q("SELECT (metadata->>'balance_amount_cents')::bigint FROM"
                       " billing.audit_events WHERE action = 'dispute_funds_withdrawn'"
                       " AND metadata->>'invoice_id' = $1",
                       1, p),
                     1099);
    assert_string_equal(qt("SELECT severity FROM billing.audit_events WHERE"
                           " action = 'dispute_funds_withdrawn' AND metadata->>'invoice_id' = $1",
                           1, p),
                        "WARNING");
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, p),
                        "paid/1099");
    for (int i = 0; i < 4; i++)
        json_decref(ev[i]);
}

/* ---- refunds ------------------------------------------------------------- */

static void seed_standin_refund(const ids *x, const char *re, int64_t amount)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"charge\":\"%s\",\"payment_intent\":\"%s\",\"id\":\"%s\",\"amount\":%lld,"
             "\"charge_amount\":1099,\"currency\":\"usd\"}",
             x->ch, x->pi, re, (long long)amount);
    json_t *r = standin_post(sd, "/__standin/refunds", body);
    if (!json_is_string(json_object_get(r, "id")))
        fail_msg("seeding a refund failed: %s", json_dumps(r, 0));
    json_decref(r);
}

/* Partial then full refund, the same refund event twice, and a stale event
 * after the full one: each refund recorded once, refunded total never
 * down, amount paid reduced, statuses partial then refunded. */
static void test_refunds(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids();
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, a.ch);
    char re1[64], re2[64];
    snprintf(re1, sizeof re1, "re_T%ldx%u", (long)getpid(), ++seq);
    snprintf(re2, sizeof re2, "re_T%ldx%u", (long)getpid(), ++seq);
    seed_standin_refund(&a, re1, 500);
    json_t *part = event("charge.refunded.partial.json", &a, inv, NULL);
    publish(part, a.ch);
    publish(part, a.ch); /* the same event twice */
    wait_applied(&part, 1);
    const char *p[] = {I(inv)};
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents || '/' || refunded_cents"
                           " FROM billing.invoices WHERE id = $1",
                           1, p),
                        "partial/599/500");
    char want[128];
    snprintf(want, sizeof want, "%s=500", re1);
    assert_string_equal(qt("SELECT string_agg(stripe_refund_id || '=' || amount_cents, ',')"
                           " FROM billing.refunds WHERE invoice_id = $1",
                           1, p),
                        want);

    seed_standin_refund(&a, re2, 599);
    json_t *full = event("charge.refunded.json", &a, inv, NULL);
    publish(full, a.ch);
    wait_applied(&full, 1);
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents || '/' || refunded_cents"
                           " FROM billing.invoices WHERE id = $1",
                           1, p),
                        "refunded/0/1099");
    assert_int_equal(q("SELECT count(*) FROM billing.refunds WHERE invoice_id = $1", 1, p), 2);
    assert_int_equal(q("SELECT sum(amount_cents) FROM billing.refunds WHERE invoice_id = $1", 1, p),
                     1099);
    /* a stale (older) refund event with a new id: nothing changes */
    json_t *stale = event("charge.refunded.partial.json", &a, inv, NULL);
    publish(stale, a.ch);
    wait_applied(&stale, 1);
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents || '/' || refunded_cents"
                           " FROM billing.invoices WHERE id = $1",
                           1, p),
                        "refunded/0/1099");
    assert_int_equal(audit_count(inv, "invoice_refunded"), 2);
    char k1[64], k2[64], k3[64];
    snprintf(k1, sizeof k1, "invoice.refunded:%lld:1", (long long)inv);
    snprintf(k2, sizeof k2, "invoice.refunded:%lld:2", (long long)inv);
    snprintf(k3, sizeof k3, "invoice.refunded:%lld:3", (long long)inv);
    assert_int_equal(outbox_count(k1), 1);
    assert_int_equal(outbox_count(k2), 1);
    assert_int_equal(outbox_count(k3), 0);
    /* the outbox rows were published by the worker's relay */
    wait_value("SELECT count(*) FROM billing.outbox WHERE msg_key = $1 AND published_at IS NULL", 1,
               p, 0);
    json_decref(part);
    json_decref(full);
    json_decref(stale);
}

/* Stripe failing while the refunds are listed is transient: the message is
 * retried (not dead-lettered) and then applied once. */
static void test_refund_list_failure_retried(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids();
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, a.ch);
    char re[64];
    snprintf(re, sizeof re, "re_T%ldx%u", (long)getpid(), ++seq);
    seed_standin_refund(&a, re, 500);
    int64_t gets = standin_count(sd, "GET", "/v1/refunds");
    json_decref(standin_post(sd, "/__standin/fail", "{\"status\":500,\"count\":2}"));
    json_t *ev = event("charge.refunded.partial.json", &a, inv, NULL);
    publish(ev, a.ch);
    wait_applied(&ev, 1);
    const char *p[] = {I(inv)};
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents || '/' || refunded_cents"
                           " FROM billing.invoices WHERE id = $1",
                           1, p),
                        "partial/599/500");
    /* two failed answers, then the one that worked */
    assert_true(standin_count(sd, "GET", "/v1/refunds") >= gets + 3);
    const char *pe[] = {evt_id(ev)};
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE"
                       " action = 'stripe_event_unmatched' AND metadata->>'stripe_event_id' = $1",
                       1, pe),
                     0);
    json_decref(ev);
}

/* A charge Stripe does not know (its refund listing answers
 * resource_missing) is dead-lettered, not retried forever (issue 18). */
static void test_refund_of_unknown_charge_dead_lettered(void **state);

/* ---- dead letters -------------------------------------------------------- */

typedef struct {
    char error[512], source_topic[160], source_partition[16], source_offset[32], consumer[160];
    char value[8192];
} dlq_seen;

static bool header(const rd_kafka_message_t *m, const char *name, char *buf, size_t n)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    snprintf(buf, n, "%.*s", (int)len, (const char *)v);
    return true;
}

/* Reads <prefix>dlq until a message keyed key appears. */
static void read_dlq(const char *key, dlq_seen *s)
{
    rd_kafka_t *rk = kafkatest_reader(brokers, dlq_topic);
    time_t deadline = time(NULL) + 60;
    bool found = false;
    while (!found && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL)
            continue;
        if (m->err == 0 && m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0) {
            found =
                header(m, "error", s->error, sizeof s->error) &&
                header(m, "source-topic", s->source_topic, sizeof s->source_topic) &&
                header(m, "source-partition", s->source_partition, sizeof s->source_partition) &&
                header(m, "source-offset", s->source_offset, sizeof s->source_offset) &&
                header(m, "consumer", s->consumer, sizeof s->consumer);
            snprintf(s->value, sizeof s->value, "%.*s", (int)m->len, (const char *)m->payload);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (!found)
        fail_msg("no dead letter keyed %s on %s", key, dlq_topic);
}

/* A dispute for an unknown charge: WARNING audit (firm NULL), dead letter
 * with the contract's headers and the original value, and the next event on
 * the same partition is still applied. After the invoice is created,
 * `billingctl dlq list` shows it and `dlq replay` applies it (twice:
 * harmless). */
static void test_unknown_charge_dlq_and_replay(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids lost = fresh_ids(), ok = fresh_ids();
    json_t *orphan = event("charge.dispute.created.json", &lost, 0, NULL);
    char *orphan_body = json_dumps(orphan, JSON_COMPACT);
    int64_t inv_ok = seed_invoice(firm, 1099, 1099, "paid", ok.pi, ok.ch);
    json_t *next = event("charge.dispute.created.json", &ok, 0, NULL);
    publish(orphan, lost.ch);
    /* same key as the orphan: same partition, right behind it */
    char *body = json_dumps(next, JSON_COMPACT);
    kafka_header h[2] = {{"stripe-event-id", evt_id(next), strlen(evt_id(next))},
                         {"stripe-event-type", "charge.dispute.created", 22}};
    char err[256];
    assert_int_equal(kafka_produce_wait(prod, topic, lost.ch, strlen(lost.ch), body, strlen(body),
                                        h, 2, 10000, err, sizeof err),
                     KAFKA_OK);
    free(body);
    wait_applied(&next, 1);
    const char *pn[] = {I(inv_ok)};
    assert_string_equal(qt("SELECT status FROM billing.invoices WHERE id = $1", 1, pn), "disputed");
    /* the WARNING audit event, firm NULL */
    const char *pe[] = {evt_id(orphan)};
    wait_value("SELECT count(*) FROM billing.audit_events WHERE firm_id IS NULL"
               " AND action = 'stripe_event_unmatched' AND severity = 'WARNING'"
               " AND metadata->>'stripe_event_id' = $1",
               1, pe, 1);
    const char *pc[] = {lost.dp};
    assert_int_equal(
        q("SELECT count(*) FROM billing.payment_disputes WHERE stripe_dispute_id = $1", 1, pc), 0);
    /* the dead letter: headers and the original value unchanged */
    dlq_seen s;
    read_dlq(lost.ch, &s);
    assert_string_equal(s.source_topic, topic);
    assert_string_equal(s.consumer, group);
    assert_non_null(strstr(s.error, "no invoice matches"));
    assert_true(s.source_partition[0] != '\0' && s.source_offset[0] != '\0');
    assert_string_equal(s.value, orphan_body);

    /* the operator creates the missing invoice, then lists and replays */
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", NULL, lost.ch);
    assert_int_equal(ctl("--json", "dlq", "list", NULL), 0);
    json_t *list = json_loads(out, 0, NULL);
    assert_true(json_is_array(list));
    size_t i;
    json_t *e;
    char ref[64] = "";
    json_array_foreach(list, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "key")), lost.ch) == 0) {
            snprintf(ref, sizeof ref, "%lld:%lld",
                     (long long)json_integer_value(json_object_get(e, "partition")),
                     (long long)json_integer_value(json_object_get(e, "offset")));
            assert_string_equal(json_string_value(json_object_get(e, "source_topic")), topic);
            assert_non_null(
                strstr(json_string_value(json_object_get(e, "error")), "no invoice matches"));
        }
    }
    json_decref(list);
    assert_true(ref[0] != '\0');
    assert_int_equal(ctl("dlq", "list", NULL), 0); /* the table form */
    assert_non_null(strstr(out, lost.ch));
    assert_int_equal(ctl("dlq", "replay", "999999", NULL), 1); /* no such dead letter */
    assert_int_equal(ctl("dlq", "replay", "x:y", NULL), 2);
    assert_int_equal(ctl("dlq", "replay", ref, NULL), 0);
    wait_applied(&orphan, 1);
    const char *pi[] = {I(inv)};
    assert_string_equal(qt("SELECT status FROM billing.invoices WHERE id = $1", 1, pi), "disputed");
    assert_int_equal(
        q("SELECT count(*) FROM billing.payment_disputes WHERE stripe_dispute_id = $1", 1, pc), 1);
    /* a second replay is harmless: applied once */
    assert_int_equal(ctl("dlq", "replay", ref, NULL), 0);
    sleep_ms(2000);
    assert_int_equal(audit_count(inv, "payment_disputed"), 1);
    char k[64];
    snprintf(k, sizeof k, "invoice.disputed:%lld", (long long)inv);
    assert_int_equal(outbox_count(k), 1);
    free(orphan_body);
    json_decref(orphan);
    json_decref(next);
}

/* ---- billingctl: evidence, refund, report -------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_refund_of_unknown_charge_dead_lettered(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids(); /* never made at the stand-in, nothing seeded */
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, a.ch);
    int64_t gets = standin_count(sd, "GET", "/v1/refunds");
    json_t *ev = event("charge.refunded.partial.json", &a, inv, NULL);
    publish(ev, a.ch);
    dlq_seen s;
    read_dlq(a.ch, &s);
    assert_non_null(strstr(s.error, "No such charge"));
    /* listed once (or twice around a rebalance), not retried with backoff */
    assert_true(standin_count(sd, "GET", "/v1/refunds") <= gets + 2);
    const char *p[] = {I(inv)};
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, p),
                        "paid/1099");
    json_decref(ev);
}

static void test_evidence_submission(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids a = fresh_ids();
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", a.pi, a.ch);
    json_t *ev = event("charge.dispute.created.json", &a, 0, NULL);
    publish(ev, a.ch);
    wait_applied(&ev, 1);
    const char *pi[] = {I(inv)};
    int64_t dispute = q("SELECT id FROM billing.payment_disputes WHERE invoice_id = $1", 1, pi);
    char good[128], bad[128], path[160];
    snprintf(good, sizeof good, "/tmp/dsp%ld-evidence.json", (long)getpid());
    snprintf(bad, sizeof bad, "/tmp/dsp%ld-evidence-bad.json", (long)getpid());
    write_file(good, "{\"customer_name\":\"Jenny Rosen\",\"service_date\":\"2024-07-26\","
                     "\"uncategorized_text\":\"Card saved at checkout; service delivered.\"}");
    write_file(bad, "{\"customer_name\":\"Jenny Rosen\",\"favourite_colour\":\"blue\"}");
    snprintf(path, sizeof path, "/v1/disputes/%s", a.dp);

    /* unknown key: refused before anything is sent */
    assert_int_equal(ctl("dispute", "evidence", I(dispute), "--file", bad, "--by", "ops", NULL), 1);
    assert_non_null(strstr(errout, "favourite_colour"));
    assert_int_equal(standin_count(sd, "POST", path), 0);
    /* the file is read with the 1 MiB limit its message promises: exactly
     * 1 MiB is read whole (and refused here for its unknown key), one byte
     * more is refused for its size, and nothing is sent either time */
    char big[128];
    snprintf(big, sizeof big, "/tmp/dsp%ld-evidence-big.json", (long)getpid());
    static const char head[] = "{\"customer_name\":\"Jenny Rosen\",\"favourite_colour\":\"blue\"}";
    for (size_t size = 1048576; size <= 1048577; size++) {
        FILE *f = fopen(big, "w");
        assert_non_null(f);
        fputs(head, f);
        for (size_t n = strlen(head); n < size; n++)
            fputc(' ', f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(ctl("dispute", "evidence", I(dispute), "--file", big, "--by", "ops", NULL),
                         1);
        if (size == 1048576) {
            assert_non_null(strstr(errout, "favourite_colour"));
        } else {
            assert_non_null(strstr(errout, "is larger than 1 MiB"));
            assert_null(strstr(errout, "favourite_colour"));
        }
    }
    unlink(big);
    assert_int_equal(standin_count(sd, "POST", path), 0);
    /* usage errors */
    assert_int_equal(ctl("dispute", "evidence", I(dispute), NULL), 2);
    assert_int_equal(ctl("dispute", "evidence", "nope", "--file", good, NULL), 2);

    assert_int_equal(
        ctl("--json", "dispute", "evidence", I(dispute), "--file", good, "--by", "ops", NULL), 0);
    assert_int_equal(standin_count(sd, "POST", path), 1);
    const char *pd[] = {I(dispute)};
    assert_string_equal(qt("SELECT status || '/' || evidence_submitted ||"
                           " '/' || (evidence_submitted_at IS NOT NULL)"
                           " FROM billing.payment_disputes WHERE id = $1",
                           1, pd),
                        "under_review/true/true");
    assert_string_equal(qt("SELECT actor || '/' || (metadata->'evidence_fields')::text FROM"
                           " billing.audit_events WHERE action = 'dispute_evidence_submitted'"
                           " AND metadata->>'dispute_id' = $1",
                           1, pd),
                        "ops/[\"customer_name\", \"service_date\", \"uncategorized_text\"]");
    /* the request carried evidence[...] and submit=true */
    json_t *reqs = standin_get(sd, "/__standin/requests");
    size_t i;
    json_t *r;
    bool seen = false;
    json_array_foreach(reqs, i, r)
    {
        const char *rp = json_string_value(json_object_get(r, "path"));
        if (rp != NULL && strcmp(rp, path) == 0) {
            char *dump = json_dumps(r, JSON_COMPACT);
            seen = strstr(dump, "service_date") != NULL && strstr(dump, "submit") != NULL;
            free(dump);
        }
    }
    json_decref(reqs);
    assert_true(seen);
    /* the same command again, by dp_ id: same idempotency key, recorded once */
    assert_int_equal(ctl("dispute", "evidence", a.dp, "--file", good, "--by", "ops", NULL), 0);
    assert_int_equal(
        q("SELECT count(*) FROM billing.audit_events"
          " WHERE action = 'dispute_evidence_submitted' AND metadata->>'dispute_id' = $1",
          1, pd),
        1);
    /* a closed dispute is refused */
    q("UPDATE billing.payment_disputes SET status = 'closed', resolution = 'won' WHERE id = $1"
      " RETURNING id",
      1, pd);
    assert_int_equal(ctl("dispute", "evidence", I(dispute), "--file", good, NULL), 1);
    assert_int_equal(ctl("dispute", "evidence", "dp_nosuchdispute", "--file", good, NULL), 1);
    unlink(good);
    unlink(bad);
    json_decref(ev);
}

/* billingctl refund: through the stand-in with an idempotency key (re-run:
 * the same refund), not recorded until charge.refunded arrives, which then
 * records it once. */
static void test_refund_command(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    /* a real PaymentIntent at the stand-in, so it knows the charge */
    stripe_config cfg = {
        .secret_key = "sk_test_DisputeTests0123456789", .api_base = standin_url(sd), .max_rps = 25};
    char err[256];
    stripe_client *sc = stripe_client_new(&cfg, err, sizeof err);
    assert_non_null(sc);
    char key[64];
    snprintf(key, sizeof key, "dsp-test-pi-%ld-%u", (long)getpid(), ++seq);
    stripe_form *f = stripe_form_payment_intent(1099, "usd", NULL, "pm_card_visa", 1, firm, key);
    stripe_call call = {
        .method = "POST", .path = "/v1/payment_intents", .form = f, .idempotency_key = key};
    assert_int_equal(stripe_perform(sc, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_OK);
    ids x;
    snprintf(x.pi, sizeof x.pi, "%s", call.result.object_id);
    snprintf(x.ch, sizeof x.ch, "%s", call.result.latest_charge);
    snprintf(x.dp, sizeof x.dp, "dp_unused");
    stripe_result_free(&call.result);
    stripe_form_free(f);
    stripe_client_free(sc);
    int64_t inv = seed_invoice(firm, 1099, 1099, "paid", x.pi, x.ch);
    const char *pi[] = {I(inv)};

    /* refused: more than paid; usage: no --by */
    assert_int_equal(ctl("refund", I(inv), "--amount-cents", "5000", "--reason", "duplicate",
                         "--by", "ops", NULL),
                     1);
    assert_int_equal(ctl("refund", I(inv), "--reason", "duplicate", NULL), 2);
    assert_int_equal(ctl("refund", "999999999", "--reason", "x", "--by", "ops", NULL), 1);

    int64_t before = standin_stat(sd, "refunds_created");
    assert_int_equal(ctl("--json", "refund", I(inv), "--amount-cents", "400", "--reason",
                         "requested_by_customer", "--by", "ops", NULL),
                     0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    char re[64];
    snprintf(re, sizeof re, "%s", json_string_value(json_object_get(j, "refund_id")));
    assert_int_equal(json_integer_value(json_object_get(j, "amount_cents")), 400);
    json_decref(j);
    assert_int_equal(standin_stat(sd, "refunds_created"), before + 1);
    /* re-run: same key, same refund, no second one */
    assert_int_equal(ctl("--json", "refund", I(inv), "--amount-cents", "400", "--reason",
                         "requested_by_customer", "--by", "ops", NULL),
                     0);
    j = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "refund_id")), re);
    json_decref(j);
    assert_int_equal(standin_stat(sd, "refunds_created"), before + 1);
    /* not recorded by the command */
    assert_int_equal(q("SELECT count(*) FROM billing.refunds WHERE invoice_id = $1", 1, pi), 0);
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents FROM billing.invoices"
                           " WHERE id = $1",
                           1, pi),
                        "paid/1099");
    assert_int_equal(q("SELECT count(*) FROM billing.audit_events WHERE action = 'refund_requested'"
                       " AND metadata->>'invoice_id' = $1 AND actor = 'ops'",
                       1, pi),
                     1);
    /* Stripe's webhook records it once */
    json_t *ev = event("charge.refunded.partial.json", &x, inv, NULL);
    json_object_set_new(json_object_get(json_object_get(ev, "data"), "object"), "amount_refunded",
                        json_integer(400));
    publish(ev, x.ch);
    publish(ev, x.ch);
    wait_applied(&ev, 1);
    const char *pr[] = {re};
    assert_int_equal(q("SELECT count(*) FROM billing.refunds WHERE stripe_refund_id = $1"
                       " AND amount_cents = 400",
                       1, pr),
                     1);
    assert_string_equal(qt("SELECT status || '/' || amount_paid_cents || '/' || refunded_cents"
                           " FROM billing.invoices WHERE id = $1",
                           1, pi),
                        "partial/699/400");
    json_decref(ev);
}

/* A PaymentIntent of `amount` cents at the stand-in (so it knows its
 * charge), into x. */
static void standin_payment(int64_t firm, int64_t amount, ids *x)
{
    stripe_config cfg = {
        .secret_key = "sk_test_DisputeTests0123456789", .api_base = standin_url(sd), .max_rps = 25};
    char err[256];
    stripe_client *sc = stripe_client_new(&cfg, err, sizeof err);
    assert_non_null(sc);
    char key[64];
    snprintf(key, sizeof key, "dsp-test-pi-%ld-%u", (long)getpid(), ++seq);
    stripe_form *f = stripe_form_payment_intent(amount, "usd", NULL, "pm_card_visa", 1, firm, key);
    stripe_call call = {
        .method = "POST", .path = "/v1/payment_intents", .form = f, .idempotency_key = key};
    assert_int_equal(stripe_perform(sc, &call, err, sizeof err), 0);
    assert_int_equal(call.result.outcome, STRIPE_OK);
    snprintf(x->pi, sizeof x->pi, "%s", call.result.object_id);
    snprintf(x->ch, sizeof x->ch, "%s", call.result.latest_charge);
    snprintf(x->dp, sizeof x->dp, "dp_unused");
    stripe_result_free(&call.result);
    stripe_form_free(f);
    stripe_client_free(sc);
}

/* billingctl refund's idempotency keys, byte for byte (the whole invoice:
 * "full"; an amount: its cents; r<refunded cents> as recorded), and its
 * refusal of a disputed invoice (common/refund_requests.c). */
static void test_refund_keys_and_refusal(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    ids x;
    standin_payment(firm, 2000, &x);
    int64_t inv = seed_invoice(firm, 2000, 2000, "paid", x.pi, x.ch);
    const char *pi[] = {I(inv)};
    char want[256];

    /* an amount: "refund-<invoice>-<pi>-<cents>-r<refunded>" */
    assert_int_equal(ctl("--json", "refund", I(inv), "--amount-cents", "300", "--reason",
                         "goodwill", "--by", "ops", NULL),
                     0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    snprintf(want, sizeof want, "refund-%lld-%s-300-r0", (long long)inv, x.pi);
    assert_string_equal(json_string_value(json_object_get(j, "idempotency_key")), want);
    assert_string_equal(json_string_value(json_object_get(j, "currency")), "usd");
    json_decref(j);
    snprintf(want, sizeof want, "refund-%lld-%s-300-r0|300|goodwill|usd", (long long)inv, x.pi);
    assert_string_equal(qt("SELECT metadata->>'idempotency_key' || '|' ||"
                           " (metadata->>'amount_cents') || '|' || (metadata->>'reason') || '|' ||"
                           " (metadata->>'currency') FROM billing.audit_events"
                           " WHERE action = 'refund_requested' AND metadata->>'invoice_id' = $1",
                           1, pi),
                        want);

    /* the rest, no amount asked, once 300 is recorded as refunded: "full", r300 */
    q("UPDATE billing.invoices SET refunded_cents = 300 WHERE id = $1 RETURNING 1", 1, pi);
    assert_int_equal(ctl("--json", "refund", I(inv), "--reason", "duplicate", "--by", "ops", NULL),
                     0);
    j = json_loads(out, 0, NULL);
    assert_non_null(j);
    snprintf(want, sizeof want, "refund-%lld-%s-full-r300", (long long)inv, x.pi);
    assert_string_equal(json_string_value(json_object_get(j, "idempotency_key")), want);
    json_decref(j);

    /* disputed: refused before Stripe is asked, nothing audited */
    int64_t before = standin_stat(sd, "refunds_created");
    int64_t d = seed_invoice(firm, 1500, 1500, "disputed", "pi_DisputedNotAsked", NULL);
    assert_int_equal(ctl("refund", I(d), "--reason", "x", "--by", "ops", NULL), 1);
    snprintf(want, sizeof want, "cannot refund invoice %lld: it is disputed or charged back",
             (long long)d);
    assert_non_null(strstr(errout, want));
    assert_non_null(strstr(errout, "DETAIL: The invoice is disputed: the card network holds"));
    assert_int_equal(standin_stat(sd, "refunds_created"), before);
    assert_int_equal(audit_count(d, "refund_requested"), 0);
}

static void test_report_disputes(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    const char *rows[][3] = {{"closed", "won", "1000"},
                             {"closed", "won", "2000"},
                             {"closed", "lost", "500"},
                             {"opened", NULL, "700"},
                             {"under_review", NULL, "300"}};
    for (size_t i = 0; i < 5; i++) {
        int64_t inv = seed_invoice(firm, 5000, 5000, "paid", NULL, NULL);
        char dp[64];
        snprintf(dp, sizeof dp, "dp_R%ldx%ux%zu", (long)getpid(), ++seq, i);
        const char *p[] = {I(firm), I(inv), rows[i][0], rows[i][1], rows[i][2], dp};
        q("INSERT INTO billing.payment_disputes (firm_id, invoice_id, status, resolution,"
          " amount_cents, stripe_dispute_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
          6, p);
    }
    assert_int_equal(ctl("--json", "report", "disputes", "--firm-id", I(firm), NULL), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "open")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "won")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "lost")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "win_rate_percent")), 67);
    assert_string_equal(json_string_value(json_object_get(j, "win_rate")), "2/3");
    json_t *cur = json_array_get(json_object_get(j, "currencies"), 0);
    assert_int_equal(json_integer_value(json_object_get(cur, "disputed_cents")), 4500);
    assert_int_equal(json_integer_value(json_object_get(cur, "lost_cents")), 500);
    json_decref(j);
    assert_int_equal(ctl("report", "disputes", "--firm-id", I(firm), NULL), 0);
    assert_non_null(strstr(out, "67% (2/3)"));
    /* a firm without disputes: no win rate */
    int64_t empty = dbtest_firm(pg);
    assert_int_equal(ctl("--json", "report", "disputes", "--firm-id", I(empty), NULL), 0);
    j = json_loads(out, 0, NULL);
    assert_true(json_is_null(json_object_get(j, "win_rate_percent")));
    json_decref(j);
    assert_int_equal(ctl("report", "disputes", "--firm-id", "999999999", NULL), 1);
    assert_int_equal(ctl("report", "disputes", NULL), 2);
}

/* billingctl dlq list prints headers and keys that anyone able to write to
 * the topic chose: control characters, terminal escapes and line breaks
 * (which could fake a row or rewrite the operator's screen) and bytes that
 * are not UTF-8 come out as \xNN, in the table and in --json. */
static void test_dlq_list_escapes_control_characters(void **state)
{
    (void)state;
    char key[64], value[64];
    int kn = snprintf(key, sizeof key, "k%ld\x1b[31m\r\n", (long)getpid());
    snprintf(value, sizeof value, "{\"id\":\"evt_hostile\"}");
    static const char error[] = "bad\x1b[2J\x1b]0;owned\x07\rforged row\n0 0 x x ok\xff\\";
    kafka_header h[] = {{"error", error, strlen(error)},
                        {"source-topic", "t\x1b[1m", 5},
                        {"source-partition", "1\n", 2},
                        {"source-offset", "2", 1},
                        {"consumer", "c\x07", 2}};
    char err[256];
    assert_int_equal(kafka_produce_wait(prod, dlq_topic, key, (size_t)kn, value, strlen(value), h,
                                        5, 10000, err, sizeof err),
                     KAFKA_OK);
    char shown_key[64];
    snprintf(shown_key, sizeof shown_key, "k%ld\\x1b[31m\\x0d\\x0a", (long)getpid());
    static const char shown_error[] =
        "bad\\x1b[2J\\x1b]0;owned\\x07\\x0dforged row\\x0a0 0 x x ok\\xff\\x5c";

    assert_int_equal(ctl("dlq", "list", NULL), 0);
    for (const char *c = out; *c != '\0'; c++)
        if ((*c < 0x20 && *c != '\n') || (unsigned char)*c >= 0x7f)
            fail_msg("dlq list printed byte 0x%02x", (unsigned char)*c);
    const char *row = strstr(out, shown_key);
    assert_non_null(row);
    const char *eol = strchr(row, '\n');
    assert_non_null(eol);
    const char *line = row;
    while (line > out && line[-1] != '\n')
        line--;
    char text[1024];
    snprintf(text, sizeof text, "%.*s", (int)(eol - line), line);
    assert_non_null(strstr(text, "t\\x1b[1m"));
    assert_non_null(strstr(text, shown_error));
    assert_null(strstr(out, "\nforged row"));

    assert_int_equal(ctl("--json", "dlq", "list", NULL), 0);
    json_t *list = json_loads(out, 0, NULL);
    assert_true(json_is_array(list));
    size_t i;
    json_t *e;
    bool found = false;
    json_array_foreach(list, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "key")), shown_key) != 0)
            continue;
        found = true;
        assert_string_equal(json_string_value(json_object_get(e, "error")), shown_error);
        assert_string_equal(json_string_value(json_object_get(e, "source_topic")), "t\\x1b[1m");
        assert_string_equal(json_string_value(json_object_get(e, "source_partition")), "1\\x0a");
        assert_string_equal(json_string_value(json_object_get(e, "consumer")), "c\\x07");
    }
    json_decref(list);
    assert_true(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_charged_back),
        cmocka_unit_test(test_won_restores_status),
        cmocka_unit_test(test_inquiry_warning_closed),
        cmocka_unit_test(test_permutations_duplicates),
        cmocka_unit_test(test_funds_audited),
        cmocka_unit_test(test_refunds),
        cmocka_unit_test(test_refund_list_failure_retried),
        cmocka_unit_test(test_refund_of_unknown_charge_dead_lettered),
        cmocka_unit_test(test_unknown_charge_dlq_and_replay),
        cmocka_unit_test(test_evidence_submission),
        cmocka_unit_test(test_dlq_list_escapes_control_characters),
        cmocka_unit_test(test_refund_command),
        cmocka_unit_test(test_refund_keys_and_refusal),
        cmocka_unit_test(test_report_disputes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
