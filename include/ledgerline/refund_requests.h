/* refund_requests.h: refunds the operators ask of Stripe (`billingctl
 * refund`, `credit-note create --refund`): what the invoice holds, whether
 * it may be refunded, the POST /v1/refunds of each charge with its
 * idempotency key and metadata, and the audit event refund_requested
 * (common/refund_requests.c). The commands parse and print; which charges
 * and how much of each is refund_targets' (disputes.h, rule 11.10).
 * Recording the refund itself is the dispute worker's (charge.refunded). */
#ifndef LEDGERLINE_REFUND_REQUESTS_H
#define LEDGERLINE_REFUND_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/disputes.h"
#include "ledgerline/stripe.h"

typedef struct {
    int64_t firm_id, amount_paid, refunded, total;
    char status[16], currency[8];
    char pi[STRIPE_ID_MAX], charge[STRIPE_ID_MAX]; /* "" when none */
} refund_invoice;

/* The invoice's firm, status, amounts and the PaymentIntent (or charge)
 * that paid it, in a transaction of its own. DB_PERMANENT when there is no
 * such invoice. */
db_status refund_invoice_read(db_conn *c, int64_t invoice_id, refund_invoice *out, char *err,
                              size_t errlen);

typedef struct {
    int64_t firm_id, invoice_id, amount;
    const char *actor, *refund_id, *idempotency_key;
    const char *stripe_status; /* "" or NULL: none */
    const char *reason;        /* NULL: not recorded */
    const char *currency;      /* NULL: not recorded */
    int64_t credit_note_id;    /* 0: none */
} refund_request;

/* The audit event refund_requested, once per Stripe refund id, in a
 * transaction of its own; *audited (may be NULL): whether this call wrote
 * it. */
db_status refund_request_audit(db_conn *c, const refund_request *r, bool *audited, char *err,
                               size_t errlen);

/* `billingctl refund`'s reading: the invoice (refund_invoice_read), refused
 * (DB_PERMANENT) when it is disputed or charged back, since the card
 * network holds that money, then the charges to refund for amount (0: all
 * that is refundable; refund_targets). The caller frees *targets. */
db_status refund_invoice_prepare(db_conn *c, int64_t invoice_id, int64_t amount,
                                 refund_invoice *inv, refund_target **targets, size_t *ntargets,
                                 char *err, size_t errlen);

/* Which command asks, and so the idempotency key and metadata of each
 * POST /v1/refunds. */
typedef enum {
    /* "refund-<invoice id>-<PaymentIntent or charge>-<amount or full>-r<refunded
     * cents>"; the reason is also sent as Stripe's when it is one of theirs
     * (duplicate, fraudulent, requested_by_customer); the audit records the
     * reason and the currency. */
    REFUND_FOR_INVOICE,
    /* "credit-note-<note id>-<PaymentIntent or charge>"; metadata
     * [credit_note_id]; the audit names the note. */
    REFUND_FOR_CREDIT_NOTE
} refund_key_kind;

typedef struct {
    refund_key_kind kind;
    int64_t firm_id, invoice_id;
    const char *reason;   /* metadata[refund_reason] */
    const char *by;       /* metadata[requested_by]; the audit's actor */
    const char *currency; /* the invoice's (REFUND_FOR_INVOICE's audit) */
    /* REFUND_FOR_INVOICE: the invoice's refunded total when the command
     * runs (the key's r<cents>); whole: no amount was asked and there is one
     * charge, so no amount is sent (Stripe refunds what is left; key "full"). */
    int64_t refunded_cents;
    bool whole;
    /* REFUND_FOR_CREDIT_NOTE: the note, and its legal number for messages. */
    int64_t credit_note_id;
    const char *credit_note_number;
} refund_send_params;

/* One refund Stripe accepted, copied out of its answer. */
typedef struct {
    char refund_id[STRIPE_ID_MAX];
    char status[32];
    char payment_intent[STRIPE_ID_MAX]; /* the target's ("" when none) */
    char paid_by[STRIPE_ID_MAX];        /* the PaymentIntent, else the charge */
    int64_t amount;                     /* Stripe's, else the target's */
    char idempotency_key[256];
    /* false: the refund exists at Stripe but its refund_requested audit
     * could not be written (audit_err says why); the run goes on. */
    bool audited;
    char audit_err[512];
} refund_sent;

/* One POST /v1/refunds per target, in order, each audited
 * (refund_request_audit) once Stripe accepts it; stops at the first that
 * Stripe does not accept. sent (room for ntargets) receives the accepted
 * ones, *nsent how many. Returns 0 when all were accepted, else -1 with the
 * reason in err (a re-run sends the same keys, so Stripe answers with the
 * refunds already made). */
int refund_requests_send(db_conn *c, stripe_client *sc, const refund_send_params *p,
                         const refund_target *targets, size_t ntargets, refund_sent *sent,
                         size_t *nsent, char *err, size_t errlen);

#endif
