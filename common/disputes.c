/* disputes.c: the dispute, chargeback and refund rules of BILLING_RULES
 * section 7, the evidence field list and the dispute summary of section 10
 * (see disputes.h). The worker (workers/dispute/) decides when to call
 * these; billingctl's dispute, refund and report commands reuse them. */
#include "ledgerline/disputes.h"
#include "ledgerline/failf.h"

#include "ledgerline/credit.h"
#include "ledgerline/invoice_transitions.h"
#include "ledgerline/vocab.h"
#include "ledgerline/queries.h"
#include "ledgerline/query_text.h"
#include "ledgerline/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

#define DI64(v) db_i64((v), (char[24]){0}, 24)

/* The event names an invoice (by its metadata) that its firm does not have. */
#define INVOICE_OF_FIRM_MISSING "invoice %lld of firm %lld does not exist"

/* ---------------------------------------------------------- status mapping */

int dispute_map_status(const char *s, dispute_status *status, dispute_resolution *resolution)
{
    static const struct {
        const char *stripe;
        dispute_status status;
        dispute_resolution resolution;
    } map[] = {
        {"warning_needs_response", DISPUTE_OPENED, DISPUTE_RES_NONE},
        {"needs_response", DISPUTE_OPENED, DISPUTE_RES_NONE},
        {"warning_under_review", DISPUTE_UNDER_REVIEW, DISPUTE_RES_NONE},
        {"under_review", DISPUTE_UNDER_REVIEW, DISPUTE_RES_NONE},
        /* An inquiry closed without a chargeback counts as won. */
        {"won", DISPUTE_CLOSED, DISPUTE_WON},
        {"warning_closed", DISPUTE_CLOSED, DISPUTE_WON},
        {"prevented", DISPUTE_CLOSED, DISPUTE_WON},
        {"lost", DISPUTE_CLOSED, DISPUTE_LOST},
    };
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(s, map[i].stripe) == 0) {
            *status = map[i].status;
            *resolution = map[i].resolution;
            return 0;
        }
    }
    return -1;
}

_Static_assert((int)DISPUTE_OPENED == (int)DISPUTE_STATUS_OPENED &&
                   (int)DISPUTE_UNDER_REVIEW == (int)DISPUTE_STATUS_UNDER_REVIEW &&
                   (int)DISPUTE_CLOSED == (int)DISPUTE_STATUS_CLOSED,
               "dispute_status follows LL_DISPUTE_STATUS_MAP");

const char *dispute_status_name(dispute_status s)
{
    const char *name = ll_vocab_name(&ll_dispute_statuses, (int)s);
    return name != NULL ? name : ll_dispute_statuses.names[DISPUTE_STATUS_OPENED];
}

const char *dispute_resolution_name(dispute_resolution r)
{
    return r == DISPUTE_WON ? "won" : r == DISPUTE_LOST ? "lost" : NULL;
}

int dispute_status_parse(const char *text, dispute_status *out)
{
    for (int s = DISPUTE_OPENED; s <= DISPUTE_CLOSED; s++) {
        if (text != NULL && strcmp(text, dispute_status_name((dispute_status)s)) == 0) {
            *out = (dispute_status)s;
            return 0;
        }
    }
    return -1;
}

bool dispute_moves_forward(dispute_status old_status, int64_t old_created,
                           dispute_status new_status, int64_t new_created)
{
    if (old_status == DISPUTE_CLOSED)
        return false;
    if (new_status != old_status)
        return new_status > old_status;
    return new_created >= old_created;
}

int dispute_parse(const json_t *o, dispute_info *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    const char *kind = stripe_json_str(o, "object");
    const char *id = stripe_json_str(o, "id");
    const char *status = stripe_json_str(o, "status");
    const char *currency = stripe_json_str(o, "currency");
    if (kind == NULL || strcmp(kind, "dispute") != 0)
        return ll_failf(err, errlen,
                        "cannot read the dispute: data.object is a \"%s\", not a dispute",
                        kind ? kind : "");
    if (id == NULL || strncmp(id, "dp_", 3) != 0 || !ll_copy(d->id, sizeof d->id, id))
        return ll_failf(err, errlen, "cannot read the dispute: it has no valid \"id\" (dp_...)");
    if (dispute_map_status(status, &d->status, &d->resolution) != 0)
        return ll_failf(err, errlen, "cannot read dispute %s: its status \"%s\" is unknown", d->id,
                        status ? status : "(none)");
    ll_copy(d->stripe_status, sizeof d->stripe_status, status);
    d->amount = stripe_json_i64(o, "amount", -1);
    if (d->amount < 0)
        return ll_failf(err, errlen,
                        "cannot read dispute %s: its \"amount\" is missing or negative", d->id);
    if (currency == NULL || strlen(currency) != 3)
        return ll_failf(err, errlen, "cannot read dispute %s: its \"currency\" is not an ISO code",
                        d->id);
    for (int i = 0; i < 3; i++) {
        char ch = currency[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch < 'a' || ch > 'z')
            return ll_failf(err, errlen,
                            "cannot read dispute %s: its \"currency\" is not an ISO code", d->id);
        d->currency[i] = ch;
    }
    if (!ll_copy(d->charge, sizeof d->charge, stripe_json_str(o, "charge")) ||
        !ll_copy(d->payment_intent, sizeof d->payment_intent, stripe_json_str(o, "payment_intent")))
        return ll_failf(err, errlen,
                        "cannot read dispute %s: its charge or payment_intent id is too long",
                        d->id);
    if (!ll_copy(d->reason, sizeof d->reason, stripe_json_str(o, "reason")))
        d->reason[0] = '\0';
    d->created = stripe_json_i64(o, "created", 0);
    d->due_by = stripe_json_i64(o, "evidence_details.due_by", 0);
    const json_t *he = stripe_json_get(o, "evidence_details.has_evidence");
    d->has_evidence =
        json_is_true(he) || stripe_json_i64(o, "evidence_details.submission_count", 0) > 0;
    return 0;
}

/* ------------------------------------------------------------- disputes */

typedef struct {
    int64_t invoice_id, firm_id;
    const dispute_info *d;
    const stripe_event *ev;
} dispute_ctx;

/* First sight of a dispute: disputed (billing.dispute_opened). Reaching
 * closed: won or lost (billing.dispute_won, billing.dispute_lost); what
 * each writes is sql/022's. */
static db_status dispute_open_effects(db_conn *c, const dispute_ctx *x, int64_t dispute_id,
                                      char *err, size_t errlen)
{
    return itr_dispute_opened(c, dispute_id, x->ev->id, err, errlen);
}

static db_status dispute_settle_effects(db_conn *c, const dispute_ctx *x, int64_t dispute_id,
                                        char *err, size_t errlen)
{
    if (x->d->resolution == DISPUTE_WON)
        return itr_dispute_won(c, dispute_id, x->ev->id, err, errlen);
    return itr_dispute_lost(c, dispute_id, x->ev->id, x->d->charge, x->d->payment_intent, err,
                            errlen);
}

/* dispute_funds_withdrawn / dispute_funds_reinstated: the balance
 * transactions of the direction the event names (negative amounts are
 * withdrawals, positive ones reinstatements), summed. */
static db_status dispute_funds_audit(db_conn *c, const dispute_ctx *x, int64_t dispute_id,
                                     bool withdrawn, char *err, size_t errlen)
{
    int64_t amount = 0, fee = 0, count = 0;
    const json_t *txs = stripe_json_get(x->ev->object, "balance_transactions");
    size_t i;
    const json_t *t;
    json_array_foreach(txs, i, t)
    {
        int64_t a = stripe_json_i64(t, "amount", 0);
        if ((withdrawn && a < 0) || (!withdrawn && a > 0)) {
            amount += a < 0 ? -a : a;
            fee += stripe_json_i64(t, "fee", 0);
            count++;
        }
    }
    const dispute_info *d = x->d;
    const char *p[] = {DI64(x->firm_id),
                       withdrawn ? "dispute_funds_withdrawn" : "dispute_funds_reinstated",
                       withdrawn ? "WARNING" : "INFO",
                       DI64(x->invoice_id),
                       d->id,
                       DI64(d->amount),
                       d->currency,
                       DI64(amount),
                       DI64(fee),
                       DI64(count),
                       x->ev->id,
                       DI64(dispute_id)};
    return db_command(c, llq_dispute_audit_funds, 12, p, err, errlen);
}

db_status dispute_apply(db_conn *c, int64_t invoice_id, int64_t firm_id, const dispute_info *d,
                        const stripe_event *ev, dispute_apply_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    dispute_ctx x = {.invoice_id = invoice_id, .firm_id = firm_id, .d = d, .ev = ev};
    db_status st;
    /* The invoice row lock serialises every event about this invoice
     * (several worker instances, a dispute and a refund at once). */
    const char *pi[] = {DI64(invoice_id), DI64(firm_id)};
    PGresult *r = db_exec_row(c, llq_dispute_select_invoices, 2, pi, &st, err, errlen,
                              INVOICE_OF_FIRM_MISSING, (long long)invoice_id, (long long)firm_id);
    if (r == NULL)
        return st;
    bool same_currency = strcmp(PQgetvalue(r, 0, 0), d->currency) == 0;
    char inv_currency[8];
    ll_copy(inv_currency, sizeof inv_currency, PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!same_currency) {
        /* Subtracting another currency's amount would corrupt the books. */
        ll_failf(err, errlen, "cannot apply dispute %s: it is in %s but invoice %lld is in %s",
                 d->id, d->currency, (long long)invoice_id, inv_currency);
        return DB_PERMANENT;
    }

    const char *pd[] = {d->id};
    r = db_exec(c, llq_dispute_select_payment_disputes, 1, pd, &st, err, errlen);
    if (r == NULL)
        return st;
    bool exists = PQntuples(r) > 0;
    dispute_status old_status = DISPUTE_OPENED;
    int64_t old_created = 0;
    if (exists) {
        out->dispute_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if (dispute_status_parse(PQgetvalue(r, 0, 1), &old_status) != 0)
            old_status = DISPUTE_OPENED;
        old_created = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    }
    PQclear(r);

    const char *res = dispute_resolution_name(d->resolution);
    const char *pv[] = {DI64(firm_id),
                        DI64(invoice_id),
                        dispute_status_name(d->status),
                        d->reason,
                        DI64(d->amount),
                        d->currency,
                        d->id,
                        d->charge,
                        DI64(d->created),
                        DI64(d->due_by),
                        DI64(ev->created),
                        d->has_evidence ? "true" : "false",
                        res,
                        d->stripe_status};
    out->status = old_status;
    if (!exists) {
        int64_t id = 0;
        st = db_query_i64(c, llq_dispute_insert_payment_disputes, 14, pv, NULL, &id, err, errlen);
        if (st != DB_OK)
            return st;
        out->dispute_id = id;
        out->inserted = out->changed = true;
        out->status = d->status;
        if ((st = dispute_open_effects(c, &x, id, err, errlen)) != DB_OK)
            return st;
        out->opened = true;
        if (d->status == DISPUTE_CLOSED) {
            if ((st = dispute_settle_effects(c, &x, id, err, errlen)) != DB_OK)
                return st;
            out->settled = true;
        }
    } else if (dispute_moves_forward(old_status, old_created, d->status, ev->created)) {
        const char *pu[] = {DI64(out->dispute_id),
                            dispute_status_name(d->status),
                            d->reason,
                            DI64(d->amount),
                            d->currency,
                            DI64(d->due_by),
                            DI64(ev->created),
                            d->has_evidence ? "true" : "false",
                            res,
                            d->stripe_status,
                            d->charge};
        st = db_command(c, llq_dispute_update_payment_disputes, 11, pu, err, errlen);
        if (st != DB_OK)
            return st;
        out->changed = true;
        out->status = d->status;
        if (d->status == DISPUTE_CLOSED) {
            if ((st = dispute_settle_effects(c, &x, out->dispute_id, err, errlen)) != DB_OK)
                return st;
            out->settled = true;
        }
    }

    stripe_event_type t = stripe_event_type_of(ev->type);
    if (t == STRIPE_EVENT_DISPUTE_FUNDS_WITHDRAWN || t == STRIPE_EVENT_DISPUTE_FUNDS_REINSTATED) {
        bool withdrawn = t == STRIPE_EVENT_DISPUTE_FUNDS_WITHDRAWN;
        if ((st = dispute_funds_audit(c, &x, out->dispute_id, withdrawn, err, errlen)) != DB_OK)
            return st;
    }
    return DB_OK;
}

typedef struct {
    const stripe_event *ev;
    const stripe_event_refs *refs;
} unmatched_arg;

static db_status dispute_unmatched_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    const unmatched_arg *a = varg;
    const char *obj = stripe_json_str(a->ev->object, "id");
    const char *p[] = {a->ev->id,
                       a->ev->type,
                       obj ? obj : "",
                       a->refs->charge,
                       a->refs->payment_intent,
                       a->refs->metadata_invoice_id};
    return db_command(c, llq_dispute_audit_stripe_event_unmatched, 6, p, err, errlen);
}

db_status dispute_audit_unmatched(db_conn *c, const char *consumer, const stripe_event *ev,
                                  const stripe_event_refs *refs, char *err, size_t errlen)
{
    char key[sizeof ev->id + 16];
    snprintf(key, sizeof key, "%s:unmatched", ev->id);
    unmatched_arg a = {ev, refs};
    db_status st = db_run_once(c, consumer, key, dispute_unmatched_work, &a, err, errlen);
    return st == DB_DUPLICATE ? DB_OK : st;
}

/* --------------------------------------------------------------- refunds */

/* The event's currency as a lowercase ISO code; false when it is not one. */
static bool refund_currency(const char *cur, char out[8])
{
    if (cur == NULL || strlen(cur) != 3)
        return false;
    for (int i = 0; i < 3; i++) {
        char c = cur[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c < 'a' || c > 'z')
            return false;
        out[i] = c;
    }
    out[3] = '\0';
    return true;
}

int refund_charge_parse(const json_t *o, refund_charge *ch, char *err, size_t errlen)
{
    memset(ch, 0, sizeof *ch);
    const char *kind = stripe_json_str(o, "object");
    bool is_refund = kind != NULL && strcmp(kind, "refund") == 0;
    if (kind == NULL || (strcmp(kind, "charge") != 0 && !is_refund))
        return ll_failf(err, errlen,
                        "cannot read the refund: data.object is a \"%s\", not a charge or a refund",
                        kind ? kind : "");
    /* charge.refunded carries the charge, charge.refund.updated the refund. */
    const char *id = stripe_json_str(o, is_refund ? "charge" : "id");
    if (id == NULL || strncmp(id, "ch_", 3) != 0 || !ll_copy(ch->id, sizeof ch->id, id))
        return ll_failf(err, errlen, "cannot read the %s: it has no valid charge id (ch_...)",
                        is_refund ? "refund" : "charge");
    if (!ll_copy(ch->payment_intent, sizeof ch->payment_intent,
                 stripe_json_str(o, "payment_intent")))
        return ll_failf(err, errlen, "cannot read charge %s: its payment_intent id is too long",
                        ch->id);
    if (!refund_currency(stripe_json_str(o, "currency"), ch->currency))
        return ll_failf(err, errlen, "cannot read charge %s: its \"currency\" is not an ISO code",
                        ch->id);
    if (is_refund) {
        ch->amount = ch->amount_refunded = -1; /* the list says what counts */
        return 0;
    }
    ch->amount = stripe_json_i64(o, "amount", -1);
    ch->amount_refunded = stripe_json_i64(o, "amount_refunded", -1);
    if (ch->amount < 0 || ch->amount_refunded < 0 || ch->amount_refunded > ch->amount)
        return ll_failf(err, errlen,
                        "cannot read charge %s: its \"amount\" and \"amount_refunded\" are"
                        " missing or inconsistent",
                        ch->id);
    ch->refunded = json_is_true(stripe_json_get(o, "refunded"));
    return 0;
}

int refund_list_parse(const json_t *body, refund_info **items, size_t *n, bool *has_more, char *err,
                      size_t errlen)
{
    const char *kind = stripe_json_str(body, "object");
    const json_t *data = stripe_json_get(body, "data");
    if (kind == NULL || strcmp(kind, "list") != 0 || !json_is_array(data))
        return ll_failf(err, errlen, "cannot read the refund list: it is not a Stripe list object");
    *has_more = json_is_true(stripe_json_get(body, "has_more"));
    size_t add = json_array_size(data);
    if (add == 0)
        return 0;
    refund_info *grown = realloc(*items, (*n + add) * sizeof **items);
    if (grown == NULL)
        return ll_failf(err, errlen, "could not read the refunds of a charge: out of memory");
    *items = grown;
    size_t i;
    const json_t *o;
    json_array_foreach(data, i, o)
    {
        refund_info *r = &(*items)[*n];
        memset(r, 0, sizeof *r);
        const char *id = stripe_json_str(o, "id");
        if (id == NULL || strncmp(id, "re_", 3) != 0 || !ll_copy(r->id, sizeof r->id, id))
            return ll_failf(err, errlen,
                            "cannot read the refund list: an item has no valid id (re_...)");
        if (!ll_copy(r->charge, sizeof r->charge, stripe_json_str(o, "charge")) ||
            !ll_copy(r->status, sizeof r->status, stripe_json_str(o, "status")))
            return ll_failf(err, errlen, "cannot read refund %s: its charge or status is too long",
                            r->id);
        r->amount = stripe_json_i64(o, "amount", -1);
        if (r->amount < 0)
            return ll_failf(err, errlen,
                            "cannot read refund %s: its \"amount\" is missing or negative", r->id);
        (*n)++;
    }
    return 0;
}

db_status refund_list_charge(stripe_client *sc, const char *charge_id, refund_info **items,
                             size_t *n, char *err, size_t errlen)
{
    *items = NULL;
    *n = 0;
    char after[STRIPE_ID_MAX] = "";
    /* 100 pages of 100 refunds is far beyond what one charge can have. */
    for (int page = 0; page < 100; page++) {
        stripe_form *f = stripe_form_new();
        if (f == NULL || stripe_form_add(f, "charge", charge_id) != 0 ||
            stripe_form_add_i64(f, "limit", 100) != 0 ||
            (after[0] && stripe_form_add(f, "starting_after", after) != 0)) {
            stripe_form_free(f);
            ll_failf(err, errlen, "could not list the refunds of charge %s: out of memory",
                     charge_id);
            return DB_TRANSIENT;
        }
        stripe_call call = {.method = "GET", .path = "/v1/refunds", .form = f};
        char cerr[256] = "";
        int rc = stripe_perform(sc, &call, cerr, sizeof cerr);
        db_status st = DB_OK;
        bool more = false;
        if (rc != 0) {
            ll_failf(err, errlen, "could not list the refunds of charge %s: %s", charge_id, cerr);
            st = DB_TRANSIENT;
        } else if (call.result.outcome != STRIPE_OK) {
            ll_failf(err, errlen,
                     "could not list the refunds of charge %s: Stripe answered %s (HTTP %ld): %s",
                     charge_id, stripe_outcome_name(call.result.outcome), call.result.http_status,
                     call.result.message);
            /* A charge Stripe does not know will not appear by retrying:
             * dead letter it for an operator (issue 18). */
            st = strcmp(call.result.code, "resource_missing") == 0 ? DB_PERMANENT : DB_TRANSIENT;
        } else if (refund_list_parse(call.result.body, items, n, &more, err, errlen) != 0) {
            st = DB_TRANSIENT;
        }
        stripe_result_free(&call.result);
        stripe_form_free(f);
        if (st != DB_OK) {
            free(*items);
            *items = NULL;
            *n = 0;
            return st;
        }
        if (!more || *n == 0)
            return DB_OK;
        ll_copy(after, sizeof after, (*items)[*n - 1].id);
    }
    return DB_OK;
}

db_status refund_targets(db_conn *c, int64_t invoice_id, int64_t amount, refund_target **out,
                         size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    const char *p[] = {DI64(invoice_id)};
    db_status st;
    /* Newest payment first; invoices from before section 11 have no
     * payment rows, only their own intent and charge. */
    PGresult *r = db_exec(c, llq_dispute_select_refunds, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int k = PQntuples(r);
    int64_t refundable = 0;
    for (int i = 0; i < k; i++)
        refundable += strtoll(PQgetvalue(r, i, 2), NULL, 10);
    if (k == 0 || refundable <= 0 || amount > refundable) {
        ll_failf(err, errlen,
                 k == 0 || refundable <= 0
                     ? "cannot refund invoice %lld: it has no succeeded Stripe payment left to "
                       "refund"
                     : "cannot refund invoice %lld: %lld cents asked, but only %lld cents of its "
                       "Stripe payments are left to refund",
                 (long long)invoice_id, (long long)amount, (long long)refundable);
        PQclear(r);
        return DB_PERMANENT;
    }
    *out = calloc((size_t)k, sizeof **out);
    if (*out == NULL) {
        PQclear(r);
        ll_failf(err, errlen, "could not plan the refund: out of memory");
        return DB_TRANSIENT;
    }
    int64_t want = amount > 0 ? amount : refundable;
    for (int i = 0; i < k && want > 0; i++) {
        int64_t left = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        refund_target *t = &(*out)[(*n)++];
        ll_copy(t->payment_intent, sizeof t->payment_intent, PQgetvalue(r, i, 0));
        ll_copy(t->charge, sizeof t->charge, PQgetvalue(r, i, 1));
        t->amount = want < left ? want : left;
        want -= t->amount;
    }
    PQclear(r);
    return DB_OK;
}

int64_t refund_counted(const char *status, int64_t amount)
{
    /* Money that left or is leaving; a failed or canceled refund gave it
     * back (rule 11.11). */
    return ll_vocab_is(&ll_refund_statuses, status, REFUND_STATUS_FAILED) ||
                   ll_vocab_is(&ll_refund_statuses, status, REFUND_STATUS_CANCELED)
               ? 0
               : amount;
}

/* Records (or moves on) each listed refund of the charge and returns the
 * change of what the books count: *taken (refunds newly counted) and
 * *given (refunds that failed or were canceled since), with the ids that
 * changed appended to ids. */
static db_status refund_sync_rows(db_conn *c, int64_t invoice_id, int64_t firm_id,
                                  int64_t payment_id, const refund_charge *ch,
                                  const refund_info *items, size_t n, int64_t *taken,
                                  int64_t *given, int *recorded, json_t *ids, char *err,
                                  size_t errlen)
{
    *taken = *given = 0;
    for (size_t i = 0; i < n; i++) {
        const refund_info *f = &items[i];
        if (strcmp(f->charge, ch->id) != 0)
            continue;
        int64_t want = refund_counted(f->status, f->amount);
        const char *p[] = {
            DI64(firm_id),   DI64(invoice_id), f->id,      ch->id,
            DI64(f->amount), f->status,        DI64(want), payment_id ? DI64(payment_id) : NULL};
        db_status st;
        /* The row's applied_cents before and after, in one statement. */
        PGresult *r = db_exec(c, llq_dispute_with_refunds, 8, p, &st, err, errlen);
        if (r == NULL)
            return st;
        int64_t had = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        bool inserted = PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
        if (inserted)
            (*recorded)++;
        if (want > had)
            *taken += want - had;
        else if (want < had)
            *given += had - want;
        if (want != had)
            json_array_append_new(ids, json_string(f->id));
    }
    return DB_OK;
}

db_status refund_apply(db_conn *c, int64_t invoice_id, int64_t firm_id, const refund_charge *ch,
                       const refund_info *items, size_t n, const char *event_id,
                       refund_apply_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    db_status st;
    const char *pi[] = {DI64(invoice_id), DI64(firm_id), ch->id, ch->payment_intent};
    PGresult *r = db_exec_row(c, llq_dispute_select_payments, 4, pi, &st, err, errlen,
                              INVOICE_OF_FIRM_MISSING, (long long)invoice_id, (long long)firm_id);
    if (r == NULL)
        return st;
    bool same_currency = strcmp(PQgetvalue(r, 0, 0), ch->currency) == 0;
    ll_copy(out->status, sizeof out->status, PQgetvalue(r, 0, 1));
    int64_t paid_before = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    int64_t old_refunded = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    int64_t payment_id = PQgetisnull(r, 0, 4) ? 0 : strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    int64_t client_id = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    PQclear(r);
    out->refunded_total = old_refunded;
    if (!same_currency) {
        ll_failf(err, errlen,
                 "cannot apply the refunds of charge %s: it is in %s but invoice %lld is not",
                 ch->id, ch->currency, (long long)invoice_id);
        return DB_PERMANENT;
    }
    json_t *ids = json_array();
    int64_t taken = 0, given = 0;
    st = refund_sync_rows(c, invoice_id, firm_id, payment_id, ch, items, n, &taken, &given,
                          &out->recorded, ids, err, errlen);
    int64_t from_credit = 0, from_invoice = 0, to_invoice = 0, to_credit = 0;
    if (st == DB_OK && taken > 0) {
        /* 11.1: the overpayment credit this payment created first. */
        const char *pt[] = {DI64(invoice_id), payment_id ? DI64(payment_id) : NULL, DI64(taken),
                            ch->id};
        r = db_exec(c, llq_dispute_select_take_back, 4, pt, &st, err, errlen);
        if (r != NULL) {
            from_credit = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            from_invoice = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
            PQclear(r);
        }
    }
    if (st == DB_OK && given > 0) {
        /* 11.11: a failed refund's money comes back. */
        const char *pg[] = {DI64(invoice_id), payment_id ? DI64(payment_id) : NULL, DI64(given)};
        r = db_exec(c, llq_dispute_give_back, 3, pg, &st, err, errlen);
        if (r != NULL) {
            to_invoice = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            to_credit = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
            PQclear(r);
        }
        if (st == DB_OK && to_credit > 0) {
            char desc[sizeof ch->id + 48];
            snprintf(desc, sizeof desc, "Refund of charge %s failed: money returned", ch->id);
            credit_add_params cp = {.client_id = client_id,
                                    .amount_cents = to_credit,
                                    .source = "overpayment",
                                    .description = desc,
                                    .source_invoice_id = invoice_id,
                                    .source_payment_id = payment_id};
            st = credit_add(c, &cp, NULL, err, errlen);
        }
    }
    int64_t change = taken - given;
    if (st != DB_OK || change == 0) {
        /* A duplicate, or an older event than one already applied. */
        json_decref(ids);
        return st;
    }
    /* The invoice's refunded total, status, audit and event: the
     * transition's (billing.invoice_refunded, sql/022). */
    char *idtext = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    if (idtext == NULL) {
        ll_failf(err, errlen, "could not record the refund of charge %s: out of memory", ch->id);
        return DB_TRANSIENT;
    }
    itr_refund t = {.invoice_id = invoice_id,
                    .change = change,
                    .own_money = from_invoice > 0,
                    .charge = ch->id,
                    .refund_ids_json = idtext,
                    .paid_before = paid_before,
                    .stripe_event_id = event_id,
                    .currency = ch->currency,
                    .from_credit = from_credit,
                    .from_invoice = from_invoice,
                    .returned = to_invoice + to_credit};
    st = itr_invoice_refunded(c, &t, out->status, sizeof out->status, &out->refunded_total, err,
                              errlen);
    free(idtext);
    if (st == DB_OK)
        out->increase = change;
    return st;
}

/* -------------------------------------------------------------- evidence */

const char *const dispute_evidence_fields[] = {
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
    NULL,
};

bool dispute_evidence_field_known(const char *key)
{
    for (size_t i = 0; key != NULL && dispute_evidence_fields[i] != NULL; i++)
        if (strcmp(key, dispute_evidence_fields[i]) == 0)
            return true;
    return false;
}

int dispute_evidence_validate(const json_t *doc, char *err, size_t errlen)
{
    if (!json_is_object(doc))
        return ll_failf(err, errlen, "cannot use the evidence: it is not one JSON object");
    if (json_object_size(doc) == 0)
        return ll_failf(err, errlen, "cannot use the evidence: it has no fields");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (!dispute_evidence_field_known(key)) {
            ll_failf(err, errlen, "cannot use the evidence: its field \"%s\" is unknown", key);
            return ll_hintf(err, errlen,
                            "Stripe's fields are customer_name, service_date, receipt, ...;"
                            " docs/DISPUTES.md lists them.");
        }
        if (!json_is_string(v) || json_string_length(v) == 0)
            return ll_failf(err, errlen,
                            "cannot use the evidence: its field \"%s\" is not a non-empty string",
                            key);
        if (json_string_length(v) > 20000)
            return ll_failf(
                err, errlen,
                "cannot use the evidence: its field \"%s\" is longer than 20000 characters", key);
        if (strlen(json_string_value(v)) != json_string_length(v))
            return ll_failf(err, errlen,
                            "cannot use the evidence: its field \"%s\" contains a NUL character",
                            key);
    }
    return 0;
}

static int dispute_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

stripe_form *dispute_evidence_form(const json_t *doc)
{
    size_t n = json_object_size(doc);
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    stripe_form *f = stripe_form_new();
    if (keys == NULL || f == NULL) {
        free(keys);
        stripe_form_free(f);
        return NULL;
    }
    size_t k = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v) keys[k++] = key;
    qsort(keys, k, sizeof *keys, dispute_cmp_str);
    int rc = 0;
    for (size_t i = 0; i < k && rc == 0; i++) {
        char name[96];
        snprintf(name, sizeof name, "evidence[%s]", keys[i]);
        rc = stripe_form_add(f, name, json_string_value(json_object_get(doc, keys[i])));
    }
    if (rc == 0)
        rc = stripe_form_add(f, "submit", "true");
    free(keys);
    if (rc != 0) {
        stripe_form_free(f);
        return NULL;
    }
    return f;
}

void dispute_fingerprint(const char *text, char out[17])
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* ---------------------------------------------------------------- report */

db_status dispute_report(db_conn *c, int64_t firm_id, char **json_text, char *err, size_t errlen)
{
    *json_text = NULL;
    const char *p[] = {DI64(firm_id)};
    db_status st = db_require_firm(c, firm_id, err, errlen);
    if (st != DB_OK)
        return st;
    /* Counts are exact integers; the win rate is won / (won + lost), as an
     * exact fraction and as a whole percentage rounded half up, computed in
     * integers (no floating point). The query answers one row. */
    return query_text(c, llq_dispute_with_payment_disputes, 1, p, json_text, err, errlen);
}
