/* payments.c: the payments module's settings (retry schedule, metrics) and
 * its vocabularies (hard declines, failure-code labels). The module charges
 * invoices through Stripe and records what came of it (payments.h, three
 * steps), one concern per file:
 *   payment_record.c   recording outcomes: money, failures, resume;
 *   payment_prepare.c  step 1: what to charge, new attempt or replay;
 *   payment_apply.c    step 3: applying an answer, abandoning, lookups;
 *   payment_run.c      step 2 and the whole: the stream of Stripe calls;
 *   payment_ticks.c    the tick and preview selections, the overdue rule.
 * It owns payment attempts (their replay, lookup and abandonment: rules
 * 11.2-11.5), payments from Stripe, payment failures with the retry
 * schedule, and the overdue rule. How money lands on an invoice is
 * billing.land_money's (sql/009), what an answer means payment_answer.c's,
 * credit application credit.c's, the wire stripe.c's. */
#include "ledgerline/payments.h"
#include "payment_charge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/config.h"
#include "ledgerline/credit.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_event.h"
#include "ledgerline/vocab.h"

const char *const payments_kind_names[] = {"autopay", "retry"};

void payments_schedule_from_env(payments_ctx *ctx)
{
    config_int_list l;
    config_int_list_or_exit("RETRY_SCHEDULE_DAYS", "3,7,14", 1, 365, &l);
    ctx->nretry = l.count < PAYMENTS_MAX_SCHEDULE ? l.count : PAYMENTS_MAX_SCHEDULE;
    for (size_t i = 0; i < ctx->nretry; i++)
        ctx->retry_days[i] = l.values[i];
}

void payments_stats_count(metrics_registry *m, const char *family, const payments_stats *s)
{
    const struct {
        const char *outcome;
        int64_t n;
    } rows[] = {{"succeeded", s->succeeded},   {"failed", s->failed},
                {"processing", s->processing}, {"credit", s->credit_paid},
                {"transient", s->transient},   {"cancelled", s->cancelled},
                {"overdue", s->overdue},       {"abandoned", s->abandoned},
                {"our_fault", s->our_fault},   {"parked", s->parked}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].n > 0)
            metrics_counter_add(m, family, (uint64_t)rows[i].n, "outcome", rows[i].outcome, NULL);
}

int payments_metrics_declare(metrics_registry *m)
{
    if (metrics_declare(m, "billing_payment_failures_total", METRICS_COUNTER,
                        "Payment failures recorded, by failure code.") != 0)
        return -1;
    return metrics_declare(m, "billing_stripe_integration_errors_total", METRICS_COUNTER,
                           "Stripe answers saying our integration is wrong (401/403/404, our"
                           " invalid requests, idempotency conflicts), by code; never a"
                           " customer's failure (rule 11.6).");
}

bool payments_is_hard_decline(const char *code)
{
    return ll_vocab_find(&ll_hard_declines, code) >= 0;
}

const char *payments_failure_code_label(const char *code)
{
    const char *label = ll_vocab_name(&ll_hard_declines, ll_vocab_find(&ll_hard_declines, code));
    if (label == NULL)
        label = ll_vocab_name(&ll_soft_failures, ll_vocab_find(&ll_soft_failures, code));
    return label != NULL ? label : "other";
}
