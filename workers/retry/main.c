/* main.c: billing-retry-worker (BILLING_RULES section 6). Consumes
 *   <prefix>ticks.retry        retry every failed invoice whose retry date has
 *                              come, and make unpaid invoices past their due
 *                              date overdue;
 *   <prefix>stripe.payments    record asynchronous failures, once each.
 * The charging and failure rules are common/payments.c's (shared with the
 * autopay worker): the same Stripe client, credit application and recording. */
#include <stdio.h>
#include <string.h>

#include "ledgerline/envelope.h"
#include "ledgerline/log.h"
#include "ledgerline/payment_events.h"
#include "ledgerline/payments.h"
#include "ledgerline/worker.h"

static payments_ctx retry_ctx;

static int retry_init(worker *w)
{
    retry_ctx.db = w->db;
    retry_ctx.stripe = w->stripe;
    payments_schedule_from_env(&retry_ctx);
    return metrics_declare(w->metrics, "billing_retries_total", METRICS_COUNTER,
                           "Payment retries and overdue invoices, by outcome.");
}

static void retry_count(worker *w, const payments_stats *s)
{
    const struct {
        const char *outcome;
        int64_t n;
    } rows[] = {{"succeeded", s->succeeded}, {"failed", s->failed},
                {"processing", s->processing}, {"credit", s->credit_paid},
                {"transient", s->transient}, {"overdue", s->overdue},
                {"cancelled", s->cancelled}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].n > 0)
            metrics_counter_add(w->metrics, "billing_retries_total", (uint64_t)rows[i].n,
                                "outcome", rows[i].outcome, NULL);
}

static kafka_result retry_tick(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    tick_msg t;
    if (tick_parse(m->value, m->value_len, &t, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    if (t.kind != TICK_RETRY) {
        snprintf(err, errlen, "expected a tick.retry, got tick.%s", tick_kind_name(t.kind));
        return KAFKA_MSG_PERMANENT;
    }
    bool seen = false;
    db_status st = worker_seen(w, t.idempotency_key, &seen, err, errlen);
    if (st != DB_OK || seen)
        return worker_result(st);
    payments_stats s = {0};
    st = payments_run_tick(&retry_ctx, PAYMENTS_RETRY, &t, &s, err, errlen);
    retry_count(w, &s);
    if (st == DB_OK)
        st = worker_record(w, t.idempotency_key, err, errlen);
    char n1[24], n2[24], n3[24], n4[24];
    log_msg(st == DB_OK ? LOG_INFO : LOG_WARN, "retry tick", "idempotency_key",
            t.idempotency_key, "retried", db_i64(s.charged, n1, sizeof n1), "succeeded",
            db_i64(s.succeeded, n2, sizeof n2), "failed", db_i64(s.failed, n3, sizeof n3),
            "overdue", db_i64(s.overdue, n4, sizeof n4), "status", db_status_name(st), NULL);
    return worker_result(st);
}

static kafka_result retry_handle(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    if (strcmp(worker_topic_of(w, m), TOPIC_TICKS_RETRY) == 0)
        return retry_tick(w, m, err, errlen);
    return payment_events_handle(w, &retry_ctx, PAYMENT_EVENT_FAILURE, m, err, errlen);
}

int main(void)
{
    static const worker_spec spec = {.name = "billing-retry-worker",
                                     .topics = {TOPIC_TICKS_RETRY, TOPIC_STRIPE_PAYMENTS},
                                     .ntopics = 2,
                                     .needs_stripe = true,
                                     .handle = retry_handle,
                                     .init = retry_init};
    return worker_main(&spec);
}
