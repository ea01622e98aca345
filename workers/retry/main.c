/* main.c: billing-retry-worker (BILLING_RULES section 6). Consumes
 *   <prefix>ticks.retry        retry every failed invoice whose retry date has
 *                              come, and make unpaid invoices past their due
 *                              date overdue;
 *   <prefix>stripe.payments    record asynchronous failures, once each.
 * The charging and failure rules are common/payments.c's (shared with the
 * autopay worker): the same Stripe client, credit application and recording. */
#include <stdio.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/envelope.h"
#include "ledgerline/log.h"
#include "ledgerline/payment_events.h"
#include "ledgerline/payments.h"
#include "ledgerline/worker.h"

static payments_ctx retry_ctx;

static int retry_init(worker *w, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    retry_ctx.db = w->db;
    retry_ctx.stripe = w->stripe;
    retry_ctx.metrics = w->metrics;
    payments_schedule_from_env(&retry_ctx);
    return 0;
}

static int retry_metrics(metrics_registry *m)
{
    if (payments_metrics_declare(m) != 0)
        return -1;
    return metrics_declare(m, "billing_retries_total", METRICS_COUNTER,
                           "Payment retries and overdue invoices, by outcome.");
}

static kafka_result retry_handle(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    if (strcmp(worker_topic_of(w, m), TOPIC_TICKS_RETRY) == 0)
        return payment_tick_handle(w, &retry_ctx, PAYMENTS_RETRY, "billing_retries_total", m, err,
                                   errlen);
    return payment_events_handle(w, &retry_ctx, PAYMENT_EVENT_FAILURE, m, err, errlen);
}

int main(void)
{
    static const worker_spec spec = {.name = "billing-retry-worker",
                                     .topics = {TOPIC_TICKS_RETRY, TOPIC_STRIPE_PAYMENTS},
                                     .ntopics = 2,
                                     .needs_stripe = true,
                                     .handle = retry_handle,
                                     .declare_metrics = retry_metrics,
                                     .init = retry_init};
    return worker_main(&spec);
}
