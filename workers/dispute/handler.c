/* handler.c: one message of <prefix>stripe.disputes -> the dispute and
 * refund rules of common/disputes.c, inside db_run_once keyed by the Stripe
 * event id, then the outbox relay.
 *
 * Outcomes: a malformed event, an event type that does not belong here, or
 * an event whose invoice cannot be found is permanent (dlq; the unmatched
 * case first commits a WARNING audit event with firm NULL so the operator
 * sees it in the database too). A database or Stripe failure (listing a
 * charge's refunds) is transient: the same message is retried. */
#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/disputes.h"
#include "ledgerline/log.h"
#include "ledgerline/processed.h"
#include "ledgerline/stripe_match.h"
#include "ledgerline/vocab.h"

typedef enum { DW_DISPUTE, DW_REFUND, DW_OTHER } dw_kind;

static dw_kind dispute_worker_kind(const char *type)
{
    stripe_event_type t = stripe_event_type_of(type);
    if (t == STRIPE_EVENT_UNKNOWN)
        return DW_OTHER;
    switch (stripe_event_family(t)) {
    case STRIPE_FAMILY_DISPUTE: return DW_DISPUTE;
    case STRIPE_FAMILY_REFUND: return DW_REFUND;
    default: return DW_OTHER;
    }
}

int dispute_worker_metrics_declare(metrics_registry *m)
{
    if (metrics_declare(m, "billing_dispute_events_total", METRICS_COUNTER,
                        "Stripe dispute and refund events by type and result"
                        " (applied, duplicate, unmatched).") != 0 ||
        metrics_declare(m, "billing_disputes_total", METRICS_COUNTER,
                        "Dispute status changes by the status reached (opened, under_review,"
                        " won, lost).") != 0)
        return -1;
    return metrics_declare(m, "billing_refunds_total", METRICS_COUNTER,
                           "Stripe refunds recorded (each refund id once).");
}

static void dispute_worker_count(dispute_worker *w, const char *type, const char *result)
{
    if (w->metrics != NULL)
        metrics_counter_add(w->metrics, "billing_dispute_events_total", 1, "type", type, "result",
                            result, NULL);
}

typedef struct {
    const stripe_event *ev;
    dw_kind kind;
    int64_t invoice_id, firm_id;
    dispute_info dispute;
    dispute_apply_result dres;
    refund_charge charge;
    const refund_info *refunds;
    size_t nrefunds;
    refund_apply_result rres;
} dw_apply;

static db_status dispute_worker_apply(db_conn *c, void *varg, char *err, size_t errlen)
{
    dw_apply *a = varg;
    if (a->kind == DW_DISPUTE)
        return dispute_apply(c, a->invoice_id, a->firm_id, &a->dispute, a->ev, &a->dres, err,
                             errlen);
    return refund_apply(c, a->invoice_id, a->firm_id, &a->charge, a->refunds, a->nrefunds,
                        a->ev->id, &a->rres, err, errlen);
}

static kafka_result dispute_worker_result(db_status st)
{
    return st == DB_PERMANENT ? KAFKA_MSG_PERMANENT : KAFKA_MSG_TRANSIENT;
}

/* true when this consumer already applied the event (so a redelivered
 * charge.refunded does not call Stripe again). */
static db_status dispute_worker_seen(dispute_worker *w, const char *key, bool *seen, char *err,
                                     size_t errlen)
{
    return processed_seen(w->db, w->group, key, seen, err, errlen);
}

static kafka_result dispute_worker_relay(dispute_worker *w, char *err, size_t errlen)
{
    if (w->relay != NULL) {
        outbox_relay_kick(w->relay);
        return KAFKA_MSG_OK;
    }
    if (w->producer == NULL)
        return KAFKA_MSG_OK;
    int64_t sent = 0;
    if (outbox_relay_all(w->db, w->producer, w->prefix, 0, &sent, err, errlen) != DB_OK) {
        /* The event is applied; its rows wait in the outbox for the next
         * pass, and a retry of this message only relays. */
        log_msg(LL_LOG_WARN, "outbox relay incomplete", "error", err, NULL);
        return KAFKA_MSG_TRANSIENT;
    }
    return KAFKA_MSG_OK;
}

kafka_result dispute_worker_handle(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    dispute_worker *w = ctx;
    stripe_event ev;
    if (stripe_event_parse(m->value, m->value_len, &ev, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    kafka_result res = KAFKA_MSG_PERMANENT;
    refund_info *refunds = NULL;
    size_t nrefunds = 0;
    dw_apply a = {.ev = &ev, .kind = dispute_worker_kind(ev.type)};
    char inv[24], firm[24];
    if (a.kind == DW_OTHER) {
        ll_failf(err, errlen, "event %s: type %s is not a dispute or refund event", ev.id, ev.type);
        goto out;
    }
    char perr[384];
    if ((a.kind == DW_DISPUTE && dispute_parse(ev.object, &a.dispute, perr, sizeof perr) != 0) ||
        (a.kind == DW_REFUND &&
         refund_charge_parse(ev.object, &a.charge, perr, sizeof perr) != 0)) {
        ll_failf(err, errlen, "event %s (%s): %s", ev.id, ev.type, perr);
        goto out;
    }
    if (!db_ensure(w->db, 0)) {
        ll_failf(err, errlen, "database connection lost and not yet back");
        res = KAFKA_MSG_TRANSIENT;
        goto out;
    }
    bool seen = false;
    db_status st = dispute_worker_seen(w, ev.id, &seen, err, errlen);
    if (st != DB_OK) {
        res = dispute_worker_result(st);
        goto out;
    }
    if (seen) {
        w->duplicates++;
        dispute_worker_count(w, ev.type, "duplicate");
        log_msg(LL_LOG_INFO, "stripe event already applied", "event_id", ev.id, "type", ev.type,
                NULL);
        res = KAFKA_MSG_OK;
        goto out;
    }

    stripe_event_refs refs;
    stripe_event_refs_of(ev.object, &refs);
    stripe_event_match match;
    st = stripe_event_find_invoice(w->db, &refs, &match, err, errlen);
    a.invoice_id = match.invoice_id;
    a.firm_id = match.firm_id;
    if (st != DB_OK) {
        res = dispute_worker_result(st);
        goto out;
    }
    if (a.invoice_id == 0) {
        /* Kept for an operator: the WARNING audit event is committed first
         * (its own transaction), then the message goes to the dlq. */
        char aerr[512];
        st = dispute_audit_unmatched(w->db, w->group, &ev, &refs, aerr, sizeof aerr);
        if (st != DB_OK) {
            ll_failf(err, errlen, "cannot write the unmatched audit event: %s", aerr);
            res = KAFKA_MSG_TRANSIENT;
            goto out;
        }
        w->unmatched++;
        dispute_worker_count(w, ev.type, "unmatched");
        ll_failf(err, errlen,
                 "event %s (%s): no invoice matches charge '%s', payment_intent '%s' or"
                 " metadata.invoice_id '%s'",
                 ev.id, ev.type, refs.charge, refs.payment_intent, refs.metadata_invoice_id);
        res = KAFKA_MSG_PERMANENT;
        goto out;
    }
    if (a.kind == DW_REFUND) {
        if (w->stripe == NULL) {
            ll_failf(err, errlen, "no Stripe client configured to list refunds");
            res = KAFKA_MSG_TRANSIENT;
            goto out;
        }
        /* Outside any transaction: no row lock is held across the HTTP call. */
        st = refund_list_charge(w->stripe, a.charge.id, &refunds, &nrefunds, err, errlen);
        if (st != DB_OK) {
            /* A charge Stripe does not hold is permanent (dlq); an outage
             * is retried. */
            res = dispute_worker_result(st);
            goto out;
        }
        a.refunds = refunds;
        a.nrefunds = nrefunds;
    }
    st = db_run_once(w->db, w->group, ev.id, dispute_worker_apply, &a, err, errlen);
    if (st == DB_DUPLICATE) {
        w->duplicates++;
        dispute_worker_count(w, ev.type, "duplicate");
        res = KAFKA_MSG_OK;
        goto out;
    }
    if (st != DB_OK) {
        res = dispute_worker_result(st);
        goto out;
    }
    w->applied++;
    dispute_worker_count(w, ev.type, "applied");
    if (w->metrics != NULL && a.kind == DW_DISPUTE && a.dres.changed)
        metrics_counter_add(w->metrics, "billing_disputes_total", 1, "status",
                            a.dres.status == DISPUTE_CLOSED
                                ? dispute_resolution_name(a.dispute.resolution)
                                : dispute_status_name(a.dres.status),
                            NULL);
    if (w->metrics != NULL && a.kind == DW_REFUND && a.rres.recorded > 0)
        metrics_counter_add(w->metrics, "billing_refunds_total", (uint64_t)a.rres.recorded, NULL);
    db_i64(a.invoice_id, inv, sizeof inv);
    db_i64(a.firm_id, firm, sizeof firm);
    if (a.kind == DW_DISPUTE) {
        log_msg(LL_LOG_INFO, "dispute event applied", "event_id", ev.id, "type", ev.type, "dispute",
                a.dispute.id, "invoice_id", inv, "firm_id", firm, "status",
                dispute_status_name(a.dres.status), "changed", a.dres.changed ? "true" : "false",
                NULL);
    } else {
        char rec[24], incr[24];
        log_msg(LL_LOG_INFO, "refund event applied", "event_id", ev.id, "charge", a.charge.id,
                "invoice_id", inv, "firm_id", firm, "recorded",
                db_i64(a.rres.recorded, rec, sizeof rec), "increase_cents",
                db_i64(a.rres.increase, incr, sizeof incr), "status", a.rres.status, NULL);
    }
    res = dispute_worker_relay(w, err, errlen);
out:
    free(refunds);
    stripe_event_free(&ev);
    return res;
}
