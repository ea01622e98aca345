/* main.c: billing-autopay-worker (BILLING_RULES section 5). Consumes
 *   <prefix>ticks.autopay      charge every due invoice of the tick's shard;
 *   <prefix>invoices           charge an on_issue invoice as soon as it is
 * issued; <prefix>stripe.payments    apply successes and processing intents
 * once. The charging rules are common/payments.c's (shared with the retry
 * worker). */
#include <stdio.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/envelope.h"
#include "ledgerline/invoice_dates.h"
#include "ledgerline/log.h"
#include "ledgerline/payment_events.h"
#include "ledgerline/payments.h"
#include "ledgerline/worker.h"

static payments_ctx autopay_ctx;

static int autopay_init(worker *w, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    autopay_ctx.db = w->db;
    autopay_ctx.stripe = w->stripe;
    autopay_ctx.metrics = w->metrics;
    payments_schedule_from_env(&autopay_ctx);
    return 0;
}

static int autopay_metrics(metrics_registry *m)
{
    if (payments_metrics_declare(m) != 0)
        return -1;
    return metrics_declare(m, "billing_charges_total", METRICS_COUNTER,
                           "Invoices charged, by outcome.");
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
    civil_date on;
    bool found = false;
    st = invoice_issue_date(w->db, e.invoice_id, &on, &found, err, errlen);
    if (st != DB_OK)
        return worker_result(st);
    if (found) {
        payments_stats s = {0};
        st = payments_charge_issued(&autopay_ctx, e.invoice_id, on, &s, err, errlen);
        payments_stats_count(w->metrics, "billing_charges_total", &s);
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
        return payment_tick_handle(w, &autopay_ctx, PAYMENTS_AUTOPAY, "billing_charges_total", m,
                                   err, errlen);
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
        .declare_metrics = autopay_metrics,
        .init = autopay_init};
    return worker_main(&spec);
}
