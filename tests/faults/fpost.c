/* fpost.c: the fault suite's webhook sender (see faults.h). Owns posting
 * the delivery plan to billing-ingester the way Stripe delivers: each
 * delivery signed at send time (Stripe-Signature t=<now>,v1=HMAC-SHA256 of
 * "<t>.<body>"), several in flight (libcurl multi), and every delivery that
 * did not get a 2xx (503 while the broker is down, a refused connection while
 * the ingester restarts, a timeout) sent again after a backoff until it
 * does: Stripe's redelivery, compressed from hours to milliseconds. */
#include "faults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

typedef struct {
    CURL *h;
    struct curl_slist *headers;
    int event;
    int attempt;
    bool busy;
} fpost_slot;

typedef struct {
    int event;
    int attempt;
    int64_t due_ms;
} fpost_retry;

static size_t fpost_discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static void fpost_sign(const fpost *fp, const fevent *e, char *out, size_t outlen)
{
    long long t = (long long)time(NULL);
    char ts[24];
    int tl = snprintf(ts, sizeof ts, "%lld.", t);
    size_t mlen = (size_t)tl + e->len;
    unsigned char *msg = malloc(mlen);
    if (msg == NULL)
        fproc_die("out of memory");
    memcpy(msg, ts, (size_t)tl);
    memcpy(msg + tl, e->body, e->len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), fp->secret, (int)strlen(fp->secret), msg, mlen, md, &mdlen);
    free(msg);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(out, outlen, "Stripe-Signature: t=%lld,v1=%s", t, hex);
}

static void fpost_start(fpost *fp, CURLM *m, fpost_slot *s, int event, int attempt)
{
    fevent *e = &fp->load->events[event];
    char sig[256];
    fpost_sign(fp, e, sig, sizeof sig);
    curl_slist_free_all(s->headers);
    s->headers = curl_slist_append(NULL, "Content-Type: application/json");
    s->headers = curl_slist_append(s->headers, "Expect:");
    s->headers = curl_slist_append(s->headers, sig);
    curl_easy_setopt(s->h, CURLOPT_URL, fp->url);
    curl_easy_setopt(s->h, CURLOPT_POST, 1L);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)e->len);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, fpost_discard);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    s->event = event;
    s->attempt = attempt;
    s->busy = true;
    curl_multi_add_handle(m, s->h);
    fp->posted++;
}

void *fpost_run(void *arg)
{
    fpost *fp = arg;
    fload *l = fp->load;
    int nslots = fp->concurrency > 0 ? fp->concurrency : 16;
    fpost_slot *slots = calloc((size_t)nslots, sizeof *slots);
    size_t rcap = 1024, nretry = 0;
    fpost_retry *retries = malloc(rcap * sizeof *retries);
    CURLM *m = curl_multi_init();
    if (slots == NULL || retries == NULL || m == NULL)
        fproc_die("poster: out of memory");
    for (int i = 0; i < nslots; i++)
        if ((slots[i].h = curl_easy_init()) == NULL)
            fproc_die("poster: curl_easy_init failed");
    fp->started_ms = fproc_now_ms();
    size_t next = 0;
    int active = 0;
    while (next < l->nplan || nretry > 0 || active > 0) {
        int64_t now = fproc_now_ms();
        /* Fill free slots: due retries first, then the plan at its pace. */
        for (int i = 0; i < nslots; i++) {
            if (slots[i].busy)
                continue;
            size_t pick = nretry;
            for (size_t k = 0; k < nretry; k++)
                if (retries[k].due_ms <= now &&
                    (pick == nretry || retries[k].due_ms < retries[pick].due_ms))
                    pick = k;
            if (pick < nretry) {
                fpost_start(fp, m, &slots[i], retries[pick].event, retries[pick].attempt);
                retries[pick] = retries[--nretry];
                active++;
                continue;
            }
            size_t allowed = l->nplan;
            if (fp->spread_ms > 0) {
                int64_t el = now - fp->started_ms;
                allowed = el >= fp->spread_ms
                              ? l->nplan
                              : (size_t)((double)l->nplan * (double)el / (double)fp->spread_ms) + 1;
            }
            if (next < l->nplan && next < allowed) {
                fpost_start(fp, m, &slots[i], l->plan[next++], 0);
                active++;
            }
        }
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            fpost_slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            CURLcode res = msg->data.result;
            curl_multi_remove_handle(m, msg->easy_handle);
            active--;
            s->busy = false;
            if (__atomic_load_n(&fp->no_acks, __ATOMIC_ACQUIRE)) {
                if (res != CURLE_OK)
                    fp->window_transport++;
                else if (code >= 200 && code < 300)
                    fp->window_2xx++;
                else if (code == 503)
                    fp->window_503++;
                else
                    fp->window_other++;
            }
            if (res == CURLE_OK && code >= 200 && code < 300) {
                __atomic_fetch_add(&fp->answered_2xx, 1, __ATOMIC_RELAXED);
                l->events[s->event].acks++;
                continue;
            }
            if (res != CURLE_OK)
                fp->transport_errors++;
            else if (code == 503)
                fp->code_503++;
            else
                fp->code_other++;
            if (res == CURLE_OK && code >= 400 && code < 500)
                fproc_die("the ingester refused event %s with HTTP %ld (a driver bug or a"
                          " signature problem)",
                          l->events[s->event].id, code);
            fp->retried++;
            if (nretry == rcap) {
                rcap *= 2;
                fpost_retry *nr = realloc(retries, rcap * sizeof *retries);
                if (nr == NULL)
                    fproc_die("poster: out of memory");
                retries = nr;
            }
            int a = s->attempt + 1;
            int64_t backoff = 100LL << (a < 5 ? a : 5); /* 200 ms .. 3.2 s */
            retries[nretry++] = (fpost_retry){s->event, a, fproc_now_ms() + backoff};
        }
        curl_multi_poll(m, NULL, 0, 5, NULL);
    }
    fp->finished_ms = fproc_now_ms();
    for (int i = 0; i < nslots; i++) {
        curl_easy_cleanup(slots[i].h);
        curl_slist_free_all(slots[i].headers);
    }
    curl_multi_cleanup(m);
    free(slots);
    free(retries);
    return NULL;
}
