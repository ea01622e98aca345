/* post.c: bench-e2e-post, the load generator of the end-to-end benchmarks
 * (tests/bench/e2e/run.sh, tests/bench/drain/run.sh; never shipped, never
 * run by ctest). Posts one signed payment_intent.succeeded webhook per line
 * of an events file to the ingester, at a steady rate or as fast as a fixed
 * number of requests in flight allows, and writes for each the wall-clock
 * time its POST started and its answer arrived.
 *
 *   bench-e2e-post --url URL --fixture FILE --events FILE --out FILE
 *                  [--rate N] [--inflight N]
 *
 * The webhook secret is read from STRIPE_WEBHOOK_SECRET (never argv). The
 * body is the fixture (Stripe's own payment_intent.succeeded shape) with
 * the event id, the PaymentIntent id, the amounts, metadata (attempt_key,
 * invoice_id, firm_id, as our PaymentIntents carry) and request
 * idempotency key of the line. Events file lines:
 *   invoice_id firm_id attempt_key payment_intent amount_cents
 * Out file lines (microseconds since the Unix epoch, CLOCK_REALTIME):
 *   invoice_id post_us answer_us http_status
 * --rate 0 (default) posts as fast as --inflight (default 32) allows. All
 * bodies are built and signed before the clock starts. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    long long invoice_id;
    char *body;
    size_t body_len;
    char sig[160];
    int64_t post_us, answer_us;
    long status;
} ev_t;

typedef struct {
    CURL *h;
    struct curl_slist *hdr;
    size_t ev;
    int busy;
} slot_t;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static void sign(const char *secret, long ts, const char *body, size_t len, char *out,
                 size_t outlen)
{
    size_t msglen = len + 32;
    char *msg = malloc(msglen);
    int pre = snprintf(msg, msglen, "%ld.", ts);
    memcpy(msg + pre, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg, (size_t)pre + len, mac,
         &maclen);
    free(msg);
    int n = snprintf(out, outlen, "Stripe-Signature: t=%ld,v1=", ts);
    for (unsigned int i = 0; i < maclen && (size_t)n + 3 < outlen; i++)
        n += snprintf(out + n, outlen - (size_t)n, "%02x", mac[i]);
}

static int set_str(json_t *obj, const char *path1, const char *path2, const char *key, json_t *v)
{
    json_t *o = obj;
    if (path1 != NULL)
        o = json_object_get(o, path1);
    if (o != NULL && path2 != NULL)
        o = json_object_get(o, path2);
    if (!json_is_object(o)) {
        json_decref(v);
        return -1;
    }
    return json_object_set_new(o, key, v);
}

/* Builds every event's body and signature from the fixture. */
static ev_t *build(const char *fixture, const char *events, const char *secret, size_t *n_out)
{
    json_error_t jerr;
    json_t *tpl = json_load_file(fixture, 0, &jerr);
    if (tpl == NULL) {
        fprintf(stderr, "bench-e2e-post: could not read %s: %s\n", fixture, jerr.text);
        return NULL;
    }
    FILE *f = fopen(events, "r");
    if (f == NULL) {
        fprintf(stderr, "bench-e2e-post: could not open %s: %s\n", events, strerror(errno));
        json_decref(tpl);
        return NULL;
    }
    size_t cap = 1024, n = 0;
    ev_t *ev = calloc(cap, sizeof *ev);
    long long inv, firm, amount;
    char key[128], pi[128];
    long ts = (long)time(NULL);
    unsigned nonce = (unsigned)(now_us() % 1000000000);
    while (fscanf(f, "%lld %lld %127s %127s %lld", &inv, &firm, key, pi, &amount) == 5) {
        if (n == cap) {
            cap *= 2;
            ev = realloc(ev, cap * sizeof *ev);
            memset(ev + n, 0, (cap - n) * sizeof *ev);
        }
        char id[64], s_inv[24], s_firm[24];
        snprintf(id, sizeof id, "evt_llb%u%08zu", nonce, n);
        snprintf(s_inv, sizeof s_inv, "%lld", inv);
        snprintf(s_firm, sizeof s_firm, "%lld", firm);
        int bad = json_object_set_new(tpl, "id", json_string(id)) |
                  json_object_set_new(tpl, "created", json_integer(ts)) |
                  set_str(tpl, "data", "object", "id", json_string(pi)) |
                  set_str(tpl, "data", "object", "amount", json_integer(amount)) |
                  set_str(tpl, "data", "object", "amount_received", json_integer(amount)) |
                  set_str(tpl, "data", "object", "created", json_integer(ts)) |
                  set_str(tpl, "request", NULL, "idempotency_key", json_string(key));
        json_t *meta = json_pack("{s:s, s:s, s:s}", "attempt_key", key, "invoice_id", s_inv,
                                 "firm_id", s_firm);
        bad |= set_str(tpl, "data", "object", "metadata", meta);
        if (bad) {
            fprintf(stderr, "bench-e2e-post: %s is not a payment_intent.succeeded event\n",
                    fixture);
            exit(1);
        }
        ev[n].invoice_id = inv;
        ev[n].body = json_dumps(tpl, JSON_COMPACT);
        ev[n].body_len = strlen(ev[n].body);
        sign(secret, ts, ev[n].body, ev[n].body_len, ev[n].sig, sizeof ev[n].sig);
        n++;
    }
    fclose(f);
    json_decref(tpl);
    *n_out = n;
    return ev;
}

static void start(slot_t *s, CURLM *m, const char *url, ev_t *e, size_t i)
{
    curl_easy_reset(s->h);
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)e->body_len);
    curl_slist_free_all(s->hdr);
    s->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    s->hdr = curl_slist_append(s->hdr, e->sig);
    s->hdr = curl_slist_append(s->hdr, "Expect:");
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdr);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(s->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    s->ev = i;
    s->busy = 1;
    e->post_us = now_us();
    curl_multi_add_handle(m, s->h);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *fixture = NULL, *events = NULL, *out = NULL;
    long rate = 0, inflight = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--fixture") == 0)
            fixture = argv[i + 1];
        else if (strcmp(argv[i], "--events") == 0)
            events = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--rate") == 0)
            rate = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = strtol(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "bench-e2e-post: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const char *secret = getenv("STRIPE_WEBHOOK_SECRET");
    if (!url || !fixture || !events || !out || !secret || !*secret || rate < 0 || inflight < 1 ||
        inflight > 4096) {
        fprintf(stderr, "usage: STRIPE_WEBHOOK_SECRET=... bench-e2e-post --url URL --fixture FILE"
                        " --events FILE --out FILE [--rate N] [--inflight N]\n");
        return 2;
    }
    size_t n = 0;
    ev_t *ev = build(fixture, events, secret, &n);
    if (ev == NULL)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, inflight);
    slot_t *slots = calloc((size_t)inflight, sizeof *slots);
    for (long i = 0; i < inflight; i++)
        slots[i].h = curl_easy_init();
    int64_t interval = rate > 0 ? 1000000 / rate : 0;
    int64_t t0 = now_us(), due = t0, late_max = 0;
    size_t next = 0, done = 0, failed = 0;
    int running = 0;
    while (done < n) {
        int64_t t = now_us();
        for (long i = 0; i < inflight && next < n && (rate == 0 || due <= t); i++) {
            if (slots[i].busy)
                continue;
            if (rate > 0 && t - due > late_max)
                late_max = t - due;
            start(&slots[i], m, url, &ev[next], next);
            next++;
            due += interval;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot_t *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            ev_t *e = &ev[s->ev];
            e->answer_us = now_us();
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &e->status);
            if (msg->data.result != CURLE_OK || e->status != 200)
                failed++;
            curl_multi_remove_handle(m, msg->easy_handle);
            s->busy = 0;
            done++;
        }
        int wait_ms = 1;
        if (rate > 0 && next < n) {
            int64_t until = due - now_us();
            wait_ms = until <= 0 ? 0 : (int)(until / 1000);
        }
        if (wait_ms > 0 || running > 0)
            curl_multi_poll(m, NULL, 0, wait_ms, NULL);
    }
    int64_t t1 = now_us();
    FILE *o = fopen(out, "w");
    if (o == NULL) {
        fprintf(stderr, "bench-e2e-post: could not write %s: %s\n", out, strerror(errno));
        return 1;
    }
    int64_t first = n ? ev[0].post_us : t0, last = n ? ev[n - 1].post_us : t0;
    for (size_t i = 0; i < n; i++)
        fprintf(o, "%lld %" PRId64 " %" PRId64 " %ld\n", ev[i].invoice_id, ev[i].post_us,
                ev[i].answer_us, ev[i].status);
    fclose(o);
    double span = (double)(last - first) / 1e6;
    printf("posted %zu webhooks in %.3f s (%zu not answered 200); achieved rate %.1f/s over the"
           " posts, %.1f/s to the last answer; the schedule slipped at most %.1f ms\n",
           n, (double)(t1 - t0) / 1e6, failed, span > 0 ? (double)(n - 1) / span : 0.0,
           (double)n / ((double)(t1 - t0) / 1e6), (double)late_max / 1000.0);
    for (long i = 0; i < inflight; i++) {
        curl_slist_free_all(slots[i].hdr);
        curl_easy_cleanup(slots[i].h);
    }
    free(slots);
    for (size_t i = 0; i < n; i++)
        free(ev[i].body);
    free(ev);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
