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
 * - tests/unit/test_vocab.c (label unit): the Stripe event table routes as
 *   it says (through the ingester's route_event_parse, in
 *   tests/ingester/test_units.c) and the tables hold no duplicates.
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
 * (acknowledged, never published). */
#define LL_STRIPE_EVENT_MAP(X)                                                               \
    X(PI_SUCCEEDED, "payment_intent.succeeded", PAYMENTS, PAYMENT_INTENT, PAYMENT_SUCCESS)     \
    X(PI_FAILED, "payment_intent.payment_failed", PAYMENTS, PAYMENT_INTENT, PAYMENT_FAILURE)   \
    X(PI_PROCESSING, "payment_intent.processing", PAYMENTS, PAYMENT_INTENT, PAYMENT_PROCESSING) \
    X(INVOICE_SUCCEEDED, "invoice.payment_succeeded", PAYMENTS, INVOICE, PAYMENT_SUCCESS)      \
    X(INVOICE_FAILED, "invoice.payment_failed", PAYMENTS, INVOICE, PAYMENT_FAILURE)            \
    X(DISPUTE_CREATED, "charge.dispute.created", DISPUTES, DISPUTE, DISPUTE)                   \
    X(DISPUTE_UPDATED, "charge.dispute.updated", DISPUTES, DISPUTE, DISPUTE)                   \
    X(DISPUTE_CLOSED, "charge.dispute.closed", DISPUTES, DISPUTE, DISPUTE)                     \
    X(DISPUTE_FUNDS_WITHDRAWN, "charge.dispute.funds_withdrawn", DISPUTES, DISPUTE, DISPUTE)   \
    X(DISPUTE_FUNDS_REINSTATED, "charge.dispute.funds_reinstated", DISPUTES, DISPUTE, DISPUTE) \
    X(CHARGE_REFUNDED, "charge.refunded", DISPUTES, CHARGE, REFUND)                            \
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

/* Stripe decline codes after which a retry cannot succeed. The SQL twin is
 * billing.is_hard_decline (sql/004). */
#define LL_HARD_DECLINE_MAP(X)                                                 \
    X(expired_card)                                                            \
    X(lost_card)                                                               \
    X(stolen_card)                                                             \
    X(pickup_card)                                                             \
    X(fraudulent)                                                              \
    X(invalid_account)                                                         \
    X(card_not_supported)                                                      \
    X(incorrect_number)                                                        \
    X(authentication_required)                                                 \
    X(payment_method_missing)

/* Other failure codes worth their own metrics label (the rest are
 * "other"): soft declines and our own codes for failures without one. */
#define LL_SOFT_FAILURE_MAP(X)                                                 \
    X(card_declined)                                                           \
    X(generic_decline)                                                         \
    X(insufficient_funds)                                                      \
    X(incorrect_cvc)                                                           \
    X(processing_error)                                                        \
    X(do_not_honor)                                                            \
    X(try_again_later)                                                         \
    X(card_velocity_exceeded)                                                  \
    X(withdrawal_count_limit_exceeded)                                         \
    X(currency_not_supported)                                                  \
    X(payment_intent_canceled)                                                 \
    X(payment_intent_requires_payment_method)                                  \
    X(payment_failed)                                                          \
    X(unknown)

extern const ll_vocab ll_hard_declines;
extern const ll_vocab ll_soft_failures;

/* ---- Statuses and kinds held by CHECK constraints ----------------------- */

/* billing.invoices.status (CHECK invoices_status_valid, sql/012). */
#define LL_INVOICE_STATUS_MAP(X)                                               \
    X(DRAFT, draft)                                                            \
    X(SENT, sent)                                                              \
    X(PAID, paid)                                                              \
    X(PARTIAL, partial)                                                        \
    X(OVERDUE, overdue)                                                        \
    X(CANCELLED, cancelled)                                                    \
    X(FAILED, failed)                                                          \
    X(DISPUTED, disputed)                                                      \
    X(REFUNDED, refunded)                                                      \
    X(CHARGED_BACK, charged_back)                                              \
    X(VOID, void)

/* billing.invoices.autopay_status (invoices_autopay_status_valid, sql/009). */
#define LL_AUTOPAY_STATUS_MAP(X)                                               \
    X(IDLE, idle)                                                              \
    X(SCHEDULED, scheduled)                                                    \
    X(PROCESSING, processing)                                                  \
    X(SUCCEEDED, succeeded)                                                    \
    X(FAILED, failed)                                                          \
    X(CANCELLED, cancelled)                                                    \
    X(NEEDS_ATTENTION, needs_attention)

/* billing.payment_attempts.status (payment_attempts_status_valid, sql/009). */
#define LL_ATTEMPT_STATUS_MAP(X)                                               \
    X(PROCESSING, processing)                                                  \
    X(SUCCEEDED, succeeded)                                                    \
    X(FAILED, failed)                                                          \
    X(TRANSIENT_ERROR, transient_error)                                        \
    X(ABANDONED, abandoned)

/* billing.payment_attempts.kind (payment_attempts_kind_valid, sql/001). */
#define LL_ATTEMPT_KIND_MAP(X)                                                 \
    X(AUTOPAY, autopay)                                                        \
    X(RETRY, retry)                                                            \
    X(MANUAL, manual)

/* billing.notifications.kind (notifications_kind_valid, sql/016), in
 * notify_kind's order (notify.h). */
#define LL_NOTIFICATION_KIND_MAP(X)                                            \
    X(INVOICE_ISSUED, invoice_issued)                                          \
    X(CREDIT_NOTE, credit_note)                                                \
    X(RECEIPT, receipt)                                                        \
    X(PAYMENT_FAILED, payment_failed)                                          \
    X(ACTION_REQUIRED, action_required)                                        \
    X(REMINDER, reminder)                                                      \
    X(STATEMENT, statement)

/* billing.notifications.status (notifications_status_valid, sql/016). */
#define LL_NOTIFICATION_STATUS_MAP(X)                                          \
    X(QUEUED, queued)                                                          \
    X(SENT, sent)                                                              \
    X(FAILED, failed)

/* billing.invoice_documents.kind (invoice_documents_kind_valid, sql/016). */
#define LL_DOCUMENT_KIND_MAP(X)                                                \
    X(INVOICE, invoice)                                                        \
    X(CREDIT_NOTE, credit_note)                                                \
    X(STATEMENT, statement)

/* billing.payment_disputes.status (payment_disputes_status_valid, sql/001),
 * in dispute_status's order (disputes.h). */
#define LL_DISPUTE_STATUS_MAP(X)                                               \
    X(OPENED, opened)                                                          \
    X(UNDER_REVIEW, under_review)                                              \
    X(CLOSED, closed)

/* billing.refunds.status (refunds_status_valid, sql/009): Stripe's words. */
#define LL_REFUND_STATUS_MAP(X)                                                \
    X(PENDING, pending)                                                        \
    X(REQUIRES_ACTION, requires_action)                                        \
    X(SUCCEEDED, succeeded)                                                    \
    X(FAILED, failed)                                                          \
    X(CANCELED, canceled)

/* billing.invoice_line_items.line_type (invoice_line_items_line_type_valid,
 * sql/001). */
#define LL_LINE_TYPE_MAP(X)                                                    \
    X(PACKAGE_FEE, package_fee)                                                \
    X(HOURLY, hourly)                                                          \
    X(ADJUSTMENT, adjustment)

/* The enums (ll_<type>, values PREFIX_TOKEN, PREFIX_COUNT) and the name
 * tables (ll_<name>s) of the maps above. */
#define LL_VOCAB_DECLARE(map, prefix, type, table)                             \
    typedef enum {                                                             \
        map(type##_ROW) prefix##_COUNT                                         \
    } ll_##type;                                                               \
    extern const ll_vocab table;

#define invoice_status_ROW(tok, word) INVOICE_STATUS_##tok,
#define autopay_status_ROW(tok, word) AUTOPAY_STATUS_##tok,
#define attempt_status_ROW(tok, word) ATTEMPT_STATUS_##tok,
#define attempt_kind_ROW(tok, word) ATTEMPT_KIND_##tok,
#define notification_kind_ROW(tok, word) NOTIFICATION_KIND_##tok,
#define notification_status_ROW(tok, word) NOTIFICATION_STATUS_##tok,
#define document_kind_word_ROW(tok, word) DOCUMENT_KIND_##tok,
#define dispute_status_word_ROW(tok, word) DISPUTE_STATUS_##tok,
#define refund_status_ROW(tok, word) REFUND_STATUS_##tok,
#define line_type_ROW(tok, word) LINE_TYPE_##tok,

LL_VOCAB_DECLARE(LL_INVOICE_STATUS_MAP, INVOICE_STATUS, invoice_status, ll_invoice_statuses)
LL_VOCAB_DECLARE(LL_AUTOPAY_STATUS_MAP, AUTOPAY_STATUS, autopay_status, ll_autopay_statuses)
LL_VOCAB_DECLARE(LL_ATTEMPT_STATUS_MAP, ATTEMPT_STATUS, attempt_status, ll_attempt_statuses)
LL_VOCAB_DECLARE(LL_ATTEMPT_KIND_MAP, ATTEMPT_KIND, attempt_kind, ll_attempt_kinds)
LL_VOCAB_DECLARE(LL_NOTIFICATION_KIND_MAP, NOTIFICATION_KIND, notification_kind,
                 ll_notification_kinds)
LL_VOCAB_DECLARE(LL_NOTIFICATION_STATUS_MAP, NOTIFICATION_STATUS, notification_status,
                 ll_notification_statuses)
LL_VOCAB_DECLARE(LL_DOCUMENT_KIND_MAP, DOCUMENT_KIND, document_kind_word, ll_document_kinds)
LL_VOCAB_DECLARE(LL_DISPUTE_STATUS_MAP, DISPUTE_STATUS, dispute_status_word, ll_dispute_statuses)
LL_VOCAB_DECLARE(LL_REFUND_STATUS_MAP, REFUND_STATUS, refund_status, ll_refund_statuses)
LL_VOCAB_DECLARE(LL_LINE_TYPE_MAP, LINE_TYPE, line_type, ll_line_types)

/* Whether word is entry i of v (false for NULL): for comparisons such as
 * ll_vocab_is(&ll_invoice_statuses, status, INVOICE_STATUS_SENT). */
bool ll_vocab_is(const ll_vocab *v, const char *word, int i);

#endif
