/* oracle.h: the model test's oracle (tests/model/README.md): what one
 * client's books must say after money moves, by BILLING_RULES sections 4,
 * 5, 6, 7 and 11, computed without the database.
 *
 * The state is one client's: its invoices, the Stripe payments of those
 * invoices (what each PaymentIntent received, applied and gave back), its
 * credit entries and the credit it used. An event is one thing that moved
 * money, as the books meet it: a PaymentIntent's money landing, credit
 * added, credit applied (by an operator or before a charge), a refund
 * counted or undone, a dispute opened or closed. Amounts in events are
 * Stripe's (the model takes them from the stand-in's dump), never the
 * books'. Pure: no I/O, no allocation. */
#ifndef LEDGERLINE_TESTS_MODEL_ORACLE_H
#define LEDGERLINE_TESTS_MODEL_ORACLE_H

#include <stdbool.h>
#include <stdint.h>

#define ORC_MAX_INV 4
#define ORC_MAX_PAY 24
#define ORC_MAX_CREDIT 48
#define ORC_ID 72

typedef struct {
    int64_t id; /* the books' invoice id (only compared) */
    int64_t total, paid, refunded;
    /* The books' status (draft, sent, partial, paid, failed, overdue,
     * disputed, refunded, charged_back, cancelled, void) and the one a
     * dispute remembered ("" when none). */
    char status[16];
    char before_dispute[16];
    int open_disputes;
} orc_invoice;

typedef struct {
    char pi[ORC_ID]; /* PaymentIntent id */
    int inv;         /* index into invoices */
    int64_t received, applied;
    int64_t back_invoice; /* what take-backs took from the invoice, net of give-backs */
} orc_payment;

typedef struct {
    int64_t amount;
    int64_t taken; /* take-back debits that name this entry (rule 11.1) */
    int payment;   /* the payment whose excess it is; -1 for other credit */
} orc_credit;

typedef struct {
    int ninv, npay, ncredit;
    orc_invoice inv[ORC_MAX_INV];
    orc_payment pay[ORC_MAX_PAY];
    orc_credit credit[ORC_MAX_CREDIT];
    int64_t used;  /* debits that name no entry (applied credit), oldest credit first */
    bool overflow; /* more than the arrays hold: the caller cannot judge */
} orc_client;

typedef enum {
    ORC_PAY = 0, /* pi's money landed on inv: amount = what Stripe received */
    ORC_CREDIT,  /* credit added (goodwill, promotional): amount */
    ORC_APPLY,   /* credit applied to inv: amount = exactly that much, 0 = what is available */
    ORC_TAKE,    /* a refund of pi newly counted: amount (rule 11.1) */
    ORC_GIVE,    /* a refund of pi that failed or was canceled: amount (rule 11.11) */
    ORC_DISPUTE  /* a dispute of pi moved: opened and/or closed (won or lost, amount) */
} orc_kind;

typedef enum { ORC_D_NONE = 0, ORC_D_OPEN, ORC_D_WON, ORC_D_LOST } orc_dstate;

typedef struct {
    orc_kind kind;
    int inv;         /* ORC_PAY, ORC_APPLY; for the others the payment's invoice */
    char pi[ORC_ID]; /* ORC_PAY, ORC_TAKE, ORC_GIVE, ORC_DISPUTE */
    int64_t amount;
    orc_dstate from, to; /* ORC_DISPUTE: the dispute's state before and after */
    /* ORC_TAKE, ORC_DISPUTE: what Stripe received for pi. A refund or a lost
     * dispute met before its payment is taken back as if the payment had
     * landed first (rule 11.1 takes back at most what that PaymentIntent
     * applied; rule 7: any order ends as in order). 0 = not known. */
    int64_t received;
} orc_event;

typedef enum {
    ORC_APPLIED = 0, /* the books must show its effect */
    ORC_REFUSED,     /* an explicit credit apply the rules refuse: nothing changes */
    ORC_NOTHING      /* nothing to do (no credit, nothing due) */
} orc_result;

/* The client's credit balance: credits - debits. */
int64_t orc_balance(const orc_client *c);
/* What is left unused of credit entry k (debits that name no entry come
 * off the oldest credit first, as billing.credit_remainders). */
int64_t orc_remaining(const orc_client *c, int k);
/* The payment of PaymentIntent pi, -1 when the books have none. */
int orc_payment_of(const orc_client *c, const char *pi);
/* Whether money arriving for an invoice in this status is the client's
 * credit and leaves the invoice alone (rule 11.8). */
bool orc_closed(const char *status);
/* Applies one event to the client (in place). */
orc_result orc_apply(orc_client *c, const orc_event *e);

/* The statuses the books may show for the invoice after the oracle's
 * state: a status the oracle reached through money (paid, disputed,
 * refunded, charged_back) must be exactly that; an open invoice (nothing
 * or part paid) may be sent, partial, failed or overdue, as the ticks and
 * declines that the oracle does not follow decided; `sent` only while
 * nothing is paid, `partial` only while something is. */
bool orc_status_allowed(const orc_invoice *expected, const char *books_status);

/* Whether two states agree: every invoice's amount paid, refunded total
 * and status class, every payment's split (received, applied, taken back
 * from the invoice), the balance, and the credit entries as a multiset
 * (amount, taken back, payment). why (may be NULL) gets the first
 * difference. */
bool orc_same(const orc_client *expected, const orc_client *books, char *why, int whylen);

#endif
