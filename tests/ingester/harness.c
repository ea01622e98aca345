/* harness.c: process, signing, HTTP and Kafka helpers for the ingester tests
 * (harness.h). */
#include "harness.h"
#include "support/httptest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ledgerline/kafka.h"

h_env H;
static int h_failed = 1;

int h_done(int rc)
{
    h_failed = rc != 0;
    return rc;
}

int64_t h_now(void)
{
    return (int64_t)time(NULL);
}

uint64_t h_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int h_wait_pid(pid_t pid, int timeout_ms)
{
    uint64_t end = h_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (r < 0 || h_mono_ms() > end)
            return -1;
        h_sleep_ms(20);
    }
}

static void h_kill(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    if (h_wait_pid(*pid, 15000) < 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

static void h_cleanup(void)
{
    h_kill(&H.ingester_pid);
    h_kill(&H.broker_pid);
    /* A failed run keeps the temp dir (broker.log, ingester.log). */
    if (H.dir[0] == '\0')
        return;
    if (h_failed) {
        fprintf(stderr, "logs kept in %s\n", H.dir);
        return;
    }
    const char *files[] = {"bootstrap", "broker.log", "ingester.log"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/%s", H.dir, files[i]);
        unlink(path);
    }
    rmdir(H.dir);
}

static pid_t h_spawn(const char *bin, char *const argv[], const char *const *env,
                     const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* If the test dies without its atexit (abort, sanitizer), so does this. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        putenv((char *)env[i]);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    execv(bin, argv);
    _exit(127);
}

int h_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(s, (struct sockaddr *)&sa, &sl) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(sa.sin_port);
}

void h_broker_signal(int sig)
{
    if (H.broker_pid > 0)
        kill(H.broker_pid, sig);
}

int h_start(const char *const *extra_env)
{
    return h_start_on(NULL, extra_env);
}

int h_start_on(const char *brokers, const char *const *extra_env)
{
    if (H.dir[0] == '\0') {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        snprintf(H.dir, sizeof H.dir, "/tmp/ll-ingester-test-XXXXXX");
        if (mkdtemp(H.dir) == NULL)
            return -1;
        atexit(h_cleanup);
    }

    char bsfile[320], blog[320], ilog[320];
    snprintf(bsfile, sizeof bsfile, "%s/bootstrap", H.dir);
    snprintf(blog, sizeof blog, "%s/broker.log", H.dir);
    snprintf(ilog, sizeof ilog, "%s/ingester.log", H.dir);
    if (brokers != NULL) /* a cluster of the caller's */
        snprintf(H.brokers, sizeof H.brokers, "%s", brokers);
    else if (H.broker_pid <= 0) {
        char *bargv[] = {(char *)LL_DEV_BROKER_BIN, (char *)"--bootstrap-file", bsfile, NULL};
        static const char *const benv[] = {"LOG_LEVEL=warn", NULL};
        H.broker_pid = h_spawn(LL_DEV_BROKER_BIN, bargv, benv, blog);
    }
    for (int i = 0; i < 200 && H.brokers[0] == '\0'; i++) {
        FILE *f = fopen(bsfile, "r");
        if (f != NULL) {
            if (fgets(H.brokers, sizeof H.brokers, f) != NULL)
                H.brokers[strcspn(H.brokers, "\r\n")] = '\0';
            fclose(f);
            if (H.brokers[0] != '\0')
                break;
        }
        h_sleep_ms(50);
    }
    if (H.brokers[0] == '\0') {
        fprintf(stderr, "dev broker did not start (see %s)\n", blog);
        return -1;
    }

    int port = h_free_port();
    if (port <= 0)
        return -1;
    snprintf(H.url, sizeof H.url, "http://127.0.0.1:%d", port);
    static char e_brokers[600], e_listen[64];
    snprintf(e_brokers, sizeof e_brokers, "KAFKA_BROKERS=%s", H.brokers);
    snprintf(e_listen, sizeof e_listen, "INGESTER_LISTEN=127.0.0.1:%d", port);
    const char *env[32];
    size_t n = 0;
    env[n++] = e_brokers;
    env[n++] = e_listen;
    env[n++] = "STRIPE_WEBHOOK_SECRET=" H_SECRET_A "," H_SECRET_B;
    env[n++] = "KAFKA_TOPIC_PREFIX=billing.";
    if (getenv("LOG_LEVEL") == NULL)
        env[n++] = "LOG_LEVEL=info";
    for (size_t i = 0; extra_env != NULL && extra_env[i] != NULL && n < 31; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    char *iargv[] = {(char *)LL_INGESTER_BIN, NULL};
    H.ingester_pid = h_spawn(LL_INGESTER_BIN, iargv, env, ilog);
    for (int i = 0; i < 300; i++) {
        h_resp r;
        if (h_http("GET", "/healthz", NULL, 0, NULL, 0, &r) == 0 && r.code == 200) {
            h_resp_free(&r);
            return 0;
        }
        h_resp_free(&r);
        int st = 0;
        if (waitpid(H.ingester_pid, &st, WNOHANG) == H.ingester_pid) {
            H.ingester_pid = 0;
            H.ingester_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        h_sleep_ms(50);
    }
    fprintf(stderr, "ingester did not become healthy (see %s)\n", ilog);
    return -1;
}

int h_wait_ingester(int timeout_ms)
{
    if (H.ingester_pid <= 0)
        return -1;
    int st = h_wait_pid(H.ingester_pid, timeout_ms);
    if (st >= 0)
        H.ingester_pid = 0;
    return st;
}

int h_stop_ingester(int timeout_ms)
{
    if (H.ingester_pid <= 0)
        return -1;
    kill(H.ingester_pid, SIGTERM);
    int st = h_wait_pid(H.ingester_pid, timeout_ms);
    if (st < 0) {
        kill(H.ingester_pid, SIGKILL);
        waitpid(H.ingester_pid, NULL, 0);
    }
    H.ingester_pid = 0;
    return st;
}

char *h_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", LL_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf != NULL && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *b = realloc(buf, cap * 2 + 1);
            if (b == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

void h_sign_hex(const char *secret, int64_t t, const void *body, size_t len, char hex[65])
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
    unsigned char *msg = malloc((size_t)plen + len + 1);
    memcpy(msg, prefix, (size_t)plen);
    if (len > 0)
        memcpy(msg + plen, body, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, (size_t)plen + len, md, &mdlen);
    free(msg);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void h_sign(const char *secret, int64_t t, const void *body, size_t len, char *out, size_t outlen)
{
    char hex[65];
    h_sign_hex(secret, t, body, len, hex);
    snprintf(out, outlen, "t=%" PRId64 ",v1=%s", t, hex);
}

typedef struct {
    const char *p;
    size_t left;
} h_src;

static size_t h_read_cb(char *dst, size_t sz, size_t nm, void *ud)
{
    h_src *s = ud;
    size_t n = sz * nm;
    if (n > 1000)
        n = 1000; /* many small chunks */
    if (n > s->left)
        n = s->left;
    memcpy(dst, s->p, n);
    s->p += n;
    s->left -= n;
    return n;
}

static size_t h_header_cb(char *p, size_t sz, size_t nm, void *ud)
{
    h_resp *r = ud;
    size_t n = sz * nm;
    if (n > 6 && strncasecmp(p, "Allow:", 6) == 0) {
        size_t a = 6;
        while (a < n && p[a] == ' ')
            a++;
        size_t m = n - a;
        while (m > 0 && (p[a + m - 1] == '\r' || p[a + m - 1] == '\n'))
            m--;
        if (m >= sizeof r->allow)
            m = sizeof r->allow - 1;
        memcpy(r->allow, p + a, m);
        r->allow[m] = '\0';
    }
    return n;
}

int h_http(const char *method, const char *path, const void *body, size_t len, const char *sig,
           int chunked, h_resp *r)
{
    return h_http_at(H.url, method, path, body, len, sig, chunked, r);
}

int h_http_at(const char *base, const char *method, const char *path, const void *body, size_t len,
              const char *sig, int chunked, h_resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    char url[512], sigh[8192];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "Expect:");
    hl = curl_slist_append(hl, "Content-Type: application/json");
    if (sig != NULL) {
        snprintf(sigh, sizeof sigh, "Stripe-Signature: %s", sig);
        hl = curl_slist_append(hl, sigh);
    }
    httptest_body out = {NULL, 0};
    h_src src = {body, len};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, httptest_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "GET") != 0) {
        if (chunked) {
            hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, h_read_cb);
            curl_easy_setopt(c, CURLOPT_READDATA, &src);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
    curl_off_t us = 0;
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &us);
    r->micros = (int64_t)us;
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r->body = out.data != NULL ? out.data : strdup("");
    r->body_len = out.len;
    return rc == CURLE_OK || (r->code > 0) ? 0 : -1;
}

void h_resp_free(h_resp *r)
{
    free(r->body);
    r->body = NULL;
}

int h_post_signed(const char *secret, const void *body, size_t len, h_resp *r)
{
    char sig[256];
    h_sign(secret, h_now(), body, len, sig, sizeof sig);
    return h_http("POST", "/webhooks/stripe", body, len, sig, 0, r);
}

static void h_copy_header(rd_kafka_headers_t *hdrs, const char *name, char *out, size_t outlen)
{
    const void *v = NULL;
    size_t n = 0;
    out[0] = '\0';
    if (hdrs != NULL &&
        rd_kafka_header_get_last(hdrs, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (n >= outlen)
            n = outlen - 1;
        memcpy(out, v, n);
        out[n] = '\0';
    }
}

size_t h_read_topic(const char *topic, size_t want, int timeout_ms, int settle_ms, h_msg **out)
{
    char err[512];
    /* With the test's own KAFKA_SECURITY_PROTOCOL/KAFKA_SASL_* (if any). */
    rd_kafka_conf_t *conf = kafka_conf_new(H.brokers, err, sizeof err);
    *out = NULL;
    if (conf == NULL)
        return 0;
    rd_kafka_conf_set(conf, "group.id", "ingester-test-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    *out = NULL;
    if (rk == NULL)
        return 0;
    rd_kafka_poll_set_consumer(rk);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int parts = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1)
            parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);

    size_t n = 0, cap = want > 0 ? want + 16 : 16;
    h_msg *msgs = calloc(cap, sizeof *msgs);
    uint64_t end = h_mono_ms() + (uint64_t)timeout_ms;
    uint64_t settle_end = 0;
    while (h_mono_ms() < end) {
        if (n >= want && settle_end == 0)
            settle_end = h_mono_ms() + (uint64_t)settle_ms;
        if (settle_end != 0 && h_mono_ms() >= settle_end)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (n == cap) {
                cap *= 2;
                msgs = realloc(msgs, cap * sizeof *msgs);
            }
            h_msg *o = &msgs[n++];
            memset(o, 0, sizeof *o);
            o->key = malloc(m->key_len + 1);
            if (m->key_len > 0)
                memcpy(o->key, m->key, m->key_len);
            o->key[m->key_len] = '\0';
            o->value = malloc(m->len + 1);
            memcpy(o->value, m->payload, m->len);
            o->value[m->len] = '\0';
            o->value_len = m->len;
            rd_kafka_headers_t *hdrs = NULL;
            rd_kafka_message_headers(m, &hdrs);
            h_copy_header(hdrs, "stripe-event-id", o->event_id, sizeof o->event_id);
            h_copy_header(hdrs, "stripe-event-type", o->event_type, sizeof o->event_type);
            h_copy_header(hdrs, "received-at", o->received_at, sizeof o->received_at);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *out = msgs;
    return n;
}

void h_msgs_free(h_msg *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].key);
        free(m[i].value);
    }
    free(m);
}

int h_port(void)
{
    const char *colon = strrchr(H.url, ':');
    return colon != NULL ? atoi(colon + 1) : -1;
}

int h_raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int h_raw_send_all(int fd, const void *p, size_t len)
{
    const char *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int h_raw_read_status(int fd)
{
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -1;
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n") != NULL || got == sizeof buf - 1)
            break;
    }
    buf[got] = '\0';
    int code = 0;
    if (got > 0 && sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
        code = 0;
    return code;
}

int h_raw_closed(int fd)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            return 0;
        if (p.revents & (POLLHUP | POLLERR))
            return 1;
        char buf[1024];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : 1;
    }
}

long h_proc_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}
