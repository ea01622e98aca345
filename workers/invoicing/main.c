/* main.c: billing-invoicing-worker: consumes <prefix>ticks.invoicing in group
 * "<prefix>billing-invoicing-worker" and generates each tick shard's invoices
 * (handler.c; the rules are common/invoicing.c's), counting them in
 * billing_invoices_generated_total. The process around it (clients, outbox
 * relay to <prefix>invoices, metrics listener, clean stop) is
 * common/worker.c's. */
#include "handler.h"
#include "ledgerline/failf.h"
#include "ledgerline/worker.h"

static invoicing_worker invoicing_state;

static int invoicing_metrics(metrics_registry *m)
{
    return metrics_declare(m, "billing_invoices_generated_total", METRICS_COUNTER,
                           "Invoices created by invoicing ticks.");
}

static int invoicing_init(worker *w, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    invoicing_state = (invoicing_worker){
        .db = w->db, .producer = w->producer, .prefix = w->prefix, .group = w->group};
    return 0;
}

static kafka_result invoicing_handle(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    /* The relay runs in the background (worker.c kicks it after each
     * message), so the handler never publishes inline. */
    invoicing_state.relay = w->relay;
    int64_t before = invoicing_state.invoices_created;
    kafka_result r = invoicing_worker_handle(&invoicing_state, m, err, errlen);
    int64_t created = invoicing_state.invoices_created - before;
    if (created > 0)
        metrics_counter_add(w->metrics, "billing_invoices_generated_total", (uint64_t)created,
                            NULL);
    return r;
}

int main(void)
{
    static const worker_spec spec = {.name = "billing-invoicing-worker",
                                     .topics = {TOPIC_TICKS_INVOICING},
                                     .ntopics = 1,
                                     .needs_stripe = false,
                                     .handle = invoicing_handle,
                                     .declare_metrics = invoicing_metrics,
                                     .init = invoicing_init};
    return worker_main(&spec);
}
