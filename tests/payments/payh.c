/* payh.c: the payment tests' harness (see payh.h). */
#include "payh.h"

#include "ledgerline/db.h"
#include "ledgerline/payments.h"
#include "ledgerline/stripe.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ledgerline/ticks.h"
#include "ledgerline/topics.h"
#include "support/dbtest.h"

void payh_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

pid_t payh_spawn(payh *h, const char *bin, const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        if (f == NULL || dup2(fileno(stderr), 1) < 0)
            _exit(126);
        setenv("DATABASE_URL", dbtest_worker_url(), 1); /* billing_worker, as deployed */
        setenv("KAFKA_TOPIC_PREFIX", h->prefix, 1);
        setenv("STRIPE_API_BASE", standin_url(h->stripe), 1);
        setenv("STRIPE_SECRET_KEY", "sk_test_Ledgerline0123456789", 1);
        setenv("STRIPE_MAX_RPS", "200", 1);
        setenv("LOG_LEVEL", "info", 1);
        if (h->retry_days[0])
            setenv("RETRY_SCHEDULE_DAYS", h->retry_days, 1);
        else
            unsetenv("RETRY_SCHEDULE_DAYS");
        unsetenv("WORKER_HTTP_LISTEN");
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void payh_dump(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[2048];
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

static int payh_stop_pid(pid_t pid)
{
    if (pid <= 0)
        return 0;
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 600; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        payh_sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

void payh_start_autopay(payh *h)
{
    h->autopay = payh_spawn(h, LL_AUTOPAY_WORKER_BIN, h->log_autopay);
}

void payh_start_retry(payh *h)
{
    h->retry = payh_spawn(h, LL_RETRY_WORKER_BIN, h->log_retry);
}

void payh_start_retry2(payh *h)
{
    h->retry2 = payh_spawn(h, LL_RETRY_WORKER_BIN, h->log_retry);
}

int payh_retry_log_count(payh *h, const char *needle)
{
    FILE *f = fopen(h->log_retry, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

void payh_kill_autopay(payh *h)
{
    kill(h->autopay, SIGKILL);
    waitpid(h->autopay, NULL, 0);
    h->autopay = 0;
}

void payh_produce(payh *h, const char *topic, const char *key, const char *value,
                  const kafka_header *hd, size_t nh)
{
    char full[TOPIC_NAME_MAX + 1], err[512];
    assert_int_equal(topic_name(h->prefix, topic, full, sizeof full), 0);
    kafka_status ks = kafka_produce_wait(h->producer, full, key, strlen(key), value, strlen(value),
                                         hd, nh, 30000, err, sizeof err);
    if (ks != KAFKA_OK)
        fail_msg("produce to %s failed: %s", full, err);
}

void payh_start(payh *h, const char *retry_days)
{
    static int seq;
    memset(h, 0, sizeof *h);
    h->pg = dbtest_connect();
    h->brokers = getenv("KAFKA_BROKERS");
    assert_non_null(h->brokers);
    snprintf(h->prefix, sizeof h->prefix, "pay%ldn%d.", (long)getpid(), ++seq);
    snprintf(h->group_autopay, sizeof h->group_autopay, "%sbilling-autopay-worker", h->prefix);
    snprintf(h->group_retry, sizeof h->group_retry, "%sbilling-retry-worker", h->prefix);
    snprintf(h->log_autopay, sizeof h->log_autopay, "/tmp/%sautopay.log", h->prefix);
    snprintf(h->log_retry, sizeof h->log_retry, "/tmp/%sretry.log", h->prefix);
    snprintf(h->retry_days, sizeof h->retry_days, "%s", retry_days ? retry_days : "");
    char err[512];
    h->producer = kafka_producer_new(h->brokers, 30000, err, sizeof err);
    assert_non_null(h->producer);
    h->stripe = standin_start(NULL);
    /* The topics exist before the workers subscribe (a consumer learns of a
     * topic created later only at its next metadata refresh): harmless
     * messages no worker acts on. */
    civil_date d;
    date_parse("2000-01-01", &d);
    assert_int_equal(ticks_publish(h->producer, h->prefix, TICK_AUTOPAY, d, NULL, 1,
                                   INT64_C(999999999999), err, sizeof err),
                     0);
    assert_int_equal(ticks_publish(h->producer, h->prefix, TICK_RETRY, d, NULL, 1,
                                   INT64_C(999999999999), err, sizeof err),
                     0);
    payh_produce(h, TOPIC_INVOICES, "0",
                 "{\"type\":\"invoice.paid\",\"idempotency_key\":\"invoice.paid:"
                 "999999999999\","
                 "\"invoice_id\":999999999999,\"firm_id\":1,\"client_id\":1,"
                 "\"status\":\"paid\","
                 "\"total_cents\":0,\"currency\":\"usd\",\"occurred_at\":\"2000-"
                 "01-01T00:00:00Z\"}",
                 NULL, 0);
    payh_produce(h, TOPIC_STRIPE_PAYMENTS, "warmup",
                 "{\"id\":\"evt_warmup\",\"type\":\"customer.created\",\"data\":{"
                 "\"object\":{}}}",
                 NULL, 0);
    payh_start_autopay(h);
    payh_start_retry(h);
}

void payh_stop(payh *h)
{
    int a = payh_stop_pid(h->autopay), r = payh_stop_pid(h->retry), r2 = payh_stop_pid(h->retry2);
    if (a != 0 || r != 0 || r2 != 0) {
        payh_dump(h->log_autopay);
        payh_dump(h->log_retry);
    }
    standin_stop(h->stripe);
    kafka_producer_destroy(h->producer, 5000);
    PQfinish(h->pg);
    assert_int_equal(a, 0);
    assert_int_equal(r, 0);
    assert_int_equal(r2, 0);
    unlink(h->log_autopay);
    unlink(h->log_retry);
}

int64_t payh_i64(payh *h, const char *sql, int64_t id)
{
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)id);
    const char *p[] = {b};
    PGresult *r = PQexecParams(h->pg, sql, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("query failed: %s\n%s", PQresultErrorMessage(r), sql);
    int64_t v =
        PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

const char *payh_text(payh *h, const char *sql, int64_t id)
{
    static char buf[1024];
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)id);
    const char *p[] = {b};
    PGresult *r = PQexecParams(h->pg, sql, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("query failed: %s\n%s", PQresultErrorMessage(r), sql);
    snprintf(buf, sizeof buf, "%s",
             PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return buf;
}

bool payh_wait(payh *h, const char *sql, int64_t id)
{
    for (int i = 0; i < 300; i++) {
        if (strcmp(payh_text(h, sql, id), "t") == 0)
            return true;
        payh_sleep_ms(100);
    }
    payh_dump(h->log_autopay);
    payh_dump(h->log_retry);
    return false;
}

int64_t payh_client(payh *h, int64_t firm, const char *pm, bool autopay)
{
    char f[24];
    snprintf(f, sizeof f, "%lld", (long long)firm);
    const char *p[] = {f, pm, autopay ? "true" : "false"};
    return dbtest_ok(h->pg,
                     "INSERT INTO billing.clients (firm_id, company_name, "
                     "primary_contact_email,"
                     " autopay_enabled, autopay_payment_method_id, stripe_customer_id)"
                     " VALUES ($1::bigint, 'Client', 'c@example.com', $3::boolean, $2,"
                     " 'cus_QXg1o8vcGmoR32') RETURNING id",
                     3, p);
}

int64_t payh_invoice(payh *h, int64_t firm, int64_t client, int64_t total, const char *issue,
                     const char *due, const char *cadence)
{
    char f[24], c[24], t[24];
    snprintf(f, sizeof f, "%lld", (long long)firm);
    snprintf(c, sizeof c, "%lld", (long long)client);
    snprintf(t, sizeof t, "%lld", (long long)total);
    const char *pe[] = {f, c, t, issue, cadence};
    int64_t eng = dbtest_ok(h->pg,
                            "INSERT INTO billing.engagements (firm_id, client_id, title,"
                            " pricing_mode, package_fee_cents, start_date, autopay_cadence)"
                            " VALUES ($1::bigint, $2::bigint, 'Retainer', 'package', $3::bigint,"
                            " $4::date, $5) RETURNING id",
                            5, pe);
    char e[24];
    snprintf(e, sizeof e, "%lld", (long long)eng);
    const char *pi[] = {f, c, e, t, issue, due, cadence, dbtest_unique()};
    return dbtest_ok(h->pg,
                     "WITH cl AS (SELECT * FROM billing.clients WHERE id = $2::bigint),"
                     " i AS (INSERT INTO billing.invoices (firm_id, client_id, engagement_id, "
                     "invoice_number,"
                     "  status, currency, subtotal_cents, tax_cents, total_cents, issue_date, "
                     "due_date,"
                     "  autopay_opt_in, autopay_status, autopay_cadence, "
                     "autopay_payment_method_id,"
                     "  autopay_next_charge_at)"
                     "  SELECT $1::bigint, $2::bigint, $3::bigint, 'T-' || $8, 'sent', 'usd', "
                     "$4::bigint, 0,"
                     "   $4::bigint, $5::date, $6::date, cl.autopay_enabled,"
                     "   CASE WHEN cl.autopay_enabled THEN 'scheduled' ELSE 'idle' END, $7,"
                     "   cl.autopay_payment_method_id,"
                     "   CASE WHEN cl.autopay_enabled THEN (CASE $7 WHEN 'on_issue' THEN "
                     "$5::date"
                     "    WHEN 'on_due' THEN $6::date"
                     "    WHEN 'monthly' THEN date_trunc('month', $6::date::timestamp)::date"
                     "    ELSE date_trunc('quarter', $6::date::timestamp)::date "
                     "END)::timestamp"
                     "    AT TIME ZONE 'UTC' END"
                     "  FROM cl RETURNING id),"
                     " l AS (INSERT INTO billing.invoice_line_items (invoice_id, firm_id, "
                     "line_type,"
                     "  description, quantity, rate_cents, amount_cents)"
                     "  SELECT id, $1::bigint, 'package_fee', 'Package Fee - Retainer', 1, "
                     "$4::bigint,"
                     "  $4::bigint FROM i)"
                     " SELECT id FROM i",
                     8, pi);
}

void payh_wait_key(payh *h, const char *group, const char *key_like, int64_t want)
{
    for (int i = 0; i < 600; i++) {
        const char *p[] = {group, key_like};
        PGresult *r = PQexecParams(h->pg,
                                   "SELECT count(*) FROM billing.processed_messages"
                                   " WHERE consumer = $1 AND idempotency_key LIKE $2",
                                   2, NULL, p, NULL, NULL, 0);
        int64_t n =
            PQresultStatus(r) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
        PQclear(r);
        if (n >= want)
            return;
        payh_sleep_ms(100);
    }
    payh_dump(h->log_autopay);
    payh_dump(h->log_retry);
    fail_msg("%s did not record %s in 60 s", group, key_like);
}

void payh_issue(payh *h, int64_t invoice, bool wait)
{
    invoice_event e = {.type = INVOICE_EVENT_ISSUED, .invoice_id = invoice};
    e.firm_id = payh_i64(h, "SELECT firm_id FROM billing.invoices WHERE id = $1::bigint", invoice);
    e.client_id =
        payh_i64(h, "SELECT client_id FROM billing.invoices WHERE id = $1::bigint", invoice);
    e.total_cents =
        payh_i64(h, "SELECT total_cents FROM billing.invoices WHERE id = $1::bigint", invoice);
    snprintf(e.status, sizeof e.status, "sent");
    snprintf(e.currency, sizeof e.currency, "usd");
    snprintf(e.occurred_at, sizeof e.occurred_at, "2026-11-24T00:00:00Z");
    assert_int_equal(invoice_event_init_key(&e, 0), 0);
    char *json = invoice_event_to_json(&e);
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)invoice);
    payh_produce(h, TOPIC_INVOICES, key, json, NULL, 0);
    free(json);
    if (wait)
        payh_wait_key(h, h->group_autopay, e.idempotency_key, 1);
}

void payh_tick(payh *h, tick_kind kind, const char *date, int64_t firm)
{
    civil_date d;
    assert_true(date_parse(date, &d));
    char err[512], like[128];
    if (ticks_publish(h->producer, h->prefix, kind, d, NULL, 4, firm, err, sizeof err) != 0)
        fail_msg("tick not published: %s", err);
    snprintf(like, sizeof like, "tick:%s:%s:firm-%lld:%%", tick_kind_name(kind), date,
             (long long)firm);
    payh_wait_key(h, kind == TICK_AUTOPAY ? h->group_autopay : h->group_retry, like, 4);
}

void payh_tick_publish(payh *h, tick_kind kind, const char *date, int64_t firm, int shards)
{
    civil_date d;
    assert_true(date_parse(date, &d));
    char err[512];
    if (ticks_publish(h->producer, h->prefix, kind, d, NULL, shards, firm, err, sizeof err) != 0)
        fail_msg("tick not published: %s", err);
}

void payh_tick_wait(payh *h, tick_kind kind, const char *date, int64_t firm, int shards)
{
    char like[128];
    snprintf(like, sizeof like, "tick:%s:%s:firm-%lld:%%/%d", tick_kind_name(kind), date,
             (long long)firm, shards);
    payh_wait_key(h, kind == TICK_AUTOPAY ? h->group_autopay : h->group_retry, like, shards);
}

void payh_stripe_event(payh *h, const char *body, const char *pi, const char *group)
{
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    char id[128], type[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(root, "id")));
    snprintf(type, sizeof type, "%s", json_string_value(json_object_get(root, "type")));
    json_decref(root);
    kafka_header hd[] = {{"stripe-event-id", id, strlen(id)},
                         {"stripe-event-type", type, strlen(type)},
                         {"received-at", "2026-11-24T00:00:00Z", 20}};
    payh_produce(h, TOPIC_STRIPE_PAYMENTS, pi, body, hd, 3);
    if (group != NULL)
        payh_wait_key(h, group, id, 1);
}

void payh_foreign_pi(payh *h, int64_t firm, int64_t invoice, int64_t amount, const char *pm,
                     char *pi, char *ch)
{
    stripe_config cfg = {.secret_key = "sk_test_PaymentsForeignIntent01",
                         .api_base = standin_url(h->stripe),
                         .max_rps = 25};
    char err[256], key[96];
    stripe_client *sc = stripe_client_new(&cfg, err, sizeof err);
    assert_non_null(sc);
    stripe_form *f = stripe_form_new();
    assert_non_null(f);
    assert_int_equal(stripe_form_add_i64(f, "amount", amount), 0);
    assert_int_equal(stripe_form_add(f, "currency", "usd"), 0);
    assert_int_equal(stripe_form_add(f, "payment_method", pm), 0);
    assert_int_equal(stripe_form_add(f, "confirm", "true"), 0);
    assert_int_equal(stripe_form_add(f, "off_session", "true"), 0);
    assert_int_equal(stripe_form_add_i64(f, "metadata[invoice_id]", invoice), 0);
    if (firm > 0)
        assert_int_equal(stripe_form_add_i64(f, "metadata[firm_id]", firm), 0);
    snprintf(key, sizeof key, "foreign-%s", dbtest_unique());
    stripe_call call = {
        .method = "POST", .path = "/v1/payment_intents", .form = f, .idempotency_key = key};
    assert_int_equal(stripe_perform(sc, &call, err, sizeof err), 0);
    snprintf(pi, 64, "%.63s", call.result.object_id);
    snprintf(ch, 64, "%.63s", call.result.latest_charge);
    assert_true(pi[0] != '\0');
    stripe_result_free(&call.result);
    stripe_form_free(f);
    stripe_client_free(sc);
}

typedef struct {
    payments_money m;
    payments_money_result r;
} payh_pay_tx;

static db_status payh_pay_work(db_conn *c, void *arg, char *err, size_t errlen)
{
    payh_pay_tx *a = arg;
    return payments_apply_success(c, &a->m, &a->r, err, errlen);
}

int payh_pay_books(int64_t invoice, const char *pi, const char *ch, int64_t amount,
                   const char *currency)
{
    static db_conn *db;
    char err[512];
    if (db == NULL && (db = db_connect(getenv("DATABASE_URL"), 10000, err, sizeof err)) == NULL)
        fail_msg("database: %s", err);
    payh_pay_tx a = {.m = {.invoice_id = invoice,
                           .payment_intent = pi,
                           .charge = ch,
                           .amount_cents = amount,
                           .currency = currency}};
    date_parse("2026-12-01", &a.m.on);
    if (db_run_tx(db, payh_pay_work, &a, err, sizeof err) != DB_OK)
        fail_msg("payment of invoice %lld: %s", (long long)invoice, err);
    return (int)a.r;
}

char *payh_fixture_event(const char *file, const char *pi, const char *charge, int64_t invoice,
                         int64_t amount)
{
    char path[512], inv[24], evt[96];
    snprintf(path, sizeof path, "%s/%s", LL_FIXTURES_DIR, file);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL)
        fail_msg("cannot read %s: %s", path, je.text);
    snprintf(evt, sizeof evt, "evt_test%s", dbtest_unique());
    for (char *p = evt; *p; p++)
        if (*p == '-')
            *p = 'x';
    json_object_set_new(root, "id", json_string(evt));
    json_t *o = json_object_get(json_object_get(root, "data"), "object");
    const char *kind = json_string_value(json_object_get(o, "object"));
    snprintf(inv, sizeof inv, "%lld", (long long)invoice);
    if (kind && strcmp(kind, "payment_intent") == 0) {
        json_object_set_new(o, "id", json_string(pi));
        json_object_set_new(o, "latest_charge", json_string(charge));
        if (amount >= 0) {
            json_object_set_new(o, "amount", json_integer(amount));
            if (json_integer_value(json_object_get(o, "amount_received")) > 0)
                json_object_set_new(o, "amount_received", json_integer(amount));
        }
        json_t *lpe = json_object_get(o, "last_payment_error");
        if (json_is_object(lpe))
            json_object_set_new(lpe, "charge", json_string(charge));
    } else {
        json_object_set_new(o, "payment_intent", json_string(pi));
        json_object_set_new(o, "charge", json_string(charge));
        if (amount >= 0) {
            json_object_set_new(o, "amount_due", json_integer(amount));
            if (json_integer_value(json_object_get(o, "amount_paid")) > 0)
                json_object_set_new(o, "amount_paid", json_integer(amount));
        }
    }
    json_object_set_new(json_object_get(o, "metadata"), "invoice_id", json_string(inv));
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}
