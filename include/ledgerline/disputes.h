/* disputes.h: the dispute, chargeback and refund rules of BILLING_RULES
 * section 7 (and the dispute summary of section 10), shared by
 * billing-dispute-worker and billingctl.
 *
 * - Disputes: every charge.dispute.* event carries the whole dispute object,
 *   so dispute_apply() upserts the row by Stripe dispute id and only moves it
 *   forward (status rank opened < under_review < closed; at the same rank
 *   the newer event wins; closed is final). The invoice effects happen on
 *   transitions, not on events: the first sight of a dispute opens it (the
 *   invoice becomes disputed, its previous status is remembered, audit
 *   payment_disputed, event invoice.disputed); reaching closed settles it
 *   (won: the remembered status comes back, audit dispute_won; lost: the
 *   invoice is charged_back, amount_paid drops by the disputed amount but
 *   not below zero, audit dispute_lost, event invoice.charged_back). A
 *   `closed` seen first does both, so any order ends in the same rows.
 * - Refunds: refund_apply() records each refund of a charge once (refunds
 *   unique by Stripe refund id); the invoice's refunded total follows the
 *   charge and never goes down; amount_paid drops by the increase.
 * - Evidence: the field names Stripe accepts, validation of an operator's
 *   EVIDENCE.json, and the form sent to POST /v1/disputes/{id}.
 *
 * All db functions run inside the caller's transaction (db_run_once /
 * db_run_tx) and write audit events and outbox rows through billing.audit()
 * and billing.invoice_event() (sql/003_events.sql).
 */
#ifndef LEDGERLINE_DISPUTES_H
#define LEDGERLINE_DISPUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ledgerline/db.h"
#include "ledgerline/stripe.h"
#include "ledgerline/stripe_event.h"

/* ---- dispute status ----------------------------------------------------- */

/* Ordered: a dispute only ever moves to a higher value. */
typedef enum { DISPUTE_OPENED = 0, DISPUTE_UNDER_REVIEW = 1, DISPUTE_CLOSED = 2 } dispute_status;
typedef enum { DISPUTE_RES_NONE = 0, DISPUTE_WON, DISPUTE_LOST } dispute_resolution;

/* Stripe's dispute status -> ours (section 7): warning_needs_response,
 * needs_response -> opened; warning_under_review, under_review ->
 * under_review; won, warning_closed, prevented -> closed won; lost -> closed
 * lost. -1 for anything else. */
int dispute_map_status(const char *stripe_status, dispute_status *status,
                       dispute_resolution *resolution);
const char *dispute_status_name(dispute_status s);         /* "opened", ... */
const char *dispute_resolution_name(dispute_resolution r); /* NULL, "won", "lost" */
/* "opened" / "under_review" / "closed" -> enum; -1 when unknown. */
int dispute_status_parse(const char *text, dispute_status *out);

/* Whether an event showing new_status (built at new_created, Stripe event
 * seconds) replaces a row at old_status last set by an event of
 * old_created: a closed row never changes; a higher rank always wins; the
 * same rank wins when the event is not older. */
bool dispute_moves_forward(dispute_status old_status, int64_t old_created,
                           dispute_status new_status, int64_t new_created);

/* The fields of a Stripe dispute object the platform keeps (metadata only;
 * never evidence contents or customer details). */
typedef struct {
    char id[STRIPE_ID_MAX];             /* dp_... */
    char charge[STRIPE_ID_MAX];         /* ch_... (may be empty) */
    char payment_intent[STRIPE_ID_MAX]; /* pi_... (may be empty) */
    char currency[8];                   /* lowercase ISO code */
    char reason[64];
    char stripe_status[40];
    int64_t amount;    /* minor units, >= 0 */
    int64_t created;   /* dispute created, unix seconds (0: unknown) */
    int64_t due_by;    /* evidence_details.due_by, 0 when absent */
    bool has_evidence; /* evidence_details: has_evidence or submission_count > 0 */
    dispute_status status;
    dispute_resolution resolution;
} dispute_info;

/* Reads and validates a dispute object (data.object of a charge.dispute.*
 * event). -1 with err when it is not a usable dispute (such an event can
 * never be applied: dlq). */
int dispute_parse(const json_t *object, dispute_info *out, char *err, size_t errlen);

/* What dispute_apply did. */
typedef struct {
    int64_t dispute_id;    /* billing.payment_disputes.id */
    bool inserted;         /* first sight of this dispute */
    bool changed;          /* the row moved forward */
    bool opened;           /* the opening effects were applied */
    bool settled;          /* the closing effects were applied */
    dispute_status status; /* the row's status afterwards */
} dispute_apply_result;

/* Applies one charge.dispute.* event (event_type, event_id, event_created
 * of the envelope) to the dispute row and its invoice (invoice_id /
 * firm_id as found by stripe_event_find_invoice). funds_withdrawn /
 * funds_reinstated also write their audit event. Run inside the message's
 * transaction. DB_PERMANENT with err when the event cannot apply (currency
 * differs from the invoice's, the invoice vanished). */
db_status dispute_apply(db_conn *c, int64_t invoice_id, int64_t firm_id, const dispute_info *d,
                        const stripe_event *ev, dispute_apply_result *out, char *err,
                        size_t errlen);

/* The WARNING audit event (firm NULL) for a Stripe event that matches no
 * invoice (section 7: "kept for an operator ... with a WARNING audit
 * event"); action stripe_event_unmatched. Writes in its own transaction,
 * keyed "<event id>:unmatched" for consumer, so a redelivery writes it once. */
db_status dispute_audit_unmatched(db_conn *c, const char *consumer, const stripe_event *ev,
                                  const stripe_event_refs *refs, char *err, size_t errlen);

/* ---- refunds ------------------------------------------------------------ */

/* The charge of a charge.refunded event. */
typedef struct {
    char id[STRIPE_ID_MAX];
    char payment_intent[STRIPE_ID_MAX];
    char currency[8];
    int64_t amount;          /* charged */
    int64_t amount_refunded; /* refunded so far, as of the event */
    bool refunded;           /* fully refunded */
} refund_charge;

typedef struct {
    char id[STRIPE_ID_MAX]; /* re_... */
    char charge[STRIPE_ID_MAX];
    char status[32]; /* pending, succeeded, failed, canceled, requires_action */
    int64_t amount;
} refund_info;

int refund_charge_parse(const json_t *object, refund_charge *out, char *err, size_t errlen);

/* Parses one page of GET /v1/refunds (a Stripe list object), appending to
 * *items / *n (realloc'd; the caller frees *items). *has_more from the list.
 * -1 with err when the body is not a refund list. */
int refund_list_parse(const json_t *body, refund_info **items, size_t *n, bool *has_more, char *err,
                      size_t errlen);

/* Lists every refund of charge_id through the Stripe client
 * (GET /v1/refunds?charge=<id>&limit=100, following has_more). Any failure
 * is DB_TRANSIENT (the message is retried). The caller frees *items. */
db_status refund_list_charge(stripe_client *sc, const char *charge_id, refund_info **items,
                             size_t *n, char *err, size_t errlen);

/* Where a refund of an invoice goes (rule 11.10): the charges of its
 * succeeded Stripe payments, newest first, each for at most what is left
 * of it (received minus its refunds still counted), split across them when
 * the amount needs it. amount 0 = everything refundable. Without a payment
 * row the invoice's own PaymentIntent/charge, bounded by its amount paid
 * (invoices written before section 11). Never a failed or processing
 * intent. *n = 0 with err when nothing can be refunded or the amount is
 * more than is refundable (DB_PERMANENT). The caller frees *out. */
typedef struct {
    char payment_intent[STRIPE_ID_MAX];
    char charge[STRIPE_ID_MAX];
    int64_t amount;
} refund_target;
db_status refund_targets(db_conn *c, int64_t invoice_id, int64_t amount, refund_target **out,
                         size_t *n, char *err, size_t errlen);

/* What a refund of `amount` in Stripe's `status` counts for in the books:
 * its amount while pending or succeeded, 0 once failed or canceled
 * (rule 11.11). */
int64_t refund_counted(const char *status, int64_t amount);

/* The status of an invoice whose own amount_paid a refund reduced:
 * "refunded" when the refunded total covers the total or nothing paid
 * remains, else "partial". */
const char *refund_invoice_status(int64_t amount_paid, int64_t refunded_total, int64_t total);

typedef struct {
    int recorded;     /* refund rows inserted now */
    int64_t increase; /* refunded total increase */
    int64_t refunded_total;
    char status[16]; /* the invoice's status afterwards */
} refund_apply_result;

/* Brings the books to the charge's refunds as Stripe lists them now
 * (items): each refund recorded once by its id with its status; a refund
 * newly counted takes money back through billing.take_back (the payment's
 * overpayment credit first, then the invoice: rule 11.1), one that failed
 * or was canceled gives it back (billing.give_back, rule 11.11). The
 * invoice's refunded total is the sum of its counted refunds, whatever
 * order the events came in; audit invoice_refunded and event
 * invoice.refunded (:seq = the invoice's n-th refund change) when it
 * changed. ch may come from a charge.refunded (the charge) or a
 * charge.refund.updated (the refund). Run inside the message's
 * transaction. */
db_status refund_apply(db_conn *c, int64_t invoice_id, int64_t firm_id, const refund_charge *ch,
                       const refund_info *items, size_t n, const char *event_id,
                       refund_apply_result *out, char *err, size_t errlen);

/* ---- evidence ----------------------------------------------------------- */

/* Stripe's dispute evidence field names (the keys of `evidence` in a
 * dispute object, API 2024-06-20), NULL-terminated. */
extern const char *const dispute_evidence_fields[];
bool dispute_evidence_field_known(const char *key);

/* Validates an EVIDENCE.json document: one JSON object, at least one key,
 * every key a known evidence field, every value a non-empty string of at
 * most 20,000 characters (Stripe's text limit). -1 with err naming the
 * first problem. */
int dispute_evidence_validate(const json_t *doc, char *err, size_t errlen);
/* The form for POST /v1/disputes/{id}: evidence[<key>]=<value> for each
 * key (sorted, so the same file always makes the same body) and
 * submit=true. NULL when out of memory. */
stripe_form *dispute_evidence_form(const json_t *doc);
/* FNV-1a 64 of text as 16 hex digits: a content fingerprint for
 * idempotency keys (not a security hash). */
void dispute_fingerprint(const char *text, char out[17]);

/* ---- report ------------------------------------------------------------- */

/* The dispute summary of firm (section 10) as a JSON text (malloc'd):
 * {"firm_id","total","open","opened","under_review","won","lost",
 *  "win_rate_percent" (integer, half up; null when none closed),
 *  "win_rate" ("won/closed", exact; null when none closed),
 *  "currencies":[{"currency","disputed_cents","open_cents","won_cents","lost_cents"}]}.
 * DB_PERMANENT when the firm does not exist. */
db_status dispute_report(db_conn *c, int64_t firm_id, char **json_text, char *err, size_t errlen);

#endif
