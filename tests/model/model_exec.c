/* model_exec.c: running one batch of model histories against the real
 * workers (see model.h and tests/model/README.md).
 *
 * A batch is rounds. Each round the batch's business date may move on
 * (and the stand-in's clock with it: a day is 24 h of Stripe's clock, so
 * its idempotency keys expire as they would), then every history runs its
 * next operation: first the ones that need no fault of their own, all
 * together (their ticks and webhooks published at once, then waited for),
 * then each kind of faulted tick in a phase of its own (lost answers, 500s,
 * 429s, 401s), so that a fault the stand-in applies to "the next N
 * requests" hits only the histories that drew it. After the round the
 * stand-in's event log is read and each new event is queued for its
 * history, to be delivered (or duplicated, reordered, withheld) by the
 * history's webhook operations. After the last round comes quiet: every
 * event delivered, ticks until no attempt is unfinished, dead letters
 * replayed as an operator would. The books of each history's firm are
 * snapshotted after each of its steps for the oracle (model_check.c). */
#include "model_run.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ledgerline/db.h"
#include "ledgerline/envelope.h"
#include "ledgerline/kafka.h"
#include "ledgerline/topics.h"
#include "support/ctltest.h"
#include "support/dbtest.h"

#define DAY_S 86400
#define WAIT_LIMIT_MS 120000

/* ---- the processes of a run -------------------------------------------- */

static void env_spawn_dispute(model_env *env)
{
    env->dispute = payh_spawn(&env->H, LL_DISPUTE_WORKER_BIN, env->log_dispute);
}

void model_env_start(model_env *env)
{
    payh_start(&env->H, NULL);
    snprintf(env->group_dispute, sizeof env->group_dispute, "%sbilling-dispute-worker",
             env->H.prefix);
    snprintf(env->log_dispute, sizeof env->log_dispute, "/tmp/%sdispute.log", env->H.prefix);
    snprintf(env->evidence_file, sizeof env->evidence_file, "/tmp/%sevidence.json", env->H.prefix);
    FILE *f = fopen(env->evidence_file, "w");
    assert_non_null(f);
    fputs("{\"customer_name\":\"Model Client\",\"service_date\":\"2026-12-01\","
          "\"uncategorized_text\":\"Work delivered as agreed.\"}\n",
          f);
    fclose(f);
    /* The topic exists before the dispute worker subscribes. */
    payh_produce(&env->H, TOPIC_STRIPE_DISPUTES, "warmup",
                 "{\"id\":\"evt_warmup\",\"type\":\"customer.created\",\"data\":{\"object\":{}}}",
                 NULL, 0);
    env_spawn_dispute(env);
    /* More instances of the charging workers, as an operator scales a
     * topic: ticks are keyed by firm and shard, so the instances charge
     * different histories at once (a tick inside a fault spends seconds
     * in the worker's own retries). */
    for (int i = 0; i < 2; i++)
        env->autopay_more[i] = payh_spawn(&env->H, LL_AUTOPAY_WORKER_BIN, env->H.log_autopay);
    payh_start_retry2(&env->H);
}

static int env_stop_pid(pid_t pid)
{
    if (pid <= 0)
        return 0;
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 600; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        payh_sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

void model_env_stop(model_env *env)
{
    int d = env_stop_pid(env->dispute);
    env->dispute = 0;
    for (int i = 0; i < 2; i++) {
        int a = env_stop_pid(env->autopay_more[i]);
        env->autopay_more[i] = 0;
        d = d != 0 ? d : a;
    }
    if (d != 0)
        model_env_dump_logs(env);
    payh_stop(&env->H);
    unlink(env->log_dispute);
    unlink(env->evidence_file);
    assert_int_equal(d, 0);
}

void model_env_kill(model_env *env, int which)
{
    env->stats.kills++;
    if (which == 0) {
        payh_kill_autopay(&env->H);
        payh_start_autopay(&env->H);
    } else if (which == 3) {
        kill(env->autopay_more[0], SIGKILL);
        waitpid(env->autopay_more[0], NULL, 0);
        env->autopay_more[0] = payh_spawn(&env->H, LL_AUTOPAY_WORKER_BIN, env->H.log_autopay);
    } else if (which == 1) {
        kill(env->H.retry, SIGKILL);
        waitpid(env->H.retry, NULL, 0);
        payh_start_retry(&env->H);
    } else {
        kill(env->dispute, SIGKILL);
        waitpid(env->dispute, NULL, 0);
        env_spawn_dispute(env);
    }
}

void model_env_trim_logs(model_env *env)
{
    /* The workers append (O_APPEND): truncating keeps them writing at the end. */
    if (truncate(env->H.log_autopay, 0) != 0 || truncate(env->H.log_retry, 0) != 0 ||
        truncate(env->log_dispute, 0) != 0)
        fprintf(stderr, "model: could not trim the worker logs: %s\n", strerror(errno));
}

static void env_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    static char ring[200][1024];
    int n = 0;
    char line[1024];
    while (fgets(line, sizeof line, f))
        snprintf(ring[n++ % 200], sizeof ring[0], "%s", line);
    fclose(f);
    if (lines > 200)
        lines = 200;
    int start = n > lines ? n - lines : 0;
    fprintf(stderr, "---- last lines of %s\n", path);
    for (int i = start; i < n; i++)
        fputs(ring[i % 200], stderr);
}

void model_env_dump_logs(model_env *env)
{
    env_tail(env->H.log_autopay, 60);
    env_tail(env->H.log_retry, 60);
    env_tail(env->log_dispute, 60);
}

int model_ctl(model_env *env, char *out, size_t outsz, char *err, size_t errsz,
              const char *const *argv)
{
    char base[192], prefix[128];
    snprintf(base, sizeof base, "STRIPE_API_BASE=%s", standin_url(env->H.stripe));
    snprintf(prefix, sizeof prefix, "KAFKA_TOPIC_PREFIX=%s", env->H.prefix);
    const char *envv[] = {base, "STRIPE_SECRET_KEY=sk_test_Ledgerline0123456789", prefix, NULL};
    return ctltest_argv(out, outsz, err, errsz, envv, argv);
}

/* ---- SQL ----------------------------------------------------------------- */

static PGresult *q(model_env *env, const char *sql, int n, const char *const *p)
{
    PGresult *r = PQexecParams(env->H.pg, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("model: query failed: %s\n%s", PQresultErrorMessage(r), sql);
    return r;
}

static int64_t q_i64(model_env *env, const char *sql, int n, const char *const *p)
{
    PGresult *r = q(env, sql, n, p);
    int64_t v =
        PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

#define I64(v) db_i64((v), (char[24]){0}, 24)

json_t *model_snapshot(model_env *env, int64_t firm)
{
    /* Everything the oracle reads of one firm, in one statement (one
     * snapshot of the database). */
    static const char sql[] =
        "SELECT json_build_object("
        " 'invoices', (SELECT coalesce(json_agg(json_build_object('id', i.id, 'client',"
        "   i.client_id, 'total', i.total_cents, 'paid', i.amount_paid_cents, 'refunded',"
        "   i.refunded_cents, 'status', i.status, 'before', coalesce(i.status_before_dispute, ''),"
        "   'autopay_status', i.autopay_status, 'open_disputes', (SELECT count(*) FROM"
        "   billing.payment_disputes d WHERE d.invoice_id = i.id AND d.status <> 'closed'))"
        "   ORDER BY i.id), '[]') FROM billing.invoices i WHERE i.firm_id = $1::bigint),"
        " 'payments', (SELECT coalesce(json_agg(json_build_object('id', p.id, 'invoice',"
        "   p.invoice_id, 'pi', p.stripe_payment_intent_id, 'received', p.received_cents,"
        "   'applied', p.amount_cents, 'back_invoice', p.back_invoice_cents, 'charge',"
        "   coalesce(p.stripe_charge_id, '')) ORDER BY p.id), '[]') FROM billing.payments p"
        "   WHERE p.firm_id = $1::bigint AND p.source = 'stripe'),"
        " 'ledger', (SELECT coalesce(json_agg(json_build_object('id', l.id, 'client',"
        "   l.client_id, 'type', l.entry_type, 'amount', l.amount_cents, 'source',"
        "   coalesce(l.source, ''), 'use', coalesce(l.use, ''), 'payment',"
        "   coalesce(l.source_payment_id, 0), 'taken_back', coalesce(l.taken_back_entry_id, 0),"
        "   'expired', coalesce(l.expired_entry_id, 0), 'invoice',"
        "   coalesce(l.applied_to_invoice_id, 0), 'by', coalesce(l.created_by, ''))"
        "   ORDER BY l.created_at, l.id), '[]') FROM billing.credit_ledger l"
        "   WHERE l.firm_id = $1::bigint),"
        " 'refunds', (SELECT coalesce(json_agg(json_build_object('id', f.stripe_refund_id,"
        "   'invoice', f.invoice_id, 'charge', f.stripe_charge_id, 'amount', f.amount_cents,"
        "   'applied', f.applied_cents, 'status', f.status) ORDER BY f.id), '[]')"
        "   FROM billing.refunds f WHERE f.firm_id = $1::bigint),"
        " 'disputes', (SELECT coalesce(json_agg(json_build_object('id', d.stripe_dispute_id,"
        "   'invoice', d.invoice_id, 'charge', coalesce(d.stripe_charge_id, ''), 'status',"
        "   d.status, 'resolution', coalesce(d.resolution, ''), 'amount', d.amount_cents)"
        "   ORDER BY d.id), '[]') FROM billing.payment_disputes d WHERE d.firm_id = $1::bigint),"
        " 'attempts', (SELECT coalesce(json_agg(json_build_object('id', a.id, 'invoice',"
        "   a.invoice_id, 'key', a.idempotency_key, 'status', a.status, 'pi',"
        "   coalesce(a.stripe_payment_intent_id, ''), 'code', coalesce(a.failure_code, ''))"
        "   ORDER BY a.id), '[]') FROM billing.payment_attempts a WHERE a.firm_id = $1::bigint)"
        ")::text";
    const char *p[] = {I64(firm)};
    PGresult *r = q(env, sql, 1, p);
    json_error_t je;
    json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, &je);
    PQclear(r);
    if (j == NULL)
        fail_msg("model: snapshot of firm %lld is not JSON: %s", (long long)firm, je.text);
    return j;
}

/* ---- Stripe's side ------------------------------------------------------- */

json_t *model_find(json_t *dump, const char *id)
{
    size_t i;
    json_t *o;
    if (id == NULL || id[0] == '\0')
        return NULL;
    json_array_foreach(dump, i, o)
    {
        const char *x = json_string_value(json_object_get(o, "id"));
        if (x != NULL && strcmp(x, id) == 0)
            return o;
    }
    return NULL;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static const char *jmeta(const json_t *o, const char *key)
{
    return jstr(json_object_get(o, "metadata"), key);
}

static void batch_dumps(model_batch *b)
{
    model_env *env = b->env;
    json_decref(b->pis);
    json_decref(b->refunds);
    json_decref(b->disputes);
    json_decref(b->charges);
    b->pis = standin_payment_intents(env->H.stripe);
    b->refunds = standin_refunds(env->H.stripe);
    b->disputes = standin_disputes(env->H.stripe);
    b->charges = standin_charges(env->H.stripe);
}

model_history *model_history_of_invoice(model_batch *b, int64_t invoice_id, int *inv_index)
{
    for (int k = 0; k < b->nh; k++) {
        model_history *h = b->h[k];
        for (int i = 0; i < h->ninv; i++)
            if (h->inv[i].id == invoice_id) {
                if (inv_index)
                    *inv_index = i;
                return h;
            }
    }
    return NULL;
}

/* The invoice a PaymentIntent of the stand-in names (0 when none). */
static int64_t pi_invoice(model_batch *b, const char *pi)
{
    json_t *o = model_find(b->pis, pi);
    return o ? strtoll(jmeta(o, "invoice_id"), NULL, 10) : 0;
}

static int64_t charge_invoice(model_batch *b, const char *charge)
{
    size_t i;
    json_t *o;
    json_array_foreach(b->pis, i, o)
    {
        if (strcmp(jstr(o, "latest_charge"), charge) == 0)
            return strtoll(jmeta(o, "invoice_id"), NULL, 10);
    }
    return 0;
}

/* Reads the stand-in's new events and queues each for its history. */
static void batch_collect(model_batch *b)
{
    json_t *evs = standin_events_after(b->env->H.stripe, b->event_seq);
    if (json_array_size(evs) > 0)
        batch_dumps(b);
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        b->event_seq = json_integer_value(json_object_get(e, "seq"));
        json_t *ev = json_object_get(e, "event");
        json_t *o = json_object_get(json_object_get(ev, "data"), "object");
        const char *type = jstr(ev, "type"), *kind = jstr(o, "object");
        model_event m = {0};
        snprintf(m.id, sizeof m.id, "%s", jstr(ev, "id"));
        snprintf(m.type, sizeof m.type, "%s", type);
        int64_t invoice = 0;
        if (strncmp(type, "payment_intent.", 15) == 0) {
            m.topic = TOPIC_STRIPE_PAYMENTS;
            m.group = strcmp(type, "payment_intent.payment_failed") == 0 ? MODEL_G_RETRY
                                                                         : MODEL_G_AUTOPAY;
            snprintf(m.key, sizeof m.key, "%s", jstr(o, "id"));
            invoice = strtoll(jmeta(o, "invoice_id"), NULL, 10);
        } else {
            m.topic = TOPIC_STRIPE_DISPUTES;
            m.group = MODEL_G_DISPUTE;
            const char *charge = strcmp(kind, "charge") == 0 ? jstr(o, "id") : jstr(o, "charge");
            snprintf(m.key, sizeof m.key, "%s", charge);
            invoice = strtoll(jmeta(o, "invoice_id"), NULL, 10);
            if (invoice == 0)
                invoice = pi_invoice(b, jstr(o, "payment_intent"));
            if (invoice == 0)
                invoice = charge_invoice(b, charge);
        }
        model_history *h = model_history_of_invoice(b, invoice, NULL);
        if (h == NULL)
            continue; /* not a history's (cannot happen: one stand-in per batch) */
        if (h->nevents == MODEL_MAX_EVENTS) {
            model_log(h, "      (event %s %s not queued: the history's event list is full)", m.type,
                      m.id);
            continue;
        }
        m.body = json_dumps(ev, JSON_COMPACT);
        h->ev[h->nevents++] = m;
    }
    json_decref(evs);
}

/* ---- publishing and waiting ---------------------------------------------- */

static const char *batch_group(const model_batch *b, int g)
{
    const model_env *env = b->env;
    return g == MODEL_G_AUTOPAY ? env->H.group_autopay
           : g == MODEL_G_RETRY ? env->H.group_retry
                                : env->group_dispute;
}

static void batch_wait_for(model_batch *b, int group, const char *key)
{
    if (b->nwaits == b->capwaits) {
        b->capwaits = b->capwaits ? b->capwaits * 2 : 256;
        b->waits = realloc(b->waits, b->capwaits * sizeof *b->waits);
        assert_non_null(b->waits);
    }
    model_wait *w = &b->waits[b->nwaits++];
    w->group = group;
    snprintf(w->key, sizeof w->key, "%s", key);
}

static void batch_out(model_batch *b, const char *topic, const char *key, char *value,
                      const char *id, const char *type)
{
    if (b->nout == b->capout) {
        b->capout = b->capout ? b->capout * 2 : 256;
        b->out = realloc(b->out, b->capout * sizeof *b->out);
        assert_non_null(b->out);
    }
    model_msg *m = &b->out[b->nout++];
    m->topic = topic;
    snprintf(m->key, sizeof m->key, "%s", key);
    m->value = value;
    snprintf(m->id, sizeof m->id, "%s", id ? id : "");
    snprintf(m->type, sizeof m->type, "%s", type ? type : "");
}

/* A tick of the history's firm on the batch's date, split in a way this
 * date has not seen yet for this history (so it is applied again). */
static void queue_tick(model_batch *b, model_history *h, tick_kind kind)
{
    int k = kind == TICK_AUTOPAY ? 0 : 1;
    char day[16];
    date_format(b->day, day, sizeof day);
    if (strcmp(h->split_date[k], day) != 0) {
        snprintf(h->split_date[k], sizeof h->split_date[k], "%s", day);
        h->split[k] = 1;
    }
    int n = h->split[k]++;
    char topic[TOPIC_NAME_MAX + 1];
    snprintf(topic, sizeof topic, "ticks.%s", tick_kind_name(kind));
    for (int s = 0; s < n; s++) {
        tick_msg t;
        assert_int_equal(tick_init(&t, kind, b->day, NULL, s, n, h->firm), 0);
        /* keyed by firm and shard (not the shard alone): the histories'
         * ticks spread over the partitions, so over the worker instances */
        char key[48];
        snprintf(key, sizeof key, "%lld-%d", (long long)h->firm, s);
        batch_out(b, kind == TICK_AUTOPAY ? TOPIC_TICKS_AUTOPAY : TOPIC_TICKS_RETRY, key,
                  tick_to_json(&t), NULL, NULL);
        batch_wait_for(b, kind == TICK_AUTOPAY ? MODEL_G_AUTOPAY : MODEL_G_RETRY,
                       t.idempotency_key);
    }
}

static void queue_event(model_batch *b, model_history *h, model_event *e)
{
    char *copy = strdup(e->body);
    assert_non_null(copy);
    batch_out(b, e->topic, e->key, copy, e->id, e->type);
    batch_wait_for(b, e->group, e->id);
    e->delivered++;
    b->env->stats.events_delivered++;
    if (e->delivered > 1)
        b->env->stats.duplicates++;
    (void)h;
}

static void batch_publish(model_batch *b)
{
    if (b->nout == 0)
        return;
    model_env *env = b->env;
    kafka_out_msg *msgs = calloc(b->nout, sizeof *msgs);
    kafka_header *hd = calloc(b->nout * 3, sizeof *hd);
    char(*names)[TOPIC_NAME_MAX + 1] = calloc(b->nout, sizeof *names);
    kafka_status *res = calloc(b->nout, sizeof *res);
    assert_true(msgs && hd && names && res);
    for (size_t i = 0; i < b->nout; i++) {
        model_msg *m = &b->out[i];
        assert_int_equal(topic_name(env->H.prefix, m->topic, names[i], sizeof names[i]), 0);
        msgs[i] = (kafka_out_msg){.topic = names[i],
                                  .key = m->key,
                                  .keylen = strlen(m->key),
                                  .value = m->value,
                                  .valuelen = strlen(m->value)};
        if (m->id[0]) {
            hd[3 * i] = (kafka_header){"stripe-event-id", m->id, strlen(m->id)};
            hd[3 * i + 1] = (kafka_header){"stripe-event-type", m->type, strlen(m->type)};
            hd[3 * i + 2] = (kafka_header){"received-at", "2026-12-03T00:00:00Z", 20};
            msgs[i].headers = &hd[3 * i];
            msgs[i].nheaders = 3;
        }
    }
    char err[512];
    kafka_status st =
        kafka_produce_batch_wait(env->H.producer, msgs, b->nout, 30000, res, err, sizeof err);
    if (st != KAFKA_OK)
        fail_msg("model: publishing %zu messages failed: %s", b->nout, err);
    for (size_t i = 0; i < b->nout; i++)
        free(b->out[i].value);
    b->nout = 0;
    free(msgs);
    free(hd);
    free(names);
    free(res);
}

/* Waits until every queued key was recorded by its group (or, for a Stripe
 * event that matched no invoice, its ":unmatched" audit key was). */
static void batch_wait(model_batch *b)
{
    if (b->nwaits == 0)
        return;
    model_env *env = b->env;
    /* text[] literals of the groups and keys */
    size_t cap = 64;
    for (size_t i = 0; i < b->nwaits; i++)
        cap += strlen(b->waits[i].key) * 2 + 8;
    char *groups = malloc(b->nwaits * 8 + 64), *keys = malloc(cap);
    assert_true(groups && keys);
    size_t gl = 0, kl = 0;
    groups[gl++] = '{';
    keys[kl++] = '{';
    for (size_t i = 0; i < b->nwaits; i++) {
        gl += (size_t)sprintf(groups + gl, "%s%d", i ? "," : "", b->waits[i].group);
        kl += (size_t)sprintf(keys + kl, "%s\"%s\"", i ? "," : "", b->waits[i].key);
    }
    groups[gl++] = '}';
    groups[gl] = '\0';
    keys[kl++] = '}';
    keys[kl] = '\0';
    const char *p[] = {groups, keys, env->H.group_autopay, env->H.group_retry, env->group_dispute};
    static const char sql[] = "SELECT count(*) FROM unnest($1::int[], $2::text[]) AS w(g, k)"
                              " WHERE EXISTS (SELECT 1 FROM billing.processed_messages m"
                              "  WHERE m.consumer = (ARRAY[$3, $4, $5])[w.g + 1]"
                              "  AND m.idempotency_key IN (w.k, w.k || ':unmatched'))";
    int64_t want = (int64_t)b->nwaits, got = 0;
    for (int waited = 0; waited < WAIT_LIMIT_MS; waited += 20) {
        got = q_i64(env, sql, 5, p);
        if (got >= want)
            break;
        payh_sleep_ms(20);
    }
    if (got < want) {
        for (size_t i = 0; i < b->nwaits; i++) {
            const char *pk[] = {batch_group(b, b->waits[i].group), b->waits[i].key};
            if (q_i64(env,
                      "SELECT count(*) FROM billing.processed_messages WHERE consumer = $1"
                      " AND idempotency_key IN ($2, $2 || ':unmatched')",
                      2, pk) == 0)
                fprintf(stderr, "model: never recorded: %s by %s\n", b->waits[i].key,
                        batch_group(b, b->waits[i].group));
        }
        model_env_dump_logs(env);
        free(groups);
        free(keys);
        fail_msg("model: batch %d: %lld of %lld messages were not recorded in %d s (a worker"
                 " stuck, or a message dead-lettered without a record)",
                 b->index, (long long)(want - got), (long long)want, WAIT_LIMIT_MS / 1000);
    }
    free(groups);
    free(keys);
    b->nwaits = 0;
}

static void batch_flush(model_batch *b)
{
    batch_publish(b);
    batch_wait(b);
}

/* ---- the world ------------------------------------------------------------- */

static void batch_set_clock(model_batch *b, int64_t extra_s)
{
    /* Stripe's clock at noon of the business date (never behind real time:
     * the first business date is tomorrow), so that a day later every key
     * used today is older than 24 h, as at Stripe. */
    int64_t want = (int64_t)b->day.days * DAY_S + 12 * 3600 + extra_s;
    int64_t now = standin_clock_now(b->env->H.stripe);
    if (want > now)
        standin_clock_set(b->env->H.stripe, want);
}

static void history_world(model_batch *b, model_history *h)
{
    model_env *env = b->env;
    h->firm = dbtest_firm(env->H.pg);
    char day[16], due[16];
    date_format(b->day, day, sizeof day);
    model_log(h, "history %d seed %llu firm %lld", h->index, (unsigned long long)h->seed,
              (long long)h->firm);
    for (int c = 0; c < h->nclients; c++) {
        model_client *cl = &h->cl[c];
        cl->id = payh_client(&env->H, h->firm, cl->pm[0] ? cl->pm : NULL, cl->autopay);
        snprintf(cl->customer, sizeof cl->customer, "cus_M%lldx%d", (long long)h->firm, c);
        const char *p[] = {cl->customer, I64(cl->id)};
        PQclear(q(env, "UPDATE billing.clients SET stripe_customer_id = $1 WHERE id = $2::bigint",
                  2, p));
        model_log(h, "  client %d (id %lld): autopay %s, %s", c, (long long)cl->id,
                  cl->autopay ? "on" : "off", cl->pm[0] ? cl->pm : "no payment method");
    }
    for (int i = 0; i < h->ninv; i++) {
        model_invoice *v = &h->inv[i];
        date_format(date_add_days(b->day, v->due_days), due, sizeof due);
        v->id = payh_invoice(&env->H, h->firm, h->cl[v->client].id, v->total, day, due, v->cadence);
        /* as billingctl invoice create records it (section 9) */
        const char *pa[] = {I64(h->firm), I64(v->id)};
        PQclear(q(env,
                  "SELECT billing.audit($1::bigint, 'invoice_created', 'INFO', 'model',"
                  " jsonb_build_object('invoice_id', $2::bigint))",
                  2, pa));
        model_log(h, "  invoice %d (id %lld): client %d, %lld cents, issued %s, due %s, %s", i,
                  (long long)v->id, v->client, (long long)v->total, day, due, v->cadence);
    }
}

static model_step *history_step(model_batch *b, model_history *h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new step of the history (its books are snapshotted after the round). */
static model_step *history_step(model_batch *b, model_history *h, const char *fmt, ...)
{
    (void)b;
    if (h->nsteps == MODEL_MAX_SNAPS)
        return NULL;
    model_step *s = &h->steps[h->nsteps++];
    memset(s, 0, sizeof *s);
    s->apply_inv = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->what, sizeof s->what, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- operations ------------------------------------------------------------ */

static void op_skip(model_batch *b, model_history *h, const model_op *o, const char *why)
{
    b->env->stats.skipped[o->kind]++;
    model_log(h, "      skipped: %s", why);
}

/* The history's PaymentIntents at Stripe (by the metadata of its invoices),
 * filtered by status ("" = any). */
static int history_pis(model_batch *b, model_history *h, const char *status, json_t **out, int max)
{
    int n = 0;
    size_t i;
    json_t *o;
    json_array_foreach(b->pis, i, o)
    {
        int64_t inv = strtoll(jmeta(o, "invoice_id"), NULL, 10);
        int idx;
        if (model_history_of_invoice(b, inv, &idx) != h)
            continue;
        if (status[0] && strcmp(jstr(o, "status"), status) != 0)
            continue;
        if (n < max)
            out[n++] = o;
    }
    return n;
}

static json_t *charge_of(model_batch *b, const char *charge)
{
    return model_find(b->charges, charge);
}

static void op_webhooks(model_batch *b, model_history *h, const model_op *o)
{
    int mode = (int)(o->a % 6);
    static const char *const modes[] = {"all in order",    "all reordered", "some, reordered",
                                        "all, some twice", "some withheld", "the oldest only"};
    int idx[MODEL_MAX_EVENTS], n = 0;
    for (int e = 0; e < h->nevents; e++)
        if (h->ev[e].delivered == 0 && !h->ev[e].withheld)
            idx[n++] = e;
    if (n == 0 && mode != 3) {
        op_skip(b, h, o, "no event waiting");
        return;
    }
    if (mode == 1 || mode == 2 || mode == 3)
        for (int i = n - 1; i > 0; i--) {
            int j = (int)model_below(&h->rng, (uint64_t)i + 1);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    char list[768] = "";
    size_t len = 0;
    int sent = 0;
    for (int i = 0; i < n; i++) {
        model_event *e = &h->ev[idx[i]];
        bool go = mode == 0 || mode == 1 || mode == 3 || (mode == 5 && i == 0) ||
                  ((mode == 2 || mode == 4) && model_chance(&h->rng, 50));
        if (mode == 4 && !go) {
            e->withheld = true;
            b->env->stats.withheld++;
            len += (size_t)snprintf(list + len, sizeof list - len > len ? sizeof list - len : 0,
                                    " withheld:%s", e->type);
            continue;
        }
        if (!go)
            continue;
        queue_event(b, h, e);
        sent++;
        if (len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, " %s(%s)", e->type, e->id + 4);
    }
    if (mode == 3) {
        /* duplicates: some of what was delivered before or now, again */
        for (int e = 0; e < h->nevents; e++) {
            model_event *x = &h->ev[e];
            if (x->delivered > 0 && !x->withheld && model_chance(&h->rng, 40)) {
                queue_event(b, h, x);
                sent++;
                if (len < sizeof list)
                    len += (size_t)snprintf(list + len, sizeof list - len, " again:%s(%s)", x->type,
                                            x->id + 4);
            }
        }
    }
    if (sent == 0 && mode != 4) {
        op_skip(b, h, o, "nothing chosen");
        return;
    }
    model_log(h, "      %s:%s", modes[mode], list);
    history_step(b, h, "webhooks (%s)", modes[mode]);
}

static void op_toggle(model_batch *b, model_history *h, const model_op *o, bool on)
{
    int c = (int)(o->a % (uint64_t)h->nclients);
    model_client *cl = &h->cl[c];
    if (cl->autopay == on) {
        op_skip(b, h, o, on ? "autopay already on" : "autopay already off");
        return;
    }
    if (h->ntoggles == (int)(sizeof h->toggles / sizeof h->toggles[0])) {
        op_skip(b, h, o, "too many toggles");
        return;
    }
    model_toggle *t = &h->toggles[h->ntoggles++];
    t->client = c;
    t->on = on;
    t->seq = standin_stat(b->env->H.stripe, "requests");
    cl->autopay = on;
    const char *p[] = {on ? "true" : "false", I64(cl->id)};
    PQclear(q(b->env,
              "UPDATE billing.clients SET autopay_enabled = $1::boolean WHERE id = $2::bigint", 2,
              p));
    model_log(h, "      client %d autopay %s (stand-in request %lld)", c, on ? "on" : "off",
              (long long)t->seq);
    history_step(b, h, "autopay %s", on ? "on" : "off");
}

static void op_card(model_batch *b, model_history *h, const model_op *o)
{
    int c = (int)(o->a % (uint64_t)h->nclients);
    model_rng r = {o->b};
    const char *pm = model_pick_pm(&r);
    model_client *cl = &h->cl[c];
    if (strcmp(pm, cl->pm) == 0) {
        op_skip(b, h, o, "the same card");
        return;
    }
    snprintf(cl->pm, sizeof cl->pm, "%s", pm);
    const char *p[] = {pm[0] ? pm : NULL, I64(cl->id)};
    PQclear(q(b->env,
              "UPDATE billing.clients SET autopay_payment_method_id = $1 WHERE id = $2::bigint", 2,
              p));
    model_log(h, "      client %d card now %s", c, pm[0] ? pm : "none");
    history_step(b, h, "card change");
}

static void op_credit_add(model_batch *b, model_history *h, const model_op *o)
{
    int c = (int)(o->a % (uint64_t)h->nclients);
    int64_t amount = 100 + 50 * (int64_t)(o->b % 30);
    bool goodwill = o->c % 3 == 0;
    char out[2048], err[2048];
    const char *argv[] = {"credit",         "add",
                          "--client",       I64(h->cl[c].id),
                          "--amount-cents", I64(amount),
                          "--source",       goodwill ? "goodwill" : "promotional",
                          "--description",  "model credit",
                          "--created-by",   "model",
                          "--reason",       "model history",
                          "--approved-by",  "ops",
                          "--json",         NULL};
    int rc = model_ctl(b->env, out, sizeof out, err, sizeof err, argv);
    model_log(h, "      client %d +%lld cents %s: exit %d", c, (long long)amount,
              goodwill ? "goodwill" : "promotional", rc);
    if (rc != 0) {
        model_log(h, "      billingctl: %s", err);
        h->failed = true;
        model_log(h, "FAILED: credit add refused");
        return;
    }
    model_step *s = history_step(b, h, "credit add %lld", (long long)amount);
    if (s != NULL) {
        s->credit_added = amount;
        s->credit_client = c;
    }
}

static void op_credit_apply(model_batch *b, model_history *h, const model_op *o, const char *day)
{
    int i = (int)(o->a % (uint64_t)h->ninv);
    int64_t amount = o->b % 2 == 0 ? 0 : 50 * (int64_t)(1 + o->c % 40);
    char out[2048], err[2048];
    const char *argv[] = {"credit",
                          "apply",
                          "--invoice",
                          I64(h->inv[i].id),
                          "--created-by",
                          "model",
                          "--date",
                          day,
                          "--json",
                          amount > 0 ? "--amount-cents" : NULL,
                          amount > 0 ? I64(amount) : NULL,
                          NULL};
    int rc = model_ctl(b->env, out, sizeof out, err, sizeof err, argv);
    out[strcspn(out, "\n")] = '\0';
    err[strcspn(err, "\n")] = '\0';
    model_log(h, "      invoice %d %s: exit %d %s", i, amount > 0 ? I64(amount) : "all available",
              rc, rc == 0 ? out : err);
    model_step *s = history_step(b, h, "credit apply");
    if (s != NULL) {
        s->apply_inv = i;
        s->apply_max = amount;
        s->apply_rc = rc;
    }
}

/* What is left to refund of the invoice's Stripe payments, and the part of
 * its money above its total (the excess), from the books. */
static void refundable(model_batch *b, int64_t invoice, int64_t *left, int64_t *excess)
{
    const char *p[] = {I64(invoice)};
    PGresult *r = q(b->env,
                    "SELECT coalesce(sum(p.received_cents), 0) - coalesce((SELECT"
                    " sum(f.applied_cents) FROM billing.refunds f WHERE f.invoice_id ="
                    " $1::bigint), 0), coalesce(sum(p.received_cents - p.amount_cents"
                    "  - p.back_credit_cents), 0)"
                    " FROM billing.payments p WHERE p.invoice_id = $1::bigint"
                    " AND p.source = 'stripe'",
                    1, p);
    *left = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *excess = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
}

static void op_refund(model_batch *b, model_history *h, const model_op *o)
{
    /* one of the invoices that have Stripe money left to refund */
    int cand[MODEL_MAX_INVOICES], nc = 0;
    int64_t lefts[MODEL_MAX_INVOICES], excesses[MODEL_MAX_INVOICES];
    for (int k = 0; k < h->ninv; k++) {
        refundable(b, h->inv[k].id, &lefts[k], &excesses[k]);
        if (lefts[k] > 0)
            cand[nc++] = k;
    }
    if (nc == 0) {
        op_skip(b, h, o, "no Stripe payment left to refund");
        return;
    }
    int i = cand[o->a % (uint64_t)nc];
    int kind = (int)(o->b % 3);
    static const char *const kinds[] = {"full", "partial", "of the excess"};
    int64_t left = lefts[i], excess = excesses[i], amount = 0;
    if (kind == 1) {
        if (left < 100) {
            op_skip(b, h, o, "too little to refund part of");
            return;
        }
        amount = 50 * (int64_t)(1 + o->c % (uint64_t)(left / 50 - 1));
    } else if (kind == 2) {
        if (excess <= 0 || excess > left) {
            op_skip(b, h, o, "no excess to refund");
            return;
        }
        amount = excess;
    }
    bool pending = o->c % 4 == 0;
    if (pending)
        standin_refund_default(b->env->H.stripe, "pending");
    char out[4096], err[2048];
    const char *argv[] = {"refund",
                          I64(h->inv[i].id),
                          "--reason",
                          "requested_by_customer",
                          "--by",
                          "model",
                          "--json",
                          amount > 0 ? "--amount-cents" : NULL,
                          amount > 0 ? I64(amount) : NULL,
                          NULL};
    int rc = model_ctl(b->env, out, sizeof out, err, sizeof err, argv);
    if (pending)
        standin_refund_default(b->env->H.stripe, "succeeded");
    err[strcspn(err, "\n")] = '\0';
    model_log(h, "      invoice %d refund %s %lld%s: exit %d %s", i, kinds[kind], (long long)amount,
              pending ? " (pending at Stripe)" : "", rc, rc == 0 ? "" : err);
    history_step(b, h, "refund %s", kinds[kind]);
}

static void op_refund_move(model_batch *b, model_history *h, const model_op *o)
{
    json_t *cand[32];
    int n = 0;
    size_t k;
    json_t *r;
    json_array_foreach(b->refunds, k, r)
    {
        const char *st = jstr(r, "status");
        int64_t inv = pi_invoice(b, jstr(r, "payment_intent"));
        if (model_history_of_invoice(b, inv, NULL) == h &&
            (strcmp(st, "pending") == 0 || strcmp(st, "succeeded") == 0) && n < 32)
            cand[n++] = r;
    }
    if (n == 0) {
        op_skip(b, h, o, "no refund that can still move");
        return;
    }
    r = cand[o->a % (uint64_t)n];
    const char *id = jstr(r, "id"), *st = jstr(r, "status");
    static const char *const from_pending[] = {"failed", "succeeded", "canceled", "failed"};
    const char *to = strcmp(st, "pending") == 0 ? from_pending[o->b % 4] : "failed";
    char rid[64];
    snprintf(rid, sizeof rid, "%s", id);
    json_decref(standin_refund_update(b->env->H.stripe, rid, to));
    model_log(h, "      refund %s %s -> %s", rid, st, to);
    history_step(b, h, "refund %s", to);
}

static void op_dispute_open(model_batch *b, model_history *h, const model_op *o)
{
    json_t *pis[32];
    int n = history_pis(b, h, "succeeded", pis, 32), m = 0;
    json_t *ok[32];
    for (int i = 0; i < n; i++) {
        json_t *ch = charge_of(b, jstr(pis[i], "latest_charge"));
        if (ch == NULL || json_is_true(json_object_get(ch, "disputed")))
            continue;
        bool has = false;
        size_t k;
        json_t *d;
        json_array_foreach(b->disputes, k, d) has |= strcmp(jstr(d, "charge"), jstr(ch, "id")) == 0;
        int64_t left = json_integer_value(json_object_get(ch, "amount")) -
                       json_integer_value(json_object_get(ch, "amount_refunded"));
        if (!has && left > 0)
            ok[m++] = pis[i];
    }
    if (m == 0) {
        op_skip(b, h, o, "no succeeded charge to dispute");
        return;
    }
    json_t *pi = ok[o->a % (uint64_t)m];
    json_t *ch = charge_of(b, jstr(pi, "latest_charge"));
    int64_t left = json_integer_value(json_object_get(ch, "amount")) -
                   json_integer_value(json_object_get(ch, "amount_refunded"));
    int64_t amount =
        o->b % 3 == 0 && left > 100 ? 50 * (int64_t)(1 + o->c % (uint64_t)(left / 50 - 1)) : 0;
    static const char *const reasons[] = {"fraudulent", "duplicate", "product_not_received",
                                          "subscription_canceled"};
    char piid[64];
    snprintf(piid, sizeof piid, "%s", jstr(pi, "id"));
    json_t *env = standin_dispute_open(b->env->H.stripe, piid, amount, reasons[o->c % 4]);
    json_t *d = json_object_get(json_object_get(env, "data"), "object");
    model_log(h, "      dispute %s of %s for %lld", jstr(d, "id"), piid,
              (long long)json_integer_value(json_object_get(d, "amount")));
    json_decref(env);
    history_step(b, h, "dispute opened");
}

static void op_dispute_close(model_batch *b, model_history *h, const model_op *o)
{
    json_t *open[16];
    int n = 0;
    size_t k;
    json_t *d;
    json_array_foreach(b->disputes, k, d)
    {
        const char *st = jstr(d, "status");
        if (model_history_of_invoice(b, pi_invoice(b, jstr(d, "payment_intent")), NULL) == h &&
            strcmp(st, "won") != 0 && strcmp(st, "lost") != 0 && n < 16)
            open[n++] = d;
    }
    if (n == 0) {
        op_skip(b, h, o, "no open dispute");
        return;
    }
    d = open[o->a % (uint64_t)n];
    const char *to = o->b % 2 == 0 ? "won" : "lost";
    char id[64];
    snprintf(id, sizeof id, "%s", jstr(d, "id"));
    json_decref(standin_dispute_close(b->env->H.stripe, id, to));
    model_log(h, "      dispute %s %s", id, to);
    history_step(b, h, "dispute %s", to);
}

static void op_dispute_evidence(model_batch *b, model_history *h, const model_op *o)
{
    const char *p[] = {I64(h->firm)};
    PGresult *r = q(b->env,
                    "SELECT stripe_dispute_id FROM billing.payment_disputes WHERE firm_id ="
                    " $1::bigint AND status = 'opened' ORDER BY id",
                    1, p);
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        op_skip(b, h, o, "no opened dispute in the books");
        return;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, (int)(o->a % (uint64_t)n), 0));
    PQclear(r);
    char out[2048], err[2048];
    const char *argv[] = {"dispute", "evidence", id,  "--file", b->env->evidence_file,
                          "--by",    "model",    NULL};
    int rc = model_ctl(b->env, out, sizeof out, err, sizeof err, argv);
    err[strcspn(err, "\n")] = '\0';
    model_log(h, "      evidence for %s: exit %d %s", id, rc, rc == 0 ? "" : err);
    history_step(b, h, "dispute evidence");
}

static void op_pay_twice(model_batch *b, model_history *h, const model_op *o)
{
    int i = (int)(o->a % (uint64_t)h->ninv);
    int64_t total = h->inv[i].total;
    int64_t amounts[] = {total, total / 2 / 50 * 50 > 0 ? total / 2 / 50 * 50 : 50, total + 500};
    int64_t amount = amounts[o->b % 3];
    char pi[64], ch[64];
    payh_foreign_pi(&b->env->H, h->firm, h->inv[i].id, amount, "pm_card_visa", pi, ch);
    h->paid_twice = true;
    model_log(h, "      invoice %d paid %lld outside our workers: %s", i, (long long)amount, pi);
    history_step(b, h, "paid outside");
}

static void op_complete(model_batch *b, model_history *h, const model_op *o)
{
    json_t *pis[16];
    int n = history_pis(b, h, "processing", pis, 16);
    if (n == 0) {
        op_skip(b, h, o, "no processing PaymentIntent");
        return;
    }
    json_t *pi = pis[o->a % (uint64_t)n];
    const char *outcome = o->b % 3 == 0 ? "failed" : "succeeded";
    char body[160];
    snprintf(body, sizeof body, "{\"payment_intent\":\"%s\",\"outcome\":\"%s\"}", jstr(pi, "id"),
             outcome);
    model_log(h, "      %s %s", jstr(pi, "id"), outcome);
    json_decref(standin_post(b->env->H.stripe, "/__standin/complete", body));
    history_step(b, h, "processing %s", outcome);
}

/* An operation that needs no fault of its own (run with the others). */
static void exec_local(model_batch *b, model_history *h, const model_op *o, int round)
{
    char day[16];
    date_format(b->day, day, sizeof day);
    model_log(h, "r%02d %s %s", round, day, model_op_name(o->kind));
    b->env->stats.ops[o->kind]++;
    switch (o->kind) {
    case OP_AUTOPAY_TICK:
        queue_tick(b, h, TICK_AUTOPAY);
        history_step(b, h, "autopay tick %s", day);
        break;
    case OP_RETRY_TICK:
        queue_tick(b, h, TICK_RETRY);
        history_step(b, h, "retry tick %s", day);
        break;
    case OP_WEBHOOKS: op_webhooks(b, h, o); break;
    case OP_CARD_CHANGE: op_card(b, h, o); break;
    case OP_AUTOPAY_OFF: op_toggle(b, h, o, false); break;
    case OP_AUTOPAY_ON: op_toggle(b, h, o, true); break;
    case OP_CREDIT_ADD: op_credit_add(b, h, o); break;
    case OP_CREDIT_APPLY: op_credit_apply(b, h, o, day); break;
    case OP_REFUND: op_refund(b, h, o); break;
    case OP_REFUND_MOVE: op_refund_move(b, h, o); break;
    case OP_DISPUTE_OPEN: op_dispute_open(b, h, o); break;
    case OP_DISPUTE_CLOSE: op_dispute_close(b, h, o); break;
    case OP_DISPUTE_EVIDENCE: op_dispute_evidence(b, h, o); break;
    case OP_PAY_TWICE: op_pay_twice(b, h, o); break;
    case OP_COMPLETE: op_complete(b, h, o); break;
    default: break;
    }
}

/* The faulted ticks of a round, in phases: one for lost answers and
 * bursts of 500s together (the stand-in applies them independently: a
 * request may get a 500 and, replayed, lose its answer), one for 429s (a
 * rate limit makes the worker back off for seconds: one each), one for the
 * 401 window (a refused key runs nothing, so nothing else can happen
 * inside it). A fault lasts exactly as long as its phase's ticks: set,
 * ticked, waited for, cleared, with nothing else running. */
enum { PHASE_LOST_500 = 0, PHASE_429, PHASE_401 };

static bool in_phase(model_op_kind k, int phase)
{
    return phase == PHASE_401   ? k == OP_AUTH_401
           : phase == PHASE_429 ? k == OP_BURST_429
                                : k == OP_LOST_ANSWER || k == OP_BURST_500;
}

static void exec_faulted(model_batch *b, int phase, int round)
{
    bool auth = phase == PHASE_401;
    model_env *env = b->env;
    char day[16];
    date_format(b->day, day, sizeof day);
    int n = 0, lose = 0, burst = 0;
    bool lose_all = false, any429 = false;
    for (int j = 0; j < b->nh; j++) {
        model_history *h = b->h[j];
        if (round >= h->nops || h->failed || !model_op_faulted(h->ops[round].kind))
            continue;
        const model_op *o = &h->ops[round];
        if (!in_phase(o->kind, phase))
            continue;
        tick_kind kind = o->a % 5 == 0 ? TICK_RETRY : TICK_AUTOPAY;
        model_log(h, "r%02d %s %s (%s tick)", round, day, model_op_name(o->kind),
                  tick_kind_name(kind));
        env->stats.ops[o->kind]++;
        queue_tick(b, h, kind);
        history_step(b, h, "%s %s tick %s", model_op_name(o->kind), tick_kind_name(kind), day);
        n++;
        if (o->kind == OP_LOST_ANSWER) {
            lose++;
            lose_all |= o->b % 2 == 0;
        } else if (o->kind == OP_BURST_500 || o->kind == OP_BURST_429) {
            burst++;
            any429 |= o->kind == OP_BURST_429;
        }
    }
    if (n == 0)
        return;
    if (auth) {
        standin_auth_valid(env->H.stripe, false);
    } else {
        /* every answer of the phase lost, or about one per history (the
         * worker's own tries with the same key then get the stored answer) */
        if (lose > 0)
            standin_fail_mode(env->H.stripe, "lose_answer", lose_all ? 100000 : lose);
        if (burst > 0)
            standin_fail_status(env->H.stripe, any429 ? 429 : 500, any429 ? burst : 2 * burst);
    }
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    batch_flush(b);
    clock_gettime(CLOCK_MONOTONIC, &z);
    if (getenv("LL_MODEL_TRACE"))
        fprintf(stderr, "model: round %d %s phase: %d ticks (%d lost, %d bursts%s) %.2f s\n", round,
                auth     ? "401"
                : any429 ? "429"
                         : "lost/500",
                n, lose, burst, any429 ? ", 429" : "",
                (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9);
    standin_fail_mode(env->H.stripe, "lose_answer", 0);
    standin_fail_status(env->H.stripe, 500, 0);
    standin_auth_valid(env->H.stripe, true);
}

/* ---- the batch --------------------------------------------------------------- */

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void batch_snap(model_batch *b, model_history *h)
{
    if (h->nsteps == 0 || h->steps[h->nsteps - 1].snap != NULL)
        return;
    h->steps[h->nsteps - 1].snap = model_snapshot(b->env, h->firm);
}

static void batch_snap_all(model_batch *b)
{
    for (int j = 0; j < b->nh; j++)
        batch_snap(b, b->h[j]);
}

static void batch_advance(model_batch *b, int days, int round)
{
    b->day = date_add_days(b->day, days);
    batch_set_clock(b, 0);
    char day[16];
    date_format(b->day, day, sizeof day);
    for (int j = 0; j < b->nh; j++)
        model_log(b->h[j], "r%02d -- %d day(s) on: %s (Stripe's clock +%d h)", round, days, day,
                  24 * days);
}

/* Whether the history's books still hold an attempt the next tick should
 * resolve (anything unfinished but a PaymentIntent processing at Stripe),
 * or an event still to deliver. */
static bool history_busy(model_batch *b, model_history *h)
{
    for (int e = 0; e < h->nevents; e++)
        if (h->ev[e].delivered == 0)
            return true;
    const char *p[] = {I64(h->firm)};
    PGresult *r = q(b->env,
                    "SELECT coalesce(stripe_payment_intent_id, ''), status FROM"
                    " billing.payment_attempts WHERE firm_id = $1::bigint"
                    " AND status IN ('processing', 'transient_error')",
                    1, p);
    bool busy = false;
    for (int i = 0; i < PQntuples(r) && !busy; i++) {
        json_t *pi = model_find(b->pis, PQgetvalue(r, i, 0));
        busy = !(strcmp(PQgetvalue(r, i, 1), "processing") == 0 && pi != NULL &&
                 strcmp(jstr(pi, "status"), "processing") == 0);
    }
    PQclear(r);
    return busy;
}

/* Stripe events an operator replays from the dead letters: those that
 * matched no invoice when delivered (their ":unmatched" key recorded, the
 * event itself never applied). */
static int batch_replay_dead_letters(model_batch *b)
{
    model_env *env = b->env;
    int n = 0;
    model_event *replayed[512];
    for (int j = 0; j < b->nh; j++) {
        model_history *h = b->h[j];
        for (int e = 0; e < h->nevents && n < 512; e++) {
            model_event *x = &h->ev[e];
            if (x->delivered == 0)
                continue;
            char un[96];
            snprintf(un, sizeof un, "%s:unmatched", x->id);
            const char *p[] = {batch_group(b, x->group), x->id, un};
            int64_t state = q_i64(env,
                                  "SELECT coalesce(max(CASE WHEN idempotency_key = $2 THEN 2"
                                  " ELSE 1 END), 0) FROM billing.processed_messages"
                                  " WHERE consumer = $1 AND idempotency_key IN ($2, $3)",
                                  3, p);
            if (state != 1)
                continue;
            /* A dead letter keeps its :unmatched record; wait for the event itself. */
            char *copy = strdup(x->body);
            assert_non_null(copy);
            batch_out(b, x->topic, x->key, copy, x->id, x->type);
            x->delivered++;
            env->stats.replays++;
            model_log(h, "      operator replays dead letter %s (%s)", x->id, x->type);
            replayed[n++] = x;
        }
    }
    if (n > 0) {
        batch_publish(b);
        /* Applied now (its event id recorded) or dead-lettered again (its
         * :unmatched record exists already, so nothing new is written):
         * wait until the replays are recorded or nothing moved for 5 s. */
        int64_t last = -1;
        for (int waited = 0, still = 0; still < 5000 && waited < 30000; waited += 50) {
            int64_t got = 0;
            for (int k = 0; k < n; k++) {
                const char *p[] = {batch_group(b, replayed[k]->group), replayed[k]->id};
                got += q_i64(env,
                             "SELECT count(*) FROM billing.processed_messages"
                             " WHERE consumer = $1 AND idempotency_key = $2",
                             2, p);
            }
            if (got == n)
                break;
            still = got == last ? still + 50 : 0;
            last = got;
            payh_sleep_ms(50);
        }
    }
    return n;
}

static void batch_quiet(model_batch *b)
{
    for (int j = 0; j < b->nh; j++)
        model_log(b->h[j], "-- quiet: every event delivered, ticks until nothing is unfinished");
    for (int q = 0; q < 12; q++) {
        bool any = false;
        for (int j = 0; j < b->nh; j++) {
            model_history *h = b->h[j];
            if (h->failed)
                continue;
            /* at most 6 events a step, so the oracle can try their orders */
            int sent = 0;
            for (int e = 0; e < h->nevents && sent < 6; e++)
                if (h->ev[e].delivered == 0) {
                    queue_event(b, h, &h->ev[e]);
                    sent++;
                }
            bool ticks = sent == 0 || q >= 2;
            if (ticks) {
                queue_tick(b, h, TICK_AUTOPAY);
                queue_tick(b, h, TICK_RETRY);
            }
            history_step(b, h, "quiet %d: %d event(s)%s", q, sent, ticks ? ", ticks" : "");
            any = true;
        }
        if (!any)
            break;
        batch_flush(b);
        batch_collect(b);
        batch_dumps(b);
        batch_snap_all(b);
        bool busy = false;
        for (int j = 0; j < b->nh; j++)
            busy |= !b->h[j]->failed && history_busy(b, b->h[j]);
        if (!busy && q >= 1)
            break;
        if (q == 3 || q == 6)
            batch_advance(b, 1, 100 + q); /* stale attempts are looked up */
    }
    for (int r = 0; r < 3; r++) {
        if (batch_replay_dead_letters(b) == 0)
            break;
        for (int j = 0; j < b->nh; j++)
            history_step(b, b->h[j], "dead letters replayed");
        batch_collect(b);
        batch_dumps(b);
        batch_snap_all(b);
    }
}

void model_batch_run(model_batch *b)
{
    model_env *env = b->env;
    standin_reset(env->H.stripe);
    b->event_seq = 0;
    int64_t now = standin_clock_now(env->H.stripe);
    civil_date today = {.days = (int32_t)(now / DAY_S)};
    b->day = date_add_days(today, 1);
    batch_set_clock(b, 0);
    bool lag = model_chance(&b->rng, 25);
    standin_search_lag(env->H.stripe, lag ? 7200 : 0);
    b->rounds = 0;
    for (int j = 0; j < b->nh; j++) {
        history_world(b, b->h[j]);
        if (lag)
            model_log(b->h[j], "  Stripe's search lags 2 h behind (lookups use the list)");
        if (b->h[j]->nops > b->rounds)
            b->rounds = b->h[j]->nops;
    }
    /* Drawn whatever the histories: a replay of one history sees the same
     * days, kills and lag as the batch it ran in. */
    int rounds_max = MODEL_MAX_OPS;
    int days[MODEL_MAX_OPS];
    for (int r = 0; r < rounds_max; r++) {
        uint64_t x = model_below(&b->rng, 100);
        days[r] = r == 0 ? 0 : x < 55 ? 0 : x < 80 ? 1 : x < 90 ? 2 : x < 95 ? 3 : x < 98 ? 7 : 14;
    }
    bool kill = env->kills && model_chance(&b->rng, 35);
    b->kill_round = kill ? (int)model_below(&b->rng, 10) : -1;
    int kill_which = (int)model_below(&b->rng, 10);
    int kill_delay = (int)model_below(&b->rng, 300);
    kill_which = kill_which < 3 ? 0 : kill_which < 5 ? 3 : kill_which < 8 ? 1 : 2;

    model_stats *st = &env->stats;
    for (int r = 0; r < b->rounds; r++) {
        double t0 = mono();
        if (days[r] > 0)
            batch_advance(b, days[r], r);
        for (int j = 0; j < b->nh; j++) {
            model_history *h = b->h[j];
            if (r < h->nops && !h->failed && !model_op_faulted(h->ops[r].kind))
                exec_local(b, h, &h->ops[r], r);
        }
        batch_publish(b);
        if (r == b->kill_round) {
            payh_sleep_ms(kill_delay);
            static const char *const names[] = {"autopay", "retry", "dispute", "second autopay"};
            for (int j = 0; j < b->nh; j++)
                model_log(b->h[j],
                          "r%02d -- SIGKILL of the %s worker %d ms into the round,"
                          " restarted",
                          r, names[kill_which], kill_delay);
            model_env_kill(env, kill_which);
        }
        batch_wait(b);
        double t1 = mono();
        exec_faulted(b, PHASE_LOST_500, r);
        exec_faulted(b, PHASE_429, r);
        exec_faulted(b, PHASE_401, r);
        double t2 = mono();
        batch_collect(b);
        batch_dumps(b);
        batch_snap_all(b);
        double t3 = mono();
        st->t_local += t1 - t0;
        st->t_faulted += t2 - t1;
        st->t_collect += t3 - t2;
    }
    double tq = mono();
    batch_quiet(b);
    st->t_quiet += mono() - tq;
    json_decref(b->requests);
    b->requests = standin_get(env->H.stripe, "/__standin/requests");
}

void model_batch_free(model_batch *b)
{
    json_decref(b->pis);
    json_decref(b->refunds);
    json_decref(b->disputes);
    json_decref(b->charges);
    json_decref(b->requests);
    for (size_t i = 0; i < b->nout; i++)
        free(b->out[i].value);
    free(b->out);
    free(b->waits);
    memset(b, 0, sizeof *b);
}
