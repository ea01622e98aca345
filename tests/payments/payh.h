/* payh.h: the harness of the payment tests (autopay and retry workers as
 * real processes, the Stripe stand-in, the dev broker of the local stack and
 * PostgreSQL). Each harness runs on a topic prefix of its own, so its
 * workers see only its messages; each test uses a firm of its own. */
#ifndef LEDGERLINE_TESTS_PAYH_H
#define LEDGERLINE_TESTS_PAYH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "ledgerline/envelope.h"
#include "ledgerline/kafka.h"
#include "support/standin.h"

typedef struct {
    char prefix[64];
    char group_autopay[160], group_retry[160];
    char log_autopay[256], log_retry[256];
    char retry_days[64];
    const char *brokers;
    standin *stripe;
    pid_t autopay, retry, retry2;
    PGconn *pg;
    kafka_producer *producer;
} payh;

/* Stand-in, autopay and retry workers on a fresh prefix; retry_days NULL =
 * the default schedule. */
void payh_start(payh *h, const char *retry_days);
/* Stops everything (SIGTERM; the workers must exit 0). */
void payh_stop(payh *h);
void payh_start_autopay(payh *h);
void payh_start_retry(payh *h);
/* SIGKILL, no cleanup: what a crash does. */
void payh_kill_autopay(payh *h);
/* A second retry worker in the same group. */
void payh_start_retry2(payh *h);
/* A worker binary as a child on the harness's prefix, stand-in and key
 * (the environment payh_start_autopay gives), logging to log. */
pid_t payh_spawn(payh *h, const char *bin, const char *log);
/* Publishes one message to <prefix><topic> and waits for the broker's ack. */
void payh_produce(payh *h, const char *topic, const char *key, const char *value,
                  const kafka_header *hd, size_t nh);
/* Waits (60 s at most, then fails the test) until `group` recorded at least
 * `want` idempotency keys LIKE key_like. */
void payh_wait_key(payh *h, const char *group, const char *key_like, int64_t want);
/* Lines of the retry workers' log (both instances write it) that contain
 * needle, e.g. "partitions assigned" to know a rebalance has settled. */
int payh_retry_log_count(payh *h, const char *needle);

/* A client with autopay on/off and a payment method (NULL = none). */
int64_t payh_client(payh *h, int64_t firm, const char *pm, bool autopay);
/* A sent invoice of `total` cents (one package_fee line, no tax) on a
 * package engagement of the client, with the client's autopay settings,
 * cadence and dates; autopay scheduled as the invoicing worker does. */
int64_t payh_invoice(payh *h, int64_t firm, int64_t client, int64_t total, const char *issue,
                     const char *due, const char *cadence);
/* Publishes invoice.issued for it and waits until the autopay worker
 * recorded it (or, when wait is false, returns at once). */
void payh_issue(payh *h, int64_t invoice, bool wait);
/* Publishes a firm-scoped tick (4 shards) and waits until the worker of
 * that kind recorded every shard. */
void payh_tick(payh *h, tick_kind kind, const char *date, int64_t firm);
/* The same tick split into `shards` shards, published without waiting, and
 * the wait for every shard of that split (two splits of one tick have
 * different keys, so both are applied: concurrent work on the same rows). */
void payh_tick_publish(payh *h, tick_kind kind, const char *date, int64_t firm, int shards);
void payh_tick_wait(payh *h, tick_kind kind, const char *date, int64_t firm, int shards);
/* Publishes a Stripe event body to <prefix>stripe.payments (key: the
 * PaymentIntent) and waits until the worker group recorded its event id. */
void payh_stripe_event(payh *h, const char *body, const char *pi, const char *group);
/* A fixture event (file under the fixtures' root) made about our objects:
 * new event id, PaymentIntent id / charge / metadata.invoice_id / amounts
 * replaced. amount < 0 keeps the fixture's. Caller frees. */
char *payh_fixture_event(const char *file, const char *pi, const char *charge, int64_t invoice,
                         int64_t amount);

/* A PaymentIntent created at the stand-in by someone else than our workers
 * (the platform's dashboard, say): metadata invoice_id and firm_id as given
 * (firm 0 = none), no attempt_key. pi and ch (>= 64 bytes) get its ids. */
void payh_foreign_pi(payh *h, int64_t firm, int64_t invoice, int64_t amount, const char *pm,
                     char *pi, char *ch);

/* Money Stripe received for a PaymentIntent, recorded in the books the way
 * the workers record it (payments_apply_success in its own transaction, on
 * 2026-12-01); currency NULL = the invoice's. Fails the test on a database
 * error; returns payments_money_result. */
int payh_pay_books(int64_t invoice, const char *pi, const char *ch, int64_t amount,
                   const char *currency);

/* One value (first column, first row) of a query with one int64 param, as
 * int64 (0 for NULL/no row) or text (static buffer, "" for NULL/no row). */
int64_t payh_i64(payh *h, const char *sql, int64_t id);
const char *payh_text(payh *h, const char *sql, int64_t id);
/* Polls until the query (one int64 param) returns true, at most 30 s. */
bool payh_wait(payh *h, const char *sql, int64_t id);
void payh_sleep_ms(int ms);

#endif
