/* payment_events.c: stripe.payments events -> payments and failures (see
 * payment_events.h). The rules themselves are payments.c's; this file reads
 * the events and finds their invoice. */
#include "ledgerline/payment_events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/queries.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_match.h"
#include "ledgerline/vocab.h"
#include "ledgerline/worker.h"

payment_event_kind payment_event_kind_of(const char *type)
{
    stripe_event_type t = stripe_event_type_of(type);
    if (t == STRIPE_EVENT_UNKNOWN)
        return PAYMENT_EVENT_OTHER;
    switch (stripe_event_family(t)) {
    case STRIPE_FAMILY_PAYMENT_SUCCESS: return PAYMENT_EVENT_SUCCESS;
    case STRIPE_FAMILY_PAYMENT_PROCESSING: return PAYMENT_EVENT_PROCESSING;
    case STRIPE_FAMILY_PAYMENT_FAILURE: return PAYMENT_EVENT_FAILURE;
    case STRIPE_FAMILY_DISPUTE:
    case STRIPE_FAMILY_REFUND: break;
    }
    return PAYMENT_EVENT_OTHER;
}

/* Whether the event's object is a Stripe invoice (invoice.payment_*). */
static bool pe_object_is_invoice(const char *type)
{
    stripe_event_type t = stripe_event_type_of(type);
    return t != STRIPE_EVENT_UNKNOWN && stripe_event_object(t) == STRIPE_OBJECT_INVOICE;
}

typedef struct {
    const payments_ctx *ctx;
    const stripe_event *ev;
    payment_event_kind kind;
    stripe_event_refs refs;
    stripe_event_match match;
    const json_t *object; /* the event's object, or the PaymentIntent read from Stripe */
    bool from_api;        /* object is Stripe's answer to GET /v1/payment_intents/{id} */
    bool applied;
    bool wrong_currency; /* rule 11.8: kept for an operator */
} pe_arg;

/* The event's time as RFC 3339 UTC, and its UTC date. */
static void pe_when(const stripe_event *ev, char at[40], civil_date *day)
{
    time_t t = ev->created > 0 ? (time_t)ev->created : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!date_from_ymd(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, day))
        *day = date_today_utc();
}

/* A PaymentIntent read from Stripe says by its status what happened. */
static payment_event_kind pe_kind_of_status(const char *status)
{
    if (status == NULL)
        return PAYMENT_EVENT_OTHER;
    if (strcmp(status, "succeeded") == 0)
        return PAYMENT_EVENT_SUCCESS;
    if (strcmp(status, "processing") == 0)
        return PAYMENT_EVENT_PROCESSING;
    if (strcmp(status, "requires_payment_method") == 0 || strcmp(status, "canceled") == 0)
        return PAYMENT_EVENT_FAILURE;
    return PAYMENT_EVENT_OTHER;
}

static db_status pe_apply(db_conn *c, void *arg, char *err, size_t errlen)
{
    pe_arg *a = arg;
    const json_t *o = a->object;
    bool is_invoice = !a->from_api && pe_object_is_invoice(a->ev->type);
    char at[40];
    civil_date day;
    pe_when(a->ev, at, &day);
    switch (a->kind) {
    case PAYMENT_EVENT_SUCCESS: {
        int64_t amount = is_invoice ? stripe_json_i64(o, "amount_paid", -1)
                                    : stripe_json_i64(o, "amount_received", -1);
        const char *currency = stripe_json_str(o, "currency");
        if (amount < 0 || currency == NULL) {
            ll_failf(err, errlen, "cannot apply %s %s: it has no amount or currency", a->ev->type,
                     a->ev->id);
            return DB_PERMANENT;
        }
        const char *charge = a->from_api || !is_invoice ? stripe_json_str(o, "latest_charge")
                                                        : stripe_json_str(o, "charge");
        payments_money m = {.invoice_id = a->match.invoice_id,
                            .attempt_id = a->match.attempt_id,
                            .payment_intent = a->refs.payment_intent,
                            .charge = charge ? charge : (a->refs.charge[0] ? a->refs.charge : NULL),
                            .amount_cents = amount,
                            .currency = currency,
                            .on = day};
        payments_money_result r;
        db_status st = payments_apply_success(c, &m, &r, err, errlen);
        if (st == DB_OK && r == PAYMENTS_MONEY_WRONG_CURRENCY) {
            a->wrong_currency = true;
            return DB_PERMANENT;
        }
        a->applied = r == PAYMENTS_MONEY_APPLIED;
        return st;
    }
    case PAYMENT_EVENT_PROCESSING:
        a->applied = true;
        return payments_mark_processing(c, a->match.invoice_id, a->match.attempt_id,
                                        a->refs.payment_intent, err, errlen);
    case PAYMENT_EVENT_FAILURE: {
        const char *code = stripe_json_str(o, "last_payment_error.decline_code");
        if (code == NULL)
            code = stripe_json_str(o, "last_payment_error.code");
        const char *msg = stripe_json_str(o, "last_payment_error.message");
        /* A Stripe invoice does not say why its payment failed. */
        payments_failure f = {.invoice_id = a->match.invoice_id,
                              .attempt_id = a->match.attempt_id,
                              .payment_intent = a->refs.payment_intent,
                              .code = code ? code : "payment_failed",
                              .message = msg ? msg : "payment failed (reported by Stripe)",
                              .failed_at = at,
                              .amount_cents = is_invoice ? stripe_json_i64(o, "amount_due", 0)
                                                         : stripe_json_i64(o, "amount", 0)};
        return payments_record_failure(c, a->ctx, &f, &a->applied, err, errlen);
    }
    default: return DB_OK;
    }
}

/* An event we cannot place is kept for an operator: audited once (firm
 * unknown), however often it is redelivered, then dead-lettered by the
 * caller. */
static db_status pe_unmatched(db_conn *c, void *arg, char *err, size_t errlen)
{
    const pe_arg *a = arg;
    const char *p[] = {
        a->ev->id, a->ev->type, a->refs.payment_intent, a->refs.charge, a->refs.metadata_invoice_id,
        err};
    return db_command(c, llq_payment_events_unmatched, 6, p, err, errlen);
}

/* A PaymentIntent no attempt of ours created (rule 11.9): read from
 * Stripe, and applied only when its own metadata names the invoice and
 * that invoice's firm. *json gets Stripe's object (caller decrefs) or NULL
 * with the reason in err: DB_PERMANENT when it does not belong to us. */
static db_status pe_read_foreign(const payments_ctx *ctx, pe_arg *a, json_t **json, char *err,
                                 size_t errlen)
{
    *json = NULL;
    if (ctx->stripe == NULL) {
        ll_failf(err, errlen, "could not read PaymentIntent %s from Stripe: no Stripe client",
                 a->refs.payment_intent);
        return DB_TRANSIENT;
    }
    payments_lookup l = {0};
    snprintf(l.payment_intent, sizeof l.payment_intent, "%s", a->refs.payment_intent);
    stripe_result res;
    char lerr[384];
    int found = payments_lookup_attempt(ctx->stripe, &l, &res, lerr, sizeof lerr);
    if (found < 0) {
        bool missing = strstr(lerr, "HTTP 404") != NULL;
        ll_failf(err, errlen, "could not read PaymentIntent %s from Stripe: %s",
                 a->refs.payment_intent, lerr);
        return missing ? DB_PERMANENT : DB_TRANSIENT;
    }
    const char *inv = found ? stripe_json_str(res.body, "metadata.invoice_id") : NULL;
    const char *firm = found ? stripe_json_str(res.body, "metadata.firm_id") : NULL;
    char want_inv[24], want_firm[24];
    db_i64(a->match.invoice_id, want_inv, sizeof want_inv);
    db_i64(a->match.firm_id, want_firm, sizeof want_firm);
    if (found == 0 || inv == NULL || firm == NULL || strcmp(inv, want_inv) != 0 ||
        strcmp(firm, want_firm) != 0) {
        ll_failf(err, errlen,
                 "cannot apply PaymentIntent %s: we did not create it and its metadata at Stripe "
                 "does not name invoice %s of firm %s",
                 a->refs.payment_intent, want_inv, want_firm);
        if (found)
            stripe_result_free(&res);
        return DB_PERMANENT;
    }
    *json = json_incref(res.body);
    stripe_result_free(&res);
    return DB_OK;
}

kafka_result payment_events_handle(worker *w, const payments_ctx *ctx, unsigned kinds,
                                   const kafka_msg *m, char *err, size_t errlen)
{
    stripe_event ev;
    if (stripe_event_parse(m->value, m->value_len, &ev, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    pe_arg a = {.ctx = ctx, .ev = &ev, .kind = payment_event_kind_of(ev.type), .object = ev.object};
    json_t *api = NULL;
    if ((a.kind & kinds) == 0) {
        stripe_event_free(&ev);
        return KAFKA_MSG_OK;
    }
    stripe_event_refs_of(ev.object, &a.refs);
    bool seen = false;
    db_status st = worker_seen(w, ev.id, &seen, err, errlen);
    if (st != DB_OK || seen)
        goto out;
    if (a.refs.payment_intent[0] == '\0') {
        ll_failf(err, errlen, "cannot apply %s %s: it carries no PaymentIntent id", ev.type, ev.id);
        ll_detailf(err, errlen, "Without one it cannot be applied exactly once.");
        st = DB_PERMANENT;
        goto out;
    }
    st = stripe_event_find_invoice(w->db, &a.refs, &a.match, err, errlen);
    if (st == DB_OK && a.match.invoice_id > 0 && !a.match.ours) {
        st = pe_read_foreign(ctx, &a, &api, err, errlen);
        if (st == DB_OK) {
            a.object = api;
            a.from_api = true;
            a.kind = pe_kind_of_status(stripe_json_str(api, "status"));
        }
    } else if (st == DB_OK && a.match.invoice_id == 0) {
        ll_failf(err, errlen,
                 "cannot apply %s %s: it matches no invoice (payment_intent %s, charge %s)",
                 ev.type, ev.id, a.refs.payment_intent, a.refs.charge);
        st = DB_PERMANENT;
    }
    if (st == DB_OK) {
        st = db_run_once(w->db, w->group, ev.id, pe_apply, &a, err, errlen);
        char id[24];
        if (st == DB_OK || st == DB_DUPLICATE)
            log_msg(LL_LOG_INFO, "stripe event applied", "stripe_event_id", ev.id, "type", ev.type,
                    "invoice_id", db_i64(a.match.invoice_id, id, sizeof id), "payment_intent",
                    a.refs.payment_intent, "effect",
                    st == DB_DUPLICATE ? "duplicate event"
                    : a.applied        ? "applied"
                                       : "already counted",
                    NULL);
    }
    if (st == DB_PERMANENT) {
        /* Kept for an operator: the WARNING audit event once per event id
         * (its own transaction), then the dead letter. */
        char key[sizeof ev.id + 16], aerr[512];
        snprintf(key, sizeof key, "%s:unmatched", ev.id);
        snprintf(aerr, sizeof aerr, "%s", err);
        db_status ast = db_run_once(w->db, w->group, key, pe_unmatched, &a, aerr, sizeof aerr);
        if (ast != DB_OK && ast != DB_DUPLICATE) {
            ll_failf(err, errlen, "could not write the unmatched audit event: %s", aerr);
            st = DB_TRANSIENT;
        }
    }
out:
    json_decref(api);
    stripe_event_free(&ev);
    return worker_result(st == DB_DUPLICATE ? DB_OK : st);
}

kafka_result payment_tick_handle(worker *w, payments_ctx *ctx, payments_kind kind,
                                 const char *counter, const kafka_msg *m, char *err, size_t errlen)
{
    tick_kind want = kind == PAYMENTS_AUTOPAY ? TICK_AUTOPAY : TICK_RETRY;
    tick_msg t;
    if (tick_parse(m->value, m->value_len, &t, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    if (t.kind != want) {
        ll_failf(err, errlen, "cannot handle tick.%s: this worker handles tick.%s",
                 tick_kind_name(t.kind), tick_kind_name(want));
        return KAFKA_MSG_PERMANENT;
    }
    bool seen = false;
    db_status st = worker_seen(w, t.idempotency_key, &seen, err, errlen);
    if (st != DB_OK || seen)
        return worker_result(st);
    payments_stats s = {0};
    st = payments_run_tick(ctx, kind, &t, &s, err, errlen);
    payments_stats_count(w->metrics, counter, &s);
    if (st == DB_OK && shutdown_requested()) {
        /* Stopped mid-shard (11.12): the next delivery finishes it. */
        ll_failf(err, errlen, "could not finish tick %s: the worker is stopping",
                 t.idempotency_key);
        st = DB_TRANSIENT;
    }
    if (st == DB_OK)
        st = worker_record(w, t.idempotency_key, err, errlen);
    char n1[24], n2[24], n3[24], n4[24], n5[24];
    log_msg(st == DB_OK ? LL_LOG_INFO : LL_LOG_WARN, "payment tick applied", "idempotency_key",
            t.idempotency_key, "considered", db_i64(s.considered, n1, sizeof n1), "succeeded",
            db_i64(s.succeeded, n2, sizeof n2), "failed", db_i64(s.failed, n3, sizeof n3),
            "transient", db_i64(s.transient, n4, sizeof n4), "overdue",
            db_i64(s.overdue, n5, sizeof n5), "status", db_status_name(st), NULL);
    return worker_result(st);
}
