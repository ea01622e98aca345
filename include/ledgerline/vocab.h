/* vocab.h: the fixed word lists of ledgerline, one X-macro table each.
 *
 * Every vocabulary the C code and the database both spell lives here, as
 * one table from which its enum and its name table are generated (the
 * shape of libuv's UV_ERRNO_MAP). One header rather than one per area:
 * the lists are short, most areas use several of them, and a newcomer
 * finds every word list and its SQL twin in one place. The lookups are in
 * common/vocab.c.
 *
 * Held to the database by tests:
 * - tests/db/test_vocab.c (label db): each status/kind table below equals
 *   the allowed values of the named CHECK constraint (pg_get_constraintdef),
 *   and billing.is_hard_decline agrees with LL_HARD_DECLINE_MAP;
 * - tests/ingester/test_route_vocab.c (labels unit, ingester): every Stripe
 *   event type routes through the ingester's route_event_parse to the topic
 *   and key its row says, unknown types are ignored, the workers' families
 *   follow the table, and the word lists hold no duplicates.
 * SQL text keeps its own literals (SQL stays SQL); a word added here needs
 * the same word in a new migration, or the db test fails.
 */
#ifndef LEDGERLINE_VOCAB_H
#define LEDGERLINE_VOCAB_H

#include <stdbool.h>
#include <stddef.h>

/* A generated name table: names[i] is the word of enum value i. */
typedef struct {
    const char *const *names;
    size_t count;
} ll_vocab;

/* Index of word in v, or -1 (word NULL or not in the table). */
int ll_vocab_find(const ll_vocab *v, const char *word);
/* The word of index i, or NULL when out of range. */
const char *ll_vocab_name(const ll_vocab *v, int i);

/* ---- Stripe event types ------------------------------------------------- */

/* Where the ingester publishes an event (CONTRACT.md topics). */
typedef enum { STRIPE_STREAM_PAYMENTS = 1, STRIPE_STREAM_DISPUTES } stripe_stream;

/* What data.object is. It decides the routing key: an invoice is keyed by
 * its payment_intent, a dispute by its charge (each else by its own id),
 * every other object by its own id. */
typedef enum {
    STRIPE_OBJECT_PAYMENT_INTENT,
    STRIPE_OBJECT_INVOICE,
    STRIPE_OBJECT_DISPUTE,
    STRIPE_OBJECT_CHARGE,
    STRIPE_OBJECT_REFUND
} stripe_object;

/* Which handler takes the event. */
typedef enum {
    STRIPE_FAMILY_PAYMENT_SUCCESS,    /* autopay worker */
    STRIPE_FAMILY_PAYMENT_PROCESSING, /* autopay worker */
    STRIPE_FAMILY_PAYMENT_FAILURE,    /* retry worker */
    STRIPE_FAMILY_DISPUTE,            /* dispute worker: dispute rules */
    STRIPE_FAMILY_REFUND              /* dispute worker: refund rules */
} stripe_family;

/* The routed Stripe event types, in the order of the ingester's metrics:
 * X(token, type, stream, object, family). Every other type is ignored
 * (acknowledged, never published). charge.refund.updated is keyed by the
 * refund's own id (route.c's old comment said "by the refund's charge";
 * the code never did that, so its updates and the charge's charge.refunded
 * may land on different partitions). */
#define LL_STRIPE_EVENT_MAP(X)                                                                     \
    X(PI_SUCCEEDED, "payment_intent.succeeded", PAYMENTS, PAYMENT_INTENT, PAYMENT_SUCCESS)         \
    X(PI_FAILED, "payment_intent.payment_failed", PAYMENTS, PAYMENT_INTENT, PAYMENT_FAILURE)       \
    X(PI_PROCESSING, "payment_intent.processing", PAYMENTS, PAYMENT_INTENT, PAYMENT_PROCESSING)    \
    X(INVOICE_SUCCEEDED, "invoice.payment_succeeded", PAYMENTS, INVOICE, PAYMENT_SUCCESS)          \
    X(INVOICE_FAILED, "invoice.payment_failed", PAYMENTS, INVOICE, PAYMENT_FAILURE)                \
    X(DISPUTE_CREATED, "charge.dispute.created", DISPUTES, DISPUTE, DISPUTE)                       \
    X(DISPUTE_UPDATED, "charge.dispute.updated", DISPUTES, DISPUTE, DISPUTE)                       \
    X(DISPUTE_CLOSED, "charge.dispute.closed", DISPUTES, DISPUTE, DISPUTE)                         \
    X(DISPUTE_FUNDS_WITHDRAWN, "charge.dispute.funds_withdrawn", DISPUTES, DISPUTE, DISPUTE)       \
    X(DISPUTE_FUNDS_REINSTATED, "charge.dispute.funds_reinstated", DISPUTES, DISPUTE, DISPUTE)     \
    X(CHARGE_REFUNDED, "charge.refunded", DISPUTES, CHARGE, REFUND)                                \
    X(REFUND_UPDATED, "charge.refund.updated", DISPUTES, REFUND, REFUND)

typedef enum {
    STRIPE_EVENT_UNKNOWN = -1,
#define LL_X(tok, type, stream, object, family) STRIPE_EVENT_##tok,
    LL_STRIPE_EVENT_MAP(LL_X)
#undef LL_X
        STRIPE_EVENT_COUNT
} stripe_event_type;

/* The type string's entry, or STRIPE_EVENT_UNKNOWN (type NULL included). */
stripe_event_type stripe_event_type_of(const char *type);
/* The type string of t (NULL for STRIPE_EVENT_UNKNOWN). */
const char *stripe_event_type_name(stripe_event_type t);
/* The row's columns; t must be a known type. */
stripe_stream stripe_event_stream(stripe_event_type t);
stripe_object stripe_event_object(stripe_event_type t);
stripe_family stripe_event_family(stripe_event_type t);

/* ---- Hard declines (BILLING_RULES: never retried) ----------------------- */

/* Stripe decline codes after which a retry cannot succeed: X(code). The SQL twin is
 * billing.is_hard_decline (sql/004). */
#define LL_HARD_DECLINE_MAP(X)                                                                     \
    X(expired_card)                                                                                \
    X(lost_card)                                                                                   \
    X(stolen_card)                                                                                 \
    X(pickup_card)                                                                                 \
    X(fraudulent)                                                                                  \
    X(invalid_account)                                                                             \
    X(card_not_supported)                                                                          \
    X(incorrect_number)                                                                            \
    X(authentication_required)                                                                     \
    X(payment_method_missing)

/* Other failure codes worth their own metrics label (the rest are
 * "other"): soft declines and our own codes for failures without one. */
#define LL_SOFT_FAILURE_MAP(X)                                                                     \
    X(card_declined)                                                                               \
    X(generic_decline)                                                                             \
    X(insufficient_funds)                                                                          \
    X(incorrect_cvc)                                                                               \
    X(processing_error)                                                                            \
    X(do_not_honor)                                                                                \
    X(try_again_later)                                                                             \
    X(card_velocity_exceeded)                                                                      \
    X(withdrawal_count_limit_exceeded)                                                             \
    X(currency_not_supported)                                                                      \
    X(payment_intent_canceled)                                                                     \
    X(payment_intent_requires_payment_method)                                                      \
    X(payment_failed)                                                                              \
    X(unknown)

extern const ll_vocab ll_hard_declines;
extern const ll_vocab ll_soft_failures;

/* ---- Statuses and kinds held by CHECK constraints ----------------------- */

/* billing.invoices.status (CHECK invoices_status_valid, sql/012). */
#define LL_INVOICE_STATUS_MAP(X, p)                                                                \
    X(p, DRAFT, draft)                                                                             \
    X(p, SENT, sent)                                                                               \
    X(p, PAID, paid)                                                                               \
    X(p, PARTIAL, partial)                                                                         \
    X(p, OVERDUE, overdue)                                                                         \
    X(p, CANCELLED, cancelled)                                                                     \
    X(p, FAILED, failed)                                                                           \
    X(p, DISPUTED, disputed)                                                                       \
    X(p, REFUNDED, refunded)                                                                       \
    X(p, CHARGED_BACK, charged_back)                                                               \
    X(p, VOID, void)

/* billing.invoices.autopay_status (invoices_autopay_status_valid, sql/009). */
#define LL_AUTOPAY_STATUS_MAP(X, p)                                                                \
    X(p, IDLE, idle)                                                                               \
    X(p, SCHEDULED, scheduled)                                                                     \
    X(p, PROCESSING, processing)                                                                   \
    X(p, SUCCEEDED, succeeded)                                                                     \
    X(p, FAILED, failed)                                                                           \
    X(p, CANCELLED, cancelled)                                                                     \
    X(p, NEEDS_ATTENTION, needs_attention)

/* billing.payment_attempts.status (payment_attempts_status_valid, sql/009). */
#define LL_ATTEMPT_STATUS_MAP(X, p)                                                                \
    X(p, PROCESSING, processing)                                                                   \
    X(p, SUCCEEDED, succeeded)                                                                     \
    X(p, FAILED, failed)                                                                           \
    X(p, TRANSIENT_ERROR, transient_error)                                                         \
    X(p, ABANDONED, abandoned)

/* billing.payment_attempts.kind (payment_attempts_kind_valid, sql/001). */
#define LL_ATTEMPT_KIND_MAP(X, p)                                                                  \
    X(p, AUTOPAY, autopay)                                                                         \
    X(p, RETRY, retry)                                                                             \
    X(p, MANUAL, manual)

/* billing.notifications.kind (notifications_kind_valid, sql/016), in
 * notify_kind's order (notify.h). */
#define LL_NOTIFICATION_KIND_MAP(X, p)                                                             \
    X(p, INVOICE_ISSUED, invoice_issued)                                                           \
    X(p, CREDIT_NOTE, credit_note)                                                                 \
    X(p, RECEIPT, receipt)                                                                         \
    X(p, PAYMENT_FAILED, payment_failed)                                                           \
    X(p, ACTION_REQUIRED, action_required)                                                         \
    X(p, REMINDER, reminder)                                                                       \
    X(p, STATEMENT, statement)

/* billing.notifications.status (notifications_status_valid, sql/016). */
#define LL_NOTIFICATION_STATUS_MAP(X, p)                                                           \
    X(p, QUEUED, queued)                                                                           \
    X(p, SENT, sent)                                                                               \
    X(p, FAILED, failed)

/* billing.invoice_documents.kind (invoice_documents_kind_valid, sql/016). */
#define LL_DOCUMENT_KIND_MAP(X, p)                                                                 \
    X(p, INVOICE, invoice)                                                                         \
    X(p, CREDIT_NOTE, credit_note)                                                                 \
    X(p, STATEMENT, statement)

/* billing.payment_disputes.status (payment_disputes_status_valid, sql/001),
 * in dispute_status's order (disputes.h). */
#define LL_DISPUTE_STATUS_MAP(X, p)                                                                \
    X(p, OPENED, opened)                                                                           \
    X(p, UNDER_REVIEW, under_review)                                                               \
    X(p, CLOSED, closed)

/* billing.refunds.status (refunds_status_valid, sql/009): Stripe's words. */
#define LL_REFUND_STATUS_MAP(X, p)                                                                 \
    X(p, PENDING, pending)                                                                         \
    X(p, REQUIRES_ACTION, requires_action)                                                         \
    X(p, SUCCEEDED, succeeded)                                                                     \
    X(p, FAILED, failed)                                                                           \
    X(p, CANCELED, canceled)

/* billing.invoice_line_items.line_type (invoice_line_items_line_type_valid,
 * sql/001). */
#define LL_LINE_TYPE_MAP(X, p)                                                                     \
    X(p, PACKAGE_FEE, package_fee)                                                                 \
    X(p, HOURLY, hourly)                                                                           \
    X(p, ADJUSTMENT, adjustment)

/* The status/kind tables above, one row each: X(map, enum prefix, enum
 * type ll_<type>, name table). Each gives typedef enum { PREFIX_TOKEN...,
 * PREFIX_COUNT } ll_<type>, and the ll_vocab of its words. */
#define LL_WORD_LISTS(X)                                                                           \
    X(LL_INVOICE_STATUS_MAP, INVOICE_STATUS, invoice_status, ll_invoice_statuses)                  \
    X(LL_AUTOPAY_STATUS_MAP, AUTOPAY_STATUS, autopay_status, ll_autopay_statuses)                  \
    X(LL_ATTEMPT_STATUS_MAP, ATTEMPT_STATUS, attempt_status, ll_attempt_statuses)                  \
    X(LL_ATTEMPT_KIND_MAP, ATTEMPT_KIND, attempt_kind, ll_attempt_kinds)                           \
    X(LL_NOTIFICATION_KIND_MAP, NOTIFICATION_KIND, notification_kind, ll_notification_kinds)       \
    X(LL_NOTIFICATION_STATUS_MAP, NOTIFICATION_STATUS, notification_status,                        \
      ll_notification_statuses)                                                                    \
    X(LL_DOCUMENT_KIND_MAP, DOCUMENT_KIND, document_kind_word, ll_document_kinds)                  \
    X(LL_DISPUTE_STATUS_MAP, DISPUTE_STATUS, dispute_status_word, ll_dispute_statuses)             \
    X(LL_REFUND_STATUS_MAP, REFUND_STATUS, refund_status, ll_refund_statuses)                      \
    X(LL_LINE_TYPE_MAP, LINE_TYPE, line_type, ll_line_types)

#define LL_VOCAB_ENUM_ROW(p, tok, word) p##_##tok,
#define LL_VOCAB_NAME_ROW(p, tok, word) #word,
#define LL_VOCAB_DECLARE(map, prefix, type, table)                                                 \
    typedef enum { map(LL_VOCAB_ENUM_ROW, prefix) prefix##_COUNT } ll_##type;                      \
    extern const ll_vocab table;
LL_WORD_LISTS(LL_VOCAB_DECLARE)
#undef LL_VOCAB_DECLARE

/* Whether word is entry i of v (false for NULL): for comparisons such as
 * ll_vocab_is(&ll_invoice_statuses, status, INVOICE_STATUS_SENT). */
bool ll_vocab_is(const ll_vocab *v, const char *word, int i);

#endif
