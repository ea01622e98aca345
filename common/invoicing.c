/* invoicing.c: scheduled invoice generation (see invoicing.h).
 *
 * Owns the SQL of BILLING_RULES sections 2 and 3. The period arithmetic
 * mirrors date.c's period_for_date / period_fee (the tested C reference):
 * calendar month / quarter / year containing the business date, or the whole
 * engagement for one_time (which needs an end date); clipped to the
 * engagement's dates; not started = start after the business date; ended =
 * end before the full period began. Every amount (the package fee, prorated
 * or not, each hourly line, the tax) is rounded by
 * billing.round_to_granularity (sql/011): the exact value, in numeric (no
 * floating point), half up to a multiple of the currency's granularity, as
 * money.c's money_prorate_cur / money_hours_amount_cur / money_apply_bp_cur
 * do in C. That is to the minor unit, except in bhd, jod, kwd, omr and tnd
 * (rule 11.13: multiples of 10). Rates in line descriptions are written by
 * billing.format_amount with the currency's decimals ("150.000 kwd/h").
 */
#include "ledgerline/invoicing.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/queries.h"

/* The queries are sql/queries/invoicing_*.sql: the batch (keyset over
 * engagement ids; a shard is a set of firms, invoicing_batch.sql says why),
 * locked on a real run (invoicing_batch_locked.sql), and the would-be
 * invoices of a batch, previewed (invoicing_preview.sql) or written
 * (invoicing_insert.sql). The batch and the CTEs the last two share were C
 * macros spliced into each query; each file now spells its query out whole,
 * so that it reads and EXPLAINs as it runs (the CTEs are identical in the
 * two files: a change to one is made to both). */

typedef struct {
    const invoicing_params *p;
    bool lock;       /* real run: lock the batch's engagements */
    int64_t last_id; /* keyset cursor */
    int64_t count;   /* engagements in this batch */
    char *ids;       /* "{1,2,3}" for $2 */
} invoicing_batch;

static int invoicing_batch_size(const invoicing_params *p)
{
    return p->batch_size > 0 ? p->batch_size : INVOICING_DEFAULT_BATCH;
}

/* Takes the next batch of engagement ids (locking them FOR NO KEY UPDATE on a
 * real run, so two transactions never bill one engagement's time entries at
 * once; the main statement then runs with a snapshot taken after the lock). */
static db_status invoicing_next_batch(db_conn *c, invoicing_batch *b, char *err, size_t errlen)
{
    char last[24], shards[24], shard[24], firm[24], lim[24];
    const char *params[] = {
        db_i64(b->last_id, last, sizeof last), db_i64(b->p->shards, shards, sizeof shards),
        db_i64(b->p->shard, shard, sizeof shard), db_i64(b->p->firm_id, firm, sizeof firm),
        db_i64(invoicing_batch_size(b->p), lim, sizeof lim)};
    db_status st;
    PGresult *r = db_exec(c, b->lock ? llq_invoicing_batch_locked : llq_invoicing_batch, 5, params,
                          &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    free(b->ids);
    b->ids = malloc((size_t)n * 21 + 3);
    if (b->ids == NULL) {
        PQclear(r);
        ll_failf(err, errlen, "could not read the invoicing batch: out of memory");
        return DB_TRANSIENT;
    }
    size_t off = 0;
    b->ids[off++] = '{';
    for (int i = 0; i < n; i++) {
        const char *v = PQgetvalue(r, i, 0);
        size_t len = strlen(v);
        if (i > 0)
            b->ids[off++] = ',';
        memcpy(b->ids + off, v, len);
        off += len;
        b->last_id = strtoll(v, NULL, 10);
    }
    b->ids[off++] = '}';
    b->ids[off] = '\0';
    b->count = n;
    PQclear(r);
    return DB_OK;
}

typedef struct {
    invoicing_batch batch;
    invoicing_stats *stats;
    char date[11];
} invoicing_run_ctx;

/* One batch in one transaction (called by db_run_tx). */
static db_status invoicing_run_batch(db_conn *c, void *arg, char *err, size_t errlen)
{
    invoicing_run_ctx *x = arg;
    db_status st = invoicing_next_batch(c, &x->batch, err, errlen);
    if (st != DB_OK || x->batch.count == 0)
        return st;
    const char *params[] = {x->date, x->batch.ids, INVOICING_OUTBOX_TOPIC};
    PGresult *r = db_exec(c, llq_invoicing_insert, 3, params, &st, err, errlen);
    if (r == NULL)
        return st;
    /* Numbers were taken for every invoice the batch meant to issue; one
     * skipped by ON CONFLICT (another writer's invoice for that period)
     * would leave a gap: then nothing of the batch is kept, and the retry
     * sees that invoice and numbers only the others. */
    if (strcmp(PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6)) != 0) {
        ll_failf(err, errlen,
                 "could not number the batch's invoices without a gap: %s issued, %s numbers taken",
                 PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6));
        ll_detailf(err, errlen,
                   "Another writer created an invoice of the batch meanwhile; the batch is rolled "
                   "back and retried.");
        PQclear(r);
        return DB_TRANSIENT;
    }
    x->stats->engagements += x->batch.count;
    x->stats->invoices += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    x->stats->lines += strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    x->stats->time_entries += strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    return DB_OK;
}

static bool invoicing_params_valid(const invoicing_params *p, char *err, size_t errlen)
{
    if (p == NULL || p->shards < 1 || p->shard < 0 || p->shard >= p->shards || p->firm_id < 0) {
        ll_failf(err, errlen, "cannot invoice: invalid parameters (shard/shards/firm)");
        return false;
    }
    return true;
}

db_status invoicing_run(db_conn *c, const invoicing_params *p, invoicing_stats *out, char *err,
                        size_t errlen)
{
    invoicing_stats local = {0};
    invoicing_stats *stats = out ? out : &local;
    memset(stats, 0, sizeof *stats);
    if (!invoicing_params_valid(p, err, errlen))
        return DB_PERMANENT;
    invoicing_run_ctx x = {.batch = {.p = p, .lock = true}, .stats = stats};
    if (date_format(p->business_date, x.date, sizeof x.date) == NULL) {
        ll_failf(err, errlen, "cannot invoice: the business date is invalid");
        return DB_PERMANENT;
    }
    /* JIT compilation costs more than it saves on statements of one batch
     * (tens of ms each), and a misestimate could trigger it. */
    db_status st = db_command(c, "SET jit = off", 0, NULL, err, errlen);
    if (st != DB_OK)
        return st;
    for (;;) {
        int64_t before = stats->invoices;
        st = db_run_tx(c, invoicing_run_batch, &x, err, errlen);
        if (st != DB_OK || x.batch.count == 0)
            break;
        stats->batches++;
        if (stats->invoices > before) {
            char n[24], last[24];
            log_msg(LL_LOG_DEBUG, "invoicing batch committed", "business_date", x.date, "invoices",
                    db_i64(stats->invoices - before, n, sizeof n), "last_engagement_id",
                    db_i64(x.batch.last_id, last, sizeof last), NULL);
        }
        if (x.batch.count < invoicing_batch_size(p))
            break;
    }
    free(x.batch.ids);
    return st;
}

static void invoicing_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src);
}

static db_status invoicing_preview_batch(db_conn *c, invoicing_batch *b, const char *date,
                                         invoicing_preview *out, char *err, size_t errlen)
{
    const char *params[] = {date, b->ids};
    db_status st;
    PGresult *r = db_exec(c, llq_invoicing_preview, 2, params, &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    if (n > 0) {
        invoicing_preview_row *rows = realloc(out->rows, (out->count + (size_t)n) * sizeof *rows);
        if (rows == NULL) {
            PQclear(r);
            ll_failf(err, errlen, "could not preview the invoices: out of memory");
            return DB_TRANSIENT;
        }
        out->rows = rows;
    }
    for (int i = 0; i < n; i++) {
        invoicing_preview_row *row = &out->rows[out->count];
        memset(row, 0, sizeof *row);
        invoicing_copy(row->invoice_number, sizeof row->invoice_number, PQgetvalue(r, i, 0));
        row->engagement_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        row->firm_id = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        row->client_id = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        invoicing_copy(row->period_start, sizeof row->period_start, PQgetvalue(r, i, 4));
        invoicing_copy(row->period_end, sizeof row->period_end, PQgetvalue(r, i, 5));
        invoicing_copy(row->currency, sizeof row->currency, PQgetvalue(r, i, 6));
        row->subtotal_cents = strtoll(PQgetvalue(r, i, 7), NULL, 10);
        row->tax_cents = strtoll(PQgetvalue(r, i, 8), NULL, 10);
        row->total_cents = strtoll(PQgetvalue(r, i, 9), NULL, 10);
        row->lines_json = strdup(PQgetisnull(r, i, 10) ? "[]" : PQgetvalue(r, i, 10));
        out->count++;
        if (row->lines_json == NULL) {
            PQclear(r);
            ll_failf(err, errlen, "could not preview the invoices: out of memory");
            return DB_TRANSIENT;
        }
    }
    PQclear(r);
    return DB_OK;
}

db_status invoicing_preview_run(db_conn *c, const invoicing_params *p, invoicing_preview *out,
                                char *err, size_t errlen)
{
    out->rows = NULL;
    out->count = 0;
    if (!invoicing_params_valid(p, err, errlen))
        return DB_PERMANENT;
    char date[11];
    if (date_format(p->business_date, date, sizeof date) == NULL) {
        ll_failf(err, errlen, "cannot invoice: the business date is invalid");
        return DB_PERMANENT;
    }
    db_status st =
        db_command(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err, errlen);
    if (st != DB_OK)
        return st;
    invoicing_batch b = {.p = p, .lock = false};
    for (;;) {
        st = invoicing_next_batch(c, &b, err, errlen);
        if (st != DB_OK || b.count == 0)
            break;
        st = invoicing_preview_batch(c, &b, date, out, err, errlen);
        if (st != DB_OK || b.count < invoicing_batch_size(p))
            break;
    }
    free(b.ids);
    char e2[256];
    db_command(c, st == DB_OK ? "COMMIT" : "ROLLBACK", 0, NULL, e2, sizeof e2);
    return st;
}

void invoicing_preview_free(invoicing_preview *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        free(p->rows[i].lines_json);
    free(p->rows);
    p->rows = NULL;
    p->count = 0;
}
