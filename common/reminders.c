/* reminders.c: the reminder ladder (see reminders.h): the due list from
 * billing.reminders_due (sql/017), each one delivered by notify_deliver. */
#include "ledgerline/reminders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/queries.h"

static void row_of(PGresult *r, int i, reminder_due *d)
{
    memset(d, 0, sizeof *d);
    d->invoice_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    d->firm_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    d->client_id = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    d->step = atoi(PQgetvalue(r, i, 3));
    snprintf(d->legal_number, sizeof d->legal_number, "%s", PQgetvalue(r, i, 4));
    snprintf(d->due_date, sizeof d->due_date, "%s", PQgetvalue(r, i, 5));
    d->balance_due_cents = strtoll(PQgetvalue(r, i, 6), NULL, 10);
    snprintf(d->currency, sizeof d->currency, "%s", PQgetvalue(r, i, 7));
    snprintf(d->to_address, sizeof d->to_address, "%s", PQgetvalue(r, i, 8));
}

db_status reminders_due(db_conn *c, civil_date date, int64_t firm_id, int shard, int shards,
                        reminder_fn fn, void *arg, char *err, size_t errlen)
{
    if (shards < 1 || shard < 0 || shard >= shards) {
        ll_failf(err, errlen, "cannot list reminders: shard %d of %d is out of range", shard,
                 shards);
        return DB_PERMANENT;
    }
    char ds[11], firm[24], sh[16], shs[16];
    date_format(date, ds, sizeof ds);
    snprintf(sh, sizeof sh, "%d", shard);
    snprintf(shs, sizeof shs, "%d", shards);
    const char *p[] = {ds, firm_id > 0 ? db_i64(firm_id, firm, sizeof firm) : NULL, sh, shs};
    db_status st;
    PGresult *r = db_exec(c, llq_reminders_due, 4, p, &st, err, errlen);
    if (r == NULL)
        return st;
    for (int i = 0; i < PQntuples(r); i++) {
        reminder_due d;
        row_of(r, i, &d);
        fn(&d, arg);
    }
    PQclear(r);
    return DB_OK;
}

typedef struct {
    reminder_due *v;
    size_t n, cap;
    bool oom;
} due_list;

static void collect(const reminder_due *r, void *arg)
{
    due_list *l = arg;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        reminder_due *nv = realloc(l->v, cap * sizeof *nv);
        if (nv == NULL) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = *r;
}

static void tally(reminders_stats *s, notify_outcome o)
{
    switch (o) {
    case NOTIFY_SENT: s->sent++; break;
    case NOTIFY_ALREADY: s->already++; break;
    case NOTIFY_FAILED: s->failed++; break;
    default: s->retry++; break;
    }
}

db_status reminders_run(notify_ctx *ctx, civil_date date, int64_t firm_id, int shard, int shards,
                        reminders_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    due_list l = {0};
    db_status st = reminders_due(ctx->db, date, firm_id, shard, shards, collect, &l, err, errlen);
    if (st == DB_OK && l.oom) {
        ll_failf(err, errlen, "could not list reminders: out of memory");
        st = DB_TRANSIENT;
    }
    if (st != DB_OK) {
        free(l.v);
        return st;
    }
    stats->due = (int)l.n;
    db_status result = DB_OK;
    for (size_t i = 0; i < l.n; i++) {
        notify_request rq = {
            .kind = NOTIFY_REMINDER, .invoice_id = l.v[i].invoice_id, .step = l.v[i].step};
        notify_outcome o = NOTIFY_RETRY;
        char e[1024] = "";
        db_status s = notify_deliver(ctx, &rq, &o, e, sizeof e);
        if (s == DB_OK) {
            tally(stats, o);
            continue;
        }
        /* A permanent refusal (the invoice went back to draft?) is logged and
         * skipped; anything else leaves the tick to be retried. */
        char inv[24], step[16];
        snprintf(step, sizeof step, "%d", rq.step);
        log_msg(LL_LOG_WARN, "reminder not delivered", "invoice_id",
                db_i64(rq.invoice_id, inv, sizeof inv), "step", step, "status", db_status_name(s),
                "error", e, NULL);
        if (s == DB_PERMANENT) {
            stats->failed++;
            continue;
        }
        stats->retry++;
        if (result == DB_OK) {
            result = s;
            ll_failf(err, errlen, "%s", e);
        }
    }
    free(l.v);
    return result;
}
