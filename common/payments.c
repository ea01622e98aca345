/* payments.c: charging invoices through Stripe and recording what came of
 * it (see payments.h for the three steps). Owns payment attempts, payments
 * from Stripe, payment failures with the retry schedule, and the overdue
 * rule; credit application is credit.c's, the wire is stripe.c's. */
#include "ledgerline/payments.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/config.h"
#include "ledgerline/credit.h"
#include "ledgerline/log.h"
#include "ledgerline/shutdown.h"
#include "ledgerline/stripe_event.h"

#define PAY_KEY_MAX 96

static const char *const payments_kind_names[] = {"autopay", "retry"};

static int64_t pay_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool pay_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static void pay_copy(char *dst, size_t dstsz, const PGresult *r, int row, int col)
{
    snprintf(dst, dstsz, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* NULL for an empty string (SQL NULL parameter). */
static const char *pay_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

void payments_schedule_from_env(payments_ctx *ctx)
{
    config_int_list l;
    config_int_list_or_exit("RETRY_SCHEDULE_DAYS", "3,7,14", 1, 365, &l);
    ctx->nretry = l.count < PAYMENTS_MAX_SCHEDULE ? l.count : PAYMENTS_MAX_SCHEDULE;
    for (size_t i = 0; i < ctx->nretry; i++)
        ctx->retry_days[i] = l.values[i];
}

void payments_stats_count(metrics_registry *m, const char *family, const payments_stats *s)
{
    const struct {
        const char *outcome;
        int64_t n;
    } rows[] = {{"succeeded", s->succeeded},   {"failed", s->failed},
                {"processing", s->processing}, {"credit", s->credit_paid},
                {"transient", s->transient},   {"cancelled", s->cancelled},
                {"overdue", s->overdue}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].n > 0)
            metrics_counter_add(m, family, (uint64_t)rows[i].n, "outcome", rows[i].outcome, NULL);
}

int payments_metrics_declare(metrics_registry *m)
{
    return metrics_declare(m, "billing_payment_failures_total", METRICS_COUNTER,
                           "Payment failures recorded, by failure code.");
}

bool payments_is_hard_decline(const char *code)
{
    static const char *const hard[] = {
        "expired_card",          "lost_card",        "stolen_card",
        "pickup_card",           "fraudulent",       "invalid_account",
        "card_not_supported",    "incorrect_number", "authentication_required",
        "payment_method_missing"};
    for (size_t i = 0; code != NULL && i < sizeof hard / sizeof hard[0]; i++)
        if (strcmp(code, hard[i]) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* Recording outcomes (inside the caller's transaction)                      */

db_status payments_apply_success(db_conn *c, int64_t invoice_id, const char *payment_intent,
                                 const char *charge, int64_t amount_cents, civil_date on,
                                 bool *applied, char *err, size_t errlen)
{
    char id[24], amt[24], day[16];
    db_i64(invoice_id, id, sizeof id);
    db_i64(amount_cents, amt, sizeof amt);
    date_format(on, day, sizeof day);
    *applied = false;
    if (amount_cents < 0 || payment_intent == NULL || payment_intent[0] == '\0') {
        snprintf(err, errlen, "payment for invoice %s: no PaymentIntent id or a negative amount",
                 id);
        return DB_PERMANENT;
    }
    /* The unique PaymentIntent id is what makes money count once, however
     * many times (and by whom) its success is reported. */
    const char *p1[] = {id, payment_intent};
    db_status st;
    PGresult *r = db_exec(c,
                          "INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source,"
                          " stripe_payment_intent_id)"
                          " SELECT firm_id, id, 0, 'stripe', $2 FROM billing.invoices WHERE id = $1"
                          " ON CONFLICT (stripe_payment_intent_id) DO NOTHING RETURNING id",
                          2, p1, &st, err, errlen);
    if (r == NULL)
        return st;
    int fresh = PQntuples(r);
    char payment_id[24];
    pay_copy(payment_id, sizeof payment_id, r, 0, 0);
    PQclear(r);
    if (fresh == 0) {
        /* Applied before (a webhook got there first): the attempt that
         * created this intent is finished all the same. */
        const char *pa[] = {payment_intent};
        return db_command(c,
                          "UPDATE billing.payment_attempts SET status = 'succeeded',"
                          " finished_at = now(), failure_code = NULL, failure_message = NULL"
                          " WHERE stripe_payment_intent_id = $1"
                          " AND status IN ('processing', 'transient_error')",
                          1, pa, err, errlen);
    }

    /* Lock the invoice; what is above its balance due becomes credit. */
    r = db_exec(c,
                "SELECT total_cents - amount_paid_cents, status, client_id, firm_id,"
                " EXISTS (SELECT 1 FROM billing.payment_attempts a"
                "         WHERE a.invoice_id = i.id AND a.stripe_payment_intent_id = $2)"
                " FROM billing.invoices i WHERE id = $1 FOR UPDATE",
                2, p1, &st, err, errlen);
    if (r == NULL)
        return st;
    int64_t due = pay_i64(r, 0, 0);
    char old_status[24];
    pay_copy(old_status, sizeof old_status, r, 0, 1);
    int64_t client_id = pay_i64(r, 0, 2);
    bool autopaid = pay_bool(r, 0, 4);
    PQclear(r);
    int64_t apply = amount_cents < due ? amount_cents : due;
    int64_t over = amount_cents - apply;
    char ap[24], ov[24];
    db_i64(apply, ap, sizeof ap);
    db_i64(over, ov, sizeof ov);
    const char *p3[] = {id, ap, day, payment_intent, pay_null(charge), payment_id};
    r = db_exec(c,
                "WITH pay AS (UPDATE billing.payments SET amount_cents = $2::bigint "
                "WHERE id = $6::bigint),"
                " inv AS (UPDATE billing.invoices SET"
                "  amount_paid_cents = amount_paid_cents + $2::bigint,"
                "  status = CASE WHEN status IN ('draft', 'sent', 'partial', 'overdue', "
                "'failed')"
                "   THEN CASE WHEN amount_paid_cents + $2::bigint = total_cents THEN "
                "'paid' ELSE 'partial' END"
                "   ELSE status END,"
                "  paid_date = CASE WHEN amount_paid_cents + $2::bigint = total_cents"
                "   THEN coalesce(paid_date, $3::date) ELSE paid_date END,"
                "  autopay_status = CASE WHEN autopay_opt_in THEN 'succeeded' ELSE "
                "autopay_status END,"
                "  next_payment_retry_at = NULL,"
                "  stripe_payment_intent_id = $4, stripe_charge_id = coalesce($5, "
                "stripe_charge_id)"
                "  WHERE id = $1::bigint RETURNING status),"
                " att AS (UPDATE billing.payment_attempts SET status = 'succeeded', "
                "finished_at = now(),"
                "  failure_code = NULL, failure_message = NULL"
                "  WHERE stripe_payment_intent_id = $4 AND status <> 'succeeded')"
                " SELECT status FROM inv",
                6, p3, &st, err, errlen);
    if (r == NULL)
        return st;
    char new_status[24];
    pay_copy(new_status, sizeof new_status, r, 0, 0);
    PQclear(r);

    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"invoice_id\":%" PRId64 ",\"payment_id\":%s,\"amount_cents\":%" PRId64
             ",\"received_cents\":%" PRId64 ",\"overpayment_cents\":%" PRId64 "}",
             invoice_id, payment_id, apply, amount_cents, over);
    const char *p4[] = {id, autopaid ? "invoice_autopaid" : "payment_received", meta,
                        payment_intent};
    st = db_command(c,
                    "SELECT billing.audit(firm_id, $2, 'INFO', NULL,"
                    " $3::jsonb || jsonb_build_object('payment_intent', $4::text))"
                    " FROM billing.invoices WHERE id = $1::bigint",
                    4, p4, err, errlen);
    if (st != DB_OK)
        return st;
    if (strcmp(new_status, "paid") == 0 && strcmp(old_status, "paid") != 0) {
        const char *p5[] = {id};
        st = db_command(c, "SELECT billing.invoice_event($1::bigint, 'invoice.paid', 0, NULL)", 1,
                        p5, err, errlen);
        if (st != DB_OK)
            return st;
    }
    if (over > 0) {
        char desc[256];
        snprintf(desc, sizeof desc, "Overpayment of invoice %" PRId64 " by %s", invoice_id,
                 payment_intent);
        credit_add_params cp = {.client_id = client_id,
                                .amount_cents = over,
                                .source = "overpayment",
                                .description = desc,
                                .source_invoice_id = invoice_id};
        int64_t entry = 0;
        st = credit_add(c, &cp, &entry, err, errlen);
        if (st != DB_OK)
            return st;
    }
    *applied = true;
    return DB_OK;
}

db_status payments_mark_processing(db_conn *c, int64_t invoice_id, const char *payment_intent,
                                   char *err, size_t errlen)
{
    char id[24];
    const char *p[] = {db_i64(invoice_id, id, sizeof id), payment_intent};
    return db_command(c,
                      "WITH att AS (UPDATE billing.payment_attempts SET status = 'processing'"
                      "  WHERE stripe_payment_intent_id = $2 AND status = 'transient_error')"
                      " UPDATE billing.invoices SET autopay_status = 'processing',"
                      "  stripe_payment_intent_id = $2"
                      " WHERE id = $1::bigint AND status NOT IN ('paid', 'refunded', "
                      "'charged_back')",
                      2, p, err, errlen);
}

/* Finds (and locks) the attempt a failure belongs to, writing one for an
 * intent we did not create. *already = true when it is already counted. */
static db_status pay_failure_attempt(db_conn *c, const payments_failure *f, int64_t *attempt_id,
                                     bool *already, char *err, size_t errlen)
{
    char inv[24], aid[24], amt[24];
    db_i64(f->invoice_id, inv, sizeof inv);
    db_i64(f->attempt_id, aid, sizeof aid);
    db_i64(f->amount_cents, amt, sizeof amt);
    const char *p[] = {aid, pay_null(f->payment_intent), inv};
    db_status st;
    PGresult *r = db_exec(c,
                          "SELECT id, status, invoice_id FROM billing.payment_attempts"
                          " WHERE (id = $1::bigint AND $1::bigint > 0)"
                          "    OR ($1::bigint = 0 AND stripe_payment_intent_id = $2)"
                          " FOR UPDATE",
                          2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *already = false;
    if (PQntuples(r) > 0) {
        *attempt_id = pay_i64(r, 0, 0);
        const char *status = PQgetvalue(r, 0, 1);
        *already = strcmp(status, "failed") == 0 || strcmp(status, "succeeded") == 0;
        PQclear(r);
        return DB_OK;
    }
    PQclear(r);
    /* A failure of an intent we have no attempt for (created elsewhere):
     * written as an attempt so a second report of it counts once. */
    char key[PAY_KEY_MAX];
    snprintf(key, sizeof key, "stripe:%s", f->payment_intent ? f->payment_intent : "");
    const char *p2[] = {inv, key, pay_null(f->payment_intent), amt};
    r = db_exec(c,
                "INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, "
                "kind,"
                " idempotency_key, amount_cents, stripe_payment_intent_id, status, "
                "currency)"
                " SELECT i.firm_id, i.id,"
                "  (SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts"
                "   WHERE invoice_id = i.id), 'autopay', $2,"
                "  CASE WHEN $4::bigint > 0 THEN $4::bigint"
                "   ELSE greatest(i.total_cents - i.amount_paid_cents, 0) END, $3, "
                "'processing',"
                "  i.currency"
                " FROM billing.invoices i WHERE i.id = $1::bigint RETURNING id",
                4, p2, &st, err, errlen);
    if (r == NULL)
        return st;
    *attempt_id = pay_i64(r, 0, 0);
    PQclear(r);
    return DB_OK;
}

db_status payments_record_failure(db_conn *c, const payments_ctx *ctx, const payments_failure *f,
                                  bool *recorded, char *err, size_t errlen)
{
    *recorded = false;
    int64_t attempt_id = 0;
    bool already = false;
    db_status st = pay_failure_attempt(c, f, &attempt_id, &already, err, errlen);
    if (st != DB_OK || already)
        return st;
    const char *code = f->code && f->code[0] ? f->code : "unknown";
    char inv[24], aid[24];
    db_i64(f->invoice_id, inv, sizeof inv);
    db_i64(attempt_id, aid, sizeof aid);
    const char *pa[] = {aid, code, f->message ? f->message : "", pay_null(f->payment_intent),
                        f->failed_at};
    st = db_command(c,
                    "UPDATE billing.payment_attempts SET status = 'failed', failure_code = "
                    "$2,"
                    " failure_message = $3, finished_at = now(), failed_at = $5::timestamptz,"
                    " stripe_payment_intent_id = coalesce($4, stripe_payment_intent_id)"
                    " WHERE id = $1::bigint",
                    5, pa, err, errlen);
    if (st != DB_OK)
        return st;

    const char *pi[] = {inv};
    PGresult *r = db_exec(c,
                          "SELECT status, payment_retry_count FROM billing.invoices"
                          " WHERE id = $1::bigint FOR UPDATE",
                          1, pi, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "invoice %s does not exist", inv);
        return DB_PERMANENT;
    }
    char status[24];
    pay_copy(status, sizeof status, r, 0, 0);
    int64_t n = pay_i64(r, 0, 1) + 1;
    PQclear(r);
    /* Money already settled (paid by credit meanwhile, refunded, disputed):
     * the attempt is recorded, the invoice is not a failure. */
    if (strcmp(status, "sent") != 0 && strcmp(status, "partial") != 0 &&
        strcmp(status, "overdue") != 0 && strcmp(status, "failed") != 0)
        return DB_OK;

    bool hard = payments_is_hard_decline(code);
    bool exhausted = !hard && (size_t)n > ctx->nretry;
    char days[24], nbuf[24];
    int64_t delay = (!hard && !exhausted) ? ctx->retry_days[n - 1] : 0;
    db_i64(delay, days, sizeof days);
    db_i64(n, nbuf, sizeof nbuf);
    const char *next_action = hard        ? "payment_retry_skipped"
                              : exhausted ? "payment_retry_exhausted"
                                          : "payment_retry_scheduled";
    const char *pu[] = {inv,
                        exhausted ? "overdue" : "failed",
                        f->failed_at,
                        f->message ? f->message : "",
                        code,
                        nbuf,
                        (hard || exhausted) ? NULL : days,
                        pay_null(f->payment_intent),
                        aid,
                        next_action,
                        hard ? "true" : "false"};
    r = db_exec(c,
                "WITH u AS (UPDATE billing.invoices SET status = $2, payment_failed_at = "
                "$3::timestamptz,"
                "  payment_failure_reason = $4, payment_failure_code = $5,"
                "  payment_retry_count = $6::int, last_payment_retry_at = "
                "$3::timestamptz,"
                "  next_payment_retry_at = (($3::timestamptz AT TIME ZONE 'UTC')::date + "
                "$7::int)"
                "   ::timestamp AT TIME ZONE 'UTC',"
                "  autopay_status = CASE WHEN autopay_opt_in THEN 'failed' ELSE "
                "autopay_status END,"
                "  stripe_payment_intent_id = coalesce($8, stripe_payment_intent_id)"
                "  WHERE id = $1::bigint"
                "  RETURNING firm_id, next_payment_retry_at, total_cents - "
                "amount_paid_cents AS due)"
                " SELECT billing.audit(u.firm_id, 'payment_failed', 'WARNING', NULL,"
                "   jsonb_build_object('invoice_id', $1::bigint, 'attempt_id', "
                "$9::bigint,"
                "    'failure_code', $5, 'failure_reason', $4, 'retry_count', $6::int,"
                "    'payment_intent', $8, 'amount_cents', u.due)),"
                "  billing.audit(u.firm_id, $10, CASE WHEN $10 = "
                "'payment_retry_exhausted'"
                "   THEN 'WARNING' ELSE 'INFO' END, NULL,"
                "   jsonb_build_object('invoice_id', $1::bigint, 'failure_code', $5,"
                "    'retry_count', $6::int, 'next_payment_retry_at', "
                "u.next_payment_retry_at))"
                " FROM u",
                10, pu, &st, err, errlen);
    if (r == NULL)
        return st;
    PQclear(r);
    const char *pe[] = {inv, nbuf, code, hard ? "true" : "false"};
    st = db_command(c,
                    "SELECT billing.invoice_event($1::bigint, 'invoice.payment_failed', "
                    "$2::int,"
                    " jsonb_build_object('failure_code', $3::text, 'retry_count', $2::int,"
                    "  'customer_action_required', $4::boolean))",
                    4, pe, err, errlen);
    if (st == DB_OK && exhausted)
        st = db_command(c, "SELECT billing.invoice_event($1::bigint, 'invoice.overdue', 0, NULL)",
                        1, pi, err, errlen);
    if (st == DB_OK)
        *recorded = true;
    if (st == DB_OK && ctx->metrics != NULL)
        metrics_counter_add(ctx->metrics, "billing_payment_failures_total", 1, "code", code, NULL);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Step 1: prepare                                                           */

typedef enum { JOB_NONE = 0, JOB_CALL } pay_job_kind;

typedef struct {
    pay_job_kind what;
    int64_t invoice_id;
    int64_t attempt_id;
    int64_t amount;
    char key[PAY_KEY_MAX];
    char currency[8];
    char pm[128];
    char customer[128];
    int64_t firm_id;
    stripe_form *form;
} pay_job;

typedef struct {
    const payments_ctx *ctx;
    payments_kind kind;
    civil_date on;
    pay_job *job;
    payments_stats *stats;
} pay_prepare_arg;

/* The unfinished attempt of an invoice, if any: replayed as it was. Returns
 * 1 when the job is set (or the invoice awaits a webhook), 0 when none. */
static int pay_unfinished(db_conn *c, pay_prepare_arg *a, const char *inv, db_status *st, char *err,
                          size_t errlen)
{
    const char *p[] = {inv};
    PGresult *r = db_exec(c,
                          "SELECT id, idempotency_key, amount_cents, stripe_payment_intent_id,"
                          " payment_method_id, stripe_customer_id, currency, status, firm_id"
                          " FROM billing.payment_attempts"
                          " WHERE invoice_id = $1::bigint AND status IN ('processing', "
                          "'transient_error')"
                          " ORDER BY attempt_no DESC LIMIT 1",
                          1, p, st, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    pay_job *j = a->job;
    bool awaiting = !PQgetisnull(r, 0, 3) && strcmp(PQgetvalue(r, 0, 7), "processing") == 0;
    if (awaiting || PQgetisnull(r, 0, 4)) {
        /* A processing PaymentIntent: its webhook decides. */
        a->stats->skipped++;
        PQclear(r);
        return 1;
    }
    j->what = JOB_CALL;
    j->attempt_id = pay_i64(r, 0, 0);
    pay_copy(j->key, sizeof j->key, r, 0, 1);
    j->amount = pay_i64(r, 0, 2);
    pay_copy(j->pm, sizeof j->pm, r, 0, 4);
    pay_copy(j->customer, sizeof j->customer, r, 0, 5);
    pay_copy(j->currency, sizeof j->currency, r, 0, 6);
    j->firm_id = pay_i64(r, 0, 8);
    PQclear(r);
    *st = db_command(c,
                     "UPDATE billing.invoices SET autopay_status = 'processing'"
                     " WHERE id = $1::bigint AND autopay_opt_in",
                     1, p, err, errlen);
    return *st == DB_OK ? 1 : -1;
}

static db_status pay_cancel(db_conn *c, const char *inv, char *err, size_t errlen)
{
    const char *p[] = {inv};
    return db_command(c,
                      "WITH u AS (UPDATE billing.invoices SET autopay_status = 'cancelled',"
                      "  autopay_opt_in = false, autopay_next_charge_at = NULL,"
                      "  next_payment_retry_at = NULL WHERE id = $1::bigint"
                      "  RETURNING id, firm_id, client_id)"
                      " SELECT billing.audit(firm_id, 'autopay_cancelled', 'INFO', NULL,"
                      "  jsonb_build_object('invoice_id', id, 'client_id', client_id,"
                      "   'reason', 'client autopay disabled')) FROM u",
                      1, p, err, errlen);
}

static db_status pay_prepare(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_prepare_arg *a = arg;
    pay_job *j = a->job;
    char inv[24], day[16];
    db_i64(j->invoice_id, inv, sizeof inv);
    date_format(a->on, day, sizeof day);
    db_status st;
    /* The invoice row is locked first: two workers preparing the same
     * invoice take turns, and the second sees the first one's attempt
     * (below) instead of starting another with a new key. */
    const char *p[] = {inv, day};
    PGresult *r = db_exec(c,
                          "SELECT i.firm_id, i.status, i.total_cents - i.amount_paid_cents, "
                          "i.currency,"
                          " i.autopay_opt_in, i.autopay_status,"
                          " coalesce(nullif(c.autopay_payment_method_id, ''), "
                          "nullif(i.autopay_payment_method_id, '')),"
                          " c.stripe_customer_id, c.autopay_enabled,"
                          " coalesce(i.autopay_next_charge_at < ($2::date + 1)::timestamp AT TIME "
                          "ZONE 'UTC', false),"
                          " coalesce(i.next_payment_retry_at < ($2::date + 1)::timestamp AT TIME "
                          "ZONE 'UTC', false), i.currency = c.currency"
                          " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
                          " WHERE i.id = $1::bigint FOR UPDATE OF i",
                          2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        a->stats->skipped++;
        return DB_OK;
    }
    j->firm_id = pay_i64(r, 0, 0);
    char status[24], autopay_status[24];
    pay_copy(status, sizeof status, r, 0, 1);
    int64_t due = pay_i64(r, 0, 2);
    pay_copy(j->currency, sizeof j->currency, r, 0, 3);
    bool opt_in = pay_bool(r, 0, 4);
    pay_copy(autopay_status, sizeof autopay_status, r, 0, 5);
    pay_copy(j->pm, sizeof j->pm, r, 0, 6);
    pay_copy(j->customer, sizeof j->customer, r, 0, 7);
    bool client_on = pay_bool(r, 0, 8);
    bool autopay_due = pay_bool(r, 0, 9);
    bool retry_due = pay_bool(r, 0, 10);
    bool same_currency = pay_bool(r, 0, 11);
    PQclear(r);
    int u = pay_unfinished(c, a, inv, &st, err, errlen);
    if (u != 0)
        return u < 0 ? st : DB_OK;

    bool due_now;
    if (a->kind == PAYMENTS_AUTOPAY)
        due_now = opt_in &&
                  (strcmp(autopay_status, "scheduled") == 0 ||
                   strcmp(autopay_status, "processing") == 0) &&
                  autopay_due &&
                  (strcmp(status, "sent") == 0 || strcmp(status, "partial") == 0 ||
                   strcmp(status, "overdue") == 0);
    else
        due_now = opt_in && strcmp(status, "failed") == 0 && retry_due;
    if (!due_now || due <= 0) {
        a->stats->skipped++;
        return DB_OK;
    }
    if (!client_on) {
        a->stats->cancelled++;
        return pay_cancel(c, inv, err, errlen);
    }

    /* Credit first (section 4); only the remainder is charged. */
    /* The ledger is kept in the client's currency: an invoice in another
     * currency is charged in full. */
    int64_t applied = 0;
    if (same_currency)
        st = credit_apply_to_invoice(c, j->invoice_id, 0, a->on, NULL, &applied, err, errlen);
    if (st != DB_OK)
        return st;
    due -= applied;
    if (due <= 0) {
        a->stats->credit_paid++;
        return db_command(c,
                          "UPDATE billing.invoices SET autopay_status = 'succeeded',"
                          " next_payment_retry_at = NULL WHERE id = $1::bigint",
                          1, p, err, errlen);
    }

    r = db_exec(c,
                "SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts"
                " WHERE invoice_id = $1::bigint",
                1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int64_t attempt_no = pay_i64(r, 0, 0);
    PQclear(r);
    snprintf(j->key, sizeof j->key, "%s:%s:%" PRId64, payments_kind_names[a->kind], inv,
             attempt_no);
    j->amount = due;
    char amt[24], no[24];
    const char *pi[] = {inv,
                        db_i64(attempt_no, no, sizeof no),
                        payments_kind_names[a->kind],
                        j->key,
                        db_i64(due, amt, sizeof amt),
                        pay_null(j->pm),
                        pay_null(j->customer),
                        j->currency};
    r = db_exec(c,
                "WITH a AS (INSERT INTO billing.payment_attempts (firm_id, invoice_id, "
                "attempt_no,"
                "  kind, idempotency_key, amount_cents, status, payment_method_id,"
                "  stripe_customer_id, currency)"
                "  SELECT firm_id, id, $2::int, $3, $4, $5::bigint, 'processing', $6, "
                "$7, $8"
                "  FROM billing.invoices WHERE id = $1::bigint RETURNING id),"
                " i AS (UPDATE billing.invoices SET autopay_status = 'processing',"
                "  autopay_last_attempt_at = now() WHERE id = $1::bigint)"
                " SELECT id FROM a",
                8, pi, &st, err, errlen);
    if (r == NULL)
        return st;
    j->attempt_id = pay_i64(r, 0, 0);
    PQclear(r);
    if (j->pm[0] == '\0') {
        /* Nothing to charge with: a failure, without calling Stripe. */
        char at[40];
        snprintf(at, sizeof at, "%sT00:00:00Z", day);
        payments_failure f = {.invoice_id = j->invoice_id,
                              .attempt_id = j->attempt_id,
                              .code = "payment_method_missing",
                              .message = "autopay is enabled but no payment method is stored",
                              .failed_at = at};
        bool recorded = false;
        st = payments_record_failure(c, a->ctx, &f, &recorded, err, errlen);
        if (st == DB_OK)
            a->stats->failed++;
        return st;
    }
    j->what = JOB_CALL;
    return DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Step 3: apply the answer                                                  */

typedef struct {
    const payments_ctx *ctx;
    civil_date on;
    pay_job *job;
    stripe_result *res;
    payments_stats *stats;
} pay_apply_arg;

static db_status pay_apply(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_apply_arg *a = arg;
    pay_job *j = a->job;
    const stripe_result *res = a->res;
    char aid[24], day[16], at[40];
    db_i64(j->attempt_id, aid, sizeof aid);
    date_format(a->on, day, sizeof day);
    snprintf(at, sizeof at, "%sT00:00:00Z", day);
    const char *p[] = {aid};
    db_status st;
    PGresult *r = db_exec(c,
                          "SELECT status FROM billing.payment_attempts WHERE id = $1::bigint"
                          " FOR UPDATE",
                          1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    bool open = PQntuples(r) > 0 && (strcmp(PQgetvalue(r, 0, 0), "processing") == 0 ||
                                     strcmp(PQgetvalue(r, 0, 0), "transient_error") == 0);
    PQclear(r);
    if (!open) {
        a->stats->skipped++; /* a webhook got there first */
        return DB_OK;
    }
    const char *pi = pay_null(res->object_id);
    if (stripe_result_transient(res)) {
        const char *pt[] = {aid, res->message};
        a->stats->transient++;
        return db_command(c,
                          "WITH a AS (UPDATE billing.payment_attempts SET status = "
                          "'transient_error',"
                          "  failure_message = $2 WHERE id = $1::bigint RETURNING invoice_id)"
                          " UPDATE billing.invoices i SET autopay_status ="
                          "  CASE WHEN i.status = 'failed' THEN 'failed' ELSE 'scheduled' END"
                          " FROM a WHERE i.id = a.invoice_id AND i.autopay_opt_in",
                          2, pt, err, errlen);
    }
    if (pi != NULL) {
        const char *pp[] = {aid, pi};
        st = db_command(c,
                        "UPDATE billing.payment_attempts SET stripe_payment_intent_id = $2"
                        " WHERE id = $1::bigint",
                        2, pp, err, errlen);
        if (st != DB_OK)
            return st;
    }
    a->stats->charged++;
    if (res->outcome == STRIPE_OK && strcmp(res->object_status, "succeeded") == 0 && pi) {
        bool applied = false;
        int64_t amount = res->amount >= 0 ? res->amount : j->amount;
        int64_t received = stripe_json_i64(res->body, "amount_received", -1);
        if (received >= 0)
            amount = received;
        st = payments_apply_success(c, j->invoice_id, pi, pay_null(res->latest_charge), amount,
                                    a->on, &applied, err, errlen);
        if (st == DB_OK)
            a->stats->succeeded++;
        return st;
    }
    if (res->outcome == STRIPE_OK && strcmp(res->object_status, "processing") == 0 && pi) {
        a->stats->processing++;
        return payments_mark_processing(c, j->invoice_id, pi, err, errlen);
    }
    if (res->outcome == STRIPE_IDEMPOTENCY_ERROR) {
        /* Our key was used with other parameters: never start a new attempt
         * on our own (that could charge twice); an operator decides. */
        const char *pc[] = {aid, res->message};
        log_msg(LOG_ERROR, "idempotency key reused with other parameters", "attempt_id", aid,
                "idempotency_key", j->key, "stripe_message", res->message, NULL);
        return db_command(c,
                          "WITH a AS (UPDATE billing.payment_attempts SET status = 'failed',"
                          "  failure_code = 'idempotency_error', failure_message = $2, "
                          "finished_at = now()"
                          "  WHERE id = $1::bigint RETURNING invoice_id, firm_id)"
                          " SELECT billing.audit(a.firm_id, 'payment_attempt_conflict', "
                          "'CRITICAL', NULL,"
                          "  jsonb_build_object('attempt_id', $1::bigint, 'invoice_id', "
                          "a.invoice_id,"
                          "   'stripe_message', $2)) FROM a",
                          2, pc, err, errlen);
    }
    /* A decline, a request Stripe refused, or an intent that cannot go on
     * without the customer: a payment failure. */
    const char *code = res->decline_code[0] ? res->decline_code
                       : res->code[0]       ? res->code
                       : strcmp(res->object_status, "requires_action") == 0
                           ? "authentication_required"
                           : stripe_outcome_name(res->outcome);
    payments_failure f = {.invoice_id = j->invoice_id,
                          .attempt_id = j->attempt_id,
                          .payment_intent = pi,
                          .code = code,
                          .message = res->message[0] ? res->message : res->object_status,
                          .failed_at = at};
    bool recorded = false;
    st = payments_record_failure(c, a->ctx, &f, &recorded, err, errlen);
    if (st == DB_OK && recorded)
        a->stats->failed++;
    return st;
}

/* ------------------------------------------------------------------------ */
/* Step 2 and the whole                                                      */

/* Calls Stripe again for the jobs todo_in[0..m) whose first answer was
 * transient, up to ctx->transient_tries calls in all with the same key
 * (backing off, longer after a rate limit). */
static int pay_call_again(payments_ctx *ctx, stripe_call *calls, const size_t *todo_in, size_t m,
                          bool limited, char *err, size_t errlen)
{
    size_t *todo = malloc((m ? m : 1) * sizeof *todo);
    stripe_call *round = malloc((m ? m : 1) * sizeof *round);
    if (todo == NULL || round == NULL) {
        free(todo);
        free(round);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(todo, todo_in, m * sizeof *todo);
    int tries = ctx->transient_tries > 0 ? ctx->transient_tries : 3;
    int backoff = ctx->backoff_ms > 0 ? ctx->backoff_ms : 500;
    int rc = 0;
    for (int t = 1; m > 0 && rc == 0 && t < tries; t++) {
        if (!shutdown_sleep_ms(limited ? backoff * 4 << (t - 1) : backoff << (t - 1)))
            break; /* stopping: what is left is replayed by the next tick */
        for (size_t k = 0; k < m; k++) {
            round[k] = calls[todo[k]];
            memset(&round[k].result, 0, sizeof round[k].result);
        }
        rc = stripe_perform_many(ctx->stripe, round, m, err, errlen);
        size_t left = 0;
        limited = false;
        for (size_t k = 0; k < m; k++) {
            stripe_result_free(&calls[todo[k]].result);
            calls[todo[k]].result = round[k].result;
            calls[todo[k]].latency_us = round[k].latency_us;
            if (stripe_result_transient(&round[k].result) && t + 1 < tries) {
                limited |= round[k].result.outcome == STRIPE_RATE_LIMITED;
                todo[left++] = todo[k];
            }
        }
        m = left;
    }
    free(todo);
    free(round);
    return rc;
}

/* One payments_charge run: the invoices are prepared one at a time just
 * before their call starts (stripe_perform_stream asks when the cap allows
 * one more), and each answer is applied as soon as it arrives, so the
 * database work of one invoice overlaps the calls of the others in flight
 * and throughput is bound by the rate cap, not by prepare + call + apply in
 * turn. Transient answers are set aside and replayed after the stream. */
typedef struct {
    payments_ctx *ctx;
    payments_kind kind;
    civil_date on;
    payments_stats *stats;
    const int64_t *ids;
    size_t n, next;       /* next invoice to prepare */
    pay_job *jobs;
    stripe_call *calls;
    size_t *again;        /* jobs whose first answer was transient */
    size_t nagain;
    bool limited;         /* one of them was rate limited */
    db_status st;         /* first transient failure: stops the run */
    char *err;
    size_t errlen;
} pay_run;

static void pay_apply_one(pay_run *r, size_t i)
{
    pay_job *j = &r->jobs[i];
    stripe_call *call = &r->calls[i];
    pay_apply_arg aa = {
        .ctx = r->ctx, .on = r->on, .job = j, .res = &call->result, .stats = r->stats};
    db_status st = db_run_tx(r->ctx->db, pay_apply, &aa, r->err, r->errlen);
    char id[24];
    log_msg(st == DB_OK ? LOG_INFO : LOG_ERROR, "charge answered", "invoice_id",
            db_i64(j->invoice_id, id, sizeof id), "idempotency_key", j->key, "outcome",
            stripe_outcome_name(call->result.outcome), "payment_intent", call->result.object_id,
            "stripe_status", call->result.object_status, "decline_code",
            call->result.decline_code, "request_id", call->result.request_id, NULL);
    if (st == DB_PERMANENT) {
        log_msg(LOG_ERROR, "charge answer could not be recorded", "invoice_id", id, "error",
                r->err, NULL);
        st = DB_OK; /* the attempt stays open and is replayed with its key */
    }
    if (st != DB_OK && r->st == DB_OK)
        r->st = st;
    stripe_result_free(&call->result);
}

/* Step 1 for the next invoice that needs a call; NULL when none is left
 * (or the database failed: what is prepared is still called and applied). */
static stripe_call *pay_run_next(void *arg, bool *finished)
{
    pay_run *r = arg;
    while (r->st == DB_OK && r->next < r->n) {
        size_t i = r->next++;
        pay_job *j = &r->jobs[i];
        j->invoice_id = r->ids[i];
        r->stats->considered++;
        pay_prepare_arg pa = {
            .ctx = r->ctx, .kind = r->kind, .on = r->on, .job = j, .stats = r->stats};
        db_status st = db_run_tx(r->ctx->db, pay_prepare, &pa, r->err, r->errlen);
        if (st == DB_PERMANENT) {
            /* One invoice the database refuses must not block the others. */
            char id[24];
            log_msg(LOG_ERROR, "invoice cannot be charged", "invoice_id",
                    db_i64(j->invoice_id, id, sizeof id), "error", r->err, NULL);
            j->what = JOB_NONE;
            continue;
        }
        if (st != DB_OK) {
            r->st = st;
            break;
        }
        if (j->what != JOB_CALL)
            continue;
        j->form = stripe_form_payment_intent(j->amount, j->currency, j->customer, j->pm,
                                             j->invoice_id, j->firm_id, j->key);
        if (j->form == NULL) {
            snprintf(r->err, r->errlen, "out of memory");
            r->st = DB_TRANSIENT;
            break;
        }
        r->calls[i] = (stripe_call){.method = "POST",
                                    .path = "/v1/payment_intents",
                                    .form = j->form,
                                    .idempotency_key = j->key};
        return &r->calls[i];
    }
    *finished = true;
    return NULL;
}

/* Step 3 as each answer arrives (transient ones wait for the replays). */
static void pay_run_done(stripe_call *call, void *arg)
{
    pay_run *r = arg;
    size_t i = (size_t)(call - r->calls);
    int tries = r->ctx->transient_tries > 0 ? r->ctx->transient_tries : 3;
    if (stripe_result_transient(&call->result) && tries > 1) {
        r->limited |= call->result.outcome == STRIPE_RATE_LIMITED;
        r->again[r->nagain++] = i;
        return;
    }
    if (r->st != DB_OK)
        return; /* the attempt stays open and is replayed with its key */
    pay_apply_one(r, i);
}

db_status payments_charge(payments_ctx *ctx, payments_kind kind, const int64_t *ids, size_t n,
                          civil_date on, payments_stats *stats, char *err, size_t errlen)
{
    if (n == 0)
        return DB_OK;
    pay_run r = {.ctx = ctx, .kind = kind, .on = on, .stats = stats, .ids = ids, .n = n,
                 .st = DB_OK, .err = err, .errlen = errlen};
    r.jobs = calloc(n, sizeof *r.jobs);
    r.calls = calloc(n, sizeof *r.calls);
    r.again = calloc(n, sizeof *r.again);
    if (r.jobs == NULL || r.calls == NULL || r.again == NULL) {
        free(r.jobs);
        free(r.calls);
        free(r.again);
        snprintf(err, errlen, "out of memory");
        return DB_TRANSIENT;
    }
    /* The stream's own err buffer: a database message in err must survive. */
    char serr[256];
    if (stripe_perform_stream(ctx->stripe, pay_run_next, pay_run_done, &r, serr, sizeof serr) !=
        0) {
        if (r.st == DB_OK)
            snprintf(err, errlen, "%s", serr);
        r.st = DB_TRANSIENT;
    }
    if (r.st == DB_OK && r.nagain > 0) {
        if (pay_call_again(ctx, r.calls, r.again, r.nagain, r.limited, err, errlen) != 0)
            r.st = DB_TRANSIENT;
        for (size_t k = 0; k < r.nagain && r.st == DB_OK; k++)
            pay_apply_one(&r, r.again[k]);
    }
    for (size_t i = 0; i < n; i++) {
        stripe_result_free(&r.calls[i].result);
        stripe_form_free(r.jobs[i].form);
    }
    free(r.jobs);
    free(r.calls);
    free(r.again);
    return r.st;
}

/* ------------------------------------------------------------------------ */
/* Ticks                                                                     */

/* The shard and firm filter every tick selection shares: $2 shards, $3
 * shard, $4 firm (NULL = all). */
#define PAY_SHARD_FILTER                                                                           \
    " AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id "                    \
    "= $4::bigint)"

static const char pay_due_autopay_sql[] =
    "SELECT i.id FROM billing.invoices i"
    " WHERE i.autopay_opt_in AND i.autopay_status IN ('scheduled', "
    "'processing')"
    " AND i.status IN ('sent', 'partial', 'overdue')"
    " AND i.autopay_next_charge_at < ($1::date + 1)::timestamp AT TIME ZONE "
    "'UTC'" PAY_SHARD_FILTER " AND i.id > $5::bigint ORDER BY i.id LIMIT $6::int";

static const char pay_due_retry_sql[] =
    "SELECT i.id FROM billing.invoices i"
    " WHERE i.status = 'failed' AND i.autopay_opt_in AND "
    "i.next_payment_retry_at IS NOT NULL"
    " AND i.next_payment_retry_at < ($1::date + 1)::timestamp AT TIME ZONE "
    "'UTC'" PAY_SHARD_FILTER " AND i.id > $5::bigint ORDER BY i.id LIMIT $6::int";

/* Invoices past their due date, unpaid and not in a retry cycle (section 6):
 * overdue on the first business date after the due date. */
#define PAY_OVERDUE_WHERE                                                                          \
    " WHERE i.status IN ('sent', 'partial', 'failed') AND i.due_date < $1::date"                   \
    " AND NOT (i.status = 'failed' AND i.next_payment_retry_at IS NOT NULL)"                       \
    " AND i.autopay_status <> 'processing'" PAY_SHARD_FILTER

typedef struct {
    const tick_msg *t;
    int64_t count;
} pay_tick_arg;

static void pay_tick_params(const tick_msg *t, char day[16], char shards[24], char shard[24],
                            char firm[24])
{
    date_format(t->business_date, day, 16);
    db_i64(t->shards, shards, 24);
    db_i64(t->shard, shard, 24);
    db_i64(t->firm_id, firm, 24);
}

static db_status pay_overdue_tx(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_tick_arg *a = arg;
    char day[16], shards[24], shard[24], firm[24];
    pay_tick_params(a->t, day, shards, shard, firm);
    const char *p[] = {day, shards, shard, a->t->firm_id ? firm : NULL};
    db_status st;
    PGresult *r = db_exec(
        c, "UPDATE billing.invoices i SET status = 'overdue'" PAY_OVERDUE_WHERE " RETURNING i.id",
        4, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->count = PQntuples(r);
    if (a->count == 0) {
        PQclear(r);
        return DB_OK;
    }
    /* Audit and events in a second statement: a function called from the
     * UPDATE's own statement would not see the new status. */
    size_t cap = (size_t)a->count * 21 + 3, len = 0;
    char *ids = malloc(cap);
    if (ids == NULL) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return DB_TRANSIENT;
    }
    ids[len++] = '{';
    for (int i = 0; i < PQntuples(r); i++)
        len += (size_t)snprintf(ids + len, cap - len, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
    snprintf(ids + len, cap - len, "}");
    PQclear(r);
    const char *pa[] = {day, ids};
    st = db_command(c,
                    "SELECT billing.audit(i.firm_id, 'invoice_overdue', 'WARNING', NULL,"
                    "  jsonb_build_object('invoice_id', i.id, 'due_date', i.due_date,"
                    "   'business_date', $1::date, 'balance_due_cents',"
                    "   i.total_cents - i.amount_paid_cents)),"
                    "  billing.invoice_event(i.id, 'invoice.overdue', 0, NULL)"
                    " FROM billing.invoices i WHERE i.id = ANY($2::bigint[]) ORDER BY i.id",
                    2, pa, err, errlen);
    free(ids);
    return st;
}

static db_status pay_cancel_tx(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_tick_arg *a = arg;
    char day[16], shards[24], shard[24], firm[24];
    pay_tick_params(a->t, day, shards, shard, firm);
    const char *p[] = {day, shards, shard, a->t->firm_id ? firm : NULL};
    db_status st;
    PGresult *r = db_exec(c,
                          "WITH u AS (UPDATE billing.invoices i SET autopay_status = 'cancelled',"
                          "  autopay_opt_in = false, autopay_next_charge_at = NULL"
                          "  FROM billing.clients c WHERE c.id = i.client_id AND NOT "
                          "c.autopay_enabled"
                          "  AND i.autopay_opt_in AND i.autopay_status = 'scheduled'"
                          "  AND $1::date IS NOT NULL" PAY_SHARD_FILTER
                          "  RETURNING i.id, i.firm_id, i.client_id)"
                          " SELECT billing.audit(firm_id, 'autopay_cancelled', 'INFO', NULL,"
                          "  jsonb_build_object('invoice_id', id, 'client_id', client_id,"
                          "   'reason', 'client autopay disabled')) FROM u",
                          4, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->count = PQntuples(r);
    PQclear(r);
    return DB_OK;
}

db_status payments_run_tick(payments_ctx *ctx, payments_kind kind, const tick_msg *t,
                            payments_stats *stats, char *err, size_t errlen)
{
    pay_tick_arg ta = {.t = t};
    db_status st = db_run_tx(ctx->db, kind == PAYMENTS_AUTOPAY ? pay_cancel_tx : pay_overdue_tx,
                             &ta, err, errlen);
    if (st != DB_OK)
        return st;
    if (kind == PAYMENTS_AUTOPAY)
        stats->cancelled += ta.count;
    else
        stats->overdue += ta.count;

    int limit = ctx->batch_size > 0 ? ctx->batch_size : 500;
    int64_t *ids = malloc((size_t)limit * sizeof *ids);
    if (ids == NULL) {
        snprintf(err, errlen, "out of memory");
        return DB_TRANSIENT;
    }
    char day[16], shards[24], shard[24], firm[24], last[24], lim[24];
    pay_tick_params(t, day, shards, shard, firm);
    db_i64(limit, lim, sizeof lim);
    int64_t after = 0;
    for (;;) {
        const char *p[] = {
            day, shards, shard, t->firm_id ? firm : NULL, db_i64(after, last, sizeof last), lim};
        PGresult *r =
            db_exec(ctx->db, kind == PAYMENTS_AUTOPAY ? pay_due_autopay_sql : pay_due_retry_sql, 6,
                    p, &st, err, errlen);
        if (r == NULL)
            break;
        size_t n = (size_t)PQntuples(r);
        for (size_t i = 0; i < n; i++)
            ids[i] = pay_i64(r, (int)i, 0);
        PQclear(r);
        if (n == 0)
            break;
        after = ids[n - 1];
        st = payments_charge(ctx, kind, ids, n, t->business_date, stats, err, errlen);
        if (st != DB_OK || n < (size_t)limit || shutdown_requested())
            break;
    }
    free(ids);
    return st;
}

db_status payments_preview(db_conn *c, payments_kind kind, civil_date on, int64_t firm_id,
                           payments_preview_fn fn, void *arg, char *err, size_t errlen)
{
    char day[16], firm[24];
    date_format(on, day, sizeof day);
    db_i64(firm_id, firm, sizeof firm);
    /* The ticks' own selections, over every shard (shards = 1). */
    static const char charge_autopay[] =
        "SELECT CASE WHEN c.autopay_enabled THEN 'charge' ELSE 'cancel' END, i.id"
        " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
        " WHERE i.autopay_opt_in AND i.autopay_status IN ('scheduled', "
        "'processing')"
        " AND i.status IN ('sent', 'partial', 'overdue')"
        " AND i.autopay_next_charge_at < ($1::date + 1)::timestamp AT TIME ZONE "
        "'UTC'" PAY_SHARD_FILTER;
    static const char charge_retry[] =
        "SELECT CASE WHEN c.autopay_enabled THEN 'charge' ELSE 'cancel' END, i.id"
        " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
        " WHERE i.status = 'failed' AND i.autopay_opt_in AND "
        "i.next_payment_retry_at IS NOT NULL"
        " AND i.next_payment_retry_at < ($1::date + 1)::timestamp AT TIME ZONE "
        "'UTC'" PAY_SHARD_FILTER " UNION ALL SELECT 'overdue', i.id FROM "
        "billing.invoices i" PAY_OVERDUE_WHERE;
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT s.action, i.id, i.invoice_number, coalesce(i.engagement_id, 0),"
             " coalesce(to_char(i.period_start, 'YYYY-MM-DD'), ''),"
             " coalesce(to_char(i.period_end, 'YYYY-MM-DD'), ''), i.total_cents,"
             " i.total_cents - i.amount_paid_cents, i.currency,"
             " (SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts "
             "a"
             "  WHERE a.invoice_id = i.id)"
             " FROM (%s) s(action, id) JOIN billing.invoices i ON i.id = s.id"
             " ORDER BY i.id, s.action",
             kind == PAYMENTS_AUTOPAY ? charge_autopay : charge_retry);
    const char *p[] = {day, "1", "0", firm_id ? firm : NULL};
    db_status st;
    PGresult *r = db_exec(c, sql, 4, p, &st, err, errlen);
    if (r == NULL)
        return st;
    for (int i = 0; i < PQntuples(r); i++) {
        payments_preview_row row = {.action = PQgetvalue(r, i, 0),
                                    .invoice_id = pay_i64(r, i, 1),
                                    .invoice_number = PQgetvalue(r, i, 2),
                                    .engagement_id = pay_i64(r, i, 3),
                                    .period_start = PQgetvalue(r, i, 4),
                                    .period_end = PQgetvalue(r, i, 5),
                                    .total_cents = pay_i64(r, i, 6),
                                    .due_cents = pay_i64(r, i, 7),
                                    .currency = PQgetvalue(r, i, 8),
                                    .attempt_no = (int)pay_i64(r, i, 9)};
        fn(&row, arg);
    }
    PQclear(r);
    return DB_OK;
}
