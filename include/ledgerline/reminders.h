/* reminders.h: the reminder ladder (CONTRACT "Documents and delivery /
 * Reminders"; docs/NOTIFICATIONS.md "Reminders"). Which reminders a business
 * date asks for is the database's (billing.reminders_due, sql/017: issued,
 * owed, not paused, firm's reminders on, step s of the firm's reminder_days
 * on due_date + s, not yet sent or failed); sending each is notify_deliver's
 * (kind reminder, step s: one notification row per invoice and step, so a
 * replayed tick mails nothing twice). Used by billing-notifier for each
 * ticks.reminders shard and by `billingctl reminders run --dry-run`. */
#ifndef LEDGERLINE_REMINDERS_H
#define LEDGERLINE_REMINDERS_H

#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/notify.h"
#include "ledgerline/smtp.h"

typedef struct {
    int64_t invoice_id, firm_id, client_id;
    int step; /* day offset from the due date */
    char legal_number[64];
    char due_date[11]; /* YYYY-MM-DD */
    int64_t balance_due_cents;
    char currency[4];
    char to_address[SMTP_ADDRESS_MAX + 1]; /* "" when the client has none */
} reminder_due;

typedef void (*reminder_fn)(const reminder_due *r, void *arg);

/* Calls fn for each reminder due on date (firm_id 0: all firms; shard of
 * shards, 0 of 1 for all), in invoice and step order. DB_OK, or the
 * database's status with err. */
db_status reminders_due(db_conn *c, civil_date date, int64_t firm_id, int shard, int shards,
                        reminder_fn fn, void *arg, char *err, size_t errlen);

typedef struct {
    int due;     /* reminders the date asked for */
    int sent;    /* mailed now */
    int already; /* sent or failed before (a race with another run) */
    int failed;  /* recorded failed now (no address, 5xx, gave up) */
    int retry;   /* transient: left queued for the next run */
} reminders_stats;

/* Delivers every reminder due (as reminders_due), one notify_deliver each,
 * the database connection being ctx->db. A transient failure of one does
 * not stop the others; the result is then DB_TRANSIENT (err: the first
 * error) so that the tick is retried, which mails only what is still due. */
db_status reminders_run(notify_ctx *ctx, civil_date date, int64_t firm_id, int shard, int shards,
                        reminders_stats *stats, char *err, size_t errlen);

#endif
