/* smtp.c: one e-mail through SMTP with libcurl (see smtp.h). Owns the
 * SMTP_* settings, the MIME shape of a notification (multipart/mixed,
 * base64 parts in 76-column lines), header validation (no line breaks, plain
 * addresses) and the classification of the server's answer. */
#include "ledgerline/smtp.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "ledgerline/config.h"
#include "ledgerline/failf.h"

/* ---- settings --------------------------------------------------------------- */

static bool host_is_loopback(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

/* Checks SMTP_URL's shape; *loopback, *implicit_tls from it. */
static int check_url(const char *url, bool *loopback, bool *implicit_tls, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL;
    int rc = -1;
    if (u == NULL || strlen(url) >= SMTP_URL_MAX ||
        curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        ll_failf(err, errlen, "SMTP_URL must be smtp://host[:port] or smtps://host[:port]");
        goto out;
    }
    if (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0) {
        ll_failf(err, errlen, "SMTP_URL must use smtp:// or smtps://, got %s://", scheme);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        ll_failf(err, errlen, "SMTP_URL must not carry credentials or a query");
        ll_hintf(err, errlen, "Put the credentials in SMTP_USERNAME and SMTP_PASSWORD.");
        goto out;
    }
    *loopback = host_is_loopback(host);
    *implicit_tls = strcmp(scheme, "smtps") == 0;
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

static int copy_setting(const char *name, const char *def, char *dst, size_t dstsz, char *err,
                        size_t errlen)
{
    const char *v;
    if (config_get_str(name, def, &v, err, errlen) != 0)
        return -1;
    if (strlen(v) >= dstsz)
        return ll_failf(err, errlen, "%s must be at most %zu characters long", name, dstsz - 1);
    for (const char *p = v; *p; p++)
        if (*p == '\r' || *p == '\n')
            return ll_failf(err, errlen, "%s must not contain a line break", name);
    snprintf(dst, dstsz, "%s", v);
    return 0;
}

int smtp_config_from_env(smtp_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    bool loopback = false, implicit_tls = false;
    if (copy_setting("SMTP_URL", NULL, cfg->url, sizeof cfg->url, err, errlen) != 0 ||
        check_url(cfg->url, &loopback, &implicit_tls, err, errlen) != 0)
        return -1;
    if (copy_setting("SMTP_FROM", NULL, cfg->from, sizeof cfg->from, err, errlen) != 0)
        return -1;
    if (!smtp_address_valid(cfg->from)) {
        ll_failf(err, errlen, "SMTP_FROM must be a plain address local@domain");
        return ll_hintf(err, errlen,
                        "A display name (\"Billing <billing@example.com>\") is not "
                        "accepted: give the address alone.");
    }
    if (copy_setting("SMTP_USERNAME", "", cfg->username, sizeof cfg->username, err, errlen) != 0 ||
        copy_setting("SMTP_PASSWORD", "", cfg->password, sizeof cfg->password, err, errlen) != 0)
        return -1;
    if (config_get_bool("SMTP_STARTTLS", !loopback && !implicit_tls, &cfg->starttls, err, errlen) !=
        0)
        return -1;
    int64_t v;
    if (config_get_int("SMTP_CONNECT_TIMEOUT_MS", 10000, 100, 600000, &v, err, errlen) != 0)
        return -1;
    cfg->connect_timeout_ms = (long)v;
    if (config_get_int("SMTP_TIMEOUT_MS", 60000, 100, 3600000, &v, err, errlen) != 0)
        return -1;
    cfg->timeout_ms = (long)v;
    return 0;
}

bool smtp_address_valid(const char *a)
{
    if (a == NULL)
        return false;
    size_t n = strlen(a), at = 0, ats = 0;
    if (n < 3 || n > SMTP_ADDRESS_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 32 || c >= 127 || strchr("<>()[]\\,;:\"", c) != NULL)
            return false;
        if (c == '@') {
            ats++;
            at = i;
        }
    }
    return ats == 1 && at > 0 && at < n - 1 && a[n - 1] != '.';
}

/* ---- MIME ---------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *smtp_base64(const unsigned char *data, size_t len, size_t line, size_t *outlen)
{
    size_t chars = 4 * ((len + 2) / 3);
    size_t breaks = line ? chars / line + 1 : 0;
    char *out = malloc(chars + 2 * breaks + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0, col = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        char q[4] = {b64_alphabet[(v >> 18) & 63], b64_alphabet[(v >> 12) & 63],
                     i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=',
                     i + 2 < len ? b64_alphabet[v & 63] : '='};
        for (int k = 0; k < 4; k++) {
            if (line && col == line) {
                out[o++] = '\r';
                out[o++] = '\n';
                col = 0;
            }
            out[o++] = q[k];
            col++;
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} strbuf;

static void sb_add(strbuf *s, const char *p, size_t n)
{
    if (s->failed)
        return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL) {
            s->failed = true;
            return;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void sb_str(strbuf *s, const char *p)
{
    sb_add(s, p, strlen(p));
}

static bool has_line_break(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") != NULL;
}

static bool ascii_only(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 127 || (unsigned char)*s < 32)
            return false;
    return true;
}

/* Subject: as is when printable ASCII, else RFC 2047 B-words of at most 39
 * bytes each (whole UTF-8 sequences; a folded line stays within 78). */
static void add_subject(strbuf *s, const char *subject)
{
    sb_str(s, "Subject: ");
    if (ascii_only(subject)) {
        sb_str(s, subject);
        sb_str(s, "\r\n");
        return;
    }
    size_t n = strlen(subject), i = 0;
    while (i < n) {
        size_t k = n - i > 39 ? 39 : n - i;
        while (i + k < n && ((unsigned char)subject[i + k] & 0xC0) == 0x80)
            k--;
        char *b = smtp_base64((const unsigned char *)subject + i, k, 0, NULL);
        if (b == NULL) {
            s->failed = true;
            return;
        }
        if (i > 0)
            sb_str(s, "\r\n ");
        sb_str(s, "=?UTF-8?B?");
        sb_str(s, b);
        sb_str(s, "?=");
        free(b);
        i += k;
    }
    sb_str(s, "\r\n");
}

static bool message_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 5 || n > 250 || id[0] != '<' || id[n - 1] != '>')
        return false;
    int ats = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 32 || c >= 127 || c == '<' || c == '>')
            return false;
        ats += c == '@';
    }
    return ats == 1;
}

static bool pdf_name_valid(const char *name)
{
    if (name == NULL || *name == '\0' || strlen(name) > 120)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr("-_.", *p) == NULL)
            return false;
    return true;
}

static void now_date(char *buf, size_t bufsz)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(buf, bufsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The boundary: "ll_part_" and up to 50 letters or digits of the
 * Message-ID (RFC 2046: at most 70); '_' never occurs in base64, so no part
 * can contain it. */
static void boundary_of(const char *message_id, char *out, size_t outsz)
{
    size_t o = (size_t)snprintf(out, outsz, "ll_part_");
    for (const char *p = message_id; *p && o + 1 < outsz && o < 58; p++)
        if (isalnum((unsigned char)*p))
            out[o++] = *p;
    out[o] = '\0';
}

static int check_message(const smtp_config *cfg, const smtp_message *m, char *err, size_t errlen)
{
    if (!smtp_address_valid(m->to))
        return ll_failf(err, errlen,
                        "cannot send: the recipient address is not a plain address local@domain");
    if (!smtp_address_valid(cfg->from))
        return ll_failf(err, errlen, "cannot send: SMTP_FROM is not a plain address");
    if (m->subject == NULL || has_line_break(m->subject) || has_line_break(m->date) ||
        m->body == NULL)
        return ll_failf(err, errlen,
                        "cannot send: the subject or date is missing or has a line break");
    if (!message_id_valid(m->message_id))
        return ll_failf(err, errlen, "cannot send: the Message-ID must be <id@domain>");
    if (m->pdf != NULL && !pdf_name_valid(m->pdf_name))
        return ll_failf(err, errlen,
                        "cannot send: the attachment name must be letters, digits, '-', '_', '.'");
    return 0;
}

static int add_part(strbuf *s, const char *boundary, const char *headers, const unsigned char *data,
                    size_t len)
{
    char *b64 = smtp_base64(data, len, 76, NULL);
    if (b64 == NULL)
        return -1;
    sb_str(s, "--");
    sb_str(s, boundary);
    sb_str(s, "\r\n");
    sb_str(s, headers);
    sb_str(s, "Content-Transfer-Encoding: base64\r\n\r\n");
    sb_str(s, b64);
    sb_str(s, "\r\n");
    free(b64);
    return 0;
}

char *smtp_build(const smtp_config *cfg, const smtp_message *m, size_t *len, char *err,
                 size_t errlen)
{
    if (check_message(cfg, m, err, errlen) != 0)
        return NULL;
    char date[64], boundary[300], h[512];
    if (m->date != NULL)
        snprintf(date, sizeof date, "%s", m->date);
    else
        now_date(date, sizeof date);
    boundary_of(m->message_id, boundary, sizeof boundary);
    strbuf s = {0};
    snprintf(h, sizeof h, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nMessage-ID: %s\r\n", date, cfg->from,
             m->to, m->message_id);
    sb_str(&s, h);
    add_subject(&s, m->subject);
    snprintf(h, sizeof h,
             "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
             "Content-Type: multipart/mixed;\r\n boundary=\"%s\"\r\n\r\n"
             "This is a MIME message.\r\n",
             boundary);
    sb_str(&s, h);
    int rc = add_part(&s, boundary, "Content-Type: text/plain; charset=UTF-8\r\n",
                      (const unsigned char *)m->body, strlen(m->body));
    if (rc == 0 && m->pdf != NULL) {
        snprintf(h, sizeof h,
                 "Content-Type: application/pdf;\r\n name=\"%s\"\r\n"
                 "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n",
                 m->pdf_name, m->pdf_name);
        rc = add_part(&s, boundary, h, m->pdf, m->pdf_len);
    }
    sb_str(&s, "--");
    sb_str(&s, boundary);
    sb_str(&s, "--\r\n");
    if (rc != 0 || s.failed) {
        free(s.buf);
        ll_failf(err, errlen, "could not build the e-mail: out of memory");
        return NULL;
    }
    *len = s.len;
    return s.buf;
}

/* ---- sending ---------------------------------------------------------------------- */

smtp_result smtp_classify(int curl_code, long reply)
{
    if (curl_code == CURLE_OK)
        return SMTP_SENT;
    /* 530, 534, 535, 538: authentication (the operator's settings). */
    bool auth = curl_code == CURLE_LOGIN_DENIED || reply == 530 || reply == 534 || reply == 535 ||
                reply == 538;
    if (reply >= 500 && reply <= 599 && !auth)
        return SMTP_PERMANENT;
    return SMTP_TRANSIENT;
}

const char *smtp_result_name(smtp_result r)
{
    switch (r) {
    case SMTP_SENT: return "sent";
    case SMTP_PERMANENT: return "permanent";
    default: return "transient";
    }
}

typedef struct {
    const char *data;
    size_t len, off;
} upload;

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    upload *u = userdata;
    size_t room = size * nmemb, left = u->len - u->off;
    size_t n = left < room ? left : room;
    memcpy(ptr, u->data + u->off, n);
    u->off += n;
    return n;
}

smtp_result smtp_send(const smtp_config *cfg, const smtp_message *m, char *err, size_t errlen)
{
    size_t len = 0;
    char *msg = smtp_build(cfg, m, &len, err, errlen);
    if (msg == NULL)
        return SMTP_PERMANENT;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        free(msg);
        ll_failf(err, errlen, "could not send the e-mail: libcurl could not start");
        return SMTP_TRANSIENT;
    }
    char from[SMTP_ADDRESS_MAX + 3], to[SMTP_ADDRESS_MAX + 3], cerr[CURL_ERROR_SIZE] = "";
    snprintf(from, sizeof from, "<%s>", cfg->from);
    snprintf(to, sizeof to, "<%s>", m->to);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    upload u = {msg, len, 0};
    curl_easy_setopt(c, CURLOPT_URL, cfg->url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (cfg->starttls)
        curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (cfg->username[0]) {
        curl_easy_setopt(c, CURLOPT_USERNAME, cfg->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->password);
    }
    CURLcode rc = curl_easy_perform(c);
    long reply = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
    smtp_result r = smtp_classify((int)rc, reply);
    if (r != SMTP_SENT)
        ll_failf(err, errlen, "%s send to the SMTP server (%s): %s%s%s (reply %ld)",
                 r == SMTP_PERMANENT ? "cannot" : "could not", smtp_result_name(r),
                 curl_easy_strerror(rc), cerr[0] ? ": " : "", cerr, reply);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    free(msg);
    return r;
}
