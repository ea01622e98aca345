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
    retry_ctx.db = w->db;
    retry_ctx.stripe = w->stripe;
    retry_ctx.metrics = w->metrics;
    payments_schedule_from_env(&retry_ctx);
    if (payments_metrics_declare(w->metrics) != 0 ||
        metrics_declare(w->metrics, "billing_retries_total", METRICS_COUNTER,
                        "Payment retries and overdue invoices, by outcome.") != 0)
        return ll_failf(err, errlen,
                        "could not declare the retry worker's metrics: "
                        "a name is malformed or taken, or memory ran out");
    return 0;
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
                                     .init = retry_init};
    return worker_main(&spec);
}
