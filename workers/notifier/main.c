/* main.c: billing-notifier (CONTRACT "Documents and delivery";
 * docs/NOTIFICATIONS.md). Consumes
 *   <prefix>invoices   invoice.issued, invoice.credited, invoice.paid and
 *                      invoice.payment_failed -> one e-mail each (with the
 *                      invoice's or credit note's PDF where there is one);
 *   <prefix>ticks.reminders  one shard of a day's reminders -> one e-mail per
 *                      invoice and due step (common/reminders.c).
 * Wiring only: the rules are common/notify.c's, documents common/document.c's,
 * SMTP common/smtp.c's. Settings: SMTP_* (smtp.h), NOTIFIER_MAX_ATTEMPTS
 * (transient failures before a notification is failed, default 10). */
#include <stdio.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/config.h"
#include "ledgerline/document.h"
#include "ledgerline/envelope.h"
#include "ledgerline/log.h"
#include "ledgerline/notify.h"
#include "ledgerline/reminders.h"
#include "ledgerline/smtp.h"
#include "ledgerline/worker.h"

static smtp_config notifier_smtp;
static notify_ctx notifier_ctx;

static int notifier_init(worker *w, char *err, size_t errlen)
{
    if (smtp_config_from_env(&notifier_smtp, err, errlen) != 0)
        config_die(err);
    notifier_ctx =
        (notify_ctx){.db = w->db,
                     .smtp = &notifier_smtp,
                     .max_attempts = (int)config_int("NOTIFIER_MAX_ATTEMPTS", 10, 1, 1000),
                     .metrics = w->metrics};
    return 0;
}

static kafka_result notifier_reminders(const kafka_msg *m, char *err, size_t errlen)
{
    tick_msg t;
    if (tick_parse(m->value, m->value_len, &t, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    if (t.kind != TICK_REMINDERS) {
        ll_failf(err, errlen, "cannot handle a tick.%s: the notifier handles tick.reminders only",
                 tick_kind_name(t.kind));
        return KAFKA_MSG_PERMANENT;
    }
    reminders_stats s;
    db_status st = reminders_run(&notifier_ctx, t.business_date, t.firm_id, t.shard, t.shards, &s,
                                 err, errlen);
    char ds[11], due[16], sent[16], failed[16], retry[16];
    date_format(t.business_date, ds, sizeof ds);
    snprintf(due, sizeof due, "%d", s.due);
    snprintf(sent, sizeof sent, "%d", s.sent);
    snprintf(failed, sizeof failed, "%d", s.failed);
    snprintf(retry, sizeof retry, "%d", s.retry);
    log_msg(LL_LOG_INFO, "reminders tick", "idempotency_key", t.idempotency_key, "business_date",
            ds, "due", due, "sent", sent, "failed", failed, "retry", retry, NULL);
    return worker_result(st);
}

static kafka_result notifier_handle(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    if (strcmp(worker_topic_of(w, m), TOPIC_TICKS_REMINDERS) == 0)
        return notifier_reminders(m, err, errlen);
    notify_request rq;
    bool wanted;
    if (notify_from_event(m->value, m->value_len, &rq, &wanted, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    if (!wanted)
        return KAFKA_MSG_OK;
    notify_outcome outcome;
    return worker_result(notify_deliver(&notifier_ctx, &rq, &outcome, err, errlen));
}

int main(void)
{
    static const worker_spec spec = {.name = "billing-notifier",
                                     .topics = {TOPIC_INVOICES, TOPIC_TICKS_REMINDERS},
                                     .ntopics = 2,
                                     .handle = notifier_handle,
                                     .declare_metrics = notify_metrics_declare,
                                     .init = notifier_init};
    int rc = worker_main(&spec);
    document_release_fonts(); /* for leak checkers: rendering's caches */
    return rc;
}
