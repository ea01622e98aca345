/* smtp_sink.h: an SMTP server for tests and the local stack, speaking real
 * SMTP over TCP (RFC 5321 subset: EHLO/HELO, AUTH PLAIN and LOGIN, MAIL,
 * RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT; no STARTTLS: it
 * advertises none, so a client that insists on TLS refuses to send) and
 * storing every accepted message, in memory and optionally as
 * DIR/NNNNNN.eml. Replies can be forced (a 4xx or 5xx at MAIL, RCPT or DATA
 * for the next N messages) and the final 250 held back for a while (a
 * client killed meanwhile has had its message accepted but never heard so).
 * One connection at a time, served by a background thread.
 */
#ifndef LEDGERLINE_TESTS_SMTP_SINK_H
#define LEDGERLINE_TESTS_SMTP_SINK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct smtp_sink smtp_sink;

typedef struct {
    char *mail_from; /* the MAIL FROM address, without <> */
    char *rcpt;      /* the (first) RCPT TO address */
    char *auth_user; /* who authenticated, NULL when nobody */
    char *data;      /* the message as received, dot-unstuffed, CRLF */
    size_t len;
} smtp_sink_msg;

/* Listens on host:port (port 0: any free one); dir NULL: memory only.
 * NULL when it cannot listen. */
smtp_sink *smtp_sink_start(const char *host, int port, const char *dir);
int smtp_sink_port(const smtp_sink *s);
void smtp_sink_stop(smtp_sink *s);

/* AUTH is required (and checked) once set; mechs: "PLAIN LOGIN", "LOGIN", ... */
void smtp_sink_require_auth(smtp_sink *s, const char *user, const char *pass, const char *mechs);

/* The next `times` transactions answer `code` (e.g. 451, 550) at stage
 * "MAIL", "RCPT" or "DATA" (DATA: after the message's final dot; nothing is
 * stored). */
void smtp_sink_force(smtp_sink *s, const char *stage, int code, int times);
/* The same for transactions to rcpt only (stage "RCPT" or "DATA"), so that
 * other mail flowing meanwhile is not affected. */
void smtp_sink_force_to(smtp_sink *s, const char *rcpt, const char *stage, int code, int times);

/* After storing a message to rcpt (NULL: any), wait hold_ms before the
 * final 250. */
void smtp_sink_hold(smtp_sink *s, const char *rcpt, int hold_ms);

/* Discard mode (for benchmarks): messages accepted from now on are counted
 * (and written to DIR when there is one) but not kept in memory, so
 * smtp_sink_get does not find them. */
void smtp_sink_discard(smtp_sink *s, bool discard);
/* Bytes of every message accepted so far (kept or discarded). */
size_t smtp_sink_bytes(smtp_sink *s);

/* Messages accepted so far (kept or discarded); waits up to timeout_ms for
 * at least n. */
size_t smtp_sink_count(smtp_sink *s);
size_t smtp_sink_wait(smtp_sink *s, size_t n, int timeout_ms);

/* A copy of message i (free with smtp_sink_msg_free); 0, or -1 when none. */
int smtp_sink_get(smtp_sink *s, size_t i, smtp_sink_msg *out);
void smtp_sink_msg_free(smtp_sink_msg *m);

/* Decodes base64 (whitespace and line breaks skipped) into malloc'd bytes;
 * NULL on a character outside the alphabet. */
unsigned char *smtp_sink_b64decode(const char *text, size_t textlen, size_t *outlen);

/* The value of header `name` of a message (unfolded, malloc'd), NULL when
 * absent. */
char *smtp_sink_header(const char *data, const char *name);

/* The decoded body of the MIME part whose Content-Type starts with `type`
 * ("text/plain", "application/pdf") of a multipart message; malloc'd, NULL
 * when there is none. */
unsigned char *smtp_sink_part(const char *data, const char *type, size_t *outlen);

#endif
