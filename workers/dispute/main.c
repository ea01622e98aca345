/* main.c: billing-dispute-worker: consumes <prefix>stripe.disputes in group
 * "<prefix>billing-dispute-worker" and applies disputes, chargebacks and
 * refunds (handler.c, rules in common/disputes.c). Calls Stripe to list a
 * refunded charge's refunds. The process around it (clients, outbox relay,
 * metrics listener, clean stop) is common/worker.c's. */
#include "handler.h"
#include "ledgerline/failf.h"
#include "ledgerline/worker.h"

static dispute_worker dispute_state;

static int dispute_init(worker *w, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    dispute_state = (dispute_worker){.db = w->db,
                                     .stripe = w->stripe,
                                     .producer = w->producer,
                                     .prefix = w->prefix,
                                     .group = w->group,
                                     .metrics = w->metrics};
    return 0;
}

static kafka_result dispute_handle(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    /* The relay runs in the background (worker.c kicks it after each
     * message), so the handler never publishes inline. */
    dispute_state.relay = w->relay;
    return dispute_worker_handle(&dispute_state, m, err, errlen);
}

int main(void)
{
    static const worker_spec spec = {.name = "billing-dispute-worker",
                                     .topics = {TOPIC_STRIPE_DISPUTES},
                                     .ntopics = 1,
                                     .needs_stripe = true,
                                     .handle = dispute_handle,
                                     .declare_metrics = dispute_worker_metrics_declare,
                                     .init = dispute_init};
    return worker_main(&spec);
}
