/* smtp_sink.c: the test SMTP server and the MIME reading of its messages
 * (see smtp_sink.h). Written from RFC 5321 / 4954 / 2045; one connection at
 * a time on a background thread; poll() timeouts let it stop promptly. */
#include "smtp_sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096
#define DATA_MAX (64u * 1024 * 1024)

struct smtp_sink {
    int lfd, port;
    char *dir;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile int stop;
    smtp_sink_msg *msgs;
    size_t nmsgs, cap;
    char *user, *pass, *mechs;
    char force_stage[8];
    char force_rcpt[256], hold_rcpt[256];
    int force_code, force_times;
    volatile int hold_ms;
    bool discard;      /* count messages, keep no copy (smtp_sink_discard) */
    size_t ndiscarded; /* messages counted and not kept */
    size_t bytes;      /* of every message accepted */
};

/* n bytes (not NUL-terminated) as a malloc'd string. */
static char *dup_n(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- a connection --------------------------------------------------------------- */

typedef struct {
    smtp_sink *s;
    int fd;
    char buf[LINE_MAX_LEN * 2];
    size_t have;
} conn;

static void reply(conn *c, const char *text)
{
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = send(c->fd, text + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* Reads one line (CRLF stripped) into out; -1 on EOF, error, stop or a line
 * too long. */
static int read_line(conn *c, char *out, size_t outsz)
{
    for (;;) {
        for (size_t i = 0; i + 1 < c->have; i++)
            if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') {
                if (i >= outsz)
                    return -1;
                memcpy(out, c->buf, i);
                out[i] = '\0';
                memmove(c->buf, c->buf + i + 2, c->have - i - 2);
                c->have -= i + 2;
                return (int)i;
            }
        if (c->have >= sizeof c->buf)
            return -1;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, 200);
        if (c->s->stop)
            return -1;
        if (pr <= 0)
            continue;
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
    }
}

/* A forced reply for stage (and rcpt, NULL before RCPT), consumed; 0 when
 * none. */
static int forced(smtp_sink *s, const char *stage, const char *rcpt)
{
    int code = 0;
    pthread_mutex_lock(&s->mu);
    bool to_match = s->force_rcpt[0] == '\0' || (rcpt != NULL && strcmp(rcpt, s->force_rcpt) == 0);
    if (s->force_times > 0 && strcmp(s->force_stage, stage) == 0 && to_match) {
        code = s->force_code;
        s->force_times--;
    }
    pthread_mutex_unlock(&s->mu);
    return code;
}

static void reply_forced(conn *c, int code)
{
    char t[96];
    snprintf(t, sizeof t, "%d %s\r\n", code,
             code >= 500 ? "5.0.0 refused by the test server" : "4.0.0 try again later");
    reply(c, t);
}

static void store(smtp_sink *s, smtp_sink_msg *m)
{
    pthread_mutex_lock(&s->mu);
    s->bytes += m->len;
    bool discard = s->discard;
    if (discard) {
        s->ndiscarded++;
    } else {
        if (s->nmsgs == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            s->msgs = realloc(s->msgs, s->cap * sizeof *s->msgs);
        }
        s->msgs[s->nmsgs++] = *m;
    }
    size_t n = s->nmsgs + s->ndiscarded;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->dir != NULL) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%06zu.eml", s->dir, n);
        FILE *f = fopen(path, "wb");
        if (f != NULL) {
            fwrite(m->data, 1, m->len, f);
            fclose(f);
        }
    }
    if (discard)
        smtp_sink_msg_free(m);
}

/* DATA until the lone dot; dot-unstuffed, CRLF kept. NULL on failure. */
static char *read_data(conn *c, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *d = malloc(cap);
    char line[LINE_MAX_LEN];
    for (;;) {
        int l = read_line(c, line, sizeof line);
        if (l < 0) {
            free(d);
            return NULL;
        }
        if (strcmp(line, ".") == 0)
            break;
        const char *p = line[0] == '.' ? line + 1 : line;
        size_t pl = strlen(p);
        if (n + pl + 3 > cap) {
            if (cap >= DATA_MAX) {
                free(d);
                return NULL;
            }
            cap *= 2;
            d = realloc(d, cap);
        }
        memcpy(d + n, p, pl);
        n += pl;
        d[n++] = '\r';
        d[n++] = '\n';
    }
    d[n] = '\0';
    *len = n;
    return d;
}

/* "<addr>" (after "MAIL FROM:" or "RCPT TO:") -> malloc'd addr. */
static char *angle_addr(const char *arg)
{
    const char *a = strchr(arg, '<'), *b = a ? strchr(a, '>') : NULL;
    if (a == NULL || b == NULL)
        return NULL;
    return dup_n(a + 1, (size_t)(b - a - 1));
}

static bool check_plain(smtp_sink *s, const char *b64, char **who)
{
    size_t n;
    unsigned char *d = smtp_sink_b64decode(b64, strlen(b64), &n);
    if (d == NULL)
        return false;
    /* authzid NUL authcid NUL passwd */
    const char *authz = (const char *)d;
    size_t a = strnlen(authz, n);
    bool ok = false;
    if (a < n) {
        const char *user = authz + a + 1;
        size_t ul = strnlen(user, n - a - 1);
        if (a + 1 + ul < n) {
            const char *pass = user + ul + 1;
            size_t pl = n - a - 1 - ul - 1;
            ok = strlen(s->user) == ul && memcmp(user, s->user, ul) == 0 && strlen(s->pass) == pl &&
                 memcmp(pass, s->pass, pl) == 0;
            if (ok)
                *who = dup_n(user, ul);
        }
    }
    free(d);
    return ok;
}

static char *b64_line_decoded(const char *line)
{
    size_t n;
    unsigned char *d = smtp_sink_b64decode(line, strlen(line), &n);
    if (d == NULL)
        return NULL;
    char *s = dup_n(d, n);
    free(d);
    return s;
}

static bool auth_login(conn *c, const char *first, char **who)
{
    char line[LINE_MAX_LEN];
    char *user;
    if (first != NULL && *first) {
        user = b64_line_decoded(first);
    } else {
        reply(c, "334 VXNlcm5hbWU6\r\n");
        if (read_line(c, line, sizeof line) < 0)
            return false;
        user = b64_line_decoded(line);
    }
    reply(c, "334 UGFzc3dvcmQ6\r\n");
    if (user == NULL || read_line(c, line, sizeof line) < 0) {
        free(user);
        return false;
    }
    char *pass = b64_line_decoded(line);
    bool ok = pass != NULL && strcmp(user, c->s->user) == 0 && strcmp(pass, c->s->pass) == 0;
    free(pass);
    if (ok)
        *who = user;
    else
        free(user);
    return ok;
}

static bool mech_offered(smtp_sink *s, const char *mech)
{
    char list[128];
    snprintf(list, sizeof list, " %s ", s->mechs);
    char want[32];
    snprintf(want, sizeof want, " %s ", mech);
    return strstr(list, want) != NULL;
}

static void do_auth(conn *c, const char *arg, char **who)
{
    smtp_sink *s = c->s;
    char mech[16] = "";
    const char *rest = NULL;
    sscanf(arg, "%15s", mech);
    rest = arg + strlen(mech);
    while (*rest == ' ')
        rest++;
    if (s->user == NULL || !mech_offered(s, mech)) {
        reply(c, "504 5.5.4 mechanism not supported\r\n");
        return;
    }
    bool ok;
    if (strcasecmp(mech, "PLAIN") == 0) {
        char line[LINE_MAX_LEN];
        if (*rest == '\0') {
            reply(c, "334 \r\n");
            if (read_line(c, line, sizeof line) < 0)
                return;
            rest = line;
        }
        ok = check_plain(s, rest, who);
    } else {
        ok = auth_login(c, rest, who);
    }
    reply(c, ok ? "235 2.7.0 authenticated\r\n" : "535 5.7.8 bad credentials\r\n");
}

static void do_data(conn *c, smtp_sink_msg *m)
{
    reply(c, "354 end with <CRLF>.<CRLF>\r\n");
    size_t len;
    char *d = read_data(c, &len);
    if (d == NULL)
        return;
    int f = forced(c->s, "DATA", m->rcpt);
    if (f) {
        free(d);
        reply_forced(c, f);
        return;
    }
    m->data = d;
    m->len = len;
    smtp_sink_msg copy = *m;
    copy.mail_from = strdup(m->mail_from ? m->mail_from : "");
    copy.rcpt = strdup(m->rcpt ? m->rcpt : "");
    copy.auth_user = m->auth_user ? strdup(m->auth_user) : NULL;
    store(c->s, &copy);
    m->data = NULL;
    pthread_mutex_lock(&c->s->mu);
    int hold = c->s->hold_ms;
    if (c->s->hold_rcpt[0] && (m->rcpt == NULL || strcmp(m->rcpt, c->s->hold_rcpt) != 0))
        hold = 0;
    pthread_mutex_unlock(&c->s->mu);
    /* Held in slices, so that smtp_sink_hold(s, NULL, 0) or a stop ends it. */
    for (int waited = 0; waited < hold && c->s->hold_ms > 0 && !c->s->stop; waited += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    reply(c, "250 2.0.0 queued\r\n");
}

static void reset_tx(smtp_sink_msg *m)
{
    free(m->mail_from);
    free(m->rcpt);
    m->mail_from = m->rcpt = NULL;
}

static void serve(conn *c)
{
    smtp_sink *s = c->s;
    char line[LINE_MAX_LEN];
    smtp_sink_msg m = {0};
    char *who = NULL;
    reply(c, "220 ledgerline-smtp-sink ESMTP ready\r\n");
    while (read_line(c, line, sizeof line) >= 0) {
        const char *arg = strchr(line, ' ');
        arg = arg ? arg + 1 : "";
        if (strncasecmp(line, "EHLO", 4) == 0) {
            char t[256];
            snprintf(t, sizeof t,
                     "250-ledgerline-smtp-sink\r\n250-8BITMIME\r\n%s%s%s250 SIZE 67108864\r\n",
                     s->user ? "250-AUTH " : "", s->user ? s->mechs : "", s->user ? "\r\n" : "");
            reply(c, t);
        } else if (strncasecmp(line, "HELO", 4) == 0) {
            reply(c, "250 ledgerline-smtp-sink\r\n");
        } else if (strncasecmp(line, "AUTH", 4) == 0) {
            do_auth(c, arg, &who);
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            int f = forced(s, "MAIL", NULL);
            if (s->user != NULL && who == NULL) {
                reply(c, "530 5.7.0 authentication required\r\n");
            } else if (f) {
                reply_forced(c, f);
            } else {
                reset_tx(&m);
                m.mail_from = angle_addr(line + 10);
                reply(c,
                      m.mail_from ? "250 2.1.0 ok\r\n" : "501 5.5.2 syntax: MAIL FROM:<addr>\r\n");
            }
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            char *to = angle_addr(line + 8);
            int f = forced(s, "RCPT", to);
            if (m.mail_from == NULL) {
                reply(c, "503 5.5.1 MAIL first\r\n");
            } else if (f) {
                reply_forced(c, f);
            } else if (to == NULL) {
                reply(c, "501 5.5.2 syntax: RCPT TO:<addr>\r\n");
            } else {
                if (m.rcpt == NULL) {
                    m.rcpt = to;
                    to = NULL;
                }
                reply(c, "250 2.1.5 ok\r\n");
            }
            free(to);
        } else if (strcasecmp(line, "DATA") == 0) {
            if (m.rcpt == NULL) {
                reply(c, "503 5.5.1 RCPT first\r\n");
            } else {
                m.auth_user = who;
                do_data(c, &m);
                m.auth_user = NULL;
                reset_tx(&m);
            }
        } else if (strcasecmp(line, "RSET") == 0) {
            reset_tx(&m);
            reply(c, "250 2.0.0 ok\r\n");
        } else if (strcasecmp(line, "NOOP") == 0) {
            reply(c, "250 2.0.0 ok\r\n");
        } else if (strcasecmp(line, "QUIT") == 0) {
            reply(c, "221 2.0.0 bye\r\n");
            break;
        } else {
            reply(c, "502 5.5.2 command not recognised\r\n");
        }
    }
    reset_tx(&m);
    free(who);
}

static void *accept_loop(void *arg)
{
    smtp_sink *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        conn *c = calloc(1, sizeof *c);
        c->s = s;
        c->fd = fd;
        serve(c);
        close(fd);
        free(c);
    }
    return NULL;
}

/* ---- the server -------------------------------------------------------------------- */

smtp_sink *smtp_sink_start(const char *host, int port, const char *dir)
{
    smtp_sink *s = calloc(1, sizeof *s);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 16) != 0) {
        close(s->lfd);
        free(s);
        return NULL;
    }
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    s->dir = dir ? strdup(dir) : NULL;
    s->mechs = strdup("PLAIN LOGIN");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_create(&s->thread, NULL, accept_loop, s);
    return s;
}

int smtp_sink_port(const smtp_sink *s)
{
    return s->port;
}

void smtp_sink_msg_free(smtp_sink_msg *m)
{
    free(m->mail_from);
    free(m->rcpt);
    free(m->auth_user);
    free(m->data);
    memset(m, 0, sizeof *m);
}

void smtp_sink_stop(smtp_sink *s)
{
    if (s == NULL)
        return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->lfd);
    for (size_t i = 0; i < s->nmsgs; i++)
        smtp_sink_msg_free(&s->msgs[i]);
    free(s->msgs);
    free(s->dir);
    free(s->user);
    free(s->pass);
    free(s->mechs);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void smtp_sink_require_auth(smtp_sink *s, const char *user, const char *pass, const char *mechs)
{
    pthread_mutex_lock(&s->mu);
    free(s->user);
    free(s->pass);
    free(s->mechs);
    s->user = strdup(user);
    s->pass = strdup(pass);
    s->mechs = strdup(mechs ? mechs : "PLAIN LOGIN");
    pthread_mutex_unlock(&s->mu);
}

void smtp_sink_force(smtp_sink *s, const char *stage, int code, int times)
{
    smtp_sink_force_to(s, NULL, stage, code, times);
}

void smtp_sink_force_to(smtp_sink *s, const char *rcpt, const char *stage, int code, int times)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->force_rcpt, sizeof s->force_rcpt, "%s", rcpt ? rcpt : "");
    snprintf(s->force_stage, sizeof s->force_stage, "%s", stage);
    s->force_code = code;
    s->force_times = times;
    pthread_mutex_unlock(&s->mu);
}

void smtp_sink_hold(smtp_sink *s, const char *rcpt, int hold_ms)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->hold_rcpt, sizeof s->hold_rcpt, "%s", rcpt ? rcpt : "");
    s->hold_ms = hold_ms;
    pthread_mutex_unlock(&s->mu);
}

void smtp_sink_discard(smtp_sink *s, bool discard)
{
    pthread_mutex_lock(&s->mu);
    s->discard = discard;
    pthread_mutex_unlock(&s->mu);
}

size_t smtp_sink_bytes(smtp_sink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->bytes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t smtp_sink_count(smtp_sink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nmsgs + s->ndiscarded;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t smtp_sink_wait(smtp_sink *s, size_t n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->nmsgs + s->ndiscarded < n)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
            break;
    size_t have = s->nmsgs + s->ndiscarded;
    pthread_mutex_unlock(&s->mu);
    return have;
}

int smtp_sink_get(smtp_sink *s, size_t i, smtp_sink_msg *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (i < s->nmsgs) {
        const smtp_sink_msg *m = &s->msgs[i];
        out->mail_from = strdup(m->mail_from);
        out->rcpt = strdup(m->rcpt);
        out->auth_user = m->auth_user ? strdup(m->auth_user) : NULL;
        out->data = malloc(m->len + 1);
        memcpy(out->data, m->data, m->len + 1);
        out->len = m->len;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- reading MIME ---------------------------------------------------------------- */

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

unsigned char *smtp_sink_b64decode(const char *text, size_t textlen, size_t *outlen)
{
    unsigned char *out = malloc(textlen / 4 * 3 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < textlen; i++) {
        char ch = text[i];
        if (ch == '\r' || ch == '\n' || ch == ' ' || ch == '\t')
            continue;
        if (ch == '=')
            break;
        int v = b64_value(ch);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    *outlen = o;
    return out;
}

/* End of the header block of text (the empty line), or NULL. */
static const char *headers_end(const char *text)
{
    const char *e = strstr(text, "\r\n\r\n");
    return e;
}

char *smtp_sink_header(const char *data, const char *name)
{
    const char *end = headers_end(data);
    if (end == NULL)
        end = data + strlen(data);
    size_t nl = strlen(name);
    const char *p = data;
    while (p < end) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL || eol > end)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            /* unfold continuation lines */
            size_t cap = 256, n = 0;
            char *out = malloc(cap);
            const char *q = v;
            for (;;) {
                size_t seg = (size_t)(eol - q);
                if (n + seg + 2 > cap) {
                    cap = (n + seg + 2) * 2;
                    out = realloc(out, cap);
                }
                memcpy(out + n, q, seg);
                n += seg;
                if (eol < end && (eol[2] == ' ' || eol[2] == '\t')) {
                    q = eol + 2;
                    while (*q == ' ' || *q == '\t')
                        q++;
                    out[n++] = ' ';
                    eol = strstr(q, "\r\n");
                    if (eol == NULL || eol > end)
                        eol = end;
                    continue;
                }
                break;
            }
            out[n] = '\0';
            return out;
        }
        p = eol + 2;
    }
    return NULL;
}

unsigned char *smtp_sink_part(const char *data, const char *type, size_t *outlen)
{
    char *ct = smtp_sink_header(data, "Content-Type");
    if (ct == NULL)
        return NULL;
    const char *b = strstr(ct, "boundary=\"");
    if (b == NULL) {
        free(ct);
        return NULL;
    }
    b += 10;
    const char *be = strchr(b, '"');
    char delim[300];
    snprintf(delim, sizeof delim, "\r\n--%.*s", (int)(be ? be - b : 0), b);
    free(ct);
    const char *p = strstr(data, delim);
    while (p != NULL) {
        const char *part = p + strlen(delim);
        if (strncmp(part, "--", 2) == 0)
            break;
        part += 2; /* CRLF after the delimiter */
        const char *next = strstr(part, delim);
        char *pct = smtp_sink_header(part, "Content-Type");
        bool match = pct != NULL && strncasecmp(pct, type, strlen(type)) == 0;
        free(pct);
        const char *body = headers_end(part);
        if (match && body != NULL && next != NULL) {
            body += 4;
            return smtp_sink_b64decode(body, (size_t)(next - body), outlen);
        }
        p = next;
    }
    return NULL;
}
