/* invoice_transitions.h: every change of an invoice's status or amounts,
 * with its audit action and lifecycle event, is one billing.* function
 * (the table atop sql/022_invoice_transitions.sql names each and the
 * migration that defines it); this module is the one C caller of them:
 * the ones an event or a tick triggers, and the operators' (issue, adjust,
 * void, credit note). What C decides stays with the caller (which
 * transition a Stripe event means: disputes.c; a hard decline and the
 * retry schedule: payment_record.c; which refunds changed: disputes.c; an
 * operator's input, settings and the credit note's mode: lifecycle.c);
 * what the transition writes is the function's alone. Money landing,
 * taken back or given back is billing.land_money, take_back and
 * give_back, called by payments, credit and refunds.
 *
 * Every function runs inside the caller's transaction, with the invoice
 * row locked by the caller where the caller read it first. */
#ifndef LEDGERLINE_INVOICE_TRANSITIONS_H
#define LEDGERLINE_INVOICE_TRANSITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"

/* A dispute's row was just written (dispute_apply): disputed on first
 * sight; won or lost when it closed. */
db_status itr_dispute_opened(db_conn *c, int64_t dispute_id, const char *stripe_event_id, char *err,
                             size_t errlen);
db_status itr_dispute_won(db_conn *c, int64_t dispute_id, const char *stripe_event_id, char *err,
                          size_t errlen);
/* charge, payment_intent: the event's ("" when absent), naming the payment
 * whose money the chargeback takes back. */
db_status itr_dispute_lost(db_conn *c, int64_t dispute_id, const char *stripe_event_id,
                           const char *charge, const char *payment_intent, char *err,
                           size_t errlen);

/* A refund change reached the invoice (refund_apply has recorded the
 * refunds and taken back or given back the money). */
typedef struct {
    int64_t invoice_id;
    int64_t change;              /* cents refunded now, less cents a failed refund returned */
    bool own_money;              /* the invoice itself gave money back or got it back */
    const char *charge;          /* Stripe charge id */
    const char *refund_ids_json; /* JSON array of the refund ids that changed */
    int64_t paid_before;         /* amount_paid_cents before the change */
    const char *stripe_event_id;
    const char *currency;
    int64_t from_credit, from_invoice, returned;
} itr_refund;
/* status (statuslen bytes) and *refunded_total receive the invoice's after it. */
db_status itr_invoice_refunded(db_conn *c, const itr_refund *r, char *status, size_t statuslen,
                               int64_t *refunded_total, char *err, size_t errlen);

/* A payment failed and the invoice was in a state a failure moves. */
typedef struct {
    const char *invoice_id;
    const char *status;         /* failed, or overdue when the retries are exhausted */
    const char *failed_at;      /* timestamptz text */
    const char *message;        /* Stripe's, "" when none */
    const char *code;           /* the failure code */
    const char *retry_count;    /* the invoice's count with this failure */
    const char *delay_days;     /* days to the next retry; NULL for none */
    const char *payment_intent; /* NULL when none */
    const char *attempt_id;
    const char *next_action; /* payment_retry_scheduled, _exhausted or _skipped */
    bool hard;               /* a hard decline: the customer must act */
} itr_failure;
db_status itr_payment_failed(db_conn *c, const itr_failure *f, char *err, size_t errlen);

/* ---- the operators' transitions (lifecycle.c validates, then calls) ---- */

#define ITR_NUMBER_MAX 64 /* a legal number */

/* billing.issue_invoice (013) on day (YYYY-MM-DD): the legal number (out,
 * ITR_NUMBER_MAX bytes), *already when it was issued before. */
db_status itr_issue(db_conn *c, int64_t invoice_id, const char *day, const char *by,
                    char legal_number[ITR_NUMBER_MAX], bool *already, char *err, size_t errlen);

/* billing.adjust_invoice_line (013): a draft's line to quantity hours (NULL
 * for none) or amount_cents (-1 for none); *total the invoice's new total,
 * *amount the line's. */
db_status itr_adjust(db_conn *c, int64_t invoice_id, int64_t line_id, const char *quantity,
                     int64_t amount_cents, const char *reason, const char *by, int64_t *total,
                     int64_t *amount, char *err, size_t errlen);

/* billing.void_invoice (013): *released time entries billable again,
 * *already when it was void before. */
db_status itr_void(db_conn *c, int64_t invoice_id, const char *reason, const char *by,
                   int64_t *released, bool *already, char *err, size_t errlen);

/* billing.create_credit_note (014): by amount (total_cents > 0) or by lines
 * (lines_json); mode "refund" or "credit"; day YYYY-MM-DD. */
typedef struct {
    int64_t invoice_id;
    int64_t total_cents;    /* 0 when by lines */
    const char *lines_json; /* NULL when by amount */
    const char *mode, *reason, *by, *day;
} itr_credit;
typedef struct {
    int64_t credit_note_id, firm_id, client_id;
    char legal_number[ITR_NUMBER_MAX];
    int64_t applied_to_due_cents, refunded_cents, credited_cents;
    bool already; /* the same note made before (the same request again) */
} itr_note;
db_status itr_credit_note(db_conn *c, const itr_credit *q, itr_note *out, char *err, size_t errlen);

/* Section 6 on a tick: day (YYYY-MM-DD), the tick's shard of shards and
 * firm (NULL for all). *count receives how many became overdue. */
db_status itr_mark_overdue(db_conn *c, const char *day, const char *shards, const char *shard,
                           const char *firm, int64_t *count, char *err, size_t errlen);

#endif
