/* reconcile.c: the books against Stripe (see reconcile.h). Reads only:
 * Stripe through GET list and retrieve calls, the books through SELECTs.
 * What counts as money in the books is the rules' own (payments hold what
 * a PaymentIntent received, a refund counts unless it failed or was
 * canceled: refund_counted, a dispute's resolution follows
 * dispute_map_status). */
#include "ledgerline/reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ledgerline/disputes.h"
#include "ledgerline/failf.h"
#include "ledgerline/queries.h"
#include "ledgerline/stripe_event.h"

const char *recon_kind_name(recon_kind k)
{
    static const char *const names[] = {"missing_in_books", "missing_at_stripe", "amount_differs",
                                        "currency_differs", "status_differs"};
    return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

typedef struct {
    db_conn *c;
    stripe_client *sc;
    int64_t firm_id;
    recon_fn fn;
    void *arg;
    recon_stats *stats;
    json_t *seen;     /* ids Stripe's lists showed (an object used as a set) */
    const char *note; /* the credit note whose refunds are being added up */
    int64_t note_sum; /* what Stripe's refunds of it count (refund_counted) */
} recon;

/* What the books say about one Stripe object; found = false when nothing. */
typedef struct {
    bool found;
    int64_t invoice_id, firm_id, amount;
    char currency[8];
    char status[32];
} recon_books;

static void recon_report(recon *r, recon_kind kind, const char *object, const char *id,
                         const recon_books *b, int64_t stripe_amount, const char *stripe_currency,
                         const char *stripe_status)
{
    recon_diff d = {.kind = kind,
                    .object = object,
                    .stripe_id = id,
                    .invoice_id = b->invoice_id,
                    .firm_id = b->firm_id,
                    .books_amount = b->found && kind != RECON_MISSING_IN_BOOKS ? b->amount : -1,
                    .stripe_amount = stripe_amount,
                    .books_currency = b->currency,
                    .stripe_currency = stripe_currency ? stripe_currency : "",
                    .books_status = b->status,
                    .stripe_status = stripe_status ? stripe_status : ""};
    r->stats->differences++;
    if (r->fn != NULL)
        r->fn(&d, r->arg);
}

/* One row of sql (params p) into b: invoice, firm, amount, currency, status. */
static db_status recon_books_row(recon *r, const char *sql, int n, const char *const *p,
                                 recon_books *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    db_status st;
    PGresult *res = db_exec(r->c, sql, n, p, &st, err, errlen);
    if (res == NULL)
        return st;
    if (PQntuples(res) > 0) {
        b->found = true;
        b->invoice_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        b->firm_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        b->amount = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        snprintf(b->currency, sizeof b->currency, "%s", PQgetvalue(res, 0, 3));
        snprintf(b->status, sizeof b->status, "%s", PQgetvalue(res, 0, 4));
    }
    PQclear(res);
    return DB_OK;
}

/* The firm a charge or intent of the books belongs to (0 = not ours). */
static db_status recon_owner(recon *r, const char *charge, const char *pi, recon_books *b,
                             char *err, size_t errlen)
{
    const char *p[] = {charge ? charge : "", pi ? pi : ""};
    return recon_books_row(r, llq_reconcile_owner, 2, p, b, err, errlen);
}

static bool recon_in_scope(const recon *r, int64_t firm_id)
{
    return r->firm_id == 0 || firm_id == r->firm_id;
}

/* ---- PaymentIntents ------------------------------------------------------ */

static db_status recon_pi(recon *r, const json_t *o, bool listed, char *err, size_t errlen)
{
    const char *id = stripe_json_str(o, "id");
    const char *status = stripe_json_str(o, "status");
    const char *currency = stripe_json_str(o, "currency");
    int64_t received = stripe_json_i64(o, "amount_received", 0);
    if (id == NULL || status == NULL)
        return DB_OK;
    const char *firm = stripe_json_str(o, "metadata.firm_id");
    /* One firm's reconcile walks every firm's PaymentIntents (one Stripe
     * account serves them all): one made for another firm, by its
     * metadata, is that firm's to compare, and costs no query here. It is
     * not marked seen, so if the books hold it as this firm's all the same,
     * the books side reads it by id and compares it. */
    if (listed && r->firm_id > 0 && firm != NULL && stripe_event_decimal_id(firm) &&
        strtoll(firm, NULL, 10) != r->firm_id)
        return DB_OK;
    if (listed)
        json_object_set_new(r->seen, id, json_true());
    recon_books pay, owner;
    const char *p[] = {id};
    db_status st = recon_books_row(r, llq_reconcile_pi_payment, 1, p, &pay, err, errlen);
    if (st != DB_OK)
        return st;
    owner = pay;
    if (!owner.found && firm != NULL && stripe_event_decimal_id(firm)) {
        const char *pf[] = {firm, stripe_json_str(o, "metadata.invoice_id")
                                      ? stripe_json_str(o, "metadata.invoice_id")
                                      : "0"};
        st = recon_books_row(r, llq_reconcile_pi_owner, 2, pf, &owner, err, errlen);
        if (st != DB_OK)
            return st;
    }
    if (!owner.found)
        st = recon_owner(r, stripe_json_str(o, "latest_charge"), NULL, &owner, err, errlen);
    if (st != DB_OK || !owner.found || !recon_in_scope(r, owner.firm_id))
        return st;
    r->stats->payment_intents++;
    bool succeeded = strcmp(status, "succeeded") == 0;
    if (succeeded && !pay.found) {
        recon_report(r, RECON_MISSING_IN_BOOKS, "payment_intent", id, &owner, received, currency,
                     status);
    } else if (!succeeded && pay.found) {
        recon_report(r, RECON_STATUS_DIFFERS, "payment_intent", id, &pay, received, currency,
                     status);
    } else if (pay.found && currency != NULL && strcmp(currency, pay.currency) != 0) {
        recon_report(r, RECON_CURRENCY_DIFFERS, "payment_intent", id, &pay, received, currency,
                     status);
    } else if (pay.found && received != pay.amount) {
        recon_report(r, RECON_AMOUNT_DIFFERS, "payment_intent", id, &pay, received, currency,
                     status);
    }
    return DB_OK;
}

/* What refunds and disputes share: the object's id and status (skipped
 * without them), its place in the seen set, the books' row for it (sql, $1 =
 * the id) and, when the books have none, whether its charge or intent is
 * ours. *compare = the object is ours and in scope. */
static db_status recon_books_of(recon *r, const json_t *o, bool listed, const char *sql,
                                recon_books *b, recon_books *owner, bool *compare, char *err,
                                size_t errlen)
{
    *compare = false;
    const char *id = stripe_json_str(o, "id");
    if (id == NULL || stripe_json_str(o, "status") == NULL)
        return DB_OK;
    if (listed)
        json_object_set_new(r->seen, id, json_true());
    const char *p[] = {id};
    db_status st = recon_books_row(r, sql, 1, p, b, err, errlen);
    if (st != DB_OK)
        return st;
    *owner = *b;
    if (!owner->found)
        st = recon_owner(r, stripe_json_str(o, "charge"), stripe_json_str(o, "payment_intent"),
                         owner, err, errlen);
    *compare = st == DB_OK && owner->found && recon_in_scope(r, owner->firm_id);
    return st;
}

/* ---- refunds and disputes ------------------------------------------------ */

/* Stripe's side of one refund or dispute as the books would hold it, and
 * which of its differences from the books' row are findings. */
typedef struct {
    int64_t amount;             /* what counts in the books */
    const char *status;         /* the status in the books' words */
    bool required;              /* the books must hold it */
    bool status_checked;        /* a status difference alone is a finding */
    bool amount_follows_status; /* both differ: the status is the finding */
} recon_view;

/* What tells a refund from a dispute: its name in a report, the books'
 * row of it ($1 = its id) and Stripe's object as the books would hold it. */
typedef struct {
    const char *object;
    const char *sql;
    void (*view)(const char *status, int64_t amount, recon_view *v);
} recon_object_kind;

/* A refund counts unless it failed or was canceled (refund_counted): what
 * it counts follows its status, and one that counts nothing need not be in
 * the books. */
static void recon_refund_view(const char *status, int64_t amount, recon_view *v)
{
    int64_t counted = refund_counted(status, amount);
    *v = (recon_view){.amount = counted,
                      .status = status,
                      .required = counted > 0,
                      .amount_follows_status = true};
}

/* Stripe's status as the books write it: opened, under_review, won, lost. */
static const char *recon_dispute_state(const char *stripe_status)
{
    dispute_status s;
    dispute_resolution res;
    if (dispute_map_status(stripe_status, &s, &res) != 0)
        return "";
    if (s == DISPUTE_CLOSED)
        return dispute_resolution_name(res);
    return s == DISPUTE_UNDER_REVIEW ? "under_review" : "opened";
}

/* Open states may lag by one event; what the books must never miss or get
 * wrong is a closed dispute (a lost one is money gone). */
static void recon_dispute_view(const char *status, int64_t amount, recon_view *v)
{
    const char *state = recon_dispute_state(status);
    bool closed = strcmp(state, "won") == 0 || strcmp(state, "lost") == 0;
    *v =
        (recon_view){.amount = amount, .status = state, .required = true, .status_checked = closed};
}

static const recon_object_kind recon_refunds = {"refund", llq_reconcile_refund, recon_refund_view};
static const recon_object_kind recon_disputes = {"dispute", llq_reconcile_dispute,
                                                 recon_dispute_view};

/* One refund or dispute against the books (counted in *count when it is
 * ours and in scope); the first difference that is a finding is reported. */
static db_status recon_object(recon *r, const recon_object_kind *k, int64_t *count, const json_t *o,
                              bool listed, char *err, size_t errlen)
{
    recon_books b, owner;
    bool compare;
    db_status st = recon_books_of(r, o, listed, k->sql, &b, &owner, &compare, err, errlen);
    if (st != DB_OK || !compare)
        return st;
    (*count)++;
    const char *id = stripe_json_str(o, "id");
    const char *currency = stripe_json_str(o, "currency");
    recon_view v;
    k->view(stripe_json_str(o, "status"), stripe_json_i64(o, "amount", 0), &v);
    bool status_differs = strcmp(v.status, b.status) != 0;
    if (!b.found) {
        if (v.required)
            recon_report(r, RECON_MISSING_IN_BOOKS, k->object, id, &owner, v.amount, currency,
                         v.status);
    } else if (currency != NULL && strcmp(currency, b.currency) != 0) {
        recon_report(r, RECON_CURRENCY_DIFFERS, k->object, id, &b, v.amount, currency, v.status);
    } else if (v.amount != b.amount) {
        recon_report(r,
                     v.amount_follows_status && status_differs ? RECON_STATUS_DIFFERS
                                                               : RECON_AMOUNT_DIFFERS,
                     k->object, id, &b, v.amount, currency, v.status);
    } else if (v.status_checked && status_differs) {
        recon_report(r, RECON_STATUS_DIFFERS, k->object, id, &b, v.amount, currency, v.status);
    }
    return DB_OK;
}

static db_status recon_refund(recon *r, const json_t *o, bool listed, char *err, size_t errlen)
{
    return recon_object(r, &recon_refunds, &r->stats->refunds, o, listed, err, errlen);
}

static db_status recon_dispute(recon *r, const json_t *o, bool listed, char *err, size_t errlen)
{
    return recon_object(r, &recon_disputes, &r->stats->disputes, o, listed, err, errlen);
}

/* ---- Stripe's lists -------------------------------------------------------- */

typedef db_status (*recon_each_fn)(recon *r, const json_t *o, bool listed, char *err,
                                   size_t errlen);

/* One GET; the parsed body (new reference) or NULL with err. *missing =
 * Stripe answered 404 (the object does not exist there). */
static json_t *recon_get(recon *r, const char *path, stripe_form *f, bool *missing, char *err,
                         size_t errlen)
{
    stripe_call call = {.method = "GET", .path = path, .form = f};
    char cerr[256] = "";
    json_t *body = NULL;
    *missing = false;
    if (stripe_perform(r->sc, &call, cerr, sizeof cerr) != 0)
        ll_failf(err, errlen, "could not read %s from Stripe: %s", path, cerr);
    else if (call.result.http_status == 404)
        *missing = true;
    else if (call.result.outcome != STRIPE_OK || !json_is_object(call.result.body))
        ll_failf(err, errlen, "could not read %s from Stripe: %s (HTTP %ld): %s", path,
                 stripe_outcome_name(call.result.outcome), call.result.http_status,
                 call.result.message);
    else
        body = json_incref(call.result.body);
    stripe_result_free(&call.result);
    stripe_form_free(f);
    return body;
}

/* Pages through the list at path: objects created in [gte, lte], or, with
 * filter ("charge" or "payment_intent") = value, every object of it. */
static db_status recon_list_of(recon *r, const char *path, int64_t gte, int64_t lte,
                               const char *filter, const char *value, recon_each_fn each, char *err,
                               size_t errlen)
{
    char after[STRIPE_ID_MAX] = "";
    for (;;) {
        stripe_form *f = stripe_form_new();
        bool by_window = filter == NULL;
        if (f == NULL ||
            (by_window && (stripe_form_add_i64(f, "created[gte]", gte) != 0 ||
                           stripe_form_add_i64(f, "created[lte]", lte) != 0)) ||
            (!by_window && stripe_form_add(f, filter, value) != 0) ||
            stripe_form_add_i64(f, "limit", 100) != 0 ||
            (after[0] && stripe_form_add(f, "starting_after", after) != 0)) {
            stripe_form_free(f);
            ll_failf(err, errlen, "could not list %s from Stripe: out of memory", path);
            return DB_TRANSIENT;
        }
        bool missing = false;
        json_t *body = recon_get(r, path, f, &missing, err, errlen);
        if (body == NULL) {
            if (missing)
                ll_failf(err, errlen, "could not list %s from Stripe: it answered 404 (not found)",
                         path);
            return DB_TRANSIENT;
        }
        const json_t *data = stripe_json_get(body, "data");
        db_status st = DB_OK;
        size_t i;
        const json_t *o;
        json_array_foreach(data, i, o)
        {
            const char *id = stripe_json_str(o, "id");
            if (id != NULL)
                snprintf(after, sizeof after, "%s", id);
            if (st == DB_OK)
                st = each(r, o, true, err, errlen);
        }
        bool more = json_is_true(stripe_json_get(body, "has_more")) && json_array_size(data) > 0;
        json_decref(body);
        if (st != DB_OK || !more)
            return st;
    }
}

static db_status recon_list(recon *r, const char *path, int64_t gte, int64_t lte,
                            recon_each_fn each, char *err, size_t errlen)
{
    return recon_list_of(r, path, gte, lte, NULL, NULL, each, err, errlen);
}

/* ---- credit notes ---------------------------------------------------------- */

/* One refund of a credit note's charge: counted when it carries the note's
 * metadata[credit_note_id] (billingctl credit-note create sends it). */
static db_status recon_note_refund(recon *r, const json_t *o, bool listed, char *err, size_t errlen)
{
    (void)listed;
    (void)err;
    (void)errlen;
    const char *note = stripe_json_str(o, "metadata.credit_note_id");
    const char *status = stripe_json_str(o, "status");
    if (note != NULL && status != NULL && strcmp(note, r->note) == 0)
        r->note_sum += refund_counted(status, stripe_json_i64(o, "amount", 0));
    return DB_OK;
}

/* The rows of a books' query over the window: $1, $2 = its first and last
 * second (Unix time, inclusive), $3 = the run's firm (0 = all). */
static PGresult *recon_window(recon *r, const char *sql, int64_t gte, int64_t lte, db_status *st,
                              char *err, size_t errlen)
{
    const char *p[] = {DB_I64(gte), DB_I64(lte), DB_I64(r->firm_id)};
    return db_exec(r->c, sql, 3, p, st, err, errlen);
}

/* A credit note's refund part is money the books say went back to the
 * client: Stripe's refunds carrying the note's id, on every charge of its
 * invoice and whenever they were made, must add up to it (a refund that
 * failed or was never made leaves the client owed). */
static db_status recon_credit_notes(recon *r, int64_t gte, int64_t lte, char *err, size_t errlen)
{
    db_status st;
    PGresult *res = recon_window(r, llq_reconcile_credit_notes, gte, lte, &st, err, errlen);
    if (res == NULL)
        return st;
    for (int i = 0; i < PQntuples(res) && st == DB_OK; i++) {
        r->note = PQgetvalue(res, i, 0);
        r->note_sum = 0;
        /* {ch_a,pi:pi_b}: each charge (or intent without one) of the invoice */
        char *list = strdup(PQgetvalue(res, i, 6));
        if (list == NULL) {
            ll_failf(err, errlen, "could not reconcile credit note %s: out of memory", r->note);
            st = DB_TRANSIENT;
            break;
        }
        char *save = NULL;
        for (char *t = strtok_r(list, "{},\"", &save); t != NULL && st == DB_OK;
             t = strtok_r(NULL, "{},\"", &save)) {
            bool pi = strncmp(t, "pi:", 3) == 0;
            st = recon_list_of(r, "/v1/refunds", 0, 0, pi ? "payment_intent" : "charge",
                               pi ? t + 3 : t, recon_note_refund, err, errlen);
        }
        free(list);
        recon_books b = {.found = true,
                         .invoice_id = strtoll(PQgetvalue(res, i, 2), NULL, 10),
                         .firm_id = strtoll(PQgetvalue(res, i, 3), NULL, 10),
                         .amount = strtoll(PQgetvalue(res, i, 4), NULL, 10)};
        snprintf(b.currency, sizeof b.currency, "%s", PQgetvalue(res, i, 5));
        snprintf(b.status, sizeof b.status, "refunded");
        if (st == DB_OK && r->note_sum != b.amount)
            recon_report(r, RECON_AMOUNT_DIFFERS, "credit_note", PQgetvalue(res, i, 1), &b,
                         r->note_sum, b.currency, "");
        if (st == DB_OK)
            r->stats->credit_notes++;
    }
    PQclear(res);
    r->note = NULL;
    return st;
}

/* The books' objects of the window that the lists did not show: read by id
 * (created outside the window: compared the same way; unknown to Stripe:
 * missing_at_stripe). sql returns (stripe id, invoice, firm, amount,
 * currency, status) for $1 <= time < $2, $3 firm (0 = all). */
static db_status recon_books_side(recon *r, const char *sql, const char *object,
                                  const char *path_prefix, recon_each_fn each, int64_t gte,
                                  int64_t lte, char *err, size_t errlen)
{
    db_status st;
    PGresult *res = recon_window(r, sql, gte, lte, &st, err, errlen);
    if (res == NULL)
        return st;
    for (int i = 0; i < PQntuples(res) && st == DB_OK; i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (json_object_get(r->seen, id) != NULL)
            continue;
        char path[STRIPE_ID_MAX + 32];
        snprintf(path, sizeof path, "%s%s", path_prefix, id);
        bool missing = false;
        json_t *o = recon_get(r, path, NULL, &missing, err, errlen);
        if (o != NULL) {
            st = each(r, o, false, err, errlen);
            json_decref(o);
            continue;
        }
        if (!missing) {
            st = DB_TRANSIENT;
            break;
        }
        recon_books b = {.found = true,
                         .invoice_id = strtoll(PQgetvalue(res, i, 1), NULL, 10),
                         .firm_id = strtoll(PQgetvalue(res, i, 2), NULL, 10),
                         .amount = strtoll(PQgetvalue(res, i, 3), NULL, 10)};
        snprintf(b.currency, sizeof b.currency, "%s", PQgetvalue(res, i, 4));
        snprintf(b.status, sizeof b.status, "%s", PQgetvalue(res, i, 5));
        recon_report(r, RECON_MISSING_AT_STRIPE, object, id, &b, -1, "", "");
    }
    PQclear(res);
    return st;
}

/* The books' side of each kind reads its window with the same predicate
 * (once the RECON_WINDOW macro): sql/queries/reconcile_books_*.sql spell it
 * out, each query whole as it runs. */
db_status reconcile_run(db_conn *c, stripe_client *sc, civil_date from, civil_date to,
                        int64_t firm_id, recon_fn fn, void *arg, recon_stats *stats, char *err,
                        size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    if (to.days < from.days) {
        ll_failf(err, errlen, "cannot reconcile: the window ends before it starts");
        ll_hintf(err, errlen, "Give a --to on or after --from.");
        return DB_PERMANENT;
    }
    if (firm_id > 0) {
        db_status st = db_require_firm(c, firm_id, err, errlen);
        if (st != DB_OK)
            return st;
    }
    recon r = {.c = c,
               .sc = sc,
               .firm_id = firm_id,
               .fn = fn,
               .arg = arg,
               .stats = stats,
               .seen = json_object()};
    if (r.seen == NULL) {
        ll_failf(err, errlen, "could not reconcile: out of memory");
        return DB_TRANSIENT;
    }
    int64_t gte = (int64_t)from.days * 86400, lte = (int64_t)to.days * 86400 + 86399;
    db_status st = recon_list(&r, "/v1/payment_intents", gte, lte, recon_pi, err, errlen);
    if (st == DB_OK)
        st = recon_list(&r, "/v1/refunds", gte, lte, recon_refund, err, errlen);
    if (st == DB_OK)
        st = recon_list(&r, "/v1/disputes", gte, lte, recon_dispute, err, errlen);
    if (st == DB_OK)
        st = recon_books_side(&r, llq_reconcile_books_payments, "payment_intent",
                              "/v1/payment_intents/", recon_pi, gte, lte, err, errlen);
    if (st == DB_OK)
        st = recon_books_side(&r, llq_reconcile_books_refunds, "refund", "/v1/refunds/",
                              recon_refund, gte, lte, err, errlen);
    if (st == DB_OK)
        st = recon_books_side(&r, llq_reconcile_books_disputes, "dispute", "/v1/disputes/",
                              recon_dispute, gte, lte, err, errlen);
    if (st == DB_OK)
        st = recon_credit_notes(&r, gte, lte, err, errlen);
    json_decref(r.seen);
    return st;
}
