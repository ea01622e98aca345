/* harness.h: what the ingester tests share: a private billing-dev-broker and
 * billing-ingester per test program (temp dir, free loopback port, killed at
 * exit even on failure), Stripe signing with OpenSSL, HTTP with libcurl, and
 * reading a topic back with a plain librdkafka consumer. */
#ifndef TESTS_INGESTER_HARNESS_H
#define TESTS_INGESTER_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define H_SECRET_A "whsec_TestA0123456789abcdef"
#define H_SECRET_B "whsec_TestB9876543210fedcba"

typedef struct {
    char dir[256];
    char brokers[512];
    char url[64]; /* http://127.0.0.1:PORT */
    pid_t broker_pid, ingester_pid;
    int ingester_status; /* exit status when it exited while h_start* waited */
} h_env;

extern h_env H;

/* Starts the broker and an ingester (STRIPE_WEBHOOK_SECRET=A,B) with extra
 * "NAME=value" settings (NULL-terminated, may be NULL). 0 on success. */
int h_start(const char *const *extra_env);
/* The same on brokers of the caller's (no dev broker; h_broker_signal does
 * nothing). Called again after h_stop_ingester, it starts a new ingester in
 * the same temp dir (ingester.log is appended to). */
int h_start_on(const char *brokers, const char *const *extra_env);
/* Records the test run's result: the temp dir (logs) is removed at exit
 * only when rc == 0. Returns rc. */
int h_done(int rc);
/* SIGTERM to the ingester; returns its exit status (or -1). */
int h_stop_ingester(int timeout_ms);
/* Waits up to timeout_ms for the ingester to exit by itself; its exit status
 * (128 + signal when killed), or -1 while it still runs. */
int h_wait_ingester(int timeout_ms);
/* Signals the dev broker (SIGUSR1 down, SIGUSR2 up). */
void h_broker_signal(int sig);

/* Exact bytes of a fixture (malloc'd), or NULL. */
char *h_fixture(const char *name, size_t *len);
/* "t=<t>,v1=<hex>" for secret over "<t>.<body>". */
void h_sign(const char *secret, int64_t t, const void *body, size_t len, char *out, size_t outlen);
/* Just the 64-hex v1 value. */
void h_sign_hex(const char *secret, int64_t t, const void *body, size_t len, char hex[65]);

typedef struct {
    long code;
    char *body; /* NUL-terminated, malloc'd */
    size_t body_len;
    char allow[64];
    int64_t micros; /* total time of the request */
} h_resp;

/* One request. sig may be NULL (no header). chunked: send with
 * Transfer-Encoding: chunked (no Content-Length). Returns 0 when an HTTP
 * answer came (code filled). */
int h_http(const char *method, const char *path, const void *body, size_t len, const char *sig,
           int chunked, h_resp *r);
/* The same against another listener, base = "http://127.0.0.1:PORT". */
int h_http_at(const char *base, const char *method, const char *path, const void *body, size_t len,
              const char *sig, int chunked, h_resp *r);
void h_resp_free(h_resp *r);
/* POST to /webhooks/stripe signed with secret at now. */
int h_post_signed(const char *secret, const void *body, size_t len, h_resp *r);

typedef struct {
    char *key;
    char *value;
    size_t value_len;
    char event_id[256];
    char event_type[256];
    char received_at[64];
} h_msg;

/* Reads topic (full name) from the beginning of every partition until want
 * messages arrived (then settle_ms more to catch extras) or timeout_ms.
 * Returns the count; *out is malloc'd (free with h_msgs_free). */
size_t h_read_topic(const char *topic, size_t want, int timeout_ms, int settle_ms, h_msg **out);
void h_msgs_free(h_msg *m, size_t n);

int64_t h_now(void);
uint64_t h_mono_ms(void);
void h_sleep_ms(int ms);

/* A loopback port free right now (for a listener of the ingester). */
int h_free_port(void);
/* The port of the ingester's public listener (H.url). */
int h_port(void);

/* Raw sockets, for what curl will not do (slow, partial or hostile
 * requests). A blocking loopback connection with 10 s send/receive
 * timeouts, or -1. */
int h_raw_connect(int port);
/* 0 when all was sent, -1 when the server closed the connection first. */
int h_raw_send_all(int fd, const void *p, size_t len);
/* The status code of the answer, 0 when the connection was closed (or
 * reset) without one, -1 when nothing came within the receive timeout. */
int h_raw_read_status(int fd);
/* Whether the server has closed fd (EOF, reset, hang-up), without
 * blocking; an answer it sent first (e.g. 408) is read and dropped. */
int h_raw_closed(int fd);

/* A "kB" field of /proc/<pid>/status (VmRSS, VmData, VmHWM, ...), or -1. */
long h_proc_kib(pid_t pid, const char *field);

#endif
