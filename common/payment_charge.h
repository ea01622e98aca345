/* payment_charge.h: private to the payments module (common/payment_*.c):
 * the row readers, the job one charge carries through prepare, call and
 * apply, and the steps payment_run.c strings together. Not installed. */
#ifndef LEDGERLINE_PAYMENT_CHARGE_H
#define LEDGERLINE_PAYMENT_CHARGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ledgerline/payments.h"

/* "autopay", "retry" by payments_kind (payments.c). */
extern const char *const payments_kind_names[];

static inline int64_t pay_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static inline bool pay_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static inline void pay_copy(char *dst, size_t dstsz, const PGresult *r, int row, int col)
{
    snprintf(dst, dstsz, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* NULL for an empty string (SQL NULL parameter). */
static inline const char *pay_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

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

typedef struct {
    const payments_ctx *ctx;
    civil_date on;
    pay_job *job;
    stripe_result *res;
    payments_stats *stats;
} pay_apply_arg;

/* Step 1 (payment_prepare.c): one invoice's job, in its own transaction. */
db_status pay_prepare(db_conn *c, void *arg, char *err, size_t errlen);
/* Autopay off: the invoice's pending autopay is cancelled. */
db_status pay_cancel(db_conn *c, const char *inv, char *err, size_t errlen);
/* Step 3 (payment_apply.c): one answer, in its own transaction. */
db_status pay_apply(db_conn *c, void *arg, char *err, size_t errlen);
/* An unanswered attempt resolved by asking Stripe (rule 11.2). */
db_status pay_lookup_one(payments_ctx *ctx, pay_job *j, civil_date on, payments_stats *stats,
                         bool *abandoned, char *err, size_t errlen);

#endif
