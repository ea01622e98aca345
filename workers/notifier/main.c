/* main.c: billing-notifier (CONTRACT "Documents and delivery";
 * docs/NOTIFICATIONS.md). Consumes
 *   <prefix>invoices   invoice.issued, invoice.credited, invoice.paid and
 *                      invoice.payment_failed -> one e-mail each (with the
 *                      invoice's or credit note's PDF where there is one).
 * Wiring only: the rules are common/notify.c's, documents common/document.c's,
 * SMTP common/smtp.c's. Settings: SMTP_* (smtp.h), NOTIFIER_MAX_ATTEMPTS
 * (transient failures before a notification is failed, default 10). */
#include <stdio.h>
#include <string.h>

#include "ledgerline/config.h"
#include "ledgerline/document.h"
#include "ledgerline/log.h"
#include "ledgerline/notify.h"
#include "ledgerline/smtp.h"
#include "ledgerline/worker.h"

static smtp_config notifier_smtp;
static notify_ctx notifier_ctx;

static int notifier_init(worker *w)
{
    char err[512];
    if (smtp_config_from_env(&notifier_smtp, err, sizeof err) != 0)
        config_die(err);
    notifier_ctx = (notify_ctx){.db = w->db,
                                .smtp = &notifier_smtp,
                                .max_attempts = (int)config_int("NOTIFIER_MAX_ATTEMPTS", 10, 1, 1000),
                                .metrics = w->metrics};
    return notify_metrics_declare(w->metrics);
}

static kafka_result notifier_handle(worker *w, const kafka_msg *m, char *err, size_t errlen)
{
    (void)w;
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
                                     .topics = {TOPIC_INVOICES},
                                     .ntopics = 1,
                                     .handle = notifier_handle,
                                     .init = notifier_init};
    int rc = worker_main(&spec);
    document_release_fonts(); /* for leak checkers: rendering's caches */
    return rc;
}
