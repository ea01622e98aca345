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
    int transient_tries;       /* in-process tries of a transient answer; 0 = 3 */
    int backoff_ms;            /* first wait between them, doubling; 0 = 500 */
    int batch_size;            /* invoices charged concurrently per batch; 0 = 500 */
    metrics_registry *metrics; /* optional: billing_payment_failures_total{code} */
} payments_ctx;

typedef struct {
    int64_t considered;  /* invoices looked at */
    int64_t charged;     /* Stripe calls whose answer was applied */
    int64_t succeeded;   /* paid by Stripe */
    int64_t processing;  /* waiting for a webhook */
    int64_t failed;      /* failures recorded (declines, missing methods) */
    int64_t transient;   /* left for a later replay */
    int64_t credit_paid; /* paid entirely by credit, without Stripe */
    int64_t cancelled;   /* autopay cancelled: the client turned it off */
    int64_t overdue;     /* became overdue (retry tick) */
    int64_t skipped;     /* not due, already paid, or awaiting a webhook */
    int64_t abandoned;   /* looked up at Stripe and found nothing (11.2) */
    int64_t our_fault;   /* answers saying our integration is wrong (11.6) */
    int64_t parked;      /* idempotency conflicts: needs_attention (11.6) */
} payments_stats;

/* Adds the non-zero outcomes of s to the counter `family` (declared by the
 * caller) with label outcome = succeeded, failed, processing, credit,
 * transient, cancelled, overdue. */
void payments_stats_count(metrics_registry *m, const char *family, const payments_stats *s);

/* Declares billing_payment_failures_total and
 * billing_stripe_integration_errors_total (ctx->metrics). 0 or -1. */
int payments_metrics_declare(metrics_registry *m);

/* Reads RETRY_SCHEDULE_DAYS (default 3,7,14; exits 2 when malformed). */
void payments_schedule_from_env(payments_ctx *ctx);

/* Charges the given invoices as of `on` (the tick's business date). */
db_status payments_charge(payments_ctx *ctx, payments_kind kind, const int64_t *ids, size_t n,
                          civil_date on, payments_stats *stats, char *err, size_t errlen);

/* Charges one invoice the moment it is issued (the invoices topic), as of
 * its issue date, only when it is due then (on_issue); any other is the
 * ticks' to charge, and one with an unfinished attempt is left alone unless
 * due. */
db_status payments_charge_issued(payments_ctx *ctx, int64_t invoice_id, civil_date on,
                                 payments_stats *stats, char *err, size_t errlen);

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
    const char *action; /* "charge", "cancel" or "overdue" */
    int64_t invoice_id;
    const char *invoice_number;
    int64_t engagement_id;    /* 0 = none */
    const char *period_start; /* "" when none */
    const char *period_end;
    int64_t total_cents;
    int64_t due_cents; /* total - amount paid */
    const char *currency;
    int attempt_no; /* the attempt the charge would be */
} payments_preview_row;
typedef void (*payments_preview_fn)(const payments_preview_row *row, void *arg);
db_status payments_preview(db_conn *c, payments_kind kind, civil_date on, int64_t firm_id,
                           payments_preview_fn fn, void *arg, char *err, size_t errlen);

/* ---- Used by the Stripe event handlers (inside the caller's transaction) -- */

#define PAYMENTS_KEY_MAX 96

/* Money Stripe received for a PaymentIntent. */
typedef struct {
    int64_t invoice_id;
    int64_t attempt_id; /* our attempt; 0 = the one that has payment_intent */
    const char *payment_intent;
    const char *charge;   /* NULL when not known */
    int64_t amount_cents; /* what Stripe received */
    const char *currency; /* Stripe's; NULL = the invoice's (our own answer) */
    civil_date on;
} payments_money;

typedef enum {
    PAYMENTS_MONEY_APPLIED = 0,   /* recorded now */
    PAYMENTS_MONEY_ALREADY,       /* this PaymentIntent was applied before */
    PAYMENTS_MONEY_WRONG_CURRENCY /* not applied, nothing written (rule 11.8) */
} payments_money_result;

/* Applies money received for a PaymentIntent, once per intent: payments row
 * (received, applied, currency, charge), the invoice through
 * billing.land_money (sql/009: status, paid date, autopay status, retry
 * date, invoice.paid), the attempt succeeded, audit invoice_autopaid (an
 * attempt of ours) or payment_received (a PaymentIntent created elsewhere),
 * and what the balance due did not take as an overpayment credit naming
 * the payment. Money for a closed invoice (cancelled, void, refunded,
 * charged back) is all credit and the invoice does not change (11.8). */
db_status payments_apply_success(db_conn *c, const payments_money *m, payments_money_result *out,
                                 char *err, size_t errlen);

/* Records a payment failure once per PaymentIntent (or per attempt when no
 * intent exists, as for a missing payment method): the section 6 fields, the
 * retry schedule or a hard decline's skip or the exhausted schedule's
 * overdue, audit events, and invoice.payment_failed. failed_at is an RFC 3339
 * time; the next retry is counted in days from its UTC date. attempt_id 0 =
 * find the attempt by payment_intent (or write one for an intent we did not
 * create). The failure of an attempt already abandoned (11.2) is recorded on
 * the attempt only. *recorded = false when this failure was already counted. */
typedef struct {
    int64_t invoice_id;
    int64_t attempt_id;
    const char *payment_intent; /* NULL/"" when none */
    const char *code;           /* decline code, else error code */
    const char *message;        /* the processor's message */
    const char *failed_at;      /* RFC 3339 */
    int64_t amount_cents;       /* for an attempt written here; 0 = the balance due */
} payments_failure;
db_status payments_record_failure(db_conn *c, const payments_ctx *ctx, const payments_failure *f,
                                  bool *recorded, char *err, size_t errlen);

/* A PaymentIntent reported as processing: remembered on its attempt
 * (attempt_id, else the one that has the intent) and the invoice's autopay
 * status, so no new attempt starts while the webhook is awaited. Never
 * changes which PaymentIntent paid the invoice (11.10). */
db_status payments_mark_processing(db_conn *c, int64_t invoice_id, int64_t attempt_id,
                                   const char *payment_intent, char *err, size_t errlen);

/* billingctl autopay resume: a needs_attention invoice goes back to
 * scheduled (its unfinished attempt is then resolved by lookup, never
 * replayed), audit autopay_resumed with the operator's name. DB_PERMANENT
 * with a message when the invoice is not parked. */
db_status payments_resume(db_conn *c, int64_t invoice_id, const char *by, char *err, size_t errlen);

/* ---- Stripe's answers (payment_answer.c) ------------------------------- */

typedef enum {
    PAYMENTS_ANSWER_PAID = 0,   /* succeeded */
    PAYMENTS_ANSWER_PROCESSING, /* its webhook decides */
    PAYMENTS_ANSWER_DECLINED,   /* a payment failure (section 6), code set */
    PAYMENTS_ANSWER_OUR_FAULT,  /* 401/403/404, our invalid request, odd status (11.6) */
    PAYMENTS_ANSWER_CONFLICT,   /* idempotency key reused with other parameters (11.6) */
    PAYMENTS_ANSWER_TRANSIENT   /* no answer, 5xx, 429, key in flight: same key later */
} payments_answer;

/* What a charge's answer means; code gets the failure code (declines) or
 * what went wrong (our faults). Pure. */
payments_answer payments_answer_of(const stripe_result *res, char *code, size_t codelen);
const char *payments_answer_name(payments_answer a);

/* An unanswered attempt to look up at Stripe (11.2). */
typedef struct {
    char attempt_key[PAYMENTS_KEY_MAX];
    char payment_intent[STRIPE_ID_MAX]; /* known: read it by id */
    char customer[STRIPE_ID_MAX];       /* "" when none: search only */
    int64_t since_unix;                 /* list the customer's intents created since */
} payments_lookup;

/* Finds what Stripe holds for the attempt: by id when the PaymentIntent is
 * known, else by searching metadata['attempt_key'] and then listing the
 * customer's PaymentIntents since the attempt (search is eventually
 * consistent; the list is not). 1 = found (out filled as if Stripe had
 * answered the charge with it; caller frees), 0 = Stripe has none, -1 =
 * cannot tell now (err). */
int payments_lookup_attempt(stripe_client *sc, const payments_lookup *l, stripe_result *out,
                            char *err, size_t errlen);

/* The value of billing_payment_failures_total's code label: a known
 * Stripe or system code as it is, anything else "other" (the label must
 * not take Stripe's free text). */
const char *payments_failure_code_label(const char *code);

bool payments_is_hard_decline(const char *code);

#endif
