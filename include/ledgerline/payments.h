/* payments.h: charging invoices through Stripe, shared by the autopay and
 * retry workers (BILLING_RULES sections 5 and 6).
 *
 * A charge of one invoice is three steps:
 *   1. prepare (one transaction): lock the invoice, check it is due, apply
 *      the client's credit, and write the payment attempt with its
 *      idempotency key (<kind>:<invoice id>:<attempt no>) BEFORE calling
 *      Stripe; an attempt left unfinished by a crash or an outage is replayed
 *      with its own key and parameters instead of starting a new one;
 *   2. call Stripe (many invoices at once, within the rate cap; transient
 *      answers are retried a few times with the same key);
 *   3. apply the answer (one transaction): a payment (once per PaymentIntent),
 *      a failure (once per PaymentIntent, with the retry schedule), a
 *      processing intent waiting for its webhook, or a transient error that
 *      leaves the attempt to be replayed by the next tick.
 * A process killed anywhere replays the same key: Stripe answers the first
 * result again, and the unique PaymentIntent id keeps the money applied once.
 */
#ifndef LEDGERLINE_PAYMENTS_H
#define LEDGERLINE_PAYMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/envelope.h"
#include "ledgerline/metrics.h"
#include "ledgerline/stripe.h"

typedef enum { PAYMENTS_AUTOPAY = 0, PAYMENTS_RETRY } payments_kind;

#define PAYMENTS_MAX_SCHEDULE 16

typedef struct {
    db_conn *db;
    stripe_client *stripe;
    int64_t retry_days[PAYMENTS_MAX_SCHEDULE]; /* RETRY_SCHEDULE_DAYS */
    size_t nretry;
    int transient_tries;  /* in-process tries of a transient answer; 0 = 3 */
    int backoff_ms;       /* first wait between them, doubling; 0 = 500 */
    int batch_size;       /* invoices charged concurrently per batch; 0 = 500 */
    metrics_registry *metrics; /* optional: billing_payment_failures_total{code} */
} payments_ctx;

typedef struct {
    int64_t considered;   /* invoices looked at */
    int64_t charged;      /* Stripe calls whose answer was applied */
    int64_t succeeded;    /* paid by Stripe */
    int64_t processing;   /* waiting for a webhook */
    int64_t failed;       /* failures recorded (declines, missing methods) */
    int64_t transient;    /* left for a later replay */
    int64_t credit_paid;  /* paid entirely by credit, without Stripe */
    int64_t cancelled;    /* autopay cancelled: the client turned it off */
    int64_t overdue;      /* became overdue (retry tick) */
    int64_t skipped;      /* not due, already paid, or awaiting a webhook */
} payments_stats;

/* Adds the non-zero outcomes of s to the counter `family` (declared by the
 * caller) with label outcome = succeeded, failed, processing, credit,
 * transient, cancelled, overdue. */
void payments_stats_count(metrics_registry *m, const char *family, const payments_stats *s);

/* Declares billing_payment_failures_total (ctx->metrics). 0 or -1. */
int payments_metrics_declare(metrics_registry *m);

/* Reads RETRY_SCHEDULE_DAYS (default 3,7,14; exits 2 when malformed). */
void payments_schedule_from_env(payments_ctx *ctx);

/* Charges the given invoices as of `on` (the tick's business date). */
db_status payments_charge(payments_ctx *ctx, payments_kind kind, const int64_t *ids, size_t n,
                          civil_date on, payments_stats *stats, char *err, size_t errlen);

/* One tick shard: for autopay, cancels the pending autopay of clients who
 * turned it off and charges every due invoice; for retry, charges every
 * failed invoice whose retry date has come and marks unpaid invoices past
 * their due date overdue. Batches of ctx->batch_size. */
db_status payments_run_tick(payments_ctx *ctx, payments_kind kind, const tick_msg *t,
                            payments_stats *stats, char *err, size_t errlen);

/* What a tick would do, without doing it (billingctl --dry-run): calls fn
 * for each invoice that would be charged ("charge"), have its autopay
 * cancelled because the client turned it off ("cancel"), or become overdue
 * ("overdue"), in id order. */
typedef struct {
    const char *action;        /* "charge", "cancel" or "overdue" */
    int64_t invoice_id;
    const char *invoice_number;
    int64_t engagement_id;     /* 0 = none */
    const char *period_start;  /* "" when none */
    const char *period_end;
    int64_t total_cents;
    int64_t due_cents;         /* total - amount paid */
    const char *currency;
    int attempt_no;            /* the attempt the charge would be */
} payments_preview_row;
typedef void (*payments_preview_fn)(const payments_preview_row *row, void *arg);
db_status payments_preview(db_conn *c, payments_kind kind, civil_date on, int64_t firm_id,
                           payments_preview_fn fn, void *arg, char *err, size_t errlen);

/* ---- Used by the Stripe event handlers (inside the caller's transaction) -- */

/* Applies money received for a PaymentIntent to an invoice, once per intent:
 * payments row, amount paid (the part above the balance due becomes an
 * overpayment credit), status paid/partial, attempt succeeded, audit, and
 * invoice.paid. *applied = false when this intent was already applied. */
db_status payments_apply_success(db_conn *c, int64_t invoice_id, const char *payment_intent,
                                 const char *charge, int64_t amount_cents, civil_date on,
                                 bool *applied, char *err, size_t errlen);

/* Records a payment failure once per PaymentIntent (or per attempt when no
 * intent exists, as for a missing payment method): the section 6 fields, the
 * retry schedule or a hard decline's skip or the exhausted schedule's
 * overdue, audit events, and invoice.payment_failed. failed_at is an RFC 3339
 * time; the next retry is counted in days from its UTC date. attempt_id 0 =
 * find the attempt by payment_intent (or write one for an intent we did not
 * create). *recorded = false when this failure was already counted. */
typedef struct {
    int64_t invoice_id;
    int64_t attempt_id;
    const char *payment_intent;  /* NULL/"" when none */
    const char *code;            /* decline code, else error code */
    const char *message;         /* the processor's message */
    const char *failed_at;       /* RFC 3339 */
    int64_t amount_cents;        /* for an attempt written here; 0 = the balance due */
} payments_failure;
db_status payments_record_failure(db_conn *c, const payments_ctx *ctx,
                                  const payments_failure *f, bool *recorded, char *err,
                                  size_t errlen);

/* A PaymentIntent reported as processing: remembered on its attempt and
 * invoice so no new attempt starts while the webhook is awaited. */
db_status payments_mark_processing(db_conn *c, int64_t invoice_id, const char *payment_intent,
                                   char *err, size_t errlen);

bool payments_is_hard_decline(const char *code);

#endif
