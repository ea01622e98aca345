/* payments.c: charging invoices through Stripe and recording what came of
 * it (see payments.h for the three steps). Owns payment attempts (their
 * replay, lookup and abandonment: rules 11.2-11.5), payments from Stripe,
 * payment failures with the retry schedule, and the overdue rule. How
 * money lands on an invoice is billing.land_money's (sql/009), what an
 * answer means payment_answer.c's, credit application credit.c's, the wire
 * stripe.c's. */
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
#include "ledgerline/vocab.h"

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
                {"overdue", s->overdue},       {"abandoned", s->abandoned},
                {"our_fault", s->our_fault},   {"parked", s->parked}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].n > 0)
            metrics_counter_add(m, family, (uint64_t)rows[i].n, "outcome", rows[i].outcome, NULL);
}

int payments_metrics_declare(metrics_registry *m)
{
    if (metrics_declare(m, "billing_payment_failures_total", METRICS_COUNTER,
                        "Payment failures recorded, by failure code.") != 0)
        return -1;
    return metrics_declare(m, "billing_stripe_integration_errors_total", METRICS_COUNTER,
                           "Stripe answers saying our integration is wrong (401/403/404, our"
                           " invalid requests, idempotency conflicts), by code; never a"
                           " customer's failure (rule 11.6).");
}

bool payments_is_hard_decline(const char *code)
{
    return ll_vocab_find(&ll_hard_declines, code) >= 0;
}

/* ------------------------------------------------------------------------ */
/* Recording outcomes (inside the caller's transaction)                      */

const char *payments_failure_code_label(const char *code)
{
    const char *label = ll_vocab_name(&ll_hard_declines, ll_vocab_find(&ll_hard_declines, code));
    if (label == NULL)
        label = ll_vocab_name(&ll_soft_failures, ll_vocab_find(&ll_soft_failures, code));
    return label != NULL ? label : "other";
}

/* The invoice's currency and whether an attempt of ours created this
 * PaymentIntent (attempt_id, or an attempt holding the intent). */
static db_status pay_money_context(db_conn *c, const payments_money *m, char currency[8],
                                   int64_t *attempt_id, char *err, size_t errlen)
{
    char id[24], aid[24];
    const char *p[] = {db_i64(m->invoice_id, id, sizeof id), m->payment_intent,
                       db_i64(m->attempt_id, aid, sizeof aid)};
    db_status st;
    PGresult *r = db_exec(c,
                          "SELECT i.currency, (SELECT a.id FROM billing.payment_attempts a"
                          "  WHERE a.invoice_id = i.id AND (a.id = $3::bigint"
                          "   OR a.stripe_payment_intent_id = $2) ORDER BY a.id = $3::bigint"
                          "  DESC LIMIT 1)"
                          " FROM billing.invoices i WHERE i.id = $1::bigint FOR UPDATE",
                          3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "invoice %s does not exist", id);
        return DB_PERMANENT;
    }
    pay_copy(currency, 8, r, 0, 0);
    *attempt_id = pay_i64(r, 0, 1);
    PQclear(r);
    return DB_OK;
}

db_status payments_apply_success(db_conn *c, const payments_money *m, payments_money_result *out,
                                 char *err, size_t errlen)
{
    *out = PAYMENTS_MONEY_ALREADY;
    char id[24];
    db_i64(m->invoice_id, id, sizeof id);
    if (m->amount_cents < 0 || m->payment_intent == NULL || m->payment_intent[0] == '\0') {
        snprintf(err, errlen, "payment for invoice %s: no PaymentIntent id or a negative amount",
                 id);
        return DB_PERMANENT;
    }
    /* The invoice is locked first (the lock order of every money path). */
    char currency[8];
    int64_t attempt_id = 0;
    db_status st = pay_money_context(c, m, currency, &attempt_id, err, errlen);
    if (st != DB_OK)
        return st;
    if (m->currency != NULL && strcmp(m->currency, currency) != 0) {
        *out = PAYMENTS_MONEY_WRONG_CURRENCY;
        snprintf(err, errlen, "PaymentIntent %s is in %s but invoice %s is in %s",
                 m->payment_intent, m->currency, id, currency);
        return DB_OK;
    }
    char aid[24], amt[24], day[16];
    db_i64(attempt_id, aid, sizeof aid);
    db_i64(m->amount_cents, amt, sizeof amt);
    date_format(m->on, day, sizeof day);
    /* The unique PaymentIntent id is what makes money count once, however
     * many times (and by whom) its success is reported. */
    const char *p1[] = {id, m->payment_intent, currency, pay_null(m->charge), amt};
    PGresult *r = db_exec(
        c,
        "WITH pay AS (INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source,"
        "  stripe_payment_intent_id, currency, stripe_charge_id, received_cents)"
        "  SELECT firm_id, id, 0, 'stripe', $2::text, $3::text, $4::text, $5::bigint"
        "  FROM billing.invoices"
        "  WHERE id = $1::bigint"
        "  ON CONFLICT (stripe_payment_intent_id) DO NOTHING RETURNING id)"
        " SELECT pay.id FROM pay",
        5, p1, &st, err, errlen);
    if (r == NULL)
        return st;
    int fresh = PQntuples(r);
    char payment_id[24] = "";
    if (fresh > 0)
        pay_copy(payment_id, sizeof payment_id, r, 0, 0);
    PQclear(r);
    /* The attempt that created this intent is finished, whoever reported
     * it first (11.5). */
    const char *pa[] = {aid, m->payment_intent};
    st = db_command(c,
                    "UPDATE billing.payment_attempts SET status = 'succeeded', finished_at = now(),"
                    " failure_code = NULL, failure_message = NULL, stripe_payment_intent_id = $2"
                    " WHERE id = $1::bigint AND status <> 'succeeded'",
                    2, pa, err, errlen);
    if (st != DB_OK || fresh == 0)
        return st;

    r = db_exec(c, "SELECT applied_cents, surplus_cents FROM billing.land_money($1, $2, $3::date)",
                3, (const char *const[]){id, amt, day}, &st, err, errlen);
    if (r == NULL)
        return st;
    int64_t apply = pay_i64(r, 0, 0), over = pay_i64(r, 0, 1);
    PQclear(r);
    char ap[24];
    db_i64(apply, ap, sizeof ap);
    const char *p3[] = {id, ap, m->payment_intent, pay_null(m->charge), payment_id};
    st = db_command(c,
                    "WITH pay AS (UPDATE billing.payments SET amount_cents = $2::bigint"
                    "  WHERE id = $5::bigint)"
                    " UPDATE billing.invoices SET stripe_payment_intent_id = $3,"
                    "  stripe_charge_id = coalesce($4, stripe_charge_id) WHERE id = $1::bigint",
                    5, p3, err, errlen);
    if (st != DB_OK)
        return st;

    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"invoice_id\":%" PRId64 ",\"payment_id\":%s,\"amount_cents\":%" PRId64
             ",\"received_cents\":%" PRId64 ",\"overpayment_cents\":%" PRId64 "}",
             m->invoice_id, payment_id, apply, m->amount_cents, over);
    const char *p4[] = {id, attempt_id > 0 ? "invoice_autopaid" : "payment_received", meta,
                        m->payment_intent};
    st = db_command(c,
                    "SELECT billing.audit(firm_id, $2, 'INFO', NULL,"
                    " $3::jsonb || jsonb_build_object('payment_intent', $4::text))"
                    " FROM billing.invoices WHERE id = $1::bigint",
                    4, p4, err, errlen);
    if (st != DB_OK)
        return st;
    if (over > 0) {
        r = db_exec(c, "SELECT client_id FROM billing.invoices WHERE id = $1::bigint", 1,
                    (const char *const[]){id}, &st, err, errlen);
        if (r == NULL)
            return st;
        int64_t client_id = pay_i64(r, 0, 0);
        PQclear(r);
        char desc[256];
        snprintf(desc, sizeof desc, "Overpayment of invoice %" PRId64 " by %s", m->invoice_id,
                 m->payment_intent);
        credit_add_params cp = {.client_id = client_id,
                                .amount_cents = over,
                                .source = "overpayment",
                                .description = desc,
                                .source_invoice_id = m->invoice_id,
                                .source_payment_id = strtoll(payment_id, NULL, 10)};
        int64_t entry = 0;
        st = credit_add(c, &cp, &entry, err, errlen);
        if (st != DB_OK)
            return st;
    }
    *out = PAYMENTS_MONEY_APPLIED;
    return DB_OK;
}

db_status payments_mark_processing(db_conn *c, int64_t invoice_id, int64_t attempt_id,
                                   const char *payment_intent, char *err, size_t errlen)
{
    char id[24], aid[24];
    const char *p[] = {db_i64(invoice_id, id, sizeof id), payment_intent,
                       db_i64(attempt_id, aid, sizeof aid)};
    return db_command(c,
                      "WITH att AS (UPDATE billing.payment_attempts SET status = 'processing',"
                      "  stripe_payment_intent_id = $2"
                      "  WHERE (id = $3::bigint OR stripe_payment_intent_id = $2)"
                      "  AND status IN ('processing', 'transient_error') RETURNING id)"
                      " UPDATE billing.invoices SET autopay_status = 'processing'"
                      " WHERE id = $1::bigint AND autopay_opt_in AND NOT billing.invoice_closed(status)"
                      " AND status <> 'paid' AND EXISTS (SELECT 1 FROM att)",
                      3, p, err, errlen);
}

/* Finds (and locks) the attempt a failure belongs to, writing one for an
 * intent we did not create. *already = true when it is already counted;
 * *abandoned = true when we had given it up (11.2). */
static db_status pay_failure_attempt(db_conn *c, const payments_failure *f, int64_t *attempt_id,
                                     bool *already, bool *abandoned, char *err, size_t errlen)
{
    char inv[24], aid[24], amt[24];
    db_i64(f->invoice_id, inv, sizeof inv);
    db_i64(f->attempt_id, aid, sizeof aid);
    db_i64(f->amount_cents, amt, sizeof amt);
    const char *p[] = {aid, pay_null(f->payment_intent), inv};
    db_status st;
    PGresult *r = db_exec(c,
                          "SELECT id, status FROM billing.payment_attempts"
                          " WHERE (id = $1::bigint AND $1::bigint > 0)"
                          "    OR ($1::bigint = 0 AND stripe_payment_intent_id = $2)"
                          " FOR UPDATE",
                          2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *already = *abandoned = false;
    if (PQntuples(r) > 0) {
        *attempt_id = pay_i64(r, 0, 0);
        const char *status = PQgetvalue(r, 0, 1);
        *already = strcmp(status, "failed") == 0 || strcmp(status, "succeeded") == 0;
        *abandoned = strcmp(status, "abandoned") == 0;
        PQclear(r);
        return DB_OK;
    }
    PQclear(r);
    /* A failure of an intent we have no attempt for (created elsewhere and
     * read back from Stripe): written as an attempt so a second report of it
     * counts once. */
    char key[PAYMENTS_KEY_MAX];
    snprintf(key, sizeof key, "stripe:%s", f->payment_intent ? f->payment_intent : "");
    const char *p2[] = {inv, key, pay_null(f->payment_intent), amt};
    r = db_exec(c,
                "INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind,"
                " idempotency_key, amount_cents, stripe_payment_intent_id, status, currency)"
                " SELECT i.firm_id, i.id,"
                "  (SELECT coalesce(max(attempt_no), 0) + 1 FROM billing.payment_attempts"
                "   WHERE invoice_id = i.id), 'autopay', $2,"
                "  CASE WHEN $4::bigint > 0 THEN $4::bigint"
                "   ELSE billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents) END,"
                " $3, 'processing',"
                "  i.currency"
                " FROM billing.invoices i WHERE i.id = $1::bigint"
                " AND NOT billing.never_charged(i.status) RETURNING id",
                4, p2, &st, err, errlen);
    if (r == NULL)
        return st;
    /* A draft or void invoice has no attempts (rule 12.3): the failure of a
     * foreign intent for one moves no money and has nothing to land on. */
    *already = PQntuples(r) == 0;
    if (!*already)
        *attempt_id = pay_i64(r, 0, 0);
    PQclear(r);
    return DB_OK;
}

db_status payments_record_failure(db_conn *c, const payments_ctx *ctx, const payments_failure *f,
                                  bool *recorded, char *err, size_t errlen)
{
    *recorded = false;
    int64_t attempt_id = 0;
    bool already = false, abandoned = false;
    db_status st = pay_failure_attempt(c, f, &attempt_id, &already, &abandoned, err, errlen);
    if (st != DB_OK || already)
        return st;
    const char *code = f->code && f->code[0] ? f->code : "unknown";
    char inv[24], aid[24];
    db_i64(f->invoice_id, inv, sizeof inv);
    db_i64(attempt_id, aid, sizeof aid);
    const char *pa[] = {aid, code, f->message ? f->message : "", pay_null(f->payment_intent),
                        f->failed_at};
    st = db_command(c,
                    "UPDATE billing.payment_attempts SET status = 'failed', failure_code = $2,"
                    " failure_message = $3, finished_at = now(), failed_at = $5::timestamptz,"
                    " stripe_payment_intent_id = coalesce($4, stripe_payment_intent_id)"
                    " WHERE id = $1::bigint",
                    5, pa, err, errlen);
    /* An attempt we had given up on: a newer attempt owns the invoice now. */
    if (st != DB_OK || abandoned)
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
                        next_action};
    /* Which PaymentIntent paid the invoice is the success's to say (11.10):
     * a failure leaves stripe_payment_intent_id alone. */
    r = db_exec(c,
                "WITH u AS (UPDATE billing.invoices SET status = $2,"
                "  payment_failed_at = $3::timestamptz,"
                "  payment_failure_reason = $4, payment_failure_code = $5,"
                "  payment_retry_count = $6::int, last_payment_retry_at = $3::timestamptz,"
                "  next_payment_retry_at = (($3::timestamptz AT TIME ZONE 'UTC')::date + $7::int)"
                "   ::timestamp AT TIME ZONE 'UTC',"
                "  autopay_status = CASE WHEN autopay_opt_in AND autopay_status <> 'cancelled'"
                "   THEN 'failed' ELSE autopay_status END"
                "  WHERE id = $1::bigint"
                "  RETURNING firm_id, next_payment_retry_at,"
                "   billing.balance_due(total_cents, amount_paid_cents, credited_cents) AS due)"
                " SELECT billing.audit(u.firm_id, 'payment_failed', 'WARNING', NULL,"
                "   jsonb_build_object('invoice_id', $1::bigint, 'attempt_id', $9::bigint,"
                "    'failure_code', $5, 'failure_reason', $4, 'retry_count', $6::int,"
                "    'payment_intent', $8::text, 'amount_cents', u.due)),"
                "  billing.audit(u.firm_id, $10, CASE WHEN $10 = 'payment_retry_exhausted'"
                "   THEN 'WARNING' ELSE 'INFO' END, NULL,"
                "   jsonb_build_object('invoice_id', $1::bigint, 'failure_code', $5,"
                "    'retry_count', $6::int, 'next_payment_retry_at', u.next_payment_retry_at))"
                " FROM u",
                10, pu, &st, err, errlen);
    if (r == NULL)
        return st;
    PQclear(r);
    const char *pe[] = {inv, nbuf, code, hard ? "true" : "false"};
    st = db_command(c,
                    "SELECT billing.invoice_event($1::bigint, 'invoice.payment_failed', $2::int,"
                    " jsonb_build_object('failure_code', $3::text, 'retry_count', $2::int,"
                    "  'customer_action_required', $4::boolean))",
                    4, pe, err, errlen);
    if (st == DB_OK && exhausted)
        st = db_command(c, "SELECT billing.invoice_event($1::bigint, 'invoice.overdue', 0, NULL)",
                        1, pi, err, errlen);
    if (st == DB_OK)
        *recorded = true;
    if (st == DB_OK && ctx->metrics != NULL)
        metrics_counter_add(ctx->metrics, "billing_payment_failures_total", 1, "code",
                            payments_failure_code_label(code), NULL);
    return st;
}

db_status payments_resume(db_conn *c, int64_t invoice_id, const char *by, char *err,
                          size_t errlen)
{
    char id[24];
    const char *p[] = {db_i64(invoice_id, id, sizeof id), by};
    db_status st;
    PGresult *r = db_exec(c,
                          "WITH u AS (UPDATE billing.invoices SET autopay_status = 'scheduled'"
                          "  WHERE id = $1::bigint AND autopay_status = 'needs_attention'"
                          "  RETURNING id, firm_id)"
                          " SELECT billing.audit(firm_id, 'autopay_resumed', 'INFO', $2,"
                          "  jsonb_build_object('invoice_id', id)) FROM u",
                          2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        snprintf(err, errlen,
                 "cannot resume invoice %s: its autopay is not needs_attention (only an "
                 "invoice parked by an idempotency conflict can be resumed)",
                 id);
        return DB_PERMANENT;
    }
    return DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Step 1: prepare                                                           */

typedef enum { JOB_NONE = 0, JOB_CALL, JOB_LOOKUP } pay_job_kind;

typedef struct {
    pay_job_kind what;
    int64_t invoice_id;
    int64_t attempt_id;
    int64_t amount;
    char key[PAYMENTS_KEY_MAX];
    char currency[8];
    char pm[128];
    char customer[128];
    char payment_intent[STRIPE_ID_MAX]; /* JOB_LOOKUP of a known intent */
    int64_t since_unix;                 /* JOB_LOOKUP: the attempt's creation */
    int64_t firm_id;
    stripe_form *form;
} pay_job;

typedef struct {
    const payments_ctx *ctx;
    payments_kind kind;
    civil_date on;
    pay_job *job;
    payments_stats *stats;
    bool only_due; /* an issued invoice: nothing unless it is due now */
} pay_prepare_arg;

/* The invoice's latest unfinished attempt, and what to do with it (rules
 * 11.2-11.4): replayed with its own key and parameters only while Stripe
 * still knows the key (under 23 h old, by the later of the clock and the
 * run's business date), autopay is still on and the client's card is the
 * one it charged, and it did not end in an idempotency conflict; any
 * other is looked up at Stripe, never sent again. A processing intent
 * waits for its webhook (looked up by id once it is a day old). Returns 1
 * when the attempt decides (job set or nothing to do), 0 when there is
 * none, -1 on a database error. */
static int pay_unfinished(db_conn *c, pay_prepare_arg *a, const char *inv, bool wanted,
                          db_status *st, char *err, size_t errlen)
{
    pay_job *j = a->job;
    char day[16];
    date_format(a->on, day, sizeof day);
    const char *p[] = {inv, day, pay_null(j->pm)};
    PGresult *r = db_exec(
        c,
        "SELECT id, idempotency_key, amount_cents, coalesce(stripe_payment_intent_id, ''),"
        " coalesce(payment_method_id, ''), coalesce(stripe_customer_id, ''), currency, status,"
        " firm_id, created_at < greatest(now(), $2::date::timestamp AT TIME ZONE 'UTC')"
        "  - interval '23 hours',"
        " coalesce(failure_code = 'idempotency_error', false),"
        " payment_method_id IS NOT DISTINCT FROM $3, extract(epoch FROM created_at)::bigint"
        " FROM billing.payment_attempts"
        " WHERE invoice_id = $1::bigint AND status IN ('processing', 'transient_error')"
        " ORDER BY attempt_no DESC LIMIT 1",
        3, p, st, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    bool has_pi = PQgetvalue(r, 0, 3)[0] != '\0';
    bool processing = strcmp(PQgetvalue(r, 0, 7), "processing") == 0;
    bool stale = pay_bool(r, 0, 9), conflict = pay_bool(r, 0, 10), same_pm = pay_bool(r, 0, 11);
    j->attempt_id = pay_i64(r, 0, 0);
    pay_copy(j->key, sizeof j->key, r, 0, 1);
    j->amount = pay_i64(r, 0, 2);
    pay_copy(j->payment_intent, sizeof j->payment_intent, r, 0, 3);
    j->firm_id = pay_i64(r, 0, 8);
    j->since_unix = pay_i64(r, 0, 12) - 600; /* clock skew margin */
    if (has_pi && processing && !stale) {
        a->stats->skipped++; /* a processing PaymentIntent: its webhook decides */
        PQclear(r);
        return 1;
    }
    if (!has_pi && wanted && !stale && same_pm && !conflict && PQgetvalue(r, 0, 4)[0] != '\0') {
        j->what = JOB_CALL; /* replay: the same key, the same parameters */
        pay_copy(j->pm, sizeof j->pm, r, 0, 4);
        pay_copy(j->customer, sizeof j->customer, r, 0, 5);
        pay_copy(j->currency, sizeof j->currency, r, 0, 6);
        PQclear(r);
        *st = db_command(c,
                         "UPDATE billing.invoices SET autopay_status = 'processing'"
                         " WHERE id = $1::bigint AND autopay_opt_in",
                         1, p, err, errlen);
        return *st == DB_OK ? 1 : -1;
    }
    j->what = JOB_LOOKUP;
    pay_copy(j->customer, sizeof j->customer, r, 0, 5);
    PQclear(r);
    return 1;
}

/* Autopay turned off: the pending autopay is cancelled in any state
 * (rule 11.3; an unanswered attempt is looked up first). */
static db_status pay_cancel(db_conn *c, const char *inv, char *err, size_t errlen)
{
    const char *p[] = {inv};
    return db_command(c,
                      "WITH u AS (UPDATE billing.invoices SET autopay_status = 'cancelled',"
                      "  autopay_opt_in = false, autopay_next_charge_at = NULL,"
                      "  next_payment_retry_at = NULL WHERE id = $1::bigint"
                      "  AND autopay_status <> 'cancelled'"
                      "  RETURNING id, firm_id, client_id)"
                      " SELECT billing.audit(firm_id, 'autopay_cancelled', 'INFO', NULL,"
                      "  jsonb_build_object('invoice_id', id, 'client_id', client_id,"
                      "   'reason', 'client autopay disabled')) FROM u",
                      1, p, err, errlen);
}

/* The autopay states an opt-out cancels. */
static bool pay_pending(const char *autopay_status)
{
    return strcmp(autopay_status, "scheduled") == 0 || strcmp(autopay_status, "processing") == 0 ||
           strcmp(autopay_status, "failed") == 0 || strcmp(autopay_status, "needs_attention") == 0;
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
    const char *p[] = {inv, day, payments_kind_names[a->kind]};
    PGresult *r = db_exec(c,
                          "SELECT i.firm_id,"
                          " billing.balance_due(i.total_cents, i.amount_paid_cents,"
                          "  i.credited_cents), i.currency,"
                          " i.autopay_opt_in AND c.autopay_enabled, i.autopay_status,"
                          " coalesce(nullif(c.autopay_payment_method_id, ''),"
                          "  nullif(i.autopay_payment_method_id, '')),"
                          " c.stripe_customer_id,"
                          " billing.charge_due($3, i.status, i.autopay_opt_in, i.autopay_status,"
                          "  i.autopay_next_charge_at, i.next_payment_retry_at, $2::date),"
                          " i.currency = c.currency"
                          " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
                          " WHERE i.id = $1::bigint FOR UPDATE OF i",
                          3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        a->stats->skipped++;
        return DB_OK;
    }
    j->firm_id = pay_i64(r, 0, 0);
    int64_t due = pay_i64(r, 0, 1);
    pay_copy(j->currency, sizeof j->currency, r, 0, 2);
    bool wanted = pay_bool(r, 0, 3);
    char autopay_status[24];
    pay_copy(autopay_status, sizeof autopay_status, r, 0, 4);
    pay_copy(j->pm, sizeof j->pm, r, 0, 5);
    pay_copy(j->customer, sizeof j->customer, r, 0, 6);
    bool due_now = pay_bool(r, 0, 7);
    bool same_currency = pay_bool(r, 0, 8);
    PQclear(r);
    if (strcmp(autopay_status, "needs_attention") == 0) {
        a->stats->skipped++; /* parked until an operator resumes it (11.6) */
        return DB_OK;
    }
    if (a->only_due && !due_now) {
        /* An invoice.issued event read late (a backlog after an outage) must
         * not touch an invoice the ticks own: its unfinished attempt may be
         * another worker's call in flight, which a lookup now would find
         * missing and abandon. */
        a->stats->skipped++;
        return DB_OK;
    }
    int u = pay_unfinished(c, a, inv, wanted, &st, err, errlen);
    if (u != 0)
        return u < 0 ? st : DB_OK;
    if (!wanted) {
        if (!pay_pending(autopay_status)) {
            a->stats->skipped++;
            return DB_OK;
        }
        a->stats->cancelled++;
        return pay_cancel(c, inv, err, errlen);
    }
    if (!due_now || due <= 0) {
        a->stats->skipped++;
        return DB_OK;
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
        return DB_OK; /* billing.land_money closed the autopay */
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
    /* A new attempt charges the client's card of today (11.4). */
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
                "WITH a AS (INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no,"
                "  kind, idempotency_key, amount_cents, status, payment_method_id,"
                "  stripe_customer_id, currency)"
                "  SELECT firm_id, id, $2::int, $3, $4, $5::bigint, 'processing', $6, $7, $8"
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

/* An answer that changes nothing for the customer: the attempt stays
 * unfinished (transient_error, with why), the invoice's autopay waits for
 * the next run, or for an operator after an idempotency conflict. */
static db_status pay_keep_open(db_conn *c, const char *aid, const char *code, const char *message,
                               bool park, char *err, size_t errlen)
{
    const char *p[] = {aid, pay_null(code), message, park ? "true" : "false"};
    return db_command(c,
                      "WITH a AS (UPDATE billing.payment_attempts SET status = 'transient_error',"
                      "  failure_code = $2, failure_message = $3 WHERE id = $1::bigint"
                      "  RETURNING invoice_id)"
                      " UPDATE billing.invoices i SET autopay_status ="
                      "  CASE WHEN $4::boolean THEN 'needs_attention'"
                      "   WHEN i.status = 'failed' THEN 'failed' ELSE 'scheduled' END"
                      " FROM a WHERE i.id = a.invoice_id AND i.autopay_opt_in"
                      " AND i.autopay_status IN ('processing', 'scheduled', 'failed')",
                      4, p, err, errlen);
}

static db_status pay_apply(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_apply_arg *a = arg;
    pay_job *j = a->job;
    const stripe_result *res = a->res;
    char aid[24], day[16], at[40], code[96];
    db_i64(j->attempt_id, aid, sizeof aid);
    date_format(a->on, day, sizeof day);
    snprintf(at, sizeof at, "%sT00:00:00Z", day);
    const char *p[] = {aid};
    db_status st;
    /* Invoice, then attempt: the lock order of every money path. */
    PGresult *r = db_exec(c,
                          "SELECT a.status FROM billing.invoices i JOIN billing.payment_attempts a"
                          " ON a.invoice_id = i.id WHERE a.id = $1::bigint FOR UPDATE",
                          1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    bool open = PQntuples(r) > 0 && (strcmp(PQgetvalue(r, 0, 0), "processing") == 0 ||
                                     strcmp(PQgetvalue(r, 0, 0), "transient_error") == 0);
    bool abandoned = PQntuples(r) > 0 && strcmp(PQgetvalue(r, 0, 0), "abandoned") == 0;
    PQclear(r);
    if (!open && !abandoned) {
        a->stats->skipped++; /* a webhook got there first (11.5) */
        return DB_OK;
    }
    const char *pi = pay_null(res->object_id);
    payments_answer ans = payments_answer_of(res, code, sizeof code);
    /* Given up on by a lookup that ran while this call was in flight: the
     * money Stripe took still lands (rule 11.1: every PaymentIntent's money
     * is on the books), a decline is still recorded on the attempt; nothing
     * else reopens it. */
    if (abandoned && ans != PAYMENTS_ANSWER_PAID && ans != PAYMENTS_ANSWER_DECLINED) {
        a->stats->skipped++;
        return DB_OK;
    }
    switch (ans) {
    case PAYMENTS_ANSWER_TRANSIENT:
        a->stats->transient++;
        return pay_keep_open(c, aid, NULL, res->message, false, err, errlen);
    case PAYMENTS_ANSWER_OUR_FAULT:
        /* Not the customer's: no failure, no retry counted, no e-mail. */
        a->stats->our_fault++;
        log_msg(LL_LOG_ERROR, "Stripe refused our request; the customer is not told",
                "attempt_id", aid, "idempotency_key", j->key, "code", code, "stripe_message",
                res->message, "request_id", res->request_id, NULL);
        if (a->ctx->metrics != NULL)
            metrics_counter_add(a->ctx->metrics, "billing_stripe_integration_errors_total", 1,
                                "code", res->http_status > 0 ? code : "no_status", NULL);
        return pay_keep_open(c, aid, code, res->message, false, err, errlen);
    case PAYMENTS_ANSWER_CONFLICT: {
        a->stats->parked++;
        log_msg(LL_LOG_ERROR, "idempotency key reused with other parameters; invoice parked",
                "attempt_id", aid, "idempotency_key", j->key, "stripe_message", res->message,
                NULL);
        if (a->ctx->metrics != NULL)
            metrics_counter_add(a->ctx->metrics, "billing_stripe_integration_errors_total", 1,
                                "code", code, NULL);
        st = pay_keep_open(c, aid, code, res->message, true, err, errlen);
        if (st != DB_OK)
            return st;
        const char *pc[] = {aid, res->message};
        return db_command(c,
                          "SELECT billing.audit(a.firm_id, 'payment_attempt_conflict', 'CRITICAL',"
                          " NULL, jsonb_build_object('attempt_id', a.id, 'invoice_id',"
                          " a.invoice_id, 'stripe_message', $2::text))"
                          " FROM billing.payment_attempts a WHERE a.id = $1::bigint",
                          2, pc, err, errlen);
    }
    case PAYMENTS_ANSWER_PAID: {
        a->stats->charged++;
        int64_t amount = stripe_json_i64(res->body, "amount_received", -1);
        payments_money m = {.invoice_id = j->invoice_id,
                            .attempt_id = j->attempt_id,
                            .payment_intent = pi,
                            .charge = pay_null(res->latest_charge),
                            .amount_cents = amount >= 0 ? amount : res->amount,
                            .currency = stripe_json_str(res->body, "currency"),
                            .on = a->on};
        payments_money_result mr;
        st = payments_apply_success(c, &m, &mr, err, errlen);
        if (st == DB_OK && mr == PAYMENTS_MONEY_WRONG_CURRENCY)
            return DB_PERMANENT; /* our own intent in another currency: a bug, kept open */
        if (st == DB_OK)
            a->stats->succeeded++;
        return st;
    }
    case PAYMENTS_ANSWER_PROCESSING:
        a->stats->charged++;
        a->stats->processing++;
        return payments_mark_processing(c, j->invoice_id, j->attempt_id, pi, err, errlen);
    case PAYMENTS_ANSWER_DECLINED:
        break;
    }
    a->stats->charged++;
    /* A decline, or an intent that cannot go on without the customer. */
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

/* Nothing at Stripe for the attempt (11.2): closed as abandoned (no
 * customer failure); the invoice's autopay waits for a new attempt, or is
 * cancelled when autopay is now off (11.3). Returns whether a new attempt
 * may start now. */
static db_status pay_abandon(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_apply_arg *a = arg;
    char aid[24];
    const char *p[] = {db_i64(a->job->attempt_id, aid, sizeof aid)};
    db_status st;
    PGresult *r = db_exec(c,
                          "SELECT a.status, i.autopay_opt_in AND c.autopay_enabled, i.id"
                          " FROM billing.invoices i JOIN billing.payment_attempts a"
                          " ON a.invoice_id = i.id JOIN billing.clients c ON c.id = i.client_id"
                          " WHERE a.id = $1::bigint FOR UPDATE OF i, a",
                          1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    bool open = PQntuples(r) > 0 && (strcmp(PQgetvalue(r, 0, 0), "processing") == 0 ||
                                     strcmp(PQgetvalue(r, 0, 0), "transient_error") == 0);
    bool wanted = open && pay_bool(r, 0, 1);
    char inv[24];
    pay_copy(inv, sizeof inv, r, 0, 2);
    PQclear(r);
    if (!open)
        return DB_OK;
    a->stats->abandoned++;
    st = db_command(c,
                    "WITH a AS (UPDATE billing.payment_attempts SET status = 'abandoned',"
                    "  finished_at = now(), failure_message = 'no PaymentIntent at Stripe for"
                    " this attempt''s key' WHERE id = $1::bigint"
                    "  RETURNING id, firm_id, invoice_id, idempotency_key)"
                    " SELECT billing.audit(firm_id, 'payment_attempt_abandoned', 'INFO', NULL,"
                    "  jsonb_build_object('attempt_id', id, 'invoice_id', invoice_id,"
                    "   'idempotency_key', idempotency_key)) FROM a",
                    1, p, err, errlen);
    if (st != DB_OK)
        return st;
    if (!wanted)
        return pay_cancel(c, inv, err, errlen);
    return db_command(c,
                      "UPDATE billing.invoices SET autopay_status = CASE WHEN status = 'failed'"
                      " THEN 'failed' ELSE 'scheduled' END"
                      " WHERE id = $1::bigint AND autopay_status IN ('processing', 'scheduled')",
                      1, (const char *const[]){inv}, err, errlen);
}

/* Resolves one attempt by asking Stripe (outside any transaction), then
 * applies what it found as if Stripe had answered, or abandons it. */
static db_status pay_lookup_one(payments_ctx *ctx, pay_job *j, civil_date on,
                                payments_stats *stats, bool *abandoned, char *err, size_t errlen)
{
    payments_lookup l = {.since_unix = j->since_unix};
    snprintf(l.attempt_key, sizeof l.attempt_key, "%s", j->key);
    snprintf(l.payment_intent, sizeof l.payment_intent, "%s", j->payment_intent);
    snprintf(l.customer, sizeof l.customer, "%s", j->customer);
    stripe_result res;
    char lerr[384];
    int found = payments_lookup_attempt(ctx->stripe, &l, &res, lerr, sizeof lerr);
    char id[24];
    log_msg(found < 0 ? LL_LOG_WARN : LL_LOG_INFO, "unanswered attempt looked up at Stripe",
            "invoice_id", db_i64(j->invoice_id, id, sizeof id), "idempotency_key", j->key,
            "found", found > 0 ? res.object_id : found == 0 ? "none" : "cannot tell", "error",
            found < 0 ? lerr : "", NULL);
    if (found < 0)
        return DB_OK; /* the next run asks again; nothing is sent meanwhile */
    pay_apply_arg aa = {.ctx = ctx, .on = on, .job = j, .res = &res, .stats = stats};
    db_status st;
    if (found > 0) {
        if (strcmp(res.object_status, "processing") == 0 && j->payment_intent[0] != '\0')
            st = DB_OK; /* still processing: its webhook decides */
        else
            st = db_run_tx(ctx->db, pay_apply, &aa, err, errlen);
        stripe_result_free(&res);
        if (st == DB_PERMANENT) {
            log_msg(LL_LOG_ERROR, "looked-up PaymentIntent could not be recorded", "invoice_id", id,
                    "error", err, NULL);
            st = DB_OK; /* the attempt stays unfinished: the next run looks again */
        }
        return st;
    }
    int64_t before = stats->abandoned;
    st = db_run_tx(ctx->db, pay_abandon, &aa, err, errlen);
    *abandoned = st == DB_OK && stats->abandoned > before;
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
    size_t *lookups;      /* jobs resolved by asking Stripe (11.2), after the stream */
    size_t nlookups;
    bool limited;         /* one of them was rate limited */
    bool only_due;        /* payments_charge_issued */
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
    log_msg(st == DB_OK ? LL_LOG_INFO : LL_LOG_ERROR, "charge answered", "invoice_id",
            db_i64(j->invoice_id, id, sizeof id), "idempotency_key", j->key, "outcome",
            stripe_outcome_name(call->result.outcome), "payment_intent", call->result.object_id,
            "stripe_status", call->result.object_status, "decline_code",
            call->result.decline_code, "request_id", call->result.request_id, NULL);
    if (st == DB_PERMANENT) {
        log_msg(LL_LOG_ERROR, "charge answer could not be recorded", "invoice_id", id, "error",
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
        pay_prepare_arg pa = {.ctx = r->ctx,
                              .kind = r->kind,
                              .on = r->on,
                              .job = j,
                              .stats = r->stats,
                              .only_due = r->only_due};
        db_status st = db_run_tx(r->ctx->db, pay_prepare, &pa, r->err, r->errlen);
        if (st == DB_PERMANENT) {
            /* One invoice the database refuses must not block the others. */
            char id[24];
            log_msg(LL_LOG_ERROR, "invoice cannot be charged", "invoice_id",
                    db_i64(j->invoice_id, id, sizeof id), "error", r->err, NULL);
            j->what = JOB_NONE;
            continue;
        }
        if (st != DB_OK) {
            r->st = st;
            break;
        }
        if (j->what == JOB_LOOKUP)
            r->lookups[r->nlookups++] = i;
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

/* Step 1-3 for ids; lookups (11.2) after the stream, one at a time (they
 * are rare), and an invoice whose attempt was abandoned is prepared once
 * more so its new attempt starts in the same run (again = false then). */
static db_status pay_charge_run(payments_ctx *ctx, payments_kind kind, const int64_t *ids,
                                size_t n, civil_date on, payments_stats *stats, bool again,
                                bool only_due, char *err, size_t errlen)
{
    if (n == 0)
        return DB_OK;
    pay_run r = {.ctx = ctx, .kind = kind, .on = on, .stats = stats, .ids = ids, .n = n,
                 .only_due = only_due, .st = DB_OK, .err = err, .errlen = errlen};
    r.jobs = calloc(n, sizeof *r.jobs);
    r.calls = calloc(n, sizeof *r.calls);
    r.again = calloc(n, sizeof *r.again);
    r.lookups = calloc(n, sizeof *r.lookups);
    int64_t *fresh = calloc(n, sizeof *fresh);
    if (r.jobs == NULL || r.calls == NULL || r.again == NULL || r.lookups == NULL ||
        fresh == NULL) {
        free(r.jobs);
        free(r.calls);
        free(r.again);
        free(r.lookups);
        free(fresh);
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
    size_t nfresh = 0;
    for (size_t k = 0; k < r.nlookups && r.st == DB_OK && !shutdown_requested(); k++) {
        pay_job *j = &r.jobs[r.lookups[k]];
        bool abandoned = false;
        r.st = pay_lookup_one(ctx, j, on, stats, &abandoned, err, errlen);
        if (abandoned)
            fresh[nfresh++] = j->invoice_id;
    }
    for (size_t i = 0; i < n; i++) {
        stripe_result_free(&r.calls[i].result);
        stripe_form_free(r.jobs[i].form);
    }
    free(r.jobs);
    free(r.calls);
    free(r.again);
    free(r.lookups);
    if (r.st == DB_OK && again && nfresh > 0)
        r.st = pay_charge_run(ctx, kind, fresh, nfresh, on, stats, false, only_due, err, errlen);
    free(fresh);
    return r.st;
}

db_status payments_charge(payments_ctx *ctx, payments_kind kind, const int64_t *ids, size_t n,
                          civil_date on, payments_stats *stats, char *err, size_t errlen)
{
    return pay_charge_run(ctx, kind, ids, n, on, stats, true, false, err, errlen);
}

db_status payments_charge_issued(payments_ctx *ctx, int64_t invoice_id, civil_date on,
                                 payments_stats *stats, char *err, size_t errlen)
{
    return pay_charge_run(ctx, PAYMENTS_AUTOPAY, &invoice_id, 1, on, stats, true, true, err,
                          errlen);
}

/* ------------------------------------------------------------------------ */
/* Ticks                                                                     */

/* The shard and firm filter every tick selection shares: $2 shards, $3
 * shard, $4 firm (NULL = all). */
#define PAY_SHARD_FILTER                                                                           \
    " AND i.id % $2::bigint = $3::bigint AND ($4::bigint IS NULL OR i.firm_id "                    \
    "= $4::bigint)"

/* Which invoices a run charges is billing.charge_due's to say (sql/009);
 * the plain predicates beside it only let 004's partial indexes find the
 * candidates. The autopay run also takes the invoices whose unanswered
 * attempt (no PaymentIntent known) must be looked up at Stripe whatever the
 * invoice's state (11.2, 11.3): autopay off, a day old, or a conflict an
 * operator resumed. An attempt whose intent is known and processing waits
 * for its webhook (read back by id only when its invoice is charged). */
static const char pay_due_autopay_sql[] =
    "SELECT id FROM ("
    " SELECT i.id FROM billing.invoices i"
    "  WHERE i.autopay_opt_in AND i.autopay_status IN ('scheduled', 'processing')"
    "  AND billing.charge_due('autopay', i.status, i.autopay_opt_in, i.autopay_status,"
    "   i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER
    " UNION SELECT i.id FROM billing.payment_attempts a"
    "  JOIN billing.invoices i ON i.id = a.invoice_id"
    "  JOIN billing.clients c ON c.id = i.client_id"
    "  WHERE a.status IN ('processing', 'transient_error')"
    "  AND i.autopay_status <> 'needs_attention' AND a.stripe_payment_intent_id IS NULL"
    "  AND (a.created_at < greatest(now(), $1::date::timestamp AT TIME ZONE 'UTC')"
    "    - interval '23 hours'"
    "   OR NOT (i.autopay_opt_in AND c.autopay_enabled) OR a.failure_code = 'idempotency_error')"
    PAY_SHARD_FILTER
    ") s WHERE id > $5::bigint ORDER BY id LIMIT $6::int";

static const char pay_due_retry_sql[] =
    "SELECT i.id FROM billing.invoices i"
    " WHERE i.status = 'failed' AND i.next_payment_retry_at IS NOT NULL"
    " AND billing.charge_due('retry', i.status, i.autopay_opt_in, i.autopay_status,"
    "  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER
    " AND i.id > $5::bigint ORDER BY i.id LIMIT $6::int";

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
                    "   billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents))),"
                    "  billing.invoice_event(i.id, 'invoice.overdue', 0, NULL)"
                    " FROM billing.invoices i WHERE i.id = ANY($2::bigint[]) ORDER BY i.id",
                    2, pa, err, errlen);
    free(ids);
    return st;
}

/* Autopay turned off (the client's, or the invoice's opt-in): every
 * pending autopay without an unanswered attempt is cancelled, whatever its
 * state (11.3); those with one are looked up first (the selection above). */
static db_status pay_cancel_tx(db_conn *c, void *arg, char *err, size_t errlen)
{
    pay_tick_arg *a = arg;
    char day[16], shards[24], shard[24], firm[24];
    pay_tick_params(a->t, day, shards, shard, firm);
    const char *p[] = {day, shards, shard, a->t->firm_id ? firm : NULL};
    db_status st;
    PGresult *r = db_exec(c,
                          "WITH u AS (UPDATE billing.invoices i SET autopay_status = 'cancelled',"
                          "  autopay_opt_in = false, autopay_next_charge_at = NULL,"
                          "  next_payment_retry_at = NULL"
                          "  FROM billing.clients c WHERE c.id = i.client_id"
                          "  AND NOT (c.autopay_enabled AND i.autopay_opt_in)"
                          "  AND i.autopay_status IN ('scheduled', 'processing', 'failed',"
                          "   'needs_attention')"
                          "  AND NOT EXISTS (SELECT 1 FROM billing.payment_attempts a"
                          "   WHERE a.invoice_id = i.id"
                          "   AND a.status IN ('processing', 'transient_error'))"
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
        " WHERE billing.charge_due('autopay', i.status, i.autopay_opt_in, i.autopay_status,"
        "  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER;
    static const char charge_retry[] =
        "SELECT CASE WHEN c.autopay_enabled THEN 'charge' ELSE 'cancel' END, i.id"
        " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
        " WHERE billing.charge_due('retry', i.status, i.autopay_opt_in, i.autopay_status,"
        "  i.autopay_next_charge_at, i.next_payment_retry_at, $1::date)" PAY_SHARD_FILTER
        " UNION ALL SELECT 'overdue', i.id FROM billing.invoices i" PAY_OVERDUE_WHERE;
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT s.action, i.id, i.invoice_number, coalesce(i.engagement_id, 0),"
             " coalesce(to_char(i.period_start, 'YYYY-MM-DD'), ''),"
             " coalesce(to_char(i.period_end, 'YYYY-MM-DD'), ''), i.total_cents,"
             " billing.balance_due(i.total_cents, i.amount_paid_cents, i.credited_cents), i.currency,"
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
