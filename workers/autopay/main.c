/* main.c: billing-autopay-worker (BILLING_RULES section 5). Consumes
 *   <prefix>ticks.autopay      charge every due invoice of the tick's shard;
 *   <prefix>invoices           charge an on_issue invoice as soon as it is issued;
 *   <prefix>stripe.payments    apply successes and processing intents once.
 * The charging rules are common/payments.c's (shared with the retry worker). */
#include <stdio.h>
#include <string.h>

#include "ledgerline/envelope.h"
#include "ledgerline/log.h"
#include "ledgerline/payment_events.h"
#include "ledgerline/payments.h"
#include "ledgerline/worker.h"

static payments_ctx autopay_ctx;

static int autopay_init(worker *w)
{
    autopay_ctx.db = w->db;
    autopay_ctx.stripe = w->stripe;
    payments_schedule_from_env(&autopay_ctx);
    return metrics_declare(w->metrics, "billing_charges_total", METRICS_COUNTER,
                           "Invoices charged, by outcome.");
}

static void autopay_count(worker *w, const payments_stats *s)
{
    static const struct {
        const char *outcome;
        size_t offset;
    } rows[] = {{"succeeded", offsetof(payments_stats, succeeded)},
                {"failed", offsetof(payments_stats, failed)},
                {"processing", offsetof(payments_stats, processing)},
                {"credit", offsetof(payments_stats, credit_paid)},
                {"transient", offsetof(payments_stats, transient)},
                {"cancelled", offsetof(payments_stats, cancelled)}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t v = *(const int64_t *)((const char *)s + rows[i].offset);
        if (v > 0)
            metrics_counter_add(w->metrics, "billing_charges_total", (uint64_t)v, "outcome",
                                rows[i].outcome, NULL);
    }
}

/* A tick (or an issued invoice) is several transactions made idempotent by
 * the invoices' own state; its key is recorded once all of them are done. */
static kafka_result autopay_tick(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    tick_msg t;
    if (tick_parse(m->value, m->value_len, &t, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    if (t.kind != TICK_AUTOPAY) {
        snprintf(err, errlen, "expected a tick.autopay, got tick.%s", tick_kind_name(t.kind));
        return KAFKA_MSG_PERMANENT;
    }
    bool seen = false;
    db_status st = worker_seen(w, t.idempotency_key, &seen, err, errlen);
    if (st != DB_OK || seen)
        return worker_result(st);
    payments_stats s = {0};
    st = payments_run_tick(&autopay_ctx, PAYMENTS_AUTOPAY, &t, &s, err, errlen);
    autopay_count(w, &s);
    if (st == DB_OK)
        st = worker_record(w, t.idempotency_key, err, errlen);
    char n1[24], n2[24], n3[24], n4[24];
    log_msg(st == DB_OK ? LOG_INFO : LOG_WARN, "autopay tick", "idempotency_key",
            t.idempotency_key, "considered", db_i64(s.considered, n1, sizeof n1), "succeeded",
            db_i64(s.succeeded, n2, sizeof n2), "failed", db_i64(s.failed, n3, sizeof n3),
            "transient", db_i64(s.transient, n4, sizeof n4), "status", db_status_name(st), NULL);
    return worker_result(st);
}

static kafka_result autopay_issued(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    invoice_event e;
    if (invoice_event_parse(m->value, m->value_len, &e, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    if (e.type != INVOICE_EVENT_ISSUED)
        return KAFKA_MSG_OK; /* other lifecycle events are for other services */
    bool seen = false;
    db_status st = worker_seen(w, e.idempotency_key, &seen, err, errlen);
    if (st != DB_OK || seen)
        return worker_result(st);
    /* Due as of the invoice's own issue date: an on_issue invoice is due at
     * once, the other cadences wait for their tick. */
    char id[24];
    const char *p[] = {db_i64(e.invoice_id, id, sizeof id)};
    PGresult *r = db_exec(w->db,
                          "SELECT to_char(issue_date, 'YYYY-MM-DD') FROM billing.invoices"
                          " WHERE id = $1::bigint AND issue_date IS NOT NULL",
                          1, p, &st, err, errlen);
    if (r == NULL)
        return worker_result(st);
    civil_date on;
    bool found = PQntuples(r) > 0 && date_parse(PQgetvalue(r, 0, 0), &on);
    PQclear(r);
    if (found) {
        payments_stats s = {0};
        st = payments_charge(&autopay_ctx, PAYMENTS_AUTOPAY, &e.invoice_id, 1, on, &s, err,
                             errlen);
        autopay_count(w, &s);
        if (st == DB_OK && s.transient > 0) {
            /* Leave the key unrecorded: the tick replays the attempt. */
            return KAFKA_MSG_OK;
        }
    }
    if (st == DB_OK)
        st = worker_record(w, e.idempotency_key, err, errlen);
    return worker_result(st);
}

static kafka_result autopay_handle(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    const char *topic = worker_topic_of(w, m);
    if (strcmp(topic, TOPIC_TICKS_AUTOPAY) == 0)
        return autopay_tick(w, m, err, errlen);
    if (strcmp(topic, TOPIC_INVOICES) == 0)
        return autopay_issued(w, m, err, errlen);
    return payment_events_handle(w, &autopay_ctx, PAYMENT_EVENT_SUCCESS | PAYMENT_EVENT_PROCESSING,
                                 m, err, errlen);
}

int main(void)
{
    static const worker_spec spec = {
        .name = "billing-autopay-worker",
        .topics = {TOPIC_TICKS_AUTOPAY, TOPIC_INVOICES, TOPIC_STRIPE_PAYMENTS},
        .ntopics = 3,
        .needs_stripe = true,
        .handle = autopay_handle,
        .init = autopay_init};
    return worker_main(&spec);
}
