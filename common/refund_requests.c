/* refund_requests.c: refunds the operators ask of Stripe
 * (refund_requests.h): the invoice as a refund reads it
 * (sql/queries/refund_invoice.sql), the refusal of a disputed or charged
 * back invoice, one POST /v1/refunds per charge with its idempotency key
 * and metadata, and the one writer of the audit event refund_requested
 * (sql/queries/refund_requested.sql). */
#include "ledgerline/refund_requests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/queries.h"
#include "ledgerline/stripe_failf.h"
#include "ledgerline/text.h"
#include "ledgerline/vocab.h"

typedef struct {
    int64_t invoice_id;
    refund_invoice *out;
} invoice_tx;

static db_status invoice_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    invoice_tx *a = varg;
    refund_invoice *o = a->out;
    db_status st;
    const char *p[] = {DB_I64(a->invoice_id)};
    PGresult *r =
        db_exec_row(c, llq_refund_invoice, 1, p, &st, err, errlen,
                    "cannot refund invoice %lld: it does not exist", (long long)a->invoice_id);
    if (r == NULL)
        return st;
    o->firm_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    snprintf(o->status, sizeof o->status, "%s", PQgetvalue(r, 0, 1));
    snprintf(o->currency, sizeof o->currency, "%s", PQgetvalue(r, 0, 2));
    o->amount_paid = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    o->refunded = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    o->total = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    snprintf(o->pi, sizeof o->pi, "%s", PQgetvalue(r, 0, 6));
    snprintf(o->charge, sizeof o->charge, "%s", PQgetvalue(r, 0, 7));
    PQclear(r);
    return DB_OK;
}

db_status refund_invoice_read(db_conn *c, int64_t invoice_id, refund_invoice *out, char *err,
                              size_t errlen)
{
    invoice_tx a = {.invoice_id = invoice_id, .out = out};
    return db_run_tx(c, invoice_work, &a, err, errlen);
}

typedef struct {
    const refund_request *r;
    bool audited;
} audit_tx;

static db_status audit_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    audit_tx *a = varg;
    const refund_request *q = a->r;
    const char *p[] = {DB_I64(q->firm_id),
                       q->actor,
                       DB_I64(q->invoice_id),
                       q->refund_id,
                       DB_I64(q->amount),
                       q->idempotency_key,
                       q->stripe_status != NULL ? q->stripe_status : "",
                       q->reason,
                       q->currency,
                       q->credit_note_id > 0 ? DB_I64(q->credit_note_id) : NULL};
    db_status st;
    PGresult *r = db_exec(c, llq_refund_requested, 10, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->audited = PQntuples(r) > 0;
    PQclear(r);
    return DB_OK;
}

db_status refund_request_audit(db_conn *c, const refund_request *r, bool *audited, char *err,
                               size_t errlen)
{
    audit_tx a = {.r = r};
    db_status st = db_run_tx(c, audit_work, &a, err, errlen);
    if (audited != NULL)
        *audited = st == DB_OK && a.audited;
    return st;
}

db_status refund_invoice_prepare(db_conn *c, int64_t invoice_id, int64_t amount,
                                 refund_invoice *inv, refund_target **targets, size_t *ntargets,
                                 char *err, size_t errlen)
{
    *targets = NULL;
    *ntargets = 0;
    db_status st = refund_invoice_read(c, invoice_id, inv, err, errlen);
    if (st != DB_OK)
        return st;
    if (ll_vocab_is(&ll_invoice_statuses, inv->status, INVOICE_STATUS_DISPUTED) ||
        ll_vocab_is(&ll_invoice_statuses, inv->status, INVOICE_STATUS_CHARGED_BACK)) {
        ll_failf(err, errlen, "cannot refund invoice %lld: it is disputed or charged back",
                 (long long)invoice_id);
        ll_detailf(err, errlen, "The invoice is %s: the card network holds that money.",
                   inv->status);
        return DB_PERMANENT;
    }
    return refund_targets(c, invoice_id, amount, targets, ntargets, err, errlen);
}

/* ------------------------------------------------------------- sending */

static bool refund_stripe_reason(const char *text)
{
    return strcmp(text, "duplicate") == 0 || strcmp(text, "fraudulent") == 0 ||
           strcmp(text, "requested_by_customer") == 0;
}

/* The form of one target: what is sent, and the metadata. NULL when out of
 * memory. */
static stripe_form *refund_form(const refund_send_params *p, const refund_target *t)
{
    bool invoice = p->kind == REFUND_FOR_INVOICE;
    const char *reason = invoice && refund_stripe_reason(p->reason) ? p->reason : NULL;
    stripe_form *f = stripe_form_refund(t->payment_intent[0] ? t->payment_intent : NULL, t->charge,
                                        invoice && p->whole ? 0 : t->amount, reason, p->invoice_id);
    if (f == NULL || stripe_form_add(f, "metadata[refund_reason]", p->reason) != 0 ||
        stripe_form_add(f, "metadata[requested_by]", p->by) != 0 ||
        (!invoice &&
         stripe_form_add(f, "metadata[credit_note_id]", DB_I64(p->credit_note_id)) != 0)) {
        stripe_form_free(f);
        return NULL;
    }
    return f;
}

/* What paid the target: its PaymentIntent, or its charge without one (the
 * key's and the messages' name for it). */
static const char *refund_target_ref(const refund_target *t)
{
    return t->payment_intent[0] ? t->payment_intent : t->charge;
}

/* The idempotency key of one target (refund_key_kind says which). */
static void refund_key(const refund_send_params *p, const refund_target *t, char *key,
                       size_t keylen)
{
    const char *ref = refund_target_ref(t);
    if (p->kind == REFUND_FOR_CREDIT_NOTE)
        snprintf(key, keylen, "credit-note-%lld-%s", (long long)p->credit_note_id, ref);
    else
        snprintf(key, keylen, "refund-%lld-%s-%s-r%lld", (long long)p->invoice_id, ref,
                 p->whole ? "full" : DB_I64(t->amount), (long long)p->refunded_cents);
}

/* Why one target's refund was not made, with what the run leaves behind. */
static int refund_failf(const refund_send_params *p, const refund_target *t, int rc,
                        const char *cerr, const stripe_result *r, char *err, size_t errlen)
{
    char what[STRIPE_ID_MAX + 64];
    snprintf(what, sizeof what, "refund %lld cents of %s", (long long)t->amount,
             refund_target_ref(t));
    char note[128] = "";
    if (p->kind == REFUND_FOR_CREDIT_NOTE)
        snprintf(note, sizeof note, "Credit note %s is recorded.", p->credit_note_number);
    return stripe_call_failf(err, errlen, what, rc, cerr, r, note[0] ? note : NULL);
}

/* The audit of one accepted refund; a failure is kept in s (the refund
 * exists at Stripe either way). */
static void refund_sent_audit(db_conn *c, const refund_send_params *p, refund_sent *s)
{
    bool invoice = p->kind == REFUND_FOR_INVOICE;
    refund_request rq = {.firm_id = p->firm_id,
                         .invoice_id = p->invoice_id,
                         .amount = s->amount,
                         .actor = p->by,
                         .refund_id = s->refund_id,
                         .idempotency_key = s->idempotency_key,
                         .stripe_status = s->status,
                         .reason = invoice ? p->reason : NULL,
                         .currency = invoice ? p->currency : NULL,
                         .credit_note_id = invoice ? 0 : p->credit_note_id};
    s->audited = refund_request_audit(c, &rq, NULL, s->audit_err, sizeof s->audit_err) == DB_OK;
}

/* One target: 0 with *s filled when Stripe accepted it. */
static int refund_send_one(db_conn *c, stripe_client *sc, const refund_send_params *p,
                           const refund_target *t, refund_sent *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    stripe_form *form = refund_form(p, t);
    if (form == NULL)
        return ll_failf(err, errlen, "could not refund invoice %lld: out of memory",
                        (long long)p->invoice_id);
    refund_key(p, t, s->idempotency_key, sizeof s->idempotency_key);
    stripe_call call = {.method = "POST",
                        .path = "/v1/refunds",
                        .form = form,
                        .idempotency_key = s->idempotency_key};
    char cerr[256] = "";
    int rc = stripe_perform(sc, &call, cerr, sizeof cerr);
    stripe_form_free(form);
    if (rc != 0 || call.result.outcome != STRIPE_OK) {
        refund_failf(p, t, rc, cerr, &call.result, err, errlen);
        stripe_result_free(&call.result);
        return -1;
    }
    /* Stripe's answer is copied out before it is freed. */
    ll_copy(s->refund_id, sizeof s->refund_id, call.result.object_id);
    ll_copy(s->status, sizeof s->status, call.result.object_status);
    ll_copy(s->payment_intent, sizeof s->payment_intent, t->payment_intent);
    ll_copy(s->paid_by, sizeof s->paid_by, refund_target_ref(t));
    s->amount = call.result.amount >= 0 ? call.result.amount : t->amount;
    stripe_result_free(&call.result);
    refund_sent_audit(c, p, s);
    return 0;
}

int refund_requests_send(db_conn *c, stripe_client *sc, const refund_send_params *p,
                         const refund_target *targets, size_t ntargets, refund_sent *sent,
                         size_t *nsent, char *err, size_t errlen)
{
    *nsent = 0;
    for (size_t k = 0; k < ntargets; k++) {
        if (refund_send_one(c, sc, p, &targets[k], &sent[k], err, errlen) != 0)
            return -1;
        (*nsent)++;
    }
    return 0;
}
