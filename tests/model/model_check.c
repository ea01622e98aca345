/* model_check.c: what must hold for every history after quiet (issue 14):
 *   1. billingctl reconcile over a wide window agrees;
 *   2. billingctl verify --firm-id is clean;
 *   3. no charge request for an invoice after its client turned autopay off
 *      (unless it was turned on again);
 *   4. at most one succeeded PaymentIntent per attempt key, and one of ours
 *      per invoice (all of them, unless the history paid twice itself);
 *   5. no attempt left unfinished but one whose PaymentIntent is processing
 *      at Stripe, no invoice parked;
 *   6. the books follow from the money Stripe holds: each step of the
 *      history moved the firm's books as the oracle (oracle.h) says the
 *      money that step brought must (amounts from the stand-in's dump, in
 *      any order the step's events may have been met), and at the end every
 *      succeeded PaymentIntent, refund and dispute at Stripe is in them.
 * A failing history is printed with its seed, its replay line and what
 * happened. */
#include "model_run.h"

#include <setjmp.h>
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

#define I64(v) db_i64((v), (char[24]){0}, 24)

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int64_t jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const char *jmeta(const json_t *o, const char *key)
{
    return jstr(json_object_get(o, "metadata"), key);
}

static void fail_check(model_history *h, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_check(model_history *h, const char *check, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    model_log(h, "FAILED check %s: %s", check, msg);
    h->failed = true;
}

/* ---- 1, 2: billingctl -------------------------------------------------------- */

/* billingctl runs for the checks, several at once (each reads Stripe's
 * lists and the books; the stand-in and PostgreSQL serve them in parallel). */
typedef struct {
    const char *argv[16];
    char out[262144], err[4096];
    int rc;
    pid_t pid;
    int ofd, efd;
} ctl_job;

static void slurp(int fd, char *buf, size_t n)
{
    lseek(fd, 0, SEEK_SET);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd, buf + got, n - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
}

static void ctl_start(model_env *env, ctl_job *j)
{
    char o[] = "/tmp/model-ctl-out-XXXXXX", e[] = "/tmp/model-ctl-err-XXXXXX";
    j->ofd = mkstemp(o);
    j->efd = mkstemp(e);
    assert_true(j->ofd >= 0 && j->efd >= 0);
    unlink(o);
    unlink(e);
    char base[192], prefix[128];
    snprintf(base, sizeof base, "%s", standin_url(env->H.stripe));
    snprintf(prefix, sizeof prefix, "%s", env->H.prefix);
    const char *args[18];
    int n = 0;
    args[n++] = LL_BILLINGCTL_BIN;
    for (int i = 0; j->argv[i] != NULL && n < 17; i++)
        args[n++] = j->argv[i];
    args[n] = NULL;
    j->pid = fork();
    assert_true(j->pid >= 0);
    if (j->pid == 0) {
        dup2(j->ofd, 1);
        dup2(j->efd, 2);
        setenv("LOG_LEVEL", "warn", 1);
        setenv("STRIPE_API_BASE", base, 1);
        setenv("STRIPE_SECRET_KEY", "sk_test_Ledgerline0123456789", 1);
        setenv("KAFKA_TOPIC_PREFIX", prefix, 1);
        execv(LL_BILLINGCTL_BIN, (char *const *)args);
        _exit(127);
    }
}

static bool ctl_done(ctl_job *j)
{
    int status = 0;
    pid_t r = waitpid(j->pid, &status, WNOHANG);
    if (r == 0)
        return false;
    assert_int_equal(r, j->pid);
    j->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    slurp(j->ofd, j->out, sizeof j->out);
    slurp(j->efd, j->err, sizeof j->err);
    j->pid = 0;
    return true;
}

/* Runs the jobs, `par` at a time; waits only for its own children. */
static void ctl_run(model_env *env, ctl_job *jobs, int n, int par)
{
    int next = 0, running = 0, done = 0;
    while (done < n) {
        while (running < par && next < n) {
            ctl_start(env, &jobs[next++]);
            running++;
        }
        bool any = false;
        for (int i = 0; i < next; i++)
            if (jobs[i].pid > 0 && ctl_done(&jobs[i])) {
                running--;
                done++;
                any = true;
            }
        if (!any)
            payh_sleep_ms(3);
    }
}

static void check_reconcile(model_history *h, const ctl_job *j)
{
    json_t *r = json_loads(j->out, 0, NULL);
    bool agree = r != NULL && json_is_true(json_object_get(r, "agree"));
    if (j->rc != 0 || !agree)
        fail_check(h, "1 (reconcile agrees)", "exit %d: %.1500s %.500s", j->rc, j->out, j->err);
    json_decref(r);
}

static void check_verify(model_history *h, const ctl_job *j)
{
    json_t *r = json_loads(j->out, 0, NULL);
    bool clean = r != NULL && json_is_true(json_object_get(r, "clean"));
    if (j->rc != 0 || !clean)
        fail_check(h, "2 (verify is clean)", "exit %d: %.1500s %.500s", j->rc, j->out, j->err);
    json_decref(r);
}

/* ---- 3: no charge after an opt-out --------------------------------------------- */

static void check_opt_out(model_batch *b, model_history *h)
{
    size_t i;
    json_t *r;
    json_array_foreach(b->requests, i, r)
    {
        json_t *params = json_object_get(r, "params");
        if (strcmp(jstr(r, "method"), "POST") != 0 ||
            strcmp(jstr(r, "path"), "/v1/payment_intents") != 0 ||
            jstr(params, "metadata[attempt_key]")[0] == '\0')
            continue;
        int inv = -1;
        if (model_history_of_invoice(b, strtoll(jstr(params, "metadata[invoice_id]"), NULL, 10),
                                     &inv) != h)
            continue;
        int c = h->inv[inv].client;
        int64_t seq = jint(r, "seq");
        bool on = h->cl[c].autopay0;
        int64_t since = 0;
        for (int t = 0; t < h->ntoggles; t++)
            if (h->toggles[t].client == c && h->toggles[t].seq < seq) {
                on = h->toggles[t].on;
                since = h->toggles[t].seq;
            }
        if (!on)
            fail_check(h, "3 (no charge after an opt-out)",
                       "request %lld POST /v1/payment_intents for invoice %d (key %s) after "
                       "client %d's autopay was off (since request %lld)",
                       (long long)seq, inv, jstr(params, "metadata[attempt_key]"), c,
                       (long long)since);
    }
}

/* ---- 4: one success per key ----------------------------------------------------- */

static void check_one_success(model_batch *b, model_history *h)
{
    int ours[MODEL_MAX_INVOICES] = {0}, all[MODEL_MAX_INVOICES] = {0};
    size_t i, j;
    json_t *o, *p;
    json_array_foreach(b->pis, i, o)
    {
        int inv = -1;
        if (strcmp(jstr(o, "status"), "succeeded") != 0 ||
            model_history_of_invoice(b, strtoll(jmeta(o, "invoice_id"), NULL, 10), &inv) != h)
            continue;
        all[inv]++;
        const char *key = jmeta(o, "attempt_key");
        if (key[0] == '\0')
            continue;
        ours[inv]++;
        int same = 0;
        bool first = true;
        json_array_foreach(b->pis, j, p)
        {
            if (strcmp(jstr(p, "status"), "succeeded") != 0 ||
                strcmp(jmeta(p, "attempt_key"), key) != 0)
                continue;
            same++;
            first &= j >= i;
        }
        if (same > 1 && first)
            fail_check(h, "4 (one success per attempt key)",
                       "%d succeeded PaymentIntents carry attempt_key %s", same, key);
    }
    for (int k = 0; k < h->ninv; k++) {
        if (ours[k] > 1)
            fail_check(h, "4 (one success of ours per invoice)",
                       "invoice %d (id %lld) has %d succeeded PaymentIntents of our workers", k,
                       (long long)h->inv[k].id, ours[k]);
        else if (all[k] > 1 && !h->paid_twice)
            fail_check(h, "4 (one success per invoice)",
                       "invoice %d (id %lld) has %d succeeded PaymentIntents", k,
                       (long long)h->inv[k].id, all[k]);
    }
}

/* ---- 5: nothing unfinished without a reason ---------------------------------------- */

static void check_unfinished(model_batch *b, model_history *h, const json_t *snap)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(snap, "attempts"), i, a)
    {
        const char *st = jstr(a, "status");
        if (strcmp(st, "processing") != 0 && strcmp(st, "transient_error") != 0)
            continue;
        json_t *pi = model_find(b->pis, jstr(a, "pi"));
        if (strcmp(st, "processing") == 0 && pi != NULL &&
            strcmp(jstr(pi, "status"), "processing") == 0)
            continue;
        fail_check(h, "5 (no attempt unfinished without a reason)",
                   "attempt %lld (%s) of invoice %lld is %s (code %s, PaymentIntent %s at Stripe: "
                   "%s)",
                   (long long)jint(a, "id"), jstr(a, "key"), (long long)jint(a, "invoice"), st,
                   jstr(a, "code"), jstr(a, "pi")[0] ? jstr(a, "pi") : "none",
                   pi ? jstr(pi, "status") : "-");
    }
    json_array_foreach(json_object_get(snap, "invoices"), i, a)
    {
        if (strcmp(jstr(a, "autopay_status"), "needs_attention") == 0)
            fail_check(h, "5 (no attempt unfinished without a reason)",
                       "invoice %lld is parked (needs_attention) though nothing in the model "
                       "reuses a key with other parameters",
                       (long long)jint(a, "id"));
    }
}

/* ---- 6: the oracle --------------------------------------------------------------- */

/* One client's books in a snapshot, as the oracle's state. pay_ids gets
 * each payment's books id. */
static void load_client(const json_t *snap, int64_t client, orc_client *c, int64_t *pay_ids)
{
    memset(c, 0, sizeof *c);
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(snap, "invoices"), i, o)
    {
        if (jint(o, "client") != client)
            continue;
        if (c->ninv == ORC_MAX_INV) {
            c->overflow = true;
            return;
        }
        orc_invoice *v = &c->inv[c->ninv++];
        v->id = jint(o, "id");
        v->total = jint(o, "total");
        v->paid = jint(o, "paid");
        v->refunded = jint(o, "refunded");
        snprintf(v->status, sizeof v->status, "%s", jstr(o, "status"));
        snprintf(v->before_dispute, sizeof v->before_dispute, "%s", jstr(o, "before"));
        v->open_disputes = (int)jint(o, "open_disputes");
    }
    json_array_foreach(json_object_get(snap, "payments"), i, o)
    {
        int inv = -1;
        for (int k = 0; k < c->ninv; k++)
            if (c->inv[k].id == jint(o, "invoice"))
                inv = k;
        if (inv < 0)
            continue;
        if (c->npay == ORC_MAX_PAY) {
            c->overflow = true;
            return;
        }
        pay_ids[c->npay] = jint(o, "id");
        orc_payment *p = &c->pay[c->npay++];
        snprintf(p->pi, sizeof p->pi, "%s", jstr(o, "pi"));
        p->inv = inv;
        p->received = jint(o, "received");
        p->applied = jint(o, "applied");
        p->back_invoice = jint(o, "back_invoice");
    }
    const json_t *ledger = json_object_get(snap, "ledger");
    int64_t entry_ids[ORC_MAX_CREDIT];
    json_array_foreach(ledger, i, o)
    {
        if (jint(o, "client") != client || strcmp(jstr(o, "type"), "credit") != 0)
            continue;
        if (c->ncredit == ORC_MAX_CREDIT) {
            c->overflow = true;
            return;
        }
        entry_ids[c->ncredit] = jint(o, "id");
        orc_credit *k = &c->credit[c->ncredit++];
        k->amount = jint(o, "amount");
        k->payment = -1;
        for (int p = 0; p < c->npay; p++)
            if (jint(o, "payment") != 0 && pay_ids[p] == jint(o, "payment"))
                k->payment = p;
    }
    json_array_foreach(ledger, i, o)
    {
        if (jint(o, "client") != client || strcmp(jstr(o, "type"), "debit") != 0)
            continue;
        int64_t named = jint(o, "taken_back") ? jint(o, "taken_back") : jint(o, "expired");
        if (named == 0) {
            c->used += jint(o, "amount");
            continue;
        }
        for (int k = 0; k < c->ncredit; k++)
            if (entry_ids[k] == named)
                c->credit[k].taken += jint(o, "amount");
    }
}

static const json_t *find_row(const json_t *rows, const char *key, const char *id)
{
    size_t i;
    json_t *o;
    json_array_foreach((json_t *)rows, i, o)
    {
        const json_t *v = json_object_get(o, key);
        if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
            return o;
        if (json_is_integer(v) && json_integer_value(v) == strtoll(id, NULL, 10))
            return o;
    }
    return NULL;
}

static orc_dstate dispute_state(const json_t *row)
{
    if (row == NULL)
        return ORC_D_NONE;
    if (strcmp(jstr(row, "status"), "closed") != 0)
        return ORC_D_OPEN;
    return strcmp(jstr(row, "resolution"), "lost") == 0 ? ORC_D_LOST : ORC_D_WON;
}

static int inv_index(const orc_client *c, int64_t invoice_id)
{
    for (int k = 0; k < c->ninv; k++)
        if (c->inv[k].id == invoice_id)
            return k;
    return -1;
}

#define MAX_EVENTS 16

/* The money events of one step for one client: the books' new facts
 * (payments, refund changes, dispute changes, credit the history or the
 * system moved) with Stripe's amounts. -1 with why when the books hold a
 * fact Stripe does not. */
static int step_events(model_batch *b, model_history *h, const model_step *s, const json_t *s0,
                       const json_t *s1, int64_t client, const orc_client *before, orc_event *ev,
                       char *why, size_t whylen)
{
    int n = 0;
    size_t i;
    json_t *o;
    orc_client after;
    int64_t pay_ids[ORC_MAX_PAY];
    load_client(s1, client, &after, pay_ids);
#define ADD()                                                                                      \
    do {                                                                                           \
        if (n == MAX_EVENTS)                                                                       \
            return MAX_EVENTS + 1;                                                                 \
        memset(&ev[n], 0, sizeof ev[n]);                                                           \
    } while (0)
    json_array_foreach(json_object_get(s1, "payments"), i, o)
    {
        int inv = inv_index(&after, jint(o, "invoice"));
        if (inv < 0 || find_row(json_object_get(s0, "payments"), "pi", jstr(o, "pi")) != NULL)
            continue;
        json_t *pi = model_find(b->pis, jstr(o, "pi"));
        if (pi == NULL || strcmp(jstr(pi, "status"), "succeeded") != 0) {
            snprintf(why, whylen, "the books hold a payment of %s, which Stripe has as %s",
                     jstr(o, "pi"), pi ? jstr(pi, "status") : "nothing");
            return -1;
        }
        ADD();
        ev[n].kind = ORC_PAY;
        ev[n].inv = inv;
        snprintf(ev[n].pi, sizeof ev[n].pi, "%s", jstr(o, "pi"));
        ev[n].amount = jint(pi, "amount_received");
        n++;
    }
    json_array_foreach(json_object_get(s1, "refunds"), i, o)
    {
        int inv = inv_index(&after, jint(o, "invoice"));
        if (inv < 0)
            continue;
        const json_t *old = find_row(json_object_get(s0, "refunds"), "id", jstr(o, "id"));
        int64_t had = old ? jint(old, "applied") : 0, now = jint(o, "applied");
        json_t *re = model_find(b->refunds, jstr(o, "id"));
        if (re == NULL || jint(re, "amount") != jint(o, "amount") ||
            (now != 0 && now != jint(re, "amount"))) {
            snprintf(why, whylen, "the books count %lld of refund %s (%lld), Stripe has %s %lld",
                     (long long)now, jstr(o, "id"), (long long)jint(o, "amount"),
                     re ? jstr(re, "status") : "nothing", re ? (long long)jint(re, "amount") : 0LL);
            return -1;
        }
        if (now == had)
            continue;
        ADD();
        ev[n].kind = now > had ? ORC_TAKE : ORC_GIVE;
        ev[n].inv = inv;
        ev[n].amount = now > had ? now - had : had - now;
        snprintf(ev[n].pi, sizeof ev[n].pi, "%s", jstr(re, "payment_intent"));
        json_t *pi = model_find(b->pis, ev[n].pi);
        ev[n].received = pi ? jint(pi, "amount_received") : 0;
        n++;
    }
    json_array_foreach(json_object_get(s1, "disputes"), i, o)
    {
        int inv = inv_index(&after, jint(o, "invoice"));
        if (inv < 0)
            continue;
        orc_dstate from = dispute_state(
                       find_row(json_object_get(s0, "disputes"), "id", jstr(o, "id"))),
                   to = dispute_state(o);
        if (from == to)
            continue;
        json_t *d = model_find(b->disputes, jstr(o, "id"));
        if (d == NULL) {
            snprintf(why, whylen, "the books hold dispute %s, which Stripe does not",
                     jstr(o, "id"));
            return -1;
        }
        ADD();
        ev[n].kind = ORC_DISPUTE;
        ev[n].inv = inv;
        ev[n].from = from;
        ev[n].to = to;
        ev[n].amount = jint(d, "amount");
        snprintf(ev[n].pi, sizeof ev[n].pi, "%s", jstr(d, "payment_intent"));
        json_t *pi = model_find(b->pis, ev[n].pi);
        ev[n].received = pi ? jint(pi, "amount_received") : 0;
        n++;
    }
    json_array_foreach(json_object_get(s1, "ledger"), i, o)
    {
        if (jint(o, "client") != client ||
            find_row(json_object_get(s0, "ledger"), "id", I64(jint(o, "id"))) != NULL)
            continue;
        const char *type = jstr(o, "type"), *by = jstr(o, "by"), *use = jstr(o, "use"),
                   *source = jstr(o, "source");
        if (strcmp(type, "credit") == 0 &&
            (strcmp(source, "promotional") == 0 || strcmp(source, "goodwill") == 0)) {
            if (s->credit_added != jint(o, "amount") || strcmp(by, "model") != 0) {
                snprintf(why, whylen, "a credit of %lld the history did not add (it added %lld)",
                         (long long)jint(o, "amount"), (long long)s->credit_added);
                return -1;
            }
            ADD();
            ev[n].kind = ORC_CREDIT;
            ev[n].inv = -1;
            ev[n].amount = jint(o, "amount");
            n++;
        } else if (strcmp(type, "debit") == 0 &&
                   (strcmp(use, "invoice_payment") == 0 || strcmp(use, "partial_payment") == 0)) {
            int inv = inv_index(&after, jint(o, "invoice"));
            bool mine = strcmp(by, "model") == 0;
            if (inv < 0 ||
                (mine && (s->apply_inv < 0 || h->inv[s->apply_inv].id != jint(o, "invoice")))) {
                snprintf(why, whylen, "a credit application to invoice %lld nobody asked for",
                         (long long)jint(o, "invoice"));
                return -1;
            }
            ADD();
            ev[n].kind = ORC_APPLY;
            ev[n].inv = inv;
            ev[n].amount = mine ? s->apply_max : 0; /* the system applies what is available */
            n++;
        }
    }
    (void)before;
#undef ADD
    return n;
}

/* Whether some order of the events takes `before` to a state the books
 * agree with (every subset's distinct states, breadth first). */
static uint64_t state_hash(const orc_client *c)
{
    uint64_t x = UINT64_C(14695981039346656037);
    const unsigned char *p = (const unsigned char *)c;
    for (size_t i = 0; i < sizeof *c; i++) {
        x ^= p[i];
        x *= UINT64_C(1099511628211);
    }
    return x;
}

/* Whether some order of the events takes `before` to a state the books
 * agree with (every subset's distinct states, breadth first). */
static bool reachable(const orc_client *before, const orc_event *ev, int n, const orc_client *books,
                      char *why, size_t whylen)
{
    if (n == 0)
        return orc_same(before, books, why, (int)whylen);
    typedef struct {
        unsigned mask;
        uint64_t hash;
        orc_client st;
    } node;
    size_t len = 0;
    node *layer = malloc(sizeof *layer);
    assert_non_null(layer);
    layer[len++] = (node){.mask = 0, .hash = state_hash(before), .st = *before};
    for (int depth = 0; depth < n; depth++) {
        size_t ncap = 64, nlen = 0;
        node *next = malloc(ncap * sizeof *next);
        assert_non_null(next);
        for (size_t k = 0; k < len; k++)
            for (int e = 0; e < n; e++) {
                if (layer[k].mask & (1u << e))
                    continue;
                if (nlen == ncap) {
                    if (ncap >= 4096)
                        continue; /* enough orders tried */
                    ncap *= 2;
                    next = realloc(next, ncap * sizeof *next);
                    assert_non_null(next);
                }
                node *x = &next[nlen];
                x->mask = layer[k].mask | (1u << e);
                x->st = layer[k].st;
                orc_apply(&x->st, &ev[e]);
                x->hash = state_hash(&x->st);
                bool dup = false;
                for (size_t m = 0; m < nlen && !dup; m++)
                    dup = next[m].mask == x->mask && next[m].hash == x->hash &&
                          memcmp(&next[m].st, &x->st, sizeof x->st) == 0;
                if (!dup)
                    nlen++;
            }
        free(layer);
        layer = next;
        len = nlen;
    }
    bool ok = false;
    for (size_t k = 0; k < len && !ok; k++)
        ok = orc_same(&layer[k].st, books, NULL, 0);
    if (!ok) {
        /* say what differs from the order the events were listed in */
        orc_client in_order = *before;
        for (int e = 0; e < n; e++)
            orc_apply(&in_order, &ev[e]);
        orc_same(&in_order, books, why, (int)whylen);
    }
    free(layer);
    return ok;
}

static void describe(const orc_event *ev, int n, char *buf, size_t len)
{
    static const char *const kinds[] = {"pay", "credit", "apply", "take", "give", "dispute"};
    static const char *const ds[] = {"none", "open", "won", "lost"};
    size_t o = 0;
    buf[0] = '\0';
    for (int e = 0; e < n && o < len; e++) {
        if (ev[e].kind == ORC_DISPUTE)
            o += (size_t)snprintf(buf + o, len - o, "%s dispute(inv %d, %s, %s->%s, %lld)",
                                  e ? ";" : "", ev[e].inv, ev[e].pi, ds[ev[e].from], ds[ev[e].to],
                                  (long long)ev[e].amount);
        else
            o += (size_t)snprintf(buf + o, len - o, "%s %s(inv %d, %s, %lld)", e ? ";" : "",
                                  kinds[ev[e].kind], ev[e].inv, ev[e].pi[0] ? ev[e].pi : "-",
                                  (long long)ev[e].amount);
    }
}

static void check_oracle(model_batch *b, model_history *h)
{
    bool failed_before = h->failed;
    h->failed = false; /* this check's own first failure stops it */
    json_t *s0 = NULL;
    for (int k = 0; k < h->nsteps && !h->failed; k++) {
        const model_step *s = &h->steps[k];
        if (s->snap == NULL)
            continue;
        if (s0 == NULL) {
            /* the first step starts from the world as created: nothing paid */
            s0 = json_pack("{s[] s[] s[] s[] s[]}", "payments", "ledger", "refunds", "disputes",
                           "attempts");
            json_t *invs = json_deep_copy(json_object_get(s->snap, "invoices"));
            size_t i;
            json_t *o;
            json_array_foreach(invs, i, o)
            {
                json_object_set_new(o, "paid", json_integer(0));
                json_object_set_new(o, "refunded", json_integer(0));
                json_object_set_new(o, "status", json_string("sent"));
                json_object_set_new(o, "before", json_string(""));
                json_object_set_new(o, "open_disputes", json_integer(0));
            }
            json_object_set_new(s0, "invoices", invs);
        } else {
            json_incref(s0);
        }
        for (int c = 0; c < h->nclients && !h->failed; c++) {
            orc_client before, books;
            int64_t ids[ORC_MAX_PAY];
            load_client(s0, h->cl[c].id, &before, ids);
            load_client(s->snap, h->cl[c].id, &books, ids);
            if (before.overflow || books.overflow) {
                b->env->stats.unchecked_steps++;
                continue;
            }
            orc_event ev[MAX_EVENTS];
            char why[1024] = "", list[2048];
            int n = step_events(b, h, s, s0, s->snap, h->cl[c].id, &before, ev, why, sizeof why);
            if (n < 0) {
                fail_check(h, "6 (the books follow from Stripe's money)", "step %d (%s): %s", k,
                           s->what, why);
                break;
            }
            if (n > 12) {
                b->env->stats.unchecked_steps++;
                model_log(h, "      (step %d: %d money events, too many orders to try)", k, n);
                continue;
            }
            describe(ev, n, list, sizeof list);
            if (s->apply_inv >= 0 && h->inv[s->apply_inv].client == c) {
                /* the operator's apply: refused exactly when the rules refuse it */
                orc_client probe = before;
                int inv = inv_index(&before, h->inv[s->apply_inv].id);
                orc_event a = {.kind = ORC_APPLY, .inv = inv, .amount = s->apply_max};
                orc_result want = orc_apply(&probe, &a);
                /* billingctl also exits 1 when there is nothing to apply */
                if ((want != ORC_APPLIED) != (s->apply_rc != 0))
                    fail_check(h, "6 (credit apply refused by the rules)",
                               "step %d (%s): billingctl exit %d, the rules %s", k, s->what,
                               s->apply_rc,
                               want == ORC_REFUSED   ? "refuse it"
                               : want == ORC_NOTHING ? "find nothing to apply"
                                                     : "apply it");
            }
            if (!reachable(&before, ev, n, &books, why, sizeof why))
                fail_check(h, "6 (the books follow from Stripe's money)",
                           "step %d (%s), client %d: events [%s]: %s", k, s->what, c, list, why);
        }
        json_decref(s0);
        s0 = s->snap;
    }
    if (h->failed || s0 == NULL) {
        h->failed |= failed_before;
        return;
    }
    h->failed = failed_before;
    /* At the end, everything Stripe holds for the history is in the books. */
    const json_t *last = s0;
    size_t i;
    json_t *o;
    json_array_foreach(b->pis, i, o)
    {
        int inv = -1;
        if (strcmp(jstr(o, "status"), "succeeded") != 0 ||
            model_history_of_invoice(b, strtoll(jmeta(o, "invoice_id"), NULL, 10), &inv) != h)
            continue;
        const json_t *p = find_row(json_object_get(last, "payments"), "pi", jstr(o, "id"));
        if (p == NULL || jint(p, "received") != jint(o, "amount_received"))
            fail_check(h, "6 (Stripe's money is in the books)",
                       "PaymentIntent %s received %lld for invoice %d; the books: %s",
                       jstr(o, "id"), (long long)jint(o, "amount_received"), inv,
                       p ? "another amount" : "no payment");
    }
    json_array_foreach(b->refunds, i, o)
    {
        int inv = -1;
        if (model_history_of_invoice(
                b,
                strtoll(jmeta(model_find(b->pis, jstr(o, "payment_intent")), "invoice_id"), NULL,
                        10),
                &inv) != h)
            continue;
        const char *st = jstr(o, "status");
        int64_t counted =
            strcmp(st, "failed") == 0 || strcmp(st, "canceled") == 0 ? 0 : jint(o, "amount");
        const json_t *f = find_row(json_object_get(last, "refunds"), "id", jstr(o, "id"));
        if (f == NULL || jint(f, "applied") != counted)
            fail_check(h, "6 (Stripe's refunds are in the books)",
                       "refund %s (%s, %lld) of invoice %d: the books count %lld", jstr(o, "id"),
                       st, (long long)jint(o, "amount"), inv,
                       f ? (long long)jint(f, "applied") : -1LL);
    }
    json_array_foreach(b->disputes, i, o)
    {
        int inv = -1;
        if (model_history_of_invoice(
                b,
                strtoll(jmeta(model_find(b->pis, jstr(o, "payment_intent")), "invoice_id"), NULL,
                        10),
                &inv) != h)
            continue;
        const char *st = jstr(o, "status");
        orc_dstate want = strcmp(st, "lost") == 0  ? ORC_D_LOST
                          : strcmp(st, "won") == 0 ? ORC_D_WON
                                                   : ORC_D_OPEN;
        const json_t *d = find_row(json_object_get(last, "disputes"), "id", jstr(o, "id"));
        if (dispute_state(d) != want)
            fail_check(h, "6 (Stripe's disputes are in the books)",
                       "dispute %s (%s) of invoice %d: the books have %s", jstr(o, "id"), st, inv,
                       d ? jstr(d, "status") : "nothing");
    }
}

int model_batch_check(model_batch *b)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool verbose = getenv("LL_MODEL_VERBOSE") && getenv("LL_MODEL_VERBOSE")[0] == '1';
    int failed = 0;
    ctl_job *jobs = calloc((size_t)b->nh * 2, sizeof *jobs);
    assert_non_null(jobs);
    static char firms[MODEL_MAX_BATCH][24];
    for (int j = 0; j < b->nh; j++) {
        snprintf(firms[j], sizeof firms[j], "%lld", (long long)b->h[j]->firm);
        const char *rec[] = {"reconcile", "--from", "2020-01-01", "--to", "2099-12-31",
                             "--firm-id", firms[j], "--json",     NULL};
        const char *ver[] = {"verify", "--firm-id", firms[j], "--json", NULL};
        memcpy(jobs[2 * j].argv, rec, sizeof rec);
        memcpy(jobs[2 * j + 1].argv, ver, sizeof ver);
    }
    ctl_run(b->env, jobs, 2 * b->nh, 4);
    for (int j = 0; j < b->nh; j++) {
        model_history *h = b->h[j];
        const json_t *last = NULL;
        for (int k = h->nsteps - 1; k >= 0 && last == NULL; k--)
            last = h->steps[k].snap;
        bool ran = !h->failed; /* a history that failed while running is printed as it is */
        if (ran) {
            check_reconcile(h, &jobs[2 * j]);
            check_verify(h, &jobs[2 * j + 1]);
            check_opt_out(b, h);
            check_one_success(b, h);
            if (last != NULL)
                check_unfinished(b, h, last);
            check_oracle(b, h);
        }
        b->env->stats.histories++;
        if (h->failed) {
            failed++;
            b->env->stats.failed_histories++;
            fprintf(stderr,
                    "\n==== model: history %d FAILED (seed %llu)\n"
                    "replay: LL_MODEL_SEED=%llu LL_MODEL_ONLY=%d\n%s====\n",
                    h->index, (unsigned long long)h->seed, (unsigned long long)b->env->run_seed,
                    h->index, h->log ? h->log : "");
        } else if (verbose) {
            fprintf(stderr, "\n==== model: history %d passed\n%s====\n", h->index,
                    h->log ? h->log : "");
        }
    }
    free(jobs);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    b->env->stats.t_check +=
        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return failed;
}
