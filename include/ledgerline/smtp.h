/* smtp.h: one e-mail through SMTP with libcurl (CONTRACT "Documents and
 * delivery"; docs/NOTIFICATIONS.md).
 *
 * Settings: SMTP_URL (smtp://host[:port] or smtps://host[:port]), SMTP_FROM
 * (an address), SMTP_USERNAME and SMTP_PASSWORD (secret; AUTH when the
 * username is set), SMTP_STARTTLS (on|off; on by default for smtp:// hosts
 * other than loopback: the message then goes only after STARTTLS
 * succeeded), SMTP_CONNECT_TIMEOUT_MS (default 10000) and SMTP_TIMEOUT_MS
 * (whole conversation, default 60000).
 *
 * A message is MIME multipart/mixed: a text/plain UTF-8 body and, when
 * given, one PDF attachment, both base64 in lines of 76 characters. Its
 * Message-ID is the caller's (derived from the notification key, so a
 * resend after a crash carries the same one).
 *
 * The server's answer is classified: a 5xx reply is permanent (record it,
 * never retry); a 4xx reply, a refused or lost connection, a timeout or a
 * failed TLS negotiation is transient (retry later); the authentication
 * replies (530 required, 534, 535 refused, 538) are transient too: they are
 * the operator's configuration, not the message's fault, and a fixed
 * password must not find every mail failed.
 */
#ifndef LEDGERLINE_SMTP_H
#define LEDGERLINE_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_ADDRESS_MAX 254
#define SMTP_URL_MAX 512

typedef struct {
    char url[SMTP_URL_MAX];
    char from[SMTP_ADDRESS_MAX + 1];
    char username[256];
    char password[256];
    bool starttls;
    long connect_timeout_ms;
    long timeout_ms;
} smtp_config;

typedef struct {
    const char *to;           /* one address */
    const char *subject;      /* UTF-8, encoded as RFC 2047 when not ASCII */
    const char *body;         /* UTF-8 plain text */
    const char *message_id;   /* "<...@...>" */
    const char *date;         /* RFC 5322 date text; NULL: now */
    const unsigned char *pdf; /* NULL: no attachment */
    size_t pdf_len;
    const char *pdf_name; /* "ACME-2026-000042.pdf" */
} smtp_message;

typedef enum { SMTP_SENT = 0, SMTP_TRANSIENT, SMTP_PERMANENT } smtp_result;

/* Reads the SMTP_* variables. 0, or -1 with a message naming the variable
 * (never a secret's value). */
int smtp_config_from_env(smtp_config *cfg, char *err, size_t errlen);

/* true for a plain address local@domain: printable ASCII, no spaces, angle
 * brackets, quotes or line breaks, one '@', at most SMTP_ADDRESS_MAX. */
bool smtp_address_valid(const char *addr);

/* The whole message (headers and body, CRLF line ends) in malloc'd memory;
 * NULL with err when a header would be malformed (a line break in the
 * subject, an invalid address or Message-ID). */
char *smtp_build(const smtp_config *cfg, const smtp_message *m, size_t *len, char *err,
                 size_t errlen);

/* Base64 of data in lines of at most `line` characters (0: one line),
 * CRLF-separated; malloc'd and NUL-terminated. */
char *smtp_base64(const unsigned char *data, size_t len, size_t line, size_t *outlen);

/* Sends m; SMTP_SENT once the server accepted the DATA. err says why not
 * (with the server's code when there was one). */
smtp_result smtp_send(const smtp_config *cfg, const smtp_message *m, char *err, size_t errlen);

/* The classification above: curl's result and the last SMTP reply code. */
smtp_result smtp_classify(int curl_code, long reply_code);

const char *smtp_result_name(smtp_result r);

#endif
