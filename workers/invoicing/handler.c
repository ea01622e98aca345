/* handler.c: one invoicing tick shard -> invoices (common/invoicing.c), the
 * tick's idempotency record, and the outbox relay (common/outbox.c).
 *
 * Batches commit one by one (see invoicing.h); the tick's key is recorded in
 * processed_messages after the last batch. A crash in between replays the
 * tick, which creates nothing twice (unique engagement/period start) and then
 * records the key. */
#include "handler.h"

#include <stdio.h>
#include <string.h>

#include "ledgerline/failf.h"
#include "ledgerline/envelope.h"
#include "ledgerline/invoicing.h"
#include "ledgerline/log.h"
#include "ledgerline/outbox.h"
#include "ledgerline/processed.h"

static db_status invoicing_worker_noop(db_conn *c, void *arg, char *err, size_t errlen)
{
    (void)c, (void)arg, (void)err, (void)errlen;
    return DB_OK;
}

static kafka_result invoicing_worker_result(db_status st)
{
    return st == DB_PERMANENT ? KAFKA_MSG_PERMANENT : KAFKA_MSG_TRANSIENT;
}

/* true when the key is already recorded (the tick was applied before). */
static db_status invoicing_worker_seen(invoicing_worker *w, const char *key, bool *seen, char *err,
                                       size_t errlen)
{
    return processed_seen(w->db, w->group, key, seen, err, errlen);
}

kafka_result invoicing_worker_handle(void *ctx, const kafka_msg *m, char *err, size_t errlen)
{
    invoicing_worker *w = ctx;
    tick_msg t;
    if (tick_parse(m->value, m->value_len, &t, err, errlen) != 0)
        return KAFKA_MSG_PERMANENT;
    if (t.kind != TICK_INVOICING) {
        ll_failf(err, errlen, "expected a tick.invoicing, got tick.%s", tick_kind_name(t.kind));
        return KAFKA_MSG_PERMANENT;
    }
    if (!db_ensure(w->db, 0)) {
        ll_failf(err, errlen, "database connection lost and not yet back");
        return KAFKA_MSG_TRANSIENT;
    }
    bool seen = false;
    db_status st = invoicing_worker_seen(w, t.idempotency_key, &seen, err, errlen);
    if (st != DB_OK)
        return invoicing_worker_result(st);
    char n1[24], n2[24], n3[24];
    if (!seen) {
        invoicing_params p = {.business_date = t.business_date,
                              .shard = t.shard,
                              .shards = t.shards,
                              .firm_id = t.firm_id,
                              .batch_size = w->batch_size};
        invoicing_stats s;
        st = invoicing_run(w->db, &p, &s, err, errlen);
        if (st != DB_OK)
            return invoicing_worker_result(st);
        st = db_run_once(w->db, w->group, t.idempotency_key, invoicing_worker_noop, NULL, err,
                         errlen);
        if (st != DB_OK && st != DB_DUPLICATE)
            return invoicing_worker_result(st);
        w->ticks_applied++;
        w->invoices_created += s.invoices;
        log_msg(LL_LOG_INFO, "invoicing tick applied", "idempotency_key", t.idempotency_key,
                "engagements", db_i64(s.engagements, n1, sizeof n1), "invoices",
                db_i64(s.invoices, n2, sizeof n2), "time_entries",
                db_i64(s.time_entries, n3, sizeof n3), NULL);
    } else {
        w->ticks_duplicate++;
        log_msg(LL_LOG_INFO, "invoicing tick already applied", "idempotency_key", t.idempotency_key,
                NULL);
    }
    if (w->relay != NULL) {
        outbox_relay_kick(w->relay);
        return KAFKA_MSG_OK;
    }
    int64_t sent = 0;
    st = outbox_relay_all(w->db, w->producer, w->prefix, 0, &sent, err, errlen);
    w->events_published += sent;
    if (st != DB_OK) {
        /* The tick is recorded; the rows stay in the outbox for the next
         * relay pass, so a retry of this message only relays. */
        log_msg(LL_LOG_WARN, "outbox relay incomplete", "idempotency_key", t.idempotency_key,
                "error", err, NULL);
        return KAFKA_MSG_TRANSIENT;
    }
    return KAFKA_MSG_OK;
}
