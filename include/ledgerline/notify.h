/* notify.h: the notifier's rules (billing-notifier; CONTRACT "Documents and
 * delivery"; docs/NOTIFICATIONS.md): which e-mail an invoice event asks
 * for, its Message-ID, its text, and delivering it once.
 *
 * Delivering one notification (notify_deliver), in three steps:
 *   1. one transaction: the document rendered and stored when the kind
 *      carries one and none is stored, and the notification row inserted
 *      `queued` (or `failed` when the client has no usable
 *      primary_contact_email); an existing row is kept as it is;
 *   2. when the row is queued: attempts + 1 committed, then the message sent
 *      through SMTP (outside any transaction);
 *   3. one transaction: `sent` with sent_at, or `failed` with the server's
 *      permanent answer, or (transient) the error kept and the row left
 *      queued for the next try; after max_attempts transient failures it is
 *      `failed` too.
 * A row that is sent or failed is never sent again. A crash after the
 * server accepted the message and before step 3 committed leaves the row
 * queued: the redelivered event sends it once more, with the same
 * Message-ID (derived from the notification's key), so the recipient's
 * mail system can tell the copy.
 */
#ifndef LEDGERLINE_NOTIFY_H
#define LEDGERLINE_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/metrics.h"
#include "ledgerline/smtp.h"

#define NOTIFY_MESSAGE_ID_MAX 128
#define NOTIFY_CODE_MAX 64

typedef enum {
    NOTIFY_INVOICE_ISSUED = 0,
    NOTIFY_CREDIT_NOTE,
    NOTIFY_RECEIPT,
    NOTIFY_PAYMENT_FAILED,
    NOTIFY_ACTION_REQUIRED,
    NOTIFY_REMINDER,
    NOTIFY_STATEMENT
} notify_kind;

/* The contract's kind names ("invoice_issued", ...). */
const char *notify_kind_name(notify_kind k);

typedef struct {
    notify_kind kind;
    int64_t invoice_id;
    int64_t credit_note_id;             /* 0 unless NOTIFY_CREDIT_NOTE */
    int64_t client_id;                  /* NOTIFY_STATEMENT only (its key) */
    int step;                           /* a reminder's day offset, a statement's
                                           date as YYYYMMDD; else 0 */
    char failure_code[NOTIFY_CODE_MAX]; /* payment_failed / action_required */
} notify_request;

/* "<kind.invoice.credit_note.step@ledgerline>", e.g.
 * "<invoice_issued.42.0.0@ledgerline>", "<reminder.42.0.-3@ledgerline>";
 * a statement names its client where the others name the invoice:
 * "<statement.7.0.20261207@ledgerline>". */
void notify_message_id(const notify_request *rq, char out[NOTIFY_MESSAGE_ID_MAX]);

/* The notification an event of topic `invoices` asks for: invoice.issued
 * -> invoice_issued, invoice.credited -> credit_note (its credit_note_id),
 * invoice.paid -> receipt, invoice.payment_failed -> action_required for a
 * hard decline (payments_is_hard_decline of its failure_code) else
 * payment_failed. *wanted is false for the other types (nothing to send).
 * -1 with err for a malformed event (dlq). */
int notify_from_event(const char *json, size_t len, notify_request *out, bool *wanted, char *err,
                      size_t errlen);

typedef struct {
    db_conn *db;
    const smtp_config *smtp;
    int max_attempts;          /* transient failures before `failed` (>= 1) */
    metrics_registry *metrics; /* optional: billing_notifications_total{kind,outcome} */
} notify_ctx;

/* Declares billing_notifications_total and
 * billing_notification_documents_total. */
int notify_metrics_declare(metrics_registry *m);

typedef enum {
    NOTIFY_SENT = 0, /* sent now */
    NOTIFY_ALREADY,  /* sent or failed before: nothing done */
    NOTIFY_FAILED,   /* recorded failed now (no address, permanent reply, gave up) */
    NOTIFY_RETRY     /* transient: recorded, try again later */
} notify_outcome;

const char *notify_outcome_name(notify_outcome o);

/* The steps above for an invoice kind (not NOTIFY_STATEMENT). DB_OK with
 * *outcome; DB_TRANSIENT when the database is unreachable or the outcome is
 * NOTIFY_RETRY (then err says why); DB_PERMANENT when the invoice or note
 * does not exist or is a draft. invoice_issued and credit_note attach the
 * stored document; a reminder attaches its payment-reminder letter
 * (document_render_reminder, rendered from the invoice and step, not
 * stored). */
db_status notify_deliver(notify_ctx *ctx, const notify_request *rq, notify_outcome *outcome,
                         char *err, size_t errlen);

/* A statement e-mail (kind statement, one per client and step = the
 * statement date as YYYYMMDD, rule 17.3), its text and document the
 * caller's (common/statement.c). */
typedef struct {
    int64_t firm_id, client_id;
    int step;
    const char *client_email; /* "" or NULL: recorded failed */
    const char *subject, *body, *pdf_name;
    /* Step 1, inside its transaction, when no row exists yet: store the
     * document (keeping one that is stored). */
    db_status (*store)(db_conn *c, void *arg, char *err, size_t errlen);
    /* Step 2: the stored document's malloc'd bytes. */
    db_status (*fetch)(db_conn *c, void *arg, unsigned char **pdf, size_t *len, char *err,
                       size_t errlen);
    void *arg;
} notify_statement;

/* The same three steps for a statement: sent once per (client, step); a
 * row that is sent or failed is NOTIFY_ALREADY and nothing is stored or
 * sent. */
db_status notify_deliver_statement(notify_ctx *ctx, const notify_statement *s,
                                   notify_outcome *outcome, char *err, size_t errlen);

#endif
